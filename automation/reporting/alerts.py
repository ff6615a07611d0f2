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
from ..money import budget, estimate, spend, windows
from ..money.ledger import Ledger, MonthSummary, RunRecord
from ..repo.checks import FAILED, Verification
from . import discord
from . import outcomes as outcome_report

Embed = dict[str, Any]


def before_run(ledger: Ledger, previous: Ledger, config: Config, now: dt.datetime, repository: str) -> tuple[Ledger, list[Embed]]:
    """The monthly recap (first run of a month; one correction if runs of that month settle
    after it), retirement warnings (once a month) and a retired model's replacement (once)."""
    embeds: list[Embed] = []
    recap_month = ledger.notified.get("recap_due")
    closed = next((entry for entry in ledger.history if entry.month == recap_month), None)
    if recap_month and not ledger.notified.get("recap_sent"):
        if closed is not None and closed.executions:
            stats = health.model_stats(previous) if previous.month == recap_month else []
            embeds.append(_recap(ledger, closed, now, repository, stats=stats))
        ledger = ledger.with_notified("recap_sent", True).with_notified("recap_said", _figures(closed))
    elif closed is not None and _recap_outdated(ledger, closed, now, config.reservation_horizon):
        embeds.append(_recap(ledger, closed, now, repository, corrects=ledger.notified["recap_said"]))
        ledger = ledger.with_notified("recap_corrected", True)
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


def _figures(closed: MonthSummary | None) -> dict[str, int]:
    """What a recap says of a month: the figures a correction compares."""
    if closed is None:
        return {"spent_micro_usd": 0, "executions": 0, "prs_opened": 0}
    return {"spent_micro_usd": closed.spent_micro_usd, "executions": closed.executions, "prs_opened": closed.prs_opened}


def _recap_outdated(ledger: Ledger, closed: MonthSummary, now: dt.datetime, horizon: dt.timedelta) -> bool:
    """True once when runs of the recapped month settled after the recap (their figures differ
    from what it said) and no other run is still in progress (it may be one more late run)."""
    said = ledger.notified.get("recap_said")
    return (
        isinstance(said, dict) and not ledger.notified.get("recap_corrected") and said != _figures(closed)
        and not any(reservation.live(now, horizon) for reservation in ledger.reservations)
    )


def _recap(ledger: Ledger, closed: MonthSummary, now: dt.datetime, repository: str, *,
           stats: list[health.ModelStats] | None = None, corrects: dict[str, int] | None = None) -> Embed:
    return discord.monthly_recap_embed(
        repository=repository, now=now, month=closed.month, spent_micro=closed.spent_micro_usd,
        budget_micro=closed.budget_micro_usd, runs=closed.executions, prs=closed.prs_opened,
        cost_by_model={name: totals.spent_micro_usd for name, totals in closed.models.items()},
        parked_tasks=sorted(health.parked_tasks(ledger).values()),
        provider_stats="\n".join(health.render_stats(stats or [])), corrects=corrects,
        bought=outcome_report.month_headline(ledger, closed.month),
    )


def checks_line(checks: Verification | None) -> str | None:
    """What the repository's own checks said, in one line (None when none ran)."""
    if checks is None:
        return None
    return ("❌ " if checks.result == FAILED else "✅ ") + checks.headline()


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
    stop: budget.BudgetStop | None = None,
    notes: tuple[str, ...] = (),
    checks: Verification | None = None,
) -> tuple[Ledger, list[Embed]]:
    """The run's own alert, then each milestone crossed, each budget window past
    ``budget.warn_at_percent`` and the budget stop's alert, once each.

    ``stop``: the budget stop that ended the run, if one did (what the refused call could have
    cost, and which window refused it).
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
                notes=notes, checks=checks_line(checks),
            )
        )
    elif record.kind == "follow_up" and outcome.startswith("follow_up_") and record.pr_url:
        embeds.append(
            discord.run_completed_embed(
                repository=repository, now=now, task=record.task, pr_url=record.pr_url, follow_up_outcome=outcome,
                run_cost_micro=record.cost_micro_usd, pull_cost_micro=spend.pull_cost(ledger, record.pr_url),
                month_spent_micro=ledger.spent_micro_usd, budget_micro=cap, checks=checks_line(checks),
            )
        )
    elif outcome.startswith("failed"):
        embeds.append(
            discord.run_failed_embed(
                repository=repository, now=now, step=outcome.partition(":")[2] or "run",
                error_kind=error_kind or "error", message=error_message or "the run failed", run_url=run_url,
                task=record.task or None, checks=checks_line(checks),
            )
        )
    ledger, warnings = _window_warnings(ledger, config, now, repository)
    embeds += warnings
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
    if stop is not None:
        ledger, said = _stop_alert(ledger, config, stop, now, repository)
        embeds += said
    return ledger, embeds


def _window_warnings(ledger: Ledger, config: Config, now: dt.datetime, repository: str) -> tuple[Ledger, list[Embed]]:
    """One alert per budget window as its spend reaches ``budget.warn_at_percent``; the flags
    (``notified.warned``) outlive the month for the week that straddles it, and are pruned to
    the windows still open."""
    crossed = windows.crossed(config, ledger, now)
    embeds = [discord.budget_warning_embed(repository=repository, now=now, window=window, percent=config.warn_at_percent)
              for window in crossed]
    open_flags = {windows.warn_flag(window) for window in windows.current(config, ledger, now)}
    flags = sorted(open_flags & (set(ledger.notified.get("warned", [])) | {windows.warn_flag(w) for w in crossed}))
    if flags != list(ledger.notified.get("warned", [])):
        ledger = ledger.with_notified("warned", flags)
    return ledger, embeds


def _stop_alert(ledger: Ledger, config: Config, stop: budget.BudgetStop, now: dt.datetime,
                repository: str) -> tuple[Ledger, list[Embed]]:
    """The budget stop's alert, once per window: the month's budget exhausted, the day's or the
    week's cap reached (until it reopens), a repository's share of a shared ledger spent, or the
    run cap (once a month: it stops every run)."""
    window = stop.window if isinstance(stop, windows.WindowStop) else None
    if not isinstance(stop, windows.WindowStop) or (window is not None and window.name == windows.MONTH and not window.is_share):
        if ledger.notified.get("budget_exhausted"):
            return ledger, []
        embed = discord.budget_exhausted_embed(
            repository=repository, now=now, month_spent_micro=ledger.spent_micro_usd, budget_micro=config.monthly_budget_micro_usd,
            needed_micro=stop.needed_micro_usd,
            run_worst_micro=budget.run_reservation(config, estimate.PROMPT_OVERHEAD_TOKENS)[0])
        return ledger.with_notified("budget_exhausted", True), [embed]
    flag = "run" if window is None else windows.warn_flag(window)
    said = list(ledger.notified.get("stopped", []))
    if flag in said:
        return ledger, []
    embed = discord.budget_window_stop_embed(repository=repository, now=now, message=stop.message, window=window)
    return ledger.with_notified("stopped", sorted({*said, flag})), [embed]

