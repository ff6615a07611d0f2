"""Checks before the pull request, end to end: the real ``python -m automation run`` in a
subprocess runs the repository's own tests (``verify.commands``) in the real sandbox, first on
the untouched tree and then on the edited one, against loopback model, GitHub and Discord fakes.

The repository under test has ``app/greeting.py`` and a unittest for it on its default branch;
the scripted code model breaks the test, repairs it, leaves it broken, hangs it, or writes a
test that hunts for the job's secrets. Assertions read what a user sees: the pull request
GitHub received (draft or not, its "Checks" section), the prompts the code model got, the
ledger, the Discord embed, the job summary, the log, and what is left running afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from automation.repo import sandbox
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git, world  # noqa: F401
from tests.test_run_followups import bot_comments, failing_log, tip

GREETING = 'def greet(name):\n    return f"Hello, {name}!"\n'
TEST = (
    "import unittest\n\nfrom app.greeting import greet\n\n\nclass GreetTest(unittest.TestCase):\n"
    "    def test_greet(self):\n        self.assertEqual(greet('Ada'), 'Hello, Ada!')\n"
)
OLD_FAILURE = "import unittest\n\n\nclass OldTest(unittest.TestCase):\n    def test_old(self):\n        self.assertEqual(1, 2)\n"
CHECK = f"{sys.executable} -m unittest"
PLAN = "## Changes\nChange `greet` in `app/greeting.py`.\n\n## Files\n- `app/greeting.py`\n\n## Acceptance criteria\n- tests pass"
BREAK = FakeOpenAI.code_reply("Add farewell; greet without a comma", [
    {"path": "app/greeting.py", "search": '    return f"Hello, {name}!"\n',
     "replace": '    return f"Hello {name}"\n\n\ndef farewell(name):\n    return f"Goodbye, {name}!"\n'},
])
FIXED = GREETING + '\n\ndef farewell(name):\n    return f"Goodbye, {name}!"\n'
MEND = FakeOpenAI.code_reply("Put the comma back", [
    {"path": "app/greeting.py", "search": '    return f"Hello {name}"\n', "replace": '    return f"Hello, {name}!"\n'},
])
ADD = FakeOpenAI.code_reply("Add a farewell module", [{"path": "app/farewell.py", "content": "def bye():\n    return 'Bye'\n"}])
BRANCH = "ai/add-a-greeting-module"

pytestmark = pytest.mark.skipif(
    not sandbox.find(os.environ, sandbox.hidden_paths(os.environ, Path.cwd()), uid=os.getuid(), gid=os.getgid()).isolated,
    reason="no sandbox on this machine (unshare with user namespaces, or passwordless sudo)",
)


def sync(world: World) -> None:
    """The checkout at the default branch's tip (the ledger a run left in it is on the branch too)."""
    git(world.checkout, "fetch", "-q", "origin", env=world.env)
    git(world.checkout, "reset", "-q", "--hard", "origin/main", env=world.env)


def configure(world: World, verify: dict, files: dict[str, str] | None = None) -> None:
    """The default branch gets the bot's config with ``verify`` and the project's files; the checkout pulls them."""
    config = json.dumps({"verify": {"commands": [CHECK], "timeout_seconds": 60, **verify}})  # JSON is YAML
    for path, content in {".github/ai-orchestration.yml": config, "app/greeting.py": GREETING, "tests/__init__.py": "",
                          "tests/test_greeting.py": TEST, **(files or {})}.items():
        world.push_to_main(path, content, f"add {path}")
    sync(world)
    world.anthropic.text = PLAN


def code_replies(world: World, *texts: str) -> None:
    world.openai.script(*(FakeOpenAI.completion(text) for text in texts))


def secrets(world: World) -> list[str]:
    return [world.env[name] for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "DISCORD_WEBHOOK_URL")
            if name in world.env]


