"""PyGithub: connecting, finding the bot's pull requests, opening one with labels, what a
follow-up reads (check runs, commit statuses, Actions job logs, reviews, comments) and writes
(a comment, a label), and who may direct the bot (collaborator permissions, labelled issues
and who labelled them).

A PR is tied to its task by a hidden marker in its body (the SHA-256 of the task text), so
the bot recognises its own PRs, open or closed, even after a human edits the title. Model text
never carries a live marker (:func:`neutralise_markers`) and only the last marker in a body
counts: the bot writes its own at the very end.
Every GitHubError message is one line, says what to do, and never contains the token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import github
import github.Issue
import requests
from github import Auth, GithubException, GithubRetry
from github.CheckRun import CheckRun
from github.IssueEvent import IssueEvent
from github.PaginatedList import PaginatedList
from github.PullRequest import PullRequest
from github.Repository import Repository

from ..core.errors import GitHubError, MissingSecretError
from ..core.redact import MASK, redact

DEFAULT_API_URL = "https://api.github.com"
_MARKER = re.compile(r"<!--\s*ai-orchestration:task=([0-9a-f]{64})\s*-->")
_ISSUE_MARKER = re.compile(r"<!--\s*ai-orchestration:issue=([1-9][0-9]{0,9})\s*-->")
# Any of the bot's hidden markers (task, follow-up) at the start of an HTML comment.
_ANY_MARKER = re.compile(r"<!--(?=\s*ai-orchestration:)")
# GitHub token formats (classic/OAuth/user/server/refresh, fine-grained), scrubbed even if unknown.
_TOKEN_SHAPES = re.compile(r"\b(?:gh[opusr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")
_ACTIONS_NOT_PERMITTED = "not permitted to create or approve pull requests"
ACTIONS_PERMISSION_FIX = (
    "GitHub Actions may not open pull requests in this repository: turn on Settings → Actions → General → "
    'Workflow permissions → "Allow GitHub Actions to create and approve pull requests" '
    "(or use a PAT/GitHub App token via the AI_ORCHESTRATION_TOKEN secret)"
)


@dataclass(frozen=True)
class BotPull:
    """One of the bot's pull requests, as much as the pipeline needs to decide what to do."""

    number: int
    url: str
    title: str
    state: str  # 'open' | 'closed'
    merged: bool
    head: str
    task_hash: str | None
    head_sha: str = ""
    draft: bool = False
    labels: tuple[str, ...] = ()
    author: str = ""  # login that opened the PR: the bot's identity on GitHub
    body: str = ""
    issue: int | None = None  # the labelled issue it works on (its marker), for a task from an issue
    created_at: str = ""  # UTC like 2026-11-21T03:17:00Z
    closed_at: str = ""  # "" while open; merged_at too for a merged PR
    merged_at: str = ""


def task_hash(task_text: str) -> str:
    """The task's identity: SHA-256 hex of its text without surrounding whitespace."""
    return hashlib.sha256(task_text.strip().encode("utf-8")).hexdigest()


def task_marker(task_text: str) -> str:
    """The hidden HTML comment that goes into the PR body so the PR can be matched to its task."""
    return f"<!-- ai-orchestration:task={task_hash(task_text)} -->"


def parse_task_hash(body: str | None) -> str | None:
    """The task hash from the bot's own marker (the last one in the body), or None if there is none.

    The bot writes its marker after everything else, and model text in the body has its
    markers neutralised, so a quoted marker earlier in the body never decides the task.
    """
    matches = _MARKER.findall(body or "")
    return matches[-1] if matches else None


def issue_marker(number: int) -> str:
    """The hidden HTML comment in the body of a PR made for issue ``number`` (a task from an issue)."""
    return f"<!-- ai-orchestration:issue={number} -->"


def parse_issue(body: str | None) -> int | None:
    """The issue number of the bot's own issue marker (the last one in the body), or None."""
    matches = _ISSUE_MARKER.findall(body or "")
    return int(matches[-1]) if matches else None


