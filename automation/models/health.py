"""Provider health: statistics, a circuit breaker across runs, and parked tasks.

All state lives in the ledger's ``health`` object, which survives month rollover, so a bad
provider day is remembered between cron runs:

    "health": {
      "breakers": {"anthropic": {"consecutive_failures": 3, "opened_at": "2026-11-21T10:00:00Z"}},
      "parked": {"<task key>": {"task": "…", "failures": 3, "parked": true}}
    }
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from ..core.config import Config
from ..core.errors import PolicyStop
from ..core.prices import format_usd
from ..core.wording import percent, plural
from ..money.ledger import CallRecord, Ledger, RunRecord

# Failures that say the provider is unwell (after the SDK's own retries); auth and quota
# errors are the user's to fix and stop the run instead of tripping the breaker.
OUTAGE_KINDS = frozenset({"rate_limited", "overloaded", "server", "connection", "timeout", "malformed_reply"})
# Run outcomes that count against a task: the model's output was unusable or failed checks.
TASK_FAILURES = frozenset({"failed:edits", "failed:checks"})
# Call outcomes that count against a task: a reply was paid for but could not be used
# (refused, empty, unfinished, or cut off at max_tokens even after a retry with more room).
UNUSABLE_REPLIES = frozenset({"invalid_reply", "max_tokens", "refusal", "unfinished"})
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class BreakerOpen(PolicyStop):
    """A policy stop: every model of a step belongs to a provider whose breaker is open."""

    outcome = "breaker_open"

    def __init__(self, providers: list[str], until: dt.datetime) -> None:
        super().__init__(
            f"circuit breaker open for {', '.join(providers)} after repeated failures; "
            f"the next probe run is after {until.strftime('%Y-%m-%d %H:%M UTC')}"
        )
        self.providers = providers
        self.until = until


def task_key(task_text: str) -> str:
    """Parking is by exact text: editing a parked task's text unparks it."""
    return hashlib.sha256(task_text.strip().encode("utf-8")).hexdigest()[:16]


def unpark_missing(ledger: Ledger, task_texts: Iterable[str]) -> Ledger:
    """Forget the failures of tasks no longer in the tasks file (edited, ticked or removed).

    An edited task is a new task; its old entry is reset rather than deleted, because a ledger
    merge fills in keys that one side lacks from the other, which would park it again.
    """
    present = {task_key(text) for text in task_texts}
    parked = ledger.health.get("parked", {})
    stale = [key for key, entry in parked.items()
             if key not in present and (entry.get("failures") or entry.get("parked"))]
    if not stale:
        return ledger
    reset = {**parked, **{key: {**parked[key], "failures": 0, "parked": False} for key in stale}}
    return replace(ledger, health={**ledger.health, "parked": reset})


def parked_tasks(ledger: Ledger) -> dict[str, str]:
    """Task key -> task text, for every parked task."""
    parked = ledger.health.get("parked", {})
    return {key: entry.get("task", "") for key, entry in parked.items() if entry.get("parked")}


def breaker_state(ledger: Ledger, provider: str, config: Config, now: dt.datetime) -> str:
    """'closed', 'open' (skip the provider), or 'half_open' (the cool-down passed: one probe)."""
    probe = probe_at(ledger, provider, config)
    if probe is None:
        return "closed"
    return "open" if now < probe else "half_open"


def chain(ledger: Ledger, config: Config, primary: str, fallbacks: tuple[str, ...], now: dt.datetime) -> list[str]:
    """The models to try for a step, in order, skipping providers whose breaker is open."""
    models = list(dict.fromkeys((primary, *fallbacks)))
    usable = [m for m in models if breaker_state(ledger, config.price(m).provider, config, now) != "open"]
    if not usable:
        providers = sorted({config.price(m).provider for m in models})
        raise BreakerOpen(providers, min(filter(None, (probe_at(ledger, p, config) for p in providers))))
    return usable


def probe_at(ledger: Ledger, provider: str, config: Config) -> dt.datetime | None:
    """When an open breaker lets one probe call through (UTC), or None when it is closed."""
    breaker = ledger.health.get("breakers", {}).get(provider)
    if not breaker or not breaker.get("opened_at"):
        return None
    opened = dt.datetime.strptime(breaker["opened_at"], TIME_FORMAT).replace(tzinfo=dt.timezone.utc)
    return opened + dt.timedelta(hours=config.breaker_cooldown_hours)


