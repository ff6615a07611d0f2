"""The hard cap: reserve the worst case before every call, milestones, pace and run cost."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation.core.errors import EXIT_INVALID, ConfigError
from automation.core.prices import ANTHROPIC, PriceTable, Usage
from automation.money.budget import (
    BudgetStop,
    newly_reached_milestones,
    pace,
    padded_anthropic_count,
    remaining_micro_usd,
    reserve,
    run_cost,
)
from automation.money.ledger import CallRecord, Ledger, RunRecord, from_text, new_ledger, to_text

TABLE = PriceTable.builtin()
SONNET = TABLE.find("claude-sonnet-5-5")
MINI = TABLE.find("gpt-4o-mini")
HAIKU55 = TABLE.find("claude-haiku-5-5")
assert SONNET and MINI and HAIKU55
NOW = dt.datetime(2026, 11, 11, tzinfo=dt.timezone.utc)
MILESTONES = (5_000_000, 10_000_000, 15_000_000)


def spent(amount: int, month: str = "2026-11", run_id: str = "r") -> Ledger:
    ledger = Ledger(month=month, budget_micro_usd=15_000_000)
    if not amount:
        return ledger
    paid = CallRecord("analysis", SONNET.model, SONNET.provider, Usage(input_tokens=1), amount, 1)
    return ledger.with_run(RunRecord(run_id, f"{month}-01T00:00:00Z", "t", "pr_opened", None, (paid,)))


# --- reserve -----------------------------------------------------------------------------


def test_reserve_returns_the_worst_case_when_it_fits() -> None:
    assert reserve(spent(0), 15_000_000, SONNET, 20_000, 4_096) == 20_000 * 2 + 4_096 * 10


def test_exactly_the_remaining_amount_fits_and_one_more_micro_dollar_stops() -> None:
    worst = SONNET.worst_case_micro_usd(20_000, 4_096)  # 80 960
    ledger = spent(15_000_000 - worst)
    assert remaining_micro_usd(ledger, 15_000_000) == worst
    assert reserve(ledger, 15_000_000, SONNET, 20_000, 4_096) == worst
    with pytest.raises(BudgetStop) as caught:
        reserve(spent(15_000_000 - worst + 1), 15_000_000, SONNET, 20_000, 4_096)
    assert str(caught.value) == "budget stop: the next call may cost up to $0.080960 but only $0.080959 is left this month"
    assert (caught.value.needed_micro_usd, caught.value.remaining_micro_usd) == (worst, worst - 1)


def test_zero_remaining_stops_every_paid_call() -> None:
    for ledger in (spent(15_000_000), spent(16_000_000)):  # spent at, or (by a human edit) past, the budget
        assert remaining_micro_usd(ledger, 15_000_000) == 0
        with pytest.raises(BudgetStop, match=r"may cost up to \$0\.000001 but only \$0\.000000 is left"):
            reserve(ledger, 15_000_000, HAIKU55, 1, 0)


def test_a_lower_budget_stops_what_the_ledgers_own_budget_would_allow() -> None:
    with pytest.raises(BudgetStop):
        reserve(spent(4_990_000), 5_000_000, SONNET, 20_000, 4_096)


def test_haiku_5_5_above_100k_input_tokens_is_a_config_error() -> None:
    assert reserve(spent(0), 15_000_000, HAIKU55, 100_000, 1_000) == 10_000 + 500
    with pytest.raises(ConfigError) as caught:
        reserve(spent(0), 15_000_000, HAIKU55, 100_001, 1_000)
    assert caught.value.exit_code == EXIT_INVALID
    assert str(caught.value) == (
        "claude-haiku-5-5 is priced only for prompts up to 100,000 tokens and this one may have 100,001; "
        "lower context.max_tokens or pick another model"
    )
    # no such limit on the other models
    assert reserve(spent(0), 15_000_000, SONNET, 150_000, 1_000) == 310_000


def test_anthropic_counts_are_padded_by_five_percent() -> None:
    assert padded_anthropic_count(20_000) == 21_000
    assert padded_anthropic_count(1) == 2  # always rounded up
    assert padded_anthropic_count(0) == 0


# --- milestones --------------------------------------------------------------------------


def test_milestones_crossed_and_not_yet_announced() -> None:
    assert newly_reached_milestones(spent(4_999_999), MILESTONES) == []
    assert newly_reached_milestones(spent(5_000_000), MILESTONES) == [5_000_000]
    assert newly_reached_milestones(spent(12_000_000), MILESTONES) == [5_000_000, 10_000_000]
    announced = replace(spent(12_000_000), milestones_reached_micro_usd=(5_000_000,))
    assert newly_reached_milestones(announced, MILESTONES) == [10_000_000]


def test_a_milestone_is_reached_only_when_spend_really_crosses_it() -> None:
    ledger = spent(14_950_000)  # short of $15 by design: the next call's worst case did not fit
    assert newly_reached_milestones(ledger, MILESTONES) == [5_000_000, 10_000_000]
    assert newly_reached_milestones(spent(14_999_999), MILESTONES) == [5_000_000, 10_000_000]
    assert newly_reached_milestones(spent(15_000_000), MILESTONES) == list(MILESTONES)


# --- pace --------------------------------------------------------------------------------


def test_pace_projects_the_month_and_the_day_the_money_runs_out() -> None:
    ten_days_in = dt.datetime(2026, 11, 11, tzinfo=dt.timezone.utc)
    steady = pace(spent(5_000_000), 15_000_000, ten_days_in)  # $0.50 a day over 30 days
    assert steady.projected_micro_usd == 15_000_000
    assert steady.runs_out_on is None  # exactly lasts the month
    fast = pace(spent(5_000_000), 10_000_000, ten_days_in)
    assert fast.projected_micro_usd == 15_000_000
    assert fast.runs_out_on == dt.date(2026, 11, 21)  # $5 more at $0.50 a day
    assert pace(spent(0), 15_000_000, ten_days_in) == type(steady)(projected_micro_usd=0, runs_out_on=None)


def test_pace_is_not_wild_in_the_first_hour_and_uses_the_month_length() -> None:
    one_minute_in = dt.datetime(2026, 11, 1, 0, 1, tzinfo=dt.timezone.utc)
    assert pace(spent(1_000), 15_000_000, one_minute_in).projected_micro_usd == 1_000 * 24 * 30
    february = pace(spent(1_400_000, month="2027-02"), 15_000_000, dt.datetime(2027, 2, 15, tzinfo=dt.timezone.utc))
    assert february.projected_micro_usd == 2_800_000  # 14 of 28 days
    overspent = pace(spent(16_000_000), 15_000_000, NOW)
    assert overspent.runs_out_on == NOW.date()  # already out: today, never in the past


# --- run cost ----------------------------------------------------------------------------


def test_run_cost_typical_and_worst_case() -> None:
    cost = run_cost(SONNET, MINI, 16_000, 16_384, analysis=Usage(input_tokens=20_000, output_tokens=5_000, reasoning_tokens=3_000),
                    code=Usage(input_tokens=24_000, output_tokens=6_000))
    assert cost.analysis_typical == 20_000 * 2 + (2_000 + 3_000) * 10  # the answer and typical thinking at effort medium
    assert cost.code_typical == 3_600 + 3_600
    assert cost.analysis_worst == 21_000 * 2 + 16_000 * 10  # padded count, the whole cap (thinking included)
    assert cost.code_worst == 13_431  # 3 600 + 9 830.4, rounded up once
    assert (cost.typical, cost.worst) == (97_200, 215_431)
    cheaper = run_cost(HAIKU55, TABLE.find("gpt-6-luna"), 4_096, 16_384, analysis=Usage(input_tokens=50_000, output_tokens=2_000),
                       code=Usage(input_tokens=24_000, output_tokens=6_000))
    assert cheaper.analysis_typical == 5_000 + 1_000
    assert cheaper.worst < cost.worst


# --- the property: spend never ends over the cap -----------------------------------------

MODELS = sorted(
    name for name, price in TABLE.prices.items() if price.retires is None or price.retires > dt.date(2026, 11, 1)
)


@st.composite
def paid_call(draw: st.DrawFn) -> tuple[str, int, int, Usage]:
    """A model, the counted input, max_tokens, and what the provider then reports (within both)."""
    model = draw(st.sampled_from(MODELS))
    counted = draw(st.integers(0, 150_000))
    max_tokens = draw(st.integers(0, 32_000))
    price = TABLE.find(model)
    assert price is not None
    bound = padded_anthropic_count(counted) if price.provider == ANTHROPIC else counted
    prompt = draw(st.integers(0, counted))  # the provider's own count never exceeds what we counted
    cached = draw(st.integers(0, prompt))
    # cached tokens only bill at or below the uncached price: reads for both, and OpenAI's (unbilled,
    # here input-priced) writes; Anthropic's cache writes cost more and need a cache_control we never send
    writes = draw(st.integers(0, cached)) if price.provider != ANTHROPIC else 0
    usage = Usage(
        input_tokens=prompt - cached,
        output_tokens=draw(st.integers(0, max_tokens)),
        cache_write_5m_tokens=writes,
        cache_read_tokens=cached - writes,
    )
    return model, bound, max_tokens, usage


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget=st.integers(0, 3_000_000), calls=st.lists(paid_call(), max_size=40))
def test_no_sequence_of_calls_ends_over_the_cap(budget: int, calls: list[tuple[str, int, int, Usage]]) -> None:
    ledger = new_ledger(NOW, budget)
    for index, (model, bound, max_tokens, usage) in enumerate(calls):
        price = TABLE.find(model)
        assert price is not None
        try:
            worst = reserve(ledger, budget, price, bound, max_tokens)
        except BudgetStop as stop:
            assert stop.needed_micro_usd > stop.remaining_micro_usd == remaining_micro_usd(ledger, budget)
            continue
        except ConfigError:
            assert price.max_priced_input_tokens is not None and bound > price.max_priced_input_tokens
            continue
        cost = price.cost_micro_usd(usage)
        assert cost <= worst
        record = CallRecord("code", price.model, price.provider, usage, cost, 1)
        ledger = ledger.with_run(RunRecord(f"run-{index}", f"2026-11-11T00:00:{index:02d}Z", "t", "ok", None, (record,)))
        assert ledger.spent_micro_usd <= budget
    reloaded = from_text(to_text(ledger), "token_budget.json")
    assert reloaded.spent_micro_usd == ledger.spent_micro_usd <= budget


def test_filling_the_budget_call_by_call_stops_exactly_at_the_cap() -> None:
    """The property is not vacuous: calls that use their whole worst case walk spend right up to the cap."""
    budget = 1_000_000
    ledger = new_ledger(NOW, budget)
    stops = 0
    for index in range(40):
        try:
            worst = reserve(ledger, budget, SONNET, 20_000, 4_096)
        except BudgetStop:
            stops += 1
            worst = reserve(ledger, budget, HAIKU55, 0, remaining_micro_usd(ledger, budget) * 2)  # fill the rest
        record = CallRecord("analysis", SONNET.model, SONNET.provider, Usage(), worst, 1)
        ledger = ledger.with_run(RunRecord(f"r{index}", f"2026-11-11T00:00:{index:02d}Z", "t", "ok", None, (record,)))
        if ledger.spent_micro_usd == budget:
            break
    assert ledger.spent_micro_usd == budget and stops == 1
    with pytest.raises(BudgetStop):
        reserve(ledger, budget, HAIKU55, 1, 0)
