"""The real SDKs over real sockets against loopback fakes: what is sent, what comes back,
which failures are retried, and what the user is told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import anthropic
import pytest

from automation.core.errors import MissingSecretError, ProviderError
from automation.core.prices import PriceTable, Usage
from automation.models import providers
from automation.models.providers import (
    InvalidReplyError,
    ModelReply,
    TruncatedReplyError,
    analyse,
    claude_options,
    count_anthropic_input_tokens,
    make_anthropic_client,
    make_openai_client,
    openai_input_token_bound,
    write_code,
)
from tests.fakes.model_servers import (  # noqa: F401 - fixtures
    ANTHROPIC_TEST_KEY,
    OPENAI_TEST_KEY,
    FakeAnthropic,
    FakeOpenAI,
    Reply,
    fake_anthropic_fixture,
    fake_openai_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
CLAUDE = "claude-sonnet-5-5"
GPT = "gpt-4o-mini"


class StepClock:
    """Each reading is 0.25 s after the previous one."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def claude_client(fake: FakeAnthropic, max_retries: int = 2):
    return make_anthropic_client(fake.env(), max_retries=max_retries, timeout=5.0)


def gpt_client(fake: FakeOpenAI, max_retries: int = 2):
    return make_openai_client(fake.env(), max_retries=max_retries, timeout=5.0)


def code_messages() -> list[dict]:
    return [
        {"role": "system", "content": "You write code."},
        {"role": "user", "content": "Change the greeting."},
    ]


# --- happy paths -------------------------------------------------------------------------


def test_analyse_sends_the_messages_request_and_normalises_usage(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(
        FakeAnthropic.message(
            "Step 1: edit app.py.",
            model="claude-sonnet-5-5-20261101",
            input_tokens=1000,
            output_tokens=200,
            cache_write_5m=30,
            cache_write_1h=20,
            cache_read=400,
        )
    )
    reply = analyse(claude_client(fake_anthropic), CLAUDE, "You plan.", "Task: greet.", 1024, clock=StepClock())

    assert reply == ModelReply(
        model="claude-sonnet-5-5-20261101",
        text="Step 1: edit app.py.",
        usage=Usage(
            input_tokens=1000,
            output_tokens=200,
            cache_write_5m_tokens=30,
            cache_write_1h_tokens=20,
            cache_read_tokens=400,
        ),
        latency_ms=250,
    )
    [sent] = fake_anthropic.requests
    assert sent.method == "POST" and sent.path == "/v1/messages"
    assert sent.json == {
        "model": CLAUDE,
        "max_tokens": 1024,
        "system": "You plan.",
        "messages": [{"role": "user", "content": "Task: greet."}],
    }
    assert sent.headers["authorization"] == f"Bearer {ANTHROPIC_TEST_KEY}"  # anthropic 2.x sends a bearer key
    assert "anthropic-version" in sent.headers
    assert fake_anthropic.places_containing(ANTHROPIC_TEST_KEY, auth_header="authorization") == []


def test_analyse_joins_text_blocks_and_skips_others(fake_anthropic: FakeAnthropic) -> None:
    body = FakeAnthropic.message("ignored").body
    body["content"] = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Part one. "},
        {"type": "text", "text": "Part two."},
    ]
    fake_anthropic.script(Reply(200, body))
    reply = analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert reply.text == "Part one. Part two."


