"""Which Discord alerts a run owes, decided from the ledger so none is ever sent twice.

Pure functions: they take the ledger and return it with the flags updated, plus the embeds
to post. The flags live in the ledger (``milestones_reached_micro_usd`` and ``notified``),
so a rerun, a retry or a ledger merge cannot repeat an alert; ``run`` and ``simulate`` share
this code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from ..core.config import Config
from ..models import health
from ..money import budget, spend
from ..money.ledger import Ledger, RunRecord
from . import discord
from . import outcomes as outcome_report

Embed = dict[str, Any]


def before_run(ledger: Ledger, previous: Ledger, config: Config, now: dt.datetime, repository: str) -> tuple[Ledger, list[Embed]]:
    """The monthly recap (first run of a month), retirement warnings (once a month) and a
    retired model's replacement (once)."""
    embeds: list[Embed] = []
    recap_month = ledger.notified.get("recap_due")
    if recap_month and not ledger.notified.get("recap_sent"):
        closed = next((entry for entry in ledger.history if entry.month == recap_month), None)
        if closed is not None and closed.executions:
            stats = health.model_stats(previous) if previous.month == recap_month else []
            embeds.append(
                discord.monthly_recap_embed(
                    repository=repository, now=now, month=closed.month, spent_micro=closed.spent_micro_usd,
                    budget_micro=closed.budget_micro_usd, runs=closed.executions, prs=closed.prs_opened,
                    cost_by_model={name: totals.spent_micro_usd for name, totals in closed.models.items()},
                    parked_tasks=sorted(health.parked_tasks(ledger).values()),
                    provider_stats="\n".join(health.render_stats(stats)),
                    bought=outcome_report.month_headline(ledger, closed.month),
                )
            )
        ledger = ledger.with_notified("recap_sent", True)
    warned = set(ledger.notified.get("retiring", []))
    for _, price, _ in config.retiring_models(now.date()):
        if price.model not in warned and price.retires is not None:
            embeds.append(
                discord.model_retiring_embed(
                    repository=repository, now=now, model=price.model, retires_on=price.retires, successor=price.successor
                )
            )
            warned.add(price.model)
    if warned != set(ledger.notified.get("retiring", [])):
        ledger = ledger.with_notified("retiring", sorted(warned))
    announced = set(ledger.notified.get("retired", []))  # kept across months: said once
    for _, price, successor in config.retired:
        if price.model not in announced and price.retires is not None:
            embeds.append(discord.model_retiring_embed(
                repository=repository, now=now, model=price.model, retires_on=price.retires,
                successor=successor if config.on_retirement != "stop" else None,
            ))
            announced.add(price.model)
    if announced != set(ledger.notified.get("retired", [])):
        ledger = ledger.with_notified("retired", sorted(announced))
    return ledger, embeds


def after_run(
    ledger: Ledger,
    config: Config,
    record: RunRecord,
    outcome: str,
    error_kind: str | None,
    error_message: str | None,
    now: dt.datetime,
    repository: str,
    run_url: str | None,
    needed_micro_usd: int | None = None,
    notes: tuple[str, ...] = (),
) -> tuple[Ledger, list[Embed]]:
    """The run's own alert, then each milestone crossed and the budget-exhausted alert, once each.

    ``needed_micro_usd``: what the call the budget refused could have cost, for that alert.
    """
    cap = config.monthly_budget_micro_usd
    pace = budget.pace(ledger, cap, now)
    embeds: list[Embed] = []
    if outcome == "pr_opened" and record.pr_url:
        embeds.append(
            discord.run_completed_embed(
                repository=repository, now=now, task=record.task, pr_url=record.pr_url,
                run_cost_micro=record.cost_micro_usd, month_spent_micro=ledger.spent_micro_usd, budget_micro=cap,
                prs_this_month=ledger.prs_opened, projected_micro=pace.projected_micro_usd, runs_out_on=pace.runs_out_on,
                notes=notes,
            )
        )
    elif record.kind == "follow_up" and outcome.startswith("follow_up_") and record.pr_url:
        embeds.append(
            discord.run_completed_embed(
                repository=repository, now=now, task=record.task, pr_url=record.pr_url, follow_up_outcome=outcome,
                run_cost_micro=record.cost_micro_usd, pull_cost_micro=spend.pull_cost(ledger, record.pr_url),
                month_spent_micro=ledger.spent_micro_usd, budget_micro=cap,
            )
        )
    elif outcome.startswith("failed"):
        embeds.append(
            discord.run_failed_embed(
                repository=repository, now=now, step=outcome.partition(":")[2] or "run",
                error_kind=error_kind or "error", message=error_message or "the run failed", run_url=run_url,
                task=record.task or None,
            )
        )
    stopped = outcome == "budget_stop"
    crossed = budget.newly_reached_milestones(ledger, config.milestones_micro_usd)
    for milestone in crossed:
        embeds.append(
            discord.milestone_embed(
                repository=repository, now=now, milestone_micro=milestone, month_spent_micro=ledger.spent_micro_usd,
                budget_micro=cap, projected_micro=pace.projected_micro_usd,
            )
        )
    if crossed:
        ledger = replace(
            ledger,
            milestones_reached_micro_usd=tuple(sorted(set(ledger.milestones_reached_micro_usd) | set(crossed))),
        )
    if stopped and not ledger.notified.get("budget_exhausted"):
        embeds.append(discord.budget_exhausted_embed(repository=repository, now=now, month_spent_micro=ledger.spent_micro_usd,
                                                     budget_micro=cap, needed_micro=needed_micro_usd))
        ledger = ledger.with_notified("budget_exhausted", True)
    return ledger, embeds
