"""`python -m automation run` against ledgers a user or an attacker can produce: odd paths,
symbolic links, incomplete or missing files, repeated run ids. The same world as
tests/test_run.py: real CLI subprocess, bare `origin`, loopback model and GitHub fakes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git
from tests.test_run_alerts import CONFIG, publish, seeded_ledger

world = test_run.world


def this_month(world: World) -> str:
    """The month the bot's own process sees (under faketime the test process may see another)."""
    code = "import datetime as d; print(d.datetime.now(d.timezone.utc).strftime('%Y-%m'))"
    return subprocess.run([sys.executable, "-c", code], env=world.env, capture_output=True, text=True,
                          check=True).stdout.strip()


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


def stopped_for_budget(world: World, result) -> None:  # noqa: ANN001
    assert result.returncode == 0, result.stderr
    assert "budget stop" in result.stdout
    assert model_requests(world) == 0 and world.created_pulls() == []


@pytest.mark.parametrize("target", ["nowhere/token_budget.json", "../outside.json"])
def test_a_ledger_that_is_a_symbolic_link_is_refused_before_any_call(world: World, target: str) -> None:
    (world.tmp / "outside.json").write_text(seeded_ledger(this_month(world), []))  # a $0 ledger outside the repository
    (world.checkout / "token_budget.json").symlink_to(target)

    result = world.run()

    assert result.returncode == 2
    assert result.stderr.startswith("error: token_budget.json: the ledger path is a symbolic link")
    assert model_requests(world) == 0 and world.github.requests == []
    assert (world.checkout / "token_budget.json").is_symlink()


def test_a_ledger_committed_as_a_symbolic_link_on_the_ledger_branch_is_refused(world: World) -> None:
    other = world.tmp / "linker"
    git(world.tmp, "clone", "-q", str(world.remote), str(other), env=world.env)
    git(other, "checkout", "-q", "-b", "ai-ledger", env=world.env)
    (other / "token_budget.json").symlink_to("/etc/hostname")
    git(other, "add", "token_budget.json", env=world.env)
    git(other, "commit", "-qm", "ledger as a link", env=world.env)
    git(other, "push", "-q", "origin", "ai-ledger", env=world.env)
    publish(world, {CONFIG: "ledger:\n  branch: ai-ledger\n"})

    result = world.run()

    assert result.returncode == 2
    assert "ai-ledger:token_budget.json: token_budget.json is a symbolic link (mode 120000)" in result.stderr
    assert model_requests(world) == 0


def test_a_ledger_deleted_from_the_default_branch_mid_month_keeps_the_months_spend(world: World) -> None:
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [14_990_000])})
    git(world.checkout, "rm", "-q", "token_budget.json", env=world.env)
    git(world.checkout, "commit", "-qm", "remove the ledger", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)

    result = world.run()

    stopped_for_budget(world, result)
    assert "token_budget.json is missing from main: read its last version from main (commit" in result.stdout
    assert "$14.99 spent" in result.stdout


def test_a_newly_set_ledger_branch_starts_from_the_spend_on_the_default_branch(world: World) -> None:
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [14_990_000]),
                    CONFIG: "ledger:\n  branch: ai-ledger\n"})

    result = world.run()

    stopped_for_budget(world, result)
    assert "token_budget.json is missing from ai-ledger: read it from main, " in result.stdout


def test_start_fresh_is_the_one_explicit_way_to_start_the_month_over(world: World) -> None:
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [14_990_000])})
    publish(world, {CONFIG: f"ledger:\n  start_fresh: '{this_month(world)}'\n"})
    git(world.checkout, "rm", "-q", "token_budget.json", env=world.env)
    git(world.checkout, "commit", "-qm", "start over", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert f"starting {this_month(world)} at $0 as ledger.start_fresh asks" in result.stdout
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "pr_opened"


def test_a_ledger_without_its_runs_is_refused_and_kept(world: World) -> None:
    damaged = json.loads(seeded_ledger(this_month(world), [5_000_000]))
    del damaged["runs"]
    publish(world, {"token_budget.json": json.dumps(damaged)})

    result = world.run()

    assert result.returncode == 2
    assert "token_budget.json: runs is missing" in result.stderr
    assert model_requests(world) == 0
    assert json.loads(world.remote_file("main", "token_budget.json")) == damaged


def test_the_bots_own_config_is_protected_in_whatever_spelling_it_was_given(world: World) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    custom = world.checkout / ".github" / "bot.yml"
    custom.parent.mkdir()
    custom.write_text("budget:\n  monthly_usd: 15\n")
    world.openai.content = FakeOpenAI.code_reply("raise the budget", [
        {"path": ".github/bot.yml", "action": "update", "content": "budget:\n  monthly_usd: 1500\n"}])

    result = world.run("--config", str(world.checkout / "." / ".github" / ".." / ".github" / "bot.yml"))

    assert result.returncode == 1
    assert ".github/bot.yml" in result.stderr + result.stdout and "configuration" in result.stderr + result.stdout
    assert world.created_pulls() == []


def test_a_link_committed_on_the_default_branch_after_the_checkout_is_refused_too(world: World) -> None:
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [])})  # the checkout holds a regular file
    other = world.tmp / "other"
    (other / "token_budget.json").unlink()
    (other / "token_budget.json").symlink_to("/etc/hostname")
    git(other, "add", "token_budget.json", env=world.env)
    git(other, "commit", "-qm", "ledger as a link", env=world.env)
    git(other, "push", "-q", "origin", "main", env=world.env)

    result = world.run()

    assert result.returncode == 2
    assert "main:token_budget.json: token_budget.json is a symbolic link (mode 120000)" in result.stderr
    assert model_requests(world) == 0


def spent_ledger(world: World) -> str:
    return seeded_ledger(this_month(world), [14_990_000])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda text: text.replace('  "runs": [', '  "runs": [],\n  "runs": ['), "the key 'runs' appears twice in one object"),
        (lambda text: text.replace(",14990000,", "," + "9" * 5_000 + ","), "holds a number thousands of digits long"),
        (lambda text: text.replace('"notified": {}', '"notified": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000),
         "nested too deeply to be a ledger"),
    ],
    ids=["runs-twice", "5000-digits", "deep-nesting"],
)
def test_a_damaged_ledger_stops_the_run_in_one_line_before_any_call(world: World, damage, expected: str) -> None:  # noqa: ANN001
    damaged = damage(spent_ledger(world))
    publish(world, {"token_budget.json": damaged})

    result = world.run()

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and model_requests(world) == 0
    assert world.remote_file("main", "token_budget.json") == damaged


def test_runs_removed_with_the_total_kept_still_count_and_the_run_says_so(world: World) -> None:
    damaged = json.loads(spent_ledger(world))
    damaged["runs"] = []  # a bad hand merge kept the total ($14.99) and lost the runs
    publish(world, {"token_budget.json": json.dumps(damaged)})

    result = world.run()

    stopped_for_budget(world, result)
    assert "warning: " in result.stdout and "spent_micro_usd says $14.99 but the runs add up to $0.00" in result.stdout
