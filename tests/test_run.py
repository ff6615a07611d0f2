"""`python -m automation run`, end to end, as a user meets it.

Each test runs the real CLI in a subprocess, in a git checkout whose `origin` is a local bare
repository, against loopback servers speaking the Anthropic Messages, OpenAI Chat Completions
and GitHub REST wire formats, with the real SDKs, PyGithub and git. Assertions read what a
user would see: branches and files on the remote, the pull request GitHub received, the ledger
on the default branch, the output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faked_clock import faked_clock_env
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.secret_samples import assignment, samples

ROOT = Path(__file__).resolve().parent.parent
# `python -c BOT_AT <ISO time> <command> ...`: the bot started at that time (``cli.main``'s ``now``),
# so a test of days and weeks never depends on the machine's clock.
BOT_AT = "import datetime, sys; from automation.cli import main; sys.exit(main(sys.argv[2:], now=datetime.datetime.fromisoformat(sys.argv[1])))"


def bot(now: str | None = None) -> list[str]:
    """The command that starts the bot: at the machine's time, or at ``now`` (ISO 8601, UTC)."""
    return [sys.executable, "-m", "automation"] if now is None else [sys.executable, "-c", BOT_AT, now]
TASKS = """# Tasks

## Now
- [x] Set up the project
<!-- Example kept by the template: never a task
- [ ] Example task in a comment
-->
- [ ] Add a greeting module
  - [ ] Greet by name
- [ ] Say hello in French too
- [ ] Write the changelog
"""
GREETING = {"path": "app/greeting.py", "content": "def greet(name):\n    return f'Hello, {name}!'\n"}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@dataclass
class World:
    """A checkout, its bare remote, the three fake services and the bot's environment."""

    tmp: Path
    remote: Path
    checkout: Path
    env: dict[str, str]
    anthropic: FakeAnthropic
    openai: FakeOpenAI
    github: FakeGitHub

    def run(self, *args: str, env: dict[str, str] | None = None, now: str | None = None) -> subprocess.CompletedProcess[str]:
        """`run` in the world's checkout; ``now``: its start time instead of the machine's clock."""
        return subprocess.run(
            [*bot(now), "run", "--repo", str(self.checkout), *args],
            cwd=self.tmp, env=env or self.env, capture_output=True, text=True, timeout=120,
        )

    def remote_file(self, ref: str, path: str) -> str | None:
        result = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=self.remote, capture_output=True, text=True)
        return result.stdout if result.returncode == 0 else None

    def remote_branches(self) -> list[str]:
        return git(self.remote, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()

    def ledger(self) -> dict:
        """The ledger on the default branch, each call row read through the file's own
        ``call_columns`` header (as a user would with jq); a left-out outcome reads "ok"."""
        text = self.remote_file("main", "token_budget.json")
        assert text is not None, "no ledger on the default branch"
        data = json.loads(text)
        for run in data["runs"]:
            run["calls"] = [{"outcome": "ok", **dict(zip(data["call_columns"], row))} for row in run["calls"]]
        return data

    def created_pulls(self) -> list[dict]:
        return [request.json for request in self.github.requests_to("POST", "/repos/*/pulls")]

    def push_to_main(self, path: str, content: str, message: str) -> None:
        """Another actor (a merged PR, another run) moves the default branch."""
        other = self.tmp / "other"
        if not other.exists():
            git(self.tmp, "clone", "-q", str(self.remote), str(other), env=self.env)
        git(other, "pull", "-q", env=self.env)
        (other / path).parent.mkdir(parents=True, exist_ok=True)
        (other / path).write_text(content)
        git(other, "add", path, env=self.env)
        git(other, "commit", "-qm", message, env=self.env)
        git(other, "push", "-q", "origin", "main", env=self.env)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    ends = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < ends, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture()
def world(tmp_path: Path, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, fake_github: FakeGitHub) -> World:
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    env = {
        "PATH": os.environ["PATH"],
        **faked_clock_env(),  # a faked clock reaches the bot too
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "1",
        **fake_anthropic.env(),
        **fake_openai.env(),
        **fake_github.env(),
    }
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote), env=env)
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "-b", "main", str(seed), env=env)
    (seed / "docs").mkdir()
    (seed / "docs" / "TASKS.md").write_text(TASKS)
    (seed / "app").mkdir()
    (seed / "app" / "__init__.py").write_text("")
    (seed / "README.md").write_text("# Demo\n\nA demo app with a greeting module.\n")
    git(seed, "add", "-A", env=env)
    git(seed, "commit", "-qm", "seed", env=env)
    git(seed, "remote", "add", "origin", str(remote), env=env)
    git(seed, "push", "-q", "origin", "main", env=env)
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(remote), str(checkout), env=env)

    fake_anthropic.text = "## Changes\nAdd `app/greeting.py` with `greet`.\n\n## Files\n- `app/greeting.py`\n\n## Acceptance criteria\n- greet('Ada') returns 'Hello, Ada!'"
    fake_anthropic.counted_tokens = 900
    fake_openai.content = FakeOpenAI.code_reply("Add a greeting module", [GREETING])
    return World(tmp_path, remote, checkout, env, fake_anthropic, fake_openai, fake_github)


