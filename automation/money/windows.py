"""Budget windows: the UTC day, the ISO week and the month, each with its own cap, and the run cap.

``budget.monthly_usd`` always applies; ``budget.daily_usd``, ``budget.weekly_usd`` and
``budget.run_usd`` only when set. A window's spend is the sum of the ledger's run rows whose
``started_at`` falls in it (a run is counted whole in the window it started in). The month's
ledger's ``runs`` are the month's, so the ISO week the month starts in also counts the closed
month's runs of that week from ``closed_runs`` (kept for the first seven days of a month: the
longest such a week can reach into it).

Every reservation (reservations.py) checks all of them: what a run may hold is the least that
any window has left, and never more than the run cap. In a ledger shared by several
repositories (``ledger.repository``) the windows are the organisation's, over every
repository's runs, and a repository's ``Share`` is one more month window over its own runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from ..core.config import Config
from ..core.prices import format_usd
from .budget import BudgetStop, month_bounds
from .ledger import TIME_FORMAT, Ledger

DAY, WEEK, MONTH = "day", "week", "month"
CONFIG_KEYS = {DAY: "budget.daily_usd", WEEK: "budget.weekly_usd", MONTH: "budget.monthly_usd"}
RUN_KEY = "budget.run_usd"
SHARE_KEY_PREFIX = "budget.repositories."
TITLES = {DAY: "today", WEEK: "this week", MONTH: "this month"}


@dataclass(frozen=True)
class Window:
    """One budget window around a moment: ``spent_micro_usd`` of ``cap_micro_usd`` recorded in
    ``[start, reopens_at)`` (UTC); ``label`` names it (``2026-12-04``, ``2026-W49``, ``2026-12``)."""

    name: str  # DAY, WEEK or MONTH
    label: str
    cap_micro_usd: int
    spent_micro_usd: int
    start: dt.datetime
    reopens_at: dt.datetime
    scope: str = ""  # whose spend, when not the whole ledger's: a repository in a shared ledger
    config_key: str = ""  # the setting a stop names, when not CONFIG_KEYS[name]

    @property
    def key(self) -> str:
        return self.config_key or CONFIG_KEYS[self.name]

    @property
    def is_share(self) -> bool:
        """A repository's share of a shared ledger's budget (``Share.window``), not a window of the whole ledger."""
        return self.config_key.startswith(SHARE_KEY_PREFIX)

    @property
    def left_micro_usd(self) -> int:
        return max(0, self.cap_micro_usd - self.spent_micro_usd)

    def describe(self) -> str:
        """``today (2026-12-04: $1.20 spent of $2.00)``: the window and where it stands."""
        whose = f" for {self.scope}" if self.scope else ""
        return (f"{TITLES[self.name]}{whose} ({self.label}: {format_usd(self.spent_micro_usd)} spent of "
                f"{format_usd(self.cap_micro_usd)})")


@dataclass(frozen=True)
class Share:
    """This repository in a shared ledger: ``repository`` (owner/name), the shared ledger's
    ``ledger.repository`` (for messages) and its monthly share in micro-dollars from the shared
    ledger's ``budget.repositories`` (None: no share of its own, only the organisation's cap)."""

    repository: str
    ledger: str
    monthly_micro_usd: int | None

    def organisation(self, window: Window) -> Window:
        """An organisation window (every repository's runs), named as the shared ledger's setting."""
        return replace(window, scope=f"the organisation ({self.ledger})", config_key=f"{window.key} of {self.ledger}")

    def window(self, ledger: Ledger, now: dt.datetime, excluding: str = "") -> Window | None:
        """The month window over this repository's runs, when it has a share."""
        if self.monthly_micro_usd is None:
            return None
        own = ledger.of_repository(self.repository, self.repository)
        label, start, end = bounds(MONTH, now)
        spent = sum(run.cost_micro_usd for run in own.runs if run.id != excluding)
        return Window(MONTH, label, self.monthly_micro_usd, spent, start, end, scope=self.repository,
                      config_key=f"{SHARE_KEY_PREFIX}{self.repository}.monthly_usd of {self.ledger}")


class WindowStop(BudgetStop):
    """A policy stop: the run (or its next call) does not fit in a window, or in the run cap."""

    def __init__(self, needed_micro_usd: int, remaining_micro_usd: int, window: Window | None) -> None:
        if window is None:  # the run cap: remaining_micro_usd is budget.run_usd
            message = (
                f"budget stop ({RUN_KEY}): this run may cost up to {format_usd(needed_micro_usd, 6)}, more than "
                f"the {format_usd(remaining_micro_usd)} one run may spend; raise {RUN_KEY}, or lower the worst case "
                "(models.analysis_max_tokens, models.code_max_tokens, context.max_tokens)"
            )
        else:
            message = (
                f"budget stop ({window.key}): the next call may cost up to {format_usd(needed_micro_usd, 6)} but only "
                f"{format_usd(remaining_micro_usd, 6)} is left {window.describe()}; "
                f"the window reopens at {window.reopens_at.strftime(TIME_FORMAT)}"
            )
        super().__init__(needed_micro_usd, remaining_micro_usd, message)
        self.window = window


def bounds(name: str, now: dt.datetime) -> tuple[str, dt.datetime, dt.datetime]:
    """(label, start, end) of the UTC day, ISO week (Monday to Monday) or month holding ``now``."""
    moment = now.astimezone(dt.timezone.utc)
    midnight = dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.timezone.utc)
    if name == DAY:
        return midnight.date().isoformat(), midnight, midnight + dt.timedelta(days=1)
    if name == WEEK:
        year, week, weekday = moment.isocalendar()
        start = midnight - dt.timedelta(days=weekday - 1)
        return f"{year}-W{week:02d}", start, start + dt.timedelta(days=7)
    month = moment.strftime("%Y-%m")
    start, end = month_bounds(month)
    return month, start, end


