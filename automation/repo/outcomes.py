"""What became of one of the bot's pull requests after it was opened, read from GitHub.

The run already lists the bot's PRs (``github.bot_pull_requests``: state, head, created,
closed and merged times); this module reads the little more a PR's outcome needs, in one to
three requests per PR and only when the PR changed (``money/outcomes.py`` decides which):
its commits (``GET .../pulls/{n}/commits``: did anyone but the bot push?) and, for a merged
PR, its files (``GET .../pulls/{n}/files``: the lines it changed); when a human pushed to a
merged PR, the bot's own change (``GET .../compare/{base}...{bot head}``) to count which of the
bot's lines survived.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from github.Commit import Commit
from github.File import File
from github.PaginatedList import PaginatedList
from github.Repository import Repository

from . import github
from .github import BotPull


@dataclass(frozen=True)
class Details:
    """A PR's commits and lines at ``head_sha``; lines are None where GitHub gave no patch to count."""

    head_sha: str
    humans_pushed: bool
    lines_changed: int | None = None  # lines the bot added or removed
    lines_survived: int | None = None  # of those, the ones in the merged change


def read(repo: Repository, pull: BotPull, bot_email: str) -> tuple[Details, int]:
    """The details of ``pull`` and the number of API requests it took (1 to 3).

    Lines are counted for a merged PR only: a PR closed unmerged kept none, an open one is not
    decided yet. Raises GitHubError (one line, no token) when GitHub fails.
    """
    with github._api(repo, f"reading the commits of pull request #{pull.number}"):
        commits = list(PaginatedList(Commit, repo.requester, f"{repo.url}/pulls/{pull.number}/commits", None))
        requests = _pages(len(commits))
        rows = [(c.sha, c.commit.author.name or "", c.commit.author.email or "", c.commit.committer.email or "")
                for c in commits]
        foreign = {entry.split(" ", 1)[0] for entry in github.foreign_commits(rows, bot_email)}
        humans = bool(foreign)
        details = Details(head_sha=pull.head_sha, humans_pushed=humans)
        if not pull.merged:
            return details, requests
        final = list(PaginatedList(File, repo.requester, f"{repo.url}/pulls/{pull.number}/files", None))
        requests += _pages(len(final))
        if not humans:
            total = sum(f.additions + f.deletions for f in final)
            return Details(pull.head_sha, False, total, total), requests
        bot_head = _bot_head(commits, foreign)
        if bot_head is None or not commits[0].parents:
            return Details(pull.head_sha, True, 0, 0), requests  # a human wrote the first commit
        comparison = repo.compare(commits[0].parents[0].sha, bot_head)
        requests += 1
        mine, kept = _lines(comparison.files), _lines(final)
        if mine is None or kept is None:
            return details, requests
        return Details(pull.head_sha, True, sum(mine.values()), sum((mine & kept).values())), requests


def _pages(items: int, per_page: int = 100) -> int:
    """Requests a paginated list of ``items`` took (PyGithub asks for 100 a page; an empty list is one)."""
    return max(1, -(-items // per_page))


def _bot_head(commits: list[Commit], foreign: set[str]) -> str | None:
    """The last of the bot's commits before anyone else's: the bot's own change ends there."""
    head = None
    for commit in commits:
        if commit.sha[:7] in foreign:
            break
        head = commit.sha
    return head


def _lines(files: Iterable[File]) -> Counter[tuple[str, str]] | None:
    """Each added or removed line as (file, "+text"/"-text"), counted; None if a file has no patch."""
    found: Counter[tuple[str, str]] = Counter()
    for item in files:
        if item.patch is None:
            if item.additions + item.deletions:
                return None
            continue
        for line in item.patch.splitlines():
            if line[:1] in "+-":  # GitHub's patches start at the first hunk: no file headers
                found[(item.filename, line)] += 1
    return found
