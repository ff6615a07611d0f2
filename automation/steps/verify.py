"""The verify step: the repository's own checks (``verify.commands``) run on the untouched tree,
then on the edited one, sandboxed; failures the edit introduced go back to the code model.

``baseline`` runs before any paid call (so a missing sandbox stops the run before it spends):
it finds the sandbox and keeps each command's failures on the untouched tree, once per commit
in a run, or takes them from an earlier run's ledger record for the same commit and commands
(a follow-up on the task's pull request). ``checked`` runs after the code step: each pass runs
every command on a fresh copy of the edited tree; a command's failures that the untouched tree
had too are pre-existing, reported and never sent for repair. New failures (their names, the
assertion lines, the output's end; secrets masked) go to the code model in one repair request
built like the edit repair (it never repeats the first reply: it shows the edit as a diff), at
most ``verify.max_repairs`` times, each reserved and booked like any call. The run's deadline
bounds every pass and keeps the ledger commit its margin. What is left decides the pull
request: ``verify.on_failure`` draft, skip (ChecksFailedError: no PR, the task counts toward
parking) or open. The result goes on the session (PR body, job summary, Discord) and the
run's ledger record (``status``, the dashboard, metrics).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.config import DEFAULT_CONFIG_PATH, Config
from ..core.errors import ChecksFailedError, SandboxUnavailableError
from ..core.redact import redact
from ..core.wording import plural
from ..money.ledger import ChecksRecord, Ledger
from ..repo import checks, edits, github, gitops, sandbox
from ..repo.checks import FAILED, Verdict, Verification
from ..repo.context import _fence_for
from . import followups
from .session import Session

EXCERPT_MAX_CHARS = 6_000  # per failing command, in the repair request and the PR body
NAMES_SHOWN = 20
ASSERTION_LINES_SHOWN = 30
BASELINE_MARKS_KEPT = 50  # an untouched tree with more failures than this is not kept for reuse
MIN_REPAIR_SECONDS = 30.0  # beyond the last pass's duration: a repair call and another pass must fit
# Lines that say what went wrong: pytest's "E " lines, assertions, errors, expected/received.
_ASSERTION = re.compile(r"^E\s|assert|\w*Error\b|\berror\b|\bexpected\b|\breceived\b|panicked at|\bFAIL", re.I)
Ask = Callable[[list[dict[str, Any]]], str]


def fingerprint(commands: Sequence[str]) -> str:
    """Twelve hex digits naming the command list, so a reused result is known to come from the same commands."""
    return hashlib.sha256("\n".join(commands).encode("utf-8")).hexdigest()[:12]


def baseline(session: Session, root: Path, ref: str = "HEAD") -> None:
    """The checks on the untouched tree ``ref`` of ``root`` (nothing without ``verify.commands``).

    Raises SandboxUnavailableError when ``verify.sandbox`` is required and none can be had here.
    """
    config, state = session.config, session.checks
    if not config.verify_commands:
        return
    _sandbox(session)
    commit = gitops.resolve(root, ref, session.env)
    state.base = commit
    state.files = gitops.content_id(root, commit, session.env, leaving_out=config.ledger_path)
    if commit in state.baselines:
        return
    reused = _earlier(session.ledger, state.files, fingerprint(config.verify_commands))
    if reused is not None:
        run_id, marks = reused
        state.baselines[commit] = marks
        session.say(f"checks: run {run_id} checked the same files as the untouched tree {commit[:7]}; reusing what it found")
        return
    outcomes = _pass(session, commit, {}, "untouched tree")
    state.baselines[commit] = {outcome.command: checks.marks(outcome) for outcome in outcomes}
    for outcome in outcomes:
        if not outcome.passed:
            session.say(f"checks: `{outcome.command}` already fails on the untouched tree "
                        f"({plural(len(checks.marks(outcome)), 'failure')}); that is not blamed on the edit")


def checked(session: Session, draft: edits.Draft, ask: Ask, messages: list[dict[str, Any]], root: Path) -> edits.EditPlan:
    """The draft's edits once the checks have had their say: repaired up to ``verify.max_repairs``
    times. Raises ChecksFailedError when new failures remain and ``verify.on_failure`` is skip."""
    plan = draft.plan()
    config, state = session.config, session.checks
    if not config.verify_commands:
        return plan
    if state.base is None:
        baseline(session, root)
    assert state.base is not None and state.sandbox is not None
    before = state.baselines[state.base]
    commit = gitops.resolve(root, "HEAD", session.env)
    repairs = 0
    while True:
        started = session.clock()
        outcomes = _pass(session, commit, edits.changes(plan), "edited tree" + (f" after repair {repairs}" if repairs else ""))
        verdicts = tuple(_verdict(session, before.get(outcome.command, ()), outcome) for outcome in outcomes)
        failing = [verdict for verdict in verdicts if verdict.status == FAILED]
        if not failing or repairs >= config.verify_max_repairs:
            break
        if session.deadline.left() < session.clock() - started + MIN_REPAIR_SECONDS:
            session.say("checks: no repair: the run's deadline leaves no time for a repair and another pass")
            break
        repairs += 1
        session.say(f"checks: new failures in {', '.join(f'`{v.command}`' for v in failing)}; "
                    f"asking the code model for repair {repairs} of {config.verify_max_repairs}")
        problems = draft.take(ask([*messages, {"role": "user", "content": repair_prompt(failing, draft.diff())}]))
        if problems:
            session.say(f"checks: {plural(len(problems), 'problem')} in the repair; the files that applied are kept: "
                        f"{problems[0].splitlines()[0]}")
        plan = draft.plan()
    verification = Verification(verdicts, repairs, state.sandbox.name, state.base)
    state.result = verification
    session.save(replace(session.record, checks=_record(verification, state.files, before, config.verify_commands)))
    session.say(f"checks: {verification.headline()}")
    if verification.result == FAILED and config.verify_on_failure == "skip":
        first = verification.failed[0]
        raise ChecksFailedError(
            f"the checks still fail after {plural(repairs, 'repair')} (verify.on_failure is 'skip', so no pull request): "
            f"`{first.command}`: {'; '.join(first.new[:3])}"
        )
    return plan


def describe(repo: Path, config: Config, env: Mapping[str, str]) -> list[str]:
    """The dry run's lines: the checks a run would make and the sandbox it would find, or,
    without ``verify.commands``, the commands this repository suggests and how to turn them on."""
    if not config.verify_commands:
        suggested = checks.suggest(repo)
        if not suggested:
            return ["Checks: none (verify.commands is empty; no test or lint set-up found to suggest)."]
        listed = ", ".join(f'"{command}"' for command in suggested)
        return [
            "Checks: none (verify.commands is empty), so pull requests open with code nobody ran.",
            f"  For this repository: {listed}. To run them, sandboxed, before each pull request: set",
            f"  verify: {{commands: [{listed}]}} in {config.source if config.from_file else DEFAULT_CONFIG_PATH} and install what they need in a",
            "  workflow step before the bot's (see automation/README.md, \"Checks before the pull request\").",
        ]
    found = sandbox.find(env, sandbox.hidden_paths(env, repo), uid=os.getuid(), gid=os.getgid())
    lines = [
        f"Checks before the pull request: {', '.join(f'`{command}`' for command in config.verify_commands)}",
        f"  first on the untouched tree, then on the edited one; up to {config.verify_timeout_seconds:g}s a pass, "
        f"{plural(config.verify_max_repairs, 'repair')}, then a {_FAILURE_WORDS[config.verify_on_failure]}",
    ]
    if found.isolated:
        lines.append(f"  sandbox: {found.name} (no network, no secrets, read-only but for a copy of the tree)")
    elif config.verify_sandbox == "required":
        lines.append(f"  sandbox: none here ({found.missing}); verify.sandbox is 'required', so a run would stop "
                     "at the sandbox step (exit 1) before any model call")
    else:
        lines.append(f"  sandbox: none here ({found.missing}); verify.sandbox is 'best_effort': the checks would run without one")
    return lines


_FAILURE_WORDS = {"draft": "draft pull request when new failures remain", "skip": "run with no pull request when new "
                  "failures remain", "open": "pull request with the failures in its body when new failures remain"}


def _sandbox(session: Session) -> sandbox.Sandbox:
    """The sandbox, found once a run; raises SandboxUnavailableError when it is required and none works."""
    state, config = session.checks, session.config
    if state.sandbox is None:
        found = sandbox.find(session.env, _hidden(session), uid=os.getuid(), gid=os.getgid())
        if not found.isolated:
            if config.verify_sandbox == "required":
                raise SandboxUnavailableError(
                    f"verify.sandbox is 'required' but no sandbox can be had here: {found.missing}; "
                    "or set verify.sandbox: best_effort to run the checks without one"
                )
            session.say(f"warning: the checks run without a sandbox (verify.sandbox is best_effort): {found.missing}")
        state.sandbox = found
    return state.sandbox


def _hidden(session: Session) -> list[str]:
    return sandbox.hidden_paths(session.env, session.repo)


def _pass(session: Session, commit: str, changes: Mapping[str, bytes | None], what: str) -> list[sandbox.Outcome]:
    """Every command, in order, on a fresh copy of ``commit`` with ``changes``, within
    ``verify.timeout_seconds`` and the run's deadline together."""
    config = session.config
    found = _sandbox(session)
    ends = session.clock() + min(config.verify_timeout_seconds, max(0.0, session.deadline.left()))
    outcomes = []
    with sandbox.scratch(session.repo, commit, changes, session.env) as workdir:
        env = sandbox.environment(session.env, config.verify_env, workdir)
        for command in config.verify_commands:
            outcome = sandbox.run(found, command, workdir, env, _hidden(session), ends - session.clock(), clock=session.clock)
            state = "passed" if outcome.passed else "timed out" if outcome.timed_out else f"failed (exit code {outcome.exit_code})"
            session.say(f"checks ({what}): `{command}` {state} in {outcome.seconds:.1f}s")
            outcomes.append(outcome)
    return outcomes


