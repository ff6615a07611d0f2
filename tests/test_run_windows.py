"""Budget windows end to end: the day's cap, the run cap and the early warning, with real
`python -m automation run` processes in the world of tests/test_run.py (bare `origin`, loopback
Anthropic, OpenAI, GitHub and Discord). Each run is started at a given time (``World.run``'s
``now``), so the days and weeks here never depend on the machine's clock.

A run here costs $0.016 (analysis $0.0154, code $0.0006); with ``models.analysis_max_tokens``
2000 its first call's worst case is $0.02 and its code call's about $0.01.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from automation.money import ledger as ledger_module
from automation.money.ledger import CallRecord, RunRecord
from automation.core.prices import Usage
from tests import test_run
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World
from tests.test_run_alerts import CONFIG, discord, fresh_checkout, next_run, publish  # noqa: F401

world = test_run.world
SMALL_FIRST_CALL = "models:\n  analysis_max_tokens: 2000\n"


def model_requests(world: World) -> int:
    return len(world.anthropic.generation_requests) + len(world.openai.generation_requests)


DAY = dt.date(2026, 12, 9)  # a Wednesday, before the default code model retires (the figures below are its)


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> str:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.timezone.utc).isoformat()


def test_a_daily_cap_stops_the_days_third_run_and_the_next_days_first_run_proceeds(world: World) -> None:
    publish(world, {CONFIG: "budget:\n  daily_usd: 0.05\n" + SMALL_FIRST_CALL})
    day = DAY

    results = []
    for index in range(3):
        results.append(world.run(env=next_run(world, f"50{index}"), now=at(10, 5 * index)))
        fresh_checkout(world)

    assert [result.returncode for result in results] == [0, 0, 0], [result.stderr for result in results]
    ledger = world.ledger()
    assert [run["outcome"] for run in ledger["runs"]] == ["pr_opened", "pr_opened"]
    assert len(world.created_pulls()) == 2
    stop = results[2].stdout
    tomorrow = day + dt.timedelta(days=1)
    assert (
        f"budget stop (budget.daily_usd): the next call may cost up to $0.020000 but only $0.018000 is left "
        f"today ({day.isoformat()}: $0.03 spent of $0.05); the window reopens at {tomorrow.isoformat()}T00:00:00Z"
    ) in stop, stop
    requests = model_requests(world)

    following = world.run(env=next_run(world, "510"), now=at(0, 1, DAY + dt.timedelta(days=1)))

    assert following.returncode == 0, following.stderr
    assert "budget stop" not in following.stdout
    assert model_requests(world) > requests
    assert [run["outcome"] for run in world.ledger()["runs"]] == ["pr_opened"] * 3
    assert len(world.created_pulls()) == 3


def test_a_run_cap_stops_a_run_whose_worst_case_exceeds_it_before_any_call(world: World, discord: FakeDiscord) -> None:
    publish(world, {CONFIG: "budget:\n  run_usd: 0.10\n"})  # a run's worst case is $0.296095 by default (the localisation call's $0.010233 in it)

    first = world.run(now=at(10))

    assert first.returncode == 0, first.stderr
    assert (
        "budget stop (budget.run_usd): this run may cost up to $0.296095, more than the $0.10 one run may spend; "
        "raise budget.run_usd, or lower the worst case"
    ) in first.stdout, first.stdout
    assert model_requests(world) == 0 and world.created_pulls() == []
    [alert] = discord.embeds_titled("Budget stop: the run cap")
    assert "budget.run_usd" in alert["description"]

    fresh_checkout(world)
    second = world.run(env=next_run(world, "520"), now=at(11))

    assert second.returncode == 0 and "budget stop (budget.run_usd)" in second.stdout
    assert model_requests(world) == 0
    assert len(discord.embeds_titled("Budget stop")) == 1  # said once

    publish(world, {CONFIG: "budget:\n  run_usd: 0.30\n"})
    third = world.run(env=next_run(world, "521"), now=at(12))

    assert third.returncode == 0, third.stderr
    assert [run["outcome"] for run in world.ledger()["runs"]] == ["pr_opened"]


def test_the_warning_at_80_percent_of_a_window_fires_once(world: World, discord: FakeDiscord) -> None:
    now = dt.datetime.fromisoformat(at(9))
    earlier = RunRecord(
        id="seed-0", started_at=now.strftime(ledger_module.TIME_FORMAT), task="Earlier task", outcome="pr_opened",
        pr_url="https://github.com/octo/repo/pull/900",
        calls=(CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=1000, output_tokens=100), 790_000, 1200),),
    )
    seeded = ledger_module.Ledger(month=ledger_module.month_of(now), budget_micro_usd=15_000_000, runs=(earlier,))
    publish(world, {CONFIG: "budget:\n  weekly_usd: 1.00\n", "token_budget.json": ledger_module.to_text(seeded)})
    year, week, _ = now.isocalendar()

    first = world.run(now=at(10))  # $0.79 + $0.016: past 80% of the week's $1.00

    assert first.returncode == 0, first.stderr
    [warning] = discord.embeds_titled("80% of the week's budget spent")
    assert f"this week ({year}-W{week:02d}: $0.81 spent of $1.00)" in warning["description"]
    assert "budget.weekly_usd" in warning["description"]
    assert world.ledger()["notified"]["warned"] == [f"week:{year}-W{week:02d}"]

    fresh_checkout(world)
    second = world.run(env=next_run(world, "530"), now=at(11))

    assert second.returncode == 0, second.stderr
    assert len(world.created_pulls()) == 2
    assert len(discord.embeds_titled("80%")) == 1  # said once, though the week is still past 80%


def test_racing_runs_never_spend_past_the_days_cap(world: World) -> None:
    from tests.test_run_race import ANALYSIS_COST, CODE_COST, PINNED_MODELS, RACERS, bill_near_the_worst_case, billed, race

    daily = ANALYSIS_COST + CODE_COST + 7_000  # one run fits the day, two would pass it by about $0.165
    publish(world, {CONFIG: PINNED_MODELS + f"budget:\n  daily_usd: {daily / 1e6}\n"})
    bill_near_the_worst_case(world)
    results = race(world, [["--task", f"Add helper number {index}"] for index in range(RACERS)], now=at(10))

    assert all(result.returncode == 0 for result in results), [result.stderr for result in results]
    assert 0 < billed(world) <= daily
    assert len(world.created_pulls()) == 1
    assert sum("budget stop (budget.daily_usd)" in result.stdout for result in results) == RACERS - 1
    ledger = world.ledger()
    assert ledger["spent_micro_usd"] == billed(world) and ledger.get("reservations", []) == []
