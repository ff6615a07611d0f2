"""What the money bought: the fate of the bot's pull requests, what each cost, and the
figures `status`, the metrics, the dashboard and the recap show.

``update`` is the run's one look at GitHub for it (folded into the PR list the run already
reads, plus a few requests for PRs that changed); everything else is a pure query over the
ledger, so `status` needs no network. Definitions (docs/COST-TRACKING.md):

* a PR's cost: every run whose ``pr_url`` is the PR (the task run that opened it, follow-ups,
  repairs), and failed attempts at the same task before it (``ledger.with_runs``);
* merged, closed (unmerged), open: as GitHub last showed the PR;
* merge rate: merged ÷ (merged + closed): open PRs have no verdict yet;
* cost per merged PR: what the decided PRs (merged and closed) cost ÷ merged PRs: the price
  of what was rejected is part of the price of what was bought;
* time to merge: from opening to merging, in hours (the median of a group).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..core.errors import GitHubError
from ..repo import tasks
from .ledger import TASK_TEXT_KEPT, TIME_FORMAT, Ledger, PullOutcome, month_of, previous_month, with_runs

if TYPE_CHECKING:  # PyGithub takes a while to import: `status` never loads it
    from ..repo.github import BotPull
    from ..repo.outcomes import Details

UNKNOWN = "unknown"  # a PR's model pair or kind where no run recorded it (opened before schema 4)


# --- reading GitHub into the ledger -------------------------------------------------------


def update(
    ledger: Ledger, pulls: Sequence[BotPull], now: dt.datetime, *, max_reads: int,
    read: Callable[[BotPull], tuple[Details, int]], say: Callable[[str], None],
) -> tuple[Ledger, int]:
    """The ledger with the fate of the bot's PRs of this month and last (and any still open on
    record) as ``pulls`` show them, and the number of API requests ``read`` made.

    ``pulls`` is the list the run already read (no request here); ``read`` fetches one PR's
    commits and lines (``repo.outcomes.read``) and is called for at most ``max_reads`` PRs whose
    head or state changed since they were last read, decided ones first, oldest first. The
    others keep their old details until a later run reads them. When GitHub fails a read, ``say``
    gets one line and the rest wait too: what a PR became of never stops the run's own work.
    """
    since = previous_month(month_of(now))
    records = {pull.url: pull for pull in ledger.pulls}
    stamp = now.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)
    changed: dict[str, PullOutcome] = {}
    for pull in pulls:
        known = records.get(pull.url)
        if pull.created_at[:7] < since and (known is None or known.state != "open"):
            continue
        state = "merged" if pull.merged else "closed" if pull.state == "closed" else "open"
        base = known or PullOutcome(url=pull.url, number=pull.number, task=pull.title[:TASK_TEXT_KEPT],
                                    opened_at=pull.created_at, task_kind=tasks.task_kind(pull.title, "", pull.labels))
        fresh = replace(base, number=pull.number, opened_at=pull.created_at or base.opened_at, state=state,
                        decided_at=(pull.merged_at or pull.closed_at) or None,
                        head_sha=base.head_sha if base.state == state else "")  # a new verdict is read again
        if fresh != known:
            changed[pull.url] = replace(fresh, seen_at=stamp)
    records.update(changed)
    due = sorted((pull for pull in pulls if pull.url in records and records[pull.url].head_sha != pull.head_sha),
                 key=lambda pull: (pull.state == "open", pull.created_at, pull.number))
    requests = 0
    for pull in due[:max_reads]:
        try:
            details, used = read(pull)
        except GitHubError as error:
            say(f"note: what became of #{pull.number} is read by a later run ({error.message})")
            break
        requests += used
        records[pull.url] = replace(records[pull.url], head_sha=details.head_sha, humans_pushed=details.humans_pushed,
                                    lines_changed=details.lines_changed, lines_survived=details.lines_survived,
                                    seen_at=stamp)
    if records == {pull.url: pull for pull in ledger.pulls}:
        return ledger, requests
    ordered = tuple(sorted(records.values(), key=lambda pull: (pull.opened_at, pull.url)))
    return replace(ledger, pulls=ordered), requests


# --- figures ----------------------------------------------------------------------------


def on_record(ledger: Ledger) -> tuple[PullOutcome, ...]:
    """Every PR on record with the runs the ledger keeps as rows folded in (what each cost so
    far): last month's ``closed_runs`` while they are kept, then this month's ``runs``."""
    pulls = with_runs(ledger.pulls, ledger.closed_runs, ledger.closing_month) if ledger.closed_runs else ledger.pulls
    return with_runs(pulls, ledger.runs, ledger.month)


def cost(pull: PullOutcome) -> int:
    """Micro-dollars spent on ``pull``, every month together."""
    return sum(pull.spent.values())


def hours_to_decision(pull: PullOutcome) -> float | None:
    """Hours from opening to merging or closing; None while open or where a time is missing."""
    if not pull.decided_at or not pull.opened_at:
        return None
    try:
        opened, decided = (dt.datetime.strptime(moment, TIME_FORMAT) for moment in (pull.opened_at, pull.decided_at))
    except ValueError:
        return None
    return max(0.0, (decided - opened).total_seconds() / 3600)


@dataclass(frozen=True)
class Tally:
    """The outcome of a group of PRs; money in micro-dollars, times in hours."""

    merged: int = 0
    closed: int = 0  # closed unmerged
    open: int = 0
    spent_micro_usd: int = 0  # on every PR of the group
    decided_spent_micro_usd: int = 0  # on the merged and closed ones
    hours_to_merge: tuple[float, ...] = ()
    follow_ups: int = 0
    humans_pushed: int = 0
    lines_changed: int = 0  # on merged PRs whose lines were counted
    lines_survived: int = 0

    @property
    def total(self) -> int:
        return self.merged + self.closed + self.open

    @property
    def merge_rate(self) -> float | None:
        """merged ÷ (merged + closed); None before any verdict."""
        decided = self.merged + self.closed
        return self.merged / decided if decided else None

    @property
    def cost_per_merged_micro_usd(self) -> int | None:
        return self.decided_spent_micro_usd // self.merged if self.merged else None

    @property
    def median_hours_to_merge(self) -> float | None:
        return statistics.median(self.hours_to_merge) if self.hours_to_merge else None

    def add(self, pull: PullOutcome) -> "Tally":
        spent = cost(pull)
        merged = pull.state == "merged"
        hours = hours_to_decision(pull) if merged else None
        counted = merged and pull.lines_changed is not None and pull.lines_survived is not None
        return Tally(
            merged=self.merged + merged, closed=self.closed + (pull.state == "closed"), open=self.open + (pull.state == "open"),
            spent_micro_usd=self.spent_micro_usd + spent,
            decided_spent_micro_usd=self.decided_spent_micro_usd + (spent if pull.state != "open" else 0),
            hours_to_merge=self.hours_to_merge + ((hours,) if hours is not None else ()),
            follow_ups=self.follow_ups + sum(pull.follow_ups.values()),
            humans_pushed=self.humans_pushed + bool(pull.humans_pushed),
            lines_changed=self.lines_changed + (pull.lines_changed or 0 if counted else 0),
            lines_survived=self.lines_survived + (pull.lines_survived or 0 if counted else 0),
        )


def tally(pulls: Iterable[PullOutcome]) -> Tally:
    total = Tally()
    for pull in pulls:
        total = total.add(pull)
    return total


def model_pair(pull: PullOutcome) -> str:
    """``analysis × code``, the models that answered in the run that opened the PR."""
    if not pull.analysis_model and not pull.code_model:
        return UNKNOWN
    return f"{pull.analysis_model or UNKNOWN} × {pull.code_model or UNKNOWN}"


def grouped(pulls: Iterable[PullOutcome], key: Callable[[PullOutcome], str]) -> dict[str, Tally]:
    """Tallies by ``key`` (month opened, model pair, task kind, experiment arm), sorted by key."""
    groups: dict[str, Tally] = {}
    for pull in pulls:
        name = key(pull)
        groups[name] = groups.get(name, Tally()).add(pull)
    return dict(sorted(groups.items()))


def by_month(pulls: Iterable[PullOutcome]) -> dict[str, Tally]:
    return grouped(pulls, lambda pull: pull.opened_at[:7])


def by_model(pulls: Iterable[PullOutcome]) -> dict[str, Tally]:
    return grouped(pulls, model_pair)


def by_kind(pulls: Iterable[PullOutcome]) -> dict[str, Tally]:
    return grouped(pulls, lambda pull: pull.task_kind or UNKNOWN)


def by_arm(pulls: Iterable[PullOutcome]) -> dict[str, Tally]:
    """Only the PRs an experiment opened (``models.experiment``), by arm."""
    return grouped((pull for pull in pulls if pull.arm), lambda pull: pull.arm)
