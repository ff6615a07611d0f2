"""OpenAI's Batch API through the real SDK against the fake that speaks its wire format: what a
later run reads from each way a batch can end (``models/batches.py``)."""

from __future__ import annotations

import dataclasses
import json

import openai
import pytest

from automation.core.errors import ProviderError
from automation.models import batches, providers
from tests.fakes.model_servers import FakeOpenAI, fake_openai_fixture  # noqa: F401

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "Write code."}, {"role": "user", "content": "# Task\nGreet"}]


def _submit(fake: FakeOpenAI) -> tuple[openai.OpenAI, str]:
    client = providers.make_openai_client(fake.env(), max_retries=0)
    body = providers.code_params(MODEL, MESSAGES, 1_000, None)
    return client, batches.submit_openai(client, "code", body, {"analysis_batch": "msgbatch_1", "analysis_model": "claude-sonnet-5-5"})


def test_the_request_goes_up_as_one_jsonl_line_with_the_synchronous_parameters(fake_openai: FakeOpenAI) -> None:
    _, batch_id = _submit(fake_openai)
    [created] = fake_openai.requests_to("/v1/batches")
    assert created.json == {"input_file_id": created.json["input_file_id"], "endpoint": "/v1/chat/completions",
                            "completion_window": "24h", "metadata": {"analysis_batch": "msgbatch_1", "analysis_model": "claude-sonnet-5-5"}}
    [line] = fake_openai.files[created.json["input_file_id"]]["bytes"].decode().splitlines()
    assert json.loads(line) == {"custom_id": "code", "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": MODEL, "messages": MESSAGES, "max_completion_tokens": 1_000}}
    assert batch_id in fake_openai.batches


def test_a_completed_request_is_the_reply_with_its_usage_and_the_batch_metadata(fake_openai: FakeOpenAI) -> None:
    client, batch_id = _submit(fake_openai)
    waiting = batches.collect_openai(client, batch_id, "code", MODEL, 1_000)
    assert (waiting.status, waiting.result) == ("in_progress", None)
    fake_openai.end_batches()
    found = batches.collect_openai(client, batch_id, "code", MODEL, 1_000)
    assert (found.status, found.result, found.error) == ("ended", "succeeded", None)
    assert found.reply is not None and found.reply.text == fake_openai.content
    assert (found.reply.usage.input_tokens, found.reply.usage.output_tokens) == (2_000, 500)
    assert found.metadata == {"analysis_batch": "msgbatch_1", "analysis_model": "claude-sonnet-5-5"}


@pytest.mark.parametrize(("ending", "result", "said"), [
    ("expired", "expired", "batch_expired"),  # unrun: in the error file, not billed
    ("errored", "errored", "500: The server had an error"),  # a non-200 response line
    ("failed", "errored", "batch failed: The request body is not valid"),  # validation failed: no files at all
])
def test_a_request_that_did_not_run_says_why_and_has_no_reply(fake_openai: FakeOpenAI, ending: str, result: str, said: str) -> None:
    client, batch_id = _submit(fake_openai)
    fake_openai.end_batches(ending)
    found = batches.collect_openai(client, batch_id, "code", MODEL, 1_000)
    assert (found.status, found.result, found.reply) == ("ended", result, None)
    assert found.error is not None and found.error.kind == f"batch_{result}" and said in found.error.message


def test_a_cancelled_batch_reads_as_canceled(fake_openai: FakeOpenAI) -> None:
    client, batch_id = _submit(fake_openai)
    client.batches.cancel(batch_id)
    fake_openai.end_batches()
    found = batches.collect_openai(client, batch_id, "code", MODEL, 1_000)
    assert (found.result, found.error.kind if found.error else None) == ("canceled", "batch_canceled")


def test_a_completed_line_that_is_not_a_chat_completion_is_billed_but_unusable(fake_openai: FakeOpenAI) -> None:
    client, batch_id = _submit(fake_openai)
    fake_openai.end_batches()
    batch = fake_openai.batches[batch_id]
    line = {"id": "batch_req_1", "custom_id": "code", "response": {"status_code": 200, "request_id": "req_1", "body": {}}, "error": None}
    fake_openai.files[batch["output_file_id"]]["bytes"] = (json.dumps(line) + "\n").encode()
    found = batches.collect_openai(client, batch_id, "code", MODEL, 1_000)
    assert (found.result, found.reply) == ("succeeded", None)  # booked at its held worst case (steps/batch.py)
    assert found.error is not None and found.error.may_be_billed


def test_a_provider_that_cannot_answer_raises_a_retryable_error(fake_openai: FakeOpenAI) -> None:
    client, batch_id = _submit(fake_openai)
    fake_openai.script(dataclasses.replace(FakeOpenAI.rate_limited(), path=f"/v1/batches/{batch_id}"))
    with pytest.raises(ProviderError) as raised:
        batches.collect_openai(client, batch_id, "code", MODEL, 1_000)
    assert raised.value.kind == "rate_limited"
