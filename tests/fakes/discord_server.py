"""A loopback fake of a Discord webhook: ``POST /api/webhooks/{id}/{token}``, in Discord's wire format.

A ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, so the bot's real ``requests``
session posts to it over a real socket, in this process or in a ``python -m automation``
subprocess given ``fake.env()`` (``DISCORD_WEBHOOK_URL``). With ``?wait=true`` a delivered
message is answered 200 with the message object, without it 204, as Discord does. Payloads
are checked against Discord's embed limits (400 ``Invalid Form Body`` otherwise); a wrong
webhook id is 404 ``Unknown Webhook`` and a wrong token 401 ``Invalid Webhook Token``.

Script the next replies with :meth:`FakeDiscord.fail_next`, or every reply with
:meth:`FakeDiscord.fail_always` (Discord down), using :meth:`rate_limited`,
:meth:`server_error` and :meth:`unknown_webhook`. Assert on ``fake.requests`` (every
request, with ``query`` and ``json``), ``fake.messages`` (the delivered payloads) and
``fake.embeds`` (their embeds, flattened).

    with FakeDiscord() as discord:
        discord.fail_next(FakeDiscord.rate_limited())
        Notifier(discord.url).notify([embed])

The fixture ``fake_discord`` is defined here: import ``fake_discord_fixture`` into a test module.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fakes.loopback import LoopbackServer

WEBHOOK_ID = "123"
WEBHOOK_TOKEN = "secret-token-value"
_PATH = re.compile(r"/api(?:/v\d+)?/webhooks/([^/]+)/([^/]+)/?")

# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
_LIMITS = {"title": 256, "description": 4096, "field_name": 256, "field_value": 1024, "footer": 2048, "author": 256}


@dataclass(frozen=True)
class Reply:
    """A scripted response: status, JSON body (None: no body) and extra headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; ``query`` parsed, header names lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    raw: bytes
    json: Any
    status: int = 0  # what the fake answered