def test_a_reply_that_breaks_a_test_is_repaired_from_the_failing_assertion_and_the_pr_shows_the_check_passed(world: World) -> None:
    configure(world, {})
    code_replies(world, BREAK, MEND)

    result = world.run()

    assert result.returncode == 0, result.stderr
    print(result.stdout)  # the user's log, shown in the report
    assert f"checks (untouched tree): `{CHECK}` passed" in result.stdout
    assert f"checks (edited tree): `{CHECK}` failed (exit code 1)" in result.stdout
    assert f"checks (edited tree after repair 1): `{CHECK}` passed" in result.stdout
    [first, repair] = world.openai.generation_requests
    asked = repair.json["messages"][-1]["content"]
    assert "AssertionError: 'Hello Ada' != 'Hello, Ada!'" in asked  # the failing assertion reached the code model
    assert "FAIL: test_greet (tests.test_greeting.GreetTest" in asked
    assert '+    return f"Hello {name}"' in asked  # the edit so far, as a diff; not the whole first reply
    assert BREAK not in json.dumps(repair.json)
    assert world.remote_file(BRANCH, "app/greeting.py") == FIXED
    [pull] = world.created_pulls()
    assert pull["draft"] is False
    assert "## Checks" in pull["body"] and f"| `{CHECK}` | ✅ passed |" in pull["body"]
    assert "**passed**, after 1 repair" in pull["body"]
    [run] = world.ledger()["runs"]
    assert run["checks"]["result"] == "passed" and run["checks"]["repairs"] == 1
    assert [call["step"] for call in run["calls"]] == ["analysis", "code", "code"]  # the repair was booked


