"""`python -m automation run` on a developer's machine: the checkout stays pullable.

The run commits the ledger to the remote with git plumbing; the copy it kept in the working
tree while it paid for calls must not then make `git pull` abort ("untracked working tree files
would be overwritten", or "your local changes would be overwritten"). The same world as
tests/test_run.py: real CLI subprocess, bare `origin`, loopback model and GitHub fakes; no
GITHUB_ACTIONS in the environment, as on a laptop.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.test_run_alerts import CONFIG, discord, publish, seeded_ledger  # noqa: F401
from tests.test_run_ledger import this_month

world = test_run.world
LEDGER = "token_budget.json"


def pull(world: World) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "pull", "--ff-only"], cwd=world.checkout, env=world.env, capture_output=True, text=True)


def status(world: World) -> str:
    return git(world.checkout, "status", "--porcelain", "--untracked-files=all")


@pytest.mark.parametrize("ledger_on_main", [False, True], ids=["first-run", "tracked-ledger"])
def test_a_local_run_leaves_the_checkout_pullable(world: World, ledger_on_main: bool) -> None:
    if ledger_on_main:
        publish(world, {LEDGER: seeded_ledger(this_month(world), [1_000_000])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "Ledger committed to main" in result.stdout
    assert f"{LEDGER} in this checkout is left as it was: `git pull` brings the committed one" in result.stdout
    assert status(world) == "", "no untracked or changed ledger left behind"
    shown = subprocess.run([sys.executable, "-m", "automation", "status", "--json", "--repo", str(world.checkout)],
                           cwd=world.tmp, env=world.env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and json.loads(shown.stdout)["prs_opened"] >= 1, "status shows the run before a pull"
    pulled = pull(world)
    assert pulled.returncode == 0, pulled.stderr
    committed = json.loads((world.checkout / LEDGER).read_text(encoding="utf-8"))
    assert [run["outcome"] for run in committed["runs"]][-1] == "pr_opened"


def test_a_second_local_run_without_a_pull_knows_what_the_first_committed(world: World, discord: FakeDiscord) -> None:
    """The checkout's copy is put back as HEAD has it, so the next run also reads the remote's
    ledger: an alert the first run posted is not posted again."""
    publish(world, {
        CONFIG: "budget:\n  monthly_usd: 1\n  milestones_usd: [0.5, 1]\n",
        LEDGER: seeded_ledger(this_month(world), [600_000, 390_000], budget_usd=1, milestones_usd=(0.5,)),
    })
    first = world.run()
    assert first.returncode == 0 and "budget stop" in first.stdout, first.stderr
    assert len(discord.embeds_titled("Budget exhausted")) == 1
    assert status(world) == ""

    second = world.run(env={**world.env, "GITHUB_RUN_ID": "4243"})  # no `git pull` in between

    assert second.returncode == 0 and "budget stop" in second.stdout, second.stderr
    assert len(discord.embeds_titled("Budget exhausted")) == 1, "said once, though this checkout never pulled the flag"
