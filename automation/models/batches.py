"""The providers' batch APIs through the official SDKs: one request submitted by one cron run,
its result collected by a later one. Anthropic's Message Batches carry the analysis, OpenAI's
Batch API the code request.

Anthropic, from https://platform.claude.com/docs/en/build-with-claude/batch-processing: a batch is
processed within 24 hours (most within one) at half the standard price; ``processing_status``
goes ``in_progress`` → (``canceling``) → ``ended``; then ``results_url`` serves JSONL, one line
per request matched by ``custom_id``, whose ``result.type`` is ``succeeded`` (the Message,
billed at the batch price), ``errored``, ``canceled`` or ``expired`` (none of these three billed).

OpenAI, from https://platform.openai.com/docs/guides/batch and the API reference (types
``openai.types.Batch``): the requests go up as a JSONL file (``purpose: batch``), one line
``{custom_id, method, url, body}``; the batch's ``status`` goes ``validating`` → ``in_progress``
→ ``finalizing`` → ``completed``, or ends ``failed`` (the file did not validate: nothing ran),
``expired`` (24 hours passed) or ``cancelled`` (after ``cancelling``). Its ``output_file_id``
serves a line ``{id, custom_id, response: {status_code, request_id, body}, error}`` per request
that completed (billed at the batch price, also in an expired or cancelled batch); its
``error_file_id`` one per request that failed (a non-200 ``response``, or an ``error``
``{code, message}``: ``batch_expired`` and ``batch_cancelled`` for requests never run, not billed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anthropic
import openai
from anthropic.types.messages import MessageBatchErroredResult, MessageBatchSucceededResult

from ..core.errors import ProviderError
from ..core.prices import ANTHROPIC, OPENAI
from .providers import InvalidReplyError, ModelReply, analysis_reply, classify_anthropic, classify_openai, code_reply

SUCCEEDED = "succeeded"
UNBILLED_RESULTS = ("errored", "canceled", "expired")
CHAT_COMPLETIONS: Final = "/v1/chat/completions"
OPENAI_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
# An OpenAI batch that ended without running a request: how that request reads, as Anthropic's result types.
_OPENAI_UNRUN = {"failed": "errored", "expired": "expired", "cancelled": "canceled", "completed": "expired"}
_OPENAI_UNRUN_CODES = {"batch_expired": "expired", "batch_cancelled": "canceled"}


@dataclass(frozen=True)
class Collected:
    """A batch as a later run finds it. ``status``: the batch's ``processing_status``. Once it
    ended, ``result`` is the request's ``result.type``; ``reply`` the billed reply of a succeeded
    request (usable or not), ``error`` why there is nothing to use (None: use ``reply``)."""

    status: str
    result: str | None = None
    reply: ModelReply | None = None
    error: ProviderError | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # what ``submit_openai`` stored with the batch


def submit(client: anthropic.Anthropic, custom_id: str, params: Mapping[str, Any]) -> str:
    """Create a Message Batch of one request (``params`` as ``providers.analysis_params`` makes
    them); returns the batch id. Raises ProviderError."""
    try:
        batch = client.messages.batches.create(requests=[{"custom_id": custom_id, "params": dict(params)}])  # type: ignore[typeddict-item]
    except anthropic.APIError as err:
        raise classify_anthropic(err, client.api_key or "") from None
    return batch.id


def collect(client: anthropic.Anthropic, batch_id: str, custom_id: str, model: str, max_tokens: int) -> Collected:
    """Where batch ``batch_id`` stands and, once it ended, what became of request ``custom_id``.
    Raises ProviderError when the provider cannot be asked (the batch stays held)."""
    try:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status != "ended":
            return Collected(batch.processing_status)
        lines = [line for line in client.messages.batches.results(batch_id) if line.custom_id == custom_id]
    except anthropic.APIError as err:
        raise classify_anthropic(err, client.api_key or "") from None
    if not lines:  # the request is not in the results: nothing was processed, nothing billed
        return Collected("ended", "expired", error=_batch_error(f"batch {batch_id} has no result for {custom_id}", "expired"))
    result = lines[0].result
    if isinstance(result, MessageBatchSucceededResult):
        latency = round((batch.ended_at - batch.created_at).total_seconds() * 1000) if batch.ended_at else 0
        message = result.message
        return _succeeded(lambda: analysis_reply(message, model, max_tokens, latency), {})
    if isinstance(result, MessageBatchErroredResult):
        detail = result.error.error
        return Collected("ended", "errored", error=_batch_error(f"{detail.type}: {detail.message}"[:300], "errored"))
    return Collected("ended", result.type, error=_batch_error(f"the request was {result.type} before it ran", result.type))


def submit_openai(client: openai.OpenAI, custom_id: str, body: Mapping[str, Any], metadata: Mapping[str, str]) -> str:
    """Upload a JSONL file of one chat completion request (``body`` as ``providers.code_params``
    makes it) and create a batch of it, with ``metadata`` (at most 16 keys, values up to 512
    characters); returns the batch id. Raises ProviderError."""
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT_COMPLETIONS, "body": dict(body)}
    try:
        uploaded = client.files.create(file=(f"{custom_id}.jsonl", (json.dumps(line) + "\n").encode()), purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=CHAT_COMPLETIONS, completion_window="24h",
                                      metadata=dict(metadata))
    except openai.OpenAIError as err:
        raise classify_openai(err, client.api_key or "") from None
    return batch.id


def collect_openai(client: openai.OpenAI, batch_id: str, custom_id: str, model: str, max_tokens: int) -> Collected:
    """Where OpenAI batch ``batch_id`` stands and, once it ended (status ``ended`` here, ``result``
    as Anthropic's result types name it), what became of request ``custom_id``. Raises
    ProviderError when the provider cannot be asked or its files do not parse (the batch stays held)."""
    try:
        batch = client.batches.retrieve(batch_id)
        if batch.status not in OPENAI_ENDED:
            return Collected(batch.status, metadata=dict(batch.metadata or {}))
        lines = [line for file_id in (batch.output_file_id, batch.error_file_id) if file_id
                 for line in client.files.content(file_id).text.splitlines() if line.strip()]
        found = next((row for row in map(json.loads, lines) if row.get("custom_id") == custom_id), None)
    except openai.OpenAIError as err:
        raise classify_openai(err, client.api_key or "") from None
    except ValueError as err:
        raise ProviderError(f"OpenAI batch {batch_id}: a result file is not JSONL ({err})"[:300], provider=OPENAI,
                            kind="malformed_reply", retryable=True) from None
    metadata = dict(batch.metadata or {})
    if found is None:  # never run: a batch that failed validation, or expired or was cancelled before it
        why = "; ".join(error.message or error.code or "" for error in (batch.errors.data or [])) if batch.errors else ""
        result = _OPENAI_UNRUN[batch.status]
        return Collected("ended", result, error=_batch_error(f"batch {batch.status}: {why or 'no result for ' + custom_id}"[:300],
                                                             result, OPENAI), metadata=metadata)
    response, error = found.get("response") or {}, found.get("error") or {}
    if error or response.get("status_code") != 200:
        detail = error or (response.get("body") or {}).get("error") or {}
        result = _OPENAI_UNRUN_CODES.get(str(detail.get("code")), "errored")
        said = f"{response.get('status_code') or detail.get('code')}: {detail.get('message')}"[:300]
        return Collected("ended", result, error=_batch_error(said, result, OPENAI), metadata=metadata)
    ended = batch.completed_at or batch.expired_at or batch.cancelled_at or batch.created_at
    try:
        completion = openai.types.chat.ChatCompletion.model_validate(response.get("body"))
        return _succeeded(lambda: code_reply(completion, model, max_tokens, (ended - batch.created_at) * 1000), metadata)
    except ValueError as malformed_body:  # not a chat.completion: billed, unusable
        error_ = ProviderError(f"OpenAI batch {batch_id}: the result is not a chat completion ({malformed_body})"[:300],
                               provider=OPENAI, kind="malformed_reply", retryable=True, may_be_billed=True)
        return Collected("ended", SUCCEEDED, error=error_, metadata=metadata)


def _succeeded(reply: Callable[[], ModelReply], metadata: dict[str, str]) -> Collected:
    """A succeeded (billed) request: its reply, or why it cannot be used (the reply kept when there is one)."""
    try:
        return Collected("ended", SUCCEEDED, reply(), metadata=metadata)
    except InvalidReplyError as unusable:
        return Collected("ended", SUCCEEDED, unusable.reply, unusable, metadata)
    except ProviderError as malformed:
        return Collected("ended", SUCCEEDED, error=malformed, metadata=metadata)


def _batch_error(message: str, kind: str, provider: str = ANTHROPIC) -> ProviderError:
    name = "OpenAI" if provider == OPENAI else "Anthropic"
    return ProviderError(f"{name} batch: {message}", provider=provider, kind=f"batch_{kind}", retryable=True)
