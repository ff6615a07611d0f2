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
``GET /repos/{o}/{r}``, ``GET|POST /repos/{o}/{r}/pulls``, ``GET|PATCH /repos/{o}/{r}/pulls/{n}``,
``GET /repos/{o}/{r}/issues/{n}``, ``POST /repos/{o}/{r}/issues/{n}/labels``. Requests without
an ``Authorization`` header get 401 "Requires authentication"; with a token other than
``fake.token``, 401 "Bad credentials". The fixture ``fake_github`` is defined here; import it
into a test module or list this module in ``pytest_plugins``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.fakes.loopback import LoopbackServer

GITHUB_TEST_TOKEN = "ghs_fakeTokenForTests0123456789abcdefXYZ"
DOCS = "https://docs.github.com/rest"
ACTIONS_NOT_PERMITTED = "GitHub Actions is not permitted to create or approve pull requests."
_TIMESTAMP = "2025-01-01T00:00:00Z"


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
        return 200, [self._pull_json(p, full=False) for p in items], headers

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
        return max((p.number for p in self.pulls), default=0) + 1

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

    def _labels_json(self, pull: FakePull) -> list[dict[str, Any]]:
        return [
            {
                "id": i + 1,
                "name": n,
                "color": "ededed",
                "default": False,
                "url": f"{self.url}/repos/{self.full_name}/labels/{n}",
            }
            for i, n in enumerate(pull.labels)
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
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "closed_at": None if pull.state == "open" else _TIMESTAMP,
            "merged_at": _TIMESTAMP if pull.merged else None,
            "head": {
                "label": f"{head_repo.split('/')[0]}:{pull.head}",
                "ref": pull.head,
                "sha": pull.head_sha,
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
        }


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running fake GitHub for ``octo/repo``; ``fake_github.env()`` points the bot at it."""
    with FakeGitHub() as fake:
        yield fake
