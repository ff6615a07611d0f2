"""What `status` and `costs` show: plain data first, text rendered from it.

Imports no provider SDK, so `status` starts fast and works with no keys at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping

from ..core.config import Config
from ..core.prices import MICRO, format_usd
from ..core.wording import plural
from ..models import health
from ..money import budget, estimate, spend, windows
from ..money.ledger import TIME_FORMAT, UNSETTLED, Ledger, RunRecord
from ..repo.checks import FAILED, PASSED, PRE_EXISTING, Verification
from ..repo.context import _fence_for
from . import model_text, series
from . import outcomes as outcome_report


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


def status_data(
    config: Config, ledger: Ledger, now: dt.datetime, paused: str | None = None, share: windows.Share | None = None,
) -> dict[str, Any]:
    """Everything `status --json` prints; keys are part of the interface. ``paused``: why runs
    are paused (``Config.paused_by``), or None. ``share``: this repository in a shared ledger,
    whose figures are then the organisation's, with each repository's under ``organisation``."""
    cap = config.monthly_budget_micro_usd
    spent = ledger.spent_micro_usd
    month_pace = budget.pace(ledger, cap, now)
    return {
        "paused": paused,
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
        "warnings": config.retirement_warnings(now.date()) + [f"note: {note}" for note in config.retirement_notes()]
        + [f"warning: {warning}" for warning in ledger.warnings],
        "unsettled": _unsettled(ledger),
        "in_progress": {
            "runs": sum(r.live(now, config.reservation_horizon) for r in ledger.reservations),
            "reserved_usd": usd(ledger.reserved_micro_usd(now, config.reservation_horizon)),
        },
        "batches": [  # requests submitted in a provider batch, held at their batch worst case until collected
            {"id": held.batch_id, "step": held.in_flight.step if held.in_flight else "", "task": held.task,
             "held_usd": usd(held.micro_usd), "until": held.expires_at}
            for held in ledger.reservations if held.batch
        ],
        "history": [
            {"month": entry.month, "spent_usd": usd(entry.spent_micro_usd), "executions": entry.executions,
             "prs_opened": entry.prs_opened}
            for entry in ledger.history
        ],
        "health": health.status_data(ledger, config, now),
        "follow_ups": _follow_ups(ledger),
        "checks": _checks(ledger),
        "windows": [
            {"window": window.name, "key": window.key, "label": window.label, "cap_usd": usd(window.cap_micro_usd),
             "spent_usd": usd(window.spent_micro_usd), "remaining_usd": usd(window.left_micro_usd),
             "reopens_at": window.reopens_at.strftime(TIME_FORMAT)}
            for window in windows.current(config, ledger, now)
        ],
        "run_cap_usd": None if config.run_budget_micro_usd is None else usd(config.run_budget_micro_usd),
        "warn_at_percent": config.warn_at_percent,
        "organisation": None if share is None else _organisation(config, ledger, now, share),
        **outcome_report.status_data(config, ledger),
    }


def _organisation(config: Config, ledger: Ledger, now: dt.datetime, share: windows.Share) -> dict[str, Any]:
    """A shared ledger: where it is, this repository, and each repository's spend in the UTC day,
    ISO week and month with its share (``budget.repositories``; None: none set). A row naming no
    repository counts as this one's (it predates shared ledgers)."""
    shares = dict(config.repository_shares)
    names = sorted({(run.repository or share.repository).casefold() for run in ledger.runs} | set(shares)
                   | {share.repository.casefold()})
    repositories = []
    for name in names:
        own = ledger.of_repository(name, share.repository)
        spent = {window: windows.spent_between(own, *windows.bounds(window, now)[1:]) for window in (windows.DAY, windows.WEEK)}
        repositories.append({
            "repository": name, "share_usd": usd(shares[name]) if name in shares else None,
            "spent_usd": usd(own.spent_micro_usd), "today_usd": usd(spent[windows.DAY]), "week_usd": usd(spent[windows.WEEK]),
            "executions": own.executions, "prs_opened": own.prs_opened,
            "reserved_usd": usd(own.reserved_micro_usd(now, config.reservation_horizon)),
        })
    return {"ledger_repository": share.ledger, "repository": share.repository.casefold(),
            "budget_usd": usd(config.monthly_budget_micro_usd), "spent_usd": usd(ledger.spent_micro_usd),
            "repositories": repositories}


