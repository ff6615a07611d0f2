"""Loopback fakes of the providers' admin reports, in their real wire formats.

``FakeAnthropicAdmin`` answers ``GET /v1/organizations/cost_report`` and
``GET /v1/organizations/usage_report/messages`` as api.anthropic.com does for an Admin API key
(``x-api-key``, ``anthropic-version``): daily buckets with ``starting_at``/``ending_at`` (RFC 3339),
``results`` per ``group_by[]``, cost ``amount`` a decimal string in cents (``"123.45"`` is
$1.2345), pages of ``limit`` buckets (default 7, at most 31) with ``has_more`` and ``next_page``.
``FakeOpenAIAdmin`` answers ``GET /v1/organization/costs`` and ``/v1/organization/usage/completions``
as api.openai.com does for an admin key (``Authorization: Bearer``): ``object: "page"``,
``bucket`` objects with ``start_time``/``end_time`` (Unix seconds), cost ``amount.value`` in
dollars per ``line_item`` ("<model>, input"), usage whose ``input_tokens`` include the cached ones.
Shapes follow the docs and the ``openai`` SDK's ``admin.organization.usage`` types.

Tests set what was billed with ``bill(day, model, cost_micro_usd, **usage)``; every request is
recorded like the model fakes' (tests/fakes/model_servers.py).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.fakes.model_servers import FakeAnthropic, FakeModelServer, FakeOpenAI, RecordedRequest, Reply

ANTHROPIC_ADMIN_TEST_KEY = "sk-ant-admin01-test-0123456789abcdefghij"
OPENAI_ADMIN_TEST_KEY = "sk-admin-test-0123456789abcdefghijklmn"
DAY = dt.timedelta(days=1)
MAX_DAILY_BUCKETS = 31


@dataclass(frozen=True)
class Billing:
    """What the provider billed one model on one day (its own figures, not the bot's)."""

    day: dt.date
    model: str
    cost_micro_usd: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    scope: str | None = None  # the Anthropic workspace or OpenAI project it was billed to


class _AdminFake(FakeModelServer):
    """The days billed, paging by a token that encodes the next bucket's start."""

    def __init__(self) -> None:
        super().__init__()
        self.billings: list[Billing] = []
        self.buckets_per_page: int | None = None  # None: as many as ``limit`` asks

    def bill(self, day: str, model: str, cost_micro_usd: int, *, scope: str | None = None, **usage: int) -> None:
        self.billings.append(Billing(dt.date.fromisoformat(day), model, cost_micro_usd, scope=scope, **usage))

    def on(self, day: dt.date, scopes: list[str]) -> list[Billing]:
        return [b for b in self.billings if b.day == day and (not scopes or b.scope in scopes)]

    @staticmethod
    def query(request: RecordedRequest) -> dict[str, list[str]]:
        return parse_qs(request.query, keep_blank_values=True)

    def page(self, start: dt.datetime, end: dt.datetime, query: dict[str, list[str]], default_limit: int,
             ) -> tuple[list[dt.datetime], str | None] | str:
        """The bucket starts of this page and the next page's token, or a problem to answer 400 with."""
        try:
            limit = int(query.get("limit", [str(default_limit)])[0])
        except ValueError:
            return "limit: must be an integer"
        if not 1 <= limit <= MAX_DAILY_BUCKETS:
            return f"limit: must be between 1 and {MAX_DAILY_BUCKETS} for bucket_width 1d"
        if "page" in query:
            try:
                start = dt.datetime.fromisoformat(base64.urlsafe_b64decode(query["page"][0].removeprefix("page_")).decode())
            except ValueError:
                return "page: invalid page token"
        count = min(limit, self.buckets_per_page or limit)
        starts = []
        moment = start
        while moment < end and len(starts) < count:
            starts.append(moment)
            moment += DAY
        token = "page_" + base64.urlsafe_b64encode(moment.isoformat().encode()).decode() if moment < end else None
        return starts, token


class FakeAnthropicAdmin(_AdminFake):
    """Anthropic's Admin API usage and cost reports (base URL as ``ANTHROPIC_BASE_URL``)."""

    api_key = ANTHROPIC_ADMIN_TEST_KEY
    cost_path = "/v1/organizations/cost_report"
    usage_path = "/v1/organizations/usage_report/messages"

    def env(self) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": self.root_url, "ANTHROPIC_ADMIN_KEY": self.api_key}

    def default_reply(self, request: RecordedRequest) -> Reply:
        if request.path not in (self.cost_path, self.usage_path):
            return FakeAnthropic.error(404, "not_found_error", f"fake: no route {request.path}")
        if request.headers.get("x-api-key") != self.api_key:
            return FakeAnthropic.error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return FakeAnthropic.error(400, "invalid_request_error", "anthropic-version: header is required")
        query = self.query(request)
        try:
            start = _utc(query["starting_at"][0])
            end = _utc(query["ending_at"][0]) if "ending_at" in query else start + 7 * DAY
        except (KeyError, ValueError):
            return FakeAnthropic.error(400, "invalid_request_error", "starting_at: must be an RFC 3339 timestamp")
        if query.get("bucket_width", ["1d"]) != ["1d"]:
            return FakeAnthropic.error(400, "invalid_request_error", "bucket_width: this fake serves 1d buckets")
        grouping = query.get("group_by[]", [])
        allowed = {"workspace_id", "description"} if request.path == self.cost_path else {"model", "workspace_id", "api_key_id", "service_tier", "context_window"}
        if set(grouping) - allowed:
            return FakeAnthropic.error(400, "invalid_request_error", f"group_by[]: {sorted(set(grouping) - allowed)} not allowed")
        paged = self.page(start, end, query, default_limit=7)
        if isinstance(paged, str):
            return FakeAnthropic.error(400, "invalid_request_error", paged)
        starts, token = paged
        scopes = query.get("workspace_ids[]", [])
        results = self._costs if request.path == self.cost_path else self._usage
        data = [{"starting_at": _stamp(s), "ending_at": _stamp(s + DAY), "results": results(self.on(s.date(), scopes), grouping)}
                for s in starts]
        return Reply(200, {"data": data, "has_more": token is not None, "next_page": token})

    @staticmethod
    def _costs(billed: list[Billing], grouping: list[str]) -> list[dict[str, Any]]:
        """One row per model and token type when grouped by description (input a third, output the rest)."""
        rows = []
        for b in billed:
            parts = [("uncached_input_tokens", "Input Tokens", b.cost_micro_usd // 3),
                     ("output_tokens", "Output Tokens", b.cost_micro_usd - b.cost_micro_usd // 3)]
            for token_type, label, micro in parts:
                by_description = "description" in grouping
                rows.append({
                    "currency": "USD", "amount": str(Decimal(micro) / 10_000),  # cents, as a decimal string
                    "workspace_id": b.scope if "workspace_id" in grouping else None,
                    "description": f"{b.model} Usage - {label}" if by_description else None,
                    "cost_type": "tokens" if by_description else None, "context_window": "0-200k" if by_description else None,
                    "model": b.model if by_description else None, "service_tier": "standard" if by_description else None,
                    "token_type": token_type if by_description else None, "inference_geo": None,
                })
        if "description" not in grouping and "workspace_id" not in grouping and rows:
            total = sum(Decimal(row["amount"]) for row in rows)
            return [{**rows[0], "amount": str(total)}]
        return rows

    @staticmethod
    def _usage(billed: list[Billing], grouping: list[str]) -> list[dict[str, Any]]:
        return [{
            "uncached_input_tokens": b.input_tokens, "cache_read_input_tokens": b.cache_read_tokens,
            "cache_creation": {"ephemeral_1h_input_tokens": b.cache_write_1h_tokens, "ephemeral_5m_input_tokens": b.cache_write_5m_tokens},
            "output_tokens": b.output_tokens, "server_tool_use": {"web_search_requests": 0},
            "model": b.model if "model" in grouping else None, "workspace_id": b.scope if "workspace_id" in grouping else None,
            "api_key_id": None, "service_tier": None, "context_window": None, "inference_geo": None,
        } for b in billed]


class FakeOpenAIAdmin(_AdminFake):
    """OpenAI's organization costs and completions usage (base URL as ``OPENAI_BASE_URL``, ending in /v1)."""

    api_key = OPENAI_ADMIN_TEST_KEY
    cost_path = "/v1/organization/costs"
    usage_path = "/v1/organization/usage/completions"

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": f"{self.root_url}/v1", "OPENAI_ADMIN_KEY": self.api_key}

    def default_reply(self, request: RecordedRequest) -> Reply:
        if request.path not in (self.cost_path, self.usage_path):
            return FakeOpenAI.error(404, f"Invalid URL (GET {request.path})", error_type="invalid_request_error", code=None)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return FakeOpenAI.invalid_api_key()
        query = self.query(request)
        try:
            start = dt.datetime.fromtimestamp(int(query["start_time"][0]), dt.timezone.utc)
            end = dt.datetime.fromtimestamp(int(query["end_time"][0]), dt.timezone.utc) if "end_time" in query else start + 7 * DAY
        except (KeyError, ValueError):
            return FakeOpenAI.bad_parameter("start_time", "start_time: must be a Unix timestamp in seconds")
        grouping = query.get("group_by[]", [])
        allowed = {"line_item", "project_id"} if request.path == self.cost_path else {"model", "project_id"}
        if set(grouping) - allowed:
            return FakeOpenAI.bad_parameter("group_by", f"Invalid group_by: {sorted(set(grouping) - allowed)}")
        paged = self.page(start, end, query, default_limit=7)
        if isinstance(paged, str):
            return FakeOpenAI.bad_parameter("limit", paged)
        starts, token = paged
        scopes = query.get("project_ids[]", [])
        results = self._costs if request.path == self.cost_path else self._usage
        data = [{"object": "bucket", "start_time": int(s.timestamp()), "end_time": int((s + DAY).timestamp()),
                 "results": results(self.on(s.date(), scopes), grouping)} for s in starts]
        return Reply(200, {"object": "page", "data": data, "has_more": token is not None, "next_page": token})

    @staticmethod
    def _costs(billed: list[Billing], grouping: list[str]) -> list[dict[str, Any]]:
        """Per line item ("<model>, input" a third, "<model>, output" the rest), in dollars as floats."""
        rows = []
        for b in billed:
            for kind, micro in (("input", b.cost_micro_usd // 3), ("output", b.cost_micro_usd - b.cost_micro_usd // 3)):
                rows.append({"object": "organization.costs.result", "amount": {"value": micro / 1_000_000, "currency": "usd"},
                             "line_item": f"{b.model}, {kind}" if "line_item" in grouping else None,
                             "project_id": b.scope if "project_id" in grouping else None})
        return rows

    @staticmethod
    def _usage(billed: list[Billing], grouping: list[str]) -> list[dict[str, Any]]:
        return [{
            "object": "organization.usage.completions.result",
            "input_tokens": b.input_tokens + b.cache_read_tokens + b.cache_write_5m_tokens,  # includes cached tokens
            "input_cached_tokens": b.cache_read_tokens, "input_cache_write_tokens": b.cache_write_5m_tokens,
            "output_tokens": b.output_tokens, "input_audio_tokens": 0, "output_audio_tokens": 0, "num_model_requests": 1,
            "model": b.model if "model" in grouping else None, "project_id": b.scope if "project_id" in grouping else None,
            "user_id": None, "api_key_id": None, "batch": None, "service_tier": None,
        } for b in billed]


def _utc(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(text)
    return moment.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)  # snapped to the day


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(name="fake_anthropic_admin")
def fake_anthropic_admin_fixture() -> Iterator[FakeAnthropicAdmin]:
    with FakeAnthropicAdmin() as fake:
        yield fake


@pytest.fixture(name="fake_openai_admin")
def fake_openai_admin_fixture() -> Iterator[FakeOpenAIAdmin]:
    with FakeOpenAIAdmin() as fake:
        yield fake

