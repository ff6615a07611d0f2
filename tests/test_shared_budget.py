"""One budget across repositories, below the CLI: the config keys, the ``repository`` field of
a shared ledger's rows, the share checked beside the organisation's cap (windows.available),
and what `status --json`, its text and the metrics show for it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from automation.core.config import Config, parse_config
from automation.core.errors import ConfigError
from automation.core.prices import Usage
from automation.money import ledger as ledger_module
from automation.money import windows
from automation.money.ledger import CallRecord, Ledger, Reservation, RunRecord
from automation.reporting import metrics, reports

UTC = dt.timezone.utc
TODAY = dt.date(2026, 12, 4)
NOW = dt.datetime(2026, 12, 4, 13, tzinfo=UTC)
ORG = "budget:\n  monthly_usd: 1\n  repositories:\n    octo/app: {monthly_usd: 0.5}\n    Octo/Site: {monthly_usd: 0.25}\n"


def run(run_id: str, started_at: str, cost: int, repository: str = "") -> RunRecord:
    call = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=1), cost, 1)
    return RunRecord(run_id, started_at, "t", "pr_opened", None, (call,), repository=repository)


def config(text: str) -> Config:
    return parse_config(text, "cfg.yml", TODAY)


def test_shares_and_the_ledger_repository_are_read_and_checked() -> None:
    cfg = config(ORG + "ledger:\n  repository: octo/ai-budget\n")
    assert cfg.repository_shares == (("octo/app", 500_000), ("octo/site", 250_000))  # names compare case-blind
    assert cfg.ledger_repository == "octo/ai-budget"
    for bad, says in [
        ("budget:\n  repositories: [octo/app]\n", "budget.repositories must be a mapping"),
        ("budget:\n  repositories:\n    app: {monthly_usd: 1}\n", "'app' must be a repository as owner/name"),
        ("budget:\n  repositories:\n    octo/app: {daily_usd: 1}\n", "budget.repositories.octo/app must be a mapping with monthly_usd only"),
        ("budget:\n  repositories:\n    octo/app: {monthly_usd: -1}\n", "budget.repositories.octo/app.monthly_usd"),
        ("ledger:\n  repository: --upload-pack=x\n", "ledger.repository must be owner/name or a git URL"),
    ]:
        with pytest.raises(ConfigError, match=None) as raised:
            config(bad)
        assert says in raised.value.message, raised.value.message


def test_rows_name_their_repository_and_older_rows_read_as_the_local_one() -> None:
    ledger = Ledger("2026-12", 1_000_000, runs=(run("a", "2026-12-04T01:00:00Z", 100, "octo/app"),
                                                run("old", "2026-12-02T01:00:00Z", 40)),
                    reservations=(Reservation("b", "t", 300, "2026-12-04T13:30:00Z", None, repository="octo/site"),))
    text = ledger_module.to_text(ledger)
    rows = json.loads(text)
    assert {r["id"]: r.get("repository") for r in rows["runs"]} == {"a": "octo/app", "old": None}  # none written without one
    assert rows["reservations"][0]["repository"] == "octo/site"
    again = ledger_module.from_text(text, "x")
    assert again.of_repository("OCTO/APP", "octo/app").spent_micro_usd == 140  # the old row is the reader's own
    assert again.of_repository("octo/site", "octo/app").spent_micro_usd == 0
    assert [r.run_id for r in again.of_repository("octo/site", "octo/app").reservations] == ["b"]


def test_a_reservation_fits_the_organisation_and_the_repository_share() -> None:
    cfg = config(ORG)
    share = windows.Share("octo/site", "octo/ai-budget", 250_000)
    ledger = Ledger("2026-12", 1_000_000, runs=(run("a", "2026-12-01T01:00:00Z", 600_000, "octo/app"),
                                                run("s", "2026-12-02T01:00:00Z", 100_000, "octo/site")),
                    reservations=(Reservation("held", "t", 50_000, "2026-12-04T13:30:00Z", None, repository="octo/site"),))
    # the organisation has 1.00 - 0.70 - 0.05 = 0.25 left; the share 0.25 - 0.10 - 0.05 = 0.10
    assert windows.available(cfg, ledger, NOW, "me", 1, share) == 100_000
    with pytest.raises(windows.WindowStop) as stop:
        windows.available(cfg, ledger, NOW, "me", 150_000, share)
    assert stop.value.message.startswith("budget stop (budget.repositories.octo/site.monthly_usd of octo/ai-budget): ")
    assert "left this month for octo/site (2026-12: $0.10 spent of $0.25)" in stop.value.message
    assert stop.value.window is not None and stop.value.window.is_share
    busy = replace(ledger, runs=(*ledger.runs, run("c", "2026-12-03T01:00:00Z", 300_000, "octo/app")))
    with pytest.raises(windows.WindowStop) as stop:  # the organisation is out before the share is
        windows.available(cfg, busy, NOW, "me", 1, share)
    assert "(budget.monthly_usd of octo/ai-budget)" in stop.value.message
    assert "this month for the organisation (octo/ai-budget)" in stop.value.message
    unlisted = windows.Share("octo/new", "octo/ai-budget", None)  # no share: the organisation's cap only
    assert windows.available(cfg, ledger, NOW, "me", 1, unlisted) == 250_000


def test_status_shows_the_organisation_and_each_repository() -> None:
    cfg = config(ORG)
    share = windows.Share("octo/app", "octo/ai-budget", 500_000)
    ledger = Ledger("2026-12", 1_000_000, runs=(run("a", "2026-12-04T01:00:00Z", 120_000, "octo/app"),
                                                run("s", "2026-12-01T01:00:00Z", 80_000, "octo/site"),  # this week
                                                run("x", "2026-12-02T01:00:00Z", 5_000, "octo/other")))
    data = reports.status_data(cfg, ledger, NOW, share=share)
    organisation = data["organisation"]
    assert (organisation["ledger_repository"], organisation["repository"]) == ("octo/ai-budget", "octo/app")
    assert organisation["spent_usd"] == data["spent_usd"] == 0.205 and organisation["budget_usd"] == 1
    by_name = {entry["repository"]: entry for entry in organisation["repositories"]}
    assert [by_name["octo/app"][key] for key in ("spent_usd", "today_usd", "week_usd", "share_usd", "executions")] == [
        0.12, 0.12, 0.12, 0.5, 1]
    assert (by_name["octo/site"]["today_usd"], by_name["octo/site"]["week_usd"]) == (0, 0.08)
    assert by_name["octo/other"]["share_usd"] is None
    text = reports.render_status(data, ledger, cfg.monthly_budget_micro_usd)
    assert "organisation budget, shared through octo/ai-budget: spent $0.21 of $1.00 by every repository" in text
    assert "    octo/app (this repository): $0.12 of its $0.50 share, today $0.12, this week $0.12, 1 run" in text
    assert "    octo/other: $0.01 (no share of its own)" in text
    exposed = metrics.render(data)
    assert 'ai_orchestration_repository_spent_usd{repository="octo/site",window="week"} 0.08' in exposed
    assert 'ai_orchestration_repository_share_usd{repository="octo/app"} 0.5' in exposed
    assert 'repository_share_usd{repository="octo/other"}' not in exposed
    assert reports.status_data(cfg, ledger, NOW)["organisation"] is None  # a repository's own ledger


def test_the_dashboard_shows_each_repository_of_a_shared_ledger() -> None:
    from automation.reporting import dashboard

    cfg = config(ORG)
    ledger = Ledger("2026-12", 1_000_000, runs=(run("a", "2026-12-04T01:00:00Z", 120_000, "octo/app"),
                                                run("s", "2026-12-01T01:00:00Z", 80_000, "octo/site")))
    page = dashboard.render(cfg, ledger, NOW, repository="octo/app", share=windows.Share("octo/app", "octo/ai-budget", 500_000))
    table = page[page.index('<div id="organisation">'):]
    table = table[:table.index("</div>")]
    assert "shared through octo/ai-budget: $0.20 of $1.00 spent this month by every repository" in table
    assert "<td>octo/app</td><td>$0.12</td><td>$0.50</td><td>$0.12</td><td>$0.12</td><td>1</td>" in table
    assert "<td>octo/site</td><td>$0.08</td><td>$0.25</td><td>$0.00</td><td>$0.08</td><td>1</td>" in table
    assert 'id="organisation"' not in dashboard.render(cfg, ledger, NOW)


def test_a_branch_that_moved_since_the_fetch_is_not_taken_for_a_refused_token(tmp_path) -> None:  # noqa: ANN001
    import os
    import subprocess

    from automation.repo import gitops

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@a", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@a"}

    def git(cwd, *args: str) -> None:  # noqa: ANN001
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    git(tmp_path, "init", "-q", "--bare", "-b", "main", "ledger.git")
    for name in ("first", "second"):
        git(tmp_path, "clone", "-q", "ledger.git", name)
    git(tmp_path / "first", "commit", "-q", "--allow-empty", "-m", "one")
    git(tmp_path / "first", "push", "-q", "origin", "HEAD:main")
    gitops.fetch(tmp_path / "second", "main", env)
    git(tmp_path / "first", "commit", "-q", "--allow-empty", "-m", "another run's reservation")
    git(tmp_path / "first", "push", "-q", "origin", "HEAD:main")
    assert gitops.push_refusal(tmp_path / "second", "main", env) is None  # reached the branch: allowed

    waits: list[int] = []
    contents = iter([b"a", b"b"])

    def render(_: bytes | None) -> bytes:
        if not waits and len(list(tmp_path.glob("moved"))) == 0:  # another run pushes in between, once
            (tmp_path / "moved").touch()
            git(tmp_path / "first", "commit", "-q", "--allow-empty", "-m", "a race")
            git(tmp_path / "first", "push", "-q", "origin", "HEAD:main")
        return next(contents)

    gitops.commit_file_with_retry(tmp_path / "second", "main", "token_budget.json", render, "m", env=env, pause=waits.append)
    assert waits == [0]  # backed off once before the second attempt


def test_backoff_is_full_jitter_growing_to_a_cap() -> None:
    from automation.money.reservations import BACKOFF_CAP_SECONDS, backoff_seconds

    assert backoff_seconds(0, 0.0) == 0 and backoff_seconds(0, 0.999) < 0.25
    assert backoff_seconds(3, 0.5) == 1.0 and backoff_seconds(30, 0.999) < BACKOFF_CAP_SECONDS