def test_a_failure_that_persists_opens_a_draft_with_the_failure_in_body_summary_and_discord(
    world: World, fake_discord: FakeDiscord,
) -> None:
    configure(world, {})
    code_replies(world, BREAK, MEND.replace('"Hello, {name}!"', '"Hello {name}."'))
    summary = world.tmp / "summary.md"
    env = {**world.env, **fake_discord.env(), "GITHUB_STEP_SUMMARY": str(summary)}

    result = world.run(env=env)

    assert result.returncode == 0, result.stderr
    [pull] = world.created_pulls()
    assert pull["draft"] is True
    body = pull["body"]
    assert f"| `{CHECK}` | ❌ failed |" in body and "**failed**, after 1 repair" in body
    assert "<details><summary>Why <code>" in body and "AssertionError: 'Hello Ada.' != 'Hello, Ada!'" in body
    assert "### Checks" in summary.read_text() and "❌ failed" in summary.read_text()
    [embed] = fake_discord.embeds_titled("Run completed")
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Checks"] == f"❌ failed: `{CHECK}` (after 1 repair)"
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "pr_opened" and run["checks"]["result"] == "failed"
    status = subprocess.run([sys.executable, "-m", "automation", "status", "--json", "--repo", str(world.checkout)],
                            env=world.env, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["checks"] == {"runs": 1, "passed": 0, "failed": 1, "repairs": 1,
                                                  "pull_requests_passed": 0, "pull_requests_failed": 1}


def test_with_on_failure_skip_a_persisting_failure_opens_no_pull_request_and_counts_toward_parking(world: World) -> None:
    configure(world, {"on_failure": "skip", "max_repairs": 0})
    code_replies(world, BREAK)

    result = world.run()

    assert result.returncode == 1
    assert "the checks still fail after 0 repairs (verify.on_failure is 'skip', so no pull request)" in result.stderr
    assert "FAIL: test_greet" in result.stderr
    assert world.created_pulls() == [] and BRANCH not in world.remote_branches()
    ledger = world.ledger()
    [run] = ledger["runs"]
    assert run["outcome"] == "failed:checks" and run["checks"]["result"] == "failed"
    [parked] = ledger["health"]["parked"].values()
    assert parked["failures"] == 1


def test_a_failure_the_untouched_tree_already_has_is_reported_not_blamed_nor_sent_for_repair(world: World) -> None:
    configure(world, {}, {"tests/test_old.py": OLD_FAILURE})
    code_replies(world, ADD)

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert f"checks: `{CHECK}` already fails on the untouched tree (1 failure); that is not blamed on the edit" in result.stdout
    assert len(world.openai.generation_requests) == 1  # no repair request
    [pull] = world.created_pulls()
    assert pull["draft"] is False and "⚠️ pre-existing: fails on the untouched tree too" in pull["body"]
    assert "**passed**" in pull["body"] and "<details>" not in pull["body"]
    [run] = world.ledger()["runs"]
    assert run["checks"]["result"] == "passed"
    assert run["checks"]["failing_on_base"] == {CHECK: ["FAIL: test_old (tests.test_old.OldTest.test_old)"]}


def test_a_model_written_test_finds_no_secret_no_credential_and_no_network_and_no_secret_leaks_anywhere(
    world: World, fake_discord: FakeDiscord,
) -> None:
    world.env.update(fake_discord.env())
    configure(world, {})
    # actions/checkout keeps the push token in the checkout's git config
    git(world.checkout, "config", "http.https://github.example/.extraheader", f"AUTHORIZATION: basic {world.env['GITHUB_TOKEN']}")
    # reversed, and without their variables' names, so the edit checks' secret scan lets the probe through
    hunted = [world.env[name][::-1] for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "DISCORD_WEBHOOK_URL")]
    probe = f'''import glob, os, socket, unittest

HUNTED = [value[::-1] for value in {hunted!r}]


class Probe(unittest.TestCase):
    def test_probe(self):
        places = {{"environment": repr(dict(os.environ))}}
        for path in (".git/config", {str(world.checkout / ".git" / "config")!r}, os.path.expanduser("~/.gitconfig")):
            try:
                places[path] = open(path, errors="replace").read()
            except OSError:
                pass
        environs = glob.glob("/proc/[0-9]*/environ")
        for path in environs:
            try:
                places[path] = open(path, "rb").read().decode("utf-8", "replace")
            except OSError:
                pass
        found = sorted({{index for index, value in enumerate(HUNTED) for text in places.values() if value in text}})
        header = any("extraheader" in text for text in places.values())
        try:
            with socket.create_connection(("127.0.0.1", {world.github.port}), timeout=3) as connection:
                connection.sendall(b"GET /exfiltrate HTTP/1.0\\r\\n\\r\\n")
            network = "open"
        except OSError as error:
            network = "blocked " + type(error).__name__
        try:
            with open({str(world.checkout / "README.md")!r}, "a") as readme:
                readme.write("tampered")
            checkout = "written"
        except OSError as error:
            checkout = "refused " + type(error).__name__
        self.fail(f"PROBE found={{found}} extraheader={{header}} network={{network}} checkout={{checkout}} "
                  f"processes={{len(environs)}} read={{len(places)}}")
'''
    readme = (world.checkout / "README.md").read_text()
    code_replies(world, FakeOpenAI.code_reply("Probe the sandbox", [{"path": "tests/test_probe.py", "content": probe},
                                                                     {"path": "app/farewell.py", "content": "BYE = 'Bye'\n"}]),
                 FakeOpenAI.code_reply("Drop the probe", [{"path": "tests/test_probe.py", "delete": "yes"}]))

    result = world.run()

    assert result.returncode == 0, result.stderr
    asked = world.openai.generation_requests[1].json["messages"][-1]["content"]
    assert "PROBE found=[] extraheader=False network=blocked" in asked
    assert "checkout=refused" in asked  # hidden here (under /tmp); read-only elsewhere (tests/test_sandbox.py)
    processes = int(asked.split("processes=")[1].split()[0])
    assert 1 <= processes <= 3  # its own PID namespace: the sandbox's first process and the test's
    assert not [r for r in world.github.requests if "exfiltrate" in r.path]
    assert (world.checkout / "README.md").read_text() == readme
    [pull] = world.created_pulls()
    assert f"| `{CHECK}` | ✅ passed |" in pull["body"]
    everything = [result.stdout, result.stderr, json.dumps(world.ledger()), json.dumps([r.json for r in world.github.requests]),
                  json.dumps(fake_discord.embeds), json.dumps([r.json for r in world.openai.requests]),
                  json.dumps([r.json for r in world.anthropic.requests])]
    for secret in secrets(world):
        assert not [text for text in everything if secret in text]


