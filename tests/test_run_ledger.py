"""`python -m automation run` against ledgers a user or an attacker can produce: odd paths,
symbolic links, incomplete or missing files, repeated run ids. The same world as
tests/test_run.py: real CLI subprocess, bare `origin`, loopback model and GitHub fakes."""

from __future__ import annotations

import json

from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git
from tests.test_run_alerts import CONFIG, fresh_checkout, next_run, publish

world = test_run.world


def model_requests(world: World) -> int:
    return len(world.anthropic.generation_requests) + len(world.openai.generation_requests)


def test_a_dot_slash_ledger_path_is_committed_where_git_and_every_later_run_find_it(world: World) -> None:
    publish(world, {CONFIG: "ledger:\n  path: ./token_budget.json\ntasks:\n  file: ./docs/TASKS.md\n"})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "Ledger committed to main" in result.stdout
    [run] = world.ledger()["runs"]  # on main at token_budget.json, where `git show` and the next run read it
    assert run["outcome"] == "pr_opened"
    assert "- [x] Add a greeting module" in world.remote_file("ai/add-a-greeting-module", "docs/TASKS.md")