def test_happy_path_opens_one_pull_request_and_commits_the_ledger(world: World) -> None:
    result = world.run()

    assert result.returncode == 0, result.stderr
    branch = "ai/add-a-greeting-module"
    assert branch in world.remote_branches()
    assert world.remote_file(branch, "app/greeting.py") == GREETING["content"]
    assert "- [x] Add a greeting module" in world.remote_file(branch, "docs/TASKS.md")
    assert "  - [x] Greet by name" in world.remote_file(branch, "docs/TASKS.md")  # its sub-step, done with it
    assert "- [ ] Say hello in French too" in world.remote_file(branch, "docs/TASKS.md")
    assert "- [ ] Example task in a comment" in world.remote_file(branch, "docs/TASKS.md")

    [pull] = world.created_pulls()
    assert pull["title"] == "Add a greeting module"
    assert pull["head"] == branch and pull["base"] == "main"
    body = pull["body"]
    assert "Add a greeting module" in body and "## Analysis (claude-sonnet-5-5)" in body
    assert "`app/greeting.py` (create)" in body
    assert "## Cost receipt" in body and "claude-sonnet-5-5" in body and "gpt-4o-mini" in body
    assert "https://github.example/octo/repo/actions/runs/4242" in body or "actions/runs/4242" in body
    assert "<!-- ai-orchestration:task=" in body
    labels = world.github.requests_to("POST", "/repos/*/issues/*/labels")
    assert labels and "ai-generated" in json.dumps(labels[0].json)

    ledger = world.ledger()
    [run] = ledger["runs"]
    assert run["outcome"] == "pr_opened" and run["pr_url"].endswith("/pull/1")
    assert [call["step"] for call in run["calls"]] == ["analysis", "code"]
    assert ledger["spent_micro_usd"] == sum(call["cost_micro_usd"] for call in run["calls"]) > 0
    assert ledger["executions"] == 1 and ledger["prs_opened"] == 1

    analysis_request = world.anthropic.generation_requests[0].json
    assert "Add a greeting module\n\nSub-steps:\n- [ ] Greet by name" in analysis_request["messages"][0]["content"]
    assert analysis_request["model"] == "claude-sonnet-5-5" and "temperature" not in analysis_request
    code_request = world.openai.generation_requests[0].json
    assert "response_format" not in code_request  # plain text: SEARCH/REPLACE blocks, no JSON schema
    assert "<<<<<<< SEARCH" in code_request["messages"][0]["content"]
    for secret in (world.env["ANTHROPIC_API_KEY"], world.env["OPENAI_API_KEY"], world.env["GITHUB_TOKEN"]):
        assert secret not in result.stdout + result.stderr + body
        assert secret not in json.dumps(ledger)


def test_task_with_an_open_pull_request_is_skipped(world: World) -> None:
    from automation.repo.github import task_marker

    world.github.add_pull(title="Add a greeting module", head="ai/add-a-greeting-module",
                          body=f"earlier run\n{task_marker('Add a greeting module')}")
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "Skipping 'Add a greeting module': has an open pull request" in result.stdout
    [pull] = world.created_pulls()
    assert pull["title"] == "Say hello in French too"


def test_task_closed_without_merging_is_not_retried_but_a_merged_one_is_skipped_too(world: World) -> None:
    from automation.repo.github import task_marker

    world.github.add_pull(title="Add a greeting module", head="ai/add-a-greeting-module", state="closed",
                          body=task_marker("Add a greeting module"))
    world.github.add_pull(title="Say hello in French too", head="ai/say-hello-in-french-too", merged=True,
                          body=task_marker("Say hello in French too"))
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "was closed without merging" in result.stdout and "was merged" in result.stdout
    assert [pull["title"] for pull in world.created_pulls()] == ["Write the changelog"]


