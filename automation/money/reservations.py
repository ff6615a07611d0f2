"""Overlapping runs: the cap holds when runs race, are killed or outlive their reservation,
because money is reserved on the ledger branch, with compare-and-swap, before every paid call.

The protocol (``Reserver``):

1. Fetch the ledger branch and read its ledger; merge in what this run already knows. Book
   every expired reservation whose run never settled as spent (``Ledger.book_expired``).
2. One task, one pull request: stop (exit 0, ``duplicate``) when another run's live
   reservation claims the same task, or a run this one did not know about has opened a PR for it.
3. ``available = budget - recorded spend of other runs - other runs' live reservations``, for
   every budget window (the month, and the day and ISO week when set: windows.py), the least of
   them and never more than ``budget.run_usd``. Stop for budget (exit 0) when the run's worst case
   exceeds the run cap, or what is needed cannot fit in a window; otherwise hold
   ``min(what the run wants, available)`` until ``now + ledger.reservation_minutes``, never past
   the run's deadline plus the clock skew allowed.
4. Commit that ledger on top of the fetched tip and push *without force*: git refuses the push
   when the branch moved meanwhile (another run reserved or settled), and the loop starts again
   at 1 with what is there now (``RESERVE_ATTEMPTS`` times).

``reserve`` claims the task before the run's first paid call. ``cover`` runs before *every*
paid attempt: it writes the run's calls so far and the attempt about to start (``in_flight``,
at its worst case) with a reservation that holds them all. ``settle``, the ledger commit at the
end of the run, puts the run's record in the reservation's place.

Guarantee (docs/COST-TRACKING.md): runs of this version that share a ledger branch together
never spend more than the budget. Every paid attempt starts only after a compare-and-swap
found room for it beside every other run's record and live reservation, and its worst case is
on the branch before it starts; a run that never settles (killed, its runner lost, its push
refused everywhere) is booked, once its reservation expires, at its calls plus that one. So
expiry, whether early (a clock ahead) or late, never frees money that may have been spent.

Any permanent refusal of a push (branch protection, a ruleset, a pre-receive hook, push
protection) sends the ledger to the rescue branch, which every run reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.config import CLOCK_SKEW_MINUTES, Config
from ..core.errors import AutomationError, GitError, LedgerError, PolicyStop, PushRefusedError
from ..core.prices import format_usd
from ..repo import gitops
from . import windows
from . import ledger as ledger_module
from .ledger import BATCH_HOLD, TASK_TEXT_KEPT, UNSETTLED, CallRecord, Ledger, Reservation
from . import ledger_source
from .ledger_source import RESCUE_BRANCH, booked_note

# Pushes per reservation: with N runs racing, each round lets at least one of them through.
RESERVE_ATTEMPTS = 12
# Between attempts, "full jitter" (Brooker, "Exponential Backoff And Jitter", AWS Architecture
# Blog, 2015): a uniform wait up to min(cap, base x 2^attempt) seconds, so runs that collided
# (many repositories' crons in the same minute on one shared ledger) spread out.
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0


def backoff_seconds(attempt: int, draw: float) -> float:
    """Seconds to wait before retry ``attempt`` (from 0); ``draw`` is uniform in [0, 1)."""
    return draw * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)


@dataclass
class Settled:
    """Where the run's ledger went: the ledger as committed there, the branch, and why the ledger's
    home branch did not take it when it went to the rescue branch instead (None when it went home)."""

    ledger: Ledger
    branch: str
    refused: AutomationError | None = None


@dataclass
class Reserver:
    """One run's reservation: made before its first paid call, renewed before every attempt,
    settled by the run's ledger commit. ``now`` is the current UTC time (a parameter for tests);
    ``deadline_at`` the run's deadline, which no reservation outlives by more than the clock skew."""

    repo: Path
    config: Config
    env: Mapping[str, str]
    run_id: str
    base: Ledger  # the ledger the run started from: runs not in it appeared while it ran
    now: Callable[[], dt.datetime]
    deadline_at: dt.datetime | None = None
    say: Callable[[str], None] = field(default=lambda line: None)
    held: Reservation | None = None
    branch: str | None = None  # where the reservation lives
    # Per branch, the ledger this run last committed there: a branch that lost the run's
    # reservation since was rewritten, and the runs this run saw there are kept.
    committed: dict[str, Ledger] = field(default_factory=dict)
    said: set[str] = field(default_factory=set)  # what ``tell`` said
    # In a ledger shared by several repositories: this repository (owner/name, on its reservations)
    # and its share of the organisation's budget (windows.Share), checked beside the organisation's.
    repository: str = ""
    share: windows.Share | None = None
    # Called with the attempt number (from 0) before a compare-and-swap tries again (backoff_seconds).
    pause: Callable[[int], None] | None = None
    # The batch reservation (``hold_batch``) whose result this run books: ``reserve`` removes it
    # in the same commit that claims the task, or stops when another run already did.
    collects: str | None = None

    def reserve(self, known: Ledger, task: str, wanted: int, needed: int) -> None:
        """Hold up to ``wanted`` micro-dollars (at least ``needed``) for the run and claim ``task``.

        Raises BudgetStop or PolicyStop("duplicate") before any money is spent; GitError when
        neither the ledger branch nor the rescue branch can be written.
        """
        self._swap(known, task, wanted, needed, claim=True, in_flight=None)

    def cover(self, known: Ledger, task: str, in_flight: CallRecord) -> None:
        """Before a paid attempt: write the run's record so far (from ``known``) and ``in_flight``
        (the attempt at its worst case) to the branch, holding at least their sum (a flow that
        made no reservation yet gets one here, without claiming ``task``). Raises BudgetStop when
        that does not fit beside the other runs."""
        recorded = known.run(self.run_id)
        needed = (recorded.cost_micro_usd if recorded is not None else 0) + in_flight.cost_micro_usd
        held = self.held
        wanted = max(needed, held.micro_usd if held is not None else 0)
        self._swap(known, held.task if held is not None else task, wanted, needed, claim=False, in_flight=in_flight)

    def hold_batch(self, known: Ledger, key: str, task: str, in_flight: CallRecord, *, replacing: str | None = None) -> None:
        """Hold ``in_flight`` (a batch request at its batch worst case, outcome ``batch_pending``)
        on the branch as a reservation of its own, ``key``, until the provider must have ended the
        batch (``BATCH_HOLD``): before it is submitted, or, ``replacing`` that one, under the id the
        provider gave it. Until a run collects it (``collects``) every run counts it as spent; one
        never collected is booked at that worst case when it expires. Raises BudgetStop when it
        does not fit beside the other runs."""
        def build(view: Ledger) -> Ledger:
            now = self.now()
            if replacing is None:
                windows.available(self.config, view, now, self.run_id, in_flight.cost_micro_usd)
            held = Reservation(key, task, in_flight.cost_micro_usd, ledger_module.stamp(now + BATCH_HOLD), in_flight)
            kept = view.without_reservation(replacing) if replacing else view
            return replace(kept, reservations=(*kept.without_reservation(key).reservations, held))

        default = gitops.remote_default_branch(self.repo, self.env)
        self._commit(self.branch or self.config.ledger_branch or default, known, build,
                     f"ai-orchestration: hold {in_flight.step} batch request {key} for run {self.run_id}")

    def settle(self, known: Ledger, finish: Callable[[Ledger], Ledger], message: str) -> Settled:
        """Commit the run's record (from ``known``) in place of its reservation, to the ledger's
        home branch, else, refused there, to the rescue branch. ``finish(view)`` makes the ledger
        to commit from the merged view (the run's alerts are decided on it); a batch hold the run
        booked (``collects``) goes with it, when no claim took it off before. Raises GitError
        when both refuse: the run's reservation, with its calls up to the last one in flight, is
        then what later runs book once it expires."""
        default = gitops.remote_default_branch(self.repo, self.env)
        home = self.config.ledger_branch or default

        def build(view: Ledger) -> Ledger:
            settled = view.without_reservation(self.run_id)
            return finish(settled.without_reservation(self.collects) if self.collects else settled)

        return self._commit(home, known, build, message)

    # --- the compare-and-swap ----------------------------------------------------------------

    def _swap(self, known: Ledger, task: str, wanted: int, needed: int, *, claim: bool, in_flight: CallRecord | None) -> None:
        default = gitops.remote_default_branch(self.repo, self.env)
        granted: list[Reservation] = []

        def build(view: Ledger) -> Ledger:
            if claim and self.collects:  # the batch request this run books: taken off the branch with the claim
                if not any(r.run_id == self.collects for r in view.reservations):
                    raise PolicyStop(f"Stopping: another run has already collected {self.collects}.", "duplicate")
                view = view.without_reservation(self.collects)
            reservation = self._grant(view, task, wanted, needed, claim=claim, in_flight=in_flight)
            granted.append(reservation)
            return replace(view, reservations=(*view.without_reservation(self.run_id).reservations, reservation))

        verb = f"reserve up to {format_usd(wanted, 4)}" if in_flight is None else f"{in_flight.step} call to {in_flight.model}"
        settled = self._commit(self.branch or self.config.ledger_branch or default, known, build,
                               f"ai-orchestration: {verb} for run {self.run_id}")
        self.branch, self.held = settled.branch, granted[-1]

    def _commit(self, target: str, known: Ledger, build: Callable[[Ledger], Ledger], message: str) -> Settled:
        """``build(view)`` committed on ``target`` by compare-and-swap, else (refused for good)
        on the rescue branch (also when the ledger there no longer parses: it is never
        overwritten); the ledger as committed and where."""
        default = gitops.remote_default_branch(self.repo, self.env)
        written: dict[str, Ledger] = {}

        def push(branch: str) -> None:
            def render(remote: bytes | None) -> bytes:
                written[branch] = build(self._view(branch, known, remote))
                return ledger_module.to_text(written[branch]).encode("utf-8")

            gitops.commit_file_with_retry(
                self.repo, branch, self.config.ledger_path, render, message, attempts=RESERVE_ATTEMPTS, env=self.env,
                create_branch_from=default if branch != default else None, pause=self.pause,
            )
            self.committed[branch] = written[branch]

        try:
            push(target)
            return Settled(written[target], target)
        except (PushRefusedError, LedgerError) as refused:  # refused, or a ledger there that no longer parses
            if target == RESCUE_BRANCH:
                raise
            try:
                push(RESCUE_BRANCH)
            except GitError as also:
                raise GitError(
                    f"{refused.message}; and the rescue branch {RESCUE_BRANCH} refused it too: {also.message}"
                ) from None
            return Settled(written[RESCUE_BRANCH], RESCUE_BRANCH, refused)

    def _view(self, branch: str, known: Ledger, remote: bytes | None) -> Ledger:
        """The branch's ledger merged with what this run knows, expired reservations booked."""
        label = f"{branch}:{self.config.ledger_path}"
        if remote is None:
            theirs = known
        else:
            try:
                theirs = ledger_module.from_text(remote.decode("utf-8"), label)
            except UnicodeDecodeError:
                raise LedgerError(f"{label}: not UTF-8 text; restore it from git history") from None
        for warning in theirs.warnings:
            self.tell(f"warning: {warning}")
        view = ledger_module.merge(self.base, known, self._unless_rewritten(branch, theirs))
        view, booked = ledger_source.book_expired(view, self.config, self.now(), self.run_id)
        for run in booked:
            self.tell(f"note: {booked_note(run)}")
        return view

    def _unless_rewritten(self, branch: str, theirs: Ledger) -> Ledger:
        """``theirs``, or, when the branch lost this run's reservation since the run committed
        there (a force-push or reset), ``theirs`` with every run and reservation this run saw there
        put back: recorded conservatively, with a warning."""
        last = self.committed.get(branch)
        mine = last.run(self.run_id) if last is not None else None
        if last is None or not any(r.run_id == self.run_id for r in last.reservations):
            return theirs
        if any(r.run_id == self.run_id for r in theirs.reservations):
            return theirs
        record = theirs.run(self.run_id)
        if record is not None and record.outcome == UNSETTLED:
            self.tell(
                f"warning: another run took this run's reservation on {branch} for expired (its clock ahead of this "
                f"runner's?) and booked this run's calls so far at their worst case; this run's own record replaces that"
            )
            return theirs
        self.tell(
            f"warning: {branch} was rewritten while this run was working: its reservation"
            f"{'' if mine is None else ' and calls'} are gone from the ledger there (a force-push or a reset?). Other runs "
            f"may have spent the money it held; this run records its spend in full and keeps every run it saw on "
            f"{branch}; check the month with `python -m automation status`"
        )
        return ledger_module.merge(None, theirs, last)

    def tell(self, line: str) -> None:
        """Say ``line``, once per run."""
        if line not in self.said:
            self.said.add(line)
            self.say(line)

    def _grant(
        self, view: Ledger, task: str, wanted: int, needed: int, *, claim: bool, in_flight: CallRecord | None
    ) -> Reservation:
        now = self.now()
        if claim:
            self._check_claim(view, task, now)
            windows.check_run_cap(self.config, wanted)  # the run's worst case, before any call
        available = windows.available(self.config, view, now, self.run_id, needed, self.share)
        expires = now + dt.timedelta(minutes=self.config.reservation_minutes)
        if self.deadline_at is not None:  # never longer than the run can last
            expires = min(expires, self.deadline_at + dt.timedelta(minutes=CLOCK_SKEW_MINUTES))
        return Reservation(self.run_id, task, min(wanted, available), ledger_module.stamp(expires), in_flight,
                           repository=self.repository)

    def _check_claim(self, view: Ledger, task: str, now: dt.datetime) -> None:
        """One task, one pull request, even when two runs picked the same task at once (in a
        shared ledger, two runs of this repository: another repository's task is another task)."""
        kept = task[:TASK_TEXT_KEPT]
        view = view.of_repository(self.repository, self.repository) if self.repository else view
        for other in view.reservations:
            if other.run_id != self.run_id and other.live(now, self.config.reservation_horizon) and other.task[:TASK_TEXT_KEPT] == kept:
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