def _verdict(session: Session, before: tuple[str, ...], outcome: sandbox.Outcome) -> Verdict:
    verdict = checks.compare(before, outcome)
    if verdict.status != FAILED:
        return verdict
    # the output is the model's code speaking: no marker in it may pass for one of the bot's own
    return replace(verdict, excerpt=github.neutralise_markers(excerpt(verdict, outcome.output, session.secrets)))


def excerpt(verdict: Verdict, output: str, secrets: Sequence[str]) -> str:
    """What a failed command's output says about its new failures, within EXCERPT_MAX_CHARS:
    the exit, the new failures' names, the assertion and error lines, then the error lines with
    their context and the end of the output (``followups.failure_excerpt``); secrets masked."""
    ended = "killed at the timeout" if verdict.exit_code is None else f"exit code {verdict.exit_code}"
    lines = [f"$ {verdict.command}  ({ended}, {verdict.seconds:.1f}s)", "New failures (numbers shown as #):"]
    lines += [f"- {mark}" for mark in verdict.new[:NAMES_SHOWN]]
    if len(verdict.new) > NAMES_SHOWN:
        lines.append(f"- … and {len(verdict.new) - NAMES_SHOWN} more")
    if verdict.old:
        lines.append("Failing before the change too (not this change's doing; their lines may show below):")
        lines += [f"- {mark}" for mark in verdict.old[:NAMES_SHOWN]]
    asserted = list(dict.fromkeys(line.rstrip()[:300] for line in output.splitlines() if _ASSERTION.search(line)))
    if asserted:
        lines += ["Assertion and error lines:", *asserted[:ASSERTION_LINES_SHOWN]]
    head = "\n".join(lines)
    room = max(500, EXCERPT_MAX_CHARS - len(head) - 60)
    text = f"{head}\nThe output's error lines in context, and its end:\n{followups.failure_excerpt(output, room)}"
    return redact(text, secrets)[:EXCERPT_MAX_CHARS]