def test_count_tokens_uses_the_free_endpoint_with_the_same_prompt(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.counted_tokens = 4321
    counted = count_anthropic_input_tokens(claude_client(fake_anthropic), CLAUDE, "You plan.", "Task: greet.")
    assert counted == 4321
    [sent] = fake_anthropic.requests
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json == {
        "model": CLAUDE,
        "system": "You plan.",
        "messages": [{"role": "user", "content": "Task: greet."}],
    }
    assert fake_anthropic.generation_requests == []


def test_write_code_asks_for_plain_text_and_subtracts_cached_tokens(fake_openai: FakeOpenAI) -> None:
    content = FakeOpenAI.code_reply("Greets.", [{"path": "app.py", "search": "print(1)\n", "replace": "print('hi')\n"}])
    fake_openai.script(
        FakeOpenAI.completion(
            content, model="gpt-4o-mini-2024-07-18", prompt_tokens=2000, completion_tokens=150, cached_tokens=1536
        )
    )
    reply = write_code(gpt_client(fake_openai), GPT, code_messages(), 4096, clock=StepClock())

    assert reply == ModelReply(
        model="gpt-4o-mini-2024-07-18",
        text=content,
        usage=Usage(input_tokens=464, output_tokens=150, cache_read_tokens=1536),
        latency_ms=250,
    )
    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {
        "model": GPT,
        "messages": code_messages(),
        "max_completion_tokens": 4096,
    }  # no response_format: code inside JSON scores lower (Aider, 2024)
    assert sent.headers["authorization"] == f"Bearer {OPENAI_TEST_KEY}"
    assert fake_openai.places_containing(OPENAI_TEST_KEY, auth_header="authorization") == []


def test_scripted_replies_wait_for_their_own_path(fake_anthropic: FakeAnthropic) -> None:
    """A 529 meant for the Messages call is not eaten by the token count before it."""
    fake_anthropic.script(FakeAnthropic.overloaded())
    client = claude_client(fake_anthropic)
    count_anthropic_input_tokens(client, CLAUDE, "s", "p")
    analyse(client, CLAUDE, "s", "p", 4096)
    assert [r.path for r in fake_anthropic.requests] == [
        "/v1/messages/count_tokens",
        "/v1/messages",
        "/v1/messages",
    ]
    assert fake_anthropic.pending == []


def test_a_subprocess_reaches_the_fakes_through_its_environment(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    program = (
        "import os\n"
        "from automation.models.providers import analyse, make_anthropic_client, make_openai_client, write_code\n"
        "env = dict(os.environ)\n"
        "print(analyse(make_anthropic_client(env), 'claude-sonnet-5-5', 's', 'p', 4096).text)\n"
        "print(write_code(make_openai_client(env), 'gpt-4o-mini', [{'role': 'user', 'content': 'x'}], 4096).model)\n"
    )
    env = {**os.environ, **fake_anthropic.env(), **fake_openai.env()}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [fake_anthropic.text, "gpt-4o-mini"]
    assert len(fake_anthropic.generation_requests) == len(fake_openai.generation_requests) == 1


def test_base_urls_come_from_env_and_the_default_is_the_real_api(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    assert str(claude_client(fake_anthropic).base_url).rstrip("/") == fake_anthropic.base_url
    assert str(gpt_client(fake_openai).base_url).rstrip("/") == fake_openai.base_url
    env = {"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"}
    assert str(make_anthropic_client(env).base_url).rstrip("/") == "https://api.anthropic.com"
    assert str(make_openai_client(env).base_url).rstrip("/") == "https://api.openai.com/v1"


# --- retries the SDKs do for us ------------------------------------------------------------


def test_overloaded_529_is_retried_then_succeeds(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.overloaded())
    reply = analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert reply.text == fake_anthropic.text
    assert len(fake_anthropic.generation_requests) == 2


def test_anthropic_rate_limit_honours_retry_after(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.rate_limited(retry_after="0.01"))
    analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert len(fake_anthropic.generation_requests) == 2


def test_openai_rate_limit_honours_retry_after_then_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.rate_limited(retry_after="0.01"), FakeOpenAI.rate_limited(retry_after_ms="5"))
    reply = write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    assert reply.text == fake_openai.content and "<<<<<<< SEARCH" in reply.text
    assert len(fake_openai.generation_requests) == 3


def test_server_error_storm_ends_as_retryable_server_error(
    fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    fake_anthropic.script(*[FakeAnthropic.server_error()] * 3)
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic, max_retries=2), CLAUDE, "s", "p", 4096)
    assert (caught.value.provider, caught.value.kind, caught.value.status) == ("anthropic", "server", 500)
    assert caught.value.retryable is True
    assert len(fake_anthropic.generation_requests) == 3

    fake_openai.script(*[FakeOpenAI.server_error(503)] * 3)
    with pytest.raises(ProviderError) as caught:
        write_code(gpt_client(fake_openai, max_retries=2), GPT, code_messages(), 4096)
    assert (caught.value.provider, caught.value.kind, caught.value.status) == ("openai", "server", 503)
    assert caught.value.retryable is True
    assert len(fake_openai.generation_requests) == 3


def test_overloaded_storm_ends_as_retryable_overloaded(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(*[FakeAnthropic.overloaded()] * 2)
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic, max_retries=1), CLAUDE, "s", "p", 4096)
    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("overloaded", 529, True)
    assert "Anthropic" in str(caught.value)