def belongs_to(pull: BotPull, task_text: str, branch: str) -> bool:
    """Whether ``pull`` is the PR for ``task_text``, whose branch name is ``branch`` (``ai/<slug>``).

    The marker decides when the body has one; when a human rewrote the body and it is gone,
    the head branch does: ``branch`` itself or a rerun's ``branch-N`` (N >= 2).
    """
    if pull.task_hash is not None:
        return pull.task_hash == task_hash(task_text)
    return is_task_branch(pull.head, branch)


def is_task_branch(head: str, branch: str) -> bool:
    """Whether ``head`` is ``branch`` or one of its reruns, ``branch-2``, ``branch-3``, ..."""
    return re.fullmatch(re.escape(branch) + r"(?:-(?:[2-9]|[1-9][0-9]+))?", head) is not None


def neutralise_markers(text: str) -> str:
    """Model or user text with every ``<!-- ai-orchestration:...`` turned into visible, inert text."""
    return _ANY_MARKER.sub("&lt;!--", text)


@dataclass(frozen=True)
class ApiPolicy:
    """How patiently to talk to the API: retries for 5xx and secondary rate limits, pacing, timeout.

    The pacing defaults are PyGithub's own (GitHub asks for a second between writes);
    tests pass a policy with no waits.
    """

    retries: int = 3
    backoff_factor: float = 2.0
    secondary_rate_wait: float = 60.0
    max_rate_limit_wait: float = 120.0  # a longer wait fails instead of burning CI minutes
    seconds_between_requests: float = 0.25
    seconds_between_writes: float = 1.0
    timeout: int = 30


def connect(env: Mapping[str, str], policy: ApiPolicy = ApiPolicy()) -> Repository:
    """The repository named by ``GITHUB_REPOSITORY``, authenticated with ``GITHUB_TOKEN``/``GH_TOKEN``.

    ``GITHUB_API_URL`` points at GitHub Enterprise Server (``https://host/api/v3``) or a fake.
    """
    token = (env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "").strip()
    if not token:
        raise MissingSecretError(
            "no GitHub token: set GITHUB_TOKEN (or GH_TOKEN), e.g. `GITHUB_TOKEN: ${{ github.token }}` in the workflow"
        )
    full_name = env.get("GITHUB_REPOSITORY", "").strip()
    if full_name.count("/") != 1 or not all(full_name.split("/")):
        raise MissingSecretError("GITHUB_REPOSITORY is not set to owner/name; GitHub Actions sets it, set it yourself elsewhere")
    base_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).strip().rstrip("/")
    retry = GithubRetry(
        total=policy.retries,
        backoff_factor=policy.backoff_factor,
        secondary_rate_wait=policy.secondary_rate_wait,
        max_rate_limit_wait=policy.max_rate_limit_wait,
        raise_on_status=False,  # after the last retry, let PyGithub raise with GitHub's own message
    )
    client = github.Github(
        auth=Auth.Token(token),
        base_url=base_url,
        retry=retry,
        timeout=policy.timeout,
        per_page=100,
        seconds_between_requests=policy.seconds_between_requests,
        seconds_between_writes=policy.seconds_between_writes,
    )
    try:
        return client.get_repo(full_name)
    except GithubException as exc:
        if exc.status == 404:
            raise GitHubError(
                _scrub(f"repository {full_name} not found at {base_url}, or the token cannot see it; "
                       "check GITHUB_REPOSITORY and the token's access", [token])
            ) from None
        raise _error(exc, f"reading repository {full_name}", [token]) from None
    except requests.RequestException as exc:
        raise _unreachable(exc, base_url, [token]) from None


def bot_pull_requests(repo: Repository, head_prefix: str = "ai/") -> list[BotPull]:
    """Every PR (open and closed) from a branch of this repository whose name starts with ``head_prefix``.

    PRs from forks are left out: a fork's ``ai/...`` branch is not the bot's work.
    """
    own = repo.full_name.casefold()
    try:
        return [
            _bot_pull(pr)
            for pr in repo.get_pulls(state="all")
            if pr.head.ref.startswith(head_prefix) and pr.head.repo is not None and pr.head.repo.full_name.casefold() == own
        ]
    except GithubException as exc:
        raise _error(exc, "listing pull requests", _secrets(repo)) from None
    except requests.RequestException as exc:
        raise _unreachable(exc, _base_url(repo), _secrets(repo)) from None


