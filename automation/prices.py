"""The shipped price table and the exact cost of a call.

Money is counted in integer micro-dollars (1 USD = 1_000_000). A price in USD per
million tokens is therefore exactly a price in micro-dollars per token, so the cost of
a call is ``sum(tokens * price)`` rounded *up* to the next micro-dollar: the ledger
never under-counts, and never holds an estimate.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Mapping

MICRO = 1_000_000

ANTHROPIC = "anthropic"
OPENAI = "openai"

ANTHROPIC_PRICING = "https://www.anthropic.com/pricing#api (read 2026-11)"
OPENAI_PRICING = "https://openai.com/api/pricing/ (read 2026-11)"


@dataclass(frozen=True)
class Usage:
    """Token usage of one call, normalised across providers.

    ``input_tokens`` never includes cached tokens: Anthropic reports it that way; for
    OpenAI we subtract ``prompt_tokens_details.cached_tokens`` from ``prompt_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
            + self.cache_read_tokens
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input": self.input_tokens,
            "output": self.output_tokens,
            "cache_write_5m": self.cache_write_5m_tokens,
            "cache_write_1h": self.cache_write_1h_tokens,
            "cache_read": self.cache_read_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> "Usage":
        return cls(
            input_tokens=int(data.get("input", 0)),
            output_tokens=int(data.get("output", 0)),
            cache_write_5m_tokens=int(data.get("cache_write_5m", 0)),
            cache_write_1h_tokens=int(data.get("cache_write_1h", 0)),
            cache_read_tokens=int(data.get("cache_read", 0)),
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

    def cost_micro_usd(self, usage: Usage) -> int:
        """Exact cost of ``usage`` in micro-dollars, rounded up to the next micro-dollar."""
        exact = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_write_5m_tokens * self.cache_write_5m
            + usage.cache_write_1h_tokens * self.cache_write_1h
            + usage.cache_read_tokens * self.cache_read
        )
        return math.ceil(exact)

    def worst_case_micro_usd(self, input_tokens: int, max_output_tokens: int) -> int:
        """What a call can cost at most: every input token uncached, every output token used."""
        return self.cost_micro_usd(Usage(input_tokens=input_tokens, output_tokens=max_output_tokens))

    def days_to_retirement(self, today: dt.date) -> int | None:
        return None if self.retires is None else (self.retires - today).days


def _anthropic(
    model: str,
    input_usd: str,
    output_usd: str,
    *,
    aliases: tuple[str, ...] = (),
    retires: dt.date | None = None,
    successor: str | None = None,
    max_priced_input_tokens: int | None = None,
) -> Price:
    """Anthropic's published multipliers: 5-minute cache write 1.25x, 1-hour write 2x, cache read 0.1x."""
    base = Decimal(input_usd)
    return Price(
        model=model,
        provider=ANTHROPIC,
        input=base,
        output=Decimal(output_usd),
        cache_write_5m=base * Decimal("1.25"),
        cache_write_1h=base * 2,
        cache_read=base / 10,
        source=ANTHROPIC_PRICING,
        as_of="2026-11",
        aliases=aliases,
        retires=retires,
        successor=successor,
        max_priced_input_tokens=max_priced_input_tokens,
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
) -> Price:
    """OpenAI caches automatically and never bills writes; a model with no published cached
    price is billed at the full input price for cached tokens (never an under-count)."""
    base = Decimal(input_usd)
    return Price(
        model=model,
        provider=OPENAI,
        input=base,
        output=Decimal(output_usd),
        cache_write_5m=base,
        cache_write_1h=base,
        cache_read=Decimal(cached_usd) if cached_usd is not None else base,
        source=OPENAI_PRICING,
        as_of="2026-11",
        aliases=aliases,
        retires=retires,
        successor=successor,
        context_window=context_window,
    )


# Context windows: https://platform.openai.com/docs/models (read 2026-11).
_OPENAI_SHUTDOWN = dt.date(2027, 1, 14)

BUILTIN_PRICES: tuple[Price, ...] = (
    _anthropic("claude-sonnet-5-5", "2", "10"),
    _anthropic("claude-sonnet-5", "2", "10"),
    _anthropic("claude-sonnet-4-6", "3", "15"),
    _anthropic(
        "claude-sonnet-4-5",
        "3",
        "15",
        aliases=("claude-sonnet-4-5-20250929",),
        retires=dt.date(2026, 11, 30),
        successor="claude-sonnet-5-5",
    ),
    _anthropic("claude-haiku-5-5", "0.10", "0.50", max_priced_input_tokens=100_000),
    _anthropic("claude-haiku-4-5", "1", "5", aliases=("claude-haiku-4-5-20251001",)),
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
        retires=_OPENAI_SHUTDOWN,
        successor="gpt-6-luna",
    ),
    _openai("gpt-6-luna", "0.10", "0.50", None),
    _openai("gpt-5.6-luna", "0.20", "1.20", None),
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