def _organisation_lines(organisation: dict[str, Any] | None) -> list[str]:
    """A shared ledger's repositories, one line each, this one marked."""
    if organisation is None:
        return []
    lines = [f"  organisation budget, shared through {organisation['ledger_repository']}: spent "
             f"{_money(organisation['spent_usd'])} of {_money(organisation['budget_usd'])} by every repository"]
    for entry in organisation["repositories"]:
        share = f" of its {_money(entry['share_usd'])} share" if entry["share_usd"] is not None else " (no share of its own)"
        this = " (this repository)" if entry["repository"] == organisation["repository"] else ""
        lines.append(f"    {entry['repository']}{this}: {_money(entry['spent_usd'])}{share}, today {_money(entry['today_usd'])}, "
                     f"this week {_money(entry['week_usd'])}, {plural(entry['executions'], 'run')}")
    return lines


def _unsettled(ledger: Ledger) -> dict[str, Any]:
    """Runs whose reservation expired before they settled, booked at what they may have spent."""
    runs = [run for run in ledger.runs if run.outcome == UNSETTLED]
    return {"runs": len(runs), "spent_usd": usd(sum(run.cost_micro_usd for run in runs)),
            "ids": [run.id for run in runs]}


def _money(dollars: float) -> str:
    """A dollar figure of ``status_data`` (six places, exact) in the one money format."""
    return format_usd(round(dollars * MICRO))


def _follow_ups(ledger: Ledger) -> dict[str, Any]:
    """Follow-up runs apart from new tasks: runs, PRs worked on, fixes pushed, dollars spent."""
    data = spend.status_data(ledger)
    spent = data.pop("spent_micro_usd")
    return {**data, "spent_usd": usd(spent), "new_task_runs": ledger.executions - data["runs"]}


def _checks(ledger: Ledger) -> dict[str, int]:
    """The repository's own checks this month: runs checked, passed and failed, repair calls, and
    the pull requests opened with the checks passing or failing (a draft, or verify.on_failure open)."""
    checked = [run for run in ledger.runs if run.checks is not None]
    opened = [run for run in checked if run.pr_url and run.kind == "task"]
    return {
        "runs": len(checked),
        "passed": sum(run.checks.result == PASSED for run in checked if run.checks),
        "failed": sum(run.checks.result == FAILED for run in checked if run.checks),
        "repairs": sum(run.checks.repairs for run in checked if run.checks),
        "pull_requests_passed": sum(run.checks.result == PASSED for run in opened if run.checks),
        "pull_requests_failed": sum(run.checks.result == FAILED for run in opened if run.checks),
    }


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
    if data["paused"]:
        lines.insert(0, f"Paused: {data['paused']}. Runs stop before any work.")
    checked = data["checks"]
    if checked["runs"]:  # only a month with checks gets the line
        lines.append(f"  checks: {plural(checked['runs'], 'run')} checked ({checked['passed']} passed, {checked['failed']} failed, "
                     f"{plural(checked['repairs'], 'repair')}); pull requests opened with the checks passing: "
                     f"{checked['pull_requests_passed']}, failing: {checked['pull_requests_failed']}")
    for window in data["windows"]:
        if window["window"] != windows.MONTH:  # the month has the lines above
            lines.append(f"  {windows.TITLES[window['window']]} ({window['label']}): spent {_money(window['spent_usd'])} of "
                         f"{_money(window['cap_usd'])} ({_money(window['remaining_usd'])} left; {window['key']}), "
                         f"reopens {window['reopens_at']}")
    if data["run_cap_usd"] is not None:
        lines.append(f"  one run may spend at most {_money(data['run_cap_usd'])} ({windows.RUN_KEY})")
    lines += _organisation_lines(data["organisation"])
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
    unsettled, running = data["unsettled"], data["in_progress"]
    if unsettled["runs"]:
        lines.append(f"  never settled: {plural(unsettled['runs'], 'run')} (killed, or its runner lost?), booked at "
                     f"{format_usd(round(unsettled['spent_usd'] * MICRO), 4)}: their calls, the one in flight at its worst case")
    if running["runs"]:
        lines.append(f"  in progress: {plural(running['runs'], 'run')} holding {format_usd(round(running['reserved_usd'] * MICRO), 4)} more")
    for held in data["batches"]:
        lines.append(f"  in flight: {held['step']} batch {held['id']} for '{held['task']}', held at "
                     f"{format_usd(round(held['held_usd'] * MICRO), 4)} until {held['until']} (a later run collects it)")
    lines += [f"  {warning}" for warning in data["warnings"]]
    lines += ["  past months:"] if data["history"] else []
    for entry in data["history"][-3:]:
        lines.append(
            f"    {entry['month']}: {_money(entry['spent_usd'])}, {plural(entry['executions'], 'run')}, "
            f"{plural(entry['prs_opened'], 'pull request')}"
        )
    return "\n".join(lines)


