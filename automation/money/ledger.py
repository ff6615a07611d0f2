"""The budget ledger, `token_budget.json`: what each run spent, this month and before.

Totals are never stored on their own authority: they are recomputed from the run records
on every save, so a merge of two ledgers that share runs can never double-count or lose
one. The file is sorted, indented and writes one line per run, so its diffs read well and
a year of history stays small.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..core.errors import LedgerError
from ..core.prices import Usage

SCHEMA_VERSION = 4  # 4: pull-request outcomes (``pulls``), runs' task kind and experiment arm
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
HISTORY_MONTHS_KEPT = 36
TASK_TEXT_KEPT = 120
RESTORE_HINT = "fix it or restore it from git history (git log -p -- {path})"
# Where the seed's format (schema 0) kept the month's spend, in dollars.
SEED_SPENT_KEYS = ("total_spent", "spent_usd", "spent")
# Notification flags that outlive the month: a retired model's replacement is announced once, and
# the budget windows warned (a week can span two months; alerts.py drops the flags of closed windows).
KEPT_FLAGS = ("retired", "warned")
# How long into a month last month's run rows stay in the file (``closed_runs``): a run that
# started before midnight settles after it (its deadline is minutes), and is merged in by id.
# After this the month is one summary line; its rows stay in the file's git history.
CLOSED_RUNS_KEPT = dt.timedelta(days=7)
# The largest whole number the ledger holds: readers such as jq and JavaScript (doubles) keep
# integers exact only up to 2**53 - 1, and no amount or count comes near it.
MAX_INTEGER = 2**53 - 1
# The deepest the free-form parts (``notified``, ``health``) may nest; the bot writes three levels.
MAX_DEPTH = 16
# The outcome (and step) of a run kept for spend the file states beyond its runs (``from_text``).
UNACCOUNTED = "unaccounted"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One paid model call. ``outcome`` is "ok" or a provider error kind."""

    step: str
    model: str
    provider: str
    usage: Usage
    cost_micro_usd: int
    latency_ms: int
    outcome: str = "ok"

    def to_row(self) -> list[Any]:
        """One call as a row in ``CALL_COLUMNS`` order; the trailing ``outcome`` and ``provider``
        are left out when they are "ok" and what the model name implies."""
        usage = self.usage
        row: list[Any] = [
            self.step, self.model, usage.input_tokens, usage.output_tokens, usage.reasoning_tokens,
            usage.cache_write_5m_tokens, usage.cache_write_1h_tokens, usage.cache_read_tokens,
            self.cost_micro_usd, self.latency_ms,
        ]
        if self.provider != provider_implied_by(self.model):
            row += [self.outcome, self.provider]
        elif self.outcome != "ok":
            row.append(self.outcome)
        return row


# The columns of a call row in the file (written into it too, so the file explains itself).
# ``reasoning`` (Claude's thinking, OpenAI's reasoning tokens) is the part of ``output`` the
# model spent thinking: billed as output, never added to it again.
CALL_COLUMNS = (
    "step", "model", "input", "output", "reasoning", "cache_write_5m", "cache_write_1h", "cache_read",
    "cost_micro_usd", "latency_ms", "outcome", "provider",
)
REQUIRED_CALL_COLUMNS = 10
# Schema 2's call columns, for its upgrade step.
_SCHEMA_2_CALL_COLUMNS = (
    "step", "model", "input", "output", "cache_write_5m", "cache_write_1h", "cache_read",
    "cost_micro_usd", "latency_ms", "outcome", "provider",
)


def provider_implied_by(model: str) -> str | None:
    """The provider a model name implies, by a fixed naming rule (never by the price table,
    which changes between releases): lets the ledger omit ``provider`` on most calls."""
    if model.startswith("claude-"):
        return "anthropic"
    if model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-")):
        return "openai"
    return None


@dataclass(frozen=True, slots=True)
class ChecksRecord:
    """What the repository's own checks (``verify.commands``) said about a run's edit.

    ``result`` is "passed" or "failed" (new failures remained after ``repairs``). ``base`` is the
    commit of the untouched tree they were compared with and ``files`` what it held
    (``gitops.content_id``: its files but the ledger), ``commands`` a fingerprint of the
    commands, and ``failing_on_base`` each command that failed there with its failures (None:
    too many to keep), so a later run on the same files can reuse them instead of running them again.
    """

    result: str
    repairs: int = 0
    base: str = ""
    files: str = ""
    commands: str = ""
    failing_on_base: tuple[tuple[str, tuple[str, ...]], ...] | None = None  # (command, failures) pairs

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"result": self.result, "repairs": self.repairs, "base": self.base, "files": self.files,
                                "commands": self.commands}
        if self.failing_on_base is not None:
            data["failing_on_base"] = {command: list(marks) for command, marks in self.failing_on_base}
        return data


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of the bot that called at least one model."""

    id: str
    started_at: str
    task: str
    outcome: str = "running"
    pr_url: str | None = None
    calls: tuple[CallRecord, ...] = ()
    kind: str = "task"  # "task": a new task's run; "follow_up": a run that worked on an open PR;
    # "adjustment": what a provider billed that the ledger lacked (reconcile.py), not a run of the bot
    pull: int | None = None  # the PR number a follow-up worked on
    checks: ChecksRecord | None = None  # None: no checks ran (verify.commands unset, or the run ended first)
    repository: str = ""  # owner/name of the run's repository, in a shared ledger; "": the ledger's own
    task_kind: str = ""  # the task's kind (tasks.task_kind): its heading, ``kind:`` prefix or label
    arm: str = ""  # the ``models.experiment`` arm the run used, like "code=gpt-4o-mini"

    @property
    def cost_micro_usd(self) -> int:
        return sum(call.cost_micro_usd for call in self.calls)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "started_at": self.started_at,
            "task": self.task[:TASK_TEXT_KEPT],
            "outcome": self.outcome,
            "calls": [call.to_row() for call in self.calls],
        }
        if self.pr_url:
            record["pr_url"] = self.pr_url
        if self.kind != "task":
            record["kind"] = self.kind
        if self.pull is not None:
            record["pull"] = self.pull
        if self.checks is not None:
            record["checks"] = self.checks.to_json()
        if self.repository:
            record["repository"] = self.repository
        if self.task_kind:
            record["task_kind"] = self.task_kind
        if self.arm:
            record["arm"] = self.arm
        return record


# A run's outcome while it works; and the outcome of a run whose reservation expired before it
# settled (killed, or lost with its runner): booked at what it may have spent (``book_expired``).
RUNNING = "running"
UNSETTLED = "unsettled"
# A request submitted in a provider batch and not yet collected: held as a reservation of its
# own (``Reservation.batch``) for as long as the provider may take, then booked like any other.
BATCH_PENDING = "batch_pending"
BATCH_PREFIX = "batch-"


def batch_key(provider: str, step: str, batch_id: str) -> str:
    """The reservation key of a batch request: ``batch-<provider>-<step>-<batch id>``, e.g.
    ``batch-openai-code-batch_abc123``, so the ledger says whose request it is and for what."""
    return f"{BATCH_PREFIX}{provider}-{step}-{batch_id}"

# A batch ends within 24 hours of its creation (both providers); an hour more for the cron tick
# that collects it.
BATCH_HOLD = dt.timedelta(hours=25)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money a running run holds back from the month (see reservations.py): other runs count it
    as spent until ``expires_at`` (UTC, like ``2026-11-21T03:47:00Z``) or until the run settles it.

    ``micro_usd`` covers the whole run, its recorded calls included. ``in_flight`` is the call the
    run has started and not yet recorded, at its worst case (None between calls): the run writes
    it to the branch before each call, with its calls so far, so a run that never settles has
    spent at most its recorded calls and that one. ``itemised`` is False for a reservation written
    by a version that wrote neither (no ``in_flight`` key): all it held may have been spent.
    """

    run_id: str
    task: str
    micro_usd: int
    expires_at: str
    in_flight: CallRecord | None = None
    itemised: bool = True
    repository: str = ""  # as ``RunRecord.repository``

    def live(self, now: dt.datetime, horizon: dt.timedelta) -> bool:
        """Unexpired, and no further ahead than ``horizon`` (the longest a run may reserve, clock
        skew included): a later expiry (a damaged file, a runner's clock years off) is not believed,
        so it cannot hold the month for good; treated as expired, it is booked like one. A batch's
        reservation is believed up to ``BATCH_HOLD`` (plus the skew in ``horizon``) ahead."""
        return stamp(now) < self.expires_at <= stamp(now + horizon + (BATCH_HOLD if self.batch else dt.timedelta()))

    @property
    def batch(self) -> bool:
        """A request in a provider batch (``run_id`` ``batch-<provider batch id>``), not a run."""
        return self.run_id.startswith(BATCH_PREFIX) and self.in_flight is not None and self.in_flight.outcome == BATCH_PENDING

    @property
    def batch_id(self) -> str:
        """A batch hold's provider batch id (its key is ``batch_key``; ``unsent-<run id>`` until the
        provider gave one; a key of an earlier version, ``batch-<id>``, reads the same)."""
        rest = self.run_id.removeprefix(BATCH_PREFIX)
        call = self.in_flight
        return rest.removeprefix(f"{call.provider}-{call.step}-") if call is not None else rest

    def unbooked(self, recorded_micro_usd: int, most: int) -> CallRecord | None:
        """What the run may have spent beyond its ``recorded_micro_usd``, as a call row: the call in
        flight at its worst case (itemised), else all the reservation held beyond the record; never
        more than ``most`` (one run's worst case: a reservation holding more is not one a run made)."""
        if self.itemised:
            if self.in_flight is None:
                return None
            return replace(self.in_flight, outcome=UNSETTLED, cost_micro_usd=min(self.in_flight.cost_micro_usd, most))
        held = min(self.micro_usd - recorded_micro_usd, most)
        return CallRecord(UNSETTLED, "unknown", "unknown", Usage(), held, 0, UNSETTLED) if held > 0 else None

    def to_json(self) -> dict[str, Any]:
        data = {"run_id": self.run_id, "task": self.task[:TASK_TEXT_KEPT], "micro_usd": self.micro_usd,
                "expires_at": self.expires_at, "in_flight": None if self.in_flight is None else self.in_flight.to_row()}
        return {**data, "repository": self.repository} if self.repository else data