def test_rate_limit_storm_ends_as_retryable_rate_limited(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(*[FakeOpenAI.rate_limited()] * 2)
    with pytest.raises(ProviderError) as caught:
        write_code(gpt_client(fake_openai, max_retries=1), GPT, code_messages(), 4096)
    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("rate_limited", 429, True)
    assert "https://platform.openai.com/settings/organization/limits" in str(caught.value)


def test_unreachable_server_is_a_retryable_connection_error() -> None:
    with FakeOpenAI() as gone:
        env = gone.env()
    client = make_openai_client(env, max_retries=0, timeout=2.0)
    with pytest.raises(ProviderError) as caught:
        write_code(client, GPT, code_messages(), 4096)
    assert (caught.value.provider, caught.value.kind, caught.value.retryable) == ("openai", "connection", True)


# --- failures no retry can fix -------------------------------------------------------------


def test_insufficient_quota_is_not_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.insufficient_quota())
    with pytest.raises(ProviderError) as caught:
        write_code(gpt_client(fake_openai, max_retries=4), GPT, code_messages(), 4096)
    assert len(fake_openai.generation_requests) == 1
    err = caught.value
    assert (err.provider, err.kind, err.status, err.retryable) == ("openai", "quota", 429, False)
    assert str(err).startswith("OpenAI: the account is out of credit (insufficient_quota).")
    assert "https://platform.openai.com/settings/organization/billing" in str(err)
    assert ".github/ai-orchestration.yml" in str(err)


@pytest.mark.parametrize("with_code", [True, False], ids=["error_code", "message-only"])
def test_anthropic_spend_limit_429_is_not_retried(fake_anthropic: FakeAnthropic, with_code: bool) -> None:
    fake_anthropic.script(FakeAnthropic.spend_limit(with_code=with_code))
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic, max_retries=4), CLAUDE, "s", "p", 4096)
    assert len(fake_anthropic.generation_requests) == 1
    err = caught.value
    assert (err.provider, err.kind, err.status, err.retryable) == ("anthropic", "billing", 429, False)
    assert "https://console.anthropic.com/settings/billing" in str(err)
    assert "request id req_" in str(err)


@pytest.mark.parametrize("scripted", [FakeAnthropic.credit_too_low(), FakeAnthropic.billing_error()])
def test_anthropic_credit_and_billing_errors(fake_anthropic: FakeAnthropic, scripted) -> None:
    fake_anthropic.script(scripted)
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert (caught.value.kind, caught.value.retryable) == ("billing", False)
    assert len(fake_anthropic.generation_requests) == 1


def test_anthropic_401_names_provider_and_fix_without_the_key(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.authentication(echo=ANTHROPIC_TEST_KEY))
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    err = caught.value
    assert (err.provider, err.kind, err.status, err.retryable) == ("anthropic", "auth", 401, False)
    assert str(err).startswith("Anthropic: the API key in ANTHROPIC_API_KEY was rejected")
    assert "repository secret" in str(err)
    assert ANTHROPIC_TEST_KEY not in str(err)
    assert err.__cause__ is None and err.__suppress_context__
    assert len(fake_anthropic.generation_requests) == 1


def test_openai_401_names_provider_and_fix_without_the_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.invalid_api_key(echo=OPENAI_TEST_KEY))
    with pytest.raises(ProviderError) as caught:
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    err = caught.value
    assert (err.provider, err.kind, err.status, err.retryable) == ("openai", "auth", 401, False)
    assert str(err).startswith("OpenAI: the API key in OPENAI_API_KEY was rejected (401 invalid_api_key)")
    assert OPENAI_TEST_KEY not in str(err)


def test_key_echoed_in_another_error_is_redacted(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        FakeOpenAI.error(400, f"bad header {OPENAI_TEST_KEY}", error_type="invalid_request_error", code=None)
    )
    with pytest.raises(ProviderError) as caught:
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    assert caught.value.kind == "bad_request"
    assert OPENAI_TEST_KEY not in str(caught.value) and "bad header ***" in str(caught.value)