def test_no_task_left_stops_without_calling_a_model(world: World) -> None:
    (world.checkout / "docs" / "TASKS.md").write_text("# Tasks\n- [x] Done already\n")
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "No task left in docs/TASKS.md" in result.stdout
    assert world.anthropic.requests == [] and world.openai.requests == []
    assert world.created_pulls() == []


def test_pull_request_limit_stops_before_spending(world: World) -> None:
    for index in range(5):
        world.github.add_pull(title=f"Old {index}", head=f"ai/old-{index}", body="")
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "5 bot pull requests are open" in result.stdout
    assert world.anthropic.requests == [] and world.openai.requests == []


def test_given_task_is_used_instead_of_the_list(world: World) -> None:
    result = world.run("--task", "Add a farewell function")

    assert result.returncode == 0, result.stderr
    [pull] = world.created_pulls()
    assert pull["title"] == "Add a farewell function" and pull["head"] == "ai/add-a-farewell-function"
    assert "Add a farewell function" in world.anthropic.generation_requests[0].json["messages"][0]["content"]
    assert "- [ ] Add a greeting module" in world.remote_file("ai/add-a-farewell-function", "docs/TASKS.md")


def test_stale_checkout_merges_its_ledger_with_the_one_that_moved(world: World) -> None:
    other_ledger = {
        "schema_version": 1, "month": world.ledger_month(), "budget_micro_usd": 15_000_000,
        "runs": [{"id": "other-run", "started_at": f"{world.ledger_month()}-01T00:00:00Z", "task": "Earlier",
                  "outcome": "pr_opened", "pr_url": "https://github.example/octo/repo/pull/99",
                  "calls": [{"step": "analysis", "model": "claude-sonnet-5-5", "provider": "anthropic",
                             "tokens": {"input": 1000, "output": 100}, "cost_micro_usd": 3000, "latency_ms": 5,
                             "outcome": "ok"}]}],
    }
    world.push_to_main("token_budget.json", json.dumps(other_ledger), "another run's ledger")

    result = world.run()

    assert result.returncode == 0, result.stderr
    ledger = world.ledger()
    assert {run["id"] for run in ledger["runs"]} >= {"other-run"} and len(ledger["runs"]) == 2
    assert ledger["spent_micro_usd"] == sum(c["cost_micro_usd"] for r in ledger["runs"] for c in r["calls"])
    assert git(world.remote, "log", "--format=%s", "main").count("another run's ledger") == 1


@pytest.mark.parametrize(
    "path",
    ["../outside.py", "/etc/passwd", ".git/config", ".github/workflows/evil.yml", "token_budget.json", ".git./config",
     "GIT~1/config", "x" * 300 + ".py"],
)
def test_hostile_paths_are_refused_and_no_pull_request_is_opened(world: World, path: str) -> None:
    world.openai.content = FakeOpenAI.code_reply("evil", [{"path": path, "content": "x"}])
    result = world.run()

    assert result.returncode == 1
    assert "error:" in result.stderr and path.lstrip("./") in result.stderr + result.stdout
    assert len(world.openai.generation_requests) == 2  # one repair request, then give up
    assert world.created_pulls() == []
    assert [b for b in world.remote_branches() if b.startswith("ai/")] == []
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:edits" and len(run["calls"]) == 3
    assert world.ledger()["spent_micro_usd"] > 0
    assert not (world.tmp / "outside.py").exists()


def test_a_reply_without_blocks_gets_one_repair_request(world: World) -> None:
    world.openai.script(
        FakeOpenAI.completion("Sure! Here is the code you asked for."),
        FakeOpenAI.completion(FakeOpenAI.code_reply("Add a greeting module", [GREETING])),
    )
    result = world.run()

    assert result.returncode == 0, result.stderr
    repair = world.openai.generation_requests[1].json["messages"]
    assert "holds no SEARCH/REPLACE block" in repair[-1]["content"]
    assert len(world.created_pulls()) == 1
    assert len(world.ledger()["runs"][0]["calls"]) == 3