def after_run(ledger: Ledger, record: RunRecord, task: str, outcome: str, config: Config, now: dt.datetime) -> Ledger:
    """Fold one run's calls into the breakers, and its outcome into the parked tasks."""
    breakers = {name: dict(state) for name, state in ledger.health.get("breakers", {}).items()}
    for call in record.calls:
        state = breakers.setdefault(call.provider, {"consecutive_failures": 0, "opened_at": None})
        if call.outcome == "ok":
            state.update(consecutive_failures=0, opened_at=None)
        elif call.outcome in OUTAGE_KINDS:
            state["consecutive_failures"] += 1
            if state["consecutive_failures"] >= config.breaker_failures:
                state["opened_at"] = now.strftime(TIME_FORMAT)  # opens, or re-opens after a failed probe

    key = task_key(task) if task else None
    # A reply the model gave but that could not be used (refused, cut off, failed the checks)
    # counts against the task; an outage does not.
    unusable = outcome in TASK_FAILURES or (
        outcome != "pr_opened" and any(call.outcome in UNUSABLE_REPLIES for call in record.calls)
    )
    if key and unusable:
        ledger = count_failure(ledger, task, config)
    parked = {key: dict(entry) for key, entry in ledger.health.get("parked", {}).items()}
    if key and outcome == "pr_opened" and key in parked:  # reset, not deleted: see unpark_missing
        parked[key] = {"task": task, "failures": 0, "parked": False}
    health = {**ledger.health, "breakers": breakers, "parked": parked}
    if not breakers:
        health.pop("breakers")
    if not parked:
        health.pop("parked")
    return replace(ledger, health=health)


def count_failure(ledger: Ledger, task: str, config: Config) -> Ledger:
    """One more failure against ``task`` (an unusable reply, or a batch request that ended
    errored, expired or canceled); ``health.park_after_failures`` of them without a pull
    request in between park it."""
    parked = {key: dict(entry) for key, entry in ledger.health.get("parked", {}).items()}
    entry = parked.setdefault(task_key(task), {"task": task, "failures": 0, "parked": False})
    entry["failures"] += 1
    entry["parked"] = entry["failures"] >= config.park_after_failures
    return replace(ledger, health={**ledger.health, "parked": parked})


@dataclass(frozen=True)
class ModelStats:
    provider: str
    model: str
    calls: int
    succeeded: int
    p50_ms: int
    p95_ms: int
    p99_ms: int
    spent_micro_usd: int
    tokens: int
    outcomes: Mapping[str, int]

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.calls if self.calls else 0.0


def _percentile(sorted_values: list[int], share: float) -> int:
    """Nearest-rank percentile: an observed latency, never an interpolation."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def model_stats(ledger: Ledger) -> list[ModelStats]:
    """Per provider and model for the ledger's month: success rate, latency percentiles, spend, tokens."""
    calls: dict[tuple[str, str], list[CallRecord]] = {}
    for run in ledger.runs:
        if run.kind == "adjustment":  # what a provider billed beyond the ledger (reconcile), not calls the bot made
            continue
        for call in run.calls:
            calls.setdefault((call.provider, call.model), []).append(call)
    stats = []
    for (provider, model), records in sorted(calls.items()):
        latencies = sorted(c.latency_ms for c in records if c.outcome == "ok")
        outcomes: dict[str, int] = {}
        for record in records:
            outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
        stats.append(
            ModelStats(
                provider=provider,
                model=model,
                calls=len(records),
                succeeded=outcomes.get("ok", 0),
                p50_ms=_percentile(latencies, 0.50),
                p95_ms=_percentile(latencies, 0.95),
                p99_ms=_percentile(latencies, 0.99),
                spent_micro_usd=sum(c.cost_micro_usd for c in records),
                tokens=sum(c.usage.total_tokens for c in records),
                outcomes=outcomes,
            )
        )
    return stats


def render_stats(stats: list[ModelStats]) -> list[str]:
    return [
        f"{s.provider}/{s.model}: {plural(s.calls, 'call')}, {percent(s.succeeded, s.calls)} ok, "
        f"p50 {s.p50_ms / 1000:.1f}s p95 {s.p95_ms / 1000:.1f}s p99 {s.p99_ms / 1000:.1f}s, "
        f"{format_usd(s.spent_micro_usd, 4)}, {plural(s.tokens, 'token')}"
        for s in stats
    ]


def status_data(ledger: Ledger, config: Config, now: dt.datetime) -> dict[str, Any]:
    """The health part of `status --json`."""
    providers = sorted({s.provider for s in model_stats(ledger)} | set(ledger.health.get("breakers", {})))
    return {
        "models": [
            {"provider": s.provider, "model": s.model, "calls": s.calls, "success_rate": round(s.success_rate, 4),
             "p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "p99_ms": s.p99_ms,
             "spent_usd": round(s.spent_micro_usd / 1e6, 6), "tokens": s.tokens, "outcomes": dict(s.outcomes)}
            for s in model_stats(ledger)
        ],
        "breakers": {p: breaker_state(ledger, p, config, now) for p in providers},
        "parked_tasks": sorted(parked_tasks(ledger).values()),
    }