def test_permission_denied(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.permission())
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("permission", 403, False)


def test_unknown_model_may_fall_back(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.not_found("claude-nope"))
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic), "claude-nope", "s", "p", 4096)
    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("bad_request", 404, True)
    assert "claude-nope" in str(caught.value)


def test_a_prompt_over_the_window_says_so_and_may_fall_back(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.context_length_exceeded())
    with pytest.raises(ProviderError) as caught:
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    assert (caught.value.kind, caught.value.status, caught.value.retryable) == ("context_length", 400, True)
    message = str(caught.value)
    assert "prompt is longer than the model's context window" in message and "maximum context length is 128000" in message
    assert "models.code_max_input_tokens" in message and "Check the model name" not in message


def test_count_tokens_failures_are_classified(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(
        FakeAnthropic.error(401, "authentication_error", "invalid x-api-key", path=FakeAnthropic.count_tokens_path)
    )
    with pytest.raises(ProviderError) as caught:
        count_anthropic_input_tokens(claude_client(fake_anthropic), CLAUDE, "s", "p")
    assert caught.value.kind == "auth"


# --- replies that were paid for but cannot be used ----------------------------------------


def test_code_cut_at_max_completion_tokens_is_refused_with_its_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.completion("Adds.\n\na.py\n```\n<<<<<<< SEARCH\n", finish_reason="length", completion_tokens=100))
    with pytest.raises(TruncatedReplyError) as caught:
        write_code(gpt_client(fake_openai), GPT, code_messages(), 100)
    err = caught.value
    assert (err.kind, err.provider, err.retryable, err.max_tokens) == ("max_tokens", "openai", False, 100)
    assert "max_completion_tokens (100, 0 of them reasoning)" in str(err)
    assert "models.code_max_tokens" in str(err)
    assert err.reply.usage.output_tokens == 100


def test_refusal_is_invalid(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_openai.script(FakeOpenAI.completion(None, refusal="I can't help with that."))
    with pytest.raises(InvalidReplyError, match="refused"):
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    fake_anthropic.script(FakeAnthropic.message("", stop_reason="refusal"))
    with pytest.raises(InvalidReplyError, match="refused"):
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)


def test_empty_replies_are_invalid(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_openai.script(FakeOpenAI.completion(""))
    with pytest.raises(InvalidReplyError, match="no content"):
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    fake_anthropic.script(FakeAnthropic.message(""))
    with pytest.raises(InvalidReplyError, match="no text"):
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)


