"""A loopback fake of the GitHub REST API, just the parts the bot uses, in GitHub's wire format.

A ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, so real PyGithub talks to it over
real sockets, in this process or in a ``python -m automation`` subprocess given
``fake.env()`` (``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, ``GITHUB_TOKEN``). State is plain
Python: seed ``fake.pulls`` with :meth:`FakeGitHub.add_pull`, script the next failure of a
route with :meth:`FakeGitHub.fail_next`, and assert on ``fake.requests``.

    with FakeGitHub() as gh:
        gh.add_pull(title="Old", body="...", head="ai/old", state="closed", merged=True)
        gh.fail_next("POST", "/repos/octo/repo/pulls", FakeGitHub.actions_not_permitted())
        repo = github.connect(gh.env(), retries=0)

Routes (relative to the API root, which may carry a GitHub Enterprise ``/api/v3`` prefix):
``GET /repos/{o}/{r}``, ``GET|POST /repos/{o}/{r}/pulls``, ``GET|PATCH /repos/{o}/{r}/pulls/{n}``, ``GET|PATCH /repos/{o}/{r}/issues/comments/{id}``,
``GET /repos/{o}/{r}/issues/{n}``, ``POST /repos/{o}/{r}/issues/{n}/labels``, and for follow-ups
``GET /repos/{o}/{r}/commits/{sha}`` with ``/check-runs`` and ``/status`` (seed with
:meth:`FakeGitHub.add_check_run` and :meth:`FakeGitHub.add_status`),
``GET /repos/{o}/{r}/actions/jobs/{id}/logs`` (302 to a log URL on another host name,
``localhost``, which refuses an ``Authorization`` header like GitHub's log storage does),
``GET /repos/{o}/{r}/pulls/{n}/reviews`` and ``/comments`` (:meth:`FakeGitHub.add_review`),
``GET /repos/{o}/{r}/pulls/{n}/commits`` and ``/files`` and ``GET /repos/{o}/{r}/compare/{base}...{head}``
(read from a real bare repository after :meth:`FakeGitHub.follow_remote`; merge or close a PR at a
given time with :meth:`FakeGitHub.decide`; a PR the bot opens is created at the fake's clock),
``GET|POST /repos/{o}/{r}/issues/{n}/comments`` (:meth:`FakeGitHub.add_comment`), and for who may
direct the bot ``GET /repos/{o}/{r}/collaborators/{user}/permission`` (:meth:`FakeGitHub.add_collaborator`;
anyone else reads the public repository: ``read``), ``GET /repos/{o}/{r}/issues`` (issues and pull
requests, as GitHub lists them), ``GET /repos/{o}/{r}/issues/{n}`` and ``/events`` (:meth:`FakeGitHub.add_issue`,
:meth:`FakeGitHub.label_issue`). Every comment, review and issue carries ``author_association``
(OWNER for the owner, COLLABORATOR for collaborators, else NONE or what ``associations`` says). Requests without
an ``Authorization`` header get 401 "Requires authentication"; with a token other than
``fake.token``, 401 "Bad credentials". The fixture ``fake_github`` is defined here; import it
into a test module or list this module in ``pytest_plugins``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.fakes.loopback import LoopbackServer

GITHUB_TEST_TOKEN = "ghs_fakeTokenForTests0123456789abcdefXYZ"
DOCS = "https://docs.github.com/rest"
ACTIONS_NOT_PERMITTED = "GitHub Actions is not permitted to create or approve pull requests."
_TIMESTAMP = "2025-01-01T00:00:00Z"
BOT_LOGIN = "github-actions[bot]"
_LOG_PATH = "/_blob/job-logs/"


def _stamp(n: int) -> str:
    """Distinct, ordered times for seeded and created items (the n-th minute of 2025-01-01)."""
    return f"2025-01-01T{n // 60 % 24:02d}:{n % 60:02d}:00Z"


@dataclass(frozen=True)
class Failure:
    """A scripted error response; ``body`` is GitHub's JSON error envelope."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it: path without the API prefix, lower-case header names."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    json: Any


@dataclass
class FakePull:
    """One pull request in the fake's state; rendered to GitHub's JSON on every response."""

    number: int
    title: str
    body: str | None
    head: str
    base: str = "main"
    state: str = "open"
    merged: bool = False
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    head_repo: str | None = None  # full name of the head repository; None means this repository
    head_sha: str = ""
    user: str = "github-actions[bot]"
    created_at: str = _TIMESTAMP
    closed_at: str = ""  # when it was closed (and merged, for a merged one): see FakeGitHub.decide


@dataclass
class FakeIssue:
    """One issue (not a pull request) in the fake's state; ``events`` are its issue events as GitHub sends them."""

    number: int
    title: str
    body: str | None
    user: str
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


# GitHub's roles as the permission endpoint shows them: role_name -> the legacy "permission".
ROLE_PERMISSIONS = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}