def test_the_timeout_kills_a_hanging_test_and_everything_it_started(world: World) -> None:
    marker = f"hang-{uuid.uuid4().hex}"
    configure(world, {"timeout_seconds": 4, "max_repairs": 0})
    hang = (
        "import subprocess, sys, time, unittest\n\n\nclass Hang(unittest.TestCase):\n    def test_hang(self):\n"
        f"        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', {marker!r}], start_new_session=True)\n"
        "        time.sleep(600)\n"
    )
    code_replies(world, FakeOpenAI.code_reply("A slow test", [{"path": "tests/test_hang.py", "content": hang}]))

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert f"checks (edited tree): `{CHECK}` timed out" in result.stdout
    [pull] = world.created_pulls()
    assert pull["draft"] is True and "killed after 4s: the time allowed ran out" in pull["body"]
    left = [path for path in Path("/proc").glob("[0-9]*/cmdline") if marker.encode() in _read(path)]
    assert left == []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_with_no_sandbox_a_required_one_stops_before_any_model_call_and_best_effort_runs_without(world: World) -> None:
    configure(world, {})
    tools = world.tmp / "bin"  # git, but no unshare and no sudo
    tools.mkdir()
    (tools / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {**world.env, "PATH": str(tools)}

    result = world.run(env=env)

    assert result.returncode == 1
    assert "verify.sandbox is 'required' but no sandbox can be had here: unshare (util-linux) is not on PATH" in result.stderr
    assert world.anthropic.requests == [] and world.openai.requests == [] and world.created_pulls() == []

    world.push_to_main(".github/ai-orchestration.yml",
                       json.dumps({"verify": {"commands": [CHECK], "sandbox": "best_effort"}}), "best effort")
    sync(world)
    code_replies(world, ADD)
    result = world.run(env=env)

    assert result.returncode == 0, result.stderr
    assert "warning: the checks run without a sandbox (verify.sandbox is best_effort)" in result.stdout
    [pull] = world.created_pulls()
    assert "**without a sandbox** (verify.sandbox is best_effort)" in pull["body"] and "✅ passed" in pull["body"]


def test_a_follow_up_checks_its_fix_before_pushing_reusing_the_untouched_trees_results(world: World) -> None:
    configure(world, {}, {"tests/test_old.py": OLD_FAILURE})
    code_replies(world, ADD)
    assert world.run().returncode == 0
    world.github.follow_remote(world.remote, world.env)
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log("x"))
    world.anthropic.text = "## Changes\nFix `app/farewell.py`.\n\n## Files\n- `app/farewell.py`\n"
    code_replies(world, FakeOpenAI.code_reply("Say goodbye in full", [
        {"path": "app/farewell.py", "search": "    return 'Bye'\n", "replace": "    return 'Goodbye'\n"}]))

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "reusing what it found" in result.stdout and "checks (untouched tree)" not in result.stdout
    assert f"checks (edited tree): `{CHECK}` failed (exit code 1)" in result.stdout  # test_old, as before
    assert world.remote_file(BRANCH, "app/farewell.py") == "def bye():\n    return 'Goodbye'\n"
    [reply] = bot_comments(world)
    assert "### Checks" in reply and "⚠️ pre-existing" in reply and "**passed**" in reply
    follow_up = [run for run in world.ledger()["runs"] if run.get("kind") == "follow_up"]
    assert follow_up[0]["checks"]["result"] == "passed"


def test_the_dry_run_suggests_checks_then_shows_the_ones_set_and_the_sandbox(world: World) -> None:
    world.push_to_main("tests/test_first.py", OLD_FAILURE, "a test")
    sync(world)

    unset = world.run("--dry-run")

    assert unset.returncode == 0, unset.stderr
    assert "Checks: none (verify.commands is empty), so pull requests open with code nobody ran." in unset.stdout
    assert '"python -m unittest discover -s tests"' in unset.stdout and "verify: {commands: [" in unset.stdout

    configure(world, {})
    configured = world.run("--dry-run")

    assert f"Checks before the pull request: `{CHECK}`" in configured.stdout
    assert "sandbox: user namespaces" in configured.stdout or "sandbox: sudo unshare" in configured.stdout
    assert world.anthropic.requests == [] and world.openai.requests == []
