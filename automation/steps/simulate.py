"""`simulate`: synthetic runs through the real ledger, budget and alert code.

Works on an in-memory copy of the ledger (never saved) and calls no network, so users can
see where milestones fire, which alerts they would get, and where the budget stops runs.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from typing import Iterator

from ..core.config import Config
from ..core.prices import Usage, format_usd
from ..core.wording import plural
from ..money import budget, windows
from ..money import ledger as ledger_module
from ..money import estimate
from ..money.estimate import PROMPT_OVERHEAD_TOKENS, RunModel
from ..money.ledger import CallRecord, Ledger, RunRecord
from ..repo import localise
from ..reporting import alerts, discord

RUN_INTERVAL = dt.timedelta(hours=3)
JITTER = 0.25  # synthetic usage varies +-25% around the typical run
REPOSITORY = "simulation"


def _jitter(usage: Usage, rng: random.Random, max_input_tokens: int) -> Usage:
    """``usage`` varied, its input never above what a run can send (the bound the worst case assumes)."""
    def vary(tokens: int) -> int:
        return max(1, round(tokens * rng.uniform(1 - JITTER, 1 + JITTER)))

    return Usage(input_tokens=min(vary(usage.input_tokens), max_input_tokens), output_tokens=vary(usage.output_tokens))


def _simulated_run(
    ledger: Ledger, config: Config, record: RunRecord, model: RunModel, rng: random.Random, moment: dt.datetime
) -> tuple[Ledger, RunRecord, str, budget.BudgetStop | None]:
    """Reserve and charge the calls of a run exactly as `run` does (the localisation call where the repository makes one).

    Returns the outcome too: "budget_stop" when a reservation fails, in the month or any other
    budget window (with the stop, for its alert); like `run`, a run stopped between its two calls keeps (and is charged for)
    the call it made.
    """
    located = [("localise", config.code_model, model.localise, localise.MAX_TOKENS, localise.INPUT_BOUND_TOKENS)]
    steps = (
        *(located if model.localise_tokens else []),
        ("analysis", config.analysis_model, model.analysis, config.output_cap(config.analysis_model),
         config.context_max_tokens + PROMPT_OVERHEAD_TOKENS),
        ("code", config.code_model, model.code, config.output_cap(config.code_model), config.code_max_input_tokens),
    )
    for step, name, typical, max_tokens, max_input in steps:
        price = config.price(name)
        usage = _jitter(typical, rng, max_input)
        usage = replace(usage, output_tokens=min(usage.output_tokens, max_tokens))
        try:
            worst = budget.reserve(ledger, config.monthly_budget_micro_usd, price, budget.padded_anthropic_count(usage.input_tokens), max_tokens)
            windows.available(config, ledger, moment, record.id, record.cost_micro_usd + worst)
        except budget.BudgetStop as stop:
            return ledger, record, "budget_stop", stop
        call = CallRecord(step=step, model=price.model, provider=price.provider, usage=usage,
                          cost_micro_usd=price.cost_micro_usd(usage), latency_ms=0)
        record = replace(record, calls=record.calls + (call,))
        ledger = ledger.with_run(record)
    return ledger, record, "pr_opened", None


def simulate(
    config: Config,
    ledger: Ledger,
    now: dt.datetime,
    model: RunModel,
    *,
    runs: int | None,
    until_micro_usd: int | None,
    rng: random.Random,
) -> Iterator[str]:
    """Yield one line per run, and each alert as the text Discord would show."""
    cap = config.monthly_budget_micro_usd
    yield (
        f"Simulating on a scratch copy of the ledger ({ledger.month}: {format_usd(ledger.spent_micro_usd)} of "
        f"{format_usd(cap)} spent), a run every {RUN_INTERVAL.seconds // 3600}h with {config.analysis_model} + {config.code_model}."
    )
    yield f"{model.assumptions()}; each run varies +-{JITTER:.0%} around it."
    silent_stops = 0
    index = 0
    while (runs is None or index < runs) and (until_micro_usd is None or ledger.spent_micro_usd < until_micro_usd):
        index += 1
        moment = now + (index - 1) * RUN_INTERVAL
        if until_micro_usd is not None and ledger_module.month_of(moment) != ledger.month:
            yield f"The month ended before its spend reached {format_usd(until_micro_usd)}."
            break
        previous = ledger
        ledger = ledger_module.as_of(ledger, moment)
        if ledger.month != previous.month:
            yield f"--- {ledger.month} begins: the budget resets to {format_usd(cap)} ---"
        ledger, embeds = alerts.before_run(ledger, previous, config, moment, REPOSITORY)
        record = RunRecord(id=f"simulated-{index}", started_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           task=f"simulated task {index}", pr_url=f"https://example.invalid/pull/{index}")
        ledger, record, outcome, stop = _simulated_run(ledger, config, record, model, rng, moment)
        if record.calls:  # as `run` records it; a run stopped between its calls opened no PR
            record = replace(record, outcome=outcome, pr_url=record.pr_url if outcome == "pr_opened" else None)
            ledger = ledger.with_run(record)
        ledger, after = alerts.after_run(ledger, config, record, outcome, None, None, moment, REPOSITORY, None, stop)
        embeds += [embed for embed in after if embed["color"] != discord.COLOURS["run_completed"]]
        if outcome == "budget_stop" and not embeds and not record.calls:
            silent_stops += 1
            reopens = isinstance(stop, windows.WindowStop) and stop.window is not None and stop.window.name != windows.MONTH
            if until_micro_usd is not None and not reopens:
                break  # the target cannot be reached: the budget stops every run from here
            continue
        if outcome == "pr_opened":
            result = format_usd(record.cost_micro_usd, 4)
        elif record.calls:
            charged = format_usd(record.cost_micro_usd, 4)
            result = f"stopped by the budget after the {record.calls[-1].step} call ({charged})"
        else:
            result = "stopped by the budget, no model called"
        yield (
            f"run {index} ({moment:%Y-%m-%d %H:%M}): " + result
            + f"; month {format_usd(ledger.spent_micro_usd)} of {format_usd(cap)}"
        )
        for embed in embeds:
            yield "  [Discord] " + discord.render_text(embed).replace("\n", "\n            ")
    if silent_stops:
        yield f"{plural(silent_stops, 'more run')} stopped by the budget (no alert: it was already sent this month)"
    if until_micro_usd is not None and ledger.spent_micro_usd < until_micro_usd <= cap:
        yield (f"{format_usd(until_micro_usd)} was not reached: runs stop once the next call no longer fits, and "
               f"spend surely reaches only {format_usd(estimate.reachable_spend(config))} (the budget less a run's worst case).")
    yield f"End: {plural(ledger.executions, 'run')} in {ledger.month}, {format_usd(ledger.spent_micro_usd)} of {format_usd(cap)} spent."
