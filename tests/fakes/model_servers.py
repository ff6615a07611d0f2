"""Loopback fake Anthropic and OpenAI servers that speak the real wire formats.

Each fake is a ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, so the real SDKs talk
to it over real sockets, in this process or in a ``python -m automation`` subprocess given
``fake.env()``. Replies come from a queue of scripted ``Reply`` objects (each aimed at one
path, by default the generation endpoint), then from a configurable default. Every request
is recorded (path, headers, parsed JSON) so tests assert exactly what the bot sent.

    with FakeAnthropic() as claude:
        claude.script(FakeAnthropic.overloaded(), FakeAnthropic.message("hello"))
        client = make_anthropic_client(claude.env())

Fixtures ``fake_anthropic`` and ``fake_openai`` (started, stopped after the test) are defined
here: import ``fake_anthropic_fixture, fake_openai_fixture`` into the test module.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.loopback import LoopbackServer

ANTHROPIC_TEST_KEY = "sk-ant-api03-test-0123456789abcdefghij"
OPENAI_TEST_KEY = "sk-proj-test-0123456789abcdefghijklmn"

# Server-directed waits small enough to keep retry tests fast (the SDKs ignore a wait of 0
# and fall back to their own 0.5 s+ back-off, so "0" would be slower, not faster).
FAST_RETRY_AFTER = "0.001"

# How each effort level scales a fake model's thinking/reasoning (the level the fake is set
# for thinks exactly its ``thinking_tokens``/``reasoning_tokens``).
EFFORT_SCALE = {"none": 0.0, "minimal": 0.1, "low": 0.25, "medium": 0.5, "high": 1.0, "xhigh": 1.5, "max": 2.0}
# Claude models that think by default (adaptive thinking at effort high, display omitted).
CLAUDE_THINKING_MODELS = ("claude-sonnet-5", "claude-opus-5")
CLAUDE_EFFORT_MODELS = CLAUDE_THINKING_MODELS + ("claude-sonnet-4-6", "claude-opus-4")
CLAUDE_MAX_OUTPUT = 128_000
# Anthropic's minimum cacheable prefix by model (platform.claude.com prompt-caching page) and
# the default cache lifetime, refreshed on each hit.
CLAUDE_MIN_CACHEABLE = (("claude-haiku", 4096), ("claude-opus-4-5", 4096), ("claude-opus-4-6", 4096), ("claude", 1024))
CLAUDE_CACHE_TTL_SECONDS = 300.0
# OpenAI's automatic prefix caching: prompts of 1,024 tokens or more, hits in 128-token steps.
OPENAI_MIN_CACHED = 1024
OPENAI_CACHE_STEP = 128
OPENAI_CACHE_TTL_SECONDS = 300.0
# OpenAI reasoning models (reasoning_effort, default medium) and their output limit.
OPENAI_REASONING_MODELS = ("gpt-6", "gpt-5", "o1", "o3", "o4")


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _epoch(stamp: str) -> float:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def _cut(text: str, tokens_kept: int, tokens_total: int) -> str:
    """The start of ``text`` a reply cut after ``tokens_kept`` of its ``tokens_total`` tokens shows."""
    if tokens_total <= 0:
        return text
    return text[: len(text) * max(0, tokens_kept) // tokens_total]



@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response; ``path`` None means the fake's generation endpoint."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    delay: float = 0.0  # seconds the fake holds the request before answering (a slow provider)
    release: threading.Event | None = None  # or: held until the test sets it (at most two minutes)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-case."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    raw: bytes
    json: Any


class FakeModelServer(LoopbackServer):
    """The shared machinery: socket, thread, scripted queue, request log."""

    generation_path = ""
    api_key = ""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []

    # lifecycle
    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # scripting
    def script(self, *replies: Reply) -> None:
        """Queue replies; each is used once, by the first request to its path."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> list[Reply]:
        with self._lock:
            return list(self._queue)

    # the log
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return self.requests_to(self.generation_path)

    def places_containing(self, secret: str, *, auth_header: str = "authorization") -> list[str]:
        """Where ``secret`` appeared in any request other than the ``auth_header`` header
        (both SDKs send ``Authorization: Bearer <key>``; Anthropic also accepts ``x-api-key``)."""
        places = []
        for index, request in enumerate(self.requests):
            if secret in request.path or secret in request.query:
                places.append(f"request {index}: URL")
            if secret.encode() in request.raw:
                places.append(f"request {index}: body")
            for name, value in request.headers.items():
                if name != auth_header and secret in value:
                    places.append(f"request {index}: header {name}")
        return places

    # serving
    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        request = RecordedRequest(
            method=handler.command,
            path=url.path,
            query=url.query,
            headers={k.lower(): v for k, v in handler.headers.items()},
            raw=raw,
            json=parsed,
        )
        with self._lock:
            self._requests.append(request)
            reply = self._take(url.path)
        if reply is None:
            reply = self.default_reply(request)
        self._send(handler, reply)

    def _take(self, path: str) -> Reply | None:
        for reply in self._queue:
            if (reply.path or self.generation_path) == path:
                self._queue.remove(reply)
                return reply
        return None

    def default_reply(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.release is not None:
            reply.release.wait(timeout=120)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        try:
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout)
            handler.close_connection = True