def open_pull_request(
    repo: Repository,
    *,
    title: str,
    body: str,
    head: str,
    base: str,
    labels: Sequence[str],
    draft: bool,
) -> BotPull:
    """Open a PR from ``head`` into ``base`` and label it; if one is already open for ``head``, that one.

    Labels are added by name (GitHub creates missing ones). Where the plan has no draft PRs,
    the PR is opened ready for review rather than not at all.
    """
    doing = f"opening a pull request from {head} into {base}"
    try:
        pr = _create_or_find(repo, title=title, body=body, head=head, base=base, draft=draft)
        if labels:
            try:
                pr.add_to_labels(*labels)
            except GithubException as exc:
                raise GitHubError(
                    f"opened {pr.html_url} but could not add labels {', '.join(labels)}: "
                    f"{_describe(exc, _secrets(repo))}; add them by hand or check the token's pull-requests permission"
                ) from None
        return _bot_pull(pr)
    except GithubException as exc:
        if exc.status == 403 and _ACTIONS_NOT_PERMITTED in _details(exc).lower():
            raise GitHubError(ACTIONS_PERMISSION_FIX) from None
        raise _error(exc, doing, _secrets(repo)) from None
    except requests.RequestException as exc:
        raise _unreachable(exc, _base_url(repo), _secrets(repo)) from None


def _create_or_find(repo: Repository, *, title: str, body: str, head: str, base: str, draft: bool) -> PullRequest:
    """Create the PR; on "already exists" return the open one; where drafts are unsupported, open it ready."""
    try:
        return repo.create_pull(base=base, head=head, title=title, body=body, draft=draft)
    except GithubException as exc:
        details = _details(exc).lower()
        if exc.status == 422 and "a pull request already exists" in details:
            return _existing_open_pull(repo, head, base)
        if exc.status == 422 and draft and "draft pull requests are not supported" in details:
            return _create_or_find(repo, title=title, body=body, head=head, base=base, draft=False)
        raise


def _existing_open_pull(repo: Repository, head: str, base: str) -> PullRequest:
    owner = repo.full_name.split("/")[0]
    for pr in repo.get_pulls(state="open", head=f"{owner}:{head}"):
        return pr
    raise GitHubError(f"GitHub says a pull request from {head} into {base} exists but does not list it; open {repo.html_url}/pulls")


def _bot_pull(pr: PullRequest) -> BotPull:
    # merged_at, not .merged: list items lack "merged", and reading it would fetch every PR again.
    return BotPull(
        number=pr.number,
        url=pr.html_url,
        title=pr.title,
        state=pr.state,
        merged=pr.merged_at is not None,
        head=pr.head.ref,
        task_hash=parse_task_hash(pr.body),
        head_sha=pr.head.sha,
        draft=bool(pr.draft),
        labels=tuple(label.name for label in pr.labels),
        author=pr.user.login if pr.user is not None else "",
        body=pr.body or "",
        issue=parse_issue(pr.body),
        created_at=_iso(pr.created_at),
        closed_at=_iso(pr.closed_at),
        merged_at=_iso(pr.merged_at),
    )


# --- what a follow-up reads and writes --------------------------------------------------

# Check-run conclusions that mean "this commit broke something" (cancelled, skipped, neutral
# and stale do not: they say nothing about the code). Source: docs.github.com/rest/checks/runs.
_FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
_ACTIONS_APP = "github-actions"


@dataclass(frozen=True)
class Check:
    """One check run or commit status on a commit, reduced to what a follow-up decides on."""

    name: str
    state: str  # "pending" | "failed" | "done"
    url: str | None
    job_id: int | None  # the GitHub Actions job behind a check run (Actions check-run ids are job ids)
    summary: str  # the check's output title and summary, or the status description


