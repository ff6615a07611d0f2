"""reservations.Reserver against a real bare remote, with the time given as a parameter."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from automation.core.config import Config
from automation.core.errors import PolicyStop
from automation.core.prices import Usage
from automation.money import ledger as ledger_module
from automation.money.budget import BudgetStop
from automation.money.ledger import CallRecord, Ledger, Reservation, RunRecord
from automation.money.reservations import Reserver
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


def summarise_spent(runs: tuple[RunRecord, ...]) -> int:
    return sum(call.cost_micro_usd for run in runs for call in run.calls)


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


def reserving(tmp_path: Path, origin: Path, env: dict[str, str], name: str, clock: Clock, wanted: int) -> Reserver:
    """A run that reserved ``wanted`` for a task named after it, from an empty June ledger."""
    run = reserver(tmp_path, origin, env, name, clock, EMPTY)
    run.reserve(EMPTY, f"Task {name}", wanted, 50_000)
    return run


EMPTY = Ledger("2027-06", 1_000_000)


def call(cost: int, step: str = "code") -> CallRecord:
    """An attempt about to start, at its worst case (what ``attempts`` hands ``cover``)."""
    return CallRecord(step, "gpt-6-luna", "openai", Usage(input_tokens=100, output_tokens=16_384), cost, 0, "in_flight")


def test_every_attempt_is_on_the_branch_before_it_starts_and_grows_the_reservation_or_stops(
    tmp_path: Path, origin: Path, env: dict[str, str]
) -> None:
    clock = Clock()
    run = reserving(tmp_path, origin, env, "run", clock, 100_000)
    reserving(tmp_path, origin, env, "other", clock, 500_000)

    known = EMPTY.with_run(spent("run", 90_000))
    run.cover(known, "Task run", call(10_000))  # fits what is held: still written, with the calls so far
    remote = on_remote(origin, env)
    assert held_by(remote, "run") == 100_000
    assert remote.run("run") == known.run("run")  # the analysis call is on the branch
    [mine] = [r for r in remote.reservations if r.run_id == "run"]
    assert mine.in_flight == call(10_000)  # and the attempt about to start, at its worst case
    run.cover(known, "Task run", call(300_000))  # grows to 390 000 of the 500 000 the other run leaves
    assert run.held is not None and run.held.micro_usd == 390_000 == held_by(on_remote(origin, env), "run")
    with pytest.raises(BudgetStop):
        run.cover(known, "Task run", call(500_000))


def test_a_reservation_never_outlives_the_runs_deadline_by_more_than_the_clock_skew(
    tmp_path: Path, origin: Path, env: dict[str, str]
) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    run = Reserver(clone(origin, tmp_path / "run", env), CONFIG, env, "run", base, clock,
                   deadline_at=START + dt.timedelta(minutes=25))
    run.reserve(base, "Task A", 100_000, 50_000)
    assert run.held is not None and run.held.expires_at == "2027-06-01T12:30:00Z"  # not 12:45: the run is over by 12:25
    clock.now = START + dt.timedelta(minutes=20)
    run.cover(base, "Task A", call(10_000))
    assert [r.expires_at for r in on_remote(origin, env).reservations] == ["2027-06-01T12:30:00Z"]


def test_merge_keeps_live_reservations_and_drops_settled_ones() -> None:
    held = Reservation("a", "t", 5, "2027-06-01T13:00:00Z")
    base = Ledger("2027-06", 1, reservations=(held,))
    theirs_settled = Ledger("2027-06", 1, runs=(replace_outcome(spent("a", 3), "pr_opened"),))
    assert ledger_module.merge(base, base, theirs_settled).reservations == ()  # settled there, not revived
    ours_new = Reservation("b", "u", 7, "2027-06-01T13:00:00Z", call(4))
    merged = ledger_module.merge(base, Ledger("2027-06", 1, reservations=(held, ours_new)), base)
    assert merged.reservations == (held, ours_new)
    text = ledger_module.to_text(merged)
    assert json.loads(text)["reservations"][1] == {
        "expires_at": "2027-06-01T13:00:00Z", "micro_usd": 7, "run_id": "b", "task": "u",
        "in_flight": ["code", "gpt-6-luna", 100, 16384, 0, 0, 0, 0, 4, 0, "in_flight"],
    }
    assert ledger_module.from_text(text, "x") == merged


def replace_outcome(run: RunRecord, outcome: str) -> RunRecord:
    return replace(run, outcome=outcome)


HORIZON = CONFIG.reservation_horizon  # 45 + 5 minutes
EXPIRED, LATER = "2027-06-01T11:00:00Z", "2027-06-01T12:30:00Z"


def test_a_runs_recorded_calls_are_not_counted_twice_beside_its_reservation() -> None:
    now = START
    ledger = Ledger("2027-06", 1_000_000, runs=(spent("a", 30_000),),
                    reservations=(Reservation("a", "t", 100_000, LATER), Reservation("b", "u", 20_000, LATER)))
    assert ledger.spent_micro_usd + ledger.reserved_micro_usd(now, HORIZON) == 30_000 + 70_000 + 20_000
    assert ledger.reserved_micro_usd(now, HORIZON, excluding="b") == 70_000
    assert ledger.reserved_micro_usd(START + dt.timedelta(hours=1), HORIZON) == 0  # expired


def test_a_call_without_a_reservation_gets_one_first(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    clock, base = Clock(), Ledger("2027-06", 1_000_000)
    run = reserver(tmp_path, origin, env, "follow-up", clock, base)

    run.cover(base, "Fix review comments", call(40_000))

    assert run.held == Reservation("follow-up", "Fix review comments", 40_000, "2027-06-01T12:45:00Z", call(40_000))
    assert held_by(on_remote(origin, env), "follow-up") == 40_000


# --- runs that never settle ------------------------------------------------------------------

MOST = 290_000  # one run's worst case


def test_an_expired_reservation_is_booked_at_the_calls_and_the_one_in_flight() -> None:
    killed = Ledger("2027-06", 1_000_000, runs=(spent("killed", 160_000),),
                    reservations=(Reservation("killed", "t", 290_000, EXPIRED, call(8_000)),))

    booked, runs = killed.book_expired(START, HORIZON, MOST)

    assert booked.reservations == () and runs == (booked.run("killed"),)
    record = booked.run("killed")
    assert record is not None and record.outcome == "unsettled"
    assert [c.outcome for c in record.calls] == ["ok", "unsettled"] and record.calls[1].usage.output_tokens == 16_384
    assert booked.spent_micro_usd == 168_000  # not the 290 000 held, not the 160 000 recorded
    assert booked.book_expired(START, HORIZON, MOST) == (booked, ())  # once


def test_a_run_killed_across_the_month_boundary_is_booked_in_the_month_it_started_once() -> None:
    november = replace(spent("killed", 160_000), started_at="2027-05-31T23:50:00Z")
    rolled = Ledger("2027-06", 1_000_000, closed_runs=(november,),
                    reservations=(Reservation("killed", "t", 290_000, EXPIRED, call(8_000)),))

    booked, runs = rolled.book_expired(START, HORIZON, MOST)

    assert booked.runs == () and [r.id for r in booked.closed_runs] == ["killed"]  # not a second copy in June
    assert booked.closed_runs[0].outcome == "unsettled" and runs == booked.closed_runs
    assert summarise_spent(booked.closed_runs) == 168_000  # its call and the one in flight, booked once


def test_a_reservation_from_before_itemising_is_booked_at_all_it_held_up_to_one_runs_worst_case() -> None:
    older = json.dumps({"schema_version": 3, "month": "2027-06", "budget_micro_usd": 15_000_000, "runs": [],
                        "reservations": [{"run_id": "old", "task": "t", "micro_usd": 15_000_000, "expires_at": EXPIRED}]})
    booked, _ = ledger_module.from_text(older, "x").book_expired(START, HORIZON, MOST)
    assert booked.spent_micro_usd == MOST  # the whole month was never a run's to hold


@pytest.mark.parametrize("expires", ["9999-12-31T23:59:59Z", "2027-06-01T13:51:00Z"])
def test_a_reservation_further_ahead_than_any_run_reserves_is_not_believed(expires: str) -> None:
    damaged = Ledger("2027-06", 1_000_000, reservations=(Reservation("x", "t", 1_000_000, expires, None),))
    assert damaged.reserved_micro_usd(START, HORIZON) == 0  # 13:51 is 111 minutes ahead: more than 45 + 5
    booked, runs = damaged.book_expired(START, HORIZON, MOST)
    assert booked.reservations == () and runs == () and booked.spent_micro_usd == 0  # nothing was in flight
    fine = replace(damaged.reservations[0], expires_at=LATER)
    assert Ledger("2027-06", 1, reservations=(fine,)).reserved_micro_usd(START, HORIZON) == 1_000_000


def test_the_run_asking_and_settled_runs_are_not_booked() -> None:
    ledger = Ledger("2027-06", 1_000_000, runs=(replace_outcome(spent("done", 5), "pr_opened"), spent("me", 7)),
                    reservations=(Reservation("done", "t", 50, EXPIRED, call(9)), Reservation("me", "u", 50, EXPIRED, call(9))))
    booked, runs = ledger.book_expired(START, HORIZON, MOST, excluding="me")
    assert runs == () and booked.spent_micro_usd == 12
    assert [r.run_id for r in booked.reservations] == ["me"]


def test_a_run_booked_by_another_is_replaced_by_its_own_record_when_it_settles() -> None:
    alive = spent("a", 160_000)
    unsettled, _ = Ledger("2027-06", 1_000_000, runs=(alive,),
                          reservations=(Reservation("a", "t", 290_000, EXPIRED, call(8_000)),)).book_expired(START, HORIZON, MOST)
    finished = replace(alive, outcome="pr_opened", calls=alive.calls + (replace(call(3_000), outcome="ok"),))
    ours = Ledger("2027-06", 1_000_000, runs=(finished,))
    for base in (None, Ledger("2027-06", 1_000_000, runs=(alive,))):
        assert ledger_module.merge(base, ours, unsettled).run("a") == finished  # the truth replaces the estimate
        assert ledger_module.merge(base, unsettled, ours).run("a") == finished
    # a copy this side never touched gives way to the other side's newer one
    base = Ledger("2027-06", 1_000_000, runs=(alive,))
    assert ledger_module.merge(base, base, unsettled).run("a") == unsettled.run("a")


def test_another_runs_expired_reservation_leaves_room_only_for_what_it_cannot_have_spent(
    tmp_path: Path, origin: Path, env: dict[str, str]
) -> None:
    clock = Clock()
    killed = reserving(tmp_path, origin, env, "killed", clock, 900_000)
    killed.cover(EMPTY.with_run(spent("killed", 600_000)), "Task killed", call(200_000))  # SIGKILL: 600 000 paid, 200 000 maybe

    clock.now = START + dt.timedelta(minutes=46)
    said: list[str] = []
    later = reserver(tmp_path, origin, env, "later", clock, EMPTY)
    later.say = said.append
    with pytest.raises(BudgetStop, match=r"only \$0.200000 is left"):
        later.reserve(EMPTY, "Task B", 300_000, 250_000)
    later.reserve(EMPTY, "Task B", 300_000, 200_000)
    remote = on_remote(origin, env)
    assert remote.spent_micro_usd == 800_000 and remote.run("killed").outcome == "unsettled"
    assert any("run killed never settled" in line and "$0.8000" in line for line in said)


def test_a_ledger_branch_rewritten_under_a_live_run_is_recorded_conservatively(
    tmp_path: Path, origin: Path, env: dict[str, str]
) -> None:
    clock = Clock()
    other = reserving(tmp_path, origin, env, "other", clock, 100_000)
    other.cover(EMPTY.with_run(spent("other", 70_000)), "Task other", call(5_000))
    run = reserving(tmp_path, origin, env, "run", clock, 100_000)
    seen = git(origin, env, "rev-parse", "main")
    git(origin, env, "update-ref", "refs/heads/main", git(origin, env, "rev-list", "--max-parents=0", "main"))  # a force-push
    said: list[str] = []
    run.say = said.append

    run.cover(EMPTY.with_run(spent("run", 40_000)), "Task run", call(5_000))

    assert any("main was rewritten while this run was working" in line for line in said)
    remote = on_remote(origin, env)
    assert remote.run("other") == spent("other", 70_000)  # what the rewrite dropped is recorded again
    assert {r.run_id for r in remote.reservations} == {"other", "run"}
    assert seen != git(origin, env, "rev-parse", "main")


REFUSING_HOOK = """#!/bin/sh
while read old new ref; do
  if [ "$ref" = refs/heads/main ]; then echo 'pre-receive hook declined: ledger commits need a ticket' >&2; exit 1; fi
