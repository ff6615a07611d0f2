"""How counts and shares read in everything a user sees: ``1 file``, ``2 files``, ``1,000 runs``, ``99%``.

Money has its own single format, ``prices.format_usd`` (``$1,000.00``).
"""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` with thousands separators and ``noun`` in the right number (``nouns`` when not noun + "s")."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` as ``67%``, rounded to the nearest in integers but never to 100% while
    a part is missing (199 of 200 is 99%) nor to 0% while there is one (1 of 300 is 1%); 0% of nothing."""
    if not whole:
        return "0%"
    nearest = (part * 200 + whole) // (2 * whole)
    if 0 < part < whole:
        nearest = min(max(nearest, 1), 99)
    return f"{nearest}%"
