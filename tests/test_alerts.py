"""Which alerts a run owes, decided from the ledger alone: the monthly recap and its correction."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from automation.core.config import Config
from automation.money.ledger import Ledger, Reservation, rollover
from automation.reporting.alerts import before_run
from tests.test_ledger import BUDGET, run

DECEMBER = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.timezone.utc)
CONFIG = Config()


def recaps(embeds: list[dict]) -> list[str]:
    return [embed["title"] for embed in embeds if "recap" in embed["title"].lower()]


def november(*costs: int) -> Ledger:
    ledger = Ledger(month="2026-11", budget_micro_usd=BUDGET)
    for index, cost in enumerate(costs):
        ledger = ledger.with_run(run(f"nov-{index}", cost=cost, started_at=f"2026-11-30T23:5{index}:00Z"))
    return ledger


def test_a_recap_overtaken_by_late_runs_is_corrected_once_when_no_run_is_in_progress() -> None:
    recapped, embeds = before_run(rollover(november(1_000_000), "2026-12"), november(1_000_000), CONFIG, DECEMBER, "o/r")
    assert recaps(embeds) == ["📊 Monthly recap: 2026-11"]
    assert recapped.notified["recap_said"] == {"spent_micro_usd": 1_000_000, "executions": 1, "prs_opened": 0}

    late = rollover(november(1_000_000, 160_000), "2026-12")
    settled = replace(recapped, closed_runs=late.closed_runs, history=late.history)
    in_progress = replace(settled, reservations=(Reservation("r", "t", 1, "2026-12-01T03:30:00Z"),))
    assert recaps(before_run(in_progress, in_progress, CONFIG, DECEMBER, "o/r")[1]) == []  # maybe one more late run

    corrected, embeds = before_run(settled, settled, CONFIG, DECEMBER, "o/r")
    assert recaps(embeds) == ["📊 Monthly recap: 2026-11 (corrected)"]
    assert "said $1.00, 1 run and 0 PRs: 1 run of 2026-11 settled after it was posted" in embeds[0]["description"]
    assert recaps(before_run(corrected, corrected, CONFIG, DECEMBER, "o/r")[1]) == []  # one correction, not one a run


def test_a_recap_that_still_holds_or_whose_figures_were_never_stored_is_left_alone() -> None:
    recapped, _ = before_run(rollover(november(1_000_000), "2026-12"), november(1_000_000), CONFIG, DECEMBER, "o/r")
    assert recaps(before_run(recapped, recapped, CONFIG, DECEMBER, "o/r")[1]) == []
    older = replace(recapped, notified={"recap_due": "2026-11", "recap_sent": True})  # an older bot's flags
    late = rollover(november(1_000_000, 160_000), "2026-12")
    older = replace(older, closed_runs=late.closed_runs, history=late.history)
    assert recaps(before_run(older, older, CONFIG, DECEMBER, "o/r")[1]) == []