class FakeDiscord(LoopbackServer):
    """One webhook, ``/api/webhooks/<webhook_id>/<token>``, and the channel it posts to."""

    def __init__(self, webhook_id: str = WEBHOOK_ID, token: str = WEBHOOK_TOKEN, *, channel_id: str = "555") -> None:
        super().__init__()
        self.webhook_id = webhook_id
        self.token = token
        self.channel_id = channel_id
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._always: Reply | None = None
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The webhook URL, what ``DISCORD_WEBHOOK_URL`` should be (a secret, like Discord's)."""
        return f"http://127.0.0.1:{self.port}/api/webhooks/{self.webhook_id}/{self.token}"

    def env(self) -> dict[str, str]:
        return {"DISCORD_WEBHOOK_URL": self.url}

    # -- scripting -------------------------------------------------------------------------
    def fail_next(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, one each, in order."""
        with self._lock:
            self._queue.extend(replies)

    def fail_always(self, reply: Reply | None) -> None:
        """Answer every request with ``reply`` (None: back to normal) once the queue is used up."""
        with self._lock:
            self._always = reply

    @staticmethod
    def rate_limited(retry_after: float = 0.01, *, is_global: bool = False) -> Reply:
        """429 as Discord sends it: JSON ``retry_after`` in seconds, and the headers."""
        headers = {"Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Limit": "5",
                   "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(retry_after),
                   "X-RateLimit-Scope": "shared" if is_global else "user"}
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"retry_after": retry_after, "global": is_global, "message": "You are being rate limited."}
        return Reply(429, body, headers)

    @staticmethod
    def server_error(status: int = 500) -> Reply:
        return Reply(status, {"message": "500: Internal Server Error", "code": 0})

    @staticmethod
    def unknown_webhook() -> Reply:
        return Reply(404, {"code": 10015, "message": "Unknown Webhook"})

    @staticmethod
    def invalid_token() -> Reply:
        return Reply(401, {"code": 50027, "message": "Invalid Webhook Token"})

    # -- the log ---------------------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        """The payloads Discord accepted, in order."""
        with self._lock:
            return [r.json for r in self.requests if 200 <= r.status < 300]

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return [embed for message in self.messages for embed in message.get("embeds", [])]

    def titles(self) -> list[str]:
        return [embed.get("title", "") for embed in self.embeds]

    def embeds_titled(self, text: str) -> list[dict[str, Any]]:
        """Delivered embeds whose title contains ``text``."""
        return [embed for embed in self.embeds if text in embed.get("title", "")]

    # -- HTTP ------------------------------------------------------------------------------
    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            reply = self._queue.popleft() if self._queue else self._always
            if reply is None:
                content_type = handler.headers.get("Content-Type", "")
                reply = self._route(handler.command, parts.path, query, content_type, payload)
            self.requests.append(
                RecordedRequest(
                    method=handler.command, path=parts.path, query=query,
                    headers={k.lower(): v for k, v in handler.headers.items()}, raw=raw, json=payload,
                    status=reply.status,
                )
            )
        self._send(handler, reply)

    def _route(self, method: str, path: str, query: Mapping[str, str], content_type: str, payload: Any) -> Reply:
        match = _PATH.fullmatch(path)
        if match is None:
            return Reply(404, {"message": "404: Not Found", "code": 0})
        if match.group(1) != self.webhook_id:
            return self.unknown_webhook()
        if match.group(2) != self.token:
            return self.invalid_token()
        if method != "POST":
            return Reply(405, {"message": "405: Method Not Allowed", "code": 0})
        if "json" not in content_type.lower() or not isinstance(payload, dict):
            return Reply(400, {"code": 50109, "message": "The request body contains invalid JSON."})
        problem = _form_problem(payload)
        if problem is not None:
            return Reply(400, {"code": 50035, "message": "Invalid Form Body", "errors": problem})
        if not payload.get("content") and not payload.get("embeds"):
            return Reply(400, {"code": 50006, "message": "Cannot send an empty message"})
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "0.4"}
        if query.get("wait", "").lower() != "true":
            return Reply(204, None, headers)
        return Reply(200, self._message(payload), headers)

    def _message(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The message object Discord returns for ``?wait=true``."""
        return {
            "id": str(next(self._ids)),
            "type": 0,
            "content": payload.get("content", ""),
            "channel_id": self.channel_id,
            "author": {"id": self.webhook_id, "username": payload.get("username", "ai-orchestration"),
                       "bot": True, "discriminator": "0000", "avatar": None},
            "attachments": [],
            "embeds": [dict(embed, type="rich") for embed in payload.get("embeds", [])],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
            "edited_timestamp": None,
            "flags": 0,
            "components": [],
            "webhook_id": self.webhook_id,
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        if reply.body is not None:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def _length(text: Any) -> int:
    return len(str(text).encode("utf-16-le", "surrogatepass")) // 2


def _form_problem(payload: Mapping[str, Any]) -> dict[str, str] | None:
    """Which of Discord's embed limits the payload breaks, in the spirit of its error tree."""
    embeds = payload.get("embeds") or []
    if not isinstance(embeds, list):
        return {"embeds": "must be an array"}
    if len(embeds) > 10:
        return {"embeds": "Must be 10 or fewer in length."}
    total = 0
    for index, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            return {f"embeds.{index}": "must be an object"}
        parts = {
            "title": embed.get("title", ""),
            "description": embed.get("description", ""),
            "footer": (embed.get("footer") or {}).get("text", ""),
            "author": (embed.get("author") or {}).get("name", ""),
        }
        for name, text in parts.items():
            if _length(text) > _LIMITS[name]:
                return {f"embeds.{index}.{name}": f"Must be {_LIMITS[name]} or fewer in length."}
            total += _length(text)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            return {f"embeds.{index}.fields": "Must be 25 or fewer in length."}
        for number, item in enumerate(fields):
            for key, limit in (("name", _LIMITS["field_name"]), ("value", _LIMITS["field_value"])):
                text = item.get(key, "")
                if not str(text).strip():
                    return {f"embeds.{index}.fields.{number}.{key}": "This field is required"}
                if _length(text) > limit:
                    return {f"embeds.{index}.fields.{number}.{key}": f"Must be {limit} or fewer in length."}
                total += _length(text)
    if total > 6000:
        return {"embeds": "Embed size exceeds maximum size of 6000"}
    return None


@pytest.fixture(name="fake_discord")
def fake_discord_fixture() -> Iterator[FakeDiscord]:
    """A running fake webhook; ``fake_discord.env()`` points the bot at it."""
    with FakeDiscord() as fake:
        yield fake
