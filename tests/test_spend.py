"""What was spent on what: a pull request's cost and the follow-up figures of ``status``."""

from __future__ import annotations

import dataclasses

from automation.core.prices import Usage
from automation.money import spend
from automation.money.ledger import CallRecord, Ledger, RunRecord

PULL_URL = "https://github.com/o/r/pull/7"
EMPTY = Ledger(month="2026-11", budget_micro_usd=15_000_000)


def test_pull_cost_sums_the_task_run_and_its_follow_ups() -> None:
    paid = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(10, 10), 1_000, 5)
    ledger = dataclasses.replace(EMPTY, runs=(
        RunRecord("a", "2026-11-01T00:00:00Z", "Add x", "pr_opened", PULL_URL, (paid, paid)),
        RunRecord("b", "2026-11-02T00:00:00Z", "Add x", "follow_up_pushed", PULL_URL, (paid,), "follow_up", 7),
        RunRecord("c", "2026-11-03T00:00:00Z", "Other", "pr_opened", "https://github.com/o/r/pull/8", (paid,)),
    ))
    assert spend.pull_cost(ledger, PULL_URL) == 3_000
    assert ledger.prs_opened == 2  # a follow-up is not a new pull request
    assert spend.status_data(ledger) == {"runs": 1, "pull_requests": 1, "spent_micro_usd": 1_000, "pushed": 1}