def stamp(moment: dt.datetime) -> str:
    """``moment`` as the ledger writes times: UTC, like ``2026-11-21T03:47:00Z``."""
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


@dataclass(frozen=True, slots=True)
class ModelTotals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    spent_micro_usd: int = 0
    reasoning_tokens: int = 0  # part of output_tokens

    def add(self, call: CallRecord) -> "ModelTotals":
        usage = call.usage
        return ModelTotals(
            calls=self.calls + 1,
            input_tokens=self.input_tokens + usage.input_tokens,
            output_tokens=self.output_tokens + usage.output_tokens,
            reasoning_tokens=self.reasoning_tokens + usage.reasoning_tokens,
            cached_tokens=self.cached_tokens
            + usage.cache_read_tokens
            + usage.cache_write_5m_tokens
            + usage.cache_write_1h_tokens,
            spent_micro_usd=self.spent_micro_usd + call.cost_micro_usd,
        )

    def to_json(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
            "spent_micro_usd": self.spent_micro_usd,
        }


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """A closed month's totals, kept in ``history``."""

    month: str
    budget_micro_usd: int
    spent_micro_usd: int
    executions: int
    prs_opened: int
    models: Mapping[str, ModelTotals] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "budget_micro_usd": self.budget_micro_usd,
            "spent_micro_usd": self.spent_micro_usd,
            "executions": self.executions,
            "prs_opened": self.prs_opened,
            "models": {name: totals.to_json() for name, totals in sorted(self.models.items())},
        }


@dataclass(frozen=True)
class Ledger:
    """The whole file. Immutable: every change returns a new Ledger."""

    month: str
    budget_micro_usd: int
    runs: tuple[RunRecord, ...] = ()
    history: tuple[MonthSummary, ...] = ()
    milestones_reached_micro_usd: tuple[int, ...] = ()
    notified: Mapping[str, Any] = field(default_factory=dict)  # per-month notification flags
    health: Mapping[str, Any] = field(default_factory=dict)  # survives rollover (health.py)
    reservations: tuple[Reservation, ...] = ()  # runs in progress (reservations.py); survive rollover
    # Last month's runs, kept for CLOSED_RUNS_KEPT so a run that settles after the rollover is
    # merged into last month by id; its ``history`` entry is their summary meanwhile.
    closed_runs: tuple[RunRecord, ...] = ()
    # What reading the file found and said it did about it (from_text); never written to the file.
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)
    pulls: tuple[PullOutcome, ...] = ()  # the bot's PRs and their fate (money/outcomes.py); survive rollover

    # ---- derived totals ----
    @property
    def spent_micro_usd(self) -> int:
        return sum(run.cost_micro_usd for run in self.runs)

    @property
    def executions(self) -> int:
        return _executions(self.runs)

    @property
    def prs_opened(self) -> int:
        return _prs_opened(self.runs)

    def model_totals(self) -> dict[str, ModelTotals]:
        return _model_totals(self.runs)

    def summary(self) -> MonthSummary:
        return summarise(self.month, self.budget_micro_usd, self.runs)

    @property
    def closing_month(self) -> str:
        """The month before this one: the month ``closed_runs`` belong to."""
        return previous_month(self.month)

    # ---- changes ----
    def with_run(self, run: RunRecord) -> "Ledger":
        """Add or replace the run with ``run.id``, keeping the order runs started in.

        A run that started last month goes to ``closed_runs`` (and last month's summary) while
        those are kept; ValueError when last month is already one summary line (a run cannot be
        merged into it by id) or the run started earlier still.
        """
        month = run_month(run, self.month)
        if month >= self.month:
            return replace(self, runs=_sorted_runs([*(r for r in self.runs if r.id != run.id), run]))
        entry = next((e for e in self.history if e.month == month), None)
        if month != self.closing_month or (not self.closed_runs and entry is not None and entry.executions):
            raise ValueError(f"run {run.id} started in {month}, which this ledger ({self.month}) keeps only as a summary")
        rows = _sorted_runs([*(r for r in self.closed_runs if r.id != run.id), run])
        return _with_closing_summary(replace(self, closed_runs=rows))

    def without_run(self, run_id: str) -> "Ledger":
        """The ledger without the run ``run_id`` (this month's or last month's kept rows)."""
        closed = tuple(r for r in self.closed_runs if r.id != run_id)
        kept = replace(self, runs=tuple(r for r in self.runs if r.id != run_id), closed_runs=closed)
        if closed or len(closed) == len(self.closed_runs):
            return _with_closing_summary(kept)
        month = self.closing_month  # its last kept row went: the month's summary is of no runs
        history = tuple(summarise(month, e.budget_micro_usd, ()) if e.month == month else e for e in self.history)
        return replace(kept, history=history)

    def run(self, run_id: str) -> RunRecord | None:
        """This month's run ``run_id``, or last month's while its rows are kept (``closed_runs``):
        a run that started before the rollover is still settled or booked by id."""
        return next((run for run in (*self.runs, *self.closed_runs) if run.id == run_id), None)

    def with_notified(self, key: str, value: Any) -> "Ledger":
        return replace(self, notified={**self.notified, key: value})

    def reserved_micro_usd(self, now: dt.datetime, horizon: dt.timedelta, excluding: str = "") -> int:
        """What live reservations (``Reservation.live``) of runs other than ``excluding`` hold back
        beyond what those runs have already recorded (a reservation covers its whole run, recorded
        calls included). Expired ones count once booked (``book_expired``)."""
        held = 0
        for reservation in self.reservations:
            if reservation.live(now, horizon) and reservation.run_id != excluding:
                recorded = self.run(reservation.run_id)
                held += max(0, reservation.micro_usd - (recorded.cost_micro_usd if recorded else 0))
        return held

    def of_repository(self, name: str, own: str) -> "Ledger":
        """The runs and reservations of repository ``name`` (owner/name, any case) in a shared
        ledger; a row naming none belongs to ``own``, the repository whose ledger it was."""
        def mine(repository: str) -> bool:
            return (repository or own).casefold() == name.casefold()

        return replace(self, runs=tuple(r for r in self.runs if mine(r.repository)),
                       reservations=tuple(r for r in self.reservations if mine(r.repository)))

    def without_reservation(self, run_id: str) -> "Ledger":
        return replace(self, reservations=tuple(r for r in self.reservations if r.run_id != run_id))

    def book_expired(
        self, now: dt.datetime, horizon: dt.timedelta, most: int, excluding: str = ""
    ) -> tuple["Ledger", tuple[RunRecord, ...]]:
        """Each reservation that is no longer live and whose run never settled, booked as spent: its
        run's record (outcome ``unsettled``) gains ``Reservation.unbooked`` (at most ``most``) as a
        call row, and the reservation goes. A run that expired has spent what it may have spent: money, not room.
        Its real record, if the run is still alive and settles, replaces this one (``merge``), and
        so may the providers' own figures. ``excluding``: the run asking, alive by definition.
        Returns the ledger and the runs booked now."""
        ledger, kept, booked = self, [], []
        for reservation in self.reservations:
            if reservation.live(now, horizon) or reservation.run_id == excluding:
                kept.append(reservation)
                continue
            record = ledger.run(reservation.run_id)
            if record is not None and record.outcome != RUNNING:
                continue  # settled, or booked already
            row = reservation.unbooked(record.cost_micro_usd if record is not None else 0, most)
            if record is None:
                record = RunRecord(reservation.run_id, stamp(now), reservation.task, RUNNING, repository=reservation.repository)
            if row is None and not record.calls:
                continue  # reserved, then stopped before its first call: nothing spent
            unsettled = replace(record, outcome=UNSETTLED, calls=record.calls + ((row,) if row is not None else ()))
            ledger = ledger.with_run(unsettled)
            booked.append(unsettled)
        return replace(ledger, reservations=tuple(kept)), tuple(booked)


