"""`reconcile`: the ledger's own arithmetic against what the providers say they billed.

The ledger is what the bot computed from each reply's usage and the price table. The providers'
own usage and cost reports (read by ``models/usage_reports.py``) are the bill. ``compare`` lines
them up per day (UTC) and per model; ``adjustments`` turns what the providers billed beyond the
ledger into adjustment rows (a killed run's calls, a request billed although it failed): one
``RunRecord`` of kind "adjustment" per provider and day, with one call row per model. Their ids
(``reconcile-<provider>-<day>``) make ``--apply`` idempotent: a later reconcile replaces them.

Money is integer micro-dollars throughout; a day is a UTC date; a run's calls count on the day
it started (a run lasts minutes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.config import Config
from ..core.errors import LedgerError, ProtectedBranchError
from ..core.prices import Usage, format_usd
from ..repo import gitops
from . import ledger as ledger_module
from . import ledger_source
from .reservations import RESERVE_ATTEMPTS
from .ledger import CallRecord, Ledger, RunRecord

ADJUSTMENT = "adjustment"
STEP = "reconcile"
# A day and model whose figures differ by less than this is rounding (cents against micro-dollars).
TOLERANCE_MICRO_USD = 10_000


@dataclass(frozen=True)
class Billed:
    """What a provider's reports say one model cost on one UTC day: ``cost_micro_usd`` from its
    cost report, ``usage`` from its usage report (``input_tokens`` without cached or cache-written
    tokens, as in the ledger). ``model`` as the price table names it when it knows the model."""

    provider: str
    day: dt.date
    model: str
    cost_micro_usd: int
    usage: Usage = Usage()


@dataclass(frozen=True)
class Line:
    """One provider, day and model: the bot's own runs in the ledger, what was billed, and an
    adjustment already recorded for it (micro-dollars)."""

    provider: str
    day: dt.date
    model: str
    ledger_micro_usd: int
    billed_micro_usd: int
    ledger_usage: Usage
    billed_usage: Usage
    adjusted_micro_usd: int = 0

    @property
    def difference(self) -> int:
        """What the provider billed beyond the ledger's own runs (negative: the ledger holds more)."""
        return self.billed_micro_usd - self.ledger_micro_usd

    @property
    def differs(self) -> bool:
        return abs(self.difference) >= TOLERANCE_MICRO_USD


@dataclass(frozen=True)
class Reconciliation:
    month: str
    providers: tuple[str, ...]
    lines: tuple[Line, ...]
    per_day: bool  # False: a month kept only as a summary line, compared per model for the month

    @property
    def shortfall_micro_usd(self) -> int:
        """What the providers billed that the ledger lacks (differences that are not rounding)."""
        return sum(line.difference for line in self.lines if line.differs and line.difference > 0)


def month_runs(ledger: Ledger, month: str) -> tuple[RunRecord, ...] | None:
    """The runs of ``month`` the ledger still holds row by row (None: only its summary line)."""
    if month == ledger.month:
        return ledger.runs
    if month == ledger.closing_month and ledger.closed_runs:
        return ledger.closed_runs
    return None


# (provider, day or None for the whole month, model)
_Key = tuple[str, "dt.date | None", str]