def test_a_path_with_a_space_that_the_plan_names_is_written_in_one_call(world: World) -> None:
    world.anthropic.text = "## Changes\nAdd `docs/user guide/intro.md` and `bin/greet`.\n\n## Acceptance criteria\n- both exist"
    world.openai.content = FakeOpenAI.code_reply(
        "Add a guide", [{"path": "docs/user guide/intro.md", "content": "# Intro\n"}, {"path": "bin/greet", "content": "echo hi\n"}]
    )
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.openai.generation_requests) == 1  # no repair asked for what the model already did
    branch = "ai/add-a-greeting-module"
    assert world.remote_file(branch, "docs/user guide/intro.md") == "# Intro\n"
    assert world.remote_file(branch, "bin/greet") == "echo hi\n"


def test_a_search_that_is_not_in_the_file_is_repaired_with_the_nearest_lines_only(world: World) -> None:
    readme = {"path": "README.md", "search": "A demo app with a greting module.", "replace": "A demo app that greets."}
    fixed = {**readme, "search": "A demo app with a greeting module."}
    padding = "x" * 50_000  # the first reply is long: the repair must not send it back
    world.openai.script(
        FakeOpenAI.completion(FakeOpenAI.code_reply(f"Greets. {padding}", [GREETING, readme])),
        FakeOpenAI.completion(FakeOpenAI.code_reply("Fix the README block", [fixed])),
    )
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "asking once for a repair" in result.stdout
    repair = world.openai.generation_requests[1].json["messages"]
    assert [message["role"] for message in repair] == ["system", "user", "user"]
    assert "README.md, block 2: its SEARCH lines are not in the file" in repair[-1]["content"]
    assert "3: A demo app with a greeting module." in repair[-1]["content"]  # the nearest line, numbered
    assert "kept; do not send them again: app/greeting.py" in repair[-1]["content"]
    assert padding not in repair[-1]["content"] and len(repair[-1]["content"]) < 5_000
    branch = "ai/add-a-greeting-module"
    assert world.remote_file(branch, "app/greeting.py") == GREETING["content"]
    assert world.remote_file(branch, "README.md") == "# Demo\n\nA demo app that greets.\n"
    assert "`README.md` (update)" in world.created_pulls()[0]["body"]


def test_a_reply_that_changes_nothing_opens_no_pull_request_and_counts_against_the_task(world: World) -> None:
    there = {"path": "README.md", "search": "# Demo", "replace": "# Demo!"}
    back = {"path": "README.md", "search": "# Demo!", "replace": "# Demo"}
    tick = {"path": "docs/TASKS.md", "content": "- [x] all\n"}
    world.openai.content = FakeOpenAI.code_reply("Nothing to do", [there, back, tick])
    result = world.run()

    assert result.returncode == 1
    assert "changes nothing" in result.stderr
    assert len(world.openai.generation_requests) == 2
    assert world.created_pulls() == [] and [b for b in world.remote_branches() if b.startswith("ai/")] == []
    ledger = world.ledger()
    assert ledger["runs"][0]["outcome"] == "failed:edits"
    assert ledger["health"]["parked"][next(iter(ledger["health"]["parked"]))]["failures"] == 1


def test_a_file_holding_a_secret_from_the_environment_is_refused_and_never_pushed(world: World) -> None:
    leak = {"path": "app/settings.py", "content": f"OPENAI_KEY = {world.env['OPENAI_API_KEY']!r}\n"}
    world.openai.content = FakeOpenAI.code_reply("Add a greeting module", [GREETING, leak])
    result = world.run()

    assert result.returncode == 0, result.stderr
    branch = "ai/add-a-greeting-module"
    assert world.remote_file(branch, "app/greeting.py") == GREETING["content"]
    assert world.remote_file(branch, "app/settings.py") is None
    [pull] = world.created_pulls()
    assert "app/settings.py: content holds a secret value from the environment" in pull["body"]
    assert world.env["OPENAI_API_KEY"] not in pull["body"] + result.stdout + result.stderr


def test_a_prompt_over_the_window_fails_over_to_the_larger_window_model(world: World) -> None:
    # Models that never retire, so the chain is the same under a clock faked months ahead.
    config = world.checkout / ".github" / "ai-orchestration.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("models:\n  code: gpt-6-luna\n  fallbacks:\n    code: [gpt-5.6-luna]\n")
    world.openai.script(FakeOpenAI.context_length_exceeded())
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "code: gpt-6-luna failed (context_length); falling back to gpt-5.6-luna" in result.stdout
    assert [r.json["model"] for r in world.openai.generation_requests] == ["gpt-6-luna", "gpt-5.6-luna"]
    [run] = world.ledger()["runs"]
    assert [call["outcome"] for call in run["calls"]] == ["ok", "context_length", "ok"]
    assert len(world.created_pulls()) == 1


