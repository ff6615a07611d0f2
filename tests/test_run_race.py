"""Overlapping runs: several real `python -m automation run` processes racing against one bare
remote (each in its own checkout, as separate Actions jobs are), one fake GitHub and the model
fakes. What the providers billed is counted at the fakes, so a lost ledger entry cannot hide an
overshoot; the ledger on the branch must then hold every call.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import subprocess
import sys
import threading

from automation.core.prices import format_usd
from automation.money.ledger import Reservation
from tests import test_run
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import FakeModelServer, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.spending import (
    ANALYSIS_COST, BUDGET, CODE_COST, LONG_AGO, PINNED_MODELS, bill_near_the_worst_case, billed, expire_reservations,
    finish, hold, race, recorded, start,
)
from tests.test_run import World, git, wait_for
from tests.test_run_alerts import CONFIG, field, publish, seeded_ledger
from tests.test_run_ledger import this_month

world = test_run.world
RACERS = 3
def test_racing_runs_on_different_tasks_never_spend_past_the_cap(world: World) -> None:
    room = ANALYSIS_COST + CODE_COST + 7_000  # one run fits, two would pass the cap by about $0.165
    seeded = BUDGET - room
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [seeded]), CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)

    results = race(world, [["--task", f"Add helper number {index}"] for index in range(RACERS)])

    assert all(result.returncode == 0 for result in results), [result.stderr for result in results]
    assert seeded + billed(world) <= BUDGET
    assert len(world.created_pulls()) == 1  # the one run that fitted
    assert sum("budget stop" in result.stdout for result in results) == RACERS - 1
    ledger = world.ledger()
    assert recorded(world) == seeded + billed(world)  # every billed call is in the ledger
    assert ledger.get("reservations", []) == []  # all settled
    paid = [run for run in ledger["runs"] if run["calls"] and not run["id"].startswith("seed-")]
    assert len(paid) == 1 and paid[0]["outcome"] == "pr_opened"


def test_racing_runs_on_the_same_task_open_one_pull_request(world: World) -> None:
    publish(world, {CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)
    results = race(world, [[] for _ in range(RACERS)])

    assert all(result.returncode == 0 for result in results), [result.stderr for result in results]
    titles = collections.Counter(pull["title"] for pull in world.created_pulls())
    assert titles and max(titles.values()) == 1, titles  # no task got two pull requests
    assert titles["Add a greeting module"] == 1
    ledger = world.ledger()
    ids = [run["id"] for run in ledger["runs"]]
    assert len(ids) == len(set(ids)) == len(titles)  # same GITHUB_RUN_ID, same second: still one id each
    assert recorded(world) == billed(world) and ledger.get("reservations", []) == []




def bot_time(world: World, minutes_from_now: float) -> str:
    """A UTC time as the bot's own process sees it (under faketime the test process may see another)."""
    code = ("import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(minutes=%r))"
            ".strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ'))" % minutes_from_now)
    return subprocess.run([sys.executable, "-c", code], env=world.env, capture_output=True, text=True,
                          check=True).stdout.strip()


def ledger_with(world: World, reservations: list[Reservation]) -> str:
    data = json.loads(seeded_ledger(this_month(world), []))
    data["reservations"] = [r.to_json() for r in reservations]
    return json.dumps(data)


