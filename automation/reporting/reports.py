"""What `status` and `costs` show: plain data first, text rendered from it.

Imports no provider SDK, so `status` starts fast and works with no keys at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from ..core.config import Config
from ..core.prices import MICRO, format_usd
from ..core.wording import plural
from ..models import health
from ..money import budget, estimate, spend
from ..money.ledger import Ledger, RunRecord
from . import outcomes as outcome_report
from . import series


def usd(micro_usd: int) -> float:
    """Micro-dollars as a JSON number of dollars (six places, exact for display)."""
    return round(micro_usd / MICRO, 6)


def dry_run_summary(lines: list[str]) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY`` after a dry run: its report as a code block."""
    body = "\n".join(lines)
    return f"## ai-orchestration dry run\n\nNo keys, no network, nothing written.\n\n```text\n{body}\n```\n"


def progress_bar(spent_micro_usd: int, budget_micro_usd: int, width: int = 10) -> str:
    """``▰▰▰▱▱▱▱▱▱▱ 31% of $15.00``: the budget bar used in status, summaries and Discord.

    Rounded down, so a month that stopped short of its cap never shows 100%.
    """
    budget = max(budget_micro_usd, 1)
    spent = min(max(spent_micro_usd, 0), budget) if budget_micro_usd > 0 else 0
    filled = spent * width // budget  # integers: a float share floors 29% to 28%
    return f"{'▰' * filled}{'▱' * (width - filled)} {spent * 100 // budget}% of {format_usd(budget_micro_usd)}"


def spent_usd(spent_micro_usd: int, budget_micro_usd: int) -> str:
    """The month's spend in cents, or to the hundredth of a cent when cents would round it up
    to the budget (``$14.9961``, never ``$15.00`` for a month that is not at its cap)."""
    cents = format_usd(spent_micro_usd)
    hides = spent_micro_usd < budget_micro_usd and cents == format_usd(budget_micro_usd)
    return format_usd(spent_micro_usd, 4) if hides else cents


def status_data(config: Config, ledger: Ledger, now: dt.datetime) -> dict[str, Any]:
    """Everything `status --json` prints; keys are part of the interface."""
    cap = config.monthly_budget_micro_usd
    spent = ledger.spent_micro_usd
    month_pace = budget.pace(ledger, cap, now)
    return {
        "month": ledger.month,
        "budget_usd": usd(cap),
        "spent_usd": usd(spent),
        "remaining_usd": usd(budget.remaining_micro_usd(ledger, cap)),
        "executions": ledger.executions,
        "prs_opened": ledger.prs_opened,
        "milestones_reached": [usd(m) for m in ledger.milestones_reached_micro_usd],
        "milestones_usd": [usd(m) for m in config.milestones_micro_usd],
        "projected_month_end_usd": usd(month_pace.projected_micro_usd),
        "budget_runs_out_on": month_pace.runs_out_on.isoformat() if month_pace.runs_out_on else None,
        "models": {
            name: {"calls": totals.calls, "spent_usd": usd(totals.spent_micro_usd),
                   "input_tokens": totals.input_tokens, "output_tokens": totals.output_tokens,
                   "reasoning_tokens": totals.reasoning_tokens}
            for name, totals in sorted(ledger.model_totals().items())
        },
        "retiring_models": [
            {"key": key, "model": price.model, "retires_on": price.retires.isoformat() if price.retires else None,
             "successor": price.successor, "days_left": days}
            for key, price, days in config.retiring_models(now.date())
        ],
        "retired_models": [
            {"key": key, "model": price.model, "retired_on": price.retires.isoformat() if price.retires else None,
             "used_instead": successor if config.on_retirement != "stop" else None}
            for key, price, successor in config.retired
        ],
        "warnings": config.retirement_warnings(now.date()) + [f"note: {note}" for note in config.retirement_notes()],
        "history": [
            {"month": entry.month, "spent_usd": usd(entry.spent_micro_usd), "executions": entry.executions,
             "prs_opened": entry.prs_opened}
            for entry in ledger.history
        ],
        "health": health.status_data(ledger, config, now),
        "follow_ups": _follow_ups(ledger),
        **outcome_report.status_data(config, ledger),
    }


