"""`status --format openmetrics` / `--format prometheus`: the month's figures for Prometheus.

OpenMetrics is what a Prometheus server scrapes; the node-exporter textfile collector and the
Pushgateway parse only the classic text format (0.0.4: no ``stateset`` type, which prometheus_client
writes there as a gauge with the same samples), hence ``prometheus``. The values are read
from ``reports.status_data`` (what `status --json` prints), so the two never disagree, and the
text is written by ``prometheus_client`` (its OpenMetrics exposition), not by hand.

Families (every one a gauge unless said; dollars are USD, latencies seconds):
  ai_orchestration_budget_usd, _spent_usd, _remaining_usd, _projected_spend_usd  {month}
  ai_orchestration_budget_runs_out_timestamp_seconds  {month}  (only when the pace runs out)
  ai_orchestration_runs, ai_orchestration_pull_requests  {month}
  ai_orchestration_model_calls, _model_input_tokens, _model_output_tokens, _model_spent_usd  {model}
  ai_orchestration_model_success_ratio  {provider, model}
  ai_orchestration_model_latency_seconds  {provider, model, quantile="0.5"|"0.95"|"0.99"}
  ai_orchestration_breaker_state  stateset {provider}: closed, open, half_open
  ai_orchestration_parked_tasks
  ai_orchestration_checked_runs, ai_orchestration_checked_pull_requests  {month, result="passed"|"failed"}
  ai_orchestration_check_repairs  {month}
  ai_orchestration_window_spent_usd, _window_budget_usd  {window="day"|"week"|"month", label}
  with a shared ledger (ledger.repository), where the figures above are the organisation's:
  ai_orchestration_repository_spent_usd  {repository, window="day"|"week"|"month"}
  ai_orchestration_repository_share_usd  {repository}  (only repositories given a share)
  ai_orchestration_outcome_pull_requests  {state="merged"|"closed_unmerged"|"open"}  (the PRs on record)
  ai_orchestration_outcome_merge_ratio, ai_orchestration_outcome_cost_per_merged_pr_usd  (when there is one)
  ai_orchestration_{model_pair,kind,experiment_arm}_pull_requests  {pair|kind|arm, state}
  ai_orchestration_{model_pair,kind,experiment_arm}_merge_ratio, _cost_per_merged_pr_usd  {pair|kind|arm}
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Mapping

from prometheus_client import exposition
from prometheus_client.metrics_core import GaugeMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector, CollectorRegistry

PREFIX = "ai_orchestration_"
BREAKER_STATES = ("closed", "open", "half_open")
QUANTILES = (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms"))


def render(status: Mapping[str, Any], text_format: str = "openmetrics") -> str:
    """For the dict ``reports.status_data`` returns: OpenMetrics text (ending in ``# EOF``), or
    with ``text_format="prometheus"`` the classic text format (same families and samples)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status))
    writer = openmetrics_exposition if text_format == "openmetrics" else exposition
    return writer.generate_latest(registry).decode("utf-8")


