"""Overlapping runs: the cap holds when two runs race, because money is reserved on the ledger
branch, with compare-and-swap, before the first paid call.

The protocol (``Reserver``):

1. Fetch the ledger branch and read its ledger; merge in what this run already knows.
2. One task, one pull request: stop (exit 0, ``duplicate``) when another run's unexpired
   reservation claims the same task, or a run this one did not know about has opened a PR for it.
3. ``available = budget - recorded spend of other runs - other runs' unexpired reservations``, for
   every budget window (the month, and the day and ISO week when set: windows.py), the least of
   them and never more than ``budget.run_usd``. Stop for budget (exit 0) when the run's worst case
   exceeds the run cap, or the first call cannot fit in a window; otherwise hold
   ``min(estimate of the run's worst case, available)`` until ``now + ledger.reservation_minutes``.
4. Commit that ledger on top of the fetched tip and push *without force*: git refuses the push
   when the branch moved meanwhile (another run reserved or settled), and the loop starts again
   at 1 with what is there now (``RESERVE_ATTEMPTS`` times).

Every paid call must then fit in what the run holds (``cover``): a call that does not, or that
could outlive the reservation, first extends it the same way. The ledger commit at the end of
the run settles the reservation (``settle``): the run's record replaces it. A run killed before
settling leaves its reservation until it expires, so it cannot block the month.

Guarantee: all runs of this version that share a ledger branch together never record more than
the budget. Limits (docs/COST-TRACKING.md): clocks must agree to within the margin of
``CALL_WINDOW``; a call may not outlive the job by more than that; runs of older versions or
runs on other ledger branches do not reserve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.config import Config
from ..core.errors import PolicyStop, ProtectedBranchError
from ..core.prices import Usage, format_usd
from ..repo import gitops
from . import budget, windows
from . import ledger as ledger_module
from .ledger import TASK_TEXT_KEPT, TIME_FORMAT, Ledger, Reservation
from .ledger_source import RESCUE_BRANCH

# Pushes per reservation: with N runs racing, each round lets at least one of them through.
RESERVE_ATTEMPTS = 12
# The longest one paid call can take: providers.py's 120 s timeout over five attempts, plus the
# SDK's back-off. A call is started only when the reservation outlives it by this much
# (config.MIN_RESERVATION_MINUTES keeps every reservation longer than this).
CALL_WINDOW = dt.timedelta(minutes=12)


def estimate(config: Config, prompt_overhead_tokens: int) -> tuple[int, int]:
    """(worst case of a whole run, worst case of its first call) in micro-dollars, from the
    config alone: the analysis at a full context, the code call and its one repair request."""
    cost = budget.run_cost(
        config.price(config.analysis_model), config.price(config.code_model), config.output_cap(config.analysis_model),
        config.output_cap(config.code_model), analysis=Usage(input_tokens=config.context_max_tokens + prompt_overhead_tokens),
        code=Usage(input_tokens=config.code_max_input_tokens),  # the code prompt is built within this bound (coding.py)
    )
    first = config.price(config.analysis_model).worst_case_micro_usd(0, config.output_cap(config.analysis_model))
    return cost.analysis_worst + 2 * cost.code_worst, first


@dataclass
class Reserver:
    """One run's reservation: made before its first paid call, extended when a call needs more,
    settled by the run's ledger commit. ``now`` is the current UTC time (a parameter for tests)."""

    repo: Path
    config: Config
    env: Mapping[str, str]
    run_id: str
    base: Ledger  # the ledger the run started from: runs not in it appeared while it ran
    now: Callable[[], dt.datetime]
    held: Reservation | None = None
    branch: str | None = None

    def reserve(self, known: Ledger, task: str, wanted: int, needed: int) -> None:
        """Hold up to ``wanted`` micro-dollars (at least ``needed``) for the run and claim ``task``.

        Raises BudgetStop or PolicyStop("duplicate") before any money is spent; GitError when the
        branch cannot be written.
        """
        self._swap(known, task, wanted, needed, claim=True)

    def cover(self, known: Ledger, task: str, run_spent: int, worst: int) -> None:
        """Make sure the reservation covers ``run_spent + worst`` and outlives the next call
        (a flow that made no reservation yet gets one here, without claiming ``task``)."""
        needed = run_spent + worst
        held = self.held
        if held is not None and needed <= held.micro_usd and held.expires_at >= _stamp(self.now() + CALL_WINDOW):
            return
        wanted = max(needed, held.micro_usd if held is not None else 0)
        self._swap(known, held.task if held is not None else task, wanted, needed, claim=False)

    def settle(self, ledger: Ledger) -> Ledger:
        """The ledger to commit at the end of the run: this run's record, without its reservation."""
        return ledger.without_reservation(self.run_id)

    # --- the compare-and-swap ----------------------------------------------------------------

    def _swap(self, known: Ledger, task: str, wanted: int, needed: int, *, claim: bool) -> None:
        default = gitops.remote_default_branch(self.repo, self.env)
        target = self.branch or self.config.ledger_branch or default
        granted: list[Reservation] = []

        def render(remote: bytes | None) -> bytes:
            label = f"{target}:{self.config.ledger_path}"
            theirs = known if remote is None else ledger_module.from_text(remote.decode("utf-8"), label)
            view = ledger_module.merge(self.base, known, theirs)
            reservation = self._grant(view, task, wanted, needed, claim=claim)
            granted.append(reservation)
            now = self.now()
            others = tuple(r for r in view.reservations if r.run_id != self.run_id and r.live(now))
            return ledger_module.to_text(replace(view, reservations=(*others, reservation))).encode("utf-8")

        def push(branch: str) -> None:
            gitops.commit_file_with_retry(
                self.repo, branch, self.config.ledger_path, render,
                f"ai-orchestration: reserve up to {format_usd(wanted, 4)} for run {self.run_id}",
                attempts=RESERVE_ATTEMPTS, env=self.env, create_branch_from=default if branch != default else None,
            )

        try:
            push(target)
        except ProtectedBranchError:  # the ledger's commit will go to the rescue branch too
            target = RESCUE_BRANCH
            push(target)
        self.branch, self.held = target, granted[-1]

    def _grant(self, view: Ledger, task: str, wanted: int, needed: int, *, claim: bool) -> Reservation:
        now = self.now()
        if claim:
            self._check_claim(view, task, now)
            windows.check_run_cap(self.config, wanted)  # the run's worst case, before any call
        available = windows.available(self.config, view, now, self.run_id, needed)
        expires = now + dt.timedelta(minutes=self.config.reservation_minutes)
        return Reservation(self.run_id, task, min(wanted, available), _stamp(expires))

    def _check_claim(self, view: Ledger, task: str, now: dt.datetime) -> None:
        """One task, one pull request, even when two runs picked the same task at once."""
        kept = task[:TASK_TEXT_KEPT]
        for other in view.reservations:
            if other.run_id != self.run_id and other.live(now) and other.task[:TASK_TEXT_KEPT] == kept:
                raise PolicyStop(
                    f"Stopping before spending: run {other.run_id} is already working on '{task}' "
                    f"(reserved until {other.expires_at}).", "duplicate",
                )
        seen = {run.id for run in self.base.runs}
        for run in view.runs:
            if run.id not in seen and run.pr_url and run.task[:TASK_TEXT_KEPT] == kept:
                raise PolicyStop(
                    f"Stopping before spending: run {run.id} opened {run.pr_url} for '{task}' after this run started.",
                    "duplicate",
                )


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)
