"""Budget windows (money/windows.py): the UTC day, the ISO week, the month and the run cap,
each computed from the ledger's run rows at a given moment (time is a parameter)."""

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

UTC = dt.timezone.utc
TODAY = dt.date(2026, 12, 4)


def run(run_id: str, started_at: str, cost: int) -> RunRecord:
    call = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=1), cost, 1)
    return RunRecord(run_id, started_at, "t", "pr_opened", None, (call,))


def ledger_of(month: str, *runs: RunRecord) -> Ledger:
    return Ledger(month=month, budget_micro_usd=15_000_000, runs=runs)


def config(text: str) -> Config:
    return parse_config(text, "cfg.yml", TODAY)


def test_bounds_are_the_utc_day_the_iso_week_and_the_month() -> None:
    moment = dt.datetime(2027, 1, 1, 23, 59, 59, tzinfo=UTC)  # a Friday in ISO week 2026-W53
    assert windows.bounds(windows.DAY, moment) == (
        "2027-01-01", dt.datetime(2027, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 2, tzinfo=UTC))
    assert windows.bounds(windows.WEEK, moment) == (
        "2026-W53", dt.datetime(2026, 12, 28, tzinfo=UTC), dt.datetime(2027, 1, 4, tzinfo=UTC))
    assert windows.bounds(windows.MONTH, moment)[0] == "2027-01"
    # another time zone is the same moment: windows are UTC
    assert windows.bounds(windows.DAY, moment.astimezone(dt.timezone(dt.timedelta(hours=5))))[0] == "2027-01-01"


def test_a_window_counts_the_runs_that_started_in_it() -> None:
    cfg = config("budget:\n  daily_usd: 1\n  weekly_usd: 5\n")
    ledger = ledger_of(
        "2026-12",
        run("a", "2026-12-01T10:00:00Z", 100),  # Tuesday: this week, not today
        run("b", "2026-12-03T23:59:59Z", 200),  # yesterday
        run("c", "2026-12-04T00:00:00Z", 400),  # today
        run("d", "2026-12-04T12:00:00Z", 800),  # today
    )
    now = dt.datetime(2026, 12, 4, 13, tzinfo=UTC)
    day, week, month = windows.current(cfg, ledger, now)
    assert (day.key, day.label, day.spent_micro_usd, day.reopens_at) == (
        "budget.daily_usd", "2026-12-04", 1200, dt.datetime(2026, 12, 5, tzinfo=UTC))
    assert (week.label, week.spent_micro_usd, week.reopens_at) == ("2026-W49", 1500, dt.datetime(2026, 12, 7, tzinfo=UTC))
    assert (month.key, month.spent_micro_usd) == ("budget.monthly_usd", 1500)
    assert [w.name for w in windows.current(Config(), ledger, now)] == ["month"]  # windows are optional


def test_the_week_a_month_starts_in_counts_the_closed_months_runs_of_that_week() -> None:
    cfg = config("budget:\n  weekly_usd: 1\n")
    november = ledger_of(
        "2026-11",
        run("old", "2026-11-29T23:00:00Z", 50_000),  # Sunday: the week before
        run("mon", "2026-11-30T08:00:00Z", 300_000),  # Monday of the week holding 1 December
    )
    december = ledger_module.rollover(november, "2026-12").with_run(run("dec", "2026-12-02T08:00:00Z", 200_000))
    assert [r.id for r in december.runs] == ["dec"]
    [week, _] = windows.current(cfg, december, dt.datetime(2026, 12, 3, tzinfo=UTC))
    assert week.spent_micro_usd == 500_000  # Monday's November run and December's, not the week before
    [next_week, _] = windows.current(cfg, december, dt.datetime(2026, 12, 8, tzinfo=UTC))
    assert next_week.spent_micro_usd == 0  # last month's runs belong to the first week only
    # as read from the file, and after a merge with a ledger that has not rolled over yet
    again = ledger_module.from_text(ledger_module.to_text(december), "t")
    assert windows.current(cfg, again, dt.datetime(2026, 12, 3, tzinfo=UTC))[0].spent_micro_usd == 500_000
    merged = ledger_module.merge(None, november.with_run(run("late", "2026-11-30T22:00:00Z", 1)), december)
    assert windows.current(cfg, merged, dt.datetime(2026, 12, 3, tzinfo=UTC))[0].spent_micro_usd == 500_001
    # the longest such week ends on the 7th, when last month's rows are still kept
    sunday_start = ledger_module.rollover(ledger_of("2027-07", run("j", "2027-07-26T08:00:00Z", 5)), "2027-08")
    assert windows.current(cfg, ledger_module.as_of(sunday_start, dt.datetime(2027, 8, 1, 23, tzinfo=UTC)),
                           dt.datetime(2027, 8, 1, 23, tzinfo=UTC))[0].spent_micro_usd == 5