def caps(config: Config) -> dict[str, int]:
    """Window name -> cap in micro-dollars, for the windows the config sets (the month always)."""
    configured = {DAY: config.daily_budget_micro_usd, WEEK: config.weekly_budget_micro_usd}
    return {**{name: cap for name, cap in configured.items() if cap is not None}, MONTH: config.monthly_budget_micro_usd}


def spent_between(ledger: Ledger, start: dt.datetime, end: dt.datetime, excluding: str = "") -> int:
    """Micro-dollars of the runs (other than ``excluding``) that started in ``[start, end)``: this
    month's, and the closed month's while the ledger keeps them (only a week reaches back that far)."""
    first, last = start.strftime(TIME_FORMAT), end.strftime(TIME_FORMAT)
    return sum(run.cost_micro_usd for run in (*ledger.runs, *ledger.closed_runs)
               if run.id != excluding and first <= run.started_at < last)


def current(config: Config, ledger: Ledger, now: dt.datetime, excluding: str = "") -> list[Window]:
    """The day, week and month around ``now`` that have a cap, tightest reopening first.

    The month is the ledger's month: its spend is every run the ledger holds.
    """
    windows = []
    for name, cap in caps(config).items():
        label, start, end = bounds(name, now)
        if name == MONTH:
            spent = sum(run.cost_micro_usd for run in ledger.runs if run.id != excluding)
        else:
            spent = spent_between(ledger, start, end, excluding)
        windows.append(Window(name, label, cap, spent, start, end))
    return windows


def available(config: Config, ledger: Ledger, now: dt.datetime, run_id: str, needed: int, share: Share | None = None) -> int:
    """What run ``run_id`` may hold now: the least any window has left after other runs' spend and
    unexpired reservations, never more than ``budget.run_usd``; with a ``share``, within the
    repository's share too (its own runs and reservations).

    Raises WindowStop naming the window (or the run cap) when ``needed`` micro-dollars do not fit.
    """
    horizon = config.reservation_horizon
    held = ledger.reserved_micro_usd(now, horizon, run_id)
    room = [(max(0, window.cap_micro_usd - window.spent_micro_usd - held), window if share is None else share.organisation(window))
            for window in current(config, ledger, now, excluding=run_id)]
    own = share.window(ledger, now, run_id) if share is not None else None
    if share is not None and own is not None:
        held_own = ledger.of_repository(share.repository, share.repository).reserved_micro_usd(now, horizon, run_id)
        room.append((max(0, own.cap_micro_usd - own.spent_micro_usd - held_own), own))
    left, window = min(room, key=lambda pair: pair[0])  # the first (tightest reopening) on a tie
    run_cap = config.run_budget_micro_usd
    if run_cap is not None and needed > run_cap:
        raise WindowStop(needed, run_cap, None)
    if needed > left:
        raise WindowStop(needed, left, window)
    return left if run_cap is None else min(left, run_cap)


def check_run_cap(config: Config, worst_micro_usd: int) -> None:
    """Raises WindowStop when a run's worst case exceeds ``budget.run_usd``: before any call."""
    run_cap = config.run_budget_micro_usd
    if run_cap is not None and worst_micro_usd > run_cap:
        raise WindowStop(worst_micro_usd, run_cap, None)


def crossed(config: Config, ledger: Ledger, now: dt.datetime) -> list[Window]:
    """Windows whose spend has reached ``budget.warn_at_percent`` of their cap and that were not yet
    announced (``notified.warned`` holds ``<name>:<label>`` of those that were)."""
    warned = set(ledger.notified.get("warned", []))
    return [
        window for window in current(config, ledger, now)
        if window.spent_micro_usd * 100 >= window.cap_micro_usd * config.warn_at_percent
        and warn_flag(window) not in warned
    ]


def warn_flag(window: Window) -> str:
    """How the ledger's ``notified`` lists remember a window (a share's names its repository)."""
    return f"{window.name}:{window.label}" + (f":{window.scope}" if window.is_share else "")


def check_start(
    config: Config, ledger: Ledger, now: dt.datetime, run_id: str, run_worst: int, first_call_worst: int,
    share: Share | None = None,
) -> None:
    """Before a run does anything: WindowStop when its worst case exceeds the run cap, or its
    first call fits in no window (the reservation checks both again, on the ledger branch)."""
    check_run_cap(config, run_worst)
    available(config, ledger, now, run_id, first_call_worst, share)


def runs_a_month(config: Config, run_micro_usd: int, month_days: int) -> tuple[int, str]:
    """(runs of ``run_micro_usd`` each that fit a month of ``month_days`` days in every window,
    the config key of the window that allows the fewest): ``costs`` sizes its advice on it."""
    per = max(1, run_micro_usd)
    limits = {MONTH: config.monthly_budget_micro_usd // per}
    if config.daily_budget_micro_usd is not None:
        limits[DAY] = config.daily_budget_micro_usd // per * month_days
    if config.weekly_budget_micro_usd is not None:  # runs spread evenly: a week's share of the month
        limits[WEEK] = config.weekly_budget_micro_usd // per * month_days // 7
    name = min(limits, key=lambda window: (limits[window], window != MONTH))
    return limits[name], CONFIG_KEYS[name]
