"""Provider health on hand-built ledgers: statistics, the circuit breaker, parked tasks.

Every decision takes ``now`` explicitly, so time passing is a different argument, not a sleep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from automation.core.config import Config
from automation.core.prices import Usage
from automation.models import health
from automation.money.ledger import CallRecord, Ledger, RunRecord, from_text, to_text

NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)
STAMP = "2026-11-21T10:00:00Z"
CONFIG = Config()  # breaker_failures 3, breaker_cooldown_hours 6, park_after_failures 3
SONNET, HAIKU, MINI = "claude-sonnet-5-5", "claude-haiku-4-5", "gpt-4o-mini"


NO_TOKENS = Usage()


def call(
    model: str = SONNET,
    outcome: str = "ok",
    latency_ms: int = 1000,
    cost: int = 0,
    usage: Usage = NO_TOKENS,
    step: str = "analysis",
) -> CallRecord:
    provider = "openai" if model.startswith("gpt") else "anthropic"
    return CallRecord(
        step=step,
        model=model,
        provider=provider,
        usage=usage,
        cost_micro_usd=cost,
        latency_ms=latency_ms,
        outcome=outcome,
    )


def run(
    *calls: CallRecord, task: str = "Add a greeting module", number: int = 1, outcome: str = "failed:provider"
) -> RunRecord:
    return RunRecord(
        id=f"run-{number}", started_at=f"2026-11-{number:02d}T00:00:00Z", task=task, outcome=outcome, calls=calls
    )


def ledger(*runs: RunRecord, health_state: dict | None = None) -> Ledger:
    return Ledger(month="2026-11", budget_micro_usd=15_000_000, runs=runs, health=health_state or {})


def breaker(failures: int, opened_at: str | None) -> dict:
    return {"breakers": {"anthropic": {"consecutive_failures": failures, "opened_at": opened_at}}}


# --- statistics --------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank_over_successful_calls_only() -> None:
    calls = [call(latency_ms=ms) for ms in range(100, 10_001, 100)]  # 100 ms .. 10 s, 100 calls
    calls.append(call(outcome="overloaded", latency_ms=600_000))  # a failure's wait is not a latency
    [stats] = health.model_stats(ledger(run(*calls)))

    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (5_000, 9_500, 9_900)
    assert stats.calls == 101 and stats.succeeded == 100
    assert stats.outcomes == {"ok": 100, "overloaded": 1}


def test_percentiles_of_few_calls_are_observed_values() -> None:
    [stats] = health.model_stats(ledger(run(call(latency_ms=1200), call(latency_ms=300), call(latency_ms=800))))
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (800, 1200, 1200)


def test_success_rate_spend_and_tokens_are_per_provider_and_model_for_the_month() -> None:
    billed = Usage(input_tokens=1200, output_tokens=300)
    month = ledger(
        run(
            call(SONNET, "overloaded", 0),
            call(HAIKU, cost=2700, usage=billed),
            call(MINI, cost=600, usage=Usage(input_tokens=2000, output_tokens=500), step="code"),
            number=1,
        ),
        run(
            call(SONNET, cost=5400, usage=billed),
            call(MINI, "invalid_reply", cost=600, usage=Usage(input_tokens=2000, output_tokens=500), step="code"),
            number=2,
        ),
    )
    stats = {(s.provider, s.model): s for s in health.model_stats(month)}

    assert list(stats) == [("anthropic", HAIKU), ("anthropic", SONNET), ("openai", MINI)]
    sonnet, haiku, mini = stats["anthropic", SONNET], stats["anthropic", HAIKU], stats["openai", MINI]
    assert (sonnet.calls, sonnet.success_rate, sonnet.spent_micro_usd, sonnet.tokens) == (2, 0.5, 5400, 1500)
    assert (haiku.calls, haiku.success_rate, haiku.spent_micro_usd) == (1, 1.0, 2700)
    assert (mini.success_rate, mini.spent_micro_usd, mini.tokens) == (0.5, 1200, 5000)  # unusable replies are paid for
    assert mini.outcomes == {"ok": 1, "invalid_reply": 1}


def test_rendered_stats_read_as_one_line_per_model() -> None:
    lines = health.render_stats(
        health.model_stats(
            ledger(
                run(
                    call(SONNET, latency_ms=1500, cost=5400, usage=Usage(input_tokens=1200, output_tokens=300)),
                    call(SONNET, "overloaded", latency_ms=0),
                )
            )
        )
    )
    assert lines == ["anthropic/claude-sonnet-5-5: 2 calls, 50% ok, p50 1.5s p95 1.5s p99 1.5s, $0.0054, 1,500 tokens"]


def test_a_success_rate_with_a_failure_never_reads_100_percent() -> None:
    """199 of 200 is 99.5%: rounded to 100% it hid the failure."""
    calls = [call(SONNET) for _ in range(199)] + [call(SONNET, "overloaded", latency_ms=0)]
    [line] = health.render_stats(health.model_stats(ledger(run(*calls))))
    assert ", 99% ok," in line


def test_percent_rounds_to_the_nearest_but_never_hides_a_failure_or_a_success() -> None:
    from automation.core.wording import percent

    assert [percent(2, 3), percent(199, 200), percent(1, 300), percent(0, 5), percent(5, 5), percent(0, 0)] == [
        "67%", "99%", "1%", "0%", "100%", "0%"]


def test_stats_of_an_empty_month_and_a_model_that_never_answered() -> None:
    assert health.model_stats(ledger()) == []
    [stats] = health.model_stats(ledger(run(call(outcome="server"))))
    assert stats.success_rate == 0.0 and (stats.p50_ms, stats.p99_ms) == (0, 0)


# --- circuit breaker -----------------------------------------------------------------------------


def test_breaker_closed_open_and_half_open_by_time() -> None:
    opened = ledger(health_state=breaker(3, STAMP))
    assert health.breaker_state(ledger(), "anthropic", CONFIG, NOW) == "closed"
    assert health.breaker_state(ledger(health_state=breaker(2, None)), "anthropic", CONFIG, NOW) == "closed"
    assert health.breaker_state(opened, "anthropic", CONFIG, NOW) == "open"
    assert health.breaker_state(opened, "anthropic", CONFIG, NOW + dt.timedelta(hours=5, minutes=59)) == "open"
    assert health.breaker_state(opened, "anthropic", CONFIG, NOW + dt.timedelta(hours=6)) == "half_open"
    assert health.breaker_state(opened, "openai", CONFIG, NOW) == "closed"
    short = replace(CONFIG, breaker_cooldown_hours=1)
    assert health.breaker_state(opened, "anthropic", short, NOW + dt.timedelta(hours=1)) == "half_open"


def test_failures_spread_over_runs_open_the_breaker_at_the_nth() -> None:
    state = ledger()
    for number, expected in ((1, (1, None)), (2, (2, None)), (3, (3, STAMP))):
        record = run(call(outcome="overloaded"), number=number)
        state = health.after_run(state.with_run(record), record, record.task, "failed:provider", CONFIG, NOW)
        entry = state.health["breakers"]["anthropic"]
        assert (entry["consecutive_failures"], entry["opened_at"]) == expected
    assert health.breaker_state(state, "anthropic", CONFIG, NOW) == "open"


@pytest.mark.parametrize("kind", ["rate_limited", "overloaded", "server", "connection"])
def test_every_outage_kind_counts(kind: str) -> None:
    record = run(call(outcome=kind), call(HAIKU, outcome=kind))
    folded = health.after_run(
        ledger(health_state=breaker(1, None)), record, record.task, "failed:provider", CONFIG, NOW
    )
    assert folded.health["breakers"]["anthropic"] == {"consecutive_failures": 3, "opened_at": STAMP}


@pytest.mark.parametrize("kind", ["auth", "quota", "billing", "permission", "invalid_reply", "bad_request"])
def test_the_users_problems_and_bad_replies_neither_trip_nor_reset_the_breaker(kind: str) -> None:
    record = run(call(outcome=kind))
    folded = health.after_run(
        ledger(health_state=breaker(2, None)), record, record.task, "failed:provider", CONFIG, NOW
    )
    assert folded.health["breakers"]["anthropic"] == {"consecutive_failures": 2, "opened_at": None}


def test_a_success_closes_the_breaker_even_after_a_failure_in_the_same_run() -> None:
    record = run(call(SONNET, "overloaded"), call(HAIKU), outcome="pr_opened")
    later = NOW + dt.timedelta(hours=7)
    folded = health.after_run(ledger(health_state=breaker(3, STAMP)), record, record.task, "pr_opened", CONFIG, later)
    assert folded.health["breakers"]["anthropic"] == {"consecutive_failures": 0, "opened_at": None}
    assert health.breaker_state(folded, "anthropic", CONFIG, later) == "closed"


def test_a_failed_probe_reopens_the_breaker_from_the_probe_time() -> None:
    probe_time = NOW + dt.timedelta(hours=6, minutes=5)
    half_open = ledger(health_state=breaker(3, STAMP))
    assert health.breaker_state(half_open, "anthropic", CONFIG, probe_time) == "half_open"
    record = run(call(outcome="server"))
    folded = health.after_run(half_open, record, record.task, "failed:provider", CONFIG, probe_time)

    assert folded.health["breakers"]["anthropic"] == {"consecutive_failures": 4, "opened_at": "2026-11-21T16:05:00Z"}
    assert health.breaker_state(folded, "anthropic", CONFIG, probe_time + dt.timedelta(hours=1)) == "open"


def test_calls_of_another_provider_leave_a_breaker_alone() -> None:
    record = run(call(MINI, step="code"), outcome="pr_opened")
    folded = health.after_run(ledger(health_state=breaker(3, STAMP)), record, record.task, "pr_opened", CONFIG, NOW)
    assert folded.health["breakers"]["anthropic"] == {"consecutive_failures": 3, "opened_at": STAMP}
    assert folded.health["breakers"]["openai"] == {"consecutive_failures": 0, "opened_at": None}


def test_chain_skips_an_open_provider_and_keeps_a_half_open_one() -> None:
    mixed = replace(CONFIG, analysis_fallbacks=(HAIKU, MINI))
    opened = ledger(health_state=breaker(3, STAMP))
    assert health.chain(ledger(), mixed, SONNET, (HAIKU, MINI), NOW) == [SONNET, HAIKU, MINI]
    assert health.chain(opened, mixed, SONNET, (HAIKU, MINI), NOW) == [MINI]
    assert health.chain(opened, mixed, SONNET, (HAIKU, MINI), NOW + dt.timedelta(hours=6)) == [SONNET, HAIKU, MINI]
    assert health.chain(ledger(), CONFIG, SONNET, (SONNET, HAIKU), NOW) == [SONNET, HAIKU]  # no model twice


def test_chain_with_every_provider_open_stops_before_spending_and_says_when_to_expect_a_probe() -> None:
    with pytest.raises(health.BreakerOpen) as stopped:
        health.chain(ledger(health_state=breaker(3, STAMP)), CONFIG, SONNET, (HAIKU,), NOW + dt.timedelta(hours=1))
    assert stopped.value.outcome == "breaker_open" and stopped.value.providers == ["anthropic"]
    assert stopped.value.until == NOW + dt.timedelta(hours=6)
    assert "circuit breaker open for anthropic" in stopped.value.message
    assert "2026-11-21 16:00 UTC" in stopped.value.message


def test_breaker_state_survives_a_ledger_round_trip() -> None:
    record = run(call(outcome="overloaded"), call(HAIKU, outcome="overloaded"), call(outcome="overloaded"))
    folded = health.after_run(ledger(record), record, record.task, "failed:provider", CONFIG, NOW)
    reloaded = from_text(to_text(folded), "token_budget.json")
    assert health.breaker_state(reloaded, "anthropic", CONFIG, NOW) == "open"
    assert reloaded.health == folded.health


# --- parked tasks --------------------------------------------------------------------------------


def fail_task(state: Ledger, task: str, times: int, outcome: str = "failed:edits") -> Ledger:
    for number in range(times):
        record = run(call(MINI, step="code"), task=task, number=number + 1, outcome=outcome)
        state = health.after_run(state.with_run(record), record, task, outcome, CONFIG, NOW)
    return state


def test_a_task_is_parked_after_m_failed_runs_and_not_before() -> None:
    task = "Add a greeting module"
    twice = fail_task(ledger(), task, 2)
    assert health.parked_tasks(twice) == {}
    thrice = fail_task(twice, task, 1)
    assert health.parked_tasks(thrice) == {health.task_key(task): task}
    entry = thrice.health["parked"][health.task_key(task)]
    assert entry == {"task": task, "failures": 3, "parked": True}


def test_park_threshold_comes_from_config() -> None:
    record = run(call(MINI, step="code"), outcome="failed:edits")
    folded = health.after_run(
        ledger(), record, record.task, "failed:edits", replace(CONFIG, park_after_failures=1), NOW
    )
    assert list(health.parked_tasks(folded).values()) == [record.task]


@pytest.mark.parametrize("outcome", ["failed:provider", "failed:git", "failed:github", "budget_stop", "breaker_open"])
def test_outages_and_stops_are_not_the_tasks_fault(outcome: str) -> None:
    state = fail_task(ledger(), "Add a greeting module", 5, outcome=outcome)
    assert health.parked_tasks(state) == {} and "parked" not in state.health


def test_a_pull_request_forgets_earlier_failures() -> None:
    task = "Add a greeting module"
    state = fail_task(ledger(), task, 2)
    record = run(call(MINI, step="code"), task=task, outcome="pr_opened")
    opened = health.after_run(state, record, task, "pr_opened", CONFIG, NOW)
    assert health.parked_tasks(fail_task(opened, task, 1)) == {}


def test_parking_is_by_exact_text_so_editing_the_text_unparks_it() -> None:
    state = fail_task(ledger(), "Add a greeting module", 3)
    parked = health.parked_tasks(state)
    assert health.task_key("Add a greeting module") in parked
    assert health.task_key("  Add a greeting module \n") in parked  # surrounding whitespace is not an edit
    assert health.task_key("Add a greeting module with a docstring") not in parked


def test_a_run_without_a_task_changes_no_parking() -> None:
    record = RunRecord(id="r", started_at="2026-11-01T00:00:00Z", task="", outcome="failed:edits")
    assert "parked" not in health.after_run(ledger(), record, "", "failed:edits", CONFIG, NOW).health


def test_status_data_lists_breaker_states_and_parked_tasks() -> None:
    state = fail_task(ledger(health_state=breaker(3, STAMP)), "Add a greeting module", 3)
    data = health.status_data(state, CONFIG, NOW + dt.timedelta(hours=1))
    assert data["breakers"] == {"anthropic": "open", "openai": "closed"}
    assert data["parked_tasks"] == ["Add a greeting module"]
    [model] = data["models"]
    assert model["model"] == MINI and model["calls"] == 3 and model["success_rate"] == 1.0
    assert health.status_data(state, CONFIG, NOW + dt.timedelta(hours=6))["breakers"]["anthropic"] == "half_open"


def test_tasks_gone_from_the_file_are_unparked_and_stay_so_through_a_ledger_merge() -> None:
    from automation.money.ledger import merge

    committed = fail_task(fail_task(ledger(), "Add a greeting module", 3), "Write the changelog", 3)
    edited = health.unpark_missing(committed, ["Add a greeting module with a docstring", "Write the changelog"])

    assert list(health.parked_tasks(edited).values()) == ["Write the changelog"]
    assert edited.health["parked"][health.task_key("Add a greeting module")]["failures"] == 0
    assert health.parked_tasks(merge(committed, edited, committed)) == health.parked_tasks(edited)
    assert health.unpark_missing(edited, ["Write the changelog"]) is edited  # nothing left to change: no commit


def test_an_opened_pull_request_resets_failures_through_a_ledger_merge() -> None:
    from automation.money.ledger import merge

    task = "Add a greeting module"
    committed = fail_task(ledger(), task, 2)
    record = run(call(MINI, step="code"), task=task, number=9, outcome="pr_opened")
    opened = health.after_run(committed.with_run(record), record, task, "pr_opened", CONFIG, NOW)
    merged = merge(committed, opened, committed)
    assert merged.health["parked"][health.task_key(task)]["failures"] == 0


def test_a_refused_or_cut_off_reply_counts_against_the_task_but_an_outage_does_not() -> None:
    import datetime as dt

    from automation.core.config import Config
    from automation.core.prices import Usage
    from automation.models.health import after_run, task_key
    from automation.money.ledger import CallRecord, RunRecord, new_ledger

    now = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
    ledger = new_ledger(now, 15_000_000)
    refused = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(10, 5), 70, 900, "invalid_reply")
    outage = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(), 0, 900, "overloaded")
    after_refusal = after_run(ledger, RunRecord("r1", "2026-11-21T00:00:00Z", "T", calls=(refused,)), "T", "failed:provider", Config(), now)
    after_outage = after_run(ledger, RunRecord("r2", "2026-11-21T00:00:00Z", "T", calls=(outage,)), "T", "failed:provider", Config(), now)
    assert after_refusal.health["parked"][task_key("T")]["failures"] == 1
    assert "parked" not in after_outage.health