def _multipart(request: RecordedRequest) -> dict[str, tuple[bytes, str]]:
    """The fields of a multipart/form-data body: name -> (bytes, filename)."""
    parsed = BytesParser(policy=policy.HTTP).parsebytes(
        f"content-type: {request.headers.get('content-type', '')}\r\n\r\n".encode() + request.raw)
    fields: dict[str, tuple[bytes, str]] = {}
    for part in parsed.iter_parts() if parsed.is_multipart() else []:
        payload = part.get_payload(decode=True)
        fields[str(part.get_param("name", header="content-disposition"))] = (
            payload if isinstance(payload, bytes) else b"", part.get_filename() or "")
    return fields


def _not_found(path: str) -> Reply:
    return Reply(404, {"error": {"type": "not_found_error", "message": f"fake: no route {path}"}})


class FakeAnthropic(FakeModelServer):
    """``POST /v1/messages`` and ``POST /v1/messages/count_tokens``, as api.anthropic.com."""

    generation_path = "/v1/messages"
    count_tokens_path = "/v1/messages/count_tokens"
    api_key = ANTHROPIC_TEST_KEY

    def __init__(
        self,
        *,
        text: str = "Analysis: change the greeting in app.py.",
        input_tokens: int = 1200,
        output_tokens: int = 300,
        cache_write_5m: int = 0,
        cache_write_1h: int = 0,
        cache_read: int = 0,
        stop_reason: str = "end_turn",
        model: str | None = None,
        counted_tokens: int | None = None,
        thinking_tokens: int = 2_000,
    ) -> None:
        super().__init__()
        self.text = text
        # What a thinking model (CLAUDE_THINKING_MODELS) thinks at effort high, its default;
        # other levels scale it by EFFORT_SCALE. Billed inside output_tokens, against max_tokens.
        self.thinking_tokens = thinking_tokens
        self.usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_write_5m": cache_write_5m,
            "cache_write_1h": cache_write_1h,
            "cache_read": cache_read,
        }
        self.stop_reason = stop_reason
        self.model = model  # None: echo the requested model
        self.counted_tokens = counted_tokens  # None: about a token per 4 bytes of the request
        self.batches: dict[str, dict[str, Any]] = {}  # Message Batches by id (``batch_reply``)
        self.batch_created_release: threading.Event | None = None  # set: a created batch's reply waits for it
        # The prompt cache: (model, prefix) -> when it expires on ``clock`` (tests may move it on).
        self.cache: dict[tuple[str, str], float] = {}
        self.clock = time.monotonic

    @property
    def base_url(self) -> str:
        return self.root_url

    def env(self) -> dict[str, str]:
        """What the bot needs in its environment to use this fake."""
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": self.api_key}

    def default_reply(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        if request.path == self.count_tokens_path:
            counted = self.counted_tokens
            if counted is None:
                counted = len(request.raw) // 4 + 1
            return Reply(200, {"input_tokens": counted})
        if request.path == self.generation_path:
            model = str(body.get("model", "claude-fake"))
            refused = self.refusal(body, model)
            if refused is not None:
                return refused
            return self.answer(body, self.model or model)
        if request.path.startswith(self.batches_path):
            return self.batch_reply(request, body)
        return _not_found(request.path)

    # Message Batches: POST creates (in_progress); GET retrieves; /results serves JSONL once ended;
    # POST /cancel starts canceling. ``end_batches`` ends them as the provider would.
    batches_path = "/v1/messages/batches"

    def batch_reply(self, request: RecordedRequest, body: Mapping[str, Any]) -> Reply:
        parts = request.path[len(self.batches_path):].strip("/").split("/")
        if request.method == "POST" and parts == [""]:
            requests = body.get("requests")
            if not isinstance(requests, list) or not requests:
                return self.error(400, "invalid_request_error", "requests: at least one request is required")
            batch_id = f"msgbatch_{uuid.uuid4().hex[:24]}"
            with self._lock:
                self.batches[batch_id] = {"requests": requests, "status": "in_progress", "results": None,
                                          "created_at": _rfc3339(time.time()), "ended_at": None, "cancel_initiated_at": None}
            return Reply(200, self.batch_object(batch_id), release=self.batch_created_release)
        batch = self.batches.get(parts[0])
        if batch is None:
            return self.error(404, "not_found_error", f"message_batch_id: {parts[0]} not found")
        if parts[1:] == ["results"] and request.method == "GET":
            if batch["results"] is None:
                return self.error(400, "invalid_request_error", f"Batch {parts[0]} is still processing; results are not ready")
            lines = "".join(json.dumps(line) + "\n" for line in batch["results"])
            return Reply(200, lines.encode())
        if parts[1:] == ["cancel"] and request.method == "POST":
            if batch["status"] == "in_progress":
                batch["status"], batch["cancel_initiated_at"] = "canceling", _rfc3339(time.time())
            return Reply(200, self.batch_object(parts[0]))
        if not parts[1:] and request.method == "GET":
            return Reply(200, self.batch_object(parts[0]))
        return _not_found(request.path)

    def batch_object(self, batch_id: str) -> dict[str, Any]:
        """A ``message_batch`` object (anthropic.types.messages.MessageBatch) as the API returns it."""
        batch = self.batches[batch_id]
        ended = batch["results"] is not None
        counts = {"processing": 0 if ended else len(batch["requests"]), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for line in batch["results"] or []:
            counts[line["result"]["type"]] += 1
        created = batch["created_at"]
        return {
            "id": batch_id, "type": "message_batch", "processing_status": batch["status"], "request_counts": counts,
            "created_at": created, "expires_at": _rfc3339(_epoch(created) + 24 * 3600), "ended_at": batch["ended_at"],
            "archived_at": None, "cancel_initiated_at": batch["cancel_initiated_at"],
            "results_url": f"{self.root_url}{self.batches_path}/{batch_id}/results" if ended else None,
        }

    def end_batches(self, result: str = "succeeded") -> None:
        """End every unfinished batch: each request ``result`` ("succeeded": answered as a Messages
        call would be, a refused parameter becoming "errored"; or "errored", "canceled", "expired";
        a canceling batch's requests are "canceled")."""
        with self._lock:
            for batch in self.batches.values():
                if batch["results"] is not None:
                    continue
                lines = []
                for item in batch["requests"]:
                    kind = "canceled" if batch["status"] == "canceling" else result
                    lines.append({"custom_id": item.get("custom_id"), "result": self._batch_result(kind, item.get("params") or {})})
                batch.update(results=lines, status="ended", ended_at=_rfc3339(time.time()))

    def _batch_result(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if kind == "succeeded":
            model = str(params.get("model", "claude-fake"))
            reply = self.refusal(params, model) or self.answer(params, self.model or model)
            if reply.status == 200:
                return {"type": "succeeded", "message": reply.body}
            return {"type": "errored", "error": reply.body}
        if kind == "errored":
            return {"type": "errored", "error": self.error(500, "api_error", "Internal server error").body}
        return {"type": kind}

    @classmethod
    def refusal(cls, body: Mapping[str, Any], model: str) -> Reply | None:
        """The 400 the Messages API gives to parameters ``model`` does not take (None: accepted)."""
        thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
        effort = (body.get("output_config") or {}).get("effort") if isinstance(body.get("output_config"), dict) else None
        five = model.startswith(CLAUDE_THINKING_MODELS)
        problem = None
        if not isinstance(body.get("max_tokens"), int) or not 1 <= body["max_tokens"] <= CLAUDE_MAX_OUTPUT:
            problem = f"max_tokens: must be between 1 and {CLAUDE_MAX_OUTPUT} for {model}"
        elif five and any(body.get(name) not in (None, 1, 1.0) for name in ("temperature", "top_p")):
            problem = f"temperature and top_p may only be set to their defaults on {model}"
        elif five and body.get("top_k") is not None:
            problem = f"top_k is not supported on {model}"
        elif five and thinking.get("type") == "enabled":
            problem = f"thinking.type 'enabled' with budget_tokens is not supported on {model}; use effort instead"
        elif model.startswith("claude-sonnet-5-5") and thinking.get("type") == "disabled":
            problem = f"thinking.type 'disabled' is not supported on {model}; use 'between_tools' to turn off up-front thinking"
        elif thinking.get("type") == "between_tools" and not model.startswith("claude-sonnet-5-5"):
            problem = f"thinking.type 'between_tools' is not supported on {model}"
        elif effort is not None and (effort not in EFFORT_SCALE or not model.startswith(CLAUDE_EFFORT_MODELS)):
            problem = f"output_config.effort: {effort!r} is not supported on {model}"
        return None if problem is None else cls.error(400, "invalid_request_error", problem)

    def answer(self, body: Mapping[str, Any], model: str) -> Reply:
        """The configured answer as the model gives it: thinking first (adaptive, at the requested
        effort, default high), then the text, all inside ``max_tokens``; cut there if it does not fit."""
        thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
        effort = (body.get("output_config") or {}).get("effort") if isinstance(body.get("output_config"), dict) else None
        thinks = model.startswith(CLAUDE_THINKING_MODELS) and thinking.get("type", "adaptive") == "adaptive"
        thought = round(self.thinking_tokens * EFFORT_SCALE[effort or "high"]) if thinks else 0
        cap = int(body.get("max_tokens", CLAUDE_MAX_OUTPUT))
        answer_tokens = self.usage["output_tokens"]
        usage = dict(self.usage)
        usage.update(self.cached(body, model))
        if thought + answer_tokens <= cap:
            text, stop = self.text, self.stop_reason
            usage["output_tokens"] = thought + answer_tokens
        else:
            text, stop = _cut(self.text, cap - thought, answer_tokens), "max_tokens"
            thought = min(thought, cap)
            usage["output_tokens"] = cap
        return self.message(text, model=model, stop_reason=stop, thinking_tokens=thought, thinking_block=thinks, **usage)

    def cached(self, body: Mapping[str, Any], model: str) -> dict[str, int]:
        """Prompt caching as the Messages API does it: nothing unless a block carries
        ``cache_control``; then the prefix up to it (system first) is read from the cache when an
        unexpired entry for the same model and bytes exists (refreshing it), else written, both
        only when the prefix reaches the model's minimum cacheable length. The prefix's tokens
        move out of ``input_tokens`` (a token per 4 bytes, as the fake's counting endpoint)."""
        system = body.get("system")
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system or [])
        for message in body.get("messages") or []:
            content = message.get("content")
            blocks += [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        marked = max((i for i, block in enumerate(blocks) if isinstance(block, dict) and block.get("cache_control")), default=None)
        if marked is None:
            return {}
        prefix = json.dumps(blocks[: marked + 1], sort_keys=True)
        tokens = len(prefix.encode()) // 4
        rest = len(json.dumps(blocks[marked + 1 :]).encode()) // 4 + 1
        if tokens < next(size for name, size in CLAUDE_MIN_CACHEABLE if model.startswith(name)):
            return {"input_tokens": tokens + rest, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0}
        key, now = (model, prefix), self.clock()
        hit = self.cache.get(key, 0.0) > now
        self.cache[key] = now + CLAUDE_CACHE_TTL_SECONDS
        return {"input_tokens": rest, "cache_write_5m": 0 if hit else tokens, "cache_write_1h": 0, "cache_read": tokens if hit else 0}

    # replies
    @staticmethod
    def message(
        text: str,
        *,
        model: str = "claude-sonnet-5-5",
        input_tokens: int = 1200,
        output_tokens: int = 300,
        cache_write_5m: int = 0,
        cache_write_1h: int = 0,
        cache_read: int = 0,
        stop_reason: str = "end_turn",
        thinking_tokens: int = 0,
        thinking_block: bool | None = None,
    ) -> Reply:
        """A successful Messages API response (empty ``text`` gives no text block). A thinking
        model's reply starts with a thinking block whose text is omitted (``thinking`` empty, a
        ``signature``), as adaptive thinking with display "omitted" returns it; its
        ``thinking_tokens`` are inside ``output_tokens`` (``usage.output_tokens_details``)."""
        content: list[dict[str, Any]] = []
        if thinking_block if thinking_block is not None else thinking_tokens > 0:
            content.append({"type": "thinking", "thinking": "", "signature": f"sig_{uuid.uuid4().hex}"})
        if text:
            content.append({"type": "text", "text": text})
        return Reply(
            200,
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cache_creation_input_tokens": cache_write_5m + cache_write_1h,
                    "cache_read_input_tokens": cache_read,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": cache_write_5m,
                        "ephemeral_1h_input_tokens": cache_write_1h,
                    },
                    "output_tokens_details": {"thinking_tokens": thinking_tokens},
                    "service_tier": "standard",
                },
            },
        )

    @staticmethod
    def error(
        status: int,
        error_type: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        error_code: str | None = None,
        path: str | None = None,
    ) -> Reply:
        """Anthropic's error envelope, optionally with ``error.details.error_code``."""
        error: dict[str, Any] = {"type": error_type, "message": message}
        if error_code is not None:
            error["details"] = {"error_code": error_code}
        all_headers = {"request-id": f"req_{uuid.uuid4().hex[:24]}", **(headers or {})}
        return Reply(status, {"type": "error", "error": error}, all_headers, path)

    @classmethod
    def overloaded(cls, *, retry_after: str | None = FAST_RETRY_AFTER) -> Reply:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return cls.error(529, "overloaded_error", "Overloaded", headers=headers)

    @classmethod
    def rate_limited(cls, *, retry_after: str = FAST_RETRY_AFTER) -> Reply:
        return cls.error(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 30,000 input tokens per minute.",
            headers={"retry-after": retry_after},
        )

    @classmethod
    def spend_limit(cls, *, with_code: bool = True) -> Reply:
        """The 429 of a reached monthly spend limit: no retry-after, waiting will not help."""
        return cls.error(
            429,
            "rate_limit_error",
            "You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC.",
            error_code="enforced_spend_limit_reached" if with_code else None,
        )

    @classmethod
    def credit_too_low(cls) -> Reply:
        return cls.error(
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. "
            "Please go to Plans & Billing to upgrade or purchase credits.",
        )

    @classmethod
    def billing_error(cls) -> Reply:
        return cls.error(402, "billing_error", "Payment required: the organization has no valid payment method.")

    @classmethod
    def authentication(cls, *, echo: str = "") -> Reply:
        return cls.error(401, "authentication_error", f"invalid x-api-key {echo}".strip())

    @classmethod
    def permission(cls) -> Reply:
        return cls.error(
            403, "permission_error", "Your API key does not have permission to use the specified resource."
        )

    @classmethod
    def server_error(cls, status: int = 500, *, retry_after: str | None = FAST_RETRY_AFTER) -> Reply:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return cls.error(status, "api_error", "Internal server error", headers=headers)

    @classmethod
    def not_found(cls, model: str) -> Reply:
        return cls.error(404, "not_found_error", f"model: {model}")


