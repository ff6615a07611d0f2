"""What the models are sent of the repository, end to end: the real CLI against the loopback fakes.

Only tracked files, never a secret-like file, and never a secret value from the environment,
even when a tracked source file holds one; the dry run lists each file it would send and why.
"""

from __future__ import annotations

import re

from automation.repo import localise
from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git

world = test_run.world  # the fixture of tests/test_run.py: checkout, bare origin, model and GitHub fakes


def _commit(world: World, files: dict[str, str]) -> None:
    for path, content in files.items():
        target = world.checkout / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    git(world.checkout, "add", *files, env=world.env)
    git(world.checkout, "commit", "-qm", "more files", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)


def test_a_tracked_file_holding_a_key_reaches_neither_model_and_untracked_files_stay_home(world: World) -> None:
    openai_key, anthropic_key = world.env["OPENAI_API_KEY"], world.env["ANTHROPIC_API_KEY"]
    _commit(world, {
        "app/settings.py": f"OPENAI = '{openai_key}'\nANTHROPIC = '{anthropic_key}'\nGREETING = 'hello'\n",
        "deploy/prod.env": "DATABASE_URL=postgres://user:tracked-env-secret@db/app\n",
    })
    (world.checkout / "gha-creds-4f2a.json").write_text('{"private_key": "untracked-gcp-secret"}')
    (world.checkout / "app" / "scratch.py").write_text("NOTE = 'untracked-scratch-secret'\n")
    world.anthropic.text = "## Changes\nRead `app/settings.py`, add `app/greeting.py`.\n\n## Files\n- `app/settings.py`\n- `app/greeting.py`"

    result = world.run()

    assert result.returncode == 0, result.stderr
    sent = [request.raw.decode("utf-8") for request in world.anthropic.requests + world.openai.requests]
    assert any("app/settings.py" in body and "GREETING = 'hello'" in body for body in sent)  # the file itself was sent
    assert any("app/settings.py" in body for body in (r.raw.decode() for r in world.openai.requests))
    for body in sent:
        for secret in (openai_key, anthropic_key, "tracked-env-secret", "untracked-gcp-secret", "untracked-scratch-secret"):
            assert secret not in body
        assert "gha-creds-4f2a.json" not in body and "app/scratch.py" not in body


def test_dry_run_lists_each_file_it_would_send_and_why(world: World) -> None:
    _commit(world, {
        "app/greeting.py": "def greet(name):\n    return name\n",
        "app/farewell.py": "def farewell(name):\n    return name\n",
        "tests/test_greeting.py": "from app.greeting import greet\n",
        ".github/ai-orchestration.yml": "context:\n  exclude: ['app/farewell.py']\n",
    })
    result = world.run("--dry-run", "--task", "Make greet() in app/greeting.py shout the name")

    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"^  (\S+) \(\d[\d,]* tokens?\): (.+)$", result.stdout, re.MULTILINE))
    assert listed["app/greeting.py"] == "named in the task"
    assert next(iter(listed)) == "app/greeting.py"
    assert "app/farewell.py" not in listed and "tests/test_greeting.py" in listed  # context.exclude: never sent
    assert "  not sent (secret-like, excluded, binary or over 200 KB): app/farewell.py\n" in result.stdout


def _large_repository(world: World, config: str = "context:\n  max_tokens: 1500\n") -> None:
    """Enough modules for the localisation call (localise.MIN_FILES), a small cap, and one module
    the task shares no word with: only the call can put it in the context."""
    files = {f"lib/part{index:03d}.py": f"def part_{index}(value):\n    return value + {index}\n" for index in range(localise.MIN_FILES)}
    files["lib/salutations.py"] = "def salute(person):\n    return 'Good day, ' + person  # SALUTE-BODY\n"
    files[".github/ai-orchestration.yml"] = config
    _commit(world, files)


def test_on_a_large_repository_a_localisation_call_puts_its_files_first_and_is_booked(world: World) -> None:
    _large_repository(world)
    world.openai.contents.append('```json\n{"files": ["lib/salutations.py", "../../etc/passwd"], '
                                 '"symbols": [["lib/salutations.py", "salute"]]}\n```')

    result = world.run()

    assert result.returncode == 0, result.stderr
    localise_request, code_request = (request.json for request in world.openai.generation_requests[:2])
    assert localise_request["messages"][0]["content"] == localise.SYSTEM
    assert localise_request["messages"][1]["content"].startswith("# Task\nAdd a greeting module")
    assert "lib/part007.py" in localise_request["messages"][1]["content"]  # the map
    assert localise_request["model"] == code_request["model"]  # the code model (gpt-4o-mini, or its successor once it retires)
    analysis = world.anthropic.generation_requests[0].json["messages"][0]["content"]
    assert "SALUTE-BODY" in analysis  # the located module, sent though the task shares no word with it
    assert ("localise: 1 file (lib/salutations.py) and 1 function (salute) named; "
            "1 of the reply's entries named no path the prompt offered") in result.stdout
    [run] = world.ledger()["runs"]
    assert [call["step"] for call in run["calls"]] == ["localise", "analysis", "code"]
    assert run["calls"][0]["model"] == run["calls"][2]["model"] and all(call["cost_micro_usd"] > 0 for call in run["calls"])
    [pull] = world.created_pulls()
    assert f"| localise | `{run['calls'][0]['model']}` |" in pull["body"]  # the receipt
    assert "<<<<<<< SEARCH" in code_request["messages"][0]["content"]

    dry = world.run("--dry-run")  # no call: it says a run would make one
    assert f"Localisation: a run first asks {code_request['model']} (" in dry.stdout
    assert len(world.openai.generation_requests) == 2


def test_an_unusable_localisation_reply_is_booked_and_the_run_goes_on_without_it(world: World) -> None:
    _large_repository(world)
    world.openai.contents.append("I am not sure which files; perhaps the greeting ones?")

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "localise: 0 files and 0 functions named; the reply held no JSON object" in result.stdout
    assert "SALUTE-BODY" not in world.anthropic.generation_requests[0].json["messages"][0]["content"]
    [run] = world.ledger()["runs"]
    assert [call["step"] for call in run["calls"]] == ["localise", "analysis", "code"] and run["outcome"] == "pr_opened"


def test_with_context_localise_off_no_call_is_made(world: World) -> None:
    _large_repository(world, "context:\n  max_tokens: 1500\n  localise: false\n")

    result = world.run()

    assert result.returncode == 0, result.stderr
    [run] = world.ledger()["runs"]
    assert [call["step"] for call in run["calls"]] == ["analysis", "code"]
    assert "Localisation: off (context.localise)" in world.run("--dry-run").stdout
