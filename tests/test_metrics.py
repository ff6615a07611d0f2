"""`status --format openmetrics`, read back with prometheus_client's own OpenMetrics parser."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from automation.cli import main
from tests import sample_ledgers

NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)


def cli(*argv: str, now: dt.datetime = NOW) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env={}, now=now, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ledger = sample_ledgers.with_health(sample_ledgers.year("2026-11", 150), opened_at="2026-11-21T08:00:00Z")
    return sample_ledgers.write_repo(tmp_path / "repo", ledger)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, after a strict parse of the whole text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def both(repo: Path, now: dt.datetime = NOW) -> tuple[dict[str, Any], dict[Any, float], str]:
    code, text, err = cli("status", "--repo", str(repo), "--format", "openmetrics", now=now)
    assert code == 0, err
    code, raw, err = cli("status", "--repo", str(repo), "--json", now=now)
    assert code == 0, err
    return json.loads(raw), samples(text), text


def test_month_figures_equal_status_json(repo: Path) -> None:
    status, found, text = both(repo)
    assert text.endswith("# EOF\n")
    month = (("month", "2026-11"),)
    assert found[("ai_orchestration_budget_usd", month)] == status["budget_usd"] == 15.0
    assert found[("ai_orchestration_spent_usd", month)] == status["spent_usd"] > 0
    assert found[("ai_orchestration_remaining_usd", month)] == status["remaining_usd"]
    assert found[("ai_orchestration_projected_spend_usd", month)] == status["projected_month_end_usd"]
    assert found[("ai_orchestration_runs", month)] == status["executions"] == 73
    assert found[("ai_orchestration_pull_requests", month)] == status["prs_opened"]
    assert ("ai_orchestration_budget_runs_out_timestamp_seconds", month) not in found  # the budget lasts the month
    assert found[("ai_orchestration_parked_tasks", ())] == 1


def test_calls_tokens_and_cost_per_model(repo: Path) -> None:
    status, found, _ = both(repo)
    assert len(status["models"]) == 3  # the primary, its fallback and the code model
    for model, totals in status["models"].items():
        labels = (("model", model),)
        assert found[("ai_orchestration_model_calls", labels)] == totals["calls"]
        assert found[("ai_orchestration_model_input_tokens", labels)] == totals["input_tokens"]
        assert found[("ai_orchestration_model_output_tokens", labels)] == totals["output_tokens"]
        assert found[("ai_orchestration_model_spent_usd", labels)] == totals["spent_usd"]


def test_success_ratio_and_latency_quantiles_per_provider_and_model(repo: Path) -> None:
    status, found, _ = both(repo)
    sonnet = next(m for m in status["health"]["models"] if m["model"] == "claude-sonnet-5-5")
    assert sonnet["success_rate"] < 1  # the sample has overloaded replies
    base = (("model", "claude-sonnet-5-5"), ("provider", "anthropic"))
    assert found[("ai_orchestration_model_success_ratio", base)] == sonnet["success_rate"]
    for quantile, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
        labels = tuple(sorted((*base, ("quantile", quantile))))
        assert found[("ai_orchestration_model_latency_seconds", labels)] == sonnet[key] / 1000
    assert found[("ai_orchestration_model_latency_seconds", tuple(sorted((*base, ("quantile", "0.5")))))] < \
        found[("ai_orchestration_model_latency_seconds", tuple(sorted((*base, ("quantile", "0.99")))))]


def test_breakers_are_a_stateset(repo: Path) -> None:
    families = {f.name: f for f in text_string_to_metric_families(both(repo)[2])}
    breaker = families["ai_orchestration_breaker_state"]
    assert breaker.type == "stateset"
    states = {(s.labels["provider"], s.labels["ai_orchestration_breaker_state"]): s.value for s in breaker.samples}
    assert states == {
        ("anthropic", "closed"): 0, ("anthropic", "open"): 1, ("anthropic", "half_open"): 0,
        ("openai", "closed"): 1, ("openai", "open"): 0, ("openai", "half_open"): 0,
    }
    # six hours later the cool-down is over: half-open, one probe allowed
    later = {f.name: f for f in text_string_to_metric_families(both(repo, NOW + dt.timedelta(hours=5))[2])}
    assert {s.labels["ai_orchestration_breaker_state"]: s.value for s in later["ai_orchestration_breaker_state"].samples
            if s.labels["provider"] == "anthropic"} == {"closed": 0, "open": 0, "half_open": 1}


def test_the_day_the_budget_runs_out_is_a_timestamp(tmp_path: Path) -> None:
    fast = sample_ledgers.month("2026-11", 150)  # about $10 in 20 days: $12 runs out before the month ends
    repo = sample_ledgers.write_repo(tmp_path / "repo", fast)
    code, text, err = cli("status", "--repo", str(repo), "--format", "openmetrics",
                          "--config", str(_config(tmp_path, 12)))
    assert code == 0, err
    code, raw, _ = cli("status", "--repo", str(repo), "--json", "--config", str(_config(tmp_path, 12)))
    status = json.loads(raw)
    assert status["budget_runs_out_on"]
    found = samples(text)
    stamp = found[("ai_orchestration_budget_runs_out_timestamp_seconds", (("month", "2026-11"),))]
    assert dt.datetime.fromtimestamp(stamp, dt.timezone.utc).date().isoformat() == status["budget_runs_out_on"]


def _config(tmp_path: Path, budget_usd: int) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(f"budget:\n  monthly_usd: {budget_usd}\n  milestones_usd: [{budget_usd}]\n", encoding="utf-8")
    return path


def test_an_empty_month_still_parses(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # --repo must be a git checkout
    code, text, err = cli("status", "--repo", str(tmp_path), "--format", "openmetrics")
    assert code == 0, err
    found = samples(text)
    assert found[("ai_orchestration_spent_usd", (("month", "2026-11"),))] == 0
    assert not [key for key in found if key[0].startswith("ai_orchestration_model_")]


def test_json_output_is_unchanged_and_the_flags_do_not_mix(repo: Path) -> None:
    code, by_flag, _ = cli("status", "--repo", str(repo), "--json")
    code2, by_format, _ = cli("status", "--repo", str(repo), "--format", "json")
    assert code == code2 == 0 and by_flag == by_format
    assert set(json.loads(by_flag)) == {
        "month", "budget_usd", "spent_usd", "remaining_usd", "executions", "prs_opened", "milestones_reached",
        "milestones_usd", "projected_month_end_usd", "budget_runs_out_on", "models", "retiring_models",
        "retired_models", "warnings", "history", "health", "follow_ups", "unsettled", "in_progress", "batches", "paused", "checks",
        "windows", "run_cap_usd", "warn_at_percent", "organisation",
        "prs_merged", "prs_closed_unmerged", "prs_open", "merge_rate", "cost_per_merged_pr_usd", "by_model", "by_kind",
        "outcomes",
    }
    code, out, err = cli("status", "--repo", str(repo), "--json", "--format", "openmetrics")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "not allowed with argument" in err and len(err.splitlines()) == 1


def test_the_prometheus_format_is_what_the_textfile_collector_and_pushgateway_parse(repo: Path) -> None:
    """Both parse only the classic text format, whose TYPE must be one of five: a `stateset`
    line makes the Pushgateway answer 400 and the textfile collector drop the file."""
    from prometheus_client.parser import text_string_to_metric_families as classic_families

    code, text, err = cli("status", "--repo", str(repo), "--format", "prometheus")
    assert code == 0, err
    types = {line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert types <= {"counter", "gauge", "histogram", "summary", "untyped"}
    assert "# EOF" not in text and "# UNIT" not in text
    classic = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in classic_families(text) for s in f.samples}
    assert classic == both(repo)[1]  # the same samples as the OpenMetrics text
