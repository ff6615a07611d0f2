"""`dashboard --out DIR`: the ledger as one static HTML page people can open anywhere.

The page is ``DIR/index.html`` and nothing else: styles inline, charts inline SVG drawn by
pygal (https://www.pygal.org, LGPL-3.0) at build time. It runs no script and fetches nothing,
so it works from ``file://``, from a workflow artifact and from GitHub Pages alike. Every chart
has its figures as a text table beside it, and the colours are the Okabe-Ito palette, which
stays distinct for colour-blind readers.

The headline figures come from ``reports.status_data`` (what `status --json` prints) and the
series from ``series`` (built on the same ``budget.pace`` and ``health.model_stats``).

Every string from the ledger or the config (model, provider, step and task names, outcomes,
links) is untrusted: it is escaped wherever it lands, and a Content-Security-Policy ``<meta>``
forbids scripts and every load from elsewhere, should something ever slip through. Text that
goes into a chart is cut to ``LABEL_MAX_CHARS`` (pygal's title wrapping never ends on a title
it cannot fit) and the full text is in the table beside it; and the page is drawn in a child
process stopped after ``BUILD_TIMEOUT_S``, so no input can hang a scheduled run.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import multiprocessing
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pygal  # type: ignore[import-untyped]  # pygal ships no type hints
from pygal.style import Style  # type: ignore[import-untyped]

from ..core.config import Config
from ..core.errors import AutomationError
from ..core.prices import MICRO, format_usd
from ..core.wording import outcome_words, percent
from ..models.health import ModelStats, probe_at
from ..money.ledger import UNSETTLED, Ledger
from . import series
from .reports import status_data
from ..money.windows import Share

# Okabe & Ito (2008), "Color Universal Design": distinguishable with any colour vision.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
BURN_UP_COLOURS = ("#0072B2", "#D55E00", "#000000")  # spent, pace, budget
DOTTED = {"stroke_style": {"dasharray": "3, 4", "width": 3}}
DASHED = {"stroke_style": {"dasharray": "9, 5"}}
SECTIONS = (
    ("month", "This month"), ("unit-costs", "Cost per run and per PR"), ("outcomes", "What the money bought"),
    ("breakdown", "Spend by model and step"),
    ("providers", "Provider health"), ("runs", "Runs"), ("history", "Past months"), ("attention", "Needs attention"),
)


# No script at all, no load from anywhere (styles and SVG are inline; the icon is a data: URL),
# no <base>, no form posting anywhere: an injected tag can neither run nor call home.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; base-uri 'none'; "
       "form-action 'none'")
LABEL_MAX_CHARS = 48  # a chart title, axis label or legend entry; the table beside the chart has the full text
LEGEND_ROW_PX = 28  # each legend row below the first makes a chart this much taller, so the plot keeps its room
BUILD_TIMEOUT_S = 120.0  # a page of a year's ledger is drawn in about a second


class DashboardError(AutomationError):
    """The output directory cannot be written, or drawing the page overran ``BUILD_TIMEOUT_S`` (exit 1)."""


def build(config: Config, ledger: Ledger, now: dt.datetime, out_dir: Path, *, repository: str | None = None,
          timeout_s: float = BUILD_TIMEOUT_S, share: Share | None = None) -> Path:
    """Write ``out_dir/index.html`` (creating the directory) and return its path; an earlier
    page is left as it was when this one cannot be drawn within ``timeout_s`` seconds.

    Raises DashboardError naming the path when it cannot be written, or the time limit when it overran.
    """
    page = _render_within(timeout_s, config, ledger, now, repository, share)
    target = out_dir / "index.html"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    except OSError as error:
        reason = f"--out {out_dir} is a file, not a directory" if out_dir.is_file() else error.strerror or error
        raise DashboardError(f"dashboard: cannot write {target}: {reason}") from None
    return target


def _render_within(
    timeout_s: float, config: Config, ledger: Ledger, now: dt.datetime, repository: str | None, share: Share | None,
) -> str:
    """``render`` in a forked child killed after ``timeout_s``: pygal's layout loops are not ours
    to bound, and a thread cannot be stopped. Where there is no fork (Windows), in this process."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return render(config, ledger, now, repository=repository, share=share)
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    child = fork.Process(target=_render_into, args=(sender, config, ledger, now, repository, share), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise DashboardError(f"dashboard: drawing the page took over {timeout_s:g} s and was stopped; "
                                 "no page was written (report the ledger that does this as a bug)")
        kind, value = receiver.recv()
    except EOFError:
        child.join()
        raise DashboardError(f"dashboard: the process drawing the page ended without a page (exit code {child.exitcode})") from None
    finally:
        child.kill()
        child.join()
        receiver.close()
    if kind == "error":
        raise value
    return str(value)


def _render_into(
    sender: Any, config: Config, ledger: Ledger, now: dt.datetime, repository: str | None, share: Share | None,
) -> None:
    try:
        sender.send(("page", render(config, ledger, now, repository=repository, share=share)))
    except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
        sender.send(("error", error))


def render(config: Config, ledger: Ledger, now: dt.datetime, *, repository: str | None = None,
           share: Share | None = None) -> str:
    """The whole page as a string; with ``share`` (a shared ledger), the organisation's figures
    and a table of each repository's."""
    status = status_data(config, ledger, now, share=share)
    title = f"ai-orchestration · {repository}" if repository else "ai-orchestration"
    parts = [
        _month(status, ledger, config, now),
        _unit_costs(ledger),
        _outcomes(status),
        _breakdown(status, ledger),
        _providers(status, ledger),
        _runs(ledger),
        _history(status, ledger),
        _attention(status, ledger, config),
    ]
    nav = "".join(f'<li><a href="#{key}">{_e(name)}</a></li>' for key, name in SECTIONS)
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · {_e(ledger.month)}</title>"
        '<link rel="icon" href="data:,">'  # no favicon.ico request (a 404 in the console on Pages)
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>Costs and provider health for {_e(ledger.month)}, "
        f"as of {now.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>"
        f'<nav aria-label="Sections"><ul>{nav}</ul></nav></header><main>{"".join(parts)}</main>'
        "<footer>Built by <code>python -m automation dashboard</code> from the budget ledger; "
        "charts drawn by pygal. Every chart's figures are in the table below it.</footer></body></html>\n"
    )