def test_a_huge_file_is_sent_as_outline_and_windows_within_the_bound(world: World) -> None:
    functions = "".join(f"def helper_{n}(value):\n    return value + {n}\n\n\n" for n in range(6_000))
    (world.checkout / "app" / "big.py").write_text(functions)
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "big module", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)
    world.anthropic.text = "## Changes\nIn `app/big.py`, make `helper_4321` double the value.\n\n## Files\n- `app/big.py`\n"
    edit = {"path": "app/big.py", "search": "def helper_4321(value):\n    return value + 4321",
            "replace": "def helper_4321(value):\n    return value * 2"}
    world.openai.content = FakeOpenAI.code_reply("Doubles.", [edit])
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "sent in part: app/big.py" in result.stdout
    prompt = world.openai.generation_requests[0].json["messages"][1]["content"]
    assert len(prompt.encode()) // 3 <= 60_000 < len(functions.encode()) // 3
    assert "def helper_4321(value):" in prompt and "### app/big.py lines " in prompt
    changed = world.remote_file("ai/add-a-greeting-module", "app/big.py")
    assert changed == functions.replace("return value + 4321\n", "return value * 2\n")


def test_overloaded_and_rate_limited_calls_are_retried(world: World) -> None:
    world.anthropic.script(FakeAnthropic.overloaded())
    world.openai.script(FakeOpenAI.rate_limited())
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.anthropic.generation_requests) == 2
    assert len(world.openai.generation_requests) == 2
    assert len(world.created_pulls()) == 1


def test_bad_key_stops_at_once_naming_the_provider_and_records_the_run(world: World) -> None:
    world.anthropic.script(FakeAnthropic.authentication())
    result = world.run()

    assert result.returncode == 1
    assert "Anthropic" in result.stderr and "ANTHROPIC_API_KEY" in result.stderr
    assert world.env["ANTHROPIC_API_KEY"] not in result.stderr + result.stdout
    assert len(world.anthropic.generation_requests) == 1
    assert world.openai.requests == [] and world.created_pulls() == []
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:provider" and run["calls"][0]["outcome"] == "auth"


def test_missing_key_exits_1_naming_the_variable_before_any_call(world: World) -> None:
    env = {k: v for k, v in world.env.items() if k != "OPENAI_API_KEY"}
    result = world.run(env=env)

    assert result.returncode == 1
    assert "OPENAI_API_KEY" in result.stderr
    assert world.anthropic.requests == [] and world.github.requests == []


def test_all_missing_keys_are_named_at_once_with_how_to_set_them_here_and_in_actions(world: World) -> None:
    env = {k: v for k, v in world.env.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    result = world.run(env=env)

    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ANTHROPIC_API_KEY and OPENAI_API_KEY are not set.")
    assert "export ANTHROPIC_API_KEY=… OPENAI_API_KEY=…" in line and "repository secret" in line


@pytest.mark.parametrize("text", ["   ", "", "\t", "\u200b"])
def test_an_empty_task_is_refused_before_anything(world: World, text: str) -> None:
    result = world.run("--task", text)

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --task is empty: give the task's text, or leave --task out to take the next task from the tasks file"
    ]
    assert world.github.requests == [] and world.anthropic.requests == [] and world.openai.requests == []
    assert world.remote_branches() == ["main"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tasks: tasks.rename(tasks.with_name("tasks.md")), "docs/TASKS.md: tasks file not found in"),
        (lambda tasks: tasks.write_bytes(TASKS.encode("utf-16")), "docs/TASKS.md: the tasks file is UTF-16"),
        (lambda tasks: (tasks.unlink(), tasks.mkdir()), "docs/TASKS.md: is a directory"),
    ],
)
@pytest.mark.parametrize("dry", [False, True])
def test_a_broken_tasks_file_is_exit_2_naming_it(world: World, make, expected: str, dry: bool) -> None:
    tasks = world.checkout / "docs" / "TASKS.md"
    make(tasks)
    result = world.run(*(["--dry-run"] if dry else []))

    assert result.returncode == 2, result
    assert expected in result.stderr and "internal error" not in result.stderr
    assert "No task left" not in result.stdout
    if "not found" in expected:
        assert "did you mean docs/tasks.md?" in result.stderr
    assert world.anthropic.requests == [] and world.openai.requests == []