def test_an_analysis_cut_at_max_tokens_is_never_returned(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.message("Half an analy", stop_reason="max_tokens", output_tokens=100))
    with pytest.raises(TruncatedReplyError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert (caught.value.kind, caught.value.retryable, caught.value.reply.text) == ("max_tokens", False, "Half an analy")
    assert "models.analysis_max_tokens" in str(caught.value)


def test_only_the_stop_reasons_of_a_finished_answer_are_returned() -> None:
    """Checked against the installed SDK: every stop reason it knows is either finished or classified."""
    known = set(typing.get_args(anthropic.types.StopReason))
    assert providers.FINISHED_STOP_REASONS == {"end_turn", "stop_sequence"} <= known
    assert known - providers.FINISHED_STOP_REASONS == {
        "max_tokens", "model_context_window_exceeded", "refusal", "pause_turn", "tool_use",
    }


@pytest.mark.parametrize("stop_reason", ["pause_turn", "tool_use", "a_reason_from_next_year"])
def test_an_unfinished_claude_reply_is_never_used_as_a_plan(fake_anthropic: FakeAnthropic, stop_reason: str) -> None:
    fake_anthropic.script(FakeAnthropic.message("Add a greeting", stop_reason=stop_reason, output_tokens=4))
    with pytest.raises(InvalidReplyError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    err = caught.value
    assert (err.kind, err.retryable, err.reply.usage.output_tokens) == ("unfinished", True, 4)  # billed: booked
    assert f"did not finish its answer (stop_reason {stop_reason}); the partial reply is not used" in str(err)


def test_a_claude_refusal_is_classified_as_one(fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI) -> None:
    fake_anthropic.script(FakeAnthropic.message("I can't", stop_reason="refusal"))
    with pytest.raises(InvalidReplyError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096)
    assert caught.value.kind == "refusal"
    fake_openai.script(FakeOpenAI.completion("", finish_reason="content_filter"))
    with pytest.raises(InvalidReplyError) as caught:
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    assert caught.value.kind == "refusal"


def test_a_reply_that_filled_the_context_window_is_a_context_length_failure_not_a_cut(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.message("## Changes\nAdd", stop_reason="model_context_window_exceeded",
                                                input_tokens=199_000, output_tokens=1_000))
    with pytest.raises(ProviderError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 16_000)
    err = caught.value
    assert not isinstance(err, TruncatedReplyError)  # a doubled max_tokens cannot help
    assert (err.kind, err.retryable) == ("context_length", True)  # the fallback chain applies
    assert err.reply.usage.input_tokens == 199_000  # billed: booked
    assert "filled its context window" in str(err) and "models.fallbacks.analysis" in str(err)


def test_an_openai_reply_that_stopped_for_tool_calls_is_unfinished(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.completion("Adds a.py", finish_reason="tool_calls"))
    with pytest.raises(InvalidReplyError) as caught:
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    assert caught.value.kind == "unfinished" and "finish_reason tool_calls" in str(caught.value)


# --- today's models: thinking, effort, reasoning ------------------------------------------


def test_claude_options_follow_what_each_model_takes() -> None:
    table = PriceTable.builtin()
    sonnet55, sonnet5, haiku = (table.find(m) for m in ("claude-sonnet-5-5", "claude-sonnet-5", "claude-haiku-4-5"))
    assert sonnet55 and sonnet5 and haiku
    assert claude_options(sonnet55, "medium", "adaptive") == {
        "thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "medium"},
    }
    # Sonnet 5.5 refuses "disabled" (a 400): "between_tools" turns its up-front thinking off
    assert claude_options(sonnet55, "low", "off") == {"thinking": {"type": "between_tools"}, "output_config": {"effort": "low"}}
    assert claude_options(sonnet5, "xhigh", "off") == {"thinking": {"type": "disabled"}, "output_config": {"effort": "xhigh"}}
    assert claude_options(haiku, "medium", "adaptive") == {}  # Haiku 4.5 takes neither: nothing is sent


def test_a_thinking_model_thinks_inside_max_tokens_and_only_the_answer_is_returned(fake_anthropic: FakeAnthropic) -> None:
    options = claude_options(PriceTable.builtin().prices[CLAUDE], "medium", "adaptive")
    reply = analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096, options=options)
    thought = fake_anthropic.thinking_tokens // 2  # effort medium
    assert reply.text == fake_anthropic.text
    assert reply.usage.output_tokens == 300 + thought and reply.usage.reasoning_tokens == thought
    [sent] = fake_anthropic.generation_requests
    assert sent.json["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert sent.json["output_config"] == {"effort": "medium"}
    assert not {"temperature", "top_p", "top_k"} & set(sent.json)


def test_thinking_that_fills_max_tokens_leaves_a_cut_reply(fake_anthropic: FakeAnthropic) -> None:
    """Sonnet 5.5 thinks at effort high by default: 2,000 tokens of thinking do not fit in 1,024."""
    with pytest.raises(TruncatedReplyError) as caught:
        analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 1024)
    usage = caught.value.reply.usage
    assert (usage.output_tokens, usage.reasoning_tokens) == (1024, 1024)
    assert "1,024 of them thinking" in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"thinking": {"type": "disabled"}}, "between_tools"),
        ({"temperature": 0.2}, "temperature"),
        ({"top_k": 40}, "top_k"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "budget_tokens"),
    ],
)
def test_the_fake_refuses_what_sonnet_5_5_refuses(fake_anthropic: FakeAnthropic, extra: dict, said: str) -> None:
    client = claude_client(fake_anthropic, max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match=said):
        client.messages.create(model=CLAUDE, max_tokens=4096, messages=[{"role": "user", "content": "p"}], extra_body=extra)