def new_run_id(run_id: str, attempt: str, now: dt.datetime, nonce: str) -> str:
    """``<workflow run id>-<attempt>-<start time>-<nonce>``: the nonce (see ``random_nonce``) keeps
    two processes with the same ``GITHUB_RUN_ID`` in the same second apart, so neither run's
    spend can be merged away under the other's id."""
    return f"{run_id}-{attempt}-{now.strftime('%Y%m%dT%H%M%SZ')}-{nonce}"


def random_nonce() -> str:
    """Eight random hex digits (32 bits) for a run id."""
    return secrets.token_hex(4)


def month_of(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m")


def new_ledger(now: dt.datetime, budget_micro_usd: int) -> Ledger:
    return Ledger(month=month_of(now), budget_micro_usd=budget_micro_usd)


def previous_month(month: str) -> str:
    """``2026-12`` -> ``2026-11``; ``2027-01`` -> ``2026-12``."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def run_month(run: RunRecord, default: str) -> str:
    """The month a run belongs to: the one it started in (``default`` when its start is unreadable)."""
    month = run.started_at[:7]
    return month if len(month) == 7 and month[4] == "-" and month[:4].isdigit() and "01" <= month[5:] <= "12" else default


def summarise(month: str, budget_micro_usd: int, runs: Iterable[RunRecord]) -> MonthSummary:
    """A month's totals from its runs (adjustments count as spend, not as runs)."""
    runs = tuple(runs)
    return MonthSummary(
        month=month, budget_micro_usd=budget_micro_usd, spent_micro_usd=sum(run.cost_micro_usd for run in runs),
        executions=_executions(runs), prs_opened=_prs_opened(runs), models=_model_totals(runs),
    )


def _executions(runs: Iterable[RunRecord]) -> int:
    return sum(1 for run in runs if run.kind != "adjustment")


def _prs_opened(runs: Iterable[RunRecord]) -> int:
    return sum(1 for run in runs if run.pr_url and run.kind == "task")


def _model_totals(runs: Iterable[RunRecord]) -> dict[str, ModelTotals]:
    totals: dict[str, ModelTotals] = {}
    for run in runs:
        for call in run.calls:
            totals[call.model] = totals.get(call.model, ModelTotals()).add(call)
    return totals


def _sorted_runs(runs: Iterable[RunRecord]) -> tuple[RunRecord, ...]:
    return tuple(sorted(runs, key=lambda r: (r.started_at, r.id)))


def _with_closing_summary(ledger: Ledger) -> Ledger:
    """Last month's history entry recomputed from ``closed_runs``, when the ledger keeps them."""
    if not ledger.closed_runs:
        return ledger
    month = ledger.closing_month
    history = {entry.month: entry for entry in ledger.history}
    budget = history[month].budget_micro_usd if month in history else ledger.budget_micro_usd
    history[month] = summarise(month, budget, ledger.closed_runs)
    return replace(ledger, history=tuple(history[m] for m in sorted(history)))


def rollover(ledger: Ledger, month: str) -> Ledger:
    """The ledger as of ``month``: every run filed under the month it started in.

    When ``month`` is later than the ledger's, the ledger's month is closed: its runs become
    ``closed_runs`` if it is the month before ``month`` (summary lines only, otherwise), and
    ``notified.recap_due`` names it (for the recap). Health state (breakers, parked tasks),
    reservations and the KEPT_FLAGS carry over; counters, milestones and the other notification
    flags reset. Runs of earlier months found among ``runs`` (a file from elsewhere) are filed
    the same way, so one month's figures never include another's. A ledger already in ``month``
    (or a later one) with every run in its place is returned as is.
    """
    if ledger.month > month:
        return ledger
    closing = previous_month(month)
    by_month: dict[str, dict[str, RunRecord]] = {}
    for rows, default in ((ledger.closed_runs, ledger.closing_month), (ledger.runs, ledger.month)):
        for run in rows:
            by_month.setdefault(run_month(run, default), {})[run.id] = run
    if ledger.month == month and set(by_month) <= {month, closing} and not any(
        run_month(run, closing) != closing for run in ledger.closed_runs
    ):
        return ledger
    history = {entry.month: entry for entry in ledger.history}
    if ledger.month < month:  # the ledger's own month closes, even with no runs (the recap says so)
        history[ledger.month] = summarise(ledger.month, ledger.budget_micro_usd, ())
    for when, runs in by_month.items():
        if when >= month:
            continue
        existing = history.get(when)
        summary = summarise(when, existing.budget_micro_usd if existing else ledger.budget_micro_usd, runs.values())
        if when == closing or existing is None or summary.spent_micro_usd >= existing.spent_micro_usd:
            history[when] = summary  # never less than a summary already kept (a file from elsewhere)
    current = _sorted_runs(run for when, runs in by_month.items() if when >= month for run in runs.values())
    closed = _sorted_runs(by_month.get(closing, {}).values())
    pulls = ledger.pulls
    for when in sorted(when for when in by_month if when < closing):  # months now kept as summaries only
        pulls = close_pulls(pulls, _sorted_runs(by_month[when].values()), when)
    rolled = ledger.month < month
    return replace(
        ledger,
        month=month,
        runs=current,
        closed_runs=closed,
        pulls=pulls,
        history=tuple(history[m] for m in sorted(history)[-HISTORY_MONTHS_KEPT:]),
        milestones_reached_micro_usd=() if rolled else ledger.milestones_reached_micro_usd,
        notified={"recap_due": ledger.month, **{k: ledger.notified[k] for k in KEPT_FLAGS if k in ledger.notified}}
        if rolled else ledger.notified,
    )


def freeze(ledger: Ledger, now: dt.datetime) -> Ledger:
    """Last month as one summary line once CLOSED_RUNS_KEPT of this month has passed: late runs
    have long settled by then, and the file stays one month of rows long. Its runs' share of
    each PR's spend goes into the PR records (``close_pulls``) as the rows go."""
    if not ledger.closed_runs:
        return ledger
    start = dt.datetime.strptime(f"{ledger.month}-01", "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    if now < start + CLOSED_RUNS_KEPT:
        return ledger
    return replace(ledger, closed_runs=(), pulls=close_pulls(ledger.pulls, ledger.closed_runs, ledger.closing_month))


def as_of(ledger: Ledger, now: dt.datetime) -> Ledger:
    """The ledger as a command at ``now`` (UTC) reads it: rolled over to ``now``'s month, last
    month's rows dropped after CLOSED_RUNS_KEPT."""
    return freeze(rollover(ledger, month_of(now)), now)


# --- pull-request outcomes (schema 4) ---------------------------------------------------
# What the money bought: each of the bot's PRs, its fate as GitHub last showed it
# (money/outcomes.py reads it) and what was spent on it. The spend, follow-ups, models and task
# kind of the months whose runs the ledger keeps as rows (this month's ``runs``, last month's
# ``closed_runs``) are read from those rows whenever asked (``with_runs``); a month's share is
# written into the record only when its rows go (``close_pulls``, from ``freeze`` and
# ``rollover``), so the totals are never stored twice, and a month's figure from rows replaces
# any stored one, so a merge of two ledgers cannot double-count.

PULL_STATES = ("open", "merged", "closed")
# Records kept as a month closes: the newest, opened within the last year (25 PRs a month for a year).
PULLS_KEPT = 300
PULLS_MONTHS_KEPT = 12


@dataclass(frozen=True)
class PullOutcome:
    """One bot PR. Times are UTC like ``2026-11-21T03:17:00Z``; ``spent`` is micro-dollars and
    ``follow_ups`` run counts per closed month (``"2026-11"``); ``None`` where not read yet."""

    url: str
    number: int
    task: str
    opened_at: str
    state: str = "open"  # "open" | "merged" | "closed" (closed unmerged)
    decided_at: str | None = None  # when it was merged or closed
    seen_at: str | None = None  # when GitHub last showed it (None: known from the runs only)
    head_sha: str = ""  # the head whose commits were read (``humans_pushed``, the lines)
    humans_pushed: bool | None = None
    lines_changed: int | None = None  # lines the bot added or removed
    lines_survived: int | None = None  # of those, the ones still in the merged change
    task_kind: str = ""
    analysis_model: str = ""
    code_model: str = ""
    arm: str = ""
    spent: Mapping[str, int] = field(default_factory=dict)
    follow_ups: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        record = {
            "url": self.url, "number": self.number, "task": self.task[:TASK_TEXT_KEPT], "opened_at": self.opened_at,
            "state": self.state, "decided_at": self.decided_at, "seen_at": self.seen_at, "head_sha": self.head_sha,
            "humans_pushed": self.humans_pushed, "lines_changed": self.lines_changed,
            "lines_survived": self.lines_survived, "task_kind": self.task_kind, "analysis_model": self.analysis_model,
            "code_model": self.code_model, "arm": self.arm, "spent": dict(sorted(self.spent.items())),
            "follow_ups": dict(sorted(self.follow_ups.items())),
        }
        if self.number == pull_number(self.url):  # read back from the URL
            del record["number"]
        return {key: value for key, value in record.items() if value not in (None, "", {})}


def pull_number(url: str) -> int:
    """The number at the end of a PR's URL (``.../pull/7``), 0 when it has none."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def with_runs(pulls: tuple[PullOutcome, ...], runs: tuple[RunRecord, ...], month: str) -> tuple[PullOutcome, ...]:
    """``pulls`` with ``month``'s ``runs`` folded in: each PR's spend and follow-ups that month,
    its models, kind and arm from the run that opened it; a PR known only from a run is added.

    A run counts toward the PR in its ``pr_url`` (the opening run, follow-ups, repairs); a task
    run that opened none (a failed attempt, or a batch-mode run that collected the analysis)
    toward the first PR for the same task opened after it started; the PR's analysis model is
    the opening run's, else the last one such a run answered with. Spend that bought no PR is in
    no record, nor is a follow-up's on a PR no task run of the ledger opened (one opened before
    PRs were recorded).
    """
    records = {pull.url: pull for pull in pulls}
    for run in runs:
        if run.kind == "task" and run.pr_url and run.pr_url not in records:  # the run that opened it
            records[run.pr_url] = PullOutcome(url=run.pr_url, number=pull_number(run.pr_url), task=run.task,
                                              opened_at=run.started_at)
    spent: dict[str, int] = {}
    follow_ups: dict[str, int] = {}
    analysed: dict[str, str] = {}  # a PR's analysis model, answered in a run before the one that opened it
    for run in runs:
        url = run.pr_url or _next_pull_for(records.values(), run)
        if url is None or url not in records:  # a follow-up on a PR opened before it was on record
            continue
        spent[url] = spent.get(url, 0) + run.cost_micro_usd
        follow_ups[url] = follow_ups.get(url, 0) + (run.kind == "follow_up")
        record = records[url]
        answered = {call.step: call.model for call in run.calls if call.outcome == "ok"}
        if run.kind == "task" and not run.pr_url and "analysis" in answered:
            analysed[url] = answered["analysis"]
        if run.kind == "task" and run.pr_url and not record.code_model:
            records[url] = replace(record, analysis_model=answered.get("analysis", analysed.get(url, "")),
                                   code_model=answered.get("code", ""), task_kind=record.task_kind or run.task_kind, arm=run.arm)
    return tuple(sorted(
        (replace(record, spent={**record.spent, month: spent[url]} if url in spent else record.spent,
                 follow_ups={**record.follow_ups, month: follow_ups[url]} if follow_ups.get(url) else record.follow_ups)
         for url, record in records.items()),
        key=lambda pull: (pull.opened_at, pull.url),
    ))


def _next_pull_for(pulls: Any, run: RunRecord) -> str | None:
    if run.kind != "task":
        return None
    later = [pull for pull in pulls if pull.task == run.task[:TASK_TEXT_KEPT] and pull.opened_at >= run.started_at]
    return min(later, key=lambda pull: pull.opened_at).url if later else None


def close_pulls(pulls: tuple[PullOutcome, ...], runs: tuple[RunRecord, ...], month: str) -> tuple[PullOutcome, ...]:
    """The records as a month's rows go: its runs folded in for good; kept are the newest
    ``PULLS_KEPT`` opened within ``PULLS_MONTHS_KEPT`` months of it (the ledger stays small).
    A PR opened by then keeps no task text: it only tied failed attempts kept as rows to it,
    and every later run started after the PR opened (the URL names the PR)."""
    year, number = map(int, month.split("-"))
    oldest = f"{year - PULLS_MONTHS_KEPT // 12:04d}-{number:02d}"
    return tuple(
        replace(pull, task="") if pull.opened_at[:7] <= month else pull
        for pull in with_runs(pulls, runs, month) if pull.opened_at[:7] >= oldest
    )[-PULLS_KEPT:]


def merge_pulls(ours: tuple[PullOutcome, ...], theirs: tuple[PullOutcome, ...]) -> tuple[PullOutcome, ...]:
    """By URL: the side GitHub was read on last wins (ours on a tie); spend and follow-ups of
    closed months are unions (the same month's figure is the same on both sides)."""
    merged = {pull.url: pull for pull in theirs}
    for pull in ours:
        other = merged.get(pull.url)
        if other is None:
            merged[pull.url] = pull
            continue
        newest = pull if (pull.seen_at or "") >= (other.seen_at or "") else other
        merged[pull.url] = replace(
            newest, spent={**other.spent, **pull.spent}, follow_ups={**other.follow_ups, **pull.follow_ups},
            analysis_model=newest.analysis_model or pull.analysis_model or other.analysis_model,
            code_model=newest.code_model or pull.code_model or other.code_model,
            task_kind=newest.task_kind or pull.task_kind or other.task_kind, arm=newest.arm or pull.arm or other.arm,
        )
    return tuple(sorted(merged.values(), key=lambda pull: (pull.opened_at, pull.url)))


def _read_pull(reader: "_Reader", row: Any, where: str) -> PullOutcome:
    row = reader.obj(row, where)
    state = reader.text(row, "state", f"{where}.state") or ""
    if state not in PULL_STATES:
        raise reader.fail(f"{where}.state", f"one of {', '.join(PULL_STATES)}")
    humans = row.get("humans_pushed")
    if humans is not None and not isinstance(humans, bool):
        raise reader.fail(f"{where}.humans_pushed", "true, false or missing")

    def optional_int(key: str) -> int | None:
        return None if row.get(key) is None else reader.integer(row, key, f"{where}.{key}")

    def by_month(key: str) -> dict[str, int]:
        found = reader.mapping(row, key, f"{where}.{key}")
        for month in found:
            reader.month({"m": month}, "m", f"{where}.{key} key {month!r}")
            reader.integer(found, month, f"{where}.{key}.{month}")
        return found

    url = reader.text(row, "url", f"{where}.url") or ""
    return PullOutcome(
        url=url,
        number=pull_number(url) if row.get("number") is None else reader.integer(row, "number", f"{where}.number"),
        task=reader.text(row, "task", f"{where}.task", optional=True) or "",
        opened_at=reader.text(row, "opened_at", f"{where}.opened_at") or "",
        state=state,
        decided_at=reader.text(row, "decided_at", f"{where}.decided_at", optional=True),
        seen_at=reader.text(row, "seen_at", f"{where}.seen_at", optional=True),
        head_sha=reader.text(row, "head_sha", f"{where}.head_sha", optional=True) or "",
        humans_pushed=humans,
        lines_changed=optional_int("lines_changed"),
        lines_survived=optional_int("lines_survived"),
        **{key: reader.text(row, key, f"{where}.{key}", optional=True) or ""
           for key in ("task_kind", "analysis_model", "code_model", "arm")},
        spent=by_month("spent"),
        follow_ups=by_month("follow_ups"),
    )


# --- merge ------------------------------------------------------------------------------


def merge(base: Ledger | None, ours: Ledger, theirs: Ledger) -> Ledger:
    """Three-way merge of two ledgers that diverged from ``base`` (None: no common one).

    No run is lost: runs are keyed by id (``_merge_runs`` picks one copy of a run both sides
    hold). Sets (milestones, notification flags) are unions, so
    nothing is announced twice. Scalars take our value unless we left it as it was in the
    base and they changed it (a human edit).
    """
    month = max(ours.month, theirs.month)
    ours = rollover(ours, month)
    theirs = rollover(theirs, month)
    if base is not None:
        base = rollover(base, month)

    runs = _merge_runs(base.runs if base is not None else None, ours.runs, theirs.runs)
    closed, history = _merge_closed_months(base, ours, theirs)

    budget = ours.budget_micro_usd
    if base is not None and ours.budget_micro_usd == base.budget_micro_usd:
        budget = theirs.budget_micro_usd

    notified = dict(theirs.notified)
    for key, value in ours.notified.items():
        notified[key] = _union(notified.get(key), value)

    merged = Ledger(
        month=month,
        budget_micro_usd=budget,
        runs=runs,
        closed_runs=closed,
        history=tuple(history[m] for m in sorted(history)[-HISTORY_MONTHS_KEPT:]),
        milestones_reached_micro_usd=tuple(
            sorted(set(ours.milestones_reached_micro_usd) | set(theirs.milestones_reached_micro_usd))
        ),
        notified=notified,
        health=_merge_health(ours.health, theirs.health),
        pulls=merge_pulls(ours.pulls, theirs.pulls),
    )
    return replace(_with_closing_summary(merged), reservations=_merge_reservations(base, ours, theirs, merged.runs))


def _merge_closed_months(
    base: Ledger | None, ours: Ledger, theirs: Ledger
) -> tuple[tuple[RunRecord, ...], dict[str, MonthSummary]]:
    """Last month's rows and every month's summary of two ledgers rolled to the same month.

    Last month is merged run by run (by id, the copy ``_merge_runs`` picks) while either side keeps its
    rows. Where one side has rows and the other only a summary line, the rows win when they
    come to more, else the summary (it is then the newer, frozen copy). A month both sides
    keep as a summary takes the larger: a merge never shows less than either copy recorded.
    """
    theirs_history = {entry.month: entry for entry in theirs.history}
    history = dict(theirs_history)
    for entry in ours.history:
        other = theirs_history.get(entry.month)
        if other is None or entry.spent_micro_usd >= other.spent_micro_usd:
            history[entry.month] = entry
    closing = ours.closing_month
    if ours.closed_runs and theirs.closed_runs:
        before = base.closed_runs if base is not None and base.closing_month == closing else None
        return _merge_runs(before, ours.closed_runs, theirs.closed_runs), history
    side, other_side = (ours, theirs) if ours.closed_runs else (theirs, ours)
    if not side.closed_runs:
        return (), history
    summary_line = next((entry for entry in other_side.history if entry.month == closing), None)
    if summary_line is not None and summary_line.spent_micro_usd >= summarise(closing, 0, side.closed_runs).spent_micro_usd:
        history[closing] = summary_line
        return (), history
    return side.closed_runs, history


def _merge_runs(
    base: Sequence[RunRecord] | None, ours: Sequence[RunRecord], theirs: Sequence[RunRecord]
) -> tuple[RunRecord, ...]:
    """Every run of both sides, by id, in start order. Of a run both hold: the copy of the side
    that changed it since ``base`` (a run records its own calls; anyone else's copy is older);
    when both changed it, or there is no base, the one further along: finished over running over
    booked ``unsettled``, then more calls (a run's calls only grow); ours on a tie."""
    before = {run.id: run for run in base} if base is not None else {}
    runs = {run.id: run for run in theirs}
    for run in ours:
        other = runs.get(run.id)
        if other is None or run == other or (
            before.get(run.id) != run and (before.get(run.id) == other or _progress(run) >= _progress(other))
        ):
            runs[run.id] = run  # an equal copy too: the merged ledger shares our records, theirs are let go
    return _sorted_runs(runs.values())


def _progress(run: RunRecord) -> tuple[int, int]:
    return ({UNSETTLED: 0, RUNNING: 1}.get(run.outcome, 2), len(run.calls))


def _merge_reservations(
    base: Ledger | None, ours: Ledger, theirs: Ledger, runs: tuple[RunRecord, ...]
) -> tuple[Reservation, ...]:
    """Theirs (the branch is where reservations are made and settled), plus ours that are new
    since ``base``; of two for one run, the later (a run renews its own); a reservation whose run
    has finished or was booked (outcome other than "running") is settled."""
    known = {r.run_id for r in base.reservations} if base is not None else set()
    kept = {r.run_id: r for r in theirs.reservations}
    for reservation in ours.reservations:
        other = kept.get(reservation.run_id)
        if reservation.run_id not in known and (other is None or reservation.expires_at >= other.expires_at):
            kept[reservation.run_id] = reservation
    finished = {run.id for run in runs if run.outcome != RUNNING}
    return tuple(kept[key] for key in sorted(kept) if key not in finished)


def _union(theirs: Any, ours: Any) -> Any:
    """Flags: true wins; lists: union; otherwise ours."""
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return bool(ours) or bool(theirs)
    if isinstance(ours, list) and isinstance(theirs, list):
        return sorted(set(ours) | set(theirs))
    return ours if ours is not None else theirs


def _merge_health(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, Any]:
    """Health state is advisory; ours is the newest observation, theirs fills what we lack."""
    merged = dict(theirs)
    for key, value in ours.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


# --- (de)serialisation ------------------------------------------------------------------


def to_text(ledger: Ledger) -> str:
    """Sorted keys, two-space indent, one line per run and per history month, trailing newline."""
    summary = ledger.summary()
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "call_columns": list(CALL_COLUMNS),
        "month": ledger.month,
        "budget_micro_usd": ledger.budget_micro_usd,
        "spent_micro_usd": summary.spent_micro_usd,
        "remaining_micro_usd": max(0, ledger.budget_micro_usd - summary.spent_micro_usd),
        "executions": summary.executions,
        "prs_opened": summary.prs_opened,
        "models": {name: totals.to_json() for name, totals in sorted(summary.models.items())},
        "milestones_reached_micro_usd": list(ledger.milestones_reached_micro_usd),
        "notified": dict(sorted(ledger.notified.items())),
        "health": ledger.health,
    }
    rows: list[tuple[str, Sequence[Any]]] = [("history", ledger.history)]
    if ledger.closed_runs:  # last month's runs, for CLOSED_RUNS_KEPT into this month
        rows.append(("closed_runs", ledger.closed_runs))
    if ledger.pulls:  # once the bot has pull requests on record
        rows.append(("pulls", ledger.pulls))
    if ledger.reservations:  # only while runs are in progress: a settled ledger reads as before
        rows.append(("reservations", ledger.reservations))
    rows.append(("runs", ledger.runs))
    # One list of pieces joined once: a ledger of thousands of runs is never held twice over.
    parts = ["{\n"]
    for key, value in sorted(document.items()):
        indent = None if key == "call_columns" else 2  # the header reads best on one line
        rendered = json.dumps(value, sort_keys=True, indent=indent, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f'  "{key}": {rendered},\n')
    for index, (key, records) in enumerate(rows):
        comma = "," if index < len(rows) - 1 else ""
        if not records:
            parts.append(f'  "{key}": []{comma}\n')
            continue
        parts.append(f'  "{key}": [\n    ')
        for number, record in enumerate(records):
            if number:
                parts.append(",\n    ")
            parts.append(json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        parts.append(f"\n  ]{comma}\n")
    parts.append("}\n")
    return "".join(parts)


def from_text(text: str, source: str) -> Ledger:
    """Parse and validate; any problem raises LedgerError naming the file and the field.

    A spend the file states (``spent_micro_usd``) above what its runs add up to is never
    believed away: the difference is kept as an ``unaccounted`` run and said in ``warnings``.
    """
    hint = RESTORE_HINT.format(path=source)
    data = _parse_json(text, source, hint)
    if not isinstance(data, dict):
        raise LedgerError(f"{source}: must hold a JSON object; {hint}")
    data = _upgrade(data, source, hint)
    reader = _Reader(source, hint)
    ledger = Ledger(
        month=reader.month(data, "month"),
        budget_micro_usd=reader.integer(data, "budget_micro_usd"),
        runs=reader.runs(reader.array(data, "runs", required=True)),
        history=tuple(reader.history(row, f"history[{i}]") for i, row in enumerate(reader.array(data, "history"))),
        milestones_reached_micro_usd=tuple(
            reader.integer({"m": m}, "m", f"milestones_reached_micro_usd[{i}]")
            for i, m in enumerate(reader.array(data, "milestones_reached_micro_usd"))
        ),
        notified=reader.free_form(reader.mapping(data, "notified"), "notified"),
        health=reader.health(reader.free_form(reader.mapping(data, "health"), "health")),
        reservations=tuple(
            reader.reservation(row, f"reservations[{i}]") for i, row in enumerate(reader.array(data, "reservations"))
        ),
        closed_runs=reader.runs(reader.array(data, "closed_runs"), "closed_runs"),
        pulls=tuple(_read_pull(reader, row, f"pulls[{i}]") for i, row in enumerate(reader.array(data, "pulls"))),
    )
    stated = None if data.get("spent_micro_usd") is None else reader.integer(data, "spent_micro_usd")
    return _with_closing_summary(_with_stated_spend(ledger, stated, source))


class _Refused(ValueError):
    """A JSON text json.loads would take but a ledger must not hold."""


def _parse_json(text: str, source: str, hint: str) -> Any:
    """json.loads, refusing what it would silently take or crash on: a key twice in one object
    (a bad hand merge: json keeps the last ``runs`` and drops the other's spend), NaN and
    Infinity, numbers too long to convert, nesting deeper than the interpreter's stack."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise LedgerError(f"{source}: not valid JSON (line {err.lineno}: {err.msg}); {hint}") from None
    except _Refused as err:
        raise LedgerError(f"{source}: {err}; {hint}") from None
    except ValueError:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        raise LedgerError(f"{source}: holds a number thousands of digits long, which no amount needs; {hint}") from None
    except RecursionError:
        raise LedgerError(f"{source}: nested too deeply to be a ledger; {hint}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _Refused(f"the key {twice!r} appears twice in one object (a hand-resolved merge?); "
                       "keep one, holding what both held (every run of both)")
    return mapping


def _no_constant(name: str) -> Any:
    raise _Refused(f"holds {name}, which is not a number JSON allows")


def _with_stated_spend(ledger: Ledger, stated: int | None, source: str) -> Ledger:
    """The ledger, plus an ``unaccounted`` run for what the file says was spent beyond its runs
    (runs removed by hand or by a bad merge, the total kept): less is never believed silently."""
    missing = (stated or 0) - ledger.spent_micro_usd
    if missing <= 0:
        return ledger
    number = 1 + sum(run.outcome == UNACCOUNTED for run in ledger.runs)
    kept = RunRecord(
        id=f"{UNACCOUNTED}-{ledger.month}-{number}", started_at=f"{ledger.month}-01T00:00:00Z",
        task="spend the ledger states beyond its runs", outcome=UNACCOUNTED,
        calls=(CallRecord(UNACCOUNTED, "unknown", "unknown", Usage(), missing, 0, UNACCOUNTED),),
    )
    warning = (
        f"{source}: spent_micro_usd says {_usd(stated or 0)} but the runs add up to {_usd(ledger.spent_micro_usd)}; "
        f"keeping the {_usd(missing)} difference as run {kept.id!r} (outcome {UNACCOUNTED}). If runs were removed "
        f"on purpose, remove that run too; else restore them from git history (git log -p -- {source.rpartition(':')[2]})"
    )
    return replace(ledger.with_run(kept), warnings=ledger.warnings + (warning,))


def _usd(micro_usd: int) -> str:
    return f"${micro_usd / 1_000_000:,.2f}"


def _upgrade_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (the seed's format): dollar floats, no runs. Kept as history-free totals."""
    month = data.get("month") or data.get("current_month")
    budget = data.get("monthly_budget", data.get("budget_usd", data.get("budget", 15)))
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise ValueError("budget must be a number")
    spent_key = next((key for key in SEED_SPENT_KEYS if key in data), None)
    if spent_key is None:  # a month's spend is never assumed to be $0
        raise ValueError(f"the spend is missing ({' or '.join(SEED_SPENT_KEYS)})")
    spent = data[spent_key]
    if isinstance(spent, bool) or not isinstance(spent, (int, float)):
        raise ValueError("spent must be a number")
    runs = []
    if spent:
        runs.append(
            {
                "id": "imported-seed-ledger",
                "started_at": f"{month}-01T00:00:00Z",
                "task": "spend imported from the previous ledger format",
                "outcome": "imported",
                "calls": [
                    {
                        "step": "imported",
                        "model": "unknown",
                        "provider": "unknown",
                        "tokens": {},
                        "cost_micro_usd": round(spent * 1_000_000),
                        "latency_ms": 0,
                        "outcome": "ok",
                    }
                ],
            }
        )
    return {
        "schema_version": 1,
        "month": month,
        "budget_micro_usd": round(budget * 1_000_000),
        "runs": runs,
        "history": [],
        "milestones_reached_micro_usd": [],
        "notified": {},
        "health": {},
    }


def _upgrade_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 wrote each call as an object; version 2 as a row in ``CALL_COLUMNS`` order."""
    runs = data.get("runs", [])
    if isinstance(runs, list):  # anything else is left for the reader to name
        runs = [
            {**run, "calls": [_call_object_to_row(call) for call in run["calls"]]}
            if isinstance(run, dict) and isinstance(run.get("calls"), list) else run
            for run in runs
        ]
    return {**data, "schema_version": 2, "runs": runs}


def _call_object_to_row(call: Any) -> Any:
    if not isinstance(call, dict):
        return call  # left for the reader to name
    tokens = call.get("tokens", {}) if isinstance(call.get("tokens", {}), dict) else {}
    model = call.get("model")
    row = [call.get("step"), model] + [tokens.get(name, 0) for name in _SCHEMA_2_CALL_COLUMNS[2:7]]
    row += [call.get("cost_micro_usd"), call.get("latency_ms")]
    provider = call.get("provider")
    if provider is not None and provider != provider_implied_by(str(model)):
        row += [call.get("outcome", "ok"), provider]
    elif call.get("outcome", "ok") != "ok":
        row.append(call.get("outcome"))
    return row


def _upgrade_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 3 adds the ``reasoning`` column after ``output``: 0 for every call before it,
    which is what those calls recorded (thinking was not counted apart then); closed months'
    per-model totals gain ``reasoning_tokens`` 0 the same way."""
    upgraded = {**data, "schema_version": 3, "call_columns": list(CALL_COLUMNS)}
    runs = data.get("runs")
    if isinstance(runs, list):  # anything else (or nothing) is left for the reader to name
        upgraded["runs"] = [
            {**run, "calls": [row[:4] + [0] + row[4:] if isinstance(row, list) and len(row) >= 4 else row
                              for row in run["calls"]]}
            if isinstance(run, dict) and isinstance(run.get("calls"), list) else run
            for run in runs
        ]
    history = data.get("history")
    if isinstance(history, list):  # closed months' per-model totals gain reasoning_tokens: 0
        upgraded["history"] = [
            {**entry, "models": {
                name: {"reasoning_tokens": 0, **totals} if isinstance(totals, dict) else totals
                for name, totals in entry["models"].items()
            }} if isinstance(entry, dict) and isinstance(entry.get("models"), dict) else entry
            for entry in history
        ]
    return upgraded


def _upgrade_3_to_4(data: dict[str, Any]) -> dict[str, Any]:
    """Version 4 adds ``pulls`` (the bot's PRs and their fate) and a run's optional ``task_kind``
    and ``arm``: a version 3 ledger has none on record yet, and the PRs of the months it keeps as
    rows (``runs``, ``closed_runs``) are read back from those runs (``money/outcomes.py``), so
    nothing is lost. ``closed_runs``, a run's ``checks`` and ``repository`` came within
    version 3 (an older bot ignores them), so this is the one step after 2 -> 3."""
    return {**data, "schema_version": 4}


# schema version N -> the step that turns it into N + 1; old ledgers keep loading.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _upgrade_0_to_1, 1: _upgrade_1_to_2, 2: _upgrade_2_to_3, 3: _upgrade_3_to_4,
}


def _upgrade(data: dict[str, Any], source: str, hint: str) -> dict[str, Any]:
    if "schema_version" not in data and any(key in data for key in ("runs", "budget_micro_usd", "call_columns")):
        # only the seed's format (dollar totals, no runs) ever lacked a version: anything else
        # without one is damaged, and reading it as the seed's would drop every run
        raise LedgerError(f"{source}: schema_version is missing; {hint}")
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise LedgerError(f"{source}: schema_version must be a whole number; {hint}")
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{source}: schema_version {version} is newer than this bot understands ({SCHEMA_VERSION}); "
            "upgrade ai-orchestration"
        )
    while version < SCHEMA_VERSION:
        try:
            data = UPGRADES[version](data)
        except (ValueError, TypeError, KeyError) as err:
            raise LedgerError(f"{source}: cannot upgrade from schema_version {version}: {err}; {hint}") from None
        version += 1
    return data