def test_no_origin_says_so_without_naming_internal_branches(world: World) -> None:
    git(world.checkout, "remote", "remove", "origin")
    result = world.run()

    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "has no 'origin' remote" in line and "git remote add origin" in line
    assert "ai-orchestration/ledger" not in line
    assert world.anthropic.requests == [] and world.github.requests == []


def test_a_github_error_is_one_line_without_pygithub_logging(world: World) -> None:
    from tests.fakes.github_server import FakeGitHub

    world.github.fail_next("POST", "/repos/*/pulls", FakeGitHub.actions_not_permitted())
    result = world.run()

    assert result.returncode == 1
    [line] = result.stderr.splitlines()  # PyGithub's own "Request POST … failed with 403" is not shown
    assert line.startswith("error: ") and "Allow GitHub Actions to create and approve pull requests" in line


def test_dry_run_needs_no_keys_no_network_and_writes_nothing(world: World) -> None:
    env = {k: v for k, v in world.env.items() if "KEY" not in k and "TOKEN" not in k}
    before = git(world.checkout, "status", "--porcelain")
    result = world.run("--dry-run", env=env)

    assert result.returncode == 0, result.stderr
    assert "Task: Add a greeting module" in result.stdout
    assert "Context:" in result.stdout and "Budget left" in result.stdout and "at most $" in result.stdout
    assert world.anthropic.requests == [] and world.openai.requests == [] and world.github.requests == []
    assert git(world.checkout, "status", "--porcelain") == before


