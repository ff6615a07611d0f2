"""Runs that straddle a month boundary: real `run` processes against one bare remote.

Two November runs are held at their analysis call (the fake Anthropic waits on a gate) while a
December run rolls the ledger over, posts November's recap and commits; then the November runs
settle. Each process is the real CLI with its clock passed in (``main(now=...)``), so the test
means the same on any date.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tests import test_run
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, bot, git
from tests.test_run_alerts import field, publish, seeded_ledger

world = test_run.world


@pytest.fixture()
def discord(world: World, fake_discord: FakeDiscord) -> FakeDiscord:
    world.env.update(fake_discord.env())
    return fake_discord


def start(world: World, name: str, now: str, *arguments: str) -> subprocess.Popen[str]:
    """`run` from its own fresh clone (a separate Actions job), at ``now`` (UTC)."""
    checkout = world.tmp / name
    git(world.tmp, "clone", "-q", str(world.remote), str(checkout), env=world.env)
    return subprocess.Popen(
        [*bot(now), "run", "--repo", str(checkout), *arguments],
        cwd=world.tmp, env={**world.env, "GITHUB_RUN_ID": name}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout


def hold_november_analyses(world: World) -> tuple[threading.Event, list[object]]:
    """The fake Anthropic keeps every analysis of a November task waiting until the gate opens."""
    gate, held = threading.Event(), []
    original = world.anthropic.default_reply

    def reply(request):  # noqa: ANN001, ANN202
        if request.path == world.anthropic.generation_path and "November task" in json.dumps(request.json):
            held.append(request)
            gate.wait(timeout=120)
        return original(request)

    world.anthropic.default_reply = reply  # type: ignore[method-assign]
    return gate, held


def test_two_november_runs_settling_after_december_rolled_over_land_in_november(world: World, discord: FakeDiscord) -> None:
    publish(world, {"token_budget.json": seeded_ledger("2026-11", [1_000_000])})  # November so far: $1.00, 1 run, 1 PR
    gate, held = hold_november_analyses(world)
    late = [start(world, f"november-{n}", f"2026-11-30T23:5{n}:00+00:00", "--task", f"November task {n}") for n in (1, 2)]
    deadline = time.monotonic() + 60
    while len(held) < 2 and time.monotonic() < deadline:  # both reserved and waiting on their analysis
        time.sleep(0.05)
    assert len(held) == 2

    december = finish(start(world, "december-1", "2026-12-01T00:05:00+00:00", "--task", "December task"))
    assert "Ledger committed to main" in december
    [recap] = discord.embeds_titled("Monthly recap: 2026-11")
    assert "$1.00" in field(recap, "Spent") and field(recap, "Runs") == "1"  # posted before the late runs settled

    gate.set()
    for process in late:
        finish(process)

    ledger = json.loads(world.remote_file("main", "token_budget.json") or "{}")
    assert ledger["month"] == "2026-12"
    late_cost = sum(call[8] for run in ledger["closed_runs"] if run["task"].startswith("November task") for call in run["calls"])
    assert late_cost > 0
    [november] = [entry for entry in ledger["history"] if entry["month"] == "2026-11"]
    assert (november["spent_micro_usd"], november["executions"], november["prs_opened"]) == (1_000_000 + late_cost, 3, 3)
    assert sorted(run["task"] for run in ledger["closed_runs"]) == ["Earlier task 0", "November task 1", "November task 2"]
    assert [run["task"] for run in ledger["runs"]] == ["December task"]
    assert ledger.get("reservations", []) == []

    # the next run (no model call needed: the workflow's deciding step) corrects the recap
    finish(start(world, "december-2", "2026-12-01T03:00:00+00:00", "--decide-only"))
    [corrected] = discord.embeds_titled("Monthly recap: 2026-11 (corrected)")
    assert field(corrected, "Runs") == "3" and field(corrected, "PRs") == "3"
    spent = f"${(1_000_000 + late_cost) / 1e6:,.2f}"
    assert spent in field(corrected, "Spent")
    assert "said $1.00, 1 run and 1 PR: 2 runs of 2026-11 settled after it was posted" in corrected["description"]
    assert len(discord.embeds_titled("Monthly recap: 2026-11")) == 2  # the recap and its correction
    assert json.loads(world.remote_file("main", "token_budget.json") or "{}")["notified"]["recap_corrected"] is True