def compare(ledger: Ledger, month: str, billed: Iterable[Billed], providers: Iterable[str]) -> Reconciliation:
    """Line up the ledger's month with the providers' figures, per day and model (per model only
    when the month is one summary line). Only ``providers`` are compared."""
    providers = tuple(sorted(set(providers)))
    runs = month_runs(ledger, month)
    key: _Key
    ours: dict[_Key, tuple[int, Usage]] = {}
    adjusted: dict[_Key, int] = {}
    if runs is not None:
        for run in runs:
            day = dt.date.fromisoformat(run.started_at[:10])
            for call in run.calls:
                key = (call.provider, day, call.model)
                if run.kind == ADJUSTMENT:
                    adjusted[key] = adjusted.get(key, 0) + call.cost_micro_usd
                else:
                    ours[key] = _add(ours.get(key), call.cost_micro_usd, call.usage)
    else:
        entry = next((e for e in ledger.history if e.month == month), None)
        for model, totals in (entry.models.items() if entry else ()):
            provider = ledger_module.provider_implied_by(model) or ""
            usage = Usage(input_tokens=totals.input_tokens, output_tokens=totals.output_tokens, cache_read_tokens=totals.cached_tokens)
            ours[(provider, None, model)] = (totals.spent_micro_usd, usage)
    theirs: dict[_Key, tuple[int, Usage]] = {}
    for row in billed:
        key = (row.provider, row.day if runs is not None else None, row.model)
        theirs[key] = _add(theirs.get(key), row.cost_micro_usd, row.usage)
    lines = []
    for key in sorted(set(ours) | set(theirs) | set(adjusted), key=lambda k: (k[1] or dt.date.min, k[0], k[2])):
        provider, when, model = key
        if provider not in providers:
            continue
        mine, used = ours.get(key, (0, Usage()))
        bill, usage = theirs.get(key, (0, Usage()))
        lines.append(Line(provider, when or dt.date.fromisoformat(f"{month}-01"), model, mine, bill, used, usage,
                          adjusted.get(key, 0)))
    return Reconciliation(month, providers, tuple(lines), per_day=runs is not None)


def _add(total: tuple[int, Usage] | None, cost: int, usage: Usage) -> tuple[int, Usage]:
    before, tokens = total or (0, Usage())
    return before + cost, tokens + usage


def adjustments(reconciliation: Reconciliation) -> tuple[RunRecord, ...]:
    """One adjustment run per provider and day the providers billed beyond the ledger's runs,
    with a call row per model holding the difference (tokens: what was billed beyond the ledger's).

    Raises LedgerError for a month kept only as a summary line (no day to book it on by id).
    """
    if not reconciliation.per_day and reconciliation.shortfall_micro_usd:
        raise LedgerError(
            f"reconcile --apply: {reconciliation.month} is kept in the ledger only as a summary line (its run rows are "
            "in git history), so an adjustment cannot be merged into it by id; --apply records adjustments for this "
            "month, and for last month during this month's first week"
        )
    calls: dict[tuple[str, dt.date], list[CallRecord]] = {}
    for line in reconciliation.lines:
        if not (line.differs and line.difference > 0):
            continue
        beyond = Usage(**{name: max(0, getattr(line.billed_usage, name) - getattr(line.ledger_usage, name))
                          for name in Usage.__dataclass_fields__})
        call = CallRecord(STEP, line.model, line.provider, beyond, line.difference, 0, "reconciled")
        calls.setdefault((line.provider, line.day), []).append(call)
    return tuple(
        RunRecord(
            id=f"reconcile-{provider}-{day.isoformat()}", started_at=f"{day.isoformat()}T23:59:59Z",
            task=f"billed by {provider} on {day.isoformat()} beyond the ledger (reconcile)", outcome="reconciled",
            calls=tuple(rows), kind=ADJUSTMENT,
        )
        for (provider, day), rows in sorted(calls.items(), key=lambda item: (item[0][1], item[0][0]))
    )


def with_adjustments(ledger: Ledger, reconciliation: Reconciliation, rows: Iterable[RunRecord]) -> Ledger:
    """The ledger with ``rows`` in place of the compared providers' earlier adjustments of the month."""
    for stale in month_runs(ledger, reconciliation.month) or ():
        if stale.kind == ADJUSTMENT and any(call.provider in reconciliation.providers for call in stale.calls):
            ledger = ledger.without_run(stale.id)
    for row in rows:
        ledger = ledger.with_run(row)
    return ledger


