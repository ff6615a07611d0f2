"""Where a run reads the month's spend from, so that it is never assumed to be $0 when it can be known.

The ledger of record is the working tree's file (no ``ledger.branch``) or the file at the tip of
``ledger.branch``. When it is missing there, the spend may still be known, and is looked for in:
the file's last version in that branch's history (deleted by a person or a bad merge), the
default branch (the ledger's home before ``ledger.branch`` was set) and the rescue branch a
protected default branch sends it to. What they hold is merged. A run starts the month at $0
only when none of them ever held a ledger (the first run), or when the user says so with
``ledger.start_fresh: YYYY-MM`` (the one explicit way to start over).

A ledger that is a symbolic link, in the working tree or as a blob of mode 120000 on a branch,
is refused (exit 2) before any paid call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from ..core.config import Config
from ..core.errors import GitError, LedgerError
from ..core.prices import format_usd
from ..core.wording import plural
from ..repo import gitops
from . import budget, estimate
from . import ledger as ledger_module
from .ledger import UNSETTLED, Ledger, RunRecord

# Where the ledger goes when a protected branch refuses it; every run merges it back in.
RESCUE_BRANCH = "ai-orchestration/ledger"


def read(repo: Path, config: Config, env: Mapping[str, str], now: dt.datetime) -> tuple[Ledger, list[str]]:
    """The ledger of record merged with the rescue branch's, expired reservations of runs that
    never settled booked as spent (``Ledger.book_expired``), and lines telling the user what was
    found: where a missing ledger's spend was, what a damaged one states beyond its runs, which
    runs were booked. Raises LedgerError (exit 2) for a linked, invalid or unknowable ledger."""
    notes: list[str] = []
    gitops.require_remote(repo, env)
    ledger_module.check_not_linked(repo / config.ledger_path, repo)  # every paid call saves the file there
    default = gitops.remote_default_branch(repo, env)
    home = config.ledger_branch or default
    if config.ledger_branch:
        tip = gitops.fetch(repo, config.ledger_branch, env, missing_ok=True)
        primary = None if tip is None else at_ref(repo, tip, config, env, config.ledger_branch)
    else:
        primary = _working_tree(repo, config, now)
        tip = gitops.fetch(repo, default, env, missing_ok=True)  # where the ledger is committed: a file, never a link
        if tip is not None:
            _refuse_link(repo, tip, config, env, default)
    if primary is None:
        primary = _recover(repo, config, env, now, home, default, notes)
    rescued = branch_ledger(repo, RESCUE_BRANCH, config, env)
    notes += [f"warning: {warning}" for found in (primary, rescued) if found is not None for warning in found.warnings]
    if rescued is not None:
        primary = rescued if primary is None else ledger_module.merge(None, primary, rescued)
    ledger, booked = book_expired(primary or ledger_module.new_ledger(now, config.monthly_budget_micro_usd), config, now)
    return ledger, notes + [f"note: {booked_note(run)}" for run in booked]


def book_expired(ledger: Ledger, config: Config, now: dt.datetime, excluding: str = "") -> tuple[Ledger, tuple[RunRecord, ...]]:
    """``Ledger.book_expired`` as configured: reservations believed up to ``config.reservation_horizon``
    ahead, each run booked at most one run's worst case (what no run of this bot reserves beyond)."""
    most = budget.run_reservation(config, estimate.PROMPT_OVERHEAD_TOKENS)[0]
    return ledger.book_expired(now, config.reservation_horizon, most, excluding)


def booked_note(run: RunRecord) -> str:
    """One line for a run ``Ledger.book_expired`` booked."""
    recorded = sum(call.outcome != UNSETTLED for call in run.calls)
    in_flight = " and what it had in flight at its worst case" if recorded < len(run.calls) else ""
    return (
        f"run {run.id} never settled: its reservation expired (the run was killed, or its runner lost?); "
        f"booked {format_usd(run.cost_micro_usd, 4)} as spent, {plural(recorded, 'recorded call')}{in_flight} "
        f"(outcome '{UNSETTLED}'), until something better is known"
    )


