"""Follow-ups: which of the bot's open pull requests needs what, decided on plain data.

A bot PR needs a follow-up when its head commit has a failed check (and none still pending),
when a review requests changes, or when a comment mentions the bot's handle. Humans win: a
commit on the branch by anyone but the bot, or the takeover label, means the bot never pushes
there. After ``follow_ups.max_attempts`` fix-ups the PR gets the needs-human label.

Only trusted accounts (``repo/trust.py``) direct the bot: the caller says who they are, and
the requests of anyone else are ignored (:func:`untrusted` lists those not yet noted). Every
piece of outside text in the prompt is cleaned and fenced as data (``core/untrusted.py``).

What the bot already did on a PR is read back from its own reply comments, each ending in a
hidden marker ``<!-- ai-orchestration:follow-up {"answered": [...], "attempt": true} -->``;
only comments by the PR's author (the bot's login) count, and model text in them has its
markers neutralised. The ledger's follow-up runs count as attempts too, so an attempt that
failed before it could comment is not repeated for free.

No I/O here: ``followup_run.py`` gathers the data and acts on the decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import untrusted as untrusted_text
from ..core.prices import format_usd
from ..money.ledger import Ledger
from ..reporting import model_text

if TYPE_CHECKING:
    from ..core.config import Config
    from ..repo.github import BotPull, Check, Comment

_NOTE = re.compile(r"<!--\s*ai-orchestration:follow-up (\{[^<>]*\})\s*-->")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ACTIONS_TIMESTAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
# Lines that usually say why a job failed (GitHub's own error annotation, compilers, test runners).
_FAILURE_LINE = re.compile(
    r"##\[error\]|\berror\b|\bfailed\b|\bfailure\b|\bfail:|traceback|exception|assert|exit code [1-9]", re.I
)
CONTEXT_LINES = 5  # lines kept either side of a failure line
TAIL_LINES = 20  # the end of a log (exit code, test summary) is always kept
NOTE_LINKS = 10  # ignored requests linked from the one note about them; the rest are counted


@dataclass(frozen=True)
class Work:
    """What an open bot PR asks of the bot: failed checks (none pending) and unanswered requests."""

    pull: BotPull
    failed: tuple[Check, ...]
    requests: tuple[Comment, ...]
    attempts: int  # fix-ups already made (the larger of the reply markers and the ledger's runs)

    def describe(self) -> str:
        """One line: ``failed checks test, lint; review by @alice; comment by @bob``."""
        parts = []
        if self.failed:
            parts.append("failed checks " + ", ".join(check.name for check in self.failed))
        parts += [f"{c.kind} by @{c.author}" for c in self.requests]
        return "; ".join(parts)


@dataclass(frozen=True)
class Decision:
    """What to do with one PR's work.

    ``action``: "fix" (analysis, code, a new commit on the branch, a reply), "human" (someone
    else owns the branch: reply to requests without pushing), "give_up" (attempts used up:
    label it and say so once).
    """

    work: Work
    action: str
    reason: str

    @property
    def attempt(self) -> int:
        """The 1-based number of the fix-up this decision would make."""
        return self.work.attempts + 1


def notes(pull: BotPull, comments: Sequence[Comment]) -> list[dict[str, Any]]:
    """The bot's own reply markers on a PR (comments by the PR's author), oldest first."""
    found = []
    for comment in comments:
        if comment.author != pull.author:
            continue
        for match in _NOTE.findall(comment.body)[-1:]:  # the bot's marker is the last one
            try:
                note = json.loads(match)
            except ValueError:
                continue
            if isinstance(note, dict):
                found.append(note)
    return found


def note_marker(answered: Sequence[str], *, attempt: bool, untrusted: bool = False) -> str:
    """The hidden marker a reply ends with: which comments it answers, whether it was a fix-up,
    whether it was the note about requests from untrusted accounts."""
    note: dict[str, Any] = {"answered": sorted(answered), "attempt": attempt}
    if untrusted:
        note["untrusted"] = True
    return f"<!-- ai-orchestration:follow-up {json.dumps(note, sort_keys=True)} -->"


def mentions(text: str, handle: str) -> bool:
    """Whether ``text`` mentions ``handle`` (case-insensitive, as a whole @name)."""
    return re.search(rf"(?<![\w@/-]){re.escape(handle)}(?![\w-])", text, re.IGNORECASE) is not None


def ledger_attempts(ledger: Ledger, pull_number: int) -> int:
    """Follow-up runs on ``pull_number`` recorded in the ledger (this month's runs)."""
    return sum(1 for run in ledger.runs if run.kind == "follow_up" and run.pull == pull_number and run.calls)


def _answered(own: Sequence[dict[str, Any]]) -> set[str]:
    return {key for note in own for key in note.get("answered", []) if isinstance(key, str)}


def candidates(pull: BotPull, comments: Sequence[Comment], config: Config) -> tuple[Comment, ...]:
    """The unanswered requests on a PR (reviews requesting changes, mentions of the handle),
    whoever wrote them: the caller checks their authors before any is acted on."""
    answered = _answered(notes(pull, comments))
    return tuple(
        comment for comment in comments
        if comment.key not in answered
        and not (comment.author == pull.author and _NOTE.search(comment.body))
        and (
            (comment.kind == "review" and comment.state == "CHANGES_REQUESTED")
            or mentions(comment.body, config.follow_up_handle)
        )
    )


def work_for(
    pull: BotPull, checks: Sequence[Check], comments: Sequence[Comment], config: Config, ledger: Ledger,
    trusted: Container[str],
) -> Work | None:
    """The work an open PR asks for, or None when it asks for none (green, pending, no checks,
    nothing unanswered from a ``trusted`` author (logins), or already labelled for a human)."""
    if config.follow_up_needs_human_label in pull.labels:
        return None
    own = notes(pull, comments)
    requests = tuple(comment for comment in candidates(pull, comments, config) if comment.author in trusted)
    pending = any(check.state == "pending" for check in checks)
    failed = () if pending else tuple(check for check in checks if check.state == "failed")
    if not failed and not requests:
        return None
    attempts = max(sum(1 for note in own if note.get("attempt") is True), ledger_attempts(ledger, pull.number))
    return Work(pull=pull, failed=failed, requests=requests, attempts=attempts)


def noted_key(pull: BotPull, comment: Comment) -> str:
    """How the ledger's ``notified.untrusted`` list names an ignored request: ``"#7 comment-42"``."""
    return f"#{pull.number} {comment.key}"


def untrusted(
    pull: BotPull, comments: Sequence[Comment], config: Config, trusted: Container[str], noted: Container[str]
) -> tuple[Comment, ...]:
    """Requests from authors not ``trusted`` that were never noted (``noted``: :func:`noted_key`
    strings from the ledger; a note reply's marker answers them for good)."""
    return tuple(comment for comment in candidates(pull, comments, config)
                 if comment.author not in trusted and noted_key(pull, comment) not in noted)


def noted_untrusted_before(pull: BotPull, comments: Sequence[Comment]) -> bool:
    """Whether the bot already left its one note about untrusted requests on this PR."""
    return any(note.get("untrusted") is True for note in notes(pull, comments))


def untrusted_reply(ignored: Sequence[Comment]) -> str:
    """The one short note on a PR whose requests came from accounts that may not direct the bot:
    links to them, quoting none, naming no one (no mention pings), and the marker answering them."""
    links = ", ".join(f"[{comment.kind}]({comment.url})" for comment in ignored[:NOTE_LINKS])
    if len(ignored) > NOTE_LINKS:
        links += f" and {len(ignored) - NOTE_LINKS:,} more"
    return (
        f"**ai-orchestration** did not act on this pull request's {links}: it takes requests only from "
        "accounts that can push to this repository or are listed in its `follow_ups.trusted_users`. "
        "A maintainer can ask for the change instead. (This note is posted once.)\n\n"
        + note_marker([comment.key for comment in ignored], attempt=False, untrusted=True) + "\n"
    )


def decide(work: Work, foreign_commits: Sequence[str], config: Config) -> Decision:
    """Fix, leave to the human who owns the branch, or give up after the attempt limit.

    ``foreign_commits``: one line per commit on the branch not made by the bot ("abc1234 Name").
    """
    takeover = config.follow_up_takeover_label
    if takeover in work.pull.labels:
        return Decision(work, "human", f"it has the label '{takeover}'")
    if foreign_commits:
        return Decision(work, "human", f"commit {foreign_commits[0]} on the branch is not the bot's")
    if work.attempts >= config.follow_up_max_attempts:
        return Decision(work, "give_up", f"{work.attempts} of {config.follow_up_max_attempts} follow-up attempts used")
    return Decision(work, "fix", work.describe())


def failure_excerpt(log: str, max_chars: int) -> str:
    """The part of a CI log that explains a failure, at most ``max_chars`` characters.

    Timestamps and colour codes are dropped; each line that looks like an error is kept
    with ``CONTEXT_LINES`` around it, and the last ``TAIL_LINES`` lines always; when that is
    still too long, the end wins (runners print their summary last).
    """
    lines = [_ACTIONS_TIMESTAMP.sub("", _ANSI.sub("", line)).rstrip() for line in log.splitlines()]
    lines = [line for line in lines if not line.startswith(("##[group]", "##[endgroup]"))]
    keep = set(range(max(0, len(lines) - TAIL_LINES), len(lines)))
    for index, line in enumerate(lines):
        if _FAILURE_LINE.search(line):
            keep.update(range(max(0, index - CONTEXT_LINES), min(len(lines), index + CONTEXT_LINES + 1)))
    out: list[str] = []
    previous = -1
    for index in sorted(keep):
        if index != previous + 1:
            out.append("…")
        out.append(lines[index])
        previous = index
    text = "\n".join(out)
    return text if len(text) <= max_chars else "…" + text[-(max_chars - 1):]


def bounded(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, saying so."""
    return text if len(text) <= max_chars else text[:max_chars] + f"\n… ({len(text) - max_chars:,} more characters cut)"


def original_plan(body: str | None, max_chars: int) -> str:
    """The analysis section of a bot PR body, unquoted (or the whole body, when a human rewrote it)."""
    text = body or ""
    match = re.search(r"^## Analysis[^\n]*\n(.*?)(?=^## Files changed|\Z)", text, re.S | re.M)
    plan = model_text.unquote(match.group(1)) if match else text
    return bounded(plan.strip() or "(none)", max_chars)


@dataclass(frozen=True)
class Prompt:
    """A fix-up's task text, and one line per piece of outside text that had hidden parts removed."""

    text: str
    removed: tuple[str, ...]


def prompt(
    task: str, decision: Decision, logs: Mapping[str, str], diff: str, plan: str, *, base: str, max_attempts: int,
    task_is_data: bool = False,
) -> Prompt:
    """The task text the analysis and code steps get for a fix-up: the task, what to fix, the
    PR's diff and the original plan (all already bounded and redacted by the caller). Check
    output, logs, requests, the diff, the plan, and the task itself when it is a PR's title
    (``task_is_data``), go in as cleaned ``<untrusted-data>`` blocks."""
    work = decision.work
    removed: list[str] = []

    def data(source: str, text: str, *, markdown: bool) -> str:
        fenced, note = untrusted_text.fenced(source, text, markdown=markdown)
        removed.extend([note] if note else [])
        return fenced

    parts = [
        data("the pull request's title", task, markdown=False) if task_is_data else task, "",
        f"# Follow-up on pull request #{work.pull.number} (attempt {decision.attempt} of {max_attempts})",
        f"The branch `{work.pull.head}` already implements this task; the files below are the branch's. "
        "Fix only what is asked here, with the smallest change on top of the branch; do not redo the work.",
    ]
    if work.failed:
        parts += ["", "## Failing checks"]
        for check in work.failed:
            parts += ["", f"### {check.name}" + (f" ({check.url})" if check.url else "")]
            output = "\n".join(part for part in (check.summary, logs.get(check.name, "")) if part)
            if output:
                parts.append(data(f"check {check.name}: its summary and log", output, markdown=False))
    if work.requests:
        parts += ["", "## Review feedback to act on"]
        for request in work.requests:
            state = f", {request.state.lower().replace('_', ' ')}" if request.state else ""
            parts += ["", f"### {request.kind} by @{request.author}{state}",
                      data(f"{request.kind} by @{request.author}", request.body, markdown=True)]
    parts += ["", f"## The pull request's diff against {base}", data("the pull request's diff", diff or "(empty)", markdown=False),
              "", "## The original plan", data("the pull request's description", plan, markdown=True)]
    return Prompt("\n".join(parts), tuple(removed))


def reply(
    decision: Decision, *, result: str, summary: str, receipt: str, pull_cost_micro_usd: int, max_attempts: int,
    answered: Sequence[str], attempt: bool,
) -> str:
    """The PR comment a follow-up leaves: what was asked, what was tried and what changed (or
    why nothing did), the step's cost receipt, the PR's cost so far, and the hidden marker.

    ``summary`` is model text: the caller neutralises markers in it.
    """
    work = decision.work
    lines = [f"**ai-orchestration follow-up** — {work.describe() or 'nothing asked'}", ""]
    if attempt:
        lines.insert(0, f"<sub>attempt {decision.attempt} of {max_attempts}</sub>")
    for check in work.failed:
        lines.append(f"- failed check [{check.name}]({check.url})" if check.url else f"- failed check {check.name}")
    for request in work.requests:
        lines.append(f"- [{request.kind} by @{request.author}]({request.url})")
    lines += ["", model_text.neutralise(result)]
    if summary.strip():
        lines += ["", model_text.quote(summary.strip())]
    if receipt:
        lines += ["", "### Cost receipt", "", receipt, "",
                  f"This pull request so far: **{format_usd(pull_cost_micro_usd, 4)}** (its task run and every follow-up in this month's ledger)."]
    lines += ["", note_marker(answered, attempt=attempt)]
    return "\n".join(lines) + "\n"