def render(reconciliation: Reconciliation, applied: bool) -> str:
    """The differences as a table, then the totals and what to do next."""
    per = "day and model" if reconciliation.per_day else "model (the month is one summary line in the ledger)"
    lines = [f"Reconciling {reconciliation.month} per {per} with {' and '.join(_NAMES[p] for p in reconciliation.providers)}."]
    differing = [line for line in reconciliation.lines if line.differs]
    if differing:
        lines.append(f"{'day' if reconciliation.per_day else 'month':10}  {'provider':9}  {'model':24}  "
                     f"{'ledger':>10}  {'billed':>10}  {'difference':>11}")
        for line in differing:
            when = line.day.isoformat() if reconciliation.per_day else reconciliation.month
            tokens = (f"  tokens in/out: ledger {_tokens(line.ledger_usage)}, billed {_tokens(line.billed_usage)}")
            adjusted = f"  (adjusted: {format_usd(line.adjusted_micro_usd, 4)})" if line.adjusted_micro_usd else ""
            lines.append(f"{when:10}  {line.provider:9}  {line.model:24}  {format_usd(line.ledger_micro_usd, 4):>10}  "
                         f"{format_usd(line.billed_micro_usd, 4):>10}  {_signed(line.difference):>11}{tokens}{adjusted}")
    ledger_total = sum(line.ledger_micro_usd for line in reconciliation.lines)
    billed_total = sum(line.billed_micro_usd for line in reconciliation.lines)
    lines.append(f"Total: the ledger's runs {format_usd(ledger_total, 4)}, billed {format_usd(billed_total, 4)}; "
                 f"{len(differing)} of {len(reconciliation.lines)} {'day/model' if reconciliation.per_day else 'model'} "
                 f"lines differ by {format_usd(TOLERANCE_MICRO_USD)} or more.")
    shortfall = reconciliation.shortfall_micro_usd
    if not shortfall:
        lines.append("The providers billed nothing the ledger lacks.")
    elif applied:
        lines.append(f"Recorded {format_usd(shortfall, 4)} the providers billed beyond the ledger as adjustment rows.")
    else:
        lines.append(f"The providers billed {format_usd(shortfall, 4)} the ledger lacks; "
                     "run with --apply to record it as adjustment rows (the budget then counts it).")
    if any(line.differs and line.difference < 0 for line in reconciliation.lines):
        lines.append("Where the ledger holds more than was billed (a timeout booked at its worst case), it is left as it is.")
    return "\n".join(lines)


_NAMES = {"anthropic": "Anthropic's cost and usage reports", "openai": "OpenAI's costs and usage"}


def _tokens(usage: Usage) -> str:
    return f"{usage.prompt_tokens:,}/{usage.output_tokens:,}"


def _signed(micro_usd: int) -> str:
    return ("+" if micro_usd >= 0 else "-") + format_usd(abs(micro_usd), 4)


def record(repo: Path, config: Config, env: Mapping[str, str], loaded: Ledger, reconciliation: Reconciliation,
           rows: tuple[RunRecord, ...], now: dt.datetime) -> str | None:
    """Commit the ledger with ``rows`` (in place of earlier adjustments) where the bot reads it
    (``ledger.branch`` or the default branch; the rescue branch when a protected branch refuses),
    merged with what moved there since ``loaded`` was read; the checkout's file is written too.
    Returns the branch, or None when nothing changes. Raises GitError, LedgerError."""
    current = ledger_module.as_of(loaded, now)
    adjusted = with_adjustments(current, reconciliation, rows)
    if adjusted == current:
        return None
    ledger_module.save(adjusted, repo / config.ledger_path)
    default = gitops.remote_default_branch(repo, env)
    target = config.ledger_branch or default

    def render_file(remote: bytes | None) -> bytes:
        theirs = loaded if remote is None else ledger_module.from_text(remote.decode("utf-8"), f"{target}:{config.ledger_path}")
        # the merge is a union by id: the earlier adjustments these rows replace are dropped again
        merged = with_adjustments(ledger_module.merge(loaded, adjusted, theirs), reconciliation, rows)
        return ledger_module.to_text(merged).encode("utf-8")

    message = (f"ai-orchestration: reconcile {reconciliation.month} "
               f"({format_usd(reconciliation.shortfall_micro_usd, 4)} billed beyond the ledger)")
    try:
        gitops.commit_file_with_retry(repo, target, config.ledger_path, render_file, message, attempts=RESERVE_ATTEMPTS,
                                      env=env, create_branch_from=default if config.ledger_branch else None)
    except ProtectedBranchError:
        target = ledger_source.RESCUE_BRANCH
        gitops.commit_file_with_retry(repo, target, config.ledger_path, render_file, message, attempts=RESERVE_ATTEMPTS,
                                      env=env, create_branch_from=default)
    return target