def _working_tree(repo: Path, config: Config, now: dt.datetime) -> Ledger | None:
    path = repo / config.ledger_path
    if not path.exists():
        return None
    return ledger_module.load(path, now, config.monthly_budget_micro_usd, root=repo)


def at_ref(repo: Path, ref: str, config: Config, env: Mapping[str, str], label: str) -> Ledger | None:
    """The ledger at a commit (None when the file is not there); a symbolic link is refused."""
    _refuse_link(repo, ref, config, env, label)
    text = gitops.remote_file(repo, ref, config.ledger_path, env)
    if text is None:
        return None
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise LedgerError(f"{label}:{config.ledger_path}: not UTF-8 text; restore it from git history") from None
    return ledger_module.from_text(decoded, f"{label}:{config.ledger_path}")


def _refuse_link(repo: Path, ref: str, config: Config, env: Mapping[str, str], label: str) -> None:
    linked = gitops.symlink_on_path(repo, ref, config.ledger_path, env)
    if linked is not None:
        raise LedgerError(
            f"{label}:{config.ledger_path}: {linked} is a symbolic link (mode 120000) on {label}; the ledger must be "
            "a regular file: replace the link with the file itself"
        )


def branch_ledger(repo: Path, branch: str, config: Config, env: Mapping[str, str]) -> Ledger | None:
    """The ledger at the tip of origin's ``branch``, or None when the branch or the file is missing."""
    tip = gitops.fetch(repo, branch, env, missing_ok=True)
    return None if tip is None else at_ref(repo, tip, config, env, branch)


def _recover(
    repo: Path, config: Config, env: Mapping[str, str], now: dt.datetime, home: str, default: str, notes: list[str]
) -> Ledger | None:
    """The spend a ledger missing from the checkout or ``home`` held: the file at the tip of
    ``home`` (a checkout older than the branch), else its last version in the branch's history,
    and the same on the default branch when the ledger moved to ``ledger.branch``. None when no
    branch's history ever held one."""
    month = ledger_module.month_of(now)
    path = config.ledger_path
    if config.ledger_start_fresh == month:
        notes.append(f"{path} is missing from {home}; starting {month} at $0 as ledger.start_fresh asks")
        return None
    found: Ledger | None = None
    for branch in dict.fromkeys((home, default)):
        try:
            version, commit = _latest(repo, config, env, branch)
        except GitError as error:
            raise LedgerError(
                f"{path}: missing from {home}, and this month's spend cannot be established from the history of "
                f"{branch} ({error.message}); restore the file, or set ledger.start_fresh: {month} to start the month at $0"
            ) from None
        if version is None:
            continue
        if commit is not None or branch != home:
            where = f"its last version from {branch} (commit {commit[:12]})" if commit else f"it from {branch}"
            notes.append(
                f"{path} is missing from {home}: read {where}, {version.month}, {format_usd(version.spent_micro_usd)} "
                f"spent; to start over instead, set ledger.start_fresh: {month}"
            )
        found = version if found is None else ledger_module.merge(None, found, version)
    return found


def _latest(repo: Path, config: Config, env: Mapping[str, str], branch: str) -> tuple[Ledger | None, str | None]:
    """The ledger at the tip of ``branch`` (commit None), else its last version in the branch's
    history and the commit that wrote it; (None, None) when the branch never held one."""
    tip = gitops.fetch(repo, branch, env, missing_ok=True)
    if tip is None:
        return None, None
    current = at_ref(repo, tip, config, env, branch)
    if current is not None:
        return current, None
    commit = gitops.last_version(repo, tip, config.ledger_path, env)
    if commit is None:
        return None, None
    return at_ref(repo, commit, config, env, f"{branch}@{commit[:12]}"), commit