def render_costs(config: Config, now: dt.datetime, model: estimate.RunModel) -> str:
    """The cost of a run and what the budget buys: typical from ``model`` (the one model of a
    run), worst case from ``budget.worst_case`` (what a run reserves)."""
    analysis = config.price(config.analysis_model)
    code = config.price(config.code_model)
    cost = model.cost(config)
    worst = budget.worst_case(config, estimate.PROMPT_OVERHEAD_TOKENS)
    cap = config.monthly_budget_micro_usd
    start, end = budget.month_bounds(now.strftime("%Y-%m"))
    month_hours = (end - start).total_seconds() / 3600
    days = round(month_hours / 24)
    typical_runs, binding = windows.runs_a_month(config, cost.typical, days)
    worst_runs, _ = windows.runs_a_month(config, worst.run, days)
    plan = estimate.cadence(typical_runs, month_hours)
    code_worst = budget.CODE_CALLS * worst.code
    caps = [f"{format_usd(cap)} a month"] + [
        f"{format_usd(amount)} a {name}" for name, amount in (
            ("day", config.daily_budget_micro_usd), ("week", config.weekly_budget_micro_usd), ("run", config.run_budget_micro_usd))
        if amount is not None
    ]
    lines = [
        f"Cost of one run (budget {', '.join(caps)})",
        f"  {'step':<10}{'model':<22}{'typical':>12}{'worst case':>14}",
        f"  {'analysis':<10}{analysis.model:<22}{format_usd(cost.analysis_typical, 4):>12}{format_usd(worst.analysis, 4):>14}",
        f"  {'code':<10}{code.model:<22}{format_usd(cost.code_typical, 4):>12}{format_usd(code_worst, 4):>14}",
        *([f"  {'localise':<10}{code.model:<22}{format_usd(cost.localise_typical, 4):>12}{format_usd(worst.localise, 4):>14}"]
          if worst.localise else []),
        f"  {'total':<32}{format_usd(cost.typical, 4):>12}{format_usd(worst.run, 4):>14}",
        "",
        f"  {model.assumptions()}; {worst.describe(config)}",
        f"  runs a month within the budget: about {plan.runs:,} typical, at least {worst_runs:,} even at worst case"
        + (f" ({binding} allows the fewest)" if binding != windows.CONFIG_KEYS[windows.MONTH] else ""),
        f"  pull requests a month: at most one a run, so up to {plan.runs:,}",
        f"  a run every {_hours(plan.interval_hours)} spreads the budget over a {month_hours / 24:.0f}-day month;"
        f" {plan.advice(cost.typical)}",
    ]
    if config.run_budget_micro_usd is not None and worst.run > config.run_budget_micro_usd:
        lines.append(f"  {windows.RUN_KEY} {format_usd(config.run_budget_micro_usd)} is below what a run reserves "
                     f"({format_usd(worst.run, 4)} at most): every run stops before its first call")
    sure = estimate.reachable_spend(config)
    for milestone in config.milestones_micro_usd:
        runs_needed = -(-milestone // cost.typical)
        if runs_needed > plan.runs and binding != windows.CONFIG_KEYS[windows.MONTH]:
            lines.append(f"  {format_usd(milestone)} milestone: after about {plural(runs_needed, 'run')}, "
                         "more than the budget's windows allow this month")
        else:
            lines.append(f"  {_milestone_promise(milestone, cap, sure, worst.run, cost.typical, plan.interval_hours, month_hours)}")
    lines += _modes(config, model, cost.typical)
    lines += [f"  {warning}" for warning in config.retirement_warnings(now.date())]
    lines += [f"  note: {note}" for note in config.retirement_notes()]
    return "\n".join(lines)


def _modes(config: Config, model: estimate.RunModel, typical: int) -> list[str]:
    """Cost per pull request and pull requests a month in each mode, with what each assumes."""
    cap = config.monthly_budget_micro_usd
    lines = ["", f"  per pull request, by mode (models.batch is {'true' if config.batch else 'false'}):",
             f"  {'mode':<16}{'per PR':>10}{'PRs a month':>14}{'PRs per dollar':>16}"]
    for mode in estimate.modes(config, model):
        ratio = typical / mode.per_pull_request if mode.per_pull_request else 0.0
        lines.append(f"  {mode.name:<16}{format_usd(mode.per_pull_request, 4):>10}{mode.pull_requests(cap):>14,}"
                     f"{1_000_000 / mode.per_pull_request:>9.2f} ({ratio:.2f}x)")
    lines += [f"    {mode.name}: {mode.assumption}" for mode in estimate.modes(config, model)]
    return lines


def _milestone_promise(milestone: int, cap: int, sure: int, run_worst: int, typical: int, interval_hours: float,
                       month_hours: float) -> str:
    """When a milestone is reached, promised only where it must come true: runs go on while a
    whole run's worst case fits, so spend surely reaches ``sure``; above it, only if the last
    runs happen to fit."""
    name = f"{format_usd(milestone)} milestone"
    if milestone <= sure:
        runs_needed = -(-milestone // typical)
        day = min(runs_needed * interval_hours / 24, month_hours / 24)
        return f"{name}: after about {plural(runs_needed, 'run')} (day {day:.0f} at that pace)"
    ends = f"a month with enough runs ends between {format_usd(sure)} and {format_usd(cap)}"
    if milestone == cap:
        return (f"{name}: at the full budget, reached only if the month's last run spends exactly what is left; "
                f"runs may stop once less than {format_usd(run_worst, 4)} (a run's worst case) is left, so {ends}")
    return (f"{name}: may not be reached; runs may stop once less than {format_usd(run_worst, 4)} (a run's worst case) "
            f"is left, so {ends}")


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


_STATUS_WORDS = {PASSED: "✅ passed", FAILED: "❌ failed", PRE_EXISTING: "⚠️ pre-existing: fails on the untouched tree too, not blamed on this change"}


def checks_section(verification: Verification, heading: str = "##") -> str:
    """The receipt's "Checks" section: each command, what it said, how long it took, and for a
    failed one what its output says (fenced, so no output can close the block or hide a section)."""
    repairs = f", after {plural(verification.repairs, 'repair')}" if verification.repairs else ""
    where = (f"in a sandbox ({verification.sandbox})" if verification.sandbox != "none"
             else "**without a sandbox** (verify.sandbox is best_effort)")
    rows = [f"{heading} Checks", "",
            f"The repository's own checks ran on the edited tree {where} and were compared with the untouched tree "
            f"({verification.base[:7]}): **{verification.result}**{repairs}.", "",
            "| command | result | time |", "|---|---|---:|"]
    rows += [f"| {_code_cell(verdict.command)} | {_STATUS_WORDS[verdict.status]} | {verdict.seconds:.1f} s |"
             for verdict in verification.verdicts]
    for verdict in verification.failed:
        fence = _fence_for(verdict.excerpt)
        rows += ["", f"<details><summary>Why <code>{_html(verdict.command)}</code> failed</summary>", "",
                 f"{fence}text", verdict.excerpt, fence, "", "</details>"]
    return "\n".join(rows)


def _code_cell(text: str) -> str:
    """``text`` as inline code in a Markdown table cell (a pipe would end the cell, a backtick the code)."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# GitHub refuses a pull request body longer than this ("body is too long (maximum is 65536
# characters)"); counted here in UTF-16 code units, which is never less than GitHub's count.
GITHUB_BODY_LIMIT = 65_536
SHORTENED = "\n\n*… shortened here: GitHub refuses a pull request body over 65,536 characters.*"


def pull_request_body(
    *, summary: str, analysis: str, analysis_model: str, files: list[tuple[str, str]], refused: tuple[str, ...],
    record: RunRecord, ledger: Ledger, budget_micro_usd: int, link: str | None, marker: str,
    notes: tuple[str, ...] = (), checks: Verification | None = None,
) -> str:
    """The PR body, within GITHUB_BODY_LIMIT: the model's prose (the analysis first, then the
    summary) is shortened to fit; the file list, the checks, the receipt and the task marker never are.
    The prose is quoted and inert (``model_text.quote``): it cannot hide or fake what follows it."""

    def render(summary: str, analysis: str) -> str:
        parts = [model_text.quote(summary or "(no summary)"), "", f"## Analysis ({analysis_model})", "",
                 model_text.quote(analysis), "", "## Files changed", ""]
        parts += [model_text.neutralise(f"- `{path}` ({action})") for path, action in files]  # paths the model chose
        if refused:
            parts += ["", "Refused by the edit checks:", ""] + [f"- {model_text.neutralise(reason)}" for reason in refused]
        if checks is not None:
            parts += ["", checks_section(checks)]
        parts += ["", "## Cost receipt", "", receipt(record, ledger, budget_micro_usd, notes), ""]
        if link:
            parts += [f"Opened by [this workflow run]({link}).", ""]
        parts.append(marker)
        return "\n".join(parts) + "\n"

    summary, analysis = summary.strip(), analysis.strip()
    analysis = _fit(analysis, lambda text: render(summary, text))
    summary = _fit(summary, lambda text: render(text, analysis))
    return render(summary, analysis)


def _fit(text: str, rendered: Callable[[str], str]) -> str:
    """``text`` shortened until ``rendered(text)`` is within GITHUB_BODY_LIMIT, or cut to nothing.

    A few rounds at most: quoting and escaping make the rendered text longer than ``text``, and
    each round takes off at least what the last one was over.
    """
    room = _utf16_len(text)
    while True:
        cut = _shorten(text, room)
        over = _utf16_len(rendered(cut)) - GITHUB_BODY_LIMIT
        if over <= 0 or room == 0:
            return cut
        room = max(0, room - over)


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
    parts = [model_text.quote(summary or "(no summary)"), "",
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
                ledger: Ledger, budget_micro_usd: int, notes: tuple[str, ...] = (), checks: Verification | None = None) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    lines = ["## ai-orchestration run", "", f"**Task:** {model_text.neutralise(task) or '(none)'}", f"**Outcome:** {outcome}"]
    if pr_url:
        lines.append(f"**Pull request:** {pr_url}")
    if error:  # may quote a model's reply
        lines += ["", model_text.quote(f"**Error:** {error}")]
    if checks is not None:
        lines += ["", checks_section(checks, "###")]
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
