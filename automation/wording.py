"""How counts read in everything a user sees: ``1 file``, ``2 files``, ``1,000 runs``.

Money has its own single format, ``prices.format_usd`` (``$1,000.00``).
"""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` with thousands separators and ``noun`` in the right number (``nouns`` when not noun + "s")."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"
