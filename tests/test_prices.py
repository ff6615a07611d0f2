"""The price table and the exact cost of a call, in integer micro-dollars rounded up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from automation.core.prices import ANTHROPIC, OPENAI, PriceTable, Usage, format_usd, usd_to_micro

TABLE = PriceTable.builtin()

# model -> (provider, input USD/Mtok, output USD/Mtok), as published (read 2026-11-30)
PUBLISHED = {
    "claude-sonnet-4-5": (ANTHROPIC, "3", "15"),
    "claude-sonnet-4-6": (ANTHROPIC, "3", "15"),
    "claude-sonnet-5": (ANTHROPIC, "2", "10"),
    "claude-sonnet-5-5": (ANTHROPIC, "2", "10"),
    "claude-haiku-4-5": (ANTHROPIC, "1", "5"),
    "claude-haiku-5-5": (ANTHROPIC, "0.10", "0.50"),
    "gpt-4o-mini": (OPENAI, "0.15", "0.60"),
    "gpt-4o": (OPENAI, "2.50", "10"),
    "gpt-4.1-mini": (OPENAI, "0.40", "1.60"),
    "gpt-6-luna": (OPENAI, "0.10", "0.50"),
    "gpt-5.6-luna": (OPENAI, "0.20", "1.20"),
}


def price(model: str):
    found = TABLE.find(model)
    assert found is not None, f"{model} missing from the price table"
    return found


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_table_holds_the_published_prices(model: str) -> None:
    provider, input_usd, output_usd = PUBLISHED[model]
    entry = price(model)
    assert (entry.provider, entry.input, entry.output) == (provider, Decimal(input_usd), Decimal(output_usd))
    # USD per million tokens is micro-dollars per token: 100 000 tokens cost exactly a tenth of the list price
    assert entry.cost_micro_usd(Usage(input_tokens=100_000)) == usd_to_micro(input_usd) // 10
    assert entry.cost_micro_usd(Usage(output_tokens=1_000_000)) == usd_to_micro(output_usd)


@pytest.mark.parametrize(
    ("alias", "model"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ],
)
def test_dated_aliases_map_to_the_same_entry(alias: str, model: str) -> None:
    found = price(alias)
    assert found.model == model
    assert found == price(model)
    assert TABLE.provider_of(alias) == price(model).provider
    assert alias in TABLE.known_models()


def test_unknown_model_has_no_price() -> None:
    assert TABLE.find("gpt-4o-mni") is None
    assert TABLE.find("") is None
    assert TABLE.provider_of("claude-opus-9") is None


def test_anthropic_input_excludes_cache_and_each_cache_kind_has_its_own_rate() -> None:
    sonnet = price("claude-sonnet-5-5")  # $2 input: 5m write $2.50, 1h write $4, read $0.10 since 2026-10-07
    assert sonnet.cost_micro_usd(Usage(input_tokens=1_000_000)) == 2_000_000
    assert sonnet.cost_micro_usd(Usage(cache_write_5m_tokens=1_000_000)) == 2_500_000
    assert sonnet.cost_micro_usd(Usage(cache_write_1h_tokens=1_000_000)) == 4_000_000
    assert sonnet.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 100_000
    assert price("claude-sonnet-5").cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 200_000  # 0.1x still
    # the exact sum of a realistic call: 1 000 uncached + 30 000 written (5m) + 50 000 read + 1 500 out
    usage = Usage(input_tokens=1_000, output_tokens=1_500, cache_write_5m_tokens=30_000, cache_read_tokens=50_000)
    assert sonnet.cost_micro_usd(usage) == 1_000 * 2 + 1_500 * 10 + 30_000 * 2.5 + 50_000 * 0.1 == 97_000


def test_thinking_is_billed_once_as_output() -> None:
    """Thinking/reasoning tokens are inside output_tokens: recording them adds nothing to the bill."""
    sonnet = price("claude-sonnet-5-5")
    thought = Usage(input_tokens=20_000, output_tokens=4_000, reasoning_tokens=3_000)
    assert sonnet.cost_micro_usd(thought) == sonnet.cost_micro_usd(Usage(input_tokens=20_000, output_tokens=4_000))
    assert sonnet.cost_micro_usd(thought) == 20_000 * 2 + 4_000 * 10


def test_sonnet_4_5_cache_rates_follow_its_own_input_price() -> None:
    old = price("claude-sonnet-4-5")
    assert old.cost_micro_usd(Usage(cache_write_5m_tokens=1_000_000)) == 3_750_000
    assert old.cost_micro_usd(Usage(cache_write_1h_tokens=1_000_000)) == 6_000_000
    assert old.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 300_000


def test_openai_cached_input_is_billed_at_the_cached_rate() -> None:
    mini = price("gpt-4o-mini")
    assert mini.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 75_000  # $0.075 per million
    # prompt_tokens 10 000 of which 8 000 cached -> input 2 000 at $0.15 + 8 000 at $0.075 + 500 out at $0.60
    usage = Usage(input_tokens=2_000, cache_read_tokens=8_000, output_tokens=500)
    assert mini.cost_micro_usd(usage) == 300 + 600 + 300
    # GPT-6 Luna's cached input is $0.01 and GPT-5.6 Luna's $0.02, not their full input price
    assert price("gpt-6-luna").cost_micro_usd(Usage(cache_read_tokens=100_000)) == 1_000
    assert price("gpt-5.6-luna").cost_micro_usd(Usage(cache_read_tokens=100_000)) == 2_000


@pytest.mark.parametrize(("model", "write_usd"), [("gpt-6-luna", "0.125"), ("gpt-5.6-luna", "0.25")])
def test_gpt_5_6_and_6_cache_writes_cost_a_quarter_more_than_input(model: str, write_usd: str) -> None:
    entry = price(model)
    assert entry.cost_micro_usd(Usage(cache_write_5m_tokens=100_000)) == usd_to_micro(write_usd) // 10
    assert entry.cache_write_5m == entry.input * Decimal("1.25")
    # older models never bill a write above the input price
    assert price("gpt-4o-mini").cache_write_5m == price("gpt-4o-mini").input


def test_the_long_context_tier_bills_the_whole_request_above_272k_input_tokens() -> None:
    luna = price("gpt-6-luna")  # $0.10 in, $0.01 cached, $0.125 written, $0.50 out
    at_threshold = Usage(input_tokens=172_000, cache_read_tokens=50_000, cache_write_5m_tokens=50_000, output_tokens=10_000)
    assert at_threshold.prompt_tokens == 272_000
    assert luna.cost_micro_usd(at_threshold) == 17_200 + 500 + 6_250 + 5_000  # at the list rates
    above = Usage(input_tokens=172_001, cache_read_tokens=50_000, cache_write_5m_tokens=50_000, output_tokens=10_000)
    # every input rate doubles and the output rate is 1.5x, for the whole request: 55 400.2 rounds up
    assert luna.cost_micro_usd(above) == 55_401  # 34 400.2 + 1 000 + 12 500 + 7 500
    assert price("gpt-4o-mini").cost_micro_usd(Usage(input_tokens=300_000)) == 45_000  # no tier on older models
    # the worst case follows the tier too, and prices every input token as a cache write (OpenAI writes unasked)
    assert luna.worst_case_micro_usd(272_000, 32_768) == 34_000 + 16_384
    assert luna.worst_case_micro_usd(272_001, 32_768) == 92_577  # 68 000.25 + 24 576, rounded up


def test_cost_rounds_up_to_the_next_micro_dollar_and_never_down() -> None:
    haiku = price("claude-haiku-5-5")  # $0.10 per million: a tenth of a micro-dollar per token
    assert haiku.cost_micro_usd(Usage()) == 0
    assert haiku.cost_micro_usd(Usage(input_tokens=1)) == 1
    assert haiku.cost_micro_usd(Usage(input_tokens=10)) == 1
    assert haiku.cost_micro_usd(Usage(input_tokens=11)) == 2
    assert haiku.cost_micro_usd(Usage(cache_read_tokens=1)) == 1  # $0.01 per million, still a whole micro-dollar
    mini = price("gpt-4o-mini")
    # 3 input tokens at 0.15 = 0.45, 1 output at 0.6: exact 1.05 -> 2 (rounded once, on the sum)
    assert mini.cost_micro_usd(Usage(input_tokens=3, output_tokens=1)) == 2
    assert isinstance(mini.cost_micro_usd(Usage(input_tokens=3)), int)


def test_worst_case_is_every_input_token_uncached_and_every_output_token_used() -> None:
    sonnet = price("claude-sonnet-5-5")
    assert sonnet.worst_case_micro_usd(20_000, 16_000) == 20_000 * 2 + 16_000 * 10  # thinking is output too
    mini = price("gpt-4o-mini")
    # 3 600.15 + 9 830.4 = 13 430.55: the sum is rounded once, up
    assert mini.worst_case_micro_usd(24_001, 16_384) == 13_431


def test_retirement_dates_and_successors() -> None:
    sonnet45 = price("claude-sonnet-4-5")
    assert (sonnet45.retires, sonnet45.successor) == (dt.date(2026, 11, 30), "claude-sonnet-5-5")
    assert sonnet45.days_to_retirement(dt.date(2026, 11, 1)) == 29
    for model in ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"):
        entry = price(model)
        assert (entry.retires, entry.successor) == (dt.date(2027, 1, 14), "gpt-6-luna"), model
    old = price("claude-3-5-sonnet-20241022")
    assert old.retires is not None and old.days_to_retirement(dt.date(2026, 11, 1)) < 0
    assert price("claude-sonnet-5-5").days_to_retirement(dt.date(2026, 11, 1)) is None
    # every successor is itself a priced, unretired model
    for entry in TABLE.prices.values():
        if entry.successor:
            assert price(entry.successor).retires is None


def test_haiku_5_5_price_only_holds_up_to_100k_input_tokens() -> None:
    assert price("claude-haiku-5-5").max_priced_input_tokens == 100_000
    assert all(price(m).max_priced_input_tokens is None for m in PUBLISHED if m != "claude-haiku-5-5")


def test_usage_totals_count_every_token_once() -> None:
    usage = Usage(1, 20, 3, 4, 5, reasoning_tokens=15)
    assert usage.total_tokens == 33  # reasoning is inside output
    assert usage.prompt_tokens == 13


def test_dollar_formatting_and_parsing() -> None:
    assert format_usd(1_234_567) == "$1.23"
    assert format_usd(1_235_000) == "$1.24"
    assert format_usd(15_000_000) == "$15.00"
    assert format_usd(1_234_567_890) == "$1,234.57"
    assert format_usd(59_711, 4) == "$0.0597"
    assert format_usd(0) == "$0.00"
    assert usd_to_micro("15.00") == 15_000_000
    assert usd_to_micro(0.1) == 100_000
    assert usd_to_micro(Decimal("0.075")) == 75_000
    assert usd_to_micro(3) == 3_000_000
