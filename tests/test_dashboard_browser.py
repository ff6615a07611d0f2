"""The dashboard as a person sees it: built from a realistic ledger, opened from ``file://`` in
headless Chromium (Debian's ``chromium``, driven by Playwright; no browser download).

Screenshots of each section go to ``test-artifacts/dashboard/`` (or ``$TEST_ARTIFACTS_DIR``).
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from automation.cli import main
from automation.core.prices import format_usd
from automation.money.ledger import TASK_TEXT_KEPT, Ledger
from tests import sample_ledgers

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements-dev.txt")

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)
SECTIONS = ("month", "unit-costs", "outcomes", "breakdown", "providers", "runs", "history", "attention")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser_path() -> str:
    """The system's Chromium (``$CHROMIUM`` first). Missing is a failure in CI, a skip elsewhere."""
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if found is None:
        message = "no chromium on PATH (apt-get install chromium; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def artifacts() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts") / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        launched = playwright.chromium.launch(executable_path=browser_path(), args=["--no-sandbox"])
        yield launched
        launched.close()


def cli(*argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env={}, now=NOW, out=out, err=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


class Visit:
    """One page load with everything the browser complained about or tried to fetch."""

    def __init__(self, browser: Any, url: str, width: int = 1200) -> None:
        self.problems: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("request", lambda r: r.url != url and self.problems.append(f"fetched {r.url}"))
        self.page.goto(url, wait_until="load")


def site(tmp_path: Path, ledger: Any) -> tuple[str, dict[str, Any]]:
    repo = sample_ledgers.write_repo(tmp_path / "repo", ledger)
    cli("dashboard", "--repo", str(repo), "--out", str(tmp_path / "site"))
    status = json.loads(cli("status", "--repo", str(repo), "--json"))
    return (tmp_path / "site" / "index.html").as_uri(), status


LEDGERS = {
    "month": lambda: sample_ledgers.with_outcomes(sample_ledgers.month("2026-11", 120)),
    "year": lambda: sample_ledgers.with_outcomes(
        sample_ledgers.with_health(sample_ledgers.year("2026-11", 150), opened_at="2026-11-21T08:00:00Z")),
}


@pytest.mark.parametrize("name", LEDGERS)
def test_the_page_as_a_browser_shows_it(browser: Any, tmp_path: Path, name: str) -> None:
    url, status = site(tmp_path, LEDGERS[name]())
    visit = Visit(browser, url)
    page = visit.page

    # every chart drawn: a visible SVG with series geometry of non-zero size, and its table
    charts = page.eval_on_selector_all("figure.chart", """figures => figures.map(f => {
        const svg = f.querySelector('svg'); const box = svg.getBoundingClientRect();
        const shapes = [...svg.querySelectorAll('.series path, .series rect, .series circle')].map(s => s.getBBox())
            .filter(b => b.width > 0 || b.height > 0);
        return {id: f.id, width: box.width, height: box.height, shapes: shapes.length,
                label: svg.getAttribute('aria-label'), rows: f.querySelectorAll('details table tbody tr').length};
    })""")
    assert len(charts) >= 8, charts
    for chart in charts:
        assert chart["width"] > 600 and chart["height"] > 200, chart
        assert chart["shapes"] > 0, f"{chart['id']} drew nothing"
        assert chart["rows"] > 0 and chart["label"], chart

    # the figures are the ones `status --json` prints
    shown = dict(page.eval_on_selector_all("[data-figure]", "els => els.map(e => [e.dataset.figure, e.innerText])"))
    assert shown["spent_usd"] == f"${status['spent_usd']:,.2f}"
    assert shown["remaining_usd"] == f"${status['remaining_usd']:,.2f}"
    assert shown["budget_usd"] == f"${status['budget_usd']:,.2f}"
    assert shown["projected_month_end_usd"] == f"${status['projected_month_end_usd']:,.2f}"
    assert shown["budget_runs_out_on"] == (status["budget_runs_out_on"] or "lasts the month")
    assert shown["executions"] == str(status["executions"])
    assert shown["prs_opened"] == str(status["prs_opened"])
    month_rows = page.eval_on_selector_all(
        "#providers table:has(caption) tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert month_rows == [
        [f"{m['provider']}/{m['model']}", str(m["calls"]), f"{m['success_rate']:.0%}", f"{m['p50_ms'] / 1000:.1f} s",
         f"{m['p95_ms'] / 1000:.1f} s", f"{m['p99_ms'] / 1000:.1f} s", format_usd(round(m["spent_usd"] * 1e6), 4)]
        for m in status["health"]["models"]
    ]
    runs = page.locator("#runs-table tbody tr")
    assert runs.count() == status["executions"]
    assert page.locator("#runs-table a").count() == status["prs_opened"]
    months = page.eval_on_selector_all("#chart-months tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert months == [entry["month"] for entry in status["history"]] + [status["month"]]
    breakers = page.eval_on_selector_all("#breakers [data-breaker]", "els => els.map(e => e.dataset.breaker)")
    assert breakers == [p for p, state in status["health"]["breakers"].items() if state != "closed"]
    assert page.locator("#parked li").all_inner_texts() == (status["health"]["parked_tasks"] or ["none"])

    # a table behind a chart opens like any other disclosure
    page.locator("#chart-burn-up summary").click()
    assert page.locator("#chart-burn-up table").is_visible()
    page.locator("#chart-burn-up summary").click()

    out = artifacts()
    for section in SECTIONS:
        page.locator(f"#{section}").screenshot(path=str(out / f"{name}-{section}.png"))
    assert visit.problems == []
    page.close()


def with_experiment(ledger: Ledger) -> Ledger:
    """The runs taken in turn by two experiment arms, of two task kinds: the outcome tables at
    their widest (the experiment's table stands outside a chart's details)."""
    arms, kinds = ("code=gpt-4o-mini", "code=gpt-4.1-mini"), ("features", "documentation and examples")
    return replace(ledger, runs=tuple(replace(run, arm=arms[i % 2], task_kind=kinds[i % 2]) for i, run in enumerate(ledger.runs)))


@pytest.mark.parametrize("name", ["year", "experiment"])
def test_the_page_fits_a_phone(browser: Any, tmp_path: Path, name: str) -> None:
    url, _ = site(tmp_path, with_experiment(LEDGERS["year"]()) if name == "experiment" else LEDGERS["year"]())
    visit = Visit(browser, url, width=390)
    overflow = visit.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    visit.page.locator("#month").screenshot(path=str(artifacts() / f"phone-{name}-month.png"))
    visit.page.locator("#outcomes").screenshot(path=str(artifacts() / f"phone-{name}-outcomes.png"))
    assert visit.problems == []
    visit.page.close()


def test_the_page_served_over_http_as_pages_serves_it(browser: Any, tmp_path: Path) -> None:
    url, _ = site(tmp_path, LEDGERS["year"]())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        visit = Visit(browser, f"http://127.0.0.1:{server.server_address[1]}/")
        assert visit.page.locator("figure.chart .wide svg").count() == 12
        assert visit.page.title() == "ai-orchestration · 2026-11"
        assert visit.problems == []
        visit.page.close()
    finally:
        server.shutdown()
        server.server_close()


class Catcher:
    """A loopback HTTP server that counts every request an injected tag would make."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PAYLOADS = (
    '"><svg onload="window.pwned=\'{field}\'"><a href="javascript:window.pwned=\'{field}\'">{field}</a>',
    "</title></figcaption><img src={base}/{field}.png onerror=\"window.pwned='{field}'\">"
    "<link rel=stylesheet href={base}/{field}.css><style>@import '{base}/{field}-import.css'</style>",
    "<script>window.pwned='{field}'</script><iframe src={base}/{field}-frame></iframe><!-- {field}",
    "]]><![CDATA[<foreignObject><img src={base}/{field}-svg.png></foreignObject>",
)


@pytest.mark.parametrize("payload", PAYLOADS, ids=["svg-onload-javascript-link", "img-stylesheet-import", "script-iframe-comment", "cdata-foreignobject"])
def test_hostile_text_in_every_field_shows_as_text_and_runs_nothing(browser: Any, tmp_path: Path, payload: str) -> None:
    catcher = Catcher()
    try:
        def text(field: str) -> str:
            return payload.format(field=field, base=catcher.base)

        repo = sample_ledgers.write_repo(tmp_path / "repo", sample_ledgers.hostile(text))
        out, err = io.StringIO(), io.StringIO()
        env = {"GITHUB_REPOSITORY": text("repository")}
        assert main(["dashboard", "--repo", str(repo), "--out", str(tmp_path / "site")], env=env, now=NOW, out=out, err=err) == 0, err.getvalue()
        visit = Visit(browser, (tmp_path / "site" / "index.html").as_uri())
        page = visit.page
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        for link in page.locator("main a").all()[:20]:  # a live javascript: link would run here
            link.click(modifiers=["Control"], no_wait_after=True)
        page.wait_for_timeout(50)  # no sleep for time: lets a queued onload/onerror handler run before the check

        assert page.evaluate("window.pwned === undefined"), f"a payload ran: {page.evaluate('window.pwned')}"
        assert dialogs == []
        injected = page.evaluate("""() => document.querySelectorAll(
            'script, iframe, img, link[rel=stylesheet], body style:not(svg style), svg svg, foreignObject, [onload], [onerror],'
            + 'a[href^="javascript"]'
        ).length""")
        assert injected == 0  # the page's own styles are in <head> and in each chart's <svg>
        shown = page.evaluate("document.body.innerText")
        for field in (*sample_ledgers.HOSTILE_FIELDS, "repository"):
            kept = text(field)[:TASK_TEXT_KEPT] if field == "task" else text(field)  # the ledger keeps a task's start
            assert kept in shown, f"{field} is not shown literally"
        assert catcher.hits == [] and visit.problems == []
        page.close()
    finally:
        catcher.close()


def test_the_content_security_policy_stops_markup_that_slipped_through(browser: Any, tmp_path: Path) -> None:
    """The second wall alone: raw tags spliced into a built page neither run nor load anything."""
    catcher = Catcher()
    try:
        url, _ = site(tmp_path, LEDGERS["month"]())
        index = tmp_path / "site" / "index.html"
        raw = (f'<img src="{catcher.base}/img.png" onerror="window.pwned=1"><script>window.pwned=2</script>'
               f'<link rel="stylesheet" href="{catcher.base}/s.css"><svg onload="window.pwned=3"></svg>')
        index.write_text(index.read_text(encoding="utf-8").replace("<main>", "<main>" + raw, 1), encoding="utf-8")
        visit = Visit(browser, url)
        visit.page.wait_for_timeout(50)
        assert visit.page.evaluate("window.pwned === undefined")
        assert catcher.hits == []  # Chromium reports the blocked loads as requests; none reached the server
        complaints = [problem for problem in visit.problems if not problem.startswith("fetched ")]
        assert complaints and all("Content Security Policy" in problem for problem in complaints), complaints
        visit.page.close()
    finally:
        catcher.close()


@pytest.mark.parametrize("width", [360, 400])
def test_on_a_phone_charts_titles_text_and_the_runs_table_fit_and_read(browser: Any, tmp_path: Path, width: int) -> None:
    url, _ = site(tmp_path, LEDGERS["year"]())
    visit = Visit(browser, url, width=width)
    page = visit.page
    charts = page.eval_on_selector_all("figure.chart", """figures => figures.map(f => {
        const svg = [...f.querySelectorAll('svg')].find(s => s.getBoundingClientRect().width > 0);
        const box = svg.getBoundingClientRect();
        const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0);
        const titles = [...svg.querySelectorAll('text.title')].map(t => t.getBoundingClientRect());
        return {id: f.id, left: box.left, right: box.right, cut: f.scrollWidth - f.clientWidth,
                titleRight: Math.max(...titles.map(t => t.right)), titleLeft: Math.min(...titles.map(t => t.left)),
                smallest: Math.min(...texts.map(t => parseFloat(getComputedStyle(t).fontSize) * box.width / svg.viewBox.baseVal.width))};
    })""")
    assert len(charts) >= 8
    for chart in charts:
        assert chart["left"] >= 0 and chart["right"] <= width and chart["cut"] <= 0, chart
        assert chart["titleLeft"] >= chart["left"] and chart["titleRight"] <= chart["right"], f"{chart['id']}: title cut"
        assert chart["smallest"] >= 11, f"{chart['id']}: chart text of {chart['smallest']:.1f} px"
    # every cell of the runs table, cost and pull request included, is on screen without scrolling sideways
    cells = page.eval_on_selector_all("#runs-table tbody tr:first-child td", """cells => cells.map(c => {
        const box = c.getBoundingClientRect(); return [c.dataset.label, box.left, box.right, c.innerText]; })""")
    assert [label for label, *_ in cells] == ["Started", "Task", "Outcome", "Checks", "Cost", "Pull request"]
    for label, left, right, text in cells:
        assert 0 <= left and right <= width, (label, left, right)
    outcomes = page.eval_on_selector_all("#runs-table td[data-outcome]", "cells => cells.map(c => c.innerText)")
    assert outcomes and not [text for text in outcomes if "_" in text or text.startswith("failed:") and " " not in text]
    page.locator("#runs").screenshot(path=str(artifacts() / f"phone-{width}-runs.png"))
    assert visit.problems == []
    page.close()


def test_an_empty_month_gets_a_first_time_hint_not_a_zero_chart(browser: Any, tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    cli("dashboard", "--repo", str(tmp_path / "repo"), "--out", str(tmp_path / "site"))
    visit = Visit(browser, (tmp_path / "site" / "index.html").as_uri(), width=390)
    assert visit.page.locator("#first-time").is_visible()
    assert "python -m automation run --dry-run" in visit.page.locator("#first-time").inner_text()
    assert visit.page.locator("#chart-burn-up").count() == 0, "no $0 line for a month with no run"
    assert visit.problems == []
    visit.page.close()
