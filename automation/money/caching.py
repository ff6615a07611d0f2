"""Prompt caching: where marking the analysis prompt's prefix for Anthropic's cache pays, and
what the caches saved a run.

Facts used, from the providers' prompt-caching pages:

- Anthropic (https://platform.claude.com/docs/en/build-with-claude/prompt-caching): a prefix
  is cached only when ``cache_control`` marks it and it is at least the model's minimum
  cacheable length (``MIN_CACHEABLE_TOKENS``; shorter ones are sent uncached, no error);
  the default lifetime is 5 minutes, refreshed by each hit; a 5-minute write costs 1.25x the
  input price (a 1-hour one 2x), a read 0.1x. Those rates are in the price table
  (``core/prices.py``), so the arithmetic below reads them from there.
- OpenAI (https://developers.openai.com/api/docs/guides/prompt-caching): caching is
  automatic for prompts of 1,024 tokens or more, an exact prefix match, hits counted in
  128-token steps; nothing to mark, only the order of the prompt matters (stable part first).

Money in integer micro-dollars, sizes in tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from ..core.prices import Price, Usage, format_usd
from .ledger import CallRecord, Ledger

# Anthropic's minimum cacheable prompt length, by model-name prefix (first match wins).
MIN_CACHEABLE_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-haiku-5", 4096),  # not published yet: taken as Haiku 4.5's
    ("claude-haiku-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-3", 2048),
    ("claude-", 1024),  # Sonnet 5.5, 5, 4.6, 4.5 and the other Opus models
)
OPENAI_MIN_CACHED_TOKENS = 1024
OPENAI_CACHE_STEP_TOKENS = 128
CACHE_TTL_SECONDS = 300  # Anthropic's default (5-minute) lifetime, refreshed on each hit
# Ask for modes (``models.prompt_cache``): the arithmetic, always mark, never mark.
MODES = ("auto", "always", "off")


def min_cacheable_tokens(model: str) -> int:
    """Anthropic's minimum cacheable prefix for ``model`` (1,024 where nothing more specific is known)."""
    return next((size for prefix, size in MIN_CACHEABLE_TOKENS if model.startswith(prefix)), 1024)


def reuse_rate(ledger: Ledger, step: str, model: str) -> float:
    """How often this month a ``step`` request on ``model`` was followed, in the same run, by
    another one with the same prompt (a reply cut at ``max_tokens`` retried): repeats per run
    that sent one. 0.0 with no such run yet."""
    per_run = Counter(
        run.id for run in ledger.runs for call in run.calls if call.step == step and call.model == model
    )
    if not per_run:
        return 0.0
    return sum(count - 1 for count in per_run.values()) / len(per_run)


@dataclass(frozen=True)
class CacheChoice:
    """Whether to mark the prefix, and why (one line for the log)."""

    mark: bool
    reason: str


def choose(mode: str, price: Price, prefix_tokens: int, reuses: float) -> CacheChoice:
    """Mark the prefix for the 5-minute cache when ``mode`` is "always", or ("auto") when it is
    long enough to be cached and the expected ``reuses`` within the lifetime save more than
    the write costs over a plain read: ``reuses × (input − read) > (write − input)`` per token
    (at Anthropic's rates, 0.25x input against 0.9x: more than 0.28 reuses a request;
    0.26 on Sonnet 5.5, whose reads cost 0.05x)."""
    minimum = min_cacheable_tokens(price.model)
    if mode == "off":
        return CacheChoice(False, "models.prompt_cache is off")
    if prefix_tokens < minimum:
        return CacheChoice(False, f"the prefix ({prefix_tokens:,} tokens) is below {price.model}'s minimum of {minimum:,}")
    if mode == "always":
        return CacheChoice(True, "models.prompt_cache is always")
    extra = price.cache_write_5m - price.input
    saved = price.input - price.cache_read
    pays = Decimal(str(reuses)) * saved > extra
    word = "pays" if pays else "does not pay"
    return CacheChoice(pays, f"{reuses:.2f} expected reuses within 5 minutes × {saved} saved vs {extra} more to write: {word}")


def saving_micro_usd(price: Price, usage: Usage) -> int:
    """What the cache saved on one call against the same tokens sent uncached: reads at
    ``input − cache_read``, less the writes' surcharge over ``input`` (negative when a write
    was never read). Rounded toward zero, in micro-dollars."""
    exact = (
        usage.cache_read_tokens * (price.input - price.cache_read)
        - usage.cache_write_5m_tokens * (price.cache_write_5m - price.input)
        - usage.cache_write_1h_tokens * (price.cache_write_1h - price.input)
    )
    return math.trunc(exact)


def run_saving_note(calls: Iterable[CallRecord], price_of: Callable[[str], Price]) -> str | None:
    """The receipt's line on what the caches saved over a run's calls (``saving_micro_usd``
    summed, exact to the micro-dollar), or None when no call read or wrote a cache."""
    cached = [call for call in calls if call.usage.cache_read_tokens or call.usage.cache_write_5m_tokens
              or call.usage.cache_write_1h_tokens]
    if not cached:
        return None
    saved = sum(saving_micro_usd(price_of(call.model), call.usage) for call in cached)
    read = sum(call.usage.cache_read_tokens for call in cached)
    written = sum(call.usage.cache_write_5m_tokens + call.usage.cache_write_1h_tokens for call in cached)
    verb = "saved" if saved >= 0 else "cost"
    return (f"Prompt caching {verb} {format_usd(abs(saved), 6)} ({abs(saved):,} µ$) on this run: {read:,} tokens read "
            f"from the providers' caches, {written:,} written, against sending them uncached.")
