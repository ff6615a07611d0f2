"""The ledger's month as day-by-day series, for the dashboard's charts and the job summary's.

Pure functions of the ledger (and ``now`` where the month's progress matters). The figures
reuse what `status --json` is computed from (``budget.pace``, ``health.model_stats``), so a
chart and the status never disagree. Money is integer micro-dollars.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from ..models import health
from ..money import budget
from ..money.ledger import Ledger, RunRecord


@dataclass(frozen=True)
class Day:
    """One calendar day (UTC) of the ledger's month and the runs that started on it."""

    date: dt.date
    runs: tuple[RunRecord, ...]

    @property
    def spent_micro_usd(self) -> int:
        return sum(run.cost_micro_usd for run in self.runs)

    @property
    def prs_opened(self) -> int:
        return sum(1 for run in self.runs if run.pr_url and run.kind == "task")  # a follow-up opens none


@dataclass(frozen=True)
class BurnUp:
    """Cumulative spend by the end of each day, and where the pace leads.

    ``spent`` has a value for each day up to ``through`` (None for the days still to come);
    ``pace`` is the straight line from nothing at the start of the month to
    ``projected_micro_usd`` at its end, the same rate `status` projects with.
    """

    days: tuple[dt.date, ...]
    spent: tuple[int | None, ...]
    pace: tuple[int, ...]
    budget_micro_usd: int
    projected_micro_usd: int
    runs_out_on: dt.date | None


def days(ledger: Ledger) -> list[Day]:
    """Every day of the ledger's month, with its runs. A run stamped outside the month (a
    hand-edited ledger) counts on the nearest day, so the days always add up to the month."""
    start, end = budget.month_bounds(ledger.month)
    first, last = start.date(), (end - dt.timedelta(days=1)).date()
    buckets: dict[dt.date, list[RunRecord]] = {}
    for run in ledger.runs:
        day = min(max(_started_on(run), first), last)
        buckets.setdefault(day, []).append(run)
    count = (last - first).days + 1
    return [Day(date, tuple(buckets.get(date, ()))) for date in (first + dt.timedelta(days=n) for n in range(count))]


def _started_on(run: RunRecord) -> dt.date:
    try:
        return dt.date.fromisoformat(run.started_at[:10])
    except ValueError:  # the ledger validates stamps; this only guards the chart
        return dt.date.min


def burn_up(ledger: Ledger, budget_micro_usd: int, now: dt.datetime) -> BurnUp:
    """The month's burn-up against ``budget_micro_usd`` as of ``now``."""
    month_days = days(ledger)
    start, end = budget.month_bounds(ledger.month)
    month_pace = budget.pace(ledger, budget_micro_usd, now)
    length = (end - start).total_seconds()
    through = max(now.date(), last_run_day(ledger) or month_days[0].date)
    spent: list[int | None] = []
    pace: list[int] = []
    total = 0
    for index, day in enumerate(month_days):
        total += day.spent_micro_usd
        spent.append(total if day.date <= through else None)
        day_end = (index + 1) * 86_400
        pace.append(round(month_pace.projected_micro_usd * day_end / length))
    return BurnUp(
        days=tuple(day.date for day in month_days),
        spent=tuple(spent),
        pace=tuple(pace),
        budget_micro_usd=budget_micro_usd,
        projected_micro_usd=month_pace.projected_micro_usd,
        runs_out_on=month_pace.runs_out_on,
    )


def last_run_day(ledger: Ledger) -> dt.date | None:
    return max((_started_on(run) for run in ledger.runs), default=None)


def spend_by_step(ledger: Ledger) -> dict[str, int]:
    """Micro-dollars per step ("analysis", "code", and any other step the ledger records)."""
    steps: dict[str, int] = {}
    for run in ledger.runs:
        for call in run.calls:
            steps[call.step] = steps.get(call.step, 0) + call.cost_micro_usd
    return steps


def daily_model_stats(ledger: Ledger, window_days: int = 1) -> list[tuple[dt.date, list[health.ModelStats]]]:
    """Each day that had calls, with ``health.model_stats`` of the runs of the ``window_days``
    days ending on it (1: that day alone; 7: a trailing week, enough calls for a p95 to mean
    something when a day has only a handful)."""
    month_days = days(ledger)
    return [
        (day.date, health.model_stats(replace(ledger, runs=tuple(
            run for earlier in month_days[max(0, index - window_days + 1):index + 1] for run in earlier.runs))))
        for index, day in enumerate(month_days) if day.runs
    ]
