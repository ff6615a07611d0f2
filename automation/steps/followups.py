"""Follow-ups: which of the bot's open pull requests needs what, decided on plain data.

A bot PR needs a follow-up when its head commit has a failed check (and none still pending),
when a review requests changes, or when a comment mentions the bot's handle. Humans win: a
commit on the branch by anyone but the bot, or the takeover label, means the bot never pushes
there. After ``follow_ups.max_attempts`` fix-ups the PR gets the needs-human label.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def note_marker(answered: Sequence[str], *, attempt: bool) -> str:
    """The hidden marker a reply ends with: which comments it answers, whether it was a fix-up."""
    return f"<!-- ai-orchestration:follow-up {json.dumps({'answered': sorted(answered), 'attempt': attempt}, sort_keys=True)} -->"


def mentions(text: str, handle: str) -> bool:
    """Whether ``text`` mentions ``handle`` (case-insensitive, as a whole @name)."""
    return re.search(rf"(?<![\w@/-]){re.escape(handle)}(?![\w-])", text, re.IGNORECASE) is not None


def ledger_attempts(ledger: Ledger, pull_number: int) -> int:
    """Follow-up runs on ``pull_number`` recorded in the ledger (this month's runs)."""
    return sum(1 for run in ledger.runs if run.kind == "follow_up" and run.pull == pull_number and run.calls)


def work_for(
    pull: BotPull, checks: Sequence[Check], comments: Sequence[Comment], config: Config, ledger: Ledger
) -> Work | None:
    """The work an open PR asks for, or None when it asks for none (green, pending, no checks,
    nothing unanswered, or already labelled for a human)."""
    if config.follow_up_needs_human_label in pull.labels:
        return None
    own = notes(pull, comments)
    answered = {key for note in own for key in note.get("answered", []) if isinstance(key, str)}
    requests = tuple(
        comment for comment in comments
        if comment.key not in answered
        and not (comment.author == pull.author and _NOTE.search(comment.body))
        and (
            (comment.kind == "review" and comment.state == "CHANGES_REQUESTED")
            or mentions(comment.body, config.follow_up_handle)
        )
    )
    pending = any(check.state == "pending" for check in checks)
    failed = () if pending else tuple(check for check in checks if check.state == "failed")
    if not failed and not requests:
        return None
    attempts = max(sum(1 for note in own if note.get("attempt") is True), ledger_attempts(ledger, pull.number))
    return Work(pull=pull, failed=failed, requests=requests, attempts=attempts)


def foreign_commits(commits: Sequence[tuple[str, str, str, str]], bot_email: str) -> list[str]:
    """"<short sha> by <name>" for each commit (sha, author name, author email, committer email)
    the bot did not both author and commit: a human's push, an edit in the web UI, "Update branch"."""
    return [f"{sha[:7]} by {name}" for sha, name, author, committer in commits if author != bot_email or committer != bot_email]


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


def prompt(
    task: str, decision: Decision, logs: Mapping[str, str], diff: str, plan: str, *, base: str, max_attempts: int
) -> str:
    """The task text the analysis and code steps get for a fix-up: the task, what to fix, the
    PR's diff and the original plan (all already bounded and redacted by the caller)."""
    work = decision.work
    parts = [
        task, "",
        f"# Follow-up on pull request #{work.pull.number} (attempt {decision.attempt} of {max_attempts})",
        f"The branch `{work.pull.head}` already implements this task; the files below are the branch's. "
        "Fix only what is asked here, with the smallest change on top of the branch; do not redo the work.",
    ]
    if work.failed:
        parts += ["", "## Failing checks"]
        for check in work.failed:
            parts += ["", f"### {check.name}" + (f" ({check.url})" if check.url else "")]
            if check.summary:
                parts.append(check.summary)
            if logs.get(check.name):
                parts += ["```text", logs[check.name], "```"]
    if work.requests:
        parts += ["", "## Review feedback to act on"]
        for request in work.requests:
            state = f", {request.state.lower().replace('_', ' ')}" if request.state else ""
            parts += ["", f"### {request.kind} by @{request.author}{state}", request.body]
    parts += ["", f"## The pull request's diff against {base}", "```diff", diff or "(empty)", "```",
              "", "## The original plan", plan]
    return "\n".join(parts)


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