done
exit 0
"""


def test_a_push_refused_by_a_hook_goes_to_the_rescue_branch(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(REFUSING_HOOK)
    hook.chmod(0o755)
    run = reserving(tmp_path, origin, env, "run", Clock(), 100_000)

    assert run.branch == "ai-orchestration/ledger"
    text = subprocess.run(["git", "show", "ai-orchestration/ledger:token_budget.json"], cwd=origin, env=env,
                          capture_output=True, text=True, check=True).stdout
    assert [r.run_id for r in ledger_module.from_text(text, "x").reservations] == ["run"]


def test_a_ledger_damaged_on_the_branch_under_a_live_run_is_kept_and_the_run_settles_on_the_rescue_branch(
    tmp_path: Path, origin: Path, env: dict[str, str]
) -> None:
    run = reserving(tmp_path, origin, env, "run", Clock(), 100_000)
    human = clone(origin, tmp_path / "human", env)
    (human / "token_budget.json").write_text('{"runs": [], "runs": [')  # a merge conflict resolved by hand, badly
    git(human, env, "commit", "-qam", "fix the conflict")
    git(human, env, "push", "-q", "origin", "main")

    settled = run.settle(EMPTY.with_run(replace_outcome(spent("run", 30_000), "pr_opened")), lambda view: view, "ledger")

    assert settled.branch == "ai-orchestration/ledger" and "not valid JSON" in str(settled.refused)
    assert settled.ledger.run("run") is not None and settled.ledger.reservations == ()
    assert git(origin, env, "show", "main:token_budget.json") == '{"runs": [], "runs": ['  # never overwritten


def test_a_run_with_checks_reserves_a_code_call_for_each_repair_they_may_ask() -> None:
    from dataclasses import replace

    from automation.money.budget import run_reservation as estimate

    plain, first = estimate(CONFIG, 1_000)
    checked, same_first = estimate(replace(CONFIG, verify_commands=("make test",), verify_max_repairs=2), 1_000)
    code = CONFIG.price(CONFIG.code_model).worst_case_micro_usd(CONFIG.code_max_input_tokens, CONFIG.output_cap(CONFIG.code_model))

    assert checked - plain == 2 * code > 0 and same_first == first
    assert estimate(replace(CONFIG, verify_max_repairs=2), 1_000)[0] == plain  # no commands: no checks, no repairs
