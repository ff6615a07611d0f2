"""A git host on 127.0.0.1 that answers as GitHub's smart HTTP does for a private repository:
git's own ``git http-backend`` (CGI) serves bare repositories under ``root`` at
``/<owner>/<name>.git``, behind GitHub's token rules.

- No credentials: 401 with ``WWW-Authenticate: Basic`` (git, with no way to ask, then fails).
- A token GitHub does not know: 401 ``Invalid username or token``.
- A token with read access pushing (``git-receive-pack``): 403, body
  ``Write access to repository not granted.``, as GitHub answers a read-only fine-grained PAT.

Tokens arrive as GitHub takes them: HTTP Basic, any user name, the token as the password
(actions/checkout sends ``x-access-token:<token>`` in an ``http.extraheader``).
"""

from __future__ import annotations

import base64
import os
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.fakes.loopback import LoopbackServer

READ, WRITE = "read", "write"


class FakeGitHost(LoopbackServer):
    """Bare repositories under ``root``; ``tokens`` maps a token to READ or WRITE."""

    def __init__(self, root: Path, tokens: dict[str, str]) -> None:
        super().__init__()
        self.root = root
        self.tokens = tokens
        self.refused: list[tuple[int, str]] = []  # (status, path) of each refusal

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        body = _read_body(handler)
        pushing = "service=git-receive-pack" in query or path.endswith("/git-receive-pack")
        access = self._access(handler.headers.get("Authorization", ""))
        if access is None:
            self._refuse(handler, 401, path, "Invalid username or token. Password authentication is not supported "
                                              "for Git operations.\n")
            return
        if pushing and access != WRITE:
            self._refuse(handler, 403, path, "Write access to repository not granted.\n")
            return
        env = {
            "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": handler.command,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
        }
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _access(self, authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            _, _, token = base64.b64decode(encoded).decode("utf-8").partition(":")
        except ValueError:
            return None
        return self.tokens.get(token)

    def _refuse(self, handler: BaseHTTPRequestHandler, status: int, path: str, text: str) -> None:
        self.refused.append((status, path))
        payload = text.encode("utf-8")
        handler.send_response(status)
        if status == 401:
            handler.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with a length or chunked (git chunks a large push)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