@dataclass(frozen=True)
class Comment:
    """A review or a PR conversation comment: what a follow-up may answer."""

    key: str  # "review-<id>" or "comment-<id>": stable, recorded in the reply once answered
    kind: str  # "review" | "comment"
    author: str
    body: str  # a review's inline comments are folded in as "`path` line N: text"
    url: str
    at: str  # ISO 8601 UTC: when it was submitted
    state: str = ""  # a review's state: CHANGES_REQUESTED, COMMENTED, APPROVED, DISMISSED
    association: str = ""  # GitHub's author_association: OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...


@contextmanager
def _api(repo: Repository, doing: str) -> Iterator[None]:
    try:
        yield
    except GithubException as exc:
        raise _error(exc, doing, _secrets(repo)) from None
    except requests.RequestException as exc:
        raise _unreachable(exc, _base_url(repo), _secrets(repo)) from None


def checks(repo: Repository, sha: str) -> tuple[Check, ...]:
    """Every check run and commit status on ``sha`` (GET .../commits/{sha}/check-runs and .../status).

    The combined status says "pending" when a commit has no statuses at all, so each status
    is read on its own rather than the combined state.
    """
    with _api(repo, f"reading the checks of {sha[:12]}"):
        commit = repo.get_commit(sha)
        found = [_check_run(run) for run in commit.get_check_runs()]
        for status in commit.get_combined_status().statuses:
            state = {"pending": "pending", "failure": "failed", "error": "failed"}.get(status.state, "done")
            found.append(Check(name=status.context, state=state, url=status.target_url, job_id=None,
                               summary=status.description or ""))
    return tuple(found)


def _check_run(run: CheckRun) -> Check:
    if run.status != "completed":
        state = "pending"
    else:
        state = "failed" if run.conclusion in _FAILED_CONCLUSIONS else "done"
    output = run.output
    summary = "\n".join(part for part in (output.title, output.summary) if part) if output is not None else ""
    from_actions = run.app is not None and run.app.slug == _ACTIONS_APP
    return Check(name=run.name, state=state, url=run.html_url or run.details_url,
                 job_id=run.id if from_actions else None, summary=summary)


def job_log(repo: Repository, job_id: int, *, max_bytes: int, timeout: float = 30.0) -> str:
    """The last ``max_bytes`` of a GitHub Actions job's log, or a one-line note saying why there is none.

    ``GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`` answers 302 with a short-lived
    URL on another host (docs.github.com/rest/actions/workflow-jobs). requests follows it and
    drops the Authorization header on the change of host, so the token never leaves GitHub.
    A missing log (expired: 410, or no ``actions: read``: 403/404) is a note, not a failure.
    """
    url = f"{repo.url}/actions/jobs/{job_id}/logs"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token = _secrets(repo)
    if token:
        headers["Authorization"] = f"Bearer {token[0]}"
    try:
        with requests.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=True) as response:
            if response.status_code != 200:
                hint = "; the job needs `actions: read`" if response.status_code in (403, 404) else ""
                return f"(no log for job {job_id}: GitHub answered {response.status_code}{hint})"
            tail = bytearray()
            for chunk in response.iter_content(chunk_size=65536):
                tail += chunk
                del tail[:-max_bytes]
    except requests.RequestException as exc:
        return f"(no log for job {job_id}: {type(exc).__name__})"
    return tail.decode("utf-8", "replace")


def comments(repo: Repository, number: int) -> tuple[Comment, ...]:
    """The PR's reviews (with their inline comments folded in) and conversation comments, oldest first."""
    with _api(repo, f"reading the reviews and comments of pull request #{number}"):
        pr = repo.get_pull(number)
        inline: dict[int, list[str]] = {}
        for note in pr.get_review_comments():
            where = f"`{note.path}` line {note.line}" if note.line else f"`{note.path}`"
            inline.setdefault(note.pull_request_review_id, []).append(f"{where}: {note.body}")
        found = [
            Comment(
                key=f"review-{review.id}", kind="review", author=review.user.login if review.user else "",
                body="\n".join([review.body or "", *inline.get(review.id, [])]).strip(), url=review.html_url,
                at=_iso(review.submitted_at), state=review.state, association=review.author_association or "",
            )
            for review in pr.get_reviews()
        ]
        found += [
            Comment(key=f"comment-{note.id}", kind="comment", author=note.user.login if note.user else "",
                    body=note.body or "", url=note.html_url, at=_iso(note.created_at),
                    association=note.author_association or "")
            for note in pr.get_issue_comments()
        ]
    return tuple(sorted(found, key=lambda c: (c.at, c.key)))