class _Reader:
    """Typed field access that fails with the file, the field path and what to do."""

    def __init__(self, source: str, hint: str) -> None:
        self.source = source
        self.hint = hint

    def fail(self, where: str, expected: str) -> LedgerError:
        return LedgerError(f"{self.source}: {where} must be {expected}; {self.hint}")

    def integer(self, data: Mapping[str, Any], key: str, where: str | None = None) -> int:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(where or key, "a whole number, zero or more")
        if value > MAX_INTEGER:
            raise self.fail(where or key, f"at most {MAX_INTEGER:,} (no amount or count comes near it)")
        return value

    def free_form(self, value: dict[str, Any], where: str) -> dict[str, Any]:
        """``value`` when it nests no deeper than MAX_DEPTH (it is written back as it is)."""
        level: list[Any] = [value]
        for _ in range(MAX_DEPTH):
            level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                     if isinstance(child, (dict, list))]
        if level:
            raise self.fail(where, f"nested at most {MAX_DEPTH} levels deep")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str, optional: bool = False) -> str | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(where, "a string")
        return value

    def month(self, data: Mapping[str, Any], key: str, where: str | None = None) -> str:
        value = self.text(data, key, where or key) or ""
        try:  # strictly YYYY-MM: months are compared as strings (strptime alone takes "2026-1")
            if len(value) != 7:
                raise ValueError(value)
            dt.datetime.strptime(value, "%Y-%m")
        except ValueError:
            raise self.fail(where or key, "a month like 2026-11") from None
        return value

    def array(self, data: Mapping[str, Any], key: str, where: str | None = None, *, required: bool = False) -> list[Any]:
        if required and key not in data:  # e.g. ``runs``: a missing list of spend is not an empty one
            raise LedgerError(f"{self.source}: {where or key} is missing; {self.hint}")
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(where or key, "a list")
        return value

    def runs(self, rows: list[Any], key: str = "runs") -> tuple[RunRecord, ...]:
        """Every run of the list ``key``, each id once: two runs under one id would merge into one and lose a run's spend."""
        runs = tuple(self.run(row, f"{key}[{i}]") for i, row in enumerate(rows))
        first: dict[str, int] = {}
        for index, record in enumerate(runs):
            if record.id in first:
                raise LedgerError(
                    f"{self.source}: run id {record.id!r} appears twice ({key}[{first[record.id]}] and {key}[{index}]); "
                    f"give one of them a new id, keeping both runs' calls; {self.hint}"
                )
            first[record.id] = index
        return runs

    def mapping(self, data: Mapping[str, Any], key: str, where: str | None = None) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(where or key, "an object")
        return value

    def obj(self, row: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(row, dict):
            raise self.fail(where, "an object")
        return row

    def run(self, row: Any, where: str) -> RunRecord:
        row = self.obj(row, where)
        run_id = self.text(row, "id", f"{where}.id") or ""
        started_at = self.text(row, "started_at", f"{where}.started_at") or ""
        task = self.text(row, "task", f"{where}.task") or ""
        outcome = self.text(row, "outcome", f"{where}.outcome") or ""
        rows = self.array(row, "calls", f"{where}.calls", required=True)  # a run without calls is not a $0 run
        return RunRecord(
            id=run_id, started_at=started_at, task=task, outcome=outcome,
            pr_url=self.text(row, "pr_url", f"{where}.pr_url", optional=True),
            calls=tuple(self.call(c, f"{where}.calls[{i}]") for i, c in enumerate(rows)),
            kind=self.text(row, "kind", f"{where}.kind", optional=True) or "task",
            pull=None if row.get("pull") is None else self.integer(row, "pull", f"{where}.pull"),
            checks=None if row.get("checks") is None else self.checks(row["checks"], f"{where}.checks"),
            repository=self.text(row, "repository", f"{where}.repository", optional=True) or "",
            task_kind=self.text(row, "task_kind", f"{where}.task_kind", optional=True) or "",
            arm=self.text(row, "arm", f"{where}.arm", optional=True) or "",
        )

    def checks(self, row: Any, where: str) -> ChecksRecord:
        row = self.obj(row, where)
        failing = row.get("failing_on_base")
        if failing is not None and not (isinstance(failing, dict) and all(
                isinstance(marks, list) and all(isinstance(mark, str) for mark in marks) for marks in failing.values())):
            raise self.fail(f"{where}.failing_on_base", "an object of command -> list of strings")
        return ChecksRecord(
            result=self.text(row, "result", f"{where}.result") or "",
            repairs=self.integer(row, "repairs", f"{where}.repairs") if "repairs" in row else 0,
            base=self.text(row, "base", f"{where}.base", optional=True) or "",
            files=self.text(row, "files", f"{where}.files", optional=True) or "",
            commands=self.text(row, "commands", f"{where}.commands", optional=True) or "",
            failing_on_base=None if failing is None else tuple((command, tuple(marks)) for command, marks in failing.items()),
        )

    def call(self, row: Any, where: str) -> CallRecord:
        if not isinstance(row, list) or not REQUIRED_CALL_COLUMNS <= len(row) <= len(CALL_COLUMNS):
            raise self.fail(where, f"a row of {REQUIRED_CALL_COLUMNS} to {len(CALL_COLUMNS)} values ({', '.join(CALL_COLUMNS)})")
        named = dict(zip(CALL_COLUMNS, row))
        for column in CALL_COLUMNS[2:REQUIRED_CALL_COLUMNS]:
            self.integer(named, column, f"{where}.{column}")
        model = self.text(named, "model", f"{where}.model") or ""
        implied = provider_implied_by(model)
        return CallRecord(
            step=self.text(named, "step", f"{where}.step") or "",
            model=model,
            provider=self.text(named, "provider", f"{where}.provider", optional=implied is not None) or implied or "",
            usage=Usage(
                input_tokens=named["input"], output_tokens=named["output"], reasoning_tokens=named["reasoning"],
                cache_write_5m_tokens=named["cache_write_5m"], cache_write_1h_tokens=named["cache_write_1h"],
                cache_read_tokens=named["cache_read"],
            ),
            cost_micro_usd=named["cost_micro_usd"],
            latency_ms=named["latency_ms"],
            outcome=self.text(named, "outcome", f"{where}.outcome", optional=True) or "ok",
        )

    def reservation(self, row: Any, where: str) -> Reservation:
        row = self.obj(row, where)
        expires = self.text(row, "expires_at", f"{where}.expires_at") or ""
        try:
            dt.datetime.strptime(expires, TIME_FORMAT)
        except ValueError:
            raise self.fail(f"{where}.expires_at", "a UTC time like 2026-11-21T03:47:00Z") from None
        in_flight = row.get("in_flight")
        return Reservation(
            run_id=self.text(row, "run_id", f"{where}.run_id") or "",
            task=self.text(row, "task", f"{where}.task") or "",
            micro_usd=self.integer(row, "micro_usd", f"{where}.micro_usd"),
            expires_at=expires,
            in_flight=None if in_flight is None else self.call(in_flight, f"{where}.in_flight"),
            itemised="in_flight" in row,
            repository=self.text(row, "repository", f"{where}.repository", optional=True) or "",
        )

    def health(self, health: dict[str, Any]) -> dict[str, Any]:
        """The provider-health state (see health.py): breakers per provider, parked tasks by key."""
        for provider, breaker in self.mapping(health, "breakers", "health.breakers").items():
            where = f"health.breakers.{provider}"
            breaker = self.obj(breaker, where)
            self.integer(breaker, "consecutive_failures", f"{where}.consecutive_failures")
            opened = breaker.get("opened_at")
            if opened is not None:
                try:
                    dt.datetime.strptime(str(opened), "%Y-%m-%dT%H:%M:%SZ")
                except ValueError:
                    raise self.fail(f"{where}.opened_at", "null or a UTC time like 2026-11-21T03:17:00Z") from None
        for key, entry in self.mapping(health, "parked", "health.parked").items():
            where = f"health.parked.{key}"
            entry = self.obj(entry, where)
            self.text(entry, "task", f"{where}.task")
            self.integer(entry, "failures", f"{where}.failures")
            if not isinstance(entry.get("parked"), bool):
                raise self.fail(f"{where}.parked", "true or false")
        return health

    def history(self, row: Any, where: str) -> MonthSummary:
        row = self.obj(row, where)
        models = {}
        for name, totals in self.mapping(row, "models", f"{where}.models").items():
            totals = self.obj(totals, f"{where}.models.{name}")
            models[name] = ModelTotals(
                **{key: self.integer(totals, key, f"{where}.models.{name}.{key}") for key in ModelTotals().to_json()}
            )
        return MonthSummary(
            month=self.month(row, "month", f"{where}.month"),
            budget_micro_usd=self.integer(row, "budget_micro_usd", f"{where}.budget_micro_usd"),
            spent_micro_usd=self.integer(row, "spent_micro_usd", f"{where}.spent_micro_usd"),
            executions=self.integer(row, "executions", f"{where}.executions"),
            prs_opened=self.integer(row, "prs_opened", f"{where}.prs_opened"),
            models=models,
        )


# --- files ------------------------------------------------------------------------------


def load(path: Path, now: dt.datetime, budget_micro_usd: int, *, root: Path | None = None) -> Ledger:
    """The ledger at ``path``, or a fresh one for this month when there is none yet.

    A symbolic link at ``path`` or at any folder between ``root`` and it raises LedgerError:
    a dangling link would read as $0, and a link elsewhere would make another file the ledger.
    """
    check_not_linked(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return new_ledger(now, budget_micro_usd)
    except (OSError, UnicodeDecodeError) as err:
        raise LedgerError(f"{path}: cannot read the ledger: {err}") from None
    return from_text(text, str(path))


def check_not_linked(path: Path, root: Path | None = None) -> None:
    """Raise LedgerError naming the first symbolic link among ``path`` and its folders below ``root``."""
    folders = [] if root is None else [parent for parent in path.parents if parent != root and root in parent.parents]
    for candidate in [*reversed(folders), path]:
        if candidate.is_symlink():
            shown = candidate.relative_to(root) if root is not None else candidate
            raise LedgerError(
                f"{shown}: the ledger path {'is' if candidate == path else 'goes through'} a symbolic link "
                f"(to {os.readlink(candidate)}); the ledger must be a regular file in the repository: "
                "replace the link with the file itself"
            )


def save(ledger: Ledger, path: Path) -> None:
    """Atomic replace: a temporary file in the same folder, fsync, then rename."""
    text = to_text(ledger)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; keep the ledger's mode (a new one gets 0666 minus umask)
        os.chmod(temporary, _mode_for(path))
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