def repair_prompt(failing: Sequence[Verdict], diff: str) -> str:
    """The repair request after a failed pass: each failing command's excerpt, then the edit so
    far as a diff (cut to fit), within ``edits.REPAIR_MAX_CHARS``; never the whole first reply."""
    parts = ["The repository's own checks ran on your edits and some failed. Only the failures your change "
             "introduced are shown; failures the code already had before your change are not yours to fix."]
    for verdict in failing:
        fence = _fence_for(verdict.excerpt)
        parts.append(f"\n### `{verdict.command}`\n{fence}text\n{verdict.excerpt}\n{fence}")
    ask = (
        "\nFix the code so these checks pass. Answer with SEARCH/REPLACE blocks against the files' current text "
        "(the lines of the diff above that start with a space or '+', without that first character): the path "
        "alone on a line, then a fence holding <<<<<<< SEARCH, the exact current lines, =======, the new lines, and "
        ">>>>>>> REPLACE. Do not delete or weaken a test to make it pass unless the task asks for it. Never write "
        "inside .git/ or .github/workflows/, the budget ledger, the bot's configuration or the tasks file."
    )
    room = edits.REPAIR_MAX_CHARS - sum(map(len, parts)) - len(ask) - 200
    if len(diff) > room:
        diff = diff[: max(0, room)] + f"\n… ({len(diff) - max(0, room):,} more characters of the diff cut)\n"
    fence = _fence_for(diff)
    parts.append(f"\nYour edits so far, as a diff against the files as they were:\n{fence}diff\n{diff}{fence}")
    return "\n".join(parts) + "\n" + ask


def _record(verification: Verification, files: str, before: Mapping[str, tuple[str, ...]], commands: Sequence[str]) -> ChecksRecord:
    """The run's checks as the ledger keeps them, with the untouched tree's failures when few enough to reuse."""
    failing = tuple((command, marks) for command, marks in before.items() if marks)
    kept = failing if sum(len(marks) for _, marks in failing) <= BASELINE_MARKS_KEPT else None
    return ChecksRecord(result=verification.result, repairs=verification.repairs, base=verification.base, files=files,
                        commands=fingerprint(commands), failing_on_base=kept)


def _earlier(ledger: Ledger, files: str, commands: str) -> tuple[str, dict[str, tuple[str, ...]]] | None:
    """(run id, command -> failures) of the latest run this month whose untouched tree held the
    same files and ran the same commands, and kept what failed there; None when there is none.
    Sound because the same files and the same commands give the same results (the installed
    dependencies aside: the set-up step installs the same ones each run)."""
    for run in reversed(ledger.runs):
        record = run.checks
        if record is not None and record.files == files and record.commands == commands and record.failing_on_base is not None:
            return run.id, dict(record.failing_on_base)
    return None