class _StatusCollector(Collector):
    def __init__(self, status: Mapping[str, Any]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status
        month = [status["month"]]
        for name, key, help_text in (
            ("budget", "budget_usd", "The monthly budget."),
            ("spent", "spent_usd", "Spent so far this month."),
            ("remaining", "remaining_usd", "Left of this month's budget."),
            ("projected_spend", "projected_month_end_usd", "Spend by the month's end at the current pace."),
        ):
            yield _gauge(f"{name}_usd", help_text, "usd", ["month"], [(month, status[key])])
        if status["budget_runs_out_on"]:
            runs_out = dt.datetime.combine(dt.date.fromisoformat(status["budget_runs_out_on"]), dt.time(),
                                           dt.timezone.utc)
            yield _gauge("budget_runs_out_timestamp_seconds", "The day (00:00 UTC) the pace uses up the budget.",
                         "seconds", ["month"], [(month, runs_out.timestamp())])
        yield _gauge("runs", "Runs that called a model this month.", "", ["month"], [(month, status["executions"])])
        yield _gauge("pull_requests", "Pull requests opened this month.", "", ["month"], [(month, status["prs_opened"])])

        models = sorted(status["models"].items())
        for name, key, unit, help_text in (
            ("model_calls", "calls", "", "Paid calls to the model this month."),
            ("model_input_tokens", "input_tokens", "tokens", "Input tokens billed this month."),
            ("model_output_tokens", "output_tokens", "tokens", "Output tokens billed this month."),
            ("model_spent_usd", "spent_usd", "usd", "Spent on the model this month."),
        ):
            yield _gauge(name, help_text, unit, ["model"], [([model], totals[key]) for model, totals in models])

        health = status["health"]
        stats = health["models"]
        yield _gauge("model_success_ratio", "Share of this month's calls that succeeded.", "ratio", ["provider", "model"],
                     [([s["provider"], s["model"]], s["success_rate"]) for s in stats])
        yield _gauge("model_latency_seconds", "Latency of this month's successful calls (nearest-rank quantiles).",
                     "seconds", ["provider", "model", "quantile"],
                     [([s["provider"], s["model"], q], s[key] / 1000) for s in stats for q, key in QUANTILES])
        breakers = StateSetMetricFamily(f"{PREFIX}breaker_state", "Circuit breaker of each provider.", labels=["provider"])
        for provider, state in sorted(health["breakers"].items()):
            breakers.add_metric([provider], {name: state == name for name in BREAKER_STATES})
        yield breakers
        yield _gauge("parked_tasks", "Tasks parked after repeated unusable replies.", "", [],
                     [([], len(health["parked_tasks"]))])
        checks = status["checks"]
        results = ("passed", "failed")
        yield _gauge("checked_runs", "Runs whose edit the repository's own checks ran on, by what they said.", "",
                     ["month", "result"], [([status["month"], result], checks[result]) for result in results])
        yield _gauge("checked_pull_requests", "Pull requests opened with the repository's checks passing or failing.", "",
                     ["month", "result"], [([status["month"], result], checks[f"pull_requests_{result}"]) for result in results])
        yield _gauge("check_repairs", "Repair requests made from the checks' failures.", "", ["month"],
                     [(month, checks["repairs"])])
        budget_windows = status["windows"]
        yield _gauge("window_spent_usd", "Spent in each budget window that has a cap.", "usd", ["window", "label"],
                     [([w["window"], w["label"]], w["spent_usd"]) for w in budget_windows])
        yield _gauge("window_budget_usd", "The cap of each budget window.", "usd", ["window", "label"],
                     [([w["window"], w["label"]], w["cap_usd"]) for w in budget_windows])
        organisation = status["organisation"]
        if organisation is not None:
            repositories = organisation["repositories"]
            yield _gauge("repository_spent_usd", "Each repository's spend in the shared ledger, by window.", "usd",
                         ["repository", "window"],
                         [([r["repository"], window], r[key]) for r in repositories
                          for window, key in (("day", "today_usd"), ("week", "week_usd"), ("month", "spent_usd"))])
            yield _gauge("repository_share_usd", "Each repository's monthly share of the organisation's budget.", "usd",
                         ["repository"], [([r["repository"]], r["share_usd"]) for r in repositories if r["share_usd"] is not None])
        yield from _outcomes(status)


OUTCOME_STATES = (("merged", "prs_merged"), ("closed_unmerged", "prs_closed_unmerged"), ("open", "prs_open"))


def _outcomes(status: Mapping[str, Any]) -> Iterator[Metric]:
    """The PRs on record: by state, merge ratio and cost per merged PR, in total and by model
    pair, task kind and experiment arm (a group without a verdict or a merge has no sample)."""
    groups: list[tuple[str, list[str], Mapping[str, Any]]] = [("outcome", [], {"": status})] + [
        (dimension, [label], status[key] if key != "by_arm" else status["outcomes"]["experiment"]["by_arm"])
        for dimension, label, key in (("model_pair", "pair", "by_model"), ("kind", "kind", "by_kind"),
                                      ("experiment_arm", "arm", "by_arm"))
    ]
    for dimension, labels, by_name in groups:
        def values(name: str) -> list[str]:
            return [name] if labels else []

        yield _gauge(f"{dimension}_pull_requests", "The bot's pull requests on record, by what became of them.", "",
                     [*labels, "state"], [([*values(name), state], figures[key]) for name, figures in by_name.items()
                                          for state, key in OUTCOME_STATES])
        yield _gauge(f"{dimension}_merge_ratio", "Merged of the decided (merged or closed) pull requests.", "ratio", labels,
                     [(values(name), figures["merge_rate"]) for name, figures in by_name.items()
                      if figures["merge_rate"] is not None])
        yield _gauge(f"{dimension}_cost_per_merged_pr_usd", "Spent on the decided pull requests per merged one.", "usd",
                     labels, [(values(name), figures["cost_per_merged_pr_usd"]) for name, figures in by_name.items()
                              if figures["cost_per_merged_pr_usd"] is not None])


def _gauge(name: str, help_text: str, unit: str, labels: list[str],
           samples: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{PREFIX}{name}", help_text, labels=labels, unit=unit)
    for values, value in samples:
        family.add_metric(values, value)
    return family
