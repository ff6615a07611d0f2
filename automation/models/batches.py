"""Anthropic's Message Batches through the official SDK: one analysis request submitted by one
cron run, its result collected by a later one.

From https://platform.claude.com/docs/en/build-with-claude/batch-processing: a batch is
processed within 24 hours (most within one) at half the standard price; ``processing_status``
goes ``in_progress`` → (``canceling``) → ``ended``; then ``results_url`` serves JSONL, one line
per request matched by ``custom_id``, whose ``result.type`` is ``succeeded`` (the Message,
billed at the batch price), ``errored``, ``canceled`` or ``expired`` (none of these three billed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
from anthropic.types.messages import MessageBatchErroredResult, MessageBatchSucceededResult

from ..core.errors import ProviderError
from ..core.prices import ANTHROPIC
from .providers import InvalidReplyError, ModelReply, classify_anthropic, analysis_reply

SUCCEEDED = "succeeded"
UNBILLED_RESULTS = ("errored", "canceled", "expired")


@dataclass(frozen=True)
class Collected:
    """A batch as a later run finds it. ``status``: the batch's ``processing_status``. Once it
    ended, ``result`` is the request's ``result.type``; ``reply`` the billed reply of a succeeded
    request (usable or not), ``error`` why there is nothing to use (None: use ``reply``)."""

    status: str
    result: str | None = None
    reply: ModelReply | None = None
    error: ProviderError | None = None


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
        try:
            return Collected("ended", SUCCEEDED, analysis_reply(result.message, model, max_tokens, latency))
        except InvalidReplyError as unusable:
            return Collected("ended", SUCCEEDED, unusable.reply, unusable)
        except ProviderError as malformed:
            return Collected("ended", SUCCEEDED, error=malformed)
    if isinstance(result, MessageBatchErroredResult):
        detail = result.error.error
        return Collected("ended", "errored", error=_batch_error(f"{detail.type}: {detail.message}"[:300], "errored"))
    return Collected("ended", result.type, error=_batch_error(f"the request was {result.type} before it ran", result.type))


def _batch_error(message: str, kind: str) -> ProviderError:
    return ProviderError(f"Anthropic batch: {message}", provider=ANTHROPIC, kind=f"batch_{kind}", retryable=True)
