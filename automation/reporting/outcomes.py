"""What the money bought, as people read it: the outcome part of `status` (text and ``--json``),
which the metrics, the dashboard and the recap read too, so they never disagree.

Every figure covers the PRs on record (``money/outcomes.py``): the bot's PRs of the ledger's
months, each with what it cost and what became of it.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.config import Config
from ..core.prices import MICRO, format_usd
from ..core.wording import plural
from ..models import experiment
from ..money import outcomes
from ..money.ledger import Ledger
from ..money.outcomes import Tally


def _usd(micro_usd: int | None) -> float | None:
    return None if micro_usd is None else round(micro_usd / MICRO, 6)


def tally_json(tally: Tally) -> dict[str, Any]:
    """One group's figures: counts, ``merge_rate`` (0..1, null before a verdict), dollars, hours."""
    return {
        "prs_merged": tally.merged,
        "prs_closed_unmerged": tally.closed,
        "prs_open": tally.open,
        "merge_rate": None if tally.merge_rate is None else round(tally.merge_rate, 4),
        "cost_per_merged_pr_usd": _usd(tally.cost_per_merged_micro_usd),
        "median_hours_to_merge": None if tally.median_hours_to_merge is None else round(tally.median_hours_to_merge, 2),
        "spent_usd": _usd(tally.spent_micro_usd),
        "follow_ups": tally.follow_ups,
        "humans_pushed": tally.humans_pushed,
        "lines_changed": tally.lines_changed,
        "lines_survived": tally.lines_survived,
    }


TOP_LEVEL = ("prs_merged", "prs_closed_unmerged", "prs_open", "merge_rate", "cost_per_merged_pr_usd")


def status_data(config: Config, ledger: Ledger) -> dict[str, Any]:
    """The outcome keys of ``status --json``: the totals ``prs_merged``, ``prs_closed_unmerged``,
    ``prs_open``, ``merge_rate``, ``cost_per_merged_pr_usd``; ``by_model`` (``"analysis × code"``)
    and ``by_kind``, each group with the figures of ``tally_json``; and ``outcomes``: the rest of
    the totals, ``by_month`` (the month each PR was opened) and the ``experiment``'s arms."""
    pulls = outcomes.on_record(ledger)
    arms = experiment.arms(config)
    by_arm = outcomes.by_arm(pulls)
    total = tally_json(outcomes.tally(pulls))
    return {
        **{key: total[key] for key in TOP_LEVEL},
        "by_model": {name: tally_json(group) for name, group in outcomes.by_model(pulls).items()},
        "by_kind": {name: tally_json(group) for name, group in outcomes.by_kind(pulls).items()},
        "outcomes": {
            **{key: value for key, value in total.items() if key not in TOP_LEVEL},
            "by_month": [{"month": month, **tally_json(group)} for month, group in outcomes.by_month(pulls).items()],
            "experiment": {
                "arms": list(arms),
                "by_arm": {arm: tally_json(by_arm.get(arm, Tally())) for arm in dict.fromkeys([*arms, *by_arm])},
            },
        },
    }


def _rate(rate: float | None) -> str:
    return "no verdict yet" if rate is None else f"{rate:.0%} merged"


def _per_merged(dollars: float | None) -> str:
    return "no PR merged yet" if dollars is None else f"{format_usd(round(dollars * MICRO))} per merged PR"


def headline(figures: Mapping[str, Any]) -> str:
    """``12 merged of 19, $0.41 per merged PR``: what a group of PRs came to."""
    total = figures["prs_merged"] + figures["prs_closed_unmerged"] + figures["prs_open"]
    return f"{figures['prs_merged']} merged of {total}, {_per_merged(figures['cost_per_merged_pr_usd'])}"


def month_headline(ledger: Ledger, month: str) -> str:
    """The recap's line for the PRs opened in ``month`` ("" when there were none)."""
    group = outcomes.by_month(outcomes.on_record(ledger)).get(month)
    return headline(tally_json(group)) if group is not None else ""


def render(data: Mapping[str, Any]) -> list[str]:
    """The `status` lines: totals, then one line per model pair, kind and experiment arm."""
    total = data["prs_merged"] + data["prs_closed_unmerged"] + data["prs_open"]
    if not total:
        return []
    lines = [
        f"pull requests on record: {data['prs_merged']} merged, {data['prs_closed_unmerged']} closed unmerged, "
        f"{data['prs_open']} open ({_rate(data['merge_rate'])}); {_per_merged(data['cost_per_merged_pr_usd'])}"
        + ("" if data["outcomes"]["median_hours_to_merge"] is None
           else f"; median {data['outcomes']['median_hours_to_merge']:g} h to merge")
    ]
    for title, key in (("by model (analysis × code)", "by_model"), ("by kind", "by_kind")):
        lines.append(f"  {title}:")
        lines += [f"    {name}: {_group(group)}" for name, group in data[key].items()]
    arms = data["outcomes"]["experiment"]["by_arm"]
    if arms:
        lines.append("  experiment (models.experiment), side by side:")
        lines += [f"    {arm}: {_group(group)}" for arm, group in arms.items()]
    return lines


def _group(group: Mapping[str, Any]) -> str:
    decided = group["prs_merged"] + group["prs_closed_unmerged"]
    verdicts = f"{_rate(group['merge_rate'])} of {plural(decided, 'decided PR')}" if decided else "none decided yet"
    return f"{headline(group)} ({verdicts}, {group['prs_open']} open)"
