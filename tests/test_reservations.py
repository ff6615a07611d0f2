"""reservations.Reserver against a real bare remote, with the time given as a parameter."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from automation.core.config import Config
from automation.core.errors import PolicyStop
from automation.core.prices import Usage
from automation.money import ledger as ledger_module
from automation.money.budget import BudgetStop
from automation.money.ledger import CallRecord, Ledger, Reservation, RunRecord
from automation.money.reservations import CALL_WINDOW, Reserver
from tests.test_gitops import clone, env, git, origin  # noqa: F401

START = dt.datetime(2027, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
CONFIG = Config(monthly_budget_micro_usd=1_000_000)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


def on_remote(origin: Path, env: dict[str, str]) -> Ledger:
    text = subprocess.run(["git", "show", "main:token_budget.json"], cwd=origin, env=env, capture_output=True,
                          text=True, check=True).stdout
    return ledger_module.from_text(text, "main:token_budget.json")


def held_by(ledger: Ledger, run_id: str) -> int:
    return next(r.micro_usd for r in ledger.reservations if r.run_id == run_id)


def reserver(tmp_path: Path, origin: Path, env: dict[str, str], name: str, clock: Clock, base: Ledger) -> Reserver:
    return Reserver(clone(origin, tmp_path / name, env), CONFIG, env, name, base, clock)


def spent(run_id: str, cost: int) -> RunRecord:
    call = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=1, output_tokens=1), cost, 1)
    return RunRecord(run_id, "2027-06-01T12:00:00Z", "task", "running", None, (call,))


def test_a_reservation_holds_what_is_left_and_the_next_run_sees_it(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    first = reserver(tmp_path, origin, env, "first", clock, base)
    first.reserve(base, "Task A", 700_000, 50_000)
    assert first.held == Reservation("first", "Task A", 700_000, "2027-06-01T12:45:00Z")

    second = reserver(tmp_path, origin, env, "second", clock, base)  # started from the same stale ledger
    second.reserve(base, "Task B", 700_000, 50_000)
    assert second.held is not None and second.held.micro_usd == 300_000  # only what the first left

    third = reserver(tmp_path, origin, env, "third", clock, base)
    with pytest.raises(BudgetStop):
        third.reserve(base, "Task C", 700_000, 50_000)
    assert [r.run_id for r in on_remote(origin, env).reservations] == ["first", "second"]

    clock.now = START + dt.timedelta(minutes=46)  # both expired: a crash cannot block the month
    third.reserve(base, "Task C", 700_000, 50_000)
    assert [r.run_id for r in on_remote(origin, env).reservations] == ["third"]


def test_one_task_is_claimed_by_one_run(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    reserver(tmp_path, origin, env, "first", clock, base).reserve(base, "Task A", 100_000, 50_000)
    with pytest.raises(PolicyStop, match="run first is already working on 'Task A'"):
        reserver(tmp_path, origin, env, "second", clock, base).reserve(base, "Task A", 100_000, 50_000)


def test_a_call_that_does_not_fit_extends_the_reservation_or_stops(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    run = reserver(tmp_path, origin, env, "run", clock, base)
    run.reserve(base, "Task A", 100_000, 50_000)
    other = reserver(tmp_path, origin, env, "other", clock, base)
    other.reserve(base, "Task B", 500_000, 50_000)

    known = base.with_run(spent("run", 90_000))
    run.cover(known, "Task A", 90_000, 10_000)  # fits exactly: no push
    assert held_by(on_remote(origin, env), "run") == 100_000
    run.cover(known, "Task A", 90_000, 300_000)  # grows to 390 000 of the 500 000 the other run leaves
    assert run.held is not None and run.held.micro_usd == 390_000 == held_by(on_remote(origin, env), "run")
    with pytest.raises(BudgetStop):
        run.cover(known, "Task A", 90_000, 500_000)


def test_a_call_that_could_outlive_the_reservation_extends_it_first(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    run = reserver(tmp_path, origin, env, "run", clock, base)
    run.reserve(base, "Task A", 100_000, 50_000)
    clock.now = START + dt.timedelta(minutes=45) - CALL_WINDOW + dt.timedelta(seconds=1)

    run.cover(base, "Task A", 0, 10_000)

    assert run.held is not None and run.held.expires_at == "2027-06-01T13:18:01Z"
    assert [r.expires_at for r in on_remote(origin, env).reservations] == ["2027-06-01T13:18:01Z"]


def test_merge_keeps_live_reservations_and_drops_settled_ones() -> None:
    held = Reservation("a", "t", 5, "2027-06-01T13:00:00Z")
    base = Ledger("2027-06", 1, reservations=(held,))
    theirs_settled = Ledger("2027-06", 1, runs=(replace_outcome(spent("a", 3), "pr_opened"),))
    assert ledger_module.merge(base, base, theirs_settled).reservations == ()  # settled there, not revived
    ours_new = Reservation("b", "u", 7, "2027-06-01T13:00:00Z")
    merged = ledger_module.merge(base, Ledger("2027-06", 1, reservations=(held, ours_new)), base)
    assert merged.reservations == (held, ours_new)
    text = ledger_module.to_text(merged)
    assert json.loads(text)["reservations"][1] == {"expires_at": "2027-06-01T13:00:00Z", "micro_usd": 7, "run_id": "b", "task": "u"}
    assert ledger_module.from_text(text, "x") == merged


def replace_outcome(run: RunRecord, outcome: str) -> RunRecord:
    from dataclasses import replace

    return replace(run, outcome=outcome)


def test_a_runs_recorded_calls_are_not_counted_twice_beside_its_reservation() -> None:
    now = START
    ledger = Ledger("2027-06", 1_000_000, runs=(spent("a", 30_000),),
                    reservations=(Reservation("a", "t", 100_000, "2027-06-01T13:00:00Z"),
                                  Reservation("b", "u", 20_000, "2027-06-01T13:00:00Z")))
    assert ledger.spent_micro_usd + ledger.reserved_micro_usd(now) == 30_000 + 70_000 + 20_000
    assert ledger.reserved_micro_usd(now, excluding="b") == 70_000
    assert ledger.reserved_micro_usd(START + dt.timedelta(hours=1)) == 0  # expired


def test_a_call_without_a_reservation_gets_one_first(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    run = reserver(tmp_path, origin, env, "follow-up", clock, base)

    run.cover(base, "Fix review comments", 0, 40_000)

    assert run.held == Reservation("follow-up", "Fix review comments", 40_000, "2027-06-01T12:45:00Z")
    assert held_by(on_remote(origin, env), "follow-up") == 40_000


def test_a_run_with_checks_reserves_a_code_call_for_each_repair_they_may_ask() -> None:
    from dataclasses import replace

    from automation.money.reservations import estimate

    plain, first = estimate(CONFIG, 1_000)
    checked, same_first = estimate(replace(CONFIG, verify_commands=("make test",), verify_max_repairs=2), 1_000)
    code = CONFIG.price(CONFIG.code_model).worst_case_micro_usd(CONFIG.code_max_input_tokens, CONFIG.output_cap(CONFIG.code_model))

    assert checked - plain == 2 * code > 0 and same_first == first
    assert estimate(replace(CONFIG, verify_max_repairs=2), 1_000)[0] == plain  # no commands: no checks, no repairs
