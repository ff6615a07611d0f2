"""What was spent on what: one pull request's cost, the follow-up runs' share of the month.

Plain queries over the ledger, shared by the reports, the alerts and the follow-up step.
"""

from __future__ import annotations

from typing import Any

from .ledger import Ledger


def pull_cost(ledger: Ledger, pr_url: str | None) -> int:
    """Micro-dollars spent on one PR in this month's ledger: the run that opened it and its follow-ups."""
    return 0 if not pr_url else sum(run.cost_micro_usd for run in ledger.runs if run.pr_url == pr_url)


def status_data(ledger: Ledger) -> dict[str, Any]:
    """The follow-up part of ``status --json``: runs, pull requests worked on, micro-dollars spent."""
    runs = [run for run in ledger.runs if run.kind == "follow_up"]
    return {
        "runs": len(runs),
        "pull_requests": len({run.pull for run in runs}),
        "spent_micro_usd": sum(run.cost_micro_usd for run in runs),
        "pushed": sum(1 for run in runs if run.outcome == "follow_up_pushed"),
    }