class _Answer(Exception):
    """Raised by a route to send a response at once (errors, mostly)."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class FakeGitHub(LoopbackServer):
    """The fake GitHub API for one repository, ``owner/name``."""

    def __init__(
        self,
        owner: str = "octo",
        name: str = "repo",
        *,
        token: str = GITHUB_TEST_TOKEN,
        prefix: str = "",
        default_branch: str = "main",
    ) -> None:
        super().__init__()
        self.owner = owner
        self.name = name
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.default_branch = default_branch
        self.max_per_page = 100
        self.pulls: list[FakePull] = []
        self.requests: list[RecordedRequest] = []
        self.check_runs: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.job_logs: dict[int, str] = {}
        self.reviews: list[dict[str, Any]] = []
        self.review_comments: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.issues: list[FakeIssue] = []
        self.collaborators: dict[str, str] = {}  # login -> role (admin, maintain, write, triage, read)
        self.associations: dict[str, str] = {}  # login -> author_association, where not OWNER/COLLABORATOR/NONE
        # The head commit of a PR's branch; tests point it at a real remote (default: a hash of the name).
        self.head_sha_of: Callable[[FakePull], str] = lambda pull: pull.head_sha
        self.commits_of: Callable[[FakePull], list[dict[str, Any]]] = lambda pull: []
        self.files_of: Callable[[FakePull], list[dict[str, Any]]] = lambda pull: []
        self.compare_of: Callable[[str, str], list[dict[str, Any]]] = lambda base, head: []
        self._ids = 100
        self._failures: list[tuple[str, str, Failure]] = []
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API root, what ``GITHUB_API_URL`` should be."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def env(self, token: str | None = None) -> dict[str, str]:
        """What the bot needs in its environment to use this fake."""
        return {"GITHUB_API_URL": self.url, "GITHUB_REPOSITORY": self.full_name, "GITHUB_TOKEN": token or self.token}

    # -- state -----------------------------------------------------------------------------
    def add_pull(
        self,
        *,
        title: str,
        head: str,
        body: str | None = "",
        base: str = "main",
        state: str = "open",
        merged: bool = False,
        draft: bool = False,
        labels: tuple[str, ...] = (),
        head_repo: str | None = None,
    ) -> FakePull:
        """Seed a pull request (merged implies closed)."""
        with self._lock:
            pull = FakePull(
                number=self._next_number(),
                title=title,
                body=body,
                head=head,
                base=base,
                state="closed" if merged else state,
                merged=merged,
                draft=draft,
                labels=list(labels),
                head_repo=head_repo,
                head_sha=hashlib.sha1(head.encode()).hexdigest(),
            )
            self.pulls.append(pull)
            return pull

    def decide(self, number: int, *, merged: bool, at: str) -> FakePull:
        """Merge or close (unmerged) pull request ``number`` at ``at`` (UTC like 2026-11-21T03:17:00Z),
        as a reviewer does on GitHub."""
        pull = self.pull(number)
        pull.state, pull.merged, pull.closed_at = "closed", merged, at
        return pull

    def follow_remote(self, bare: Path, env: Mapping[str, str]) -> None:
        """Answer for each PR's head, commits and files from the branches of a real bare repository,
        as GitHub does from the pushed branch (commits since the base branch, oldest first)."""

        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=bare, env=dict(env), check=True, capture_output=True, text=True).stdout

        def head(pull: FakePull) -> str:
            return git("for-each-ref", "--format=%(objectname)", f"refs/heads/{pull.head}").strip() or pull.head_sha

        def commits(pull: FakePull) -> list[dict[str, Any]]:
            out = git("log", "--reverse", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%P%x00%s", f"{pull.base}..{head(pull)}")
            found = []
            for line in out.splitlines():
                sha, an, ae, cn, ce, parents, subject = line.split("\0")
                found.append({
                    "sha": sha, "node_id": f"C_{sha[:12]}", "url": f"{self.url}/repos/{self.full_name}/commits/{sha}",
                    "html_url": f"https://github.com/{self.full_name}/commit/{sha}",
                    "commit": {"author": {"name": an, "email": ae, "date": _TIMESTAMP},
                               "committer": {"name": cn, "email": ce, "date": _TIMESTAMP}, "message": subject,
                               "tree": {"sha": "0" * 40, "url": ""}, "comment_count": 0},
                    "author": None, "committer": None,
                    "parents": [{"sha": parent, "url": f"{self.url}/repos/{self.full_name}/commits/{parent}"}
                                for parent in parents.split()],
                })
            return found

        def diff(spec: str) -> list[dict[str, Any]]:
            statuses = {"A": "added", "D": "removed", "M": "modified"}
            found = []
            for line in git("diff", "--name-status", "--no-renames", spec).splitlines():
                status, name = line.split("\t", 1)
                added, removed, _ = git("diff", "--numstat", "--no-renames", spec, "--", name).split("\t", 2)
                patch = git("diff", spec, "--", name).split("@@", 1)
                found.append({"sha": "0" * 40, "filename": name, "status": statuses.get(status[0], "modified"),
                              "additions": int(added), "deletions": int(removed), "changes": int(added) + int(removed),
                              "blob_url": "", "raw_url": "", "contents_url": "",
                              "patch": "@@" + patch[1] if len(patch) == 2 else None})
            return found

        self.head_sha_of, self.commits_of = head, commits
        self.files_of = lambda pull: diff(f"{pull.base}...{head(pull)}")
        self.compare_of = lambda base, tip: diff(f"{base}...{tip}")

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_check_run(
        self, sha: str, name: str, *, status: str = "completed", conclusion: str | None = "failure",
        log: str | None = None, app: str = "github-actions", title: str | None = None, summary: str | None = None,
    ) -> int:
        """A check run on commit ``sha``; ``log`` is the Actions job log behind it. Returns its id (= the job id)."""
        with self._lock:
            run_id = self._next_id()
            api = f"{self.url}/repos/{self.full_name}"
            self.check_runs.append({
                "id": run_id, "head_sha": sha, "node_id": f"CR_{run_id}", "external_id": "",
                "url": f"{api}/check-runs/{run_id}",
                "html_url": f"https://github.com/{self.full_name}/actions/runs/9{run_id}/job/{run_id}",
                "details_url": f"https://github.com/{self.full_name}/actions/runs/9{run_id}/job/{run_id}",
                "status": status, "conclusion": conclusion if status == "completed" else None,
                "started_at": _stamp(run_id), "completed_at": _stamp(run_id) if status == "completed" else None,
                "output": {"title": title, "summary": summary, "text": None, "annotations_count": 0,
                           "annotations_url": f"{api}/check-runs/{run_id}/annotations"},
                "name": name, "check_suite": {"id": 5000 + run_id},
                "app": {"id": 15368, "slug": app, "node_id": "MDM6QXBwMTUzNjg=", "name": app.replace("-", " ").title(),
                        "owner": {"login": "github", "id": 9919, "type": "Organization"}},
                "pull_requests": [],
            })
            if log is not None:
                self.job_logs[run_id] = log
            return run_id

    def add_status(self, sha: str, context: str, state: str, description: str = "", target_url: str | None = None) -> None:
        """A commit status (the older statuses API: Jenkins, Travis, external CI)."""
        with self._lock:
            status_id = self._next_id()
            self.statuses.append({
                "url": f"{self.url}/repos/{self.full_name}/statuses/{sha}", "id": status_id, "node_id": f"SC_{status_id}",
                "state": state, "description": description, "target_url": target_url, "context": context,
                "created_at": _stamp(status_id), "updated_at": _stamp(status_id), "sha": sha,
                "creator": self._user_json("ci-bot", "Bot"),
            })

    def add_review(
        self, number: int, *, user: str, state: str, body: str = "", comments: tuple[tuple[str, int, str], ...] = ()
    ) -> int:
        """A submitted review on PR ``number`` with inline ``(path, line, body)`` comments; returns its id."""
        with self._lock:
            review_id = self._next_id()
            pull = self.pull(number)
            self.reviews.append({
                "id": review_id, "node_id": f"PRR_{review_id}", "user": self._user_json(user), "body": body,
                "state": state, "html_url": f"https://github.com/{self.full_name}/pull/{number}#pullrequestreview-{review_id}",
                "pull_request_url": f"{self.url}/repos/{self.full_name}/pulls/{number}",
                "author_association": self.association(user), "submitted_at": _stamp(review_id),
                "commit_id": self.head_sha_of(pull), "_number": number,
            })
            for path, line, text in comments:
                comment_id = self._next_id()
                self.review_comments.append({
                    "id": comment_id, "node_id": f"PRRC_{comment_id}", "pull_request_review_id": review_id,
                    "path": path, "line": line, "original_line": line, "side": "RIGHT", "position": 1,
                    "body": text, "user": self._user_json(user), "diff_hunk": "@@ -0,0 +1 @@",
                    "commit_id": self.head_sha_of(pull), "original_commit_id": self.head_sha_of(pull),
                    "html_url": f"https://github.com/{self.full_name}/pull/{number}#discussion_r{comment_id}",
                    "pull_request_url": f"{self.url}/repos/{self.full_name}/pulls/{number}",
                    "created_at": _stamp(comment_id), "updated_at": _stamp(comment_id),
                    "author_association": self.association(user), "_number": number,
                })
            return review_id

    def add_comment(self, number: int, *, user: str, body: str) -> dict[str, Any]:
        """A conversation comment on PR ``number`` (GitHub's issue comments)."""
        with self._lock:
            return self._new_comment(number, user, body)

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["_number"] == number]

    def _new_comment(self, number: int, user: str, body: str) -> dict[str, Any]:
        comment_id = self._next_id()
        api = f"{self.url}/repos/{self.full_name}"
        kind = "issues" if any(issue.number == number for issue in self.issues) else "pull"
        comment = {
            "id": comment_id, "node_id": f"IC_{comment_id}", "url": f"{api}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{self.full_name}/{kind}/{number}#issuecomment-{comment_id}",
            "issue_url": f"{api}/issues/{number}", "body": body, "user": self._user_json(user),
            "created_at": _stamp(comment_id), "updated_at": _stamp(comment_id),
            "author_association": self.association(user), "_number": number,
        }
        self.comments.append(comment)
        return comment

    def add_collaborator(self, login: str, role: str = "write", association: str = "COLLABORATOR") -> None:
        """Give ``login`` a role on the repository (admin, maintain, write, triage or read); its
        ``author_association`` becomes ``association`` (MEMBER for an organisation member)."""
        assert role in ROLE_PERMISSIONS, role
        with self._lock:
            self.collaborators[login] = role
            self.associations[login] = association

    def association(self, login: str) -> str:
        """``author_association`` as GitHub computes it for ``login`` on this repository."""
        if login == self.owner:
            return "OWNER"
        return self.associations.get(login, "NONE")

    def add_issue(self, *, title: str, body: str | None = "", user: str = "octo", labels: tuple[str, ...] = (),
                  labelled_by: str | None = None, state: str = "open") -> FakeIssue:
        """An issue by ``user``; each label applied by ``labelled_by`` (default: the author, as an issue
        template does) with a ``labeled`` event."""
        with self._lock:
            issue = FakeIssue(number=self._next_number(), title=title, body=body, user=user, state=state)
            self.issues.append(issue)
        for label in labels:
            self.label_issue(issue.number, label, actor=labelled_by or user)
        return issue

    def label_issue(self, number: int, label: str, *, actor: str, remove: bool = False) -> None:
        """``actor`` adds (or removes) ``label`` on issue ``number``, recorded as a (un)labeled event."""
        with self._lock:
            issue = self.issue(number)
            if remove:
                issue.labels = [name for name in issue.labels if name.casefold() != label.casefold()]
            elif label not in issue.labels:
                issue.labels.append(label)
            event_id = self._next_id()
            issue.events.append({
                "id": event_id, "node_id": f"LE_{event_id}", "url": f"{self.url}/repos/{self.full_name}/issues/events/{event_id}",
                "actor": self._user_json(actor), "event": "unlabeled" if remove else "labeled", "commit_id": None,
                "commit_url": None, "created_at": _stamp(event_id), "label": {"name": label, "color": "ededed"},
                "performed_via_github_app": None,
            })

    def issue(self, number: int) -> FakeIssue:
        return next(issue for issue in self.issues if issue.number == number)

    def _user_json(self, login: str, kind: str | None = None) -> dict[str, Any]:
        return {"login": login, "id": int(hashlib.sha1(login.encode()).hexdigest()[:6], 16),
                "type": kind or ("Bot" if login.endswith("[bot]") else "User"), "site_admin": False,
                "url": f"{self.url}/users/{login}", "html_url": f"https://github.com/{login}"}

    def pull(self, number: int) -> FakePull:
        return next(p for p in self.pulls if p.number == number)

    def fail_next(self, method: str, path: str, failure: Failure) -> None:
        """Answer the next ``method`` request whose path matches ``path`` (fnmatch) with ``failure``."""
        with self._lock:
            self._failures.append((method.upper(), path, failure))

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and fnmatch.fnmatchcase(r.path, path)]

    # -- scripted failures in GitHub's own words -------------------------------------------
    @staticmethod
    def actions_not_permitted() -> Failure:
        return Failure(
            403,
            {
                "message": ACTIONS_NOT_PERMITTED,
                "documentation_url": f"{DOCS}/pulls/pulls#create-a-pull-request",
                "status": "403",
            },
        )

    @staticmethod
    def bad_credentials() -> Failure:
        return Failure(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})

    @staticmethod
    def server_error(status: int = 502) -> Failure:
        return Failure(status, {"message": "Server Error"})

    @staticmethod
    def secondary_rate_limit() -> Failure:
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        return Failure(403, {"message": message, "documentation_url": DOCS}, {"Retry-After": "0"})

    @staticmethod
    def validation_failed(*messages: str) -> Failure:
        errors = [{"resource": "PullRequest", "code": "custom", "message": m} for m in messages]
        return Failure(
            422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS, "status": "422"}
        )

    # -- HTTP ------------------------------------------------------------------------------
    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        request = RecordedRequest(
            method=handler.command,
            path=path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            json=payload,
        )
        with self._lock:
            self.requests.append(request)
            if path.startswith(_LOG_PATH):
                self._send_log(handler, request)
                return
            try:
                self._authorise(request)
                failure = self._take_failure(request)
                if failure is not None:
                    raise _Answer(failure.status, failure.body, failure.headers)
                status, body, headers = self._route(request)
            except _Answer as answer:
                status, body, headers = answer.status, answer.body, answer.headers
        self._send(handler, status, body, headers)

    def _authorise(self, request: RecordedRequest) -> None:
        auth = request.headers.get("authorization", "")
        if not auth:
            raise _Answer(401, {"message": "Requires authentication", "documentation_url": DOCS, "status": "401"})
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer") or token != self.token:
            raise _Answer(401, self.bad_credentials().body)

    def _take_failure(self, request: RecordedRequest) -> Failure | None:
        for i, (method, pattern, failure) in enumerate(self._failures):
            if method == request.method and fnmatch.fnmatchcase(request.path, pattern):
                del self._failures[i]
                return failure
        return None

    def _send_log(self, handler: BaseHTTPRequestHandler, request: RecordedRequest) -> None:
        """The log storage a job-log redirect points at: signed URL, no token wanted (a leaked one is refused)."""
        job = request.path[len(_LOG_PATH):]
        log = self.job_logs.get(int(job)) if job.isdigit() else None
        if "authorization" in request.headers:
            status, data = 400, b"<Error><Code>InvalidAuthenticationInfo</Code></Error>"
        elif log is None or request.query.get("sig") != "fake-signature":
            status, data = 404, b"<Error><Code>BlobNotFound</Code></Error>"
        else:
            status, data = 200, log.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8" if status == 200 else "application/xml")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: Mapping[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-GitHub-Request-Id", "FAKE:0001")
        handler.send_header("X-RateLimit-Limit", "5000")
        handler.send_header("X-RateLimit-Remaining", "4999")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, request: RecordedRequest) -> tuple[int, Any, Mapping[str, str]]:
        repo_path = f"/repos/{self.owner}/{self.name}"
        if request.path == repo_path and request.method == "GET":
            return 200, self._repo_json(), {}
        if request.path == f"{repo_path}/pulls":
            if request.method == "GET":
                return self._list_pulls(request)
            if request.method == "POST":
                return 201, self._create_pull(request.json or {}), {}
        routed = self._trust_route(request, repo_path) or self._follow_up_route(request, repo_path)
        if routed is not None:
            return routed
        match = re.fullmatch(rf"{re.escape(repo_path)}/(pulls|issues)/(\d+)(/labels)?", request.path)
        if match:
            kind, number, labels = match.group(1), int(match.group(2)), match.group(3)
            pull = next((p for p in self.pulls if p.number == number), None)
            if pull is None:
                raise _Answer(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})
            if kind == "pulls" and not labels and request.method == "GET":
                return 200, self._pull_json(pull, full=True), {}
            if kind == "pulls" and not labels and request.method == "PATCH":
                return 200, self._update_pull(pull, request.json or {}), {}
            if kind == "issues" and not labels and request.method == "GET":
                return 200, self._issue_json(pull), {}
            if kind == "issues" and labels and request.method == "POST":
                return 200, self._add_labels(pull, request.json), {}
        raise _Answer(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    # -- routes ----------------------------------------------------------------------------
    def _trust_route(self, request: RecordedRequest, repo_path: str) -> tuple[int, Any, Mapping[str, str]] | None:
        """Collaborator permissions and issues (not pull requests): list, one, its events, its comments."""
        path, method = request.path, request.method
        not_found = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        if match := re.fullmatch(rf"{re.escape(repo_path)}/collaborators/([^/]+)/permission", path):
            if method != "GET":
                return None
            login = match.group(1)
            role = "admin" if login == self.owner else self.collaborators.get(login, "read")  # a public repository
            user = {**self._user_json(login), "permissions": {
                "admin": role == "admin", "maintain": role in ("admin", "maintain"), "push": ROLE_PERMISSIONS[role] in ("admin", "write"),
                "triage": role != "read", "pull": True}, "role_name": role}
            return 200, {"permission": ROLE_PERMISSIONS[role], "role_name": role, "user": user}, {}
        if path == f"{repo_path}/issues" and method == "GET":
            return self._list_issues(request)
        match = re.fullmatch(rf"{re.escape(repo_path)}/issues/(\d+)(/events|/comments)?", path)
        issue = next((i for i in self.issues if match and i.number == int(match.group(1))), None)
        if match is None or issue is None:
            return None
        part = match.group(2)
        if part is None and method == "GET":
            return 200, self._issue_item_json(issue), {}
        if part == "/events" and method == "GET":
            return 200, issue.events, {}
        if part == "/comments" and method == "GET":
            return 200, [_public(c) for c in self.comments_on(issue.number)], {}
        if part == "/comments" and method == "POST":
            body = (request.json or {}).get("body")
            if not isinstance(body, str) or not body:
                raise _Answer(422, self.validation_failed("Body cannot be blank").body)
            return 201, _public(self._new_comment(issue.number, BOT_LOGIN, body)), {}
        return 404, not_found, {}

    def _list_issues(self, request: RecordedRequest) -> tuple[int, Any, Mapping[str, str]]:
        """``GET .../issues``: issues and pull requests (GitHub lists both), filtered by state and labels (all of them)."""
        query = request.query
        state = query.get("state", "open")
        wanted = [name.casefold() for name in query.get("labels", "").split(",") if name]
        items: list[tuple[int, dict[str, Any]]] = [(i.number, self._issue_item_json(i)) for i in self.issues]
        items += [(p.number, self._issue_json(p)) for p in self.pulls]
        chosen = [
            data for _, data in sorted(items, key=lambda item: item[0], reverse=query.get("direction", "desc") == "desc")
            if (state == "all" or data["state"] == state)
            and all(name in {label["name"].casefold() for label in data["labels"]} for name in wanted)
        ]
        return self._paginate(request, chosen)

    def _paginate(self, request: RecordedRequest, chosen: list[Any]) -> tuple[int, Any, Mapping[str, str]]:
        """One page of ``chosen``, with GitHub's ``Link`` header when there are more."""
        query = request.query
        per_page = max(1, min(int(query.get("per_page", 30)), self.max_per_page))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(chosen) // per_page))
        items = chosen[(page - 1) * per_page : page * per_page]
        headers = {}
        if last > 1:
            links = []
            base = f"{self.url}{request.path}"

            def link(n: int, rel: str) -> str:
                return f'<{base}?{urlencode({**query, "per_page": per_page, "page": n})}>; rel="{rel}"'

            if page < last:
                links += [link(page + 1, "next"), link(last, "last")]
            if page > 1:
                links += [link(1, "first"), link(page - 1, "prev")]
            headers["Link"] = ", ".join(links)
        return 200, items, headers

    def _follow_up_route(self, request: RecordedRequest, repo_path: str) -> tuple[int, Any, Mapping[str, str]] | None:
        """Commits, check runs, statuses, job logs, reviews and comments; None for other paths."""
        path, method = request.path, request.method
        not_found = {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        if match := re.fullmatch(rf"{re.escape(repo_path)}/commits/([0-9a-f]{{40}})(/check-runs|/status)?", path):
            sha, part = match.groups()
            if method != "GET":
                return None
            if part is None:
                return 200, self._commit_json(sha), {}
            if part == "/check-runs":
                runs = [{k: v for k, v in run.items()} for run in self.check_runs if run["head_sha"] == sha]
                return 200, {"total_count": len(runs), "check_runs": runs}, {}
            statuses = [status for status in self.statuses if status["sha"] == sha]
            latest: dict[str, dict[str, Any]] = {}
            for status in statuses:  # GitHub keeps the latest status per context
                latest[status["context"]] = status
            states = [status["state"] for status in latest.values()]
            combined = ("failure" if any(s in ("failure", "error") for s in states)
                        else "success" if states and all(s == "success" for s in states) else "pending")
            return 200, {
                "state": combined, "statuses": list(reversed(list(latest.values()))), "sha": sha,
                "total_count": len(latest), "repository": self._repo_json(),
                "commit_url": f"{self.url}{repo_path}/commits/{sha}", "url": f"{self.url}{repo_path}/commits/{sha}/status",
            }, {}
        if match := re.fullmatch(rf"{re.escape(repo_path)}/actions/jobs/(\d+)/logs", path):
            job = int(match.group(1))
            if job not in self.job_logs:
                return 404, not_found, {}
            # GitHub answers with a short-lived URL on another host; here another host name for the same server.
            return 302, None, {"Location": f"http://localhost:{self.port}{_LOG_PATH}{job}?sig=fake-signature"}
        if (match := re.fullmatch(rf"{re.escape(repo_path)}/compare/([0-9a-f]{{40}})\.\.\.([0-9a-f]{{40}})", path)) and method == "GET":
            base, head = match.groups()
            files = self.compare_of(base, head)
            return 200, {
                "url": f"{self.url}{path}", "html_url": f"https://github.com/{self.full_name}/compare/{base}...{head}",
                "permalink_url": "", "diff_url": "", "patch_url": "", "base_commit": self._commit_json(base),
                "merge_base_commit": self._commit_json(base), "status": "ahead", "ahead_by": 1, "behind_by": 0,
                "total_commits": 1, "commits": [], "files": files,
            }, {}
        if match := re.fullmatch(rf"{re.escape(repo_path)}/pulls/(\d+)/(commits|files)", path):
            pull = next((p for p in self.pulls if p.number == int(match.group(1))), None)
            if pull is None or method != "GET":
                return 404, not_found, {}
            return 200, (self.commits_of if match.group(2) == "commits" else self.files_of)(pull), {}
        if match := re.fullmatch(rf"{re.escape(repo_path)}/issues/comments/(\d+)", path):
            found = next((c for c in self.comments if c["id"] == int(match.group(1))), None)
            if found is None or method not in ("GET", "PATCH"):
                return 404, not_found, {}
            if method == "PATCH":
                body = (request.json or {}).get("body")
                if not isinstance(body, str) or not body:
                    raise _Answer(422, self.validation_failed("Body cannot be blank").body)
                found["body"] = body
            return 200, _public(found), {}
        if match := re.fullmatch(rf"{re.escape(repo_path)}/(pulls|issues)/(\d+)/(reviews|comments)", path):
            kind, number, part = match.group(1), int(match.group(2)), match.group(3)
            if not any(p.number == number for p in self.pulls):
                return 404, not_found, {}
            if kind == "pulls" and part == "reviews" and method == "GET":
                return 200, [_public(r) for r in self.reviews if r["_number"] == number], {}
            if kind == "pulls" and part == "comments" and method == "GET":
                return 200, [_public(c) for c in self.review_comments if c["_number"] == number], {}
            if kind == "issues" and part == "comments" and method == "GET":
                return 200, [_public(c) for c in self.comments_on(number)], {}
            if kind == "issues" and part == "comments" and method == "POST":
                body = (request.json or {}).get("body")
                if not isinstance(body, str) or not body:
                    raise _Answer(422, self.validation_failed("Body cannot be blank").body)
                return 201, _public(self._new_comment(number, BOT_LOGIN, body)), {}
        return None

    def _list_pulls(self, request: RecordedRequest) -> tuple[int, Any, Mapping[str, str]]:
        query = request.query
        state = query.get("state", "open")
        chosen = [p for p in self.pulls if state == "all" or p.state == state]
        if "head" in query:
            owner, _, ref = query["head"].rpartition(":")
            chosen = [p for p in chosen if p.head == ref and (p.head_repo or self.full_name).split("/")[0] == owner]
        if "base" in query:
            chosen = [p for p in chosen if p.base == query["base"]]
        chosen.sort(key=lambda p: p.number, reverse=True)
        return self._paginate(request, [self._pull_json(p, full=False) for p in chosen])

    def _create_pull(self, data: Mapping[str, Any]) -> Any:
        missing = [name for name in ("head", "base", "title") if not data.get(name)]
        if missing:
            errors = [{"resource": "PullRequest", "field": name, "code": "missing_field"} for name in missing]
            raise _Answer(
                422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS, "status": "422"}
            )
        if len(str(data.get("body") or "")) > 65_536:  # GitHub's limit on an issue or pull request body
            raise _Answer(422, self.validation_failed("body is too long (maximum is 65536 characters)").body)
        owner, _, ref = str(data["head"]).rpartition(":")
        head_repo = None if owner in ("", self.owner) else f"{owner}/{self.name}"
        for pull in self.pulls:
            if pull.state == "open" and pull.head == ref and pull.head_repo == head_repo and pull.base == data["base"]:
                message = f"A pull request already exists for {owner or self.owner}:{ref}."
                raise _Answer(422, self.validation_failed(message).body)
        pull = FakePull(
            number=self._next_number(),
            title=str(data["title"]),
            body=data.get("body"),
            head=ref,
            base=str(data["base"]),
            draft=bool(data.get("draft", False)),
            head_repo=head_repo,
            head_sha=hashlib.sha1(ref.encode()).hexdigest(),
            created_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),  # GitHub's clock
        )
        self.pulls.append(pull)
        return self._pull_json(pull, full=True)

    def _update_pull(self, pull: FakePull, data: Mapping[str, Any]) -> Any:
        for name in ("title", "body", "base"):
            if name in data:
                setattr(pull, name, data[name])
        if data.get("state") in ("open", "closed") and not pull.merged:
            pull.state = data["state"]
        return self._pull_json(pull, full=True)

    def _add_labels(self, pull: FakePull, data: Any) -> Any:
        names = data.get("labels", []) if isinstance(data, dict) else data
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Answer(422, {"message": "Invalid request.", "documentation_url": DOCS, "status": "422"})
        pull.labels += [n for n in names if n not in pull.labels]
        return self._labels_json(pull)

    # -- JSON ------------------------------------------------------------------------------
    def _next_number(self) -> int:
        """Issues and pull requests share one sequence of numbers, as on GitHub."""
        return max((item.number for item in [*self.pulls, *self.issues]), default=0) + 1

    def _repo_json(self, full_name: str | None = None) -> dict[str, Any]:
        full_name = full_name or self.full_name
        owner, _, name = full_name.partition("/")
        return {
            "id": int(hashlib.sha1(full_name.encode()).hexdigest()[:8], 16),
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "type": "Organization"},
            "private": False,
            "fork": full_name != self.full_name,
            "url": f"{self.url}/repos/{full_name}",
            "html_url": f"https://github.com/{full_name}",
            "default_branch": self.default_branch,
        }

    def _commit_json(self, sha: str) -> dict[str, Any]:
        api = f"{self.url}/repos/{self.full_name}"
        person = {"name": "GitHub Actions", "email": "41898282+github-actions[bot]@users.noreply.github.com", "date": _TIMESTAMP}
        return {
            "sha": sha, "node_id": f"C_{sha[:12]}", "url": f"{api}/commits/{sha}",
            "html_url": f"https://github.com/{self.full_name}/commit/{sha}", "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {"url": f"{api}/git/commits/{sha}", "author": person, "committer": person, "message": "",
                       "tree": {"sha": "0" * 40, "url": f"{api}/git/trees/{'0' * 40}"}, "comment_count": 0},
            "author": self._user_json(BOT_LOGIN), "committer": self._user_json(BOT_LOGIN), "parents": [],
            "stats": {"total": 0, "additions": 0, "deletions": 0}, "files": [],
        }

    def _labels_json(self, item: FakePull | FakeIssue) -> list[dict[str, Any]]:
        return [
            {
                "id": i + 1,
                "name": n,
                "color": "ededed",
                "default": False,
                "url": f"{self.url}/repos/{self.full_name}/labels/{n}",
            }
            for i, n in enumerate(item.labels)
        ]

    def _pull_json(self, pull: FakePull, *, full: bool) -> dict[str, Any]:
        """A pull request as GitHub renders it; the list endpoint leaves out ``merged`` like GitHub does."""
        api = f"{self.url}/repos/{self.full_name}"
        head_repo = pull.head_repo or self.full_name
        data: dict[str, Any] = {
            "id": 1000 + pull.number,
            "number": pull.number,
            "url": f"{api}/pulls/{pull.number}",
            "html_url": f"https://github.com/{self.full_name}/pull/{pull.number}",
            "issue_url": f"{api}/issues/{pull.number}",
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "body": pull.body,
            "draft": pull.draft,
            "user": {"login": pull.user, "type": "Bot"},
            "labels": self._labels_json(pull),
            "created_at": pull.created_at,
            "updated_at": pull.closed_at or pull.created_at,
            "closed_at": None if pull.state == "open" else pull.closed_at or _TIMESTAMP,
            "merged_at": (pull.closed_at or _TIMESTAMP) if pull.merged else None,
            "head": {
                "label": f"{head_repo.split('/')[0]}:{pull.head}",
                "ref": pull.head,
                "sha": self.head_sha_of(pull),
                "repo": self._repo_json(head_repo),
            },
            "base": {
                "label": f"{self.owner}:{pull.base}",
                "ref": pull.base,
                "sha": hashlib.sha1(pull.base.encode()).hexdigest(),
                "repo": self._repo_json(),
            },
        }
        if full:
            data.update(
                merged=pull.merged, mergeable=None, comments=0, commits=1, additions=1, deletions=0, changed_files=1
            )
        return data

    def _issue_json(self, pull: FakePull) -> dict[str, Any]:
        api = f"{self.url}/repos/{self.full_name}"
        return {
            "id": 2000 + pull.number,
            "number": pull.number,
            "url": f"{api}/issues/{pull.number}",
            "html_url": f"https://github.com/{self.full_name}/pull/{pull.number}",
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "user": {"login": pull.user, "type": "Bot"},
            "labels": self._labels_json(pull),
            "pull_request": {
                "url": f"{api}/pulls/{pull.number}",
                "html_url": f"https://github.com/{self.full_name}/pull/{pull.number}",
            },
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "closed_at": None if pull.state == "open" else _TIMESTAMP,
            "author_association": self.association(pull.user),
        }

    def _issue_item_json(self, issue: FakeIssue) -> dict[str, Any]:
        """An issue as GitHub renders it (no ``pull_request`` key: that marks the pull requests in a list)."""
        api = f"{self.url}/repos/{self.full_name}"
        number = issue.number
        return {
            "id": 3000 + number, "node_id": f"I_{number}", "url": f"{api}/issues/{number}", "repository_url": api,
            "labels_url": f"{api}/issues/{number}/labels{{/name}}", "comments_url": f"{api}/issues/{number}/comments",
            "events_url": f"{api}/issues/{number}/events", "html_url": f"https://github.com/{self.full_name}/issues/{number}",
            "number": number, "state": issue.state, "state_reason": None if issue.state == "open" else "completed",
            "title": issue.title, "body": issue.body, "user": self._user_json(issue.user), "labels": self._labels_json(issue),
            "assignee": None, "assignees": [], "milestone": None, "locked": False, "active_lock_reason": None,
            "comments": len(self.comments_on(number)), "created_at": _stamp(number), "updated_at": _stamp(number),
            "closed_at": None if issue.state == "open" else _stamp(number), "author_association": self.association(issue.user),
            "timeline_url": f"{api}/issues/{number}/timeline", "performed_via_github_app": None,
        }


def _public(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as GitHub sends it: without the fake's own bookkeeping keys."""
    return {key: value for key, value in item.items() if not key.startswith("_")}


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running fake GitHub for ``octo/repo``; ``fake_github.env()`` points the bot at it."""
    with FakeGitHub() as fake:
        yield fake
