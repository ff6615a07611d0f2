"""What the models are sent of the repository, end to end: the real CLI against the loopback fakes.

Only tracked files, never a secret-like file, and never a secret value from the environment,
even when a tracked source file holds one; the dry run lists each file it would send and why.
"""

from __future__ import annotations

import re

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
