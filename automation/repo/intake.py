"""Tasks from labelled issues: with ``intake.enabled``, an open issue carrying ``intake.label``
is a task like a tasks-file item, drained by the same runs, budget, PR limit and parking.

An issue counts only when the label was last applied by a trusted account (its latest
``labeled`` event for that label) and the issue was opened by a trusted account, or by anyone
with ``intake.any_author`` (``repo/trust.py`` says who is trusted). Its title and body reach
the models only as a cleaned ``<untrusted-data>`` block (``core/untrusted.py``).

Its identity is ``"<title> (issue #N)"`` (PR title, branch, ledger, parking), and the PR carries
``Closes #N`` and a hidden issue marker, so the PR stays tied to the issue when its title
changes. Once the PR is open the issue gets one comment linking it, with its cost. A PR whose
issue was closed or lost the label is left to humans (``issue_gone``). ``intake.order`` puts the
issues (oldest first) after the tasks file's items (``file_first``, the default) or before them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from github.Repository import Repository

from ..core import untrusted
from ..core.config import Config
from ..core.errors import GitHubError
from ..core.prices import format_usd
from . import github, tasks
from .trust import Trust


@dataclass(frozen=True)
class IssueTask(tasks.Task):
    """A task from issue ``issue``: ``text`` is its identity, ``brief`` fences its title and body as data."""

    issue: int = 0
    url: str = ""
    author: str = ""
    labeller: str = ""
    title: str = ""  # cleaned of invisible characters
    body: str = ""  # cleaned of what GitHub does not show
    removed: tuple[str, ...] = ()  # what cleaning took out: "body: removed 1 HTML comment (56 characters)"

    @property
    def brief(self) -> str:
        """What the models are asked to do: the issue's title and body, as data."""
        return (
            f"Work on GitHub issue #{self.issue} ({self.url}): opened by @{self.author}, labelled for the bot by "
            f"@{self.labeller}. Its title and body follow; make the change it describes in this repository.\n\n"
            + untrusted.block(f"issue #{self.issue} by @{self.author}", f"{self.title}\n\n{self.body}".strip())
        )


def issue_tasks(remote: Repository, config: Config, trust: Trust, say: Callable[[str], None]) -> list[IssueTask]:
    """The open issues with ``intake.label`` that trusted accounts asked for, oldest first ([] when
    intake is off); every issue passed over is said in one log line. Raises GitHubError."""
    if not config.intake_enabled:
        return []
    label = config.intake_label
    found = []
    for issue in github.labelled_issues(remote, label):
        author = trust.check(issue.author, issue.association)
        if not (author.trusted or config.intake_any_author):
            say(f"Skipping issue #{issue.number}: its author @{issue.author} {author.reason} (intake.any_author is false)")
            continue
        labeller = github.labelled_by(remote, issue.number, label)
        verdict = trust.check(labeller) if labeller else None
        if labeller is None or verdict is None or not verdict.trusted:
            why = f"@{labeller} {verdict.reason}" if labeller and verdict else "GitHub lists no labeled event for it"
            say(f"Skipping issue #{issue.number}: the label {label} does not count: {why}")
            continue
        found.append(_task(issue, labeller))
    return found


def _task(issue: github.Issue, labeller: str) -> IssueTask:
    title, body = untrusted.clean(issue.title, markdown=False), untrusted.clean(issue.body, markdown=True)
    words = " ".join(title.text.split())
    return IssueTask(
        text=f"{words or 'Untitled'} (issue #{issue.number})", line=0, kind=tasks.task_kind(words, "", issue.labels),
        issue=issue.number, url=issue.url,
        author=issue.author, labeller=labeller, title=words, body=body.text.strip(),
        removed=tuple(f"{part}: removed {', '.join(cleaned.removed)}"
                      for part, cleaned in (("title", title), ("body", body)) if cleaned.removed),
    )


def ordered(listed: Sequence[tasks.Task], issues: Sequence[IssueTask], order: str) -> list[tasks.Task]:
    """The tasks in the order ``intake.order`` says: ``file_first`` or ``issues_first``."""
    return [*issues, *listed] if order == "issues_first" else [*listed, *issues]


def describe(task: tasks.Task) -> list[str]:
    """Log lines for a picked task from an issue (where it came from, what was cleaned out); [] for others."""
    if not isinstance(task, IssueTask):
        return []
    lines = [f"Task from issue #{task.issue} ({task.url}): opened by @{task.author}, labelled by @{task.labeller}"]
    lines += [f"Issue #{task.issue}: hidden text kept from the models: {what}" for what in task.removed]
    return lines


def belongs(pull: github.BotPull, task: tasks.Task, branch: str) -> bool:
    """Whether ``pull`` is ``task``'s PR: by its issue marker for a task from an issue, else as
    ``github.belongs_to`` says (task marker, then branch)."""
    if isinstance(task, IssueTask) and pull.issue == task.issue:
        return True
    return github.belongs_to(pull, task.text, branch)


def footer(task: tasks.Task) -> str:
    """The end of the task's PR body: ``Closes #N`` and the issue marker for an issue, then the task marker."""
    if not isinstance(task, IssueTask):
        return github.task_marker(task.text)
    return f"Closes #{task.issue}.\n\n{github.issue_marker(task.issue)}\n{github.task_marker(task.text)}"


def announce(remote: Repository, task: tasks.Task, pr_url: str, cost_micro_usd: int, say: Callable[[str], None]) -> None:
    """The one comment on the issue once its PR is open: the link and what the PR cost. Never raises:
    the PR is open either way, and the log says when the comment could not be posted."""
    if not isinstance(task, IssueTask):
        return
    body = (f"ai-orchestration opened {pr_url} for this issue, for {format_usd(cost_micro_usd, 4)} of model calls. "
            "Merging it closes the issue; close the pull request to turn the work down.")
    try:
        say(f"Commented on issue #{task.issue}: {github.comment(remote, task.issue, body)[0]}")
    except GitHubError as failure:
        say(f"note: could not comment on issue #{task.issue}: {failure.message}")


def issue_gone(remote: Repository, config: Config, number: int) -> str | None:
    """Why the bot leaves the PR of issue ``number`` to humans (``"was closed"``, ``"no longer has the
    label ai-task"``, ``"could not be read (...)"``), or None while the issue still asks for it."""
    try:
        issue = github.issue(remote, number)
    except GitHubError as failure:
        return f"could not be read ({failure.message})"
    if issue.state != "open":
        return "was closed"
    if config.intake_label.casefold() not in {label.casefold() for label in issue.labels}:
        return f"no longer has the label {config.intake_label}"
    return None
