"""Realistic ledgers for the dashboard and metrics tests and the dashboard benchmark.

A month of cron runs as `run` records them: analysis on Claude (an overloaded reply now and
then, answered by the fallback), code on GPT-4o-mini, a follow-up call on some runs, most runs
opening a PR and some failing the edit checks; latencies spread like real ones. A year of
history comes from rolling such months over with the real ``ledger.rollover``.
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from automation.core.config import Config
from automation.core.prices import Usage
from automation.money import ledger as ledger_module
from automation.money.ledger import CallRecord, Ledger, RunRecord

CONFIG = Config()
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _call(step: str, model: str, usage: Usage, latency_ms: int, outcome: str = "ok") -> CallRecord:
    price = CONFIG.price(model)
    billed = usage if outcome == "ok" else Usage()
    return CallRecord(step, price.model, price.provider, billed, price.cost_micro_usd(billed), latency_ms, outcome)


def _run(index: int, started: dt.datetime, rng: random.Random) -> RunRecord:
    def tokens(typical: int) -> int:
        return max(1, round(typical * rng.uniform(0.6, 1.4)))

    def latency(median_ms: int) -> int:
        return max(200, round(rng.lognormvariate(0, 0.45) * median_ms))

    calls = []
    if rng.random() < 0.06:  # the primary was overloaded; the fallback answered
        calls.append(_call("analysis", CONFIG.analysis_model, Usage(), latency(30_000), "overloaded"))
        calls.append(_call("analysis", CONFIG.analysis_fallbacks[0], Usage(tokens(20_000), tokens(2_000)), latency(6_000)))
    else:
        calls.append(_call("analysis", CONFIG.analysis_model, Usage(tokens(20_000), tokens(2_000), cache_read_tokens=4_096),
                           latency(14_000)))
    calls.append(_call("code", CONFIG.code_model, Usage(tokens(24_000), tokens(6_000)), latency(9_000)))
    failed = rng.random() < 0.12
    if not failed and rng.random() < 0.2:
        calls.append(_call("followup", CONFIG.code_model, Usage(tokens(12_000), tokens(3_000)), latency(7_000)))
    return RunRecord(
        id=f"{9_000_000 + index}-1-{started:%Y%m%dT%H%M%SZ}",
        started_at=started.strftime(STAMP),
        task=f"Task {index}: add validation to form <{index}> & cover it with tests",
        outcome="failed:edits" if failed else "pr_opened",
        pr_url=None if failed else f"https://github.com/example-org/example-repo/pull/{100 + index}",
        calls=tuple(calls),
    )


def month(month: str, runs: int, *, seed: int = 7, budget_micro_usd: int = CONFIG.monthly_budget_micro_usd,
          history: tuple[ledger_module.MonthSummary, ...] = ()) -> Ledger:
    """``runs`` runs spread evenly over the first 20 days of ``month``."""
    rng = random.Random(seed)
    start = dt.datetime.fromisoformat(f"{month}-01T00:17:00+00:00")
    step = dt.timedelta(days=20) / runs
    records = tuple(_run(i, start + i * step, rng) for i in range(runs))
    return Ledger(month=month, budget_micro_usd=budget_micro_usd, runs=records, history=history)


def with_health(ledger: Ledger, opened_at: str) -> Ledger:
    """An open Anthropic breaker and one parked task, as `health.after_run` writes them."""
    return replace(ledger, health={
        "breakers": {"anthropic": {"consecutive_failures": 3, "opened_at": opened_at},
                     "openai": {"consecutive_failures": 0, "opened_at": None}},
        "parked": {"0123456789abcdef": {"task": "Rewrite the <parser> & keep it fast", "failures": 3, "parked": True}},
    })


def with_outcomes(ledger: Ledger) -> Ledger:
    """What became of the month's PRs, as a run reads GitHub: in turn open, merged after 3 h,
    merged after 30 h, closed unmerged after a day (so every outcome chart has bars)."""
    pulls = []
    for index, run in enumerate(run for run in ledger.runs if run.pr_url):
        opened = dt.datetime.strptime(run.started_at, STAMP)
        state, hours = (("open", 0), ("merged", 3), ("merged", 30), ("closed", 24))[index % 4]
        pulls.append(ledger_module.PullOutcome(
            url=run.pr_url or "", number=ledger_module.pull_number(run.pr_url or ""), task=run.task, opened_at=run.started_at,
            state=state, decided_at=None if state == "open" else (opened + dt.timedelta(hours=hours)).strftime(STAMP),
            seen_at=run.started_at, task_kind=("features", "docs")[index % 2],
        ))
    return replace(ledger, pulls=tuple(pulls))


def year(last_month: str, runs_per_month: int, *, seed: int = 7) -> Ledger:
    """Twelve months ending in ``last_month``: eleven closed into history by the real rollover."""
    year_, number = (int(part) for part in last_month.split("-"))
    months = [f"{year_ - (number - k <= 0)}-{(number - k - 1) % 12 + 1:02d}" for k in range(11, -1, -1)]
    ledger = month(months[0], runs_per_month, seed=seed)
    for index, name in enumerate(months[1:], start=1):
        ledger = ledger_module.rollover(ledger, name)
        ledger = replace(month(name, runs_per_month - 7 * index, seed=seed + index), history=ledger.history)
    return ledger


def write_repo(root: Path, ledger: Ledger) -> Path:
    """A checkout holding ``ledger`` as its token_budget.json (default config); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # --repo must be a git checkout
    ledger_module.save(ledger, root / CONFIG.ledger_path)
    return root


HOSTILE_FIELDS = ("model", "provider", "step", "task", "outcome", "pr_url", "breaker", "parked")


def hostile(text: Callable[[str], str]) -> Ledger:
    """A month whose every free-text field holds ``text(field)`` for each of HOSTILE_FIELDS: the
    strings a config, a provider's reply or a hand-edited ledger could put on the dashboard."""
    base = month("2026-11", 12)
    failed = _call(text("step"), CONFIG.code_model, Usage(), 900, "overloaded")
    odd = CallRecord(text("step"), text("model"), text("provider"), Usage(1_000, 200), 1_500, 2_400, "ok")
    run = replace(base.runs[-1], id="9999999-1-20261120T120000Z", task=text("task"), outcome=text("outcome"),
                  pr_url=text("pr_url"), calls=(odd, failed))
    return replace(base, runs=base.runs + (run,), health={
        "breakers": {text("breaker"): {"consecutive_failures": 3, "opened_at": "2026-11-21T08:00:00Z"}},
        "parked": {"0123456789abcdef": {"task": text("parked"), "failures": 3, "parked": True}},
    })