def _iso(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(moment, dt.datetime) else ""


def pull_commits(repo: Repository, number: int) -> tuple[tuple[str, str, str, str], ...]:
    """(sha, author name, author email, committer email) of each of PR ``number``'s commits, oldest
    first (``GET .../pulls/{n}/commits``, which lists up to 250). From the API, not git history,
    so a shallow checkout sees them too."""
    with _api(repo, f"listing the commits of pull request #{number}"):
        return tuple(
            (c.sha, c.commit.author.name or "", c.commit.author.email or "", c.commit.committer.email or "")
            for c in repo.get_pull(number).get_commits()
        )


def foreign_commits(commits: Sequence[tuple[str, str, str, str]], bot_email: str) -> list[str]:
    """"<short sha> by <name>" for each commit (sha, author name, author email, committer email)
    the bot did not both author and commit: a human's push, an edit in the web UI, "Update branch"."""
    return [f"{sha[:7]} by {name}" for sha, name, author, committer in commits if author != bot_email or committer != bot_email]


def pull_diff(repo: Repository, number: int) -> str:
    """PR ``number``'s changes file by file, as unified-diff text (``GET .../pulls/{n}/files``;
    binary and very large files come without a patch)."""
    with _api(repo, f"reading the changes of pull request #{number}"):
        return "\n".join(
            f"--- a/{f.filename}\n+++ b/{f.filename} ({f.status})\n{f.patch or '(no textual diff)'}"
            for f in repo.get_pull(number).get_files()
        )


def comment(repo: Repository, number: int, body: str) -> tuple[str, int]:
    """Post ``body`` on PR or issue ``number``'s conversation; the new comment's (URL, id)."""
    with _api(repo, f"commenting on #{number}"):
        posted = repo.get_issue(number).create_comment(body)
        return posted.html_url, posted.id


def edit_comment(repo: Repository, number: int, comment_id: int, body: str) -> None:
    """Replace the text of comment ``comment_id`` on PR ``number``
    (``PATCH /repos/{o}/{r}/issues/comments/{id}``)."""
    with _api(repo, f"editing a comment on pull request #{number}"):
        repo.get_issue(number).get_comment(comment_id).edit(body)


def edit_pull_body(repo: Repository, number: int, body: str) -> None:
    """Replace the body of PR ``number`` (``PATCH /repos/{o}/{r}/pulls/{n}``)."""
    with _api(repo, f"editing pull request #{number}"):
        repo.get_pull(number).edit(body=body)


def add_labels(repo: Repository, number: int, labels: Sequence[str]) -> None:
    """Label PR ``number`` (GitHub creates missing labels)."""
    with _api(repo, f"labelling pull request #{number}"):
        repo.get_issue(number).add_to_labels(*labels)


# --- who may direct the bot ------------------------------------------------------------------


def permission(repo: Repository, login: str) -> tuple[str, str]:
    """``(permission, role_name)`` of ``login`` on this repository, in one request
    (``GET /repos/{owner}/{repo}/collaborators/{username}/permission``, docs.github.com/rest/collaborators:
    ``permission`` is admin, write, read or none, maintain counting as write and triage as read;
    ``role_name`` is admin, maintain, write, triage, read or a custom role's name).
    An unknown account (404) is ``("none", "none")``."""
    with _api(repo, f"reading the permission of {login} on {repo.full_name}"):
        try:
            _, data = repo.requester.requestJsonAndCheck(
                "GET", f"{repo.url}/collaborators/{urllib.parse.quote(login, safe='')}/permission")
        except GithubException as exc:
            if exc.status == 404:
                return "none", "none"
            raise
    return str(data.get("permission") or "none"), str(data.get("role_name") or "none")


@dataclass(frozen=True)
class Issue:
    """An open issue, as much as the intake needs: who wrote it, what it asks, its labels."""

    number: int
    title: str
    body: str
    author: str
    association: str  # the author's author_association
    url: str
    state: str = "open"  # 'open' | 'closed'
    labels: tuple[str, ...] = ()


def _issue(item: github.Issue.Issue) -> Issue:
    return Issue(
        number=item.number, title=item.title or "", body=item.body or "", author=item.user.login if item.user else "",
        association=item.author_association or "", url=item.html_url, state=item.state,
        labels=tuple(label.name for label in item.labels),
    )


def labelled_issues(repo: Repository, label: str) -> tuple[Issue, ...]:
    """The open issues carrying ``label``, oldest first (``GET .../issues?labels=...&state=open``; the
    pull requests that endpoint lists too are left out)."""
    with _api(repo, f"listing the open issues labelled {label} (intake needs the job's `issues: write` permission)"):
        # A listed pull request's html_url is .../pull/N (reading .pull_request would fetch every issue again).
        found = [_issue(item) for item in repo.get_issues(state="open", labels=[label], sort="created", direction="asc")
                 if "/pull/" not in item.html_url]
    return tuple(found)


def issue(repo: Repository, number: int) -> Issue:
    """Issue ``number`` as it is now (``GET .../issues/{n}``)."""
    with _api(repo, f"reading issue #{number}"):
        return _issue(repo.get_issue(number))


def labelled_by(repo: Repository, number: int, label: str) -> str | None:
    """The login that last applied ``label`` to issue ``number`` (its latest ``labeled`` event in
    ``GET .../issues/{n}/events``, label names compared case-insensitively as GitHub does), or None."""
    with _api(repo, f"reading the events of issue #{number}"):
        events = PaginatedList(IssueEvent, repo.requester, f"{repo.url}/issues/{number}/events", None)
        actors = [event.actor.login if event.actor else "" for event in events
                  if event.event == "labeled" and event.label is not None and event.label.name.casefold() == label.casefold()]
    return actors[-1] if actors else None


def _secrets(repo: Repository) -> list[str]:
    """The token this repository object authenticates with, so it can be scrubbed from messages."""
    auth = repo.requester.auth
    token = getattr(auth, "token", None) if auth is not None else None
    return [token] if isinstance(token, str) and token else []


def _base_url(repo: Repository) -> str:
    return repo.requester.base_url


def _scrub(text: str, secrets: Sequence[str]) -> str:
    return _TOKEN_SHAPES.sub(MASK, redact(text, secrets))


def _details(exc: GithubException) -> str:
    """GitHub's message plus the messages of its ``errors`` list (422s put the reason there)."""
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or exc.message or "")]
    for item in data.get("errors") or []:
        if isinstance(item, dict):
            parts.append(str(item.get("message") or " ".join(f"{k}={v}" for k, v in item.items() if k != "resource")))
        else:
            parts.append(str(item))
    return "; ".join(p for p in parts if p)


def _describe(exc: GithubException, secrets: Sequence[str]) -> str:
    detail = " ".join(_details(exc).split()) or "no message"
    return _scrub(f"GitHub answered {exc.status}: {detail}", secrets)[:400]


def _error(exc: GithubException, doing: str, secrets: Sequence[str]) -> GitHubError:
    if exc.status == 401:
        return GitHubError(
            f"GitHub rejected the token (401) while {doing}; check that GITHUB_TOKEN/GH_TOKEN is valid and not expired"
        )
    if exc.status == 403 and "rate limit" in _details(exc).lower():
        return GitHubError(f"GitHub rate limit hit while {doing}; wait for the limit to reset and run again")
    return GitHubError(f"{doing} failed: {_describe(exc, secrets)}")


def _unreachable(exc: requests.RequestException, base_url: str, secrets: Sequence[str]) -> GitHubError:
    return GitHubError(_scrub(f"could not reach the GitHub API at {base_url} ({type(exc).__name__}); check GITHUB_API_URL and the network", secrets))
