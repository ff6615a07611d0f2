"""PyGithub: connecting, finding the bot's pull requests, opening one with labels.

A PR is tied to its task by a hidden marker in its body (the SHA-256 of the task text), so
the bot recognises its own PRs, open or closed, even after a human edits the title.
Every GitHubError message is one line, says what to do, and never contains the token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import github
import requests
from github import Auth, GithubException, GithubRetry
from github.PullRequest import PullRequest
from github.Repository import Repository

from .errors import GitHubError, MissingSecretError
from .redact import MASK, redact

DEFAULT_API_URL = "https://api.github.com"
_MARKER = re.compile(r"<!--\s*ai-orchestration:task=([0-9a-f]{64})\s*-->")
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


def task_hash(task_text: str) -> str:
    """The task's identity: SHA-256 hex of its text without surrounding whitespace."""
    return hashlib.sha256(task_text.strip().encode("utf-8")).hexdigest()


def task_marker(task_text: str) -> str:
    """The hidden HTML comment that goes into the PR body so the PR can be matched to its task."""
    return f"<!-- ai-orchestration:task={task_hash(task_text)} -->"


def parse_task_hash(body: str | None) -> str | None:
    """The task hash from a PR body's marker, or None if the body has none."""
    match = _MARKER.search(body or "")
    return match.group(1) if match else None


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
    )


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
