"""`dashboard --out DIR` as files: what the page holds, that it fetches nothing, bad input.

The page as a browser shows it is tested in test_dashboard_browser.py.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from automation.cli import main
from automation.core.prices import format_usd
from automation.money import budget
from automation.money.ledger import Reservation, RunRecord
from automation.reporting import dashboard, reports, series
from tests import sample_ledgers

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)
SECTIONS = ("month", "unit-costs", "breakdown", "providers", "runs", "history", "attention")


def cli(*argv: str, env: dict[str, str] | None = None, now: dt.datetime = NOW) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env or {}, now=now, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def build(repo: Path, out: Path, env: dict[str, str] | None = None) -> str:
    code, said, err = cli("dashboard", "--repo", str(repo), "--out", str(out), env=env)
    assert code == 0, err
    assert said == f"Dashboard written to {out.resolve() / 'index.html'}\n"
    return (out / "index.html").read_text(encoding="utf-8")


def status(repo: Path) -> dict:
    code, raw, err = cli("status", "--repo", str(repo), "--json")
    assert code == 0, err
    return json.loads(raw)


def figures(page: str) -> dict[str, str]:
    return {key: html.unescape(text) for key, text in re.findall(r'<dd data-figure="([a-z_]+)">([^<]*)</dd>', page)}


@pytest.fixture
def year_repo(tmp_path: Path) -> Path:
    ledger = sample_ledgers.with_health(sample_ledgers.year("2026-11", 150), opened_at="2026-11-21T08:00:00Z")
    return sample_ledgers.write_repo(tmp_path / "repo", ledger)


def test_one_self_contained_page_with_every_section(year_repo: Path, tmp_path: Path) -> None:
    page = build(year_repo, tmp_path / "site", env={"GITHUB_REPOSITORY": "octo/widgets"})
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["index.html"]
    assert "<title>ai-orchestration · octo/widgets · 2026-11</title>" in page
    for section in SECTIONS:
        assert f'<section id="{section}"' in page
    # nothing to fetch and nothing to run: no script, no stylesheet or image link, no CDN
    assert "<script" not in page
    assert not re.search(r'\s(?:src|srcset)=', page)
    assert re.findall(r'<link\b[^>]*>', page) == ['<link rel="icon" href="data:,">']  # no favicon.ico fetch
    assert "@import" not in page and "url(" not in page
    links = re.findall(r'href="([^"]*)"', page)
    assert {link for link in links if not link.startswith(("#", "data:"))} == {
        r["pr_url"] for r in json.loads((year_repo / "token_budget.json").read_text())["runs"] if "pr_url" in r
    }


def test_every_chart_is_an_svg_with_its_table(year_repo: Path, tmp_path: Path) -> None:
    page = build(year_repo, tmp_path / "site")
    charts = re.findall(r'<figure id="chart-([a-z0-9-]+)" class="chart">(.*?)</figure>', page, re.S)
    # burn-up, unit costs, PR outcomes (by month, cost per merged PR by model pair and by kind),
    # by model, by step, success rate, latency of each of 3 models, months
    assert [key for key, _ in charts] == ["burn-up", "unit-costs", "outcomes-by-month", "cost-per-merged-model",
                                          "cost-per-merged-kind", "by-model", "by-step", "success-rate",
                                          "latency-0", "latency-1", "latency-2", "months"]
    ids = set()
    for key, body in charts:
        svg = re.search(r'<svg role="img" aria-label="([^"]+)"[^>]* id="([^"]+)"', body)
        assert svg, key
        ids.add(svg[2])
        assert "<table>" in body and "<tbody><tr>" in body, f"{key}: no table behind the chart"
        if key.startswith("cost-per-merged-"):  # the sample ledger's PRs are all still open
            assert 'class="no_data">Nothing to draw yet' in body, key
        else:
            assert 'class="series' in body, f"{key}: no series drawn"
    assert len(ids) == len(charts), "chart ids must be unique on the page"


def test_pull_requests_over_time_are_counted_in_prs_not_dollars(tmp_path: Path) -> None:
    repo = sample_ledgers.write_repo(tmp_path / "repo", sample_ledgers.with_outcomes(sample_ledgers.month("2026-11", 40)))
    page = build(repo, tmp_path / "site")
    chart = re.search(r'<figure id="chart-outcomes-by-month" class="chart">(.*?)</figure>', page, re.S)
    assert chart and 'class="series' in chart[1]
    svg = chart[1].split("<details>")[0]
    assert "$" not in svg and re.search(r">\d+ PRs<", svg), "the axis counts pull requests"


def test_headline_figures_are_the_status_figures(year_repo: Path, tmp_path: Path) -> None:
    page = build(year_repo, tmp_path / "site")
    data = status(year_repo)
    shown = figures(page)
    assert shown["spent_usd"] == f"${data['spent_usd']:,.2f}"
    assert shown["budget_usd"] == "$15.00"
    assert shown["remaining_usd"] == f"${data['remaining_usd']:,.2f}"
    assert shown["projected_month_end_usd"] == f"${data['projected_month_end_usd']:,.2f}"
    assert shown["budget_runs_out_on"] == "lasts the month"
    assert shown["executions"] == str(data["executions"]) == "73"
    assert shown["prs_opened"] == str(data["prs_opened"])
    assert shown["cost_per_run"] == format_usd(round(data["spent_usd"] * 1e6 / data["executions"]), 4)
    assert shown["cost_per_pr"] == format_usd(round(data["spent_usd"] * 1e6 / data["prs_opened"]), 4)
    # the past months' table: every history month, then this one
    rows = re.findall(r"<tr><td>(\d{4}-\d\d)</td><td>([^<]+)</td><td>[^<]+</td><td>(\d+)</td>",
                      page.split('id="chart-months"')[1])
    assert [(m, s, int(r)) for m, s, r in rows] == [
        (e["month"], f"${e['spent_usd']:,.2f}", e["executions"]) for e in data["history"]
    ] + [("2026-11", shown["spent_usd"], 73)]


def test_runs_table_escapes_text_and_links_only_web_urls(tmp_path: Path) -> None:
    ledger = sample_ledgers.month("2026-11", 6)
    hostile = replace(ledger.runs[0], task='<img src=x onerror="alert(1)"> & co', pr_url="javascript:alert(1)")
    repo = sample_ledgers.write_repo(tmp_path / "repo", ledger.with_run(hostile))
    page = build(repo, tmp_path / "site")
    runs = page.split('id="runs-table"')[1].split("</table>")[0]
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co" in runs
    assert "<img" not in page
    assert 'href="javascript' not in page
    assert runs.count('<tr><td data-label="Started">') == 6
    newest = ledger.runs[-1]
    assert runs.index(newest.started_at[:10]) < runs.index(hostile.started_at[:10]), "newest first"


def test_breakers_and_parked_tasks_are_listed(year_repo: Path, tmp_path: Path) -> None:
    page = build(year_repo, tmp_path / "site")
    attention = page.split('<section id="attention"')[1]
    # when the breaker lets a probe through: opened 2026-11-21 08:00, plus the default 6-hour cool-down
    assert ('<li data-breaker="anthropic"><strong>anthropic</strong>: open: runs skip its models until 2026-11-21 '
            '14:00 UTC, then one probe call decides whether it closes</li>') in attention
    assert "openai" not in attention  # closed breakers are not news
    assert "<li>Rewrite the &lt;parser&gt; &amp; keep it fast</li>" in attention


def test_a_run_that_never_settled_is_booked_and_marked_in_status_and_on_the_page(tmp_path: Path) -> None:
    ledger = sample_ledgers.month("2026-11", 4)
    killed = replace(ledger.runs[-1], id="4242-1-killed", outcome="running")
    in_flight = replace(killed.calls[-1], outcome="in_flight", cost_micro_usd=8_392)
    expired = Reservation(killed.id, killed.task, 290_000, "2026-11-21T09:30:00Z", in_flight)  # NOW is 10:00
    repo = sample_ledgers.write_repo(tmp_path / "repo", replace(ledger.with_run(killed), reservations=(expired,)))

    data = status(repo)
    page = build(repo, tmp_path / "site")
    code, text, _ = cli("status", "--repo", str(repo))

    assert data["unsettled"] == {"runs": 1, "spent_usd": round((killed.cost_micro_usd + 8_392) / 1e6, 6), "ids": [killed.id]}
    # its calls, and the one in flight at its worst case
    assert round(data["spent_usd"] * 1e6) == ledger.spent_micro_usd + killed.cost_micro_usd + 8_392
    assert any(f"run {killed.id} never settled" in warning for warning in data["warnings"])
    assert "never settled: 1 run (killed, or its runner lost?)" in text
    attention = page.split('<section id="attention"')[1]
    assert f'<ul id="unsettled"><li>{killed.id}</li></ul>' in attention
    runs = page.split('id="runs-table"')[1].split("</table>")[0]
    assert '<td data-label="Outcome" data-outcome="unsettled" class="bad">never settled (stopped before its ledger commit)</td>' in runs


def test_a_pace_over_budget_names_the_day(tmp_path: Path) -> None:
    repo = sample_ledgers.write_repo(tmp_path / "repo", sample_ledgers.month("2026-11", 150))
    (repo / ".github").mkdir()
    (repo / ".github" / "ai-orchestration.yml").write_text("budget:\n  monthly_usd: 12\n  milestones_usd: [12]\n")
    page = build(repo, tmp_path / "site")
    day = status(repo)["budget_runs_out_on"]
    assert day and day.startswith("2026-11-")
    assert figures(page)["budget_runs_out_on"] == day
    assert f"At this pace the budget runs out on {day}." in page


def test_a_new_month_with_no_runs_builds(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # --repo must be a git checkout
    page = build(tmp_path, tmp_path / "site")  # no ledger file at all
    assert figures(page)["spent_usd"] == "$0.00"
    assert figures(page)["cost_per_run"] == "no runs yet"
    assert "No runs this month yet." in page and "No model was called this month." in page
    # an empty chart says so in a line of text the size of the page's, not pygal's 64-pixel "No data"
    assert "No data" not in page
    # cost per run, PRs by month, cost per merged PR by model pair and by kind, by model, by step:
    # each drawn for a screen and for a phone
    assert page.count('class="no_data">Nothing to draw yet') == 2 * 6


def test_an_unwritable_out_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # --repo must be a git checkout
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a directory")
    code, out, err = cli("dashboard", "--repo", str(tmp_path), "--out", str(blocker))
    assert code == 1 and out == ""
    assert err == f"error: dashboard: cannot write {blocker / 'index.html'}: --out {blocker} is a file, not a directory\n"


def test_an_invalid_ledger_is_exit_2(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # --repo must be a git checkout
    (tmp_path / "token_budget.json").write_text("{not json")
    code, _, err = cli("dashboard", "--repo", str(tmp_path), "--out", str(tmp_path / "site"))
    assert code == 2 and "token_budget.json: not valid JSON" in err
    assert not (tmp_path / "site").exists()


def test_the_same_ledger_gives_the_same_page(year_repo: Path, tmp_path: Path) -> None:
    assert build(year_repo, tmp_path / "a") == build(year_repo, tmp_path / "b")


# --- the series behind the charts ------------------------------------------------------------


def test_burn_up_adds_up_to_the_months_spend_and_the_pace_line_ends_at_the_projection() -> None:
    ledger = sample_ledgers.month("2026-11", 60)  # runs on days 1 to 20
    burn = series.burn_up(ledger, 15_000_000, NOW)
    assert len(burn.days) == 30 and burn.days[0].isoformat() == "2026-11-01"
    assert burn.spent[20] == ledger.spent_micro_usd and burn.spent[21:] == (None,) * 9  # through today, the 21st
    assert list(burn.spent[:21]) == sorted(burn.spent[:21])
    assert burn.pace[-1] == burn.projected_micro_usd == budget.pace(ledger, 15_000_000, NOW).projected_micro_usd
    assert burn.pace == tuple(sorted(burn.pace))


def test_a_trailing_window_pools_the_calls_of_the_days_before() -> None:
    ledger = sample_ledgers.month("2026-11", 60)
    daily, weekly = series.daily_model_stats(ledger), series.daily_model_stats(ledger, 7)
    assert [d for d, _ in daily] == [d for d, _ in weekly]
    calls = {d: sum(s.calls for s in stats) for d, stats in daily}
    for index, (date, stats) in enumerate(weekly):
        assert sum(s.calls for s in stats) == sum(calls[d] for d, _ in daily[max(0, index - 6):index + 1]), date


def test_spend_by_step_covers_every_call() -> None:
    ledger = sample_ledgers.month("2026-11", 60)
    steps = series.spend_by_step(ledger)
    assert set(steps) == {"analysis", "code", "followup"} and sum(steps.values()) == ledger.spent_micro_usd


# --- the job summary's Mermaid chart -----------------------------------------------------------


def test_job_summary_has_the_months_spend_as_a_mermaid_xychart() -> None:
    ledger = sample_ledgers.month("2026-11", 40)
    record = ledger.runs[-1]
    text = reports.job_summary(task=record.task, outcome="pr_opened", pr_url=record.pr_url, error=None,
                               record=record, ledger=ledger, budget_micro_usd=15_000_000)
    block = text.split("```mermaid\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert block[0] == "xychart-beta"
    assert block[1].startswith('    title "Spend in 2026-11') and block[1].count('"') == 2 and ";" not in block[1]
    assert block[2] == f'    x-axis "day" [{", ".join(str(d) for d in range(1, 21))}]'
    assert block[3] == '    y-axis "USD" 0 --> 15'
    bars = [float(v) for v in block[4].removeprefix("    bar [").removesuffix("]").split(", ")]
    line = [float(v) for v in block[5].removeprefix("    line [").removesuffix("]").split(", ")]
    assert len(bars) == len(line) == 20
    assert line[-1] == pytest.approx(ledger.spent_micro_usd / 1e6, abs=1e-4)
    assert line == sorted(line) and sum(bars) == pytest.approx(line[-1], abs=1e-3)
    assert text.index("Month to date") < text.index("```mermaid"), "the chart sits beside the receipt's figures"


def test_job_summary_of_a_run_that_spent_nothing_has_no_chart() -> None:
    ledger = sample_ledgers.month("2026-11", 1)
    empty = replace(ledger, runs=())
    text = reports.job_summary(task="", outcome="no_task", pr_url=None, error=None,
                               record=RunRecord(id="x", started_at="2026-11-02T00:00:00Z", task=""),
                               ledger=empty, budget_micro_usd=15_000_000)
    assert "mermaid" not in text


# --- the benchmark stays runnable --------------------------------------------------------------


def test_dashboard_benchmark_smoke(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_dashboard.py"), "--quick"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "build median" in result.stdout and "page size" in result.stdout


def test_every_day_axis_numbers_days_the_same_way(year_repo: Path, tmp_path: Path) -> None:
    """The burn-up said 1, 4, 7 and the provider charts 01, 03, 05 for the same days."""
    page = build(year_repo, tmp_path / "site")
    for chart in ("burn-up", "unit-costs", "success-rate", "latency-0"):
        start = page.index(f'id="chart-{chart}"')
        axis = re.search(r'<g class="axis x[^"]*">(.*?)</g></g>', page[start:], re.S)
        assert axis, chart
        days = re.findall(r">(\d+)</text>", axis.group(1))
        assert days and all(day == str(int(day)) for day in days), (chart, days)


def test_the_burn_up_axis_is_labelled_up_to_the_budget(year_repo: Path, tmp_path: Path) -> None:
    """The budget line sat above the top label ($14.00 for a $15.00 budget), unlabelled."""
    page = build(year_repo, tmp_path / "site")
    start = page.index('id="chart-burn-up"')
    axis = re.search(r'<g class="axis y[^"]*">(.*?)</g></g>', page[start:], re.S)
    assert axis
    assert re.findall(r">(\$[\d.,]+)</text>", axis.group(1)) == ["$0.00", "$3.00", "$6.00", "$9.00", "$12.00", "$15.00"]
    (year_repo / ".github").mkdir()
    (year_repo / ".github" / "ai-orchestration.yml").write_text("budget:\n  monthly_usd: 12\n  milestones_usd: [12]\n")
    page = build(year_repo, tmp_path / "site12")
    start = page.index('id="chart-burn-up"')
    axis = re.search(r'<g class="axis y[^"]*">(.*?)</g></g>', page[start:], re.S)
    assert axis
    assert re.findall(r">(\$[\d.,]+)</text>", axis.group(1)) == ["$0.00", "$3.00", "$6.00", "$9.00", "$12.00"]


PAYLOAD = '{field}"><svg onload=alert(1)><a href="javascript:alert(2)">x</a><link rel=stylesheet href=//evil.test/s.css>'


def test_every_ledger_string_is_escaped_and_scripts_and_loads_are_forbidden(tmp_path: Path) -> None:
    ledger = sample_ledgers.hostile(lambda field: PAYLOAD.format(field=field))
    repo = sample_ledgers.write_repo(tmp_path / "repo", ledger)
    page = build(repo, tmp_path / "site", env={"GITHUB_REPOSITORY": PAYLOAD.format(field="repository")})
    assert "<svg onload" not in page and "javascript:alert" not in page.replace("&quot;javascript:alert", "")
    assert "<link rel=stylesheet" not in page and "<a href=\"javascript" not in page
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for field in (*sample_ledgers.HOSTILE_FIELDS, "repository"):
        assert PAYLOAD.format(field=field) in text, f"{field} is not shown as text"
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert policy, "no Content-Security-Policy"
    assert "default-src 'none'" in policy.group(1) and "script-src 'none'" in policy.group(1)


@pytest.mark.parametrize("length", [106, 300, 5_000])
def test_a_long_model_name_is_cut_in_the_charts_and_whole_in_the_tables(tmp_path: Path, length: int) -> None:
    name = "gpt-" + "x" * (length - 4)
    ledger = sample_ledgers.hostile(lambda field: name if field == "model" else field)
    repo = sample_ledgers.write_repo(tmp_path / "repo", ledger)
    page = build(repo, tmp_path / "site")  # pygal's title wrapping used to loop forever here
    assert f"<td>{name}</td>" in page
    assert f"{name[:dashboard.LABEL_MAX_CHARS - 1]}…" in page


def test_a_build_that_overruns_its_time_limit_stops_and_keeps_the_last_page(year_repo: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("yesterday's page", encoding="utf-8")
    config, ledger = sample_ledgers.CONFIG, sample_ledgers.year("2026-11", 150)
    with pytest.raises(dashboard.DashboardError) as stopped:
        dashboard.build(config, ledger, NOW, site, timeout_s=0)
    assert stopped.value.message == ("dashboard: drawing the page took over 0 s and was stopped; no page was written "
                                     "(report the ledger that does this as a bug)")
    assert (site / "index.html").read_text(encoding="utf-8") == "yesterday's page"
    assert dashboard.build(config, ledger, NOW, site).read_text(encoding="utf-8").startswith("<!doctype html>")


def test_runs_table_shows_what_the_checks_said(tmp_path: Path) -> None:
    from automation.money.ledger import ChecksRecord

    ledger = sample_ledgers.month("2026-11", 3)
    checked = [replace(ledger.runs[0], checks=ChecksRecord("passed")), replace(ledger.runs[1], checks=ChecksRecord("failed"))]
    repo = sample_ledgers.write_repo(tmp_path / "repo", ledger.with_run(checked[0]).with_run(checked[1]))
    runs = build(repo, tmp_path / "site").split('id="runs-table"')[1].split("</table>")[0]
    assert '<th scope="col">Checks</th>' in runs
    assert runs.count('<td data-label="Checks" class="ok">passed</td>') == 1 and runs.count('<td data-label="Checks" class="bad">failed</td>') == 1
