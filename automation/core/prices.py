"""The shipped price table and the exact cost of a call.

Money is counted in integer micro-dollars (1 USD = 1_000_000). A price in USD per
million tokens is therefore exactly a price in micro-dollars per token, so the cost of
a call is ``sum(tokens * price)`` rounded *up* to the next micro-dollar: the ledger
never under-counts, and never holds an estimate.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import astuple, dataclass, field, replace
from decimal import Decimal
from typing import Mapping

MICRO = 1_000_000

ANTHROPIC = "anthropic"
OPENAI = "openai"

ANTHROPIC_PRICING = "https://platform.claude.com/docs/en/about-claude/pricing (read 2026-11-30)"
OPENAI_PRICING = "https://developers.openai.com/api/docs/pricing (read 2026-11-30)"
# Both batch APIs bill half the standard price on every token kind (Anthropic's Message Batches,
# OpenAI's Batch API: the "Batch" columns of the two pricing pages above).
BATCH_DISCOUNT = Decimal("0.5")
BATCH_PRICING = ("https://platform.claude.com/docs/en/build-with-claude/batch-processing and "
                 "https://developers.openai.com/api/docs/guides/batch (read 2026-12-04)")
PRICES_AS_OF = "2026-11-30"

# Effort levels, as the SDKs type them: Anthropic ``output_config.effort`` (OutputConfigParam)
# and OpenAI ``reasoning_effort`` (shared.ReasoningEffort).
CLAUDE_5_EFFORTS = ("low", "medium", "high", "xhigh", "max")
OPENAI_REASONING_EFFORTS = ("none", "low", "medium", "high", "xhigh", "max")

# OpenAI's GPT-5.6 and GPT-6 families bill a whole request above 272,000 input tokens at
# twice the input rates and 1.5 times the output rate (the model pages' "long context" note).
OPENAI_LONG_CONTEXT = 272_000


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one call, normalised across providers.

    ``input_tokens`` never includes cached tokens: Anthropic reports it that way; for
    OpenAI we subtract ``prompt_tokens_details.cached_tokens`` and ``cache_write_tokens``
    from ``prompt_tokens``. OpenAI's cache writes (one kind) are kept as 5-minute writes.
    ``reasoning_tokens`` (Claude's thinking, OpenAI's reasoning) are *part of*
    ``output_tokens``, as both providers report and bill them: shown, never billed twice.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every input token of the request, cached or not (what the long-context tier counts)."""
        return self.input_tokens + self.cache_write_5m_tokens + self.cache_write_1h_tokens + self.cache_read_tokens

    def __add__(self, other: Usage) -> Usage:
        """Counts summed field by field (several calls, or a report's rows for one day and model)."""
        return Usage(*(mine + theirs for mine, theirs in zip(astuple(self), astuple(other))))

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
            + self.cache_read_tokens
        )


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model, with where the figure came from."""

    model: str
    provider: str
    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    source: str
    as_of: str
    aliases: tuple[str, ...] = ()
    retires: dt.date | None = None
    successor: str | None = None
    max_priced_input_tokens: int | None = None  # the price only holds for prompts up to this size
    context_window: int | None = None  # tokens in + out the model accepts, when published
    max_output_tokens: int | None = None  # the model's own output limit (a larger max_tokens is a 400)
    # Above this many input tokens (cached or not) the whole request costs more:
    # every input rate times ``long_input_factor``, the output rate times ``long_output_factor``.
    long_context_tokens: int | None = None
    long_input_factor: Decimal = Decimal(1)
    long_output_factor: Decimal = Decimal(1)
    # Effort levels the model takes (Claude ``output_config.effort``, OpenAI ``reasoning_effort``);
    # empty: the model takes no effort setting and none is sent.
    efforts: tuple[str, ...] = ()
    # Claude thinking types the model accepts (``thinking.type``): "adaptive", "between_tools", "disabled".
    thinking_types: tuple[str, ...] = ()
    # True when the provider may write the prompt to its cache without being asked (OpenAI's
    # GPT-5.6 and GPT-6 families), so the worst case prices every input token as a write.
    writes_cache_unasked: bool = False

    def is_long_context(self, prompt_tokens: int) -> bool:
        return self.long_context_tokens is not None and prompt_tokens > self.long_context_tokens

    def cost_micro_usd(self, usage: Usage) -> int:
        """Exact cost of ``usage`` in micro-dollars, rounded up to the next micro-dollar.

        ``reasoning_tokens`` are inside ``output_tokens`` and cost nothing extra.
        """
        long = self.is_long_context(usage.prompt_tokens)
        in_factor = self.long_input_factor if long else Decimal(1)
        out_factor = self.long_output_factor if long else Decimal(1)
        exact = (
            usage.input_tokens * self.input * in_factor
            + usage.output_tokens * self.output * out_factor
            + usage.cache_write_5m_tokens * self.cache_write_5m * in_factor
            + usage.cache_write_1h_tokens * self.cache_write_1h * in_factor
            + usage.cache_read_tokens * self.cache_read * in_factor
        )
        return math.ceil(exact)

    def worst_case_micro_usd(self, input_tokens: int, max_output_tokens: int) -> int:
        """What a call can cost at most: every input token uncached (or written to the cache,
        where the provider does that unasked), every output token used (thinking included),
        at the long-context rates when ``input_tokens`` passes their threshold."""
        dearest = max(self.input, self.cache_write_5m) if self.writes_cache_unasked else self.input
        long = self.is_long_context(input_tokens)
        in_factor = self.long_input_factor if long else Decimal(1)
        out_factor = self.long_output_factor if long else Decimal(1)
        return math.ceil(input_tokens * dearest * in_factor + max_output_tokens * self.output * out_factor)

    def batched(self) -> Price:
        """This model's price in a batch: every rate (input, output, cache writes and reads) times
        ``BATCH_DISCOUNT``, as both providers bill results delivered within 24 hours."""
        return replace(
            self, input=self.input * BATCH_DISCOUNT, output=self.output * BATCH_DISCOUNT,
            cache_write_5m=self.cache_write_5m * BATCH_DISCOUNT, cache_write_1h=self.cache_write_1h * BATCH_DISCOUNT,
            cache_read=self.cache_read * BATCH_DISCOUNT, source=f"{self.source}; batch: {BATCH_PRICING}",
        )

    def days_to_retirement(self, today: dt.date) -> int | None:
        return None if self.retires is None else (self.retires - today).days


def _anthropic(
    model: str,
    input_usd: str,
    output_usd: str,
    *,
    cache_read_usd: str | None = None,
    aliases: tuple[str, ...] = (),
    retires: dt.date | None = None,
    successor: str | None = None,
    max_priced_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    efforts: tuple[str, ...] = (),
    thinking_types: tuple[str, ...] = (),
) -> Price:
    """Anthropic's published multipliers: 5-minute cache write 1.25x, 1-hour write 2x, cache read
    0.1x (unless the model page gives its own cache-read price)."""
    base = Decimal(input_usd)
    return Price(
        model=model,
        provider=ANTHROPIC,
        input=base,
        output=Decimal(output_usd),
        cache_write_5m=base * Decimal("1.25"),
        cache_write_1h=base * 2,
        cache_read=Decimal(cache_read_usd) if cache_read_usd is not None else base / 10,
        source=ANTHROPIC_PRICING,
        as_of=PRICES_AS_OF,
        aliases=aliases,
        retires=retires,
        successor=successor,
        max_priced_input_tokens=max_priced_input_tokens,
        max_output_tokens=max_output_tokens,
        efforts=efforts,
        thinking_types=thinking_types,
    )


def _openai(
    model: str,
    input_usd: str,
    output_usd: str,
    cached_usd: str | None,
    *,
    aliases: tuple[str, ...] = (),
    retires: dt.date | None = None,
    successor: str | None = None,
    context_window: int | None = None,
    max_output_tokens: int | None = None,
    reasoning_family: bool = False,
) -> Price:
    """OpenAI's older models cache automatically and never bill writes; a model with no
    published cached price is billed at the full input price for cached tokens (never an
    under-count). The GPT-5.6 and GPT-6 families (``reasoning_family``) are reasoning models
    that take ``reasoning_effort``, bill cache writes at 1.25x the input price, and bill a
    request above 272,000 input tokens at 2x input and 1.5x output."""
    base = Decimal(input_usd)
    write = base * Decimal("1.25") if reasoning_family else base
    return Price(
        model=model,
        provider=OPENAI,
        input=base,
        output=Decimal(output_usd),
        cache_write_5m=write,
        cache_write_1h=write,
        cache_read=Decimal(cached_usd) if cached_usd is not None else base,
        source=OPENAI_PRICING,
        as_of=PRICES_AS_OF,
        aliases=aliases,
        retires=retires,
        successor=successor,
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        long_context_tokens=OPENAI_LONG_CONTEXT if reasoning_family else None,
        long_input_factor=Decimal(2) if reasoning_family else Decimal(1),
        long_output_factor=Decimal("1.5") if reasoning_family else Decimal(1),
        efforts=OPENAI_REASONING_EFFORTS if reasoning_family else (),
        writes_cache_unasked=reasoning_family,
    )


# Context windows: https://platform.openai.com/docs/models (read 2026-11).
_OPENAI_SHUTDOWN = dt.date(2027, 1, 14)

BUILTIN_PRICES: tuple[Price, ...] = (
    # Sonnet 5.5: cache reads $0.10 (0.05x) since 2026-10-07; adaptive thinking on by default
    # at effort high; thinking "disabled" is a 400, "between_tools" turns up-front thinking off.
    _anthropic(
        "claude-sonnet-5-5", "2", "10", cache_read_usd="0.10",
        max_output_tokens=128_000, efforts=CLAUDE_5_EFFORTS, thinking_types=("adaptive", "between_tools"),
    ),
    _anthropic(
        "claude-sonnet-5", "2", "10", max_output_tokens=128_000, efforts=CLAUDE_5_EFFORTS, thinking_types=("adaptive", "disabled"),
    ),
    _anthropic(
        "claude-sonnet-4-6", "3", "15", max_output_tokens=64_000, efforts=("low", "medium", "high"), thinking_types=("adaptive", "disabled"),
    ),
    _anthropic(
        "claude-sonnet-4-5",
        "3",
        "15",
        aliases=("claude-sonnet-4-5-20250929",),
        retires=dt.date(2026, 11, 30),
        successor="claude-sonnet-5-5",
    ),
    _anthropic("claude-haiku-5-5", "0.10", "0.50", max_priced_input_tokens=100_000),
    _anthropic("claude-haiku-4-5", "1", "5", aliases=("claude-haiku-4-5-20251001",), max_output_tokens=64_000),
    # The seed's model: never Sonnet 4.5, retired on 2025-10-22.
    _anthropic(
        "claude-3-5-sonnet-20241022",
        "3",
        "15",
        aliases=("claude-3-5-sonnet-latest",),
        retires=dt.date(2025, 10, 22),
        successor="claude-sonnet-5-5",
    ),
    _openai(
        "gpt-4o-mini",
        "0.15",
        "0.60",
        "0.075",
        aliases=("gpt-4o-mini-2024-07-18",),
        context_window=128_000,
        max_output_tokens=16_384,
        retires=_OPENAI_SHUTDOWN,
        successor="gpt-6-luna",
    ),
    _openai(
        "gpt-4o",
        "2.50",
        "10",
        "1.25",
        aliases=("gpt-4o-2024-08-06", "gpt-4o-2024-11-20"),
        context_window=128_000,
        max_output_tokens=16_384,
        retires=_OPENAI_SHUTDOWN,
        successor="gpt-6-luna",
    ),
    _openai(
        "gpt-4.1-mini",
        "0.40",
        "1.60",
        "0.10",
        aliases=("gpt-4.1-mini-2025-04-14",),
        context_window=1_047_576,
        max_output_tokens=32_768,
        retires=_OPENAI_SHUTDOWN,
        successor="gpt-6-luna",
    ),
    # developers.openai.com/api/docs/models/gpt-6-luna and /gpt-5.6-luna (read 2026-11-30):
    # cached input $0.01 / $0.02, cache writes 1.25x input, long context above 272K input tokens.
    _openai("gpt-6-luna", "0.10", "0.50", "0.01", max_output_tokens=128_000, reasoning_family=True),
    _openai("gpt-5.6-luna", "0.20", "1.20", "0.02", max_output_tokens=128_000, reasoning_family=True),
)


@dataclass(frozen=True)
class PriceTable:
    """Looks models up by name or dated alias."""

    prices: Mapping[str, Price] = field(default_factory=dict)

    @classmethod
    def builtin(cls) -> "PriceTable":
        return cls({p.model: p for p in BUILTIN_PRICES})

    def with_overrides(self, overrides: Mapping[str, Price]) -> "PriceTable":
        merged = dict(self.prices)
        merged.update(overrides)
        return PriceTable(merged)

    def find(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        for price in self.prices.values():
            if model in price.aliases:
                return replace(price, model=price.model)
        return None

    def in_service(self, model: str, today: dt.date) -> str:
        """``model`` itself, or from its retirement date on its successor (followed while the
        successor has retired too). A model without a successor stays as it is."""
        seen = {model}
        price = self.find(model)
        while price is not None and price.retires is not None and today >= price.retires and price.successor:
            if price.successor in seen:
                break
            model = price.successor
            seen.add(model)
            price = self.find(model)
        return model

    def known_models(self) -> list[str]:
        names = set(self.prices)
        for price in self.prices.values():
            names.update(price.aliases)
        return sorted(names)

    def provider_of(self, model: str) -> str | None:
        price = self.find(model)
        return price.provider if price else None


def format_usd(micro_usd: int, places: int = 2) -> str:
    """``1234567`` -> ``$1.23`` (or more places on request). Rounds half up for display only."""
    quantum = Decimal(1).scaleb(-places)
    value = (Decimal(micro_usd) / MICRO).quantize(quantum, rounding="ROUND_HALF_UP")
    return f"${value:,}"


def usd_to_micro(value: Decimal | int | float | str) -> int:
    """Dollars from config or the command line to micro-dollars (exact for up to six places)."""
    return int((Decimal(str(value)) * MICRO).to_integral_value(rounding="ROUND_HALF_UP"))