def test_a_reasoning_model_gets_reasoning_effort_and_reports_reasoning_and_cache_writes(fake_openai: FakeOpenAI) -> None:
    fake_openai.usage.update(prompt_tokens=300_000, cached_tokens=100_000, cache_write_tokens=50_000)
    reply = write_code(gpt_client(fake_openai), "gpt-6-luna", code_messages(), 32_768, reasoning_effort="low")
    reasoned = fake_openai.reasoning_tokens // 2  # low is half of medium, the fake's default
    assert reply.usage == Usage(
        input_tokens=150_000, output_tokens=500 + reasoned, cache_write_5m_tokens=50_000, cache_read_tokens=100_000,
        reasoning_tokens=reasoned,
    )
    [sent] = fake_openai.generation_requests
    assert (sent.json["reasoning_effort"], sent.json["max_completion_tokens"]) == ("low", 32_768)
    assert "max_tokens" not in sent.json


def test_an_older_model_is_never_sent_reasoning_effort(fake_openai: FakeOpenAI) -> None:
    write_code(gpt_client(fake_openai), GPT, code_messages(), 4096)
    assert "reasoning_effort" not in fake_openai.generation_requests[0].json
    with pytest.raises(ProviderError, match="reasoning_effort") as caught:  # what the API says if it were
        write_code(gpt_client(fake_openai), GPT, code_messages(), 4096, reasoning_effort="low")
    assert (caught.value.kind, caught.value.status) == ("bad_request", 400)


def test_reasoning_that_fills_max_completion_tokens_is_a_cut_reply(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(TruncatedReplyError) as caught:
        write_code(gpt_client(fake_openai), "gpt-6-luna", code_messages(), 800)
    assert (caught.value.reply.usage.output_tokens, caught.value.reply.usage.reasoning_tokens) == (800, 800)
    assert caught.value.reply.text == ""


# --- environment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "variable"),
    [(make_anthropic_client, "ANTHROPIC_API_KEY"), (make_openai_client, "OPENAI_API_KEY")],
)
@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_key_names_the_variable(make, variable: str, value: str | None) -> None:
    env = {} if value is None else {variable: value}
    with pytest.raises(MissingSecretError) as caught:
        make(env)
    assert variable in str(caught.value)
    assert "repository secret" in str(caught.value)


def test_clients_ignore_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-os-environ")
    monkeypatch.setenv("OPENAI_API_KEY", "from-os-environ")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9")
    with pytest.raises(MissingSecretError):
        make_anthropic_client({})
    with pytest.raises(MissingSecretError):
        make_openai_client({})
    assert "127.0.0.1:9" not in str(make_anthropic_client({"ANTHROPIC_API_KEY": "k"}).base_url)
    assert "127.0.0.1:9" not in str(make_openai_client({"OPENAI_API_KEY": "k"}).base_url)


# --- the OpenAI input bound ----------------------------------------------------------------

SAMPLES = {
    "ascii": "def greet(name):\n    return f'Hello, {name}!'\n" * 20,
    "emoji": "🚀🔥✨👩‍👩‍👧‍👦 " * 50,
    "cjk": "人工智能编排机器人在预算内编写代码。" * 30,
    "mixed": "Grüße, мир! 🌍 こんにちは\t\n" * 25,
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_openai_bound_is_at_least_every_byte(name: str) -> None:
    """A BPE token never covers less than one byte, so bytes bound tokens."""
    text = SAMPLES[name]
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": text}]
    bound = openai_input_token_bound(messages, None)
    assert bound >= len(text.encode("utf-8")) + len(b"sys")
    assert bound >= len(text)  # and so at least the characters, which some tokenizers split finer than words


def test_openai_bound_counts_the_schema_and_content_parts() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "ünïcode " * 10}]}]
    without = openai_input_token_bound(messages, None)
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}}}
    with_schema = openai_input_token_bound(messages, response_format)
    assert without >= len(("ünïcode " * 10).encode())
    assert with_schema - without >= len(json.dumps(response_format, separators=(",", ":")).encode())


def test_openai_bound_grows_with_each_message() -> None:
    one = openai_input_token_bound([{"role": "user", "content": ""}], None)
    two = openai_input_token_bound([{"role": "user", "content": ""}] * 2, None)
    assert two > one > 0


def test_module_reads_no_environment() -> None:
    source = providers.__file__
    with open(source, encoding="utf-8") as handle:
        assert "os.environ" not in handle.read()


# --- odd 200s, timeouts and the missing count (booked by attempts.py) -----------------------------