def _money(dollars: float) -> str:
    """A dollar figure of ``status_data`` (six places, exact) in the one money format."""
    return format_usd(round(dollars * MICRO))


def _follow_ups(ledger: Ledger) -> dict[str, Any]:
    """Follow-up runs apart from new tasks: runs, PRs worked on, fixes pushed, dollars spent."""
    data = spend.status_data(ledger)
    spent = data.pop("spent_micro_usd")
    return {**data, "spent_usd": usd(spent), "new_task_runs": ledger.executions - data["runs"]}


def render_status(data: dict[str, Any], ledger: Ledger, budget_micro_usd: int) -> str:
    lines = [
        f"Month {data['month']}: spent {_money(data['spent_usd'])} of {_money(data['budget_usd'])} "
        f"({_money(data['remaining_usd'])} left)",
        f"  {progress_bar(ledger.spent_micro_usd, budget_micro_usd)}",
        f"  {plural(data['executions'], 'run')}, {plural(data['prs_opened'], 'pull request')}",
        f"  pace: {_money(data['projected_month_end_usd'])} projected by month end; "
        + (f"the budget runs out on {data['budget_runs_out_on']}" if data["budget_runs_out_on"] else "the budget lasts the month"),
    ]
    follow = data["follow_ups"]
    if follow["runs"]:  # only a month with follow-ups gets the line
        lines.insert(3, f"  new tasks: {plural(follow['new_task_runs'], 'run')}; follow-ups: {plural(follow['runs'], 'run')} on "
                        f"{plural(follow['pull_requests'], 'pull request')} ({plural(follow['pushed'], 'fix', 'fixes')} pushed), "
                        f"{format_usd(round(follow['spent_usd'] * MICRO), 4)}")
    lines += [f"  {line}" for line in outcome_report.render(data)]
    reached = ", ".join(map(_money, data["milestones_reached"])) or "none yet"
    lines.append(f"  milestones reached: {reached} (of {', '.join(map(_money, data['milestones_usd']))})")
    lines += [f"  {line}" for line in health.render_stats(health.model_stats(ledger))]
    lines += [
        f"  {name}: {totals['reasoning_tokens']:,} of {totals['output_tokens']:,} output tokens were thinking"
        for name, totals in data["models"].items() if totals["reasoning_tokens"]
    ]
    for provider, state in data["health"]["breakers"].items():
        if state != "closed":
            lines.append(f"  circuit breaker for {provider}: {state.replace('_', '-')}")
    for task in data["health"]["parked_tasks"]:
        lines.append(f"  parked task (edit its text to retry): {task}")
    lines += [f"  {warning}" for warning in data["warnings"]]
    lines += ["  past months:"] if data["history"] else []
    for entry in data["history"][-3:]:
        lines.append(
            f"    {entry['month']}: {_money(entry['spent_usd'])}, {plural(entry['executions'], 'run')}, "
            f"{plural(entry['prs_opened'], 'pull request')}"
        )
    return "\n".join(lines)


