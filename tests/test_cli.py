"""`status`, `costs` and `simulate` as a user meets them: what is printed, and the exit code.

Most tests drive ``automation.cli.main`` in-process with the environment, the clock and the
output streams passed in; a few run ``python -m automation`` in a subprocess, which is what a
user (and the workflow) really runs. Every repository is a temporary folder with a
hand-written config and ledger, so the expected figures can be worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automation.cli import main
from automation.core.config import Config
from automation.core.prices import PriceTable, Usage, format_usd, usd_to_micro
from automation.money import budget
from automation.repo import localise

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
TENTH_DAY_OVER = dt.datetime(2026, 11, 11, 0, 0, tzinfo=UTC)  # 10 of November's 30 days elapsed
MONTH_START = dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
CONFIG = ".github/ai-orchestration.yml"
SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-FAKEanthropicSECRET0123456789",
    "OPENAI_API_KEY": "sk-proj-FAKEopenaiSECRET0123456789",
    "GITHUB_TOKEN": "ghs_FAKEgithubSECRET0123456789",
    "GH_TOKEN": "gho_FAKEghSECRET0123456789",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123456789012/FAKEwebhookTOKENsecret0123",
}
WEBHOOK_TOKEN = "FAKEwebhookTOKENsecret0123"


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def cli(*argv: str, repo: Path | None = None, env: dict[str, str] | None = None, now: dt.datetime = NOW) -> Result:
    """``python -m automation ARGV --repo REPO`` in-process; never a traceback, whatever happens."""
    out, err = io.StringIO(), io.StringIO()
    args = [*argv, *(["--repo", str(repo)] if repo is not None else [])]
    code = main(args, env=env or {}, now=now, out=out, err=err)
    result = Result(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in result.err and "Traceback" not in result.out
    return result


def assert_one_error_line(result: Result, code: int = 2) -> str:
    """Exit ``code``, nothing on stdout, exactly one ``error: …`` line on stderr; returns it."""
    assert result.code == code, result
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: ")
    return result.err_lines[0]


def call(step: str, model: str, cost: int, latency: int = 1000, outcome: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": step,
        "model": model,
        "tokens": {"input": 20_000, "output": 2_000},
        "cost_micro_usd": cost,
        "latency_ms": latency,
    }
    if outcome:
        row["outcome"] = outcome
    return row


def run(
    run_id: str, started_at: str, calls: list[dict[str, Any]], pr: bool = True, outcome: str = "pr_opened"
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": run_id,
        "started_at": started_at,
        "task": f"task {run_id}",
        "outcome": outcome,
        "calls": calls,
    }
    if pr:
        row["pr_url"] = f"https://github.com/o/r/pull/{run_id}"
    return row


def write_ledger(repo: Path, month: str, runs: list[dict[str, Any]], **extra: Any) -> Path:
    document = {
        "schema_version": 1,
        "month": month,
        "budget_micro_usd": 15_000_000,
        "runs": runs,
        "history": [],
        "milestones_reached_micro_usd": [],
        "notified": {},
        "health": {},
        **extra,
    }
    path = repo / "token_budget.json"
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def write_config(repo: Path, text: str) -> Path:
    path = repo / CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def spend_ledger(repo: Path, month: str, dollars_by_day: dict[int, int]) -> Path:
    """One run per entry (day of the month -> micro-dollars), split between the two default models."""
    runs = []
    for day, micro in sorted(dollars_by_day.items()):
        runs.append(
            run(
                f"r{day}",
                f"{month}-{day:02d}T03:17:00Z",
                [call("analysis", "claude-sonnet-5-5", micro - micro // 10), call("code", "gpt-4o-mini", micro // 10)],
            )
        )
    return write_ledger(repo, month, runs)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and mtime: proves a command wrote nothing."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def git_checkout(folder: Path) -> Path:
    """An empty git checkout at ``folder``: what ``--repo`` must point at."""
    subprocess.run(["git", "init", "--quiet", str(folder)], check=True)
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_checkout(tmp_path / "repo")


# --- status -----------------------------------------------------------------------------------


@pytest.fixture
def five_dollar_repo(repo: Path) -> Path:
    """$5.00 spent by the end of 10 November: three runs, one with a failed call and a fallback,
    an open circuit breaker and a parked task."""
    write_ledger(
        repo,
        "2026-11",
        [
            run(
                "1",
                "2026-11-02T03:17:00Z",
                [call("analysis", "claude-sonnet-5-5", 1_500_000, 12_000), call("code", "gpt-4o-mini", 250_000, 3_000)],
            ),
            run(
                "2",
                "2026-11-05T03:17:00Z",
                [call("analysis", "claude-sonnet-5-5", 2_000_000, 14_000), call("code", "gpt-4o-mini", 250_000, 5_000)],
            ),
            run(
                "3",
                "2026-11-09T03:17:00Z",
                [
                    call("analysis", "claude-sonnet-5-5", 0, 30_000, outcome="overloaded"),
                    call("analysis", "claude-haiku-4-5", 1_000_000, 8_000),
                ],
                pr=False,
                outcome="failed:edits",
            ),
        ],
        milestones_reached_micro_usd=[5_000_000],
        health={
            "breakers": {"anthropic": {"consecutive_failures": 3, "opened_at": "2026-11-10T22:00:00Z"}},
            "parked": {"0123456789abcdef": {"task": "Add a FAQ", "failures": 3, "parked": True}},
        },
    )
    return repo


def test_status_json_reports_the_month_from_the_ledger(five_dollar_repo: Path) -> None:
    result = cli("status", "--json", repo=five_dollar_repo, now=TENTH_DAY_OVER)
    assert (result.code, result.err) == (0, "")
    data = json.loads(result.out)
    assert {
        key: data[key]
        for key in (
            "month",
            "budget_usd",
            "spent_usd",
            "remaining_usd",
            "executions",
            "prs_opened",
            "milestones_reached",
            "projected_month_end_usd",
            "budget_runs_out_on",
            "retiring_models",
        )
    } == {
        "month": "2026-11",
        "budget_usd": 15.0,
        "spent_usd": 5.0,
        "remaining_usd": 10.0,
        "executions": 3,
        "prs_opened": 2,
        "milestones_reached": [5.0],
        "projected_month_end_usd": 15.0,  # $5 in 10 of 30 days
        "budget_runs_out_on": None,  # exactly on budget is not over it
        "retiring_models": [],
    }
    assert data["models"]["claude-sonnet-5-5"] == {
        "calls": 3,
        "spent_usd": 3.5,
        "input_tokens": 60_000,
        "output_tokens": 6_000,
        "reasoning_tokens": 0,
    }
    assert data["models"]["gpt-4o-mini"]["spent_usd"] == 0.5
    health = data["health"]
    assert health["breakers"] == {"anthropic": "open", "openai": "closed"}
    assert health["parked_tasks"] == ["Add a FAQ"]
    sonnet = next(m for m in health["models"] if m["model"] == "claude-sonnet-5-5")
    assert sonnet["provider"] == "anthropic"
    assert sonnet["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert (sonnet["p50_ms"], sonnet["p95_ms"]) == (12_000, 14_000)  # failed calls' latency left out
    assert sonnet["outcomes"] == {"ok": 2, "overloaded": 1}


COST_TRACKING = ROOT / "docs" / "COST-TRACKING.md"


def guide_status_sample() -> list[str]:
    """The output lines under ``$ python -m automation status`` in docs/COST-TRACKING.md."""
    text = COST_TRACKING.read_text(encoding="utf-8")
    block = text.split("```\n$ python -m automation status\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def test_status_text_is_what_the_guide_shows(five_dollar_repo: Path) -> None:
    result = cli("status", repo=five_dollar_repo, now=TENTH_DAY_OVER)
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert lines == guide_status_sample(), "docs/COST-TRACKING.md's sample must be the real output of this ledger"
    assert lines[0] == "Month 2026-11: spent $5.00 of $15.00 ($10.00 left)"
    assert lines[1] == "  ▰▰▰▱▱▱▱▱▱▱ 33% of $15.00"
    assert "  3 runs, 2 pull requests" in lines
    assert "  pace: $15.00 projected by month end; the budget lasts the month" in lines
    assert "  milestones reached: $5.00 (of $5.00, $10.00, $15.00)" in lines
    assert any(line.startswith("  anthropic/claude-sonnet-5-5: 3 calls, 67% ok, p50 12.0s p95 14.0s") for line in lines)
    assert any(line.startswith("  anthropic/claude-haiku-4-5: 1 call, 100% ok") for line in lines)
    assert "  circuit breaker for anthropic: open" in lines
    assert "  parked task (edit its text to retry): Add a FAQ" in lines
    assert "warning" not in result.out  # the default models do not retire within 30 days of mid-November


def test_money_has_one_format_everywhere_even_past_a_thousand_dollars(repo: Path) -> None:
    write_config(repo, "budget:\n  monthly_usd: 1000\n")
    status = cli("status", repo=repo).out
    assert "spent $0.00 of $1,000.00 ($1,000.00 left)" in status
    assert "(of $333.33, $666.67, $1,000.00)" in status
    costs = cli("costs", repo=repo).out
    assert "budget $1,000.00 a month" in costs and "$1,000.00 milestone" in costs
    for text in (status, costs):
        assert not re.search(r"\$\d{4}", text), "every amount has thousands separators"
        assert not re.search(r"\$\d+(?![.,\d])", text), "every amount has its cents"


def test_status_with_no_ledger_and_no_config_is_an_empty_month(repo: Path) -> None:
    result = cli("status", "--json", repo=repo)
    assert result.code == 0
    data = json.loads(result.out)
    assert (data["month"], data["spent_usd"], data["remaining_usd"], data["executions"]) == ("2026-11", 0.0, 15.0, 0)
    assert (data["projected_month_end_usd"], data["budget_runs_out_on"]) == (0.0, None)
    assert [path.name for path in repo.iterdir()] == [".git"]  # status creates nothing


def test_overspending_pace_gives_the_day_the_budget_runs_out(repo: Path) -> None:
    spend_ledger(repo, "2026-11", {3: 2_000_000, 6: 2_500_000, 9: 1_500_000})  # $6 in 10 days: $0.60 a day
    data = json.loads(cli("status", "--json", repo=repo, now=TENTH_DAY_OVER).out)
    assert data["projected_month_end_usd"] == 18.0
    assert data["budget_runs_out_on"] == "2026-11-26"  # $9 left at $0.60 a day: 15 more days
    text = cli("status", repo=repo, now=TENTH_DAY_OVER).out
    assert "  pace: $18.00 projected by month end; the budget runs out on 2026-11-26" in text.splitlines()


def test_pace_follows_the_clock(repo: Path) -> None:
    spend_ledger(repo, "2026-11", {2: 3_000_000})
    day_20 = dt.datetime(2026, 11, 21, tzinfo=UTC)  # $3 in 20 days: $4.50 by the 30th
    data = json.loads(cli("status", "--json", repo=repo, now=day_20).out)
    assert (data["projected_month_end_usd"], data["budget_runs_out_on"]) == (4.5, None)


def test_status_of_a_ledger_from_last_month_shows_the_new_month_and_history_without_writing(repo: Path) -> None:
    path = spend_ledger(repo, "2026-10", {5: 4_000_000, 20: 3_250_000})
    before = snapshot(repo)
    data = json.loads(cli("status", "--json", repo=repo).out)
    assert (data["month"], data["spent_usd"], data["executions"], data["milestones_reached"]) == ("2026-11", 0.0, 0, [])
    assert data["history"] == [{"month": "2026-10", "spent_usd": 7.25, "executions": 2, "prs_opened": 2}]
    lines = cli("status", repo=repo).out.splitlines()
    # under a heading: after "parked task: …" a bare month line read as part of the health block
    assert lines[-2:] == ["  past months:", "    2026-10: $7.25, 2 runs, 2 pull requests"]
    assert snapshot(repo) == before and path.exists()


def test_status_needs_no_keys_and_the_budget_comes_from_the_config(repo: Path) -> None:
    write_config(repo, "budget:\n  monthly_usd: 8\n  milestones_usd: [4, 8]\n")
    spend_ledger(repo, "2026-11", {2: 2_000_000})
    result = cli("status", repo=repo, env={})
    assert result.code == 0
    assert result.out.splitlines()[0] == "Month 2026-11: spent $2.00 of $8.00 ($6.00 left)"
    assert "  milestones reached: none yet (of $4.00, $8.00)" in result.out.splitlines()
    assert "  1 run, 1 pull request" in result.out.splitlines()
    assert any(line.startswith("  openai/gpt-4o-mini: 1 call, 100% ok") for line in result.out.splitlines())


# --- retiring models --------------------------------------------------------------------------


def test_a_model_retiring_within_30_days_is_named_with_its_date_and_successor(repo: Path) -> None:
    config = write_config(repo, "models:\n  analysis: claude-sonnet-4-5\n")
    warning = (
        "  warning: models.analysis = claude-sonnet-4-5 retires on 2026-11-30 (15 days); from then on runs use "
        f"claude-sonnet-5-5 instead (set models.analysis: claude-sonnet-5-5 in {config} to make it explicit)"
    )
    text = cli("status", repo=repo)
    assert text.code == 0
    assert warning in text.out.splitlines()
    data = json.loads(cli("status", "--json", repo=repo).out)
    assert data["retiring_models"] == [
        {
            "key": "models.analysis",
            "model": "claude-sonnet-4-5",
            "retires_on": "2026-11-30",
            "successor": "claude-sonnet-5-5",
            "days_left": 15,
        }
    ]
    costs = cli("costs", repo=repo)
    assert warning in costs.out.splitlines()


@pytest.mark.parametrize("argv", [("status",), ("status", "--json"), ("costs",), ("simulate", "--runs", "3")])
def test_after_its_date_a_retired_model_is_replaced_and_every_command_keeps_working(repo: Path, argv: tuple[str, ...]) -> None:
    config = write_config(repo, "models:\n  analysis: claude-sonnet-4-5\n")
    result = cli(*argv, repo=repo, now=dt.datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    assert (result.code, result.err) == (0, "")
    note = (
        "note: models.analysis: claude-sonnet-4-5 retired on 2026-11-30; runs use claude-sonnet-5-5 instead "
        f"(set models.analysis: claude-sonnet-5-5 in {config} to make it explicit)"
    )
    if argv == ("status", "--json"):
        data = json.loads(result.out)
        assert note in data["warnings"]
        assert data["retired_models"] == [
            {"key": "models.analysis", "model": "claude-sonnet-4-5", "retired_on": "2026-11-30", "used_instead": "claude-sonnet-5-5"}
        ]
    elif argv[0] == "simulate":
        assert "with claude-sonnet-5-5 + " in result.out
    else:
        assert f"  {note}" in result.out.splitlines()


@pytest.mark.parametrize("argv", [("status",), ("costs",)])
def test_without_a_config_file_the_openai_shutdown_only_warns(repo: Path, argv: tuple[str, ...]) -> None:
    result = cli(*argv, repo=repo, now=dt.datetime(2027, 1, 20, 12, 0, tzinfo=UTC))
    assert (result.code, result.err) == (0, "")
    assert "  note: models.code: gpt-4o-mini retired on 2027-01-14; runs use gpt-6-luna instead" in result.out.splitlines()
    assert ".github/ai-orchestration.yml" not in result.out  # never told to fix a file it does not have


def test_on_retirement_stop_still_lets_status_and_costs_work(repo: Path) -> None:
    write_config(repo, "models:\n  on_retirement: stop\n")
    for argv in (("status",), ("costs",)):
        result = cli(*argv, repo=repo, now=dt.datetime(2027, 1, 20, 12, 0, tzinfo=UTC))
        assert result.code == 0, result.err
        assert "runs stop until models.code is changed (models.on_retirement is 'stop'" in result.out


# --- costs ------------------------------------------------------------------------------------


def typical_micro_usd(model: str, usage: Any) -> int:
    """From the price table directly (USD per million tokens = micro-dollars per token)."""
    price = PriceTable.builtin().find(model)
    assert price is not None
    return math.ceil(usage.input_tokens * price.input + usage.output_tokens * price.output)


def cost_row(out: str, label: str) -> list[str]:
    row = next(line for line in out.splitlines() if line.split()[:1] == [label])
    return row.split()


def assumed(out: str) -> tuple[int, int, int, int]:
    """(analysis in, analysis out, code in, code out) tokens from the ``assumed per run`` line."""
    found = re.search(
        r"assumed per run: analysis ([\d,]+) in / ([\d,]+) out tokens .* code ([\d,]+) in / ([\d,]+) out", out
    )
    assert found is not None, out
    return tuple(int(group.replace(",", "")) for group in found.groups())  # type: ignore[return-value]


def test_costs_of_the_default_models(repo: Path) -> None:
    result = cli("costs", repo=repo)
    assert (result.code, result.err) == (0, "")
    # an empty repository, no task to size the context on: context.max_tokens (40,000) is assumed
    analysis_in, analysis_out, code_in, code_out = assumed(result.out)
    assert (analysis_in, analysis_out) == (40_000 + 2_000, 2_000 + 3_000)  # + the prompt; the plan + typical thinking
    assert (code_in, code_out) == (20_000 + 2_000 + 2_000, 6_000)  # half the context, the plan, the prompt
    assert "context.max_tokens, as no unticked task is there to size it on" in result.out
    analysis = typical_micro_usd("claude-sonnet-5-5", Usage(input_tokens=analysis_in, output_tokens=analysis_out))
    code = typical_micro_usd("gpt-4o-mini", Usage(input_tokens=code_in, output_tokens=code_out))
    config = Config()
    # the one worst case, what a run reserves: a full context, the code call and its one repair at the prompt bound,
    # and the localisation call at its bound (an empty repository makes none: nothing typical)
    located = config.price("gpt-4o-mini").worst_case_micro_usd(localise.INPUT_BOUND_TOKENS, localise.MAX_TOKENS)
    worst = (config.price("claude-sonnet-5-5").worst_case_micro_usd(budget.padded_anthropic_count(40_000 + 2_000), 16_000)
             + 2 * config.price("gpt-4o-mini").worst_case_micro_usd(60_000, 16_384) + located)

    lines = result.out.splitlines()
    assert lines[0] == "Cost of one run (budget $15.00 a month)"
    assert cost_row(result.out, "analysis")[:3] == ["analysis", "claude-sonnet-5-5", format_usd(analysis, 4)]
    assert cost_row(result.out, "code")[:3] == ["code", "gpt-4o-mini", format_usd(code, 4)]
    assert cost_row(result.out, "localise") == ["localise", "gpt-4o-mini", "$0.0000", format_usd(located, 4)]
    assert cost_row(result.out, "total") == ["total", format_usd(analysis + code, 4), format_usd(worst, 4)]
    runs = 15_000_000 // (analysis + code)
    assert f"  runs a month within the budget: about {runs} typical, at least {15_000_000 // worst} even at worst case" in lines
    assert f"  pull requests a month: at most one a run, so up to {runs}" in lines
    assert [line for line in lines if "milestone" in line] == [
        f"  {format_usd(dollars * 1_000_000)} milestone: after about {-(-dollars * 1_000_000 // (analysis + code))} runs (day {day} at that pace)"
        for dollars, day in ((5, 10), (10, 20))
    ] + [
        f"  $15.00 milestone: at the full budget, reached only if the month's last run spends exactly what is left; runs may "
        f"stop once less than {format_usd(worst, 4)} (a run's worst case) is left, so a month with enough runs ends between "
        f"{format_usd(15_000_000 - worst)} and $15.00"
    ]


def cron_runs_in(schedule: str, days: int) -> int:
    """How many times a '17 H * * *' or '17 3 */D * *' schedule fires in a month of ``days`` days."""
    _, hours, day_of_month, _, _ = schedule.split()
    if day_of_month != "*":
        return len(range(1, days + 1, int(day_of_month.removeprefix("*/"))))
    per_day = 24 if hours == "*" else 24 // int(hours[2:]) if hours.startswith("*/") else len(hours.split(","))
    return per_day * days


@pytest.mark.parametrize("budget_usd", ["15", "5", "0.5", "0.2"])
def test_the_suggested_cron_never_spends_more_than_the_budget(repo: Path, budget_usd: str) -> None:
    write_config(repo, f"budget:\n  monthly_usd: {budget_usd}\n")
    result = cli("costs", repo=repo)
    assert result.code == 0, result.err
    typical = usd_to_micro(cost_row(result.out, "total")[1].removeprefix("$"))
    found = re.search(r"cron suggestion: '([^']+)' \(([\d,]+) runs in this month, about \$([\d.,]+)", result.out)
    assert found is not None, result.out
    schedule, runs = found.group(1), int(found.group(2).replace(",", ""))
    assert cron_runs_in(schedule, 30) == runs  # November has 30 days
    assert runs * typical <= usd_to_micro(budget_usd) + runs * 50  # within the budget (rounding of the shown cost)
    affordable = usd_to_micro(budget_usd) // typical
    assert runs >= affordable * 0.6  # and not needlessly sparse


def test_no_schedule_is_suggested_when_the_budget_pays_for_no_run(repo: Path) -> None:
    write_config(repo, "budget:\n  monthly_usd: 0.05\n")
    result = cli("costs", repo=repo)
    assert "no schedule to suggest: the budget does not pay for one typical run" in result.out
    assert "cron suggestion" not in result.out


def test_a_smaller_budget_changes_the_runs_interval_and_milestones_not_the_run_cost(repo: Path) -> None:
    full = cli("costs", repo=repo)
    write_config(repo, "budget:\n  monthly_usd: 5\n  milestones_usd: [1, 2.5, 5]\n")
    result = cli("costs", repo=repo)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "Cost of one run (budget $5.00 a month)"
    assert cost_row(result.out, "total") == cost_row(full.out, "total")
    typical = usd_to_micro(cost_row(result.out, "total")[1].removeprefix("$"))
    assert f"about {5_000_000 // typical} typical" in result.out
    assert [line.split(":")[0] for line in lines if "milestone" in line] == ["  $1.00 milestone", "  $2.50 milestone", "  $5.00 milestone"]


def test_lowering_only_the_budget_is_accepted(repo: Path) -> None:
    write_config(repo, "budget:\n  monthly_usd: 5\n")
    result = cli("costs", repo=repo)
    assert result.code == 0, result.err
    assert "runs a month within the budget: about" in result.out


def test_costs_for_other_models_follow_the_price_table(repo: Path) -> None:
    write_config(repo, "models:\n  analysis: claude-haiku-4-5\n  code: gpt-4.1-mini\n  code_max_tokens: 8000\n")
    result = cli("costs", repo=repo)
    analysis_in, analysis_out, code_in, code_out = assumed(result.out)
    typical = (typical_micro_usd("claude-haiku-4-5", Usage(input_tokens=analysis_in, output_tokens=analysis_out))
               + typical_micro_usd("gpt-4.1-mini", Usage(input_tokens=code_in, output_tokens=code_out)))
    assert cost_row(result.out, "total")[1] == format_usd(typical, 4)
    assert cost_row(result.out, "code")[1] == "gpt-4.1-mini"
    assert "max_tokens 16,000, the code call and its one repair each at the 60,000-token prompt bound and max_tokens 8,000" in result.out


def test_costs_simulate_and_the_dry_run_share_one_model_sized_on_the_repository(repo: Path) -> None:
    # a repository with real content: the estimate must grow with it, and all three must agree
    (repo / "docs").mkdir()
    (repo / "docs" / "TASKS.md").write_text("# Tasks\n- [ ] Add a greeting module\n")
    (repo / "app").mkdir()
    for index in range(40):
        (repo / "app" / f"greeting_{index}.py").write_text(f"def greet_{index}(name):\n" + "    # hello\n" * 60)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)  # the context is made of tracked files
    bare = git_checkout(repo.parent / "bare")  # the same task, no files to send
    (bare / "docs").mkdir(parents=True)
    (bare / "docs" / "TASKS.md").write_text("# Tasks\n- [ ] Add a greeting module\n")

    costs = cli("costs", repo=repo)
    simulated = cli("simulate", "--runs", "1", repo=repo, now=MONTH_START)
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "--dry-run", "--repo", str(repo)], env={}, now=NOW, out=out, err=err) == 0, err.getvalue()
    dry = out.getvalue()

    line = next(text for text in costs.out.splitlines() if "assumed per run" in text).strip().split("; worst case")[0]
    assert "for 'Add a greeting module'" in line
    assert line in simulated.out and line in dry  # the same figures, the same words
    assert assumed(costs.out)[0] > assumed(cli("costs", repo=bare).out)[0] + 5_000  # sized on the files
    typical = cost_row(costs.out, "total")[1]
    assert f"Cost of this run: about {typical}, at most {cost_row(costs.out, 'total')[2]}" in dry


# --- simulate ---------------------------------------------------------------------------------


# The analysis call's worst case at the defaults: a padded typical prompt and 16,000 output tokens.
ANALYSIS_WORST = Config().price("claude-sonnet-5-5").worst_case_micro_usd(budget.padded_anthropic_count(42_000), 16_000) / 1e6


def simulated_alerts(out: str) -> tuple[Counter[tuple[str, str]], list[tuple[str, float]]]:
    """(month, alert title) counts, and (month, month-to-date dollars) after each printed run."""
    alerts: Counter[tuple[str, str]] = Counter()
    spend: list[tuple[str, float]] = []
    month = None
    for line in out.splitlines():
        found = re.match(r"run \d+ \((\d{4}-\d{2})-\d{2} [\d:]+\): .*; month \$([\d.,]+) of", line)
        if found:
            month = found.group(1)
            spend.append((month, float(found.group(2).replace(",", ""))))
        elif line.startswith("  [Discord] "):
            assert month is not None
            alerts[(month, line.removeprefix("  [Discord] "))] += 1
    return alerts, spend


def test_simulate_marks_each_month_boundary(repo: Path) -> None:
    # every 3 hours from 30 November 12:00: runs 1-4 in November, 5 onwards in December
    lines = cli("simulate", "--runs", "6", repo=repo, now=dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)).out.splitlines()
    marker = "--- 2026-12 begins: the budget resets to $15.00 ---"
    assert lines.count(marker) == 1
    at = lines.index(marker)
    assert lines[at - 1].startswith("run 4 (2026-11-30 21:00)") and lines[at + 1].startswith("run 5 (2026-12-01 00:00)")


def test_counts_read_in_the_right_number() -> None:
    from automation.core.wording import plural

    assert [plural(n, "run") for n in (0, 1, 2, 1000)] == ["0 runs", "1 run", "2 runs", "1,000 runs"]
    assert plural(1, "more run") == "1 more run" and plural(3, "entry", "entries") == "3 entries"


def test_simulate_posts_each_milestone_and_the_budget_alert_once_a_month(repo: Path) -> None:
    # 400 runs 3 hours apart from 1 November: all of November (the budget stops it before the end) and most of December.
    result = cli("simulate", "--runs", "400", repo=repo, now=MONTH_START)
    assert (result.code, result.err) == (0, "")
    alerts, spend = simulated_alerts(result.out)
    assert alerts == Counter(
        {
            ("2026-11", "💰 Milestone: $5 reached"): 1,
            ("2026-11", "💰 Milestone: $10 reached"): 1,
            ("2026-11", "⚠️ 80% of the month's budget spent"): 1,  # budget.warn_at_percent, once a month
            # $15 is never reached (spend stops short of the cap): the budget-exhausted alert says so instead
            ("2026-11", "🛑 Budget exhausted"): 1,
            ("2026-12", "📊 Monthly recap: 2026-11"): 1,
            ("2026-12", "💰 Milestone: $5 reached"): 1,
            ("2026-12", "💰 Milestone: $10 reached"): 1,
            ("2026-12", "⚠️ 80% of the month's budget spent"): 1,
            ("2026-12", "🛑 Budget exhausted"): 1,
            # from 15 December the default code model is within 30 days of the OpenAI shutdown (its default
            # fallback too, but nobody chose it: it is replaced without a word)
            ("2026-12", "⏳ Model retiring: gpt-4o-mini"): 1,
        }
    )
    assert result.out.count("Milestone") == 4 and result.out.count("Budget exhausted") == 2
    for month in ("2026-11", "2026-12"):
        # the cap is never reached; the last run's worst case (thinking included) is what may be left
        assert 15.0 - ANALYSIS_WORST - 0.05 < max(dollars for seen, dollars in spend if seen == month) < 15.0
    assert re.search(
        r"^\d+ more runs stopped by the budget \(no alert: it was already sent this month\)$", result.out, re.MULTILINE
    )
    assert result.out.splitlines()[-1].startswith("End: ") and "in 2026-12" in result.out.splitlines()[-1]


def test_simulate_stops_at_the_budget(repo: Path) -> None:
    result = cli("simulate", "--runs", "240", repo=repo, now=MONTH_START)  # exactly November, 3 hours apart
    assert result.code == 0
    lines = result.out.splitlines()
    stopped = [line for line in lines if "stopped by the budget" in line]
    assert stopped and all(line.startswith("run ") or " more runs stopped" in line for line in stopped)
    first_stop = next(
        index for index, line in enumerate(lines) if line.startswith("run ") and "stopped by the budget" in line
    )
    assert "Budget exhausted" in lines[first_stop + 1] and "Milestone: $15" not in result.out
    end = re.fullmatch(r"End: (\d+) runs in 2026-11, \$([\d.]+) of \$15\.00 spent\.", lines[-1])
    assert end is not None
    runs, spent = int(end.group(1)), float(end.group(2))
    costs = cli("costs", repo=repo).out  # the same model of a run
    typical, worst = (float(cell.removeprefix("$")) for cell in cost_row(costs, "total")[1:])
    assert 0.9 * 15.0 / typical <= runs <= 1.1 * 15.0 / typical
    # stopped only when the next call's worst case (its input varies by up to 25%) no longer fits
    assert 15.0 - 1.25 * worst <= spent < 15.0


def test_a_run_stopped_between_its_two_calls_is_charged_for_the_first_like_run_does(repo: Path) -> None:
    # gpt-4o's worst case (~$0.22) is far above Sonnet's at 4,096 tokens (~$0.08): near the cap, runs stop after the analysis call.
    write_config(repo, "models:\n  code: gpt-4o\n  analysis_max_tokens: 4096\n")
    result = cli("simulate", "--runs", "120", repo=repo, now=MONTH_START)
    assert result.code == 0
    assert "stopped by the budget after the analysis call ($0." in result.out
    end = re.fullmatch(r"End: \d+ runs in 2026-11, \$([\d.]+) of \$15\.00 spent\.", result.out.splitlines()[-1])
    assert end is not None
    # the analysis call was made until it no longer fit, as `run` would: at most its worst case is left
    assert 15.0 - float(end.group(1)) <= 0.0835


def test_simulate_until_stops_right_after_that_spend(repo: Path) -> None:
    result = cli("simulate", "--until", "5", repo=repo, now=MONTH_START)
    assert (result.code, result.err) == (0, "")
    alerts, spend = simulated_alerts(result.out)
    assert spend[-1][1] >= 5.0 > spend[-2][1]
    assert alerts == Counter({("2026-11", "💰 Milestone: $5 reached"): 1})
    assert result.out.splitlines()[-1] == f"End: {len(spend)} runs in 2026-11, ${spend[-1][1]:.2f} of $15.00 spent."


def test_simulate_until_more_than_the_budget_stops_at_the_budget(repo: Path) -> None:
    result = cli("simulate", "--until", "20", repo=repo, now=MONTH_START)
    assert result.code == 0
    assert result.out.count("Budget exhausted") == 1
    end = re.fullmatch(r"End: \d+ runs in 2026-11, \$([\d.]+) of \$15\.00 spent\.", result.out.splitlines()[-1])
    assert end is not None and 15.0 - ANALYSIS_WORST <= float(end.group(1)) <= 15.0


def test_simulate_never_writes_the_real_ledger(repo: Path) -> None:
    write_config(repo, "budget:\n  monthly_usd: 15\n")
    spend_ledger(repo, "2026-11", {1: 1_000_000})
    before = snapshot(repo)
    for argv in (("--runs", "400"), ("--until", "14"), ("--runs", "1")):
        result = cli("simulate", *argv, repo=repo, now=MONTH_START + dt.timedelta(hours=4))
        assert result.code == 0
        assert result.out.startswith("Simulating on a scratch copy of the ledger (2026-11: $1.00 of $15.00 spent)")
        assert snapshot(repo) == before  # same files, same bytes, same mtimes, no temporary file left


def test_simulate_from_a_fresh_repository_creates_no_ledger(repo: Path) -> None:
    assert cli("simulate", "--runs", "300", repo=repo, now=MONTH_START).code == 0
    assert [path.name for path in repo.iterdir()] == [".git"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("simulate", "--runs", "0"), "--runs"),
        (("simulate", "--runs", "-1"), "--runs"),
        (("simulate", "--runs", "many"), "--runs"),
        (("simulate", "--runs", "1000000000"), "--runs must be a whole number from 1 to 30,000 (got 1,000,000,000)"),
        (("simulate", "--until", "abc"), "--until"),
        (("simulate", "--until", "0"), "--until"),
        (("simulate", "--until", "-5"), "--until"),
        (("simulate", "--until", "nan"), "--until"),
        (("simulate",), "--runs --until"),
        (("simulate", "--runs", "3", "--until", "2"), "--until"),
        (("bogus",), "bogus"),
        ((), "command"),
        (("status", "--bogus"), "--bogus"),
    ],
)
def test_bad_usage_is_exit_2_with_one_line(repo: Path, argv: tuple[str, ...], named: str) -> None:
    result = cli(*argv, repo=repo) if argv else cli(env={})
    assert named in assert_one_error_line(result)


# --- bad config and ledger --------------------------------------------------------------------

COMMANDS = [("status",), ("status", "--json"), ("costs",), ("simulate", "--runs", "5"), ("simulate", "--until", "1")]


@pytest.mark.parametrize("argv", COMMANDS)
def test_malformed_yaml_names_the_file_and_the_line(repo: Path, argv: tuple[str, ...]) -> None:
    config = write_config(repo, "budget:\n  monthly_usd: 5\n  milestones_usd: [1, 2\nmodels: {}\n")
    line = assert_one_error_line(cli(*argv, repo=repo))
    assert line.startswith(f"error: {config}: line 4: YAML syntax error")


@pytest.mark.parametrize("argv", COMMANDS)
def test_an_unknown_key_is_refused_with_the_nearest_one(repo: Path, argv: tuple[str, ...]) -> None:
    config = write_config(repo, "budget:\n  montly_usd: 5\n")
    line = assert_one_error_line(cli(*argv, repo=repo))
    assert line == f"error: {config}: line 2: unknown key 'budget.montly_usd'; did you mean 'budget.monthly_usd'?"


def test_a_missing_config_given_with_config_is_named(repo: Path) -> None:
    missing = repo / "nope.yml"
    line = assert_one_error_line(cli("status", "--config", str(missing), repo=repo))
    assert str(missing) in line and "not found" in line


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"month": "2026-11",\n "runs": [}\n', "not valid JSON (line 2"),
        (
            json.dumps(
                {
                    "schema_version": 1,
                    "month": "2026-11",
                    "budget_micro_usd": 15_000_000,
                    "runs": [run("a", "2026-11-02T00:00:00Z", [call("analysis", "claude-sonnet-5-5", -3)])],
                }
            ),
            "runs[0].calls[0].cost_micro_usd must be a whole number, zero or more",
        ),
        (
            '{"schema_version": 1, "month": "November", "budget_micro_usd": 15000000}\n',
            "month must be a month like 2026-11",
        ),
        ("[]\n", "must hold a JSON object"),
    ],
)
@pytest.mark.parametrize("argv", [argv for argv in COMMANDS if argv[0] != "costs"])
def test_a_ledger_that_does_not_parse_is_named_and_left_untouched(
    repo: Path, argv: tuple[str, ...], text: str, field: str
) -> None:
    ledger = repo / "token_budget.json"
    ledger.write_text(text, encoding="utf-8")
    before = snapshot(repo)
    line = assert_one_error_line(cli(*argv, repo=repo))
    assert line.startswith(f"error: {ledger}: ") and field in line
    assert "git log -p" in line  # says how to restore it
    assert snapshot(repo) == before


def test_costs_reads_no_ledger_so_a_broken_one_does_not_stop_it(repo: Path) -> None:
    (repo / "token_budget.json").write_text("[]\n", encoding="utf-8")
    result = cli("costs", repo=repo)
    assert result.code == 0 and "Cost of one run" in result.out


@pytest.mark.parametrize("health", [{"breakers": {"anthropic": {"opened_at": "yesterday"}}}, {"parked": []}])
def test_a_ledger_with_broken_health_state_is_named(repo: Path, health: dict[str, Any]) -> None:
    ledger = write_ledger(repo, "2026-11", [], health=health)
    line = assert_one_error_line(cli("status", repo=repo))
    assert line.startswith(f"error: {ledger}: health")


def test_in_github_actions_an_error_is_also_an_annotation(repo: Path) -> None:
    config = write_config(repo, "budget:\n  montly_usd: 5\n")
    result = cli("status", repo=repo, env={"GITHUB_ACTIONS": "true"})
    message = f"{config}: line 2: unknown key 'budget.montly_usd'; did you mean 'budget.monthly_usd'?"
    assert result.code == 2
    assert result.err_lines == [f"error: {message}", f"::error title=ai-orchestration::{message}"]
    usage = cli("simulate", "--runs", "0", repo=repo, env={"GITHUB_ACTIONS": "true"})
    assert usage.code == 2 and usage.err_lines[1].startswith("::error title=ai-orchestration::simulate: --runs")
    assert "::error" not in cli("status", repo=repo, env={}).err  # only in Actions


# --- secrets ----------------------------------------------------------------------------------


def assert_no_secret(text: str) -> None:
    for value in (*SECRETS.values(), WEBHOOK_TOKEN):
        assert value not in text


def test_normal_output_never_shows_a_secret(five_dollar_repo: Path) -> None:
    env = {**SECRETS, "GITHUB_ACTIONS": "true"}
    for argv in (("status",), ("status", "--json"), ("costs",), ("simulate", "--runs", "300")):
        result = cli(*argv, repo=five_dollar_repo, env=env, now=TENTH_DAY_OVER)
        assert result.code == 0
        assert_no_secret(result.out + result.err)


@pytest.mark.parametrize("variable", [*SECRETS, "WEBHOOK_TOKEN"])
@pytest.mark.parametrize("actions", [False, True])
def test_an_error_quoting_a_secret_masks_it(repo: Path, variable: str, actions: bool) -> None:
    value = WEBHOOK_TOKEN if variable == "WEBHOOK_TOKEN" else SECRETS[variable]
    write_config(repo, f"models:\n  analysis: {value}\n")  # pasted in the wrong place: the error quotes the model name
    env = {**SECRETS, **({"GITHUB_ACTIONS": "true"} if actions else {})}
    result = cli("status", repo=repo, env=env)
    assert result.code == 2
    assert len(result.err_lines) == (2 if actions else 1)
    assert "models.analysis: no price is known for model '***'" in result.err
    assert_no_secret(result.out + result.err)


def test_a_secret_in_an_unknown_key_or_a_path_is_masked(tmp_path: Path) -> None:
    folder = git_checkout(tmp_path / SECRETS["OPENAI_API_KEY"])
    write_config(folder, f"{SECRETS['ANTHROPIC_API_KEY']}: 1\n")
    result = cli("costs", repo=folder, env=SECRETS)
    assert result.code == 2 and "unknown key '***'" in result.err
    assert_no_secret(result.out + result.err)


# --- subprocesses: what a user really runs ----------------------------------------------------


def user_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any key, and the repository importable."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SECRETS and not name.startswith(("GITHUB_", "PYTHON"))
    }
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_python_m_automation_status_works_with_no_keys(repo: Path, tmp_path: Path) -> None:
    # models that do not retire, so the real clock cannot make this refuse the config later
    write_config(repo, "models:\n  code: gpt-6-luna\n  fallbacks:\n    code: [gpt-5.6-luna]\n")
    spend_ledger(repo, "2026-11", {2: 1_250_000})
    before = snapshot(repo)
    result = subprocess.run(
        [sys.executable, "-m", "automation", "status", "--repo", str(repo)],
        check=False,
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert re.match(r"Month \d{4}-\d{2}: spent \$[\d.]+ of \$15\.00 \(\$[\d.]+ left\)\n", result.stdout)
    assert snapshot(repo) == before


def test_status_costs_and_simulate_do_not_import_the_provider_sdks(five_dollar_repo: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import datetime as dt, importlib.util, io, json, sys
        from automation import cli
        now = dt.datetime(2026, 11, 11, tzinfo=dt.timezone.utc)
        repo = {str(five_dollar_repo)!r}
        codes = [cli.main([*argv, "--repo", repo], env={{}}, now=now, out=io.StringIO(), err=io.StringIO())
                 for argv in (["status"], ["status", "--json"], ["costs"], ["simulate", "--runs", "50"])]
        names = ("anthropic", "openai", "github")
        print(json.dumps({{"codes": codes, "installed": [importlib.util.find_spec(n) is not None for n in names],
                          "imported": [n for n in names if n in sys.modules]}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["codes"] == [0, 0, 0, 0]
    assert report["installed"] == [True, True, True]  # so their absence below means something
    assert report["imported"] == []


@pytest.mark.parametrize(
    ("command", "described"),
    [
        ("run", "Take the first unticked '- [ ]' item"),
        ("status", "The month so far from the ledger"),
        ("costs", "The cost of one run (typical and worst case)"),
        ("simulate", "Synthetic runs, one every three hours"),
    ],
)
def test_every_command_help_describes_it(tmp_path: Path, command: str, described: str) -> None:
    result = subprocess.run([sys.executable, "-m", "automation", command, "--help"], check=False, cwd=tmp_path,
                            env=user_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"usage: python -m automation {command} ")
    assert " ".join(result.stdout.split()).count(described) == 1
    assert "a relative path is relative to --repo" in " ".join(result.stdout.split())


@pytest.mark.parametrize("argv", [("status",), ("costs",), ("simulate", "--runs", "3"), ("run", "--dry-run")])
@pytest.mark.parametrize("where", ["missing", "file", "plain folder", "inside a checkout"])
def test_a_repo_that_is_not_a_checkout_is_exit_2_naming_it(tmp_path: Path, argv: tuple[str, ...], where: str) -> None:
    target = tmp_path / "target"
    if where == "file":
        target.write_text("x")
    elif where == "plain folder":
        target.mkdir()
    elif where == "inside a checkout":
        git_checkout(tmp_path)
        target.mkdir()
    line = assert_one_error_line(cli(*argv, repo=target))
    assert line.startswith(f"error: --repo {target}: ")
    if where == "inside a checkout":
        assert f"use --repo {tmp_path}" in line


def test_a_relative_config_is_relative_to_the_repository(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "bot.yml").write_text("budget:\n  monthly_usd: 8\n")
    monkeypatch.chdir(tmp_path)  # not the repository: a path relative to here would not exist
    result = cli("status", "--config", "bot.yml", repo=repo)
    assert result.code == 0, result.err
    assert result.out.startswith("Month 2026-11: spent $0.00 of $8.00")
    line = assert_one_error_line(cli("status", "--config", "nope.yml", repo=repo))
    assert line == f"error: {repo / 'nope.yml'}: config file not found; check --config (a relative path is relative to --repo)"


def test_python_m_automation_error_is_one_line_and_an_annotation(repo: Path, tmp_path: Path) -> None:
    ledger = repo / "token_budget.json"
    ledger.write_text('{"month": "2026-11", "runs": [}\n', encoding="utf-8")
    before = snapshot(repo)
    for argv in (["status"], ["simulate", "--runs", "10"]):
        result = subprocess.run(
            [sys.executable, "-m", "automation", *argv, "--repo", str(repo)],
            check=False,
            cwd=tmp_path,
            env=user_env(GITHUB_ACTIONS="true", **SECRETS),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and "Traceback" not in result.stderr
        assert lines[0].startswith(f"error: {ledger}: not valid JSON")
        assert lines[1].startswith(f"::error title=ai-orchestration::{ledger}: not valid JSON")
        assert_no_secret(result.stderr)
    assert snapshot(repo) == before
    bogus = subprocess.run(
        [sys.executable, "-m", "automation", "bogus"],
        check=False,
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bogus.returncode == 2 and bogus.stdout == "" and len(bogus.stderr.splitlines()) == 1


def test_status_shows_follow_ups_apart_from_new_tasks(repo: Path) -> None:
    follow_up = {**run("4", "2026-11-10T03:17:00Z", [call("analysis", "claude-sonnet-5-5", 40_000)], outcome="follow_up_pushed"),
                 "kind": "follow_up", "pull": 1, "pr_url": "https://github.com/o/r/pull/1"}
    write_ledger(repo, "2026-11", [run("1", "2026-11-02T03:17:00Z", [call("analysis", "claude-sonnet-5-5", 60_000)]), follow_up])

    text = cli("status", repo=repo, now=TENTH_DAY_OVER)
    data = json.loads(cli("status", "--json", repo=repo, now=TENTH_DAY_OVER).out)

    assert (text.code, text.err) == (0, "")
    assert "  2 runs, 1 pull request" in text.out.splitlines()  # a follow-up opens no pull request
    assert text.out.splitlines()[3] == "  new tasks: 1 run; follow-ups: 1 run on 1 pull request (1 fix pushed), $0.0400"
    assert data["follow_ups"] == {"runs": 1, "pull_requests": 1, "pushed": 1, "spent_usd": 0.04, "new_task_runs": 1}
    assert data["prs_opened"] == 1


def test_status_from_a_subdirectory_finds_the_checkout_s_top(repo: Path) -> None:
    """Like git: without --repo, the checkout the current folder is in (an explicit --repo must be its top)."""
    spend_ledger(repo, "2026-11", {2: 1_250_000})
    inside = repo / "docs" / "deep"
    inside.mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "automation", "status", "--json"], cwd=inside, env=user_env(),
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    months = {data["month"]: data["spent_usd"], **{entry["month"]: entry["spent_usd"] for entry in data["history"]}}
    assert months["2026-11"] == 1.25, "the checkout's own ledger"
    outside = subprocess.run([sys.executable, "-m", "automation", "status"], cwd=repo.parent, env=user_env(),
                             capture_output=True, text=True, timeout=30)
    assert outside.returncode == 2
    assert outside.stderr == f"error: {repo.parent} is not inside a git checkout: run this in your repository's checkout, or give --repo\n"


def test_simulate_into_head_ends_quietly(repo: Path) -> None:
    """`simulate … | head`: the reader leaving is not an error (no BrokenPipeError, no traceback)."""
    result = subprocess.run(f"'{sys.executable}' -m automation simulate --runs 20000 --repo '{repo}' | head -n 2; "
                            "echo \"exit=${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash", cwd=repo,
                            env=user_env(), capture_output=True, text=True, timeout=120)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Simulating") and lines[-1] == "exit=0"


@pytest.mark.parametrize("budget_usd", ["15", "7.5"])
def test_every_milestone_costs_promises_comes_true_in_simulate_and_the_rest_say_why_not(repo: Path, budget_usd: str) -> None:
    """`costs` promises a milestone only where runs must reach it; `simulate` (the same model of a
    run) reaches each promised one near the promised run, and at the full budget it says why not."""
    write_config(repo, f"budget:\n  monthly_usd: {budget_usd}\n")
    costs = cli("costs", repo=repo).out
    promised = [(float(dollars.replace(",", "")), int(runs)) for dollars, runs in
                re.findall(r"^  \$([\d,.]+) milestone: after about (\d+) runs", costs, re.MULTILINE)]
    not_promised = re.findall(r"^  \$([\d,.]+) milestone: at the full budget, reached only if the month's last run", costs,
                              re.MULTILINE)
    assert len(promised) == 2 and not_promised == [f"{float(budget_usd):.2f}"]
    simulated = cli("simulate", "--until", budget_usd, repo=repo, now=MONTH_START).out
    _, spend = simulated_alerts(simulated)
    for dollars, runs in promised:
        reached_at = next(index for index, (_, spent) in enumerate(spend, start=1) if spent >= dollars)
        assert 0.9 * runs <= reached_at <= 1.1 * runs, (dollars, runs, reached_at)
    assert spend[-1][1] < float(budget_usd)
    sure = re.search(r"ends between \$([\d.]+) and", costs)
    assert sure is not None and spend[-1][1] >= float(sure.group(1)), "the month ends where costs said it would"
    assert f"${float(budget_usd):.2f} was not reached: runs stop once the next call no longer fits" in simulated