# --- sections -------------------------------------------------------------------------------


def _month(status: dict[str, Any], ledger: Ledger, config: Config, now: dt.datetime) -> str:
    burn = series.burn_up(ledger, config.monthly_budget_micro_usd, now)
    runs_out = status["budget_runs_out_on"]
    figures = _figures([
        ("spent_usd", "Spent", _usd(status["spent_usd"])),
        ("budget_usd", "Budget", _usd(status["budget_usd"])),
        ("remaining_usd", "Left", _usd(status["remaining_usd"])),
        ("projected_month_end_usd", "Projected by month end", _usd(status["projected_month_end_usd"])),
        ("budget_runs_out_on", "Budget runs out", runs_out or "lasts the month"),
        ("executions", "Runs", str(status["executions"])),
        ("prs_opened", "Pull requests", str(status["prs_opened"])),
    ])
    figures += _organisation(status["organisation"])
    if not ledger.runs:  # nothing to draw: a $0 line says nothing, what to do next does
        return _section("month", f"{figures}{_first_time_hint(ledger.month)}")
    labels = [str(day.day) for day in burn.days]
    chart = _chart(
        pygal.Line, "Month to date against the budget", labels,
        [("Spent", [_dollars(v) for v in burn.spent], {}),
         ("Pace", [_dollars(v) for v in burn.pace], DASHED),
         ("Budget", [_dollars(burn.budget_micro_usd)] * len(labels), {})],
        y_title="USD", x_title=f"day of {ledger.month}", show_dots=False, colours=BURN_UP_COLOURS,
        y_labels=_budget_ticks(burn.budget_micro_usd),
    )
    table = _table(
        ["Day", "Spent to date", "Pace", "Budget"],
        [[day.isoformat(), "" if spent is None else format_usd(spent), format_usd(pace), format_usd(burn.budget_micro_usd)]
         for day, spent, pace in zip(burn.days, burn.spent, burn.pace)],
    )
    pace_text = (f"At this pace the budget runs out on {runs_out}." if runs_out
                 else "At this pace the budget lasts the month.")
    return _section("month", f"{figures}{_figure('burn-up', chart, pace_text, table)}")