def test_available_is_the_tightest_window_after_others_spend_and_reservations() -> None:
    cfg = config("budget:\n  monthly_usd: 10\n  daily_usd: 1\n  weekly_usd: 3\n")
    now = dt.datetime(2026, 12, 4, 13, tzinfo=UTC)
    ledger = ledger_of("2026-12", run("other", "2026-12-04T01:00:00Z", 600_000), run("me", "2026-12-04T12:00:00Z", 50_000))
    ledger = replace(ledger, reservations=(Reservation("third", "t", 100_000, "2026-12-04T13:30:00Z"),))
    assert windows.available(cfg, ledger, now, "me", 300_000) == 300_000  # $1 - $0.60 - $0.10 held
    with pytest.raises(windows.WindowStop) as caught:
        windows.available(cfg, ledger, now, "me", 300_001)
    assert caught.value.outcome == "budget_stop"
    assert caught.value.message == (
        "budget stop (budget.daily_usd): the next call may cost up to $0.300001 but only $0.300000 is left "
        "today (2026-12-04: $0.60 spent of $1.00); the window reopens at 2026-12-05T00:00:00Z"
    )
    # an expired reservation holds nothing back
    assert windows.available(cfg, ledger, now + dt.timedelta(hours=1), "me", 1) == 400_000


def test_the_run_cap_bounds_what_a_run_may_hold_and_stops_a_bigger_worst_case() -> None:
    cfg = config("budget:\n  run_usd: 0.25\n")
    now = dt.datetime(2026, 12, 4, tzinfo=UTC)
    assert windows.available(cfg, ledger_of("2026-12"), now, "me", 1) == 250_000
    windows.check_run_cap(cfg, 250_000)
    with pytest.raises(windows.WindowStop, match=r"^budget stop \(budget.run_usd\): this run may cost up to \$0.250001, more than the \$0.25"):
        windows.check_run_cap(cfg, 250_001)


def test_crossed_names_each_window_past_the_warning_once() -> None:
    cfg = config("budget:\n  daily_usd: 1\n  weekly_usd: 10\n  warn_at_percent: 50\n")
    now = dt.datetime(2026, 12, 4, tzinfo=UTC)
    ledger = ledger_of("2026-12", run("a", "2026-12-04T00:00:00Z", 499_999))
    assert windows.crossed(cfg, ledger, now) == []
    ledger = ledger.with_run(run("b", "2026-12-04T00:00:01Z", 1))
    assert [windows.warn_flag(w) for w in windows.crossed(cfg, ledger, now)] == ["day:2026-12-04"]
    assert windows.crossed(cfg, ledger.with_notified("warned", ["day:2026-12-04"]), now) == []


def test_runs_a_month_follows_the_tightest_window() -> None:
    assert windows.runs_a_month(Config(), 100_000, 30) == (150, "budget.monthly_usd")
    assert windows.runs_a_month(config("budget:\n  daily_usd: 0.25\n"), 100_000, 30) == (60, "budget.daily_usd")
    assert windows.runs_a_month(config("budget:\n  weekly_usd: 1\n"), 100_000, 28) == (40, "budget.weekly_usd")
    assert windows.runs_a_month(config("budget:\n  daily_usd: 1\n"), 100_000, 30) == (150, "budget.monthly_usd")


@pytest.mark.parametrize(("text", "message"), [
    ("budget:\n  daily_usd: 0\n", "cfg.yml: line 2: budget.daily_usd must be greater than zero (got 0)"),
    ("budget:\n  weekly_usd: lots\n", "cfg.yml: line 2: budget.weekly_usd must be an amount in US dollars, like 15.00"),
    ("budget:\n  run_usd: -1\n", "cfg.yml: line 2: budget.run_usd must be greater than zero (got -1)"),
    ("budget:\n  warn_at_percent: 0\n", "cfg.yml: line 2: budget.warn_at_percent must be a whole number from 1 to 100 (got 0)"),
    ("budget:\n  warn_at_percent: 80.5\n", "cfg.yml: line 2: budget.warn_at_percent must be a whole number from 1 to 100 (got 80.5)"),
])
def test_bad_window_settings_are_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(text)
    assert str(caught.value) == message


def test_windows_are_optional_and_null_turns_one_off() -> None:
    cfg = config("budget:\n  daily_usd: null\n  weekly_usd: 2.5\n")
    assert (cfg.daily_budget_micro_usd, cfg.weekly_budget_micro_usd, cfg.run_budget_micro_usd, cfg.warn_at_percent) == (
        None, 2_500_000, None, 80)