def test_another_runs_live_reservation_counts_as_spent(world: World) -> None:
    held = Reservation("crashed-run", "Another task", BUDGET - 10_000, bot_time(world, 30))
    publish(world, {"token_budget.json": ledger_with(world, [held])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "budget stop" in result.stdout
    assert world.anthropic.requests == [] and world.openai.requests == []
    assert [r["run_id"] for r in world.ledger()["reservations"]] == ["crashed-run"]


def test_a_crashed_runs_reservation_expires_and_cannot_block_the_month(world: World) -> None:
    publish(world, {"token_budget.json": ledger_with(world, [Reservation("crashed-run", "Another task", BUDGET, LONG_AGO)])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.created_pulls()) == 1
    ledger = world.ledger()
    assert ledger.get("reservations", []) == []  # the expired one is dropped, ours settled
    assert [run["outcome"] for run in ledger["runs"]] == ["pr_opened"]


def test_a_run_claiming_a_task_another_run_holds_stops_before_spending(world: World) -> None:
    held = Reservation("other-run", "Add a greeting module", 200_000, bot_time(world, 30))
    publish(world, {"token_budget.json": ledger_with(world, [held])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "run other-run is already working on 'Add a greeting module'" in result.stdout
    assert world.anthropic.requests == [] and world.created_pulls() == []


def test_the_reservation_is_on_the_branch_before_the_first_paid_call(world: World) -> None:
    """The fake Anthropic reads the remote at the moment it is asked to generate."""
    seen: list[dict] = []
    original = world.anthropic.default_reply

    def reply(request):  # noqa: ANN001, ANN202
        if request.path == world.anthropic.generation_path and not seen:
            seen.append(json.loads(world.remote_file("main", "token_budget.json") or "{}"))
        return original(request)

    world.anthropic.default_reply = reply  # type: ignore[method-assign]
    result = world.run()

    assert result.returncode == 0, result.stderr
    [held] = seen[0]["reservations"]
    assert held["task"] == "Add a greeting module" and held["micro_usd"] > 0
    assert world.ledger().get("reservations", []) == []


# --- runs that outlive their reservation, a branch rewritten under a run, figures after a merge -------


def test_racers_after_a_run_that_outlived_its_reservation_still_count_what_it_spent(world: World) -> None:
    room = ANALYSIS_COST + CODE_COST + 70_000  # one run fits, not two
    seeded = BUDGET - room
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [seeded]), CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)
    release = threading.Event()
    hold(world.openai, 1, release)  # the slow run's code request: a provider taking its time
    slow = start(world, "slow", "--task", "Add a slow helper")
    wait_for(lambda: len(world.openai.generation_requests) == 1, "the slow run's code request")
    expire_reservations(world)  # its reservation ends while the call still runs

    results = race(world, [["--task", f"Add helper number {index}"] for index in range(5)])
    release.set()
    late = finish(slow)

    assert late.returncode == 0 and all(result.returncode == 0 for result in results), [late.stderr] + [r.stderr for r in results]
    assert all("budget stop" in result.stdout for result in results)
    assert seeded + billed(world) <= BUDGET  # five racers after the slow run: no overshoot
    assert recorded(world) == seeded + billed(world) and world.ledger().get("reservations", []) == []
    assert [pull["title"] for pull in world.created_pulls()] == ["Add a slow helper"]


def test_a_ledger_branch_rewritten_under_a_live_run_is_recorded_with_a_warning(world: World) -> None:
    publish(world, {CONFIG: PINNED_MODELS})
    before = git(world.remote, "rev-parse", "main", env=world.env).strip()
    analysed, coded = threading.Event(), threading.Event()
    hold(world.anthropic, 1, analysed)
    hold(world.openai, 2, coded)
    live = start(world, "live", "--task", "Add a live helper")
    wait_for(lambda: len(world.anthropic.generation_requests) == 1, "the live run's analysis")
    quick = world.run("--task", "Add a quick helper")  # settles while the live run works
    analysed.set()
    wait_for(lambda: len(world.openai.generation_requests) == 2, "the live run's code request")
    git(world.remote, "update-ref", "refs/heads/main", before, env=world.env)  # someone force-pushes main back

    coded.set()
    result = finish(live)

    assert quick.returncode == 0 and result.returncode == 0, quick.stderr + result.stderr
    assert "warning: main was rewritten while this run was working" in result.stdout
    runs = {run["task"]: run for run in world.ledger()["runs"]}
    assert runs["Add a quick helper"]["outcome"] == "pr_opened"  # the run the rewrite dropped is recorded again
    assert runs["Add a live helper"]["outcome"] == "pr_opened" and len(runs["Add a live helper"]["calls"]) == 2
    assert recorded(world) == sum(call["cost_micro_usd"] for run in runs.values() for call in run["calls"])


def test_the_receipt_and_discord_show_the_month_as_committed_after_an_overlapping_run(
    world: World, fake_discord: FakeDiscord
) -> None:
    world.env.update(fake_discord.env())
    publish(world, {CONFIG: PINNED_MODELS})
    analysed = threading.Event()
    hold(world.anthropic, 1, analysed)
    first = start(world, "first", "--task", "Add a first helper")
    wait_for(lambda: len(world.anthropic.generation_requests) == 1, "the first run's analysis")
    second = world.run("--task", "Add a second helper")  # overlaps the first and settles before it
    analysed.set()
    result = finish(first)

    assert second.returncode == 0 and result.returncode == 0, second.stderr + result.stderr
    month = format_usd(recorded(world))  # the ledger the first run committed, after the merge
    assert month == format_usd(sum(run_cost(run) for run in world.ledger()["runs"]))
    [pull] = [p for p in world.github.pulls if p.title == "Add a first helper"]
    assert f"Month to date ({world.ledger()['month']}): {month} of $15.00" in (pull.body or "")
    [embed] = [e for e in fake_discord.embeds_titled("Run completed") if e["description"] == "Add a first helper"]
    assert field(embed, "Month to date").startswith(month)
    assert "Updated the cost receipt on" in result.stdout


def run_cost(run: dict) -> int:
    return sum(call["cost_micro_usd"] for call in run["calls"])


def test_a_reservation_dated_year_9999_cannot_hold_the_month(world: World) -> None:
    data = json.loads(seeded_ledger(this_month(world), []))
    data["reservations"] = [{"run_id": "crashed-run", "task": "Another task", "micro_usd": BUDGET,  # a whole month,
                             "expires_at": "9999-12-31T23:59:59Z"}]  # as a version before this one wrote it
    publish(world, {"token_budget.json": json.dumps(data)})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.created_pulls()) == 1
    assert "note: run crashed-run never settled" in result.stdout
    booked = next(run for run in world.ledger()["runs"] if run["id"] == "crashed-run")
    # believed to have spent no more than one run can: its reservation was not believed past its run's time
    assert booked["outcome"] == "unsettled" and 0 < run_cost(booked) < 1_000_000
    assert world.ledger().get("reservations", []) == []