def _organisation(organisation: dict[str, Any] | None) -> str:
    """A shared ledger's repositories: each one's spend by window and its share."""
    if organisation is None:
        return ""
    rows = [[entry["repository"], _usd(entry["spent_usd"]), "none" if entry["share_usd"] is None else _usd(entry["share_usd"]),
             _usd(entry["today_usd"]), _usd(entry["week_usd"]), str(entry["executions"])]
            for entry in organisation["repositories"]]
    caption = (f"The organisation's budget is shared through {organisation['ledger_repository']}: "
               f"{_usd(organisation['spent_usd'])} of {_usd(organisation['budget_usd'])} spent this month by every repository.")
    return f'<div id="organisation">{_table(["Repository", "This month", "Share", "Today", "This week", "Runs"], rows, caption)}</div>'


def _first_time_hint(month: str) -> str:
    return (f'<div class="hint" id="first-time"><p><strong>No runs yet in {_e(month)}.</strong> The page fills in '
            "after the first run: the workflow runs on its schedule (every three hours by default), or start one now "
            "from <em>Actions → ai-orchestration → Run workflow</em>.</p><p>To see what that run would do, with no keys "
            "and no cost: <code>python -m automation run --dry-run</code>.</p></div>")


def _budget_ticks(budget_micro_usd: int) -> list[float | None]:
    """Dollar ticks from 0 to the budget, in whole-dollar steps when some split allows it ($15: 3s, $12: 3s)."""
    parts = next((n for n in (5, 4, 6, 3) if budget_micro_usd % (n * MICRO) == 0), 5)
    return [_dollars(budget_micro_usd * step // parts) for step in range(parts + 1)]


def _unit_costs(ledger: Ledger) -> str:
    spent, runs, prs = ledger.spent_micro_usd, ledger.executions, ledger.prs_opened
    figures = _figures([
        ("cost_per_run", "Cost per run", format_usd(round(spent / runs), 4) if runs else "no runs yet"),
        ("cost_per_pr", "Cost per pull request", format_usd(round(spent / prs), 4) if prs else "no pull requests yet"),
    ])
    active = [day for day in series.days(ledger) if day.runs]
    per_run = [day.spent_micro_usd / len(day.runs) for day in active]
    per_pr = [day.spent_micro_usd / day.prs_opened if day.prs_opened else None for day in active]
    chart = _chart(
        pygal.Bar, "Cost per run and per pull request, by day", [str(day.date.day) for day in active],
        [("Per run", [v / MICRO for v in per_run], {}),
         ("Per pull request", [None if v is None else v / MICRO for v in per_pr], {})],
        y_title="USD", x_title="day",
    )
    table = _table(
        ["Day", "Runs", "Pull requests", "Spent", "Per run", "Per pull request"],
        [[day.date.isoformat(), str(len(day.runs)), str(day.prs_opened), format_usd(day.spent_micro_usd, 4),
          format_usd(round(run), 4), "" if pr is None else format_usd(round(pr), 4)]
         for day, run, pr in zip(active, per_run, per_pr)],
    )
    caption = "Spend of each day divided by its runs and by the pull requests they opened."
    return _section("unit-costs", f"{figures}{_figure('unit-costs', chart, caption, table)}")


OUTCOME_HEAD = ["Merged", "Closed unmerged", "Open", "Merge rate", "Cost per merged PR", "Median time to merge", "Spent"]


def _outcome_cells(group: dict[str, Any]) -> list[str]:
    rate, per_merged, hours = group["merge_rate"], group["cost_per_merged_pr_usd"], group["median_hours_to_merge"]
    decided = group["prs_merged"] + group["prs_closed_unmerged"]
    return [str(group["prs_merged"]), str(group["prs_closed_unmerged"]), str(group["prs_open"]),
            "—" if rate is None else f"{rate:.0%} of {decided}", "—" if per_merged is None else _usd(per_merged),
            "—" if hours is None else f"{hours:g} h", _usd(group["spent_usd"], 4)]


def _outcomes(status: dict[str, Any]) -> str:
    """The PRs on record: outcomes by the month they were opened, cost per merged PR by model pair and kind."""
    rate, per_merged = status["merge_rate"], status["cost_per_merged_pr_usd"]
    figures = _figures([
        ("prs_merged", "Merged", str(status["prs_merged"])),
        ("prs_closed_unmerged", "Closed unmerged", str(status["prs_closed_unmerged"])),
        ("prs_open", "Open", str(status["prs_open"])),
        ("merge_rate", "Merge rate", "no verdict yet" if rate is None else f"{rate:.0%}"),
        ("cost_per_merged_pr_usd", "Cost per merged PR", "none merged yet" if per_merged is None else _usd(per_merged)),
    ])
    months = status["outcomes"]["by_month"]
    over_time = _chart(
        pygal.StackedBar, "Pull requests by the month they were opened", [m["month"] for m in months],
        [(name, [m[key] for m in months], {}) for name, key in
         (("Merged", "prs_merged"), ("Closed unmerged", "prs_closed_unmerged"), ("Open", "prs_open"))],
        y_title="pull requests", x_label_rotation=-30, value_suffix=" PRs",
    )
    month_table = _table(["Month", *OUTCOME_HEAD], [[m["month"], *_outcome_cells(m)] for m in months])
    parts = [figures, _figure("outcomes-by-month", over_time, "What became of the bot's pull requests, by the month "
                              "each was opened (as GitHub last showed them).", month_table)]
    for key, title, column in (("by_model", "model pair (analysis × code)", "Models"), ("by_kind", "task kind", "Kind")):
        groups = status[key]
        chart = _chart(
            pygal.HorizontalBar, f"Cost per merged PR by {title}", list(groups),
            [("Cost per merged PR", [g["cost_per_merged_pr_usd"] for g in groups.values()], {})], x_title="USD",
        )
        table = _table([column, *OUTCOME_HEAD], [[name, *_outcome_cells(g)] for name, g in groups.items()])
        parts.append(_figure(f"cost-per-merged-{key.removeprefix('by_')}", chart,
                             "What the decided PRs (merged and closed) cost, per merged PR; the table gives the sample.", table))
    arms = status["outcomes"]["experiment"]["by_arm"]
    if arms:
        parts.append("<h3>Experiment (models.experiment)</h3><p>Each arm's PRs side by side. With a handful of decided "
                     "PRs per arm the difference is mostly chance: see docs/COST-TRACKING.md.</p>"
                     + _table(["Arm", *OUTCOME_HEAD], [[arm, *_outcome_cells(g)] for arm, g in arms.items()]))
    return _section("outcomes", "".join(parts))


def _breakdown(status: dict[str, Any], ledger: Ledger) -> str:
    models = status["models"]
    by_model = _chart(
        pygal.HorizontalBar, "Spend by model", list(models),
        [("Spent", [m["spent_usd"] for m in models.values()], {})], x_title="USD",
    )
    model_table = _table(
        ["Model", "Calls", "Input tokens", "Output tokens", "Spent"],
        [[name, f"{m['calls']:,}", f"{m['input_tokens']:,}", f"{m['output_tokens']:,}", _usd(m["spent_usd"], 4)]
         for name, m in models.items()],
    )
    steps = series.spend_by_step(ledger)
    by_step = _chart(
        pygal.HorizontalBar, "Spend by step", list(steps), [("Spent", [v / MICRO for v in steps.values()], {})],
        x_title="USD",
    )
    step_table = _table(["Step", "Spent"], [[step, format_usd(value, 4)] for step, value in steps.items()])
    return _section("breakdown",
                    _figure("by-model", by_model, "Every paid call this month, by the model that answered.", model_table)
                    + _figure("by-step", by_step, "The same spend by the step that made the call.", step_table))


LATENCY_WINDOW_DAYS = 7


def _providers(status: dict[str, Any], ledger: Ledger) -> str:
    names = [f"{m['provider']}/{m['model']}" for m in status["health"]["models"]]
    if not names:
        return _section("providers", "<p>No model was called this month.</p>")
    daily = _by_name(series.daily_model_stats(ledger))
    labels = [str(date.day) for date, _ in daily]
    rate = _chart(
        pygal.Line, "Success rate by day", labels,
        [(name, [day[name].success_rate * 100 if name in day else None for _, day in daily], {}) for name in names],
        y_title="% of calls", x_title="day", range=(0, 100), value_suffix="%",
    )
    rate_table = _table(["Day", *names], [
        [date.isoformat(), *(f"{percent(day[n].succeeded, day[n].calls)} of {day[n].calls}" if n in day else "" for n in names)]
        for date, day in daily
    ])
    month_table = _table(
        ["Provider/model", "Calls", "Succeeded", "p50", "p95", "p99", "Spent"],
        [[f"{m['provider']}/{m['model']}", str(m["calls"]), percent(m["outcomes"].get("ok", 0), m["calls"]), _seconds(m["p50_ms"]),
          _seconds(m["p95_ms"]), _seconds(m["p99_ms"]), _usd(m["spent_usd"], 4)] for m in status["health"]["models"]],
        caption="The month as a whole",
    )
    parts = [_figure("success-rate", rate, "Share of calls that succeeded each day, per provider and model.",
                     rate_table + month_table)]
    weekly = _by_name(series.daily_model_stats(ledger, LATENCY_WINDOW_DAYS))
    quantiles = [("p50", "p50_ms", {}), ("p95", "p95_ms", {}), ("p99", "p99_ms", DOTTED)]  # p99 may equal p95
    for index, name in enumerate(names):
        chart = _chart(
            pygal.Line, f"Latency of {name}", labels,
            [(q, [getattr(day[name], key) / 1000 if name in day else None for _, day in weekly], extra)
             for q, key, extra in quantiles],
            y_title="seconds", x_title="day", value_suffix=" s",
        )
        table = _table(["Day", "p50", "p95", "p99"], [
            [date.isoformat(), *(_seconds(getattr(day[name], key)) if name in day else "" for _, key, _ in quantiles)]
            for date, day in weekly
        ])
        caption = (f"Latency of successful calls to {name}, over the {LATENCY_WINDOW_DAYS} days up to each day "
                   "(a single day has too few calls for a p95).")
        parts.append(_figure(f"latency-{index}", chart, caption, table))
    return _section("providers", "".join(parts))


def _by_name(daily: list[tuple[dt.date, list[ModelStats]]]) -> list[tuple[dt.date, dict[str, ModelStats]]]:
    """Per day, the statistics keyed by "provider/model"."""
    return [(date, {f"{s.provider}/{s.model}": s for s in stats}) for date, stats in daily]


def _runs(ledger: Ledger) -> str:
    rows = []
    for run in reversed(ledger.runs):
        link = (f'<a href="{_e(run.pr_url)}">{_e(run.pr_url.rsplit("/", 1)[-1])}</a>'
                if run.pr_url and run.pr_url.startswith(("https://", "http://")) else _e(run.pr_url or ""))
        outcome_class = "ok" if run.outcome == "pr_opened" else "bad" if run.outcome.startswith(("failed", UNSETTLED)) else ""
        checks = run.checks.result if run.checks else ""
        checks_class = "ok" if checks == "passed" else "bad" if checks == "failed" else ""
        rows.append(f'<tr><td data-label="Started">{_e(run.started_at.replace("T", " ").rstrip("Z"))}</td>'
                    f'<td data-label="Task">{_e(run.task)}</td>'
                    f'<td data-label="Outcome" data-outcome="{_e(run.outcome)}" class="{outcome_class}">'
                    f"{_e(outcome_words(run.outcome))}</td>"
                    f'<td data-label="Checks" class="{checks_class}">{_e(checks)}</td>'
                    f'<td data-label="Cost" class="num">{format_usd(run.cost_micro_usd, 4)}</td>'
                    f'<td data-label="Pull request">{link}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="6">No runs this month yet.</td></tr>'
    table = ('<div class="scroll"><table id="runs-table"><caption>Newest first (UTC); checks: what the repository\'s own '
             'checks said about the edit</caption><thead><tr><th scope="col">Started</th><th scope="col">Task</th>'
             '<th scope="col">Outcome</th><th scope="col">Checks</th><th scope="col">Cost</th><th scope="col">Pull request</th>'
             f"</tr></thead><tbody>{body}</tbody></table></div>")
    return _section("runs", table)


def _history(status: dict[str, Any], ledger: Ledger) -> str:
    if not ledger.history and not ledger.runs:
        return _section("history", "<p>No past months yet: each month's spend is kept here once it closes.</p>")
    months = [*status["history"], {"month": status["month"], "spent_usd": status["spent_usd"],
                                   "executions": status["executions"], "prs_opened": status["prs_opened"]}]
    budgets = [entry.budget_micro_usd / MICRO for entry in ledger.history] + [status["budget_usd"]]
    chart = _chart(
        pygal.Line, "Spend by month", [m["month"] for m in months],
        [("Spent", [m["spent_usd"] for m in months], {}), ("Budget", budgets, DASHED)],
        y_title="USD", x_label_rotation=-30, colours=BURN_UP_COLOURS[::2],
    )
    table = _table(["Month", "Spent", "Budget", "Runs", "Pull requests"],
                   [[m["month"], _usd(m["spent_usd"]), _usd(budget), str(m["executions"]), str(m["prs_opened"])]
                    for m, budget in zip(months, budgets)])
    caption = f"Closed months from the ledger's history, then {status['month']} so far."
    return _section("history", _figure("months", chart, caption, table))


def _attention(status: dict[str, Any], ledger: Ledger, config: Config) -> str:
    breakers = status["health"]["breakers"]
    open_ones = {p: s for p, s in breakers.items() if s != "closed"}
    breaker_items = "".join(
        f'<li data-breaker="{_e(p)}"><strong>{_e(p)}</strong>: {_e(_breaker_words(ledger, config, p, s))}</li>'
        for p, s in open_ones.items()
    ) or "<li>none: every provider's circuit breaker is closed</li>"
    parked = "".join(f"<li>{_e(task)}</li>" for task in status["health"]["parked_tasks"]) or "<li>none</li>"
    unsettled = status["unsettled"]
    never = "".join(f"<li>{_e(run_id)}</li>" for run_id in unsettled["ids"]) or "<li>none</li>"
    return _section("attention",
                    f'<h3>Open circuit breakers</h3><ul id="breakers">{breaker_items}</ul>'
                    f'<h3>Parked tasks</h3><p>Edit a parked task\'s text in the tasks file to retry it.</p>'
                    f'<ul id="parked">{parked}</ul>'
                    f'<h3>Runs that never settled</h3><p>Killed or lost before their ledger commit: booked at '
                    f'<strong id="unsettled-usd">{_usd(unsettled["spent_usd"], 4)}</strong>, their calls and the one in '
                    f'flight at its worst case, until something better is known.</p><ul id="unsettled">{never}</ul>')


def _breaker_words(ledger: Ledger, config: Config, provider: str, state: str) -> str:
    """What an open breaker means for the next runs, and when it lets a call through again."""
    if state == "half_open":
        return "half-open: the next run makes one probe call; if it succeeds the breaker closes"
    probe = probe_at(ledger, provider, config)
    when = f"{probe:%Y-%m-%d %H:%M} UTC" if probe else "the cool-down ends"
    return f"open: runs skip its models until {when}, then one probe call decides whether it closes"


# --- building blocks ------------------------------------------------------------------------


def _section(key: str, body: str) -> str:
    name = dict(SECTIONS)[key]
    return f'<section id="{key}" aria-labelledby="{key}-title"><h2 id="{key}-title">{_e(name)}</h2>{body}</section>'


def _figures(items: Iterable[tuple[str, str, str]]) -> str:
    cells = "".join(f'<div><dt>{_e(label)}</dt><dd data-figure="{key}">{_e(text)}</dd></div>' for key, label, text in items)
    return f'<dl class="figures">{cells}</dl>'


def _figure(key: str, svg: str, caption: str, table: str) -> str:
    """A chart, its caption (plain text, escaped here) and its table."""
    return (f'<figure id="chart-{key}" class="chart">{svg}<figcaption>{_e(caption)}</figcaption>'
            f"<details><summary>Figures as a table</summary>{table}</details></figure>")


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    th = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class _Formatter:
    """Values as the chart shows them (a plain class, since pygal copies its config)."""

    suffix: str  # "" for dollars

    def __call__(self, value: float | None) -> str:
        if value is None:
            return ""
        return f"{value:,.0f}{self.suffix}" if self.suffix else f"${value:,.2f}"


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)
_GENERATED = re.compile(r"<!--Generated with pygal.*?-->")


@dataclass(frozen=True)
class _Layout:
    """One rendering of a chart: the SVG's size in its own units, the text sizes in those units,
    and how the legend and the day labels are laid out."""

    name: str
    width: int
    height: int
    label_font: int
    legend_font: int
    title_font: int
    legend_columns: int
    label_every: int  # at most this many labelled days on a 30-day axis

    @property
    def label_chars(self) -> int:
        """The longest axis label, in characters: a horizontal bar's labels sit in the left margin,
        and pygal's title wrapping never ends once the margins leave the plot no width, so they
        may take at most about 45% of it (a character is about 0.6 of the font size wide)."""
        return min(LABEL_MAX_CHARS, int(self.width * 0.45 / (0.6 * self.label_font)))


# A phone (360-400 px) shows the narrow one at about 0.8 of its size: 15-unit text reads as 12 px.
WIDE = _Layout("wide", 900, 360, 13, 14, 16, 4, 8)
NARROW = _Layout("narrow", 400, 340, 15, 15, 17, 3, 5)


def _chart(kind: Callable[..., Any], title: str, labels: list[str],
           lines: list[tuple[str, Sequence[float | None], dict[str, Any]]], *, value_suffix: str = "",
           colours: Sequence[str] = PALETTE, **options: Any) -> str:
    """The chart twice, wide for screens and narrow for phones (the style sheet shows one), so
    neither is squeezed: a phone gets readable text and a title that wraps instead of being cut."""
    return "".join(
        f'<div class="{layout.name}">{_svg(kind, title, labels, lines, layout, value_suffix, colours, dict(options))}</div>'
        for layout in (WIDE, NARROW)
    )


def _svg(kind: Callable[..., Any], title: str, labels: list[str],
         lines: list[tuple[str, Sequence[float | None], dict[str, Any]]], layout: _Layout, value_suffix: str,
         colours: Sequence[str], options: dict[str, Any]) -> str:
    """Inline SVG. ``js=[]`` keeps pygal from linking its tooltip script from the web; the
    per-chart config script it still writes only feeds that script, so it is dropped, and the
    random chart id is replaced, so the page is the same for the same ledger."""
    if len(labels) > 2 * layout.label_every:  # label every few days, not all thirty
        options.update(show_minor_x_labels=False, x_labels_major_every=len(labels) // layout.label_every)
    # long legend entries (provider/model) get a line each on a narrow chart rather than overlap
    long_names = layout is NARROW and max((len(name) for name, _, _ in lines), default=0) > 12
    columns = 1 if long_names else (min(layout.legend_columns, len(lines)) or 1)
    chart = kind(
        js=[], style=_style(colours, layout), width=layout.width,
        height=layout.height + LEGEND_ROW_PX * max(0, math.ceil(len(lines) / columns) - 1),
        title=_label(title, LABEL_MAX_CHARS), x_labels=[_label(label, layout.label_chars) for label in labels],
        truncate_legend=-1, truncate_label=-1,
        legend_at_bottom=True, legend_at_bottom_columns=columns,
        value_formatter=_Formatter(value_suffix), include_x_axis=True, allow_interruptions=True, max_scale=8,
        margin_bottom=24, no_data_text="Nothing to draw yet", **options,
    )
    for name, values, extra in lines:
        chart.add(_label(name, LABEL_MAX_CHARS), list(values), **extra)
    svg = chart.render(is_unicode=True, disable_xml_declaration=True)
    key = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ("" if layout is WIDE else f"-{layout.name}")
    svg = _GENERATED.sub("", _SCRIPT.sub("", svg)).replace(chart.uuid, key)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_e(title)} (figures in the table below)" ', 1)


def _label(text: str, most: int) -> str:
    """``text`` on one line, cut to ``most`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def _style(colours: Sequence[str], layout: _Layout) -> Style:
    return Style(
        background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a", foreground_strong="#000000",
        foreground_subtle="#6b6b6b", colors=tuple(colours), font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
        label_font_size=layout.label_font, major_label_font_size=layout.label_font, legend_font_size=layout.legend_font,
        title_font_size=layout.title_font, no_data_font_size=18, opacity="1",
        opacity_hover="1", stroke_width="2.5", guide_stroke_color="#cccccc", major_guide_stroke_color="#cccccc",
    )


def _dollars(micro_usd: int | None) -> float | None:
    return None if micro_usd is None else micro_usd / MICRO


def _usd(dollars: float, places: int = 2) -> str:
    return format_usd(round(dollars * MICRO), places)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


CSS = """
:root{color-scheme:light;--ink:#1a1a1a;--muted:#555;--line:#d0d0d0;--ok:#00704a;--bad:#b03000}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);background:#f6f6f4}
header,main,footer{max-width:1100px;margin:0 auto;padding:0 1rem}header{padding-top:1rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.3rem;margin:0 0 .75rem}h3{font-size:1.05rem;margin:1rem 0 .25rem}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}a{color:#0050a0}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.5rem;margin:0 0 1rem}
.figures div{border-left:4px solid #0072B2;padding:.25rem .75rem}.figures dt{color:var(--muted);font-size:.85rem}
.figures dd{margin:0;font-size:1.35rem;font-weight:600}
figure{margin:0 0 1.25rem}figure svg{width:100%;height:auto;display:block}figcaption{color:var(--muted);margin:.25rem 0}
.chart .narrow{display:none}.hint{border-left:4px solid #E69F00;padding:.25rem .75rem;margin:0 0 1rem}
@media (max-width:640px){
header,main,footer{padding:0 .5rem}section{padding:.75rem;margin:.75rem 0}
.chart .wide{display:none}.chart .narrow{display:block}
#runs-table thead{display:none}#runs-table,#runs-table tbody,#runs-table tr,#runs-table td{display:block;width:100%}
#runs-table tr{border-bottom:1px solid var(--line);padding:.4rem 0}
#runs-table td{border:0;padding:.1rem 0;display:flex;gap:.75rem;text-align:left;white-space:normal}
#runs-table caption{display:block}#runs-table td::before{content:attr(data-label);color:var(--muted);font-weight:400;flex:0 0 6.5rem}
details table,#outcomes table{display:block;overflow-x:auto}
}
details summary{cursor:pointer;color:#0050a0}table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0}
caption{text-align:left;color:var(--muted)}th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;white-space:nowrap}td.ok{color:var(--ok)}td.bad{color:var(--bad);font-weight:600}
.scroll{max-height:32rem;overflow:auto}footer{color:var(--muted);font-size:.85rem;padding-bottom:2rem}
"""