def test_dry_run_lists_its_context_files_and_writes_the_job_summary(world: World) -> None:
    env = {k: v for k, v in world.env.items() if "KEY" not in k and "TOKEN" not in k}
    summary = world.tmp / "summary.md"
    result = world.run("--dry-run", env={**env, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    context = next(index for index, line in enumerate(lines) if line.startswith("Context: "))
    listed = re.findall(r"^  (\S+) \(\d[\d,]* tokens?\): ", "\n".join(lines[context + 1:]), re.MULTILINE)
    assert listed and all((world.checkout / path).is_file() for path in listed)
    assert lines[context].startswith(f"Context: {len(listed)} file{'' if len(listed) == 1 else 's'}, ")
    assert "  - [ ] Greet by name" in lines  # the task's sub-step
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("## ai-orchestration dry run") and "Task: Add a greeting module" in text
    assert all(path in text for path in listed)


def test_a_credential_in_a_file_or_the_task_never_reaches_a_model_and_the_dry_run_says_so(world: World) -> None:
    leaked = samples()
    settings = world.checkout / "app" / "settings.py"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(f"GREETING = 'Hello'\n{assignment('github-pat', leaked['github-pat'])}\n")
    git(world.checkout, "add", "app/settings.py")
    env = {k: v for k, v in world.env.items() if "KEY" not in k and "TOKEN" not in k}
    dry = world.run("--dry-run", "--task", "Use GREETING from app/settings.py", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "  secrets masked in app/settings.py (they look like: line 2: github-pat)" in dry.stdout.splitlines()
    assert leaked["github-pat"] not in dry.stdout

    tasks_file = world.checkout / "docs" / "TASKS.md"
    tasks_file.write_text(f"# Tasks\n- [ ] Add a greeting module; deploy with token {leaked['slack-bot-token']}\n")
    result = world.run()
    assert result.returncode == 0, result.stderr
    prompts = json.dumps([r.json for r in world.anthropic.generation_requests + world.openai.generation_requests])
    assert world.anthropic.generation_requests and world.openai.generation_requests
    assert all(secret not in prompts for secret in leaked.values())
    assert "[secret withheld: slack-bot-token]" in prompts and "GREETING = 'Hello'" in prompts
    assert "Withheld what looks like secrets in the task's text from the prompts (line 1: slack-bot-token)" in result.stdout


def test_invalid_config_exits_2_before_anything_is_called(world: World) -> None:
    config = world.checkout / ".github" / "ai-orchestration.yml"
    config.parent.mkdir()
    config.write_text("budget:\n  monthly_usd: -3\n")
    result = world.run()

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0].startswith("error: ") and "budget.monthly_usd" in result.stderr
    assert "Traceback" not in result.stderr
    assert world.github.requests == [] and world.anthropic.requests == []


def _ledger_month(self: World) -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")


World.ledger_month = _ledger_month  # type: ignore[attr-defined]


def test_given_task_with_an_open_pull_request_is_not_duplicated(world: World) -> None:
    from automation.repo.github import task_marker

    world.github.add_pull(title="Add a farewell function", head="ai/add-a-farewell-function",
                          body=task_marker("Add a farewell function"))
    result = world.run("--task", "Add a farewell function")

    assert result.returncode == 0, result.stderr
    assert "already has an open pull request" in result.stdout
    assert world.created_pulls() == [] and world.anthropic.requests == []


# --- the cheap decision of a scheduled run (`run --decide-only`, the workflow's first step) --------


def light_install(world: World) -> dict[str, str]:
    """The deciding step's environment: no model keys, and the provider SDKs not installed."""
    missing = world.tmp / "sdks-not-installed"
    for name in ("anthropic", "openai"):
        (missing / name).mkdir(parents=True, exist_ok=True)
        (missing / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed in the deciding step')\n")
    env = {k: v for k, v in world.env.items() if not k.endswith("_API_KEY")}
    return {**env, "PYTHONPATH": f"{missing}{os.pathsep}{ROOT}", "GITHUB_OUTPUT": str(world.tmp / "output")}


def shallow_checkout(world: World) -> None:
    """What `actions/checkout` with `fetch-depth: 1` leaves: one commit of history."""
    subprocess.run(["rm", "-rf", str(world.checkout)], check=True)
    git(world.tmp, "clone", "-q", "--depth", "1", f"file://{world.remote}", str(world.checkout), env=world.env)
    assert git(world.checkout, "rev-parse", "--is-shallow-repository").strip() == "true"


def test_decide_only_hands_a_run_with_work_over_and_a_shallow_checkout_then_does_it(world: World) -> None:
    shallow_checkout(world)
    decided = world.run("--decide-only", env=light_install(world))

    assert decided.returncode == 0, decided.stderr
    assert "Work to do: 'Add a greeting module'" in decided.stdout
    assert (world.tmp / "output").read_text() == "work=true\n"
    assert world.anthropic.requests == [] and world.openai.requests == [] and world.created_pulls() == []
    recorded = world.remote_file("main", "token_budget.json")  # nothing to record yet: no run (a
    assert recorded is None or json.loads(recorded)["runs"] == []  # retirement notice owed on some dates is kept)

    result = world.run()  # the full run, in the same shallow checkout
    assert result.returncode == 0, result.stderr
    [pull] = world.created_pulls()
    assert pull["title"] == "Add a greeting module"
    assert world.ledger()["prs_opened"] == 1


@pytest.mark.parametrize("stop", ["no_task", "pr_limit", "budget"])
def test_decide_only_ends_a_run_with_nothing_to_do_without_the_sdks(world: World, stop: str) -> None:
    if stop == "no_task":
        world.push_to_main("docs/TASKS.md", "# Tasks\n- [x] Done already\n", "all done")
    elif stop == "budget":
        world.push_to_main(".github/ai-orchestration.yml", "budget:\n  monthly_usd: 0.01\n", "tiny budget")
    else:
        for index in range(5):
            world.github.add_pull(title=f"Old {index}", head=f"ai/old-{index}", body="")
    shallow_checkout(world)
    result = world.run("--decide-only", env=light_install(world))

    assert result.returncode == 0, result.stderr
    assert (world.tmp / "output").read_text() == "work=false\n"
    assert {"no_task": "No task left", "pr_limit": "bot pull requests are open", "budget": "budget"}[stop] in result.stdout
    assert world.anthropic.requests == [] and world.openai.requests == [] and world.created_pulls() == []


def test_a_huge_model_summary_is_shortened_to_fit_githubs_body_limit(world: World) -> None:
    words = " ".join(["lorem"] * 14_000)  # about 84,000 characters of summary
    world.openai.content = FakeOpenAI.code_reply(f"Add a greeting module. {words}", [GREETING])
    result = world.run()

    assert result.returncode == 0, result.stderr
    [pull] = world.created_pulls()
    body = pull["body"]
    assert len(body.encode("utf-16-le")) // 2 <= 65_536
    assert body.startswith("> Add a greeting module. lorem") and "shortened here" in body
    assert "## Cost receipt" in body and "| **this run** |" in body and "Month to date" in body
    assert body.rstrip().endswith("-->") and "<!-- ai-orchestration:task=" in body
    assert "`app/greeting.py` (create)" in body