@pytest.mark.parametrize("body", [b"not json", b'{"id": "chatcmpl-1", "choices": [{"ind', b"{}", b"[]"])
def test_a_200_that_is_not_a_reply_is_a_retryable_error_that_may_have_been_billed(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, body: bytes
) -> None:
    fake_openai.script(Reply(200, body))
    fake_anthropic.script(Reply(200, body))
    with pytest.raises(ProviderError) as openai_error:
        write_code(gpt_client(fake_openai, max_retries=0), GPT, code_messages(), 4096)
    with pytest.raises(ProviderError) as anthropic_error:
        analyse(claude_client(fake_anthropic, max_retries=0), CLAUDE, "s", "p", 4096)
    for error, name in ((openai_error.value, "OpenAI"), (anthropic_error.value, "Anthropic")):
        assert (error.kind, error.retryable, error.may_be_billed) == ("malformed_reply", True, True)
        assert error.message.startswith(f"{name}: the reply was not a valid response")


def test_a_reply_without_usage_says_so(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    completion = FakeOpenAI.completion(FakeOpenAI.code_reply("s", [])).body
    message = FakeAnthropic.message("plan").body
    del completion["usage"], message["usage"]
    fake_openai.script(Reply(200, completion))
    fake_anthropic.script(Reply(200, message))
    assert write_code(gpt_client(fake_openai), GPT, code_messages(), 4096).usage_reported is False
    assert analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096).usage_reported is False
    assert analyse(claude_client(fake_anthropic), CLAUDE, "s", "p", 4096).usage_reported is True


def test_a_timeout_may_have_been_billed_but_a_refused_connection_was_not(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(200, FakeOpenAI.completion("{}").body, delay=3))
    with pytest.raises(ProviderError) as timed_out:
        write_code(providers.with_timeout(gpt_client(fake_openai, max_retries=0), 0.5), GPT, code_messages(), 4096)
    assert (timed_out.value.kind, timed_out.value.may_be_billed) == ("timeout", True)
    refused = make_openai_client({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, max_retries=0)
    with pytest.raises(ProviderError) as unreachable:
        write_code(refused, GPT, code_messages(), 4096)
    assert (unreachable.value.kind, unreachable.value.may_be_billed) == ("connection", False)


def test_retry_after_is_carried_on_the_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.rate_limited(retry_after="2", retry_after_ms="1500"))
    with pytest.raises(ProviderError) as limited:
        write_code(gpt_client(fake_openai, max_retries=0), GPT, code_messages(), 4096)
    assert limited.value.retry_after == 1.5


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_missing_count_endpoint_falls_back_to_utf8_bytes(fake_anthropic: FakeAnthropic, status: int) -> None:
    fake_anthropic.script(Reply(status, {"detail": "Not Found"}, path=FakeAnthropic.count_tokens_path))
    bound = providers.anthropic_input_bound(claude_client(fake_anthropic, max_retries=0), CLAUDE, "sys", "héllo")
    assert (bound.tokens, bound.counted) == (len("sys") + len("héllo".encode()) + 32, False)
    assert f"{FakeAnthropic.count_tokens_path} answered {status}" in bound.note and fake_anthropic.root_url in bound.note


def test_a_believable_count_is_used_and_an_unbelievable_one_is_not(fake_anthropic: FakeAnthropic) -> None:
    prompt = "word " * 400  # 2,000 bytes
    fake_anthropic.counted_tokens = 420
    assert providers.anthropic_input_bound(claude_client(fake_anthropic), CLAUDE, "s", prompt) == providers.InputBound(420, True)
    fake_anthropic.counted_tokens = 100  # 20 bytes a token: not a tokenizer
    bound = providers.anthropic_input_bound(claude_client(fake_anthropic), CLAUDE, "s", prompt)
    assert (bound.tokens, bound.counted) == (2_001 + 32, False) and "too few to trust" in bound.note


def test_an_unknown_model_on_the_count_endpoint_is_still_an_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(FakeAnthropic.error(404, "not_found_error", f"model: {CLAUDE}", path=FakeAnthropic.count_tokens_path))
    with pytest.raises(ProviderError) as failure:
        providers.anthropic_input_bound(claude_client(fake_anthropic, max_retries=0), CLAUDE, "s", "p")
    assert failure.value.kind == "bad_request" and failure.value.status == 404