def render_costs(config: Config, now: dt.datetime, model: estimate.RunModel) -> str:
    """The cost of a run and what the budget buys, from ``model`` (the one model of a run)."""
    analysis = config.price(config.analysis_model)
    code = config.price(config.code_model)
    cost = model.cost(config)
    cap = config.monthly_budget_micro_usd
    start, end = budget.month_bounds(now.strftime("%Y-%m"))
    month_hours = (end - start).total_seconds() / 3600
    plan = estimate.cadence(cost.typical, cap, month_hours)
    lines = [
        f"Cost of one run (budget {format_usd(cap)} a month)",
        f"  {'step':<10}{'model':<22}{'typical':>12}{'worst case':>14}",
        f"  {'analysis':<10}{analysis.model:<22}{format_usd(cost.analysis_typical, 4):>12}{format_usd(cost.analysis_worst, 4):>14}",
        f"  {'code':<10}{code.model:<22}{format_usd(cost.code_typical, 4):>12}{format_usd(cost.code_worst, 4):>14}",
        f"  {'total':<32}{format_usd(cost.typical, 4):>12}{format_usd(cost.worst, 4):>14}",
        "",
        f"  {model.assumptions()}; worst case: max_tokens {config.output_cap(config.analysis_model):,} / {config.output_cap(config.code_model):,} (thinking and reasoning included)",
        f"  runs a month within the budget: about {plan.runs:,} typical, at least {cap // cost.worst:,} even at worst case",
        f"  pull requests a month: at most one a run, so up to {plan.runs:,}",
        f"  a run every {_hours(plan.interval_hours)} spreads the budget over a {month_hours / 24:.0f}-day month;"
        f" {plan.advice(cost.typical)}",
    ]
    for milestone in config.milestones_micro_usd:
        runs_needed = -(-milestone // cost.typical)
        day = runs_needed * plan.interval_hours / 24
        lines.append(
            f"  {format_usd(milestone)} milestone: after about {plural(runs_needed, 'run')} (day {min(day, month_hours / 24):.0f} at that pace)"
        )
    lines += [f"  {warning}" for warning in config.retirement_warnings(now.date())]
    lines += [f"  note: {note}" for note in config.retirement_notes()]
    return "\n".join(lines)


def _hours(hours: float) -> str:
    whole = int(hours)
    minutes = round((hours - whole) * 60)
    return f"{whole}h{minutes:02d}m" if minutes else f"{whole}h"


def run_url(env: Mapping[str, str]) -> str | None:
    """The link to this workflow run, when running in GitHub Actions."""
    parts = [env.get(name, "") for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    return f"{parts[0].rstrip('/')}/{parts[1]}/actions/runs/{parts[2]}" if all(parts) else None


def receipt(record: RunRecord, ledger: Ledger, budget_micro_usd: int, notes: tuple[str, ...] = ()) -> str:
    """The cost receipt: each call's model, tokens (thinking among the output) and dollars, the
    run's total, the month to date, and ``notes`` (a cut-off reply retried, a retired model replaced)."""
    rows = [
        "| step | model | input | output | of which thinking | cached | cost |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for call in record.calls:
        cached = call.usage.cache_read_tokens + call.usage.cache_write_5m_tokens + call.usage.cache_write_1h_tokens
        note = "" if call.outcome == "ok" else f" ({call.outcome})"
        rows.append(
            f"| {call.step}{note} | `{call.model}` | {call.usage.input_tokens:,} | {call.usage.output_tokens:,} "
            f"| {call.usage.reasoning_tokens:,} | {cached:,} | {format_usd(call.cost_micro_usd, 6)} |"
        )
    rows.append(f"| **this run** | | | | | | **{format_usd(record.cost_micro_usd, 6)}** |")
    rows.append("")
    rows.append(
        f"Month to date ({ledger.month}): {format_usd(ledger.spent_micro_usd)} of {format_usd(budget_micro_usd)} "
        f"— `{progress_bar(ledger.spent_micro_usd, budget_micro_usd)}`"
    )
    if notes:
        rows += ["", "Notes:"] + [f"- {note}" for note in notes]
    return "\n".join(rows)


# GitHub refuses a pull request body longer than this ("body is too long (maximum is 65536
# characters)"); counted here in UTF-16 code units, which is never less than GitHub's count.
GITHUB_BODY_LIMIT = 65_536
SHORTENED = "\n\n*… shortened here: GitHub refuses a pull request body over 65,536 characters.*"


def pull_request_body(
    *, summary: str, analysis: str, analysis_model: str, files: list[tuple[str, str]], refused: tuple[str, ...],
    record: RunRecord, ledger: Ledger, budget_micro_usd: int, link: str | None, marker: str,
    notes: tuple[str, ...] = (),
) -> str:
    """The PR body, within GITHUB_BODY_LIMIT: the model's prose (the analysis first, then the
    summary) is shortened to fit; the file list, the receipt and the task marker never are."""

    def render(summary: str, analysis: str) -> str:
        parts = [summary or "(no summary)", "", f"## Analysis ({analysis_model})", "", analysis, "", "## Files changed", ""]
        parts += [f"- `{path}` ({action})" for path, action in files]
        if refused:
            parts += ["", "Refused by the edit checks:", ""] + [f"- {reason}" for reason in refused]
        parts += ["", "## Cost receipt", "", receipt(record, ledger, budget_micro_usd, notes), ""]
        if link:
            parts += [f"Opened by [this workflow run]({link}).", ""]
        parts.append(marker)
        return "\n".join(parts) + "\n"

    summary, analysis = summary.strip(), analysis.strip()
    analysis = _shorten(analysis, _utf16_len(analysis) - (_utf16_len(render(summary, analysis)) - GITHUB_BODY_LIMIT))
    summary = _shorten(summary, _utf16_len(summary) - (_utf16_len(render(summary, analysis)) - GITHUB_BODY_LIMIT))
    return render(summary, analysis)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _shorten(text: str, room: int) -> str:
    """``text`` within ``room`` UTF-16 units, the cut marked (at a line end when one is near,
    and closing a code fence left open); unchanged when it already fits."""
    if _utf16_len(text) <= room:
        return text
    keep = max(0, room - _utf16_len(SHORTENED) - len("\n```"))
    cut = text.encode("utf-16-le")[: keep * 2].decode("utf-16-le", errors="ignore")  # never half a character
    line_end = cut.rfind("\n")
    if line_end >= len(cut) - 200:
        cut = cut[:line_end]
    if cut.count("```") % 2:
        cut += "\n```"
    return cut + SHORTENED


def resumed_pull_request_body(
    *, summary: str, files: list[tuple[str, str]], record: RunRecord | None, ledger: Ledger, budget_micro_usd: int,
    link: str | None, marker: str,
) -> str:
    """The body of a PR opened from a branch an earlier run pushed but could not open a PR for."""
    parts = [summary or "(no summary)", "",
             "An earlier run pushed this branch but could not open its pull request; this run opened it "
             "without calling a model again. The analysis is in that run's log.", "", "## Files changed", ""]
    parts += [f"- `{path}` ({action})" for path, action in files]
    if record is not None:
        parts += ["", "## Cost receipt (the run that did the work)", "", receipt(record, ledger, budget_micro_usd), ""]
    if link:
        parts += [f"Opened by [this workflow run]({link}).", ""]
    parts.append(marker)
    return "\n".join(parts) + "\n"


def job_summary(*, task: str, outcome: str, pr_url: str | None, error: str | None, record: RunRecord,
                ledger: Ledger, budget_micro_usd: int, notes: tuple[str, ...] = ()) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    lines = ["## ai-orchestration run", "", f"**Task:** {task or '(none)'}", f"**Outcome:** {outcome}"]
    if pr_url:
        lines.append(f"**Pull request:** {pr_url}")
    if error:
        lines += ["", f"> **Error:** {error}"]
    lines += ["", receipt(record, ledger, budget_micro_usd, notes), ""]
    chart = spend_chart(ledger, budget_micro_usd)
    if chart:
        lines += [chart, ""]
    return "\n".join(lines)


def spend_chart(ledger: Ledger, budget_micro_usd: int) -> str:
    """The month's spend as a Mermaid ``xychart-beta`` (GitHub renders it in Markdown): a bar
    per day and the month-to-date line, up to the latest run, on an axis that tops out at the
    budget. Empty when the month has no runs."""
    last = series.last_run_day(ledger)
    if last is None:
        return ""
    days = [day for day in series.days(ledger) if day.date <= last]
    cumulative, total = [], 0
    for day in days:
        total += day.spent_micro_usd
        cumulative.append(total)
    top = max(budget_micro_usd, total)
    return "\n".join([
        "```mermaid",
        "xychart-beta",
        # plain words in the title: Mermaid splits statements at ';' and quotes end it
        f'    title "Spend in {ledger.month}, bars per day, line month to date, top of the axis {format_usd(top)}"',
        f'    x-axis "day" [{", ".join(str(day.date.day) for day in days)}]',
        f'    y-axis "USD" 0 --> {_axis_usd(top)}',
        f"    bar [{', '.join(_axis_usd(day.spent_micro_usd) for day in days)}]",
        f"    line [{', '.join(_axis_usd(value) for value in cumulative)}]",
        "```",
    ])


def _axis_usd(micro_usd: int) -> str:
    """Dollars with up to four places and no thousands separator (Mermaid reads plain numbers)."""
    return f"{micro_usd / MICRO:.4f}".rstrip("0").rstrip(".")