def test_status_shows_each_windows_spend_and_costs_follows_the_tightest(tmp_path) -> None:  # noqa: ANN001
    from tests.test_cli import cli, git_checkout

    repo = git_checkout(tmp_path / "repo")
    (repo / ".github").mkdir()
    (repo / ".github" / "ai-orchestration.yml").write_text(
        "budget:\n  monthly_usd: 15\n  daily_usd: 0.50\n  weekly_usd: 2\n  run_usd: 0.40\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "TASKS.md").write_text("- [ ] Add a FAQ\n")
    ledger = ledger_of("2026-12", run("a", "2026-12-01T10:00:00Z", 1_000_000), run("b", "2026-12-04T09:00:00Z", 300_000))
    (repo / "token_budget.json").write_text(ledger_module.to_text(ledger))
    now = dt.datetime(2026, 12, 4, 13, tzinfo=UTC)

    text = cli("status", repo=repo, now=now)
    assert text.code == 0, text.err
    assert "  today (2026-12-04): spent $0.30 of $0.50 ($0.20 left; budget.daily_usd), reopens 2026-12-05T00:00:00Z" in text.out
    assert "  this week (2026-W49): spent $1.30 of $2.00 ($0.70 left; budget.weekly_usd), reopens 2026-12-07T00:00:00Z" in text.out
    assert "  one run may spend at most $0.40 (budget.run_usd)" in text.out
    data = json.loads(cli("status", "--json", repo=repo, now=now).out)
    assert data["windows"][0] == {"window": "day", "key": "budget.daily_usd", "label": "2026-12-04", "cap_usd": 0.5,
                                  "spent_usd": 0.3, "remaining_usd": 0.2, "reopens_at": "2026-12-05T00:00:00Z"}
    assert [w["window"] for w in data["windows"]] == ["day", "week", "month"]
    assert (data["run_cap_usd"], data["warn_at_percent"]) == (0.4, 80)

    costs = cli("costs", repo=repo, now=now).out
    assert costs.startswith("Cost of one run (budget $15.00 a month, $0.50 a day, $2.00 a week, $0.40 a run)")
    assert "(budget.weekly_usd allows the fewest)" in costs  # $2 a week is less than $0.50 a day
    assert "every run stops before its first call" not in costs
    typical = round(float(next(line for line in costs.splitlines() if line.strip().startswith("total")).split()[1][1:]) * 1e6)
    runs = int(costs.split("runs a month within the budget: about ")[1].split(" ")[0])
    assert runs == 2_000_000 // typical * 31 // 7  # a week's share of December, not the month's $15
    suggested = int(costs.split("cron suggestion: '")[1].split("(")[1].split(" runs")[0].replace(",", ""))
    assert 0 < suggested <= runs


def test_a_weeks_warning_is_not_repeated_when_the_month_changes_within_the_week() -> None:
    from automation.reporting import alerts

    cfg = config("budget:\n  weekly_usd: 1\n")
    record = run("mon", "2026-11-30T08:00:00Z", 900_000)
    november = ledger_of("2026-11", record)
    november, embeds = alerts.after_run(november, cfg, record, "pr_opened", None, None,
                                        dt.datetime(2026, 11, 30, 8, tzinfo=UTC), "o/r", None)
    assert [e["title"] for e in embeds] == ["⚠️ 80% of the week's budget spent"]
    assert november.notified["warned"] == ["week:2026-W49"]

    december = ledger_module.rollover(november, "2026-12")
    later = run("dec", "2026-12-02T08:00:00Z", 50_000)
    december = december.with_run(later)
    december, embeds = alerts.after_run(december, cfg, later, "failed:analysis", None, None,
                                        dt.datetime(2026, 12, 2, 8, tzinfo=UTC), "o/r", None)
    assert [e["title"] for e in embeds if "80%" in e["title"]] == []
    # the next week: the flag of the closed week is dropped, and a new week starts unwarned
    december, _ = alerts.after_run(december, cfg, later, "failed:analysis", None, None,
                                   dt.datetime(2026, 12, 8, tzinfo=UTC), "o/r", None)
    assert december.notified["warned"] == []


def test_simulate_until_goes_on_past_a_days_stop(tmp_path) -> None:  # noqa: ANN001
    from tests.test_cli import cli, git_checkout

    repo = git_checkout(tmp_path / "repo")
    (repo / ".github").mkdir()
    (repo / ".github" / "ai-orchestration.yml").write_text("budget:\n  daily_usd: 0.30\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "TASKS.md").write_text("- [ ] Add a FAQ\n")

    result = cli("simulate", "--until", "1", repo=repo, now=dt.datetime(2026, 12, 1, tzinfo=UTC))

    assert result.code == 0, result.err
    days = {line.split("(")[1][:10] for line in result.out.splitlines() if line.startswith("run ")}
    assert len(days) >= 3  # $1 at $0.30 a day takes four days
    assert result.out.count("🛑 Budget stop: the day is spent") == len(days) - 1
    assert "budget stop (budget.daily_usd)" in result.out