class FakeOpenAI(FakeModelServer):
    """``POST /v1/chat/completions``, as api.openai.com (base URL ends in /v1)."""

    generation_path = "/v1/chat/completions"
    api_key = OPENAI_TEST_KEY

    def __init__(
        self,
        *,
        content: str | None = None,
        prompt_tokens: int = 2000,
        completion_tokens: int = 500,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        finish_reason: str = "stop",
        model: str | None = None,
        reasoning_tokens: int = 1_000,
    ) -> None:
        super().__init__()
        self.content = content if content is not None else self.code_reply(
            "Add a greeting.", [{"path": "greeting.txt", "content": "Hello!\n"}]
        )
        self.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": cached_tokens,
            "cache_write_tokens": cache_write_tokens,
        }
        # What a reasoning model (OPENAI_REASONING_MODELS) reasons at effort medium, its
        # default; other levels scale it. Inside completion_tokens, against max_completion_tokens.
        self.reasoning_tokens = reasoning_tokens
        self.finish_reason = finish_reason
        self.model = model  # None: echo the requested model
        # Replies' content in turn before ``content`` (each used once), through the same
        # usage and caching as the default reply (a scripted ``completion`` has fixed usage).
        self.contents: deque[str] = deque()
        # Automatic prefix caching: (model, prompt text) -> when it expires on ``clock``.
        self.cache: dict[tuple[str, str], float] = {}
        self.clock = time.monotonic
        self.files: dict[str, dict[str, Any]] = {}  # uploaded and result files by id (``file_reply``)
        self.batches: dict[str, dict[str, Any]] = {}  # Batch API batches by id (``batch_reply``)
        self.batch_created_release: threading.Event | None = None  # set: a created batch's reply waits for it

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def cached(self, body: Mapping[str, Any], model: str) -> dict[str, int]:
        """Automatic prefix caching as Chat Completions does it: the longest prefix this prompt
        shares with an unexpired earlier prompt on the same model, when the prompt is 1,024
        tokens or more, counted in 128-token steps from 1,024, as ``cached_tokens`` inside
        ``prompt_tokens`` (then the prompt's own size, a token per 4 bytes). Nothing to ask for."""
        text = "".join(f"<{m.get('role')}>{m.get('content')}" for m in body.get("messages") or [] if isinstance(m, dict))
        total, now = len(text.encode()) // 4, self.clock()
        shared = 0
        for (cached_model, earlier), expires in list(self.cache.items()):
            if cached_model == model and expires > now:
                common = len(os.path.commonprefix([earlier, text]).encode()) // 4
                shared = max(shared, common)
        self.cache[(model, text)] = now + OPENAI_CACHE_TTL_SECONDS
        if total < OPENAI_MIN_CACHED or shared < OPENAI_MIN_CACHED:
            return {}
        hit = OPENAI_MIN_CACHED + (shared - OPENAI_MIN_CACHED) // OPENAI_CACHE_STEP * OPENAI_CACHE_STEP
        return {"prompt_tokens": total, "cached_tokens": hit}

    def env(self) -> dict[str, str]:
        """What the bot needs in its environment to use this fake."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": self.api_key}

    def default_reply(self, request: RecordedRequest) -> Reply:
        if request.path.startswith(self.files_path):
            return self.file_reply(request)
        if request.path.startswith(self.batches_path):
            return self.batch_reply(request)
        if request.path != self.generation_path:
            return _not_found(request.path)
        body = request.json if isinstance(request.json, dict) else {}
        model = str(body.get("model", "gpt-fake"))
        refused = self.refusal(body, model)
        if refused is not None:
            return refused
        return self.answer(body, self.model or model)

    # The Batch API: POST /v1/files uploads the JSONL (multipart, purpose "batch"); POST /v1/batches
    # creates a batch ("validating", then "in_progress" when next read); GET retrieves it; POST
    # /cancel starts cancelling; GET /v1/files/{id}/content serves a file. ``end_batches`` ends them.
    files_path = "/v1/files"
    batches_path = "/v1/batches"

    def file_reply(self, request: RecordedRequest) -> Reply:
        parts = request.path[len(self.files_path):].strip("/").split("/")
        if request.method == "POST" and parts == [""]:
            fields = _multipart(request)
            if fields.get("purpose", (b"", ""))[0] != b"batch" or "file" not in fields:
                return self.error(400, "purpose and file are required", error_type="invalid_request_error", code=None)
            return Reply(200, self.file_object(self.add_file(fields["file"][0], fields["file"][1], "batch")))
        stored = self.files.get(parts[0])
        if stored is None:
            return self.error(404, f"No such File object: {parts[0]}", error_type="invalid_request_error", code=None)
        if parts[1:] == ["content"] and request.method == "GET":
            return Reply(200, stored["bytes"])
        return Reply(200, self.file_object(parts[0]))

    def add_file(self, data: bytes, filename: str, purpose: str) -> str:
        file_id = f"file-{uuid.uuid4().hex[:22]}"
        with self._lock:
            self.files[file_id] = {"bytes": data, "filename": filename, "purpose": purpose, "created_at": int(time.time())}
        return file_id

    def file_object(self, file_id: str) -> dict[str, Any]:
        """A ``file`` object (openai.types.FileObject) as the API returns it."""
        stored = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(stored["bytes"]), "created_at": stored["created_at"],
                "filename": stored["filename"], "purpose": stored["purpose"], "status": "processed", "expires_at": None,
                "status_details": None}

    def batch_reply(self, request: RecordedRequest) -> Reply:
        parts = request.path[len(self.batches_path):].strip("/").split("/")
        body = request.json if isinstance(request.json, dict) else {}
        if request.method == "POST" and parts == [""]:
            stored = self.files.get(str(body.get("input_file_id")))
            if stored is None or stored["purpose"] != "batch":
                return self.error(400, f"Invalid 'input_file_id': '{body.get('input_file_id')}'.",
                                  error_type="invalid_request_error", code="invalid_value")
            if body.get("endpoint") not in ("/v1/chat/completions", "/v1/responses") or body.get("completion_window") != "24h":
                return self.error(400, "Invalid endpoint or completion_window.", error_type="invalid_request_error", code="invalid_value")
            batch_id = f"batch_{uuid.uuid4().hex[:24]}"
            lines = [json.loads(line) for line in stored["bytes"].decode().splitlines() if line.strip()]
            with self._lock:
                self.batches[batch_id] = {
                    "input_file_id": body["input_file_id"], "endpoint": body["endpoint"], "requests": lines,
                    "status": "validating", "created_at": int(time.time()), "metadata": body.get("metadata"),
                    "output_file_id": None, "error_file_id": None, "errors": None, "ended_at": {}, "completed": 0, "failed": 0,
                }
            reply = self.batch_object(batch_id)
            self.batches[batch_id]["status"] = "in_progress"
            return Reply(200, reply, release=self.batch_created_release)
        batch = self.batches.get(parts[0])
        if batch is None:
            return self.error(404, f"No batch found with id '{parts[0]}'.", error_type="invalid_request_error", code=None)
        if parts[1:] == ["cancel"] and request.method == "POST":
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch["status"] = "cancelling"
                batch["ended_at"]["cancelling_at"] = int(time.time())
            return Reply(200, self.batch_object(parts[0]))
        if not parts[1:] and request.method == "GET":
            return Reply(200, self.batch_object(parts[0]))
        return _not_found(request.path)

    def batch_object(self, batch_id: str) -> dict[str, Any]:
        """A ``batch`` object (openai.types.Batch) as the API returns it."""
        batch = self.batches[batch_id]
        created = batch["created_at"]
        stamps = {name: batch["ended_at"].get(name) for name in (
            "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at")}
        return {
            "id": batch_id, "object": "batch", "endpoint": batch["endpoint"], "errors": batch["errors"],
            "input_file_id": batch["input_file_id"], "completion_window": "24h", "status": batch["status"],
            "output_file_id": batch["output_file_id"], "error_file_id": batch["error_file_id"], "created_at": created,
            "expires_at": created + 24 * 3600, **stamps,
            "request_counts": {"total": len(batch["requests"]), "completed": batch["completed"], "failed": batch["failed"]},
            "metadata": batch["metadata"],
        }

    def end_batches(self, result: str = "succeeded") -> None:
        """End every unfinished batch: each request ``result`` ("succeeded": answered as Chat
        Completions would, a refused parameter becoming an error line; "errored": a 500 in the
        error file), or the batch ends "expired" (its requests unrun, ``batch_expired`` in the
        error file) or "failed" (validation errors, no files); a cancelling batch's requests
        are ``batch_cancelled``."""
        with self._lock:
            batches = [batch for batch in self.batches.values() if batch["status"] in ("validating", "in_progress", "cancelling")]
        for batch in batches:
            now = int(time.time())
            if result == "failed":
                batch.update(status="failed", errors={"object": "list", "data": [
                    {"code": "invalid_request", "message": "The request body is not valid.", "param": "body", "line": 1}]})
                batch["ended_at"]["failed_at"] = now
                continue
            status = "cancelled" if batch["status"] == "cancelling" else "expired" if result == "expired" else "completed"
            output: list[dict[str, Any]] = []
            errors: list[dict[str, Any]] = []
            for item in batch["requests"]:
                line = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": item.get("custom_id"), "response": None, "error": None}
                if status != "completed":
                    code = "batch_cancelled" if status == "cancelled" else "batch_expired"
                    errors.append({**line, "error": {"code": code, "message": f"This request was not run ({code})."}})
                    continue
                body = item.get("body") or {}
                model = str(body.get("model", "gpt-fake"))
                reply = (self.server_error() if result == "errored" else self.refusal(body, model)
                         or self.answer(body, self.model or model))
                response = {"status_code": reply.status, "request_id": f"req_{uuid.uuid4().hex}", "body": reply.body}
                (output if reply.status == 200 else errors).append({**line, "response": response})
            for name, rows in (("output_file_id", output), ("error_file_id", errors)):
                if rows:
                    batch[name] = self.add_file("".join(json.dumps(row) + "\n" for row in rows).encode(), f"batch_{name}.jsonl",
                                                "batch_output")
            batch.update(status=status, completed=len(output), failed=len(errors))
            batch["ended_at"][f"{status}_at"] = now

    @classmethod
    def refusal(cls, body: Mapping[str, Any], model: str) -> Reply | None:
        """The 400 Chat Completions gives to parameters ``model`` does not take (None: accepted)."""
        reasoning = model.startswith(OPENAI_REASONING_MODELS)
        effort = body.get("reasoning_effort")
        if effort is not None and not reasoning:
            return cls.bad_parameter("reasoning_effort", f"Unrecognized request argument supplied: reasoning_effort ({model})")
        if effort is not None and effort not in EFFORT_SCALE:
            return cls.bad_parameter("reasoning_effort", f"Invalid value for 'reasoning_effort': {effort!r}")
        if reasoning and body.get("max_tokens") is not None:
            return cls.bad_parameter(
                "max_tokens", "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
            )
        if reasoning and any(body.get(name) not in (None, 1, 1.0) for name in ("temperature", "top_p")):
            return cls.bad_parameter("temperature", "Unsupported value: 'temperature' does not support this value with this model.")
        return None

    def answer(self, body: Mapping[str, Any], model: str) -> Reply:
        """The configured reply as the model gives it: reasoning first (at the requested effort,
        default medium), then the content, all inside ``max_completion_tokens``; cut there
        (finish_reason "length") if it does not fit."""
        reasoning = model.startswith(OPENAI_REASONING_MODELS)
        effort = body.get("reasoning_effort") or "medium"
        reasoned = round(self.reasoning_tokens * EFFORT_SCALE[effort] / EFFORT_SCALE["medium"]) if reasoning else 0
        cap = body.get("max_completion_tokens") or body.get("max_tokens") or 1_000_000
        usage = dict(self.usage)
        usage.update(self.cached(body, model))
        answer_tokens = usage["completion_tokens"]
        whole = self.contents.popleft() if self.contents else self.content
        content: str | None = whole
        finish = self.finish_reason
        if reasoned + answer_tokens > cap:
            content, finish = _cut(whole, cap - reasoned, answer_tokens), "length"
            reasoned = min(reasoned, cap)
            usage["completion_tokens"] = cap
        else:
            usage["completion_tokens"] = reasoned + answer_tokens
        return self.completion(content, model=model, finish_reason=finish, reasoning_tokens=reasoned, **usage)

    # replies
    @staticmethod
    def code_reply(summary: str, edits: list[dict[str, str]]) -> str:
        """The plain text a code model returns: a summary, then one SEARCH/REPLACE block per edit.

        An edit is ``{"path", "content"}`` (a new file: empty SEARCH), ``{"path", "search", "replace"}``
        or ``{"path", "delete": "yes"}`` (a ``DELETE path`` line). Fences grow past any backticks inside.
        """
        parts = [summary, ""]
        for edit in edits:
            if edit.get("delete"):
                parts += [f"DELETE {edit['path']}", ""]
                continue
            search, replace = edit.get("search", ""), edit.get("replace", edit.get("content", ""))
            longest = max((len(run) for run in re.findall(r"`{3,}", search + replace)), default=2)
            fence = "`" * (longest + 1)
            parts += [
                edit["path"], fence, "<<<<<<< SEARCH", *search.splitlines(), "=======", *replace.splitlines(),
                ">>>>>>> REPLACE", fence, "",
            ]
        return "\n".join(parts)

    @classmethod
    def context_length_exceeded(cls, model: str = "gpt-4o-mini", tokens: int = 383_112) -> Reply:
        """The 400 OpenAI sends for a prompt over the model's window."""
        return cls.error(
            400,
            f"This model's maximum context length is 128000 tokens. However, your messages resulted in {tokens} "
            "tokens. Please reduce the length of the messages.",
            error_type="invalid_request_error",
            code="context_length_exceeded",
        )

    @staticmethod
    def completion(
        content: str | None,
        *,
        model: str = "gpt-4o-mini-2024-07-18",
        prompt_tokens: int = 2000,
        completion_tokens: int = 500,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        finish_reason: str = "stop",
        refusal: str | None = None,
    ) -> Reply:
        """A successful ``chat.completion`` object. ``prompt_tokens`` includes the cached and the
        cache-written tokens; ``completion_tokens`` includes the reasoning tokens (CompletionUsage)."""
        return Reply(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": 1_790_000_000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": refusal},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {
                        "cached_tokens": cached_tokens, "cache_write_tokens": cache_write_tokens, "audio_tokens": 0,
                    },
                    "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0},
                },
                "system_fingerprint": "fp_fake",
            },
        )

    @staticmethod
    def error(
        status: int,
        message: str,
        *,
        error_type: str,
        code: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """OpenAI's error envelope."""
        all_headers = {"x-request-id": f"req_{uuid.uuid4().hex}", **(headers or {})}
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        return Reply(status, body, all_headers)

    @classmethod
    def bad_parameter(cls, param: str, message: str) -> Reply:
        """The 400 for a parameter the model does not take."""
        reply = cls.error(400, message, error_type="invalid_request_error", code="unsupported_parameter")
        reply.body["error"]["param"] = param
        return reply

    @classmethod
    def insufficient_quota(cls) -> Reply:
        """Out of credit: a 429 that no amount of waiting fixes."""
        return cls.error(
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information "
            "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            error_type="insufficient_quota",
            code="insufficient_quota",
        )

    @classmethod
    def rate_limited(cls, *, retry_after: str = FAST_RETRY_AFTER, retry_after_ms: str | None = None) -> Reply:
        headers = {"retry-after": retry_after}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return cls.error(
            429,
            "Rate limit reached for gpt-4o-mini in organization org-fake on tokens per min (TPM): "
            "Limit 200000, Used 199000, Requested 2500. Please try again in 1ms.",
            error_type="tokens",
            code="rate_limit_exceeded",
            headers=headers,
        )

    @classmethod
    def invalid_api_key(cls, *, echo: str = "sk-proj-****mn") -> Reply:
        return cls.error(
            401,
            f"Incorrect API key provided: {echo}. You can find your API key at https://platform.openai.com/account/api-keys.",
            error_type="invalid_request_error",
            code="invalid_api_key",
        )

    @classmethod
    def server_error(cls, status: int = 500, *, retry_after: str | None = FAST_RETRY_AFTER) -> Reply:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        message = "The server had an error while processing your request. Sorry about that!"
        return cls.error(status, message, error_type="server_error", code=None, headers=headers)


@pytest.fixture(name="fake_anthropic")
def fake_anthropic_fixture() -> Iterator[FakeAnthropic]:
    """A started FakeAnthropic, stopped after the test."""
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(name="fake_openai")
def fake_openai_fixture() -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI, stopped after the test."""
    with FakeOpenAI() as fake:
        yield fake
