"""How counts, shares and outcomes read in everything a user sees: ``1 file``, ``2 files``,
``1,000 runs``, ``99%``, ``pull request opened`` (not ``pr_opened``).

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


# A run's recorded outcome (the ledger's codes) in words.
OUTCOMES = {
    "pr_opened": "pull request opened",
    "follow_up_pushed": "follow-up: fix pushed",
    "follow_up_answered": "follow-up: answered, nothing to change",
    "budget_stop": "stopped: budget used up",
    "no_task": "stopped: no task left",
    "pr_limit": "stopped: too many open pull requests",
    "duplicate": "stopped: another run has the task",
    "breaker_open": "stopped: providers down (circuit breaker)",
    "handed_over": "handed over to the full run",
    "unsettled": "never settled (stopped before its ledger commit)",
    "batch_submitted": "analysis submitted as a batch (a later run collects it)",
    "batch_waiting": "waiting for a batch",
}
FAILED_STEPS = {
    "edits": "the code reply was unusable", "analysis": "the analysis step", "code": "the code step",
    "provider": "a provider error", "git": "a git error", "github": "a GitHub error", "interrupted": "interrupted",
    "deadline": "out of time", "config": "invalid config", "ledger": "ledger problem", "tasks": "tasks file problem",
    "environment": "a key is missing", "internal": "an internal error", "run": "an error",
}


def outcome_words(outcome: str) -> str:
    """``failed:edits`` -> ``failed: the code reply was unusable``; an unknown code is shown as it is, spaced."""
    if outcome in OUTCOMES:
        return OUTCOMES[outcome]
    failed, _, step = outcome.partition(":")
    if failed == "failed":
        return f"failed: {FAILED_STEPS.get(step, step.replace('_', ' ') or 'an error')}"
    return outcome.replace("_", " ")
