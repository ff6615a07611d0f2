"""The Anthropic and OpenAI calls, through the official SDKs, and what their failures mean.

The SDKs do the retrying (they honour ``retry-after``/``retry-after-ms`` and back off on
429, 529, 5xx and connection errors). Two 429s must not be retried because waiting cannot
fix them: OpenAI's ``insufficient_quota`` (out of credit) and Anthropic's reached spend
limit. Both SDKs decide in ``_should_retry(response)``, so each client here is a small
subclass that says no for those. Every failure leaves as one ``ProviderError`` whose
message names the provider and the fix, and never contains the API key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import openai

from ..core.errors import ProviderError
from ..core.prices import ANTHROPIC, OPENAI, Price, Usage
from .keys import ANTHROPIC_DEFAULT_BASE_URL, KEY_PAGES, KEY_VARIABLES, OPENAI_DEFAULT_BASE_URL, api_key

Clock = Callable[[], float]

CONFIG_FILE = ".github/ai-orchestration.yml"

_NAMES = {ANTHROPIC: "Anthropic", OPENAI: "OpenAI"}
_BILLING_PAGES = {
    ANTHROPIC: "https://console.anthropic.com/settings/billing",
    OPENAI: "https://platform.openai.com/settings/organization/billing",
}
_LIMITS_PAGES = {
    ANTHROPIC: "https://console.anthropic.com/settings/limits",
    OPENAI: "https://platform.openai.com/settings/organization/limits",
}

# Anthropic: ``error.details.error_code`` values, then message fragments (older bodies carry
# no code) that mean money, not load: a spend limit or an empty credit balance.
_ANTHROPIC_BILLING_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)
_ANTHROPIC_BILLING_WORDS = ("spend limit", "usage limit", "credit balance", "billing", "purchase credits")
# OpenAI: ``error.code`` / ``error.type`` values.
_OPENAI_QUOTA_CODES = frozenset({"insufficient_quota"})
_OPENAI_BILLING_CODES = frozenset({"billing_hard_limit_reached", "billing_not_active", "account_deactivated"})
# A prompt over the model's window: a 400 that a model with a larger window can answer.
_OPENAI_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})

# Per-message framing in OpenAI's chat format is about 3-4 tokens (start, role, separator,
# end) and the reply is primed with about 3; these are generous so the bound stays sound.
_OPENAI_TOKENS_PER_MESSAGE = 8
_OPENAI_TOKENS_PER_REPLY = 8
_OPENAI_TOKENS_PER_SCHEMA = 32

_MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class ModelReply:
    """What a model answered, what it cost in tokens and how long it took."""

    model: str  # the model that answered, as the provider reports it
    text: str
    usage: Usage  # input_tokens excludes cached tokens
    latency_ms: int
    usage_reported: bool = True  # False: the reply had no usage (some gateways strip it); book the worst case


class InvalidReplyError(ProviderError):
    """The call succeeded and was billed, but the reply is unusable.

    ``reply`` carries the usage so the ledger can still charge for the call.
    """

    def __init__(self, message: str, *, provider: str, reply: ModelReply) -> None:
        super().__init__(message, provider=provider, kind="invalid_reply", status=200, retryable=True)
        self.reply = reply


class TruncatedReplyError(InvalidReplyError):
    """The reply stopped at ``max_tokens`` (thinking and reasoning count toward it): billed,
    but a cut-off plan or code is never used. Not retryable on another model; the pipeline
    decides whether one retry with more room is affordable."""

    def __init__(self, message: str, *, provider: str, reply: ModelReply, max_tokens: int) -> None:
        super().__init__(message, provider=provider, reply=reply)
        self.kind = "max_tokens"
        self.retryable = False
        self.max_tokens = max_tokens


# --- clients ---------------------------------------------------------------------------


def _error_body(response: httpx2.Response) -> dict[str, Any]:
    """The ``error`` object of an error response, or {} when the body is not JSON."""
    try:
        body = json.loads(response.read())
    except (ValueError, httpx2.HTTPError):
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _anthropic_is_billing(status: int, error: Mapping[str, Any]) -> bool:
    """True when Anthropic refuses for money (spend limit, credit), which no retry can fix."""
    if status == 402 or error.get("type") == "billing_error":
        return True
    details = error.get("details")
    if isinstance(details, dict) and details.get("error_code") in _ANTHROPIC_BILLING_CODES:
        return True
    message = str(error.get("message") or "").lower()
    return status in (400, 403, 429) and any(word in message for word in _ANTHROPIC_BILLING_WORDS)


def _openai_code(error: Mapping[str, Any]) -> str:
    return str(error.get("code") or error.get("type") or "")


class OrchestratorAnthropic(anthropic.Anthropic):
    """Anthropic client that does not retry a 429 caused by a reached spend limit."""

    def _should_retry(self, response: httpx2.Response) -> bool:
        if response.status_code == 429 and _anthropic_is_billing(429, _error_body(response)):
            return False
        return super()._should_retry(response)


class OrchestratorOpenAI(openai.OpenAI):
    """OpenAI client that does not retry ``insufficient_quota``: the SDK retries every 429."""

    def _should_retry(self, response: httpx2.Response) -> bool:
        if response.status_code == 429:
            code = _openai_code(_error_body(response))
            if code in _OPENAI_QUOTA_CODES or code in _OPENAI_BILLING_CODES:
                return False
        return super()._should_retry(response)


def make_anthropic_client(
    env: Mapping[str, str], *, max_retries: int = 4, timeout: float = 120.0
) -> anthropic.Anthropic:
    """An Anthropic client from ``env`` only (key and base URL are passed, never looked up)."""
    return OrchestratorAnthropic(
        api_key=api_key(env, ANTHROPIC),
        base_url=env.get("ANTHROPIC_BASE_URL") or ANTHROPIC_DEFAULT_BASE_URL,
        max_retries=max_retries,
        timeout=timeout,
    )


def make_openai_client(env: Mapping[str, str], *, max_retries: int = 4, timeout: float = 120.0) -> openai.OpenAI:
    """An OpenAI client from ``env`` only (key and base URL are passed, never looked up)."""
    return OrchestratorOpenAI(
        api_key=api_key(env, OPENAI),
        base_url=env.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL,
        max_retries=max_retries,
        timeout=timeout,
    )


def with_timeout(client: Any, seconds: float) -> Any:
    """The same client with a per-request timeout of ``seconds`` (for the run's deadline)."""
    return client.with_options(timeout=seconds)


# --- error classification --------------------------------------------------------------


def _detail(text: str, secret: str) -> str:
    """The provider's own words, one line, short, with the key removed if it was echoed."""
    line = " ".join(text.split())
    if secret:
        line = line.replace(secret, "***")
    return line[:_MAX_DETAIL_CHARS].rstrip(". ")


def _status_error(
    provider: str, status: int, kind: str, error: Mapping[str, Any], request_id: str | None, secret: str
) -> ProviderError:
    """One ProviderError for an HTTP error, with the fix for the kinds a person must act on."""
    name = _NAMES[provider]
    variable = KEY_VARIABLES[provider]
    said = _detail(str(error.get("message") or ""), secret)
    code = _openai_code(error) if provider == OPENAI else str(error.get("type") or "")
    tag = f"{status} {code}".strip()
    ref = f" (request id {request_id})" if request_id else ""
    fix = {
        "auth": f"{name}: the API key in {variable} was rejected ({tag}). Create a key at "
        f"{KEY_PAGES[provider]} and update the {variable} repository secret.",
        "permission": f"{name}: the API key may not use this model or endpoint ({tag}): {said}. Check the "
        f"key's workspace/project permissions, or change the models in {CONFIG_FILE}.",
        "billing": f"{name}: billing stops the call ({tag}): {said}. Add credit at {_BILLING_PAGES[provider]} "
        f"or raise the spend limit at {_LIMITS_PAGES[provider]}, or change the models in {CONFIG_FILE}.",
        "quota": f"{name}: the account is out of credit ({code or 'insufficient_quota'}). Add credit at "
        f"{_BILLING_PAGES[provider]} or change the models in {CONFIG_FILE}.",
        "rate_limited": f"{name}: still rate limited after retries ({tag}): {said}. Wait, or raise the "
        f"limits at {_LIMITS_PAGES[provider]}.",
        "overloaded": f"{name}: overloaded after retries ({tag}): {said}. Try again later.",
        "server": f"{name}: server error after retries ({tag}): {said}. Try again later.",
        "bad_request": f"{name}: the request was refused ({tag}): {said}. Check the model name in {CONFIG_FILE}.",
        "context_length": f"{name}: the prompt is longer than the model's context window ({tag}): {said}. The "
        f"next model in models.fallbacks.code is tried; configure one with a larger window (gpt-4.1-mini takes "
        f"1M tokens) or lower models.code_max_input_tokens in {CONFIG_FILE}.",
    }[kind]
    retryable = kind in ("rate_limited", "overloaded", "server", "context_length") or (
        kind == "bad_request" and status == 404
    )
    return ProviderError(fix + ref, provider=provider, kind=kind, status=status, retryable=retryable)


def _anthropic_kind(status: int, error: Mapping[str, Any]) -> str:
    if status == 401:
        return "auth"
    if _anthropic_is_billing(status, error):
        return "billing"
    if status == 403:
        return "permission"
    if status == 429:
        return "rate_limited"
    if status == 529 or error.get("type") == "overloaded_error":
        return "overloaded"
    if status >= 500:
        return "server"
    return "bad_request"


def _openai_kind(status: int, error: Mapping[str, Any]) -> str:
    code = _openai_code(error)
    if status == 401:
        return "auth"
    if code in _OPENAI_QUOTA_CODES:
        return "quota"
    if code in _OPENAI_BILLING_CODES:
        return "billing"
    if status == 403:
        return "permission"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server"
    if code in _OPENAI_CONTEXT_CODES:
        return "context_length"
    return "bad_request"


# Failures before the request reached the provider: nothing can have been billed.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


def _connection_error(provider: str, err: Exception) -> ProviderError:
    """A timeout or a lost connection. Unless it failed before the request was sent, the
    provider may have done (and billed) the work, so the call is booked at its worst case."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, _NOT_SENT):
        cause = cause.__cause__
    sent = cause is None
    timed_out = "timeout" in type(err).__name__.lower()
    what = "timed out" if timed_out else "lost its connection" if sent else "could not connect"
    return ProviderError(
        f"{_NAMES[provider]}: the request {what}. Check the network (and "
        f"{provider.upper()}_BASE_URL if set), then try again.",
        provider=provider,
        kind="timeout" if timed_out else "connection",
        retryable=True,
        may_be_billed=sent,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asks us to wait: ``retry-after-ms``, else ``retry-after`` seconds."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[name]) / scale)
        except (KeyError, ValueError):
            continue
    return None


def _malformed(provider: str, problem: str) -> ProviderError:
    """A 200 whose body is not a reply (not JSON, cut off, ``{}``): the work may have been done
    and billed, so it is booked at the worst case; retryable, so the fallback chain applies."""
    return ProviderError(
        f"{_NAMES[provider]}: the reply was not a valid response ({problem}); booked at its reserved worst case. "
        f"If {provider.upper()}_BASE_URL points at a gateway, check it passes replies through unchanged.",
        provider=provider,
        kind="malformed_reply",
        status=200,
        retryable=True,
        may_be_billed=True,
    )


def classify_anthropic(err: anthropic.APIError, secret: str) -> ProviderError:
    if isinstance(err, anthropic.APIStatusError):
        error = err.body.get("error", {}) if isinstance(err.body, dict) else {}
        error = error if isinstance(error, dict) else {}
        kind = _anthropic_kind(err.status_code, error)
        failure = _status_error(ANTHROPIC, err.status_code, kind, error, err.request_id, secret)
        failure.retry_after = _retry_after(err.response.headers)
        return failure
    if isinstance(err, anthropic.APIConnectionError):
        return _connection_error(ANTHROPIC, err)
    return ProviderError(
        f"Anthropic: unexpected reply: {_detail(str(err), secret)}",
        provider=ANTHROPIC,
        kind="invalid_reply",
        retryable=True,
    )


def classify_openai(err: openai.OpenAIError, secret: str) -> ProviderError:
    if isinstance(err, openai.APIStatusError):
        # The SDK already unwrapped the body to the inner ``error`` object.
        error = err.body if isinstance(err.body, dict) else {}
        kind = _openai_kind(err.status_code, error)
        failure = _status_error(OPENAI, err.status_code, kind, error, err.request_id, secret)
        failure.retry_after = _retry_after(err.response.headers)
        return failure
    if isinstance(err, openai.APIConnectionError):
        return _connection_error(OPENAI, err)
    return ProviderError(
        f"OpenAI: unexpected reply: {_detail(str(err), secret)}",
        provider=OPENAI,
        kind="invalid_reply",
        retryable=True,
    )


# --- calls -----------------------------------------------------------------------------


def count_anthropic_input_tokens(client: anthropic.Anthropic, model: str, system: str, prompt: str) -> int:
    """Exact input tokens of an ``analyse`` call, from Anthropic's free counting endpoint.

    Raises CountUnavailable when the endpoint is not there (a gateway), ProviderError otherwise.
    """
    try:
        counted = client.messages.count_tokens(
            model=model, system=system, messages=[{"role": "user", "content": prompt}]
        )
    except anthropic.APIStatusError as err:
        if _count_endpoint_missing(err):
            raise CountUnavailable(err.status_code) from None
        raise classify_anthropic(err, client.api_key or "") from None
    except anthropic.APIError as err:
        raise classify_anthropic(err, client.api_key or "") from None
    except ValueError as err:
        raise _malformed(ANTHROPIC, f"token count not JSON: {_detail(str(err), '')}") from None
    return counted.input_tokens


# --- the input bound when the count is missing or not believable -------------------------

COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# What a gateway without the counting endpoint answers: no route, method not allowed, not implemented.
_COUNT_MISSING_STATUSES = frozenset({404, 405, 501})
# Claude's tokenizer averages 3.5-4.5 UTF-8 bytes a token on prose and code; a count implying
# more than this many bytes a token is a broken gateway or endpoint, not a tokenizer.
MAX_PLAUSIBLE_BYTES_PER_TOKEN = 8
# Role, turn and system framing of one Messages call, generously.
_ANTHROPIC_FRAMING_TOKENS = 32


class CountUnavailable(ProviderError):
    """The token-counting endpoint does not exist here (HTTP ``status``)."""

    def __init__(self, status: int) -> None:
        super().__init__(
            f"Anthropic: {COUNT_TOKENS_PATH} answered {status}", provider=ANTHROPIC, kind="bad_request", status=status
        )


def _count_endpoint_missing(err: anthropic.APIStatusError) -> bool:
    """404/405/501 from the counting endpoint, except Anthropic's own 404 for an unknown model."""
    if err.status_code not in _COUNT_MISSING_STATUSES:
        return False
    error = err.body.get("error", {}) if isinstance(err.body, dict) else {}
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    return not message.startswith("model:")


@dataclass(frozen=True)
class InputBound:
    """An upper bound on an ``analyse`` call's input tokens.

    ``counted``: the provider's count (the caller adds its safety margin); otherwise a local
    bound, and ``note`` says why.
    """

    tokens: int
    counted: bool
    note: str = ""


def anthropic_input_bound(client: anthropic.Anthropic, model: str, system: str, prompt: str) -> InputBound:
    """Anthropic's count when it is there and believable, else the prompt's UTF-8 bytes plus
    framing (a byte-level BPE token is never less than one byte, so bytes bound tokens).

    Raises ProviderError for failures other than a missing endpoint.
    """
    size = _utf8_len(system) + _utf8_len(prompt)
    local = size + _ANTHROPIC_FRAMING_TOKENS
    instead = f"reserving a local upper bound instead ({local:,} tokens: the prompt's {size:,} UTF-8 bytes)"
    try:
        counted = count_anthropic_input_tokens(client, model, system, prompt)
    except CountUnavailable as missing:
        endpoint = f"{str(client.base_url).rstrip('/')}{COUNT_TOKENS_PATH}"
        return InputBound(local, False, f"Anthropic: {endpoint} answered {missing.status} (no token counting there); {instead}")
    if counted * MAX_PLAUSIBLE_BYTES_PER_TOKEN < size:
        return InputBound(
            local, False, f"Anthropic: {COUNT_TOKENS_PATH} counted {counted:,} tokens for {size:,} bytes, too few to trust; {instead}"
        )
    return InputBound(counted, True)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def openai_input_token_bound(messages: list[dict[str, Any]], response_format: dict[str, Any] | None) -> int:
    """A sound upper bound on the prompt tokens of a chat call, without a tokenizer.

    Every byte-level BPE token covers at least one byte, so the UTF-8 size of every text
    (contents, roles, names; the schema as compact JSON) plus framing bounds the count.
    """

    def text_bytes(value: Any) -> int:
        if isinstance(value, str):
            return _utf8_len(value)
        if isinstance(value, dict):
            return sum(text_bytes(item) for item in value.values())
        if isinstance(value, list):
            return sum(text_bytes(item) for item in value)
        return _utf8_len(json.dumps(value))

    bound = _OPENAI_TOKENS_PER_REPLY
    for message in messages:
        bound += _OPENAI_TOKENS_PER_MESSAGE + text_bytes(message)
    if response_format is not None:
        bound += _OPENAI_TOKENS_PER_SCHEMA + _utf8_len(json.dumps(response_format, ensure_ascii=False))
    return bound


def _usage_reported(usage: Any, counts: tuple[str, ...]) -> bool:
    """Whether a reply says what it used: some gateways strip ``usage`` or empty it."""
    return usage is not None and all(isinstance(getattr(usage, name, None), int) for name in counts)


def _elapsed_ms(clock: Clock, started: float) -> int:
    return max(0, round((clock() - started) * 1000))


def claude_options(price: Price, effort: str, thinking: str) -> dict[str, Any]:
    """The thinking and effort parameters of a Messages call, as far as ``price``'s model takes them.

    ``thinking`` "adaptive" asks for adaptive thinking with its text omitted (the bot reads
    only the answer; the thinking is billed the same either way); "off" sends the model's way
    of turning up-front thinking off ("disabled", or "between_tools" on Sonnet 5.5, where
    "disabled" is a 400). ``effort`` goes in ``output_config.effort`` where the model takes one.
    Sampling parameters (temperature, top_p, top_k) are never sent: the 5.x models refuse them.
    """
    options: dict[str, Any] = {}
    if thinking == "adaptive" and "adaptive" in price.thinking_types:
        options["thinking"] = {"type": "adaptive", "display": "omitted"}
    elif thinking == "off":
        off = next((kind for kind in ("disabled", "between_tools") if kind in price.thinking_types), None)
        if off is not None:
            options["thinking"] = {"type": off}
    if effort in price.efforts:
        options["output_config"] = {"effort": effort}
    return options


def _anthropic_usage(usage: Any) -> Usage:
    """Anthropic's usage as ours; cache writes split by TTL (unsplit remainder is 5-minute, the
    default); thinking tokens (``output_tokens_details.thinking_tokens``) are inside ``output_tokens``."""
    written = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    write_1h = (split.ephemeral_1h_input_tokens or 0) if split else 0
    write_5m = (split.ephemeral_5m_input_tokens or 0) if split else 0
    write_5m = max(write_5m, written - write_1h)
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        reasoning_tokens=(details.thinking_tokens or 0) if (details := usage.output_tokens_details) else 0,
    )


# Anthropic's stop reasons (``anthropic.types.StopReason``): only these end a finished answer.
# The others: ``max_tokens`` (cut at the cap), ``model_context_window_exceeded`` (prompt and
# reply filled the model's window), ``refusal``, ``pause_turn`` (a long turn paused, to be
# continued) and ``tool_use`` (the bot offers no tools); a reason this list does not know is
# not taken as finished either.
FINISHED_STOP_REASONS = frozenset({"end_turn", "stop_sequence"})


class ContextWindowReplyError(InvalidReplyError):
    """The reply stopped because prompt and reply filled the model's context window: billed, never
    used, and not helped by a larger ``max_tokens``. Kind ``context_length``, like OpenAI's 400 for
    a prompt over the window, so the fallback chain tries the next model."""

    def __init__(self, message: str, *, provider: str, reply: ModelReply) -> None:
        super().__init__(message, provider=provider, reply=reply)
        self.kind = "context_length"


def _check_finished(model: str, stop_reason: str | None, text: str, reply: ModelReply, max_tokens: int) -> None:
    """Raise unless ``stop_reason`` says the answer is finished and it has text; each unfinished
    reply is classified by what its stop reason means (all of them billed, none used)."""
    if stop_reason == "max_tokens":
        raise TruncatedReplyError(
            f"Anthropic: {model} stopped at max_tokens ({max_tokens:,}, {reply.usage.reasoning_tokens:,} of them "
            f"thinking) before the answer was complete; raise models.analysis_max_tokens or lower models.analysis_effort.",
            provider=ANTHROPIC, reply=reply, max_tokens=max_tokens,
        )
    if stop_reason == "model_context_window_exceeded":
        raise ContextWindowReplyError(
            f"Anthropic: {model} filled its context window (prompt and reply) before the answer was complete "
            f"(stop_reason model_context_window_exceeded); the next model in models.fallbacks.analysis is tried; "
            f"lower context.max_tokens in {CONFIG_FILE} to send less.",
            provider=ANTHROPIC, reply=reply,
        )
    if stop_reason == "refusal":
        raise _unusable(f"Anthropic: {model} refused the request (stop_reason refusal).", "refusal", reply)
    if stop_reason not in FINISHED_STOP_REASONS:
        raise _unusable(
            f"Anthropic: {model} did not finish its answer (stop_reason {stop_reason}); the partial reply is not used.",
            "unfinished", reply,
        )
    if not text.strip():
        raise InvalidReplyError(f"Anthropic: {model} returned no text (stop_reason {stop_reason}).", provider=ANTHROPIC, reply=reply)


def _unusable(message: str, kind: str, reply: ModelReply, provider: str = ANTHROPIC) -> InvalidReplyError:
    """A billed reply that cannot be used, of ``kind`` ("refusal", "unfinished"): the fallback chain
    tries the next model, and the failure counts against the task (health.UNUSABLE_REPLIES)."""
    error = InvalidReplyError(message, provider=provider, reply=reply)
    error.kind = kind
    return error


def analyse(
    client: anthropic.Anthropic,
    model: str,
    system: str,
    prompt: str,
    max_tokens: int,
    *,
    options: Mapping[str, Any] | None = None,
    clock: Clock = time.monotonic,
    cache_prefix: str = "",
) -> ModelReply:
    """One non-streamed Messages API call; the reply is its text blocks joined (thinking and
    redacted-thinking blocks are left out). ``options`` come from ``claude_options``.
    ``cache_prefix``, the start of ``prompt``, is sent as its own block marked
    ``cache_control: ephemeral`` (5 minutes), so the system prompt and it are cached
    (https://platform.claude.com/docs/en/build-with-claude/prompt-caching); empty: nothing marked.

    Only a finished reply (``FINISHED_STOP_REASONS``) with text is returned. Raises
    TruncatedReplyError when it stopped at ``max_tokens`` (thinking included),
    ContextWindowReplyError when it filled the context window, InvalidReplyError (kind
    "refusal", "unfinished" or "invalid_reply") for a refusal, a paused or otherwise unfinished
    turn, or no text; ProviderError for a failed call.
    """
    started = clock()
    try:
        message = client.messages.create(**analysis_params(model, system, prompt, max_tokens, options, cache_prefix))
    except anthropic.APIError as err:
        raise classify_anthropic(err, client.api_key or "") from None
    except ValueError as err:  # the SDK's json.loads of a body that is not JSON or is cut off
        raise _malformed(ANTHROPIC, f"not JSON: {_detail(str(err), '')}") from None
    return analysis_reply(message, model, max_tokens, _elapsed_ms(clock, started))


def analysis_params(
    model: str, system: str, prompt: str, max_tokens: int, options: Mapping[str, Any] | None, cache_prefix: str = ""
) -> dict[str, Any]:
    """The Messages API parameters of an analysis request (also one request of a Message Batch)."""
    return {
        "model": model, "max_tokens": max_tokens, "system": system,
        "messages": [{"role": "user", "content": _user_content(prompt, cache_prefix)}], **dict(options or {}),
    }


def analysis_reply(message: object, model: str, max_tokens: int, latency_ms: int) -> ModelReply:
    """A Messages API ``message`` (a call's, or a batch result's) as a ModelReply, only when finished
    (raises as ``analyse`` says)."""
    if not isinstance(message, anthropic.types.Message) or message.content is None or message.model is None:
        raise _malformed(ANTHROPIC, "no message in the body")
    text = "".join(block.text for block in message.content if block.type == "text")
    reported = _usage_reported(message.usage, ("input_tokens", "output_tokens"))
    reply = ModelReply(
        model=message.model,
        text=text,
        usage=_anthropic_usage(message.usage) if reported else Usage(),
        latency_ms=latency_ms,
        usage_reported=reported,
    )
    _check_finished(model, message.stop_reason, text, reply, max_tokens)
    return reply


def _user_content(prompt: str, cache_prefix: str) -> Any:
    """The user message: plain text, or the cached prefix block then the rest."""
    if not cache_prefix:
        return prompt
    if not prompt.startswith(cache_prefix):
        raise ValueError("cache_prefix must be the start of the prompt")
    blocks: list[dict[str, Any]] = [{"type": "text", "text": cache_prefix, "cache_control": {"type": "ephemeral"}}]
    rest = prompt[len(cache_prefix):]
    return blocks + ([{"type": "text", "text": rest}] if rest else [])


def _openai_usage(usage: Any) -> Usage:
    """OpenAI's usage as ours: cached and cache-written prompt tokens (both inside
    ``prompt_tokens``) are moved out of ``input_tokens``; reasoning tokens
    (``completion_tokens_details.reasoning_tokens``) stay inside ``output_tokens``."""
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details else 0
    written = (details.cache_write_tokens or 0) if details else 0
    completion = usage.completion_tokens_details
    return Usage(
        input_tokens=max(0, usage.prompt_tokens - cached - written),
        output_tokens=usage.completion_tokens,
        cache_write_5m_tokens=written,
        cache_read_tokens=cached,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def write_code(
    client: openai.OpenAI,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    *,
    reasoning_effort: str | None = None,
    clock: Clock = time.monotonic,
) -> ModelReply:
    """One chat completion answered in plain text (SEARCH/REPLACE blocks, see ``search_replace``).

    No ``response_format``: code inside JSON scores lower for every model Aider measured.
    ``max_completion_tokens`` is the SDK's current name (``max_tokens`` is deprecated) and
    bounds reasoning plus answer. ``reasoning_effort`` is sent only when given (reasoning
    models; older ones refuse it). Only a reply with ``finish_reason`` "stop" and content is
    returned: one cut at the limit raises TruncatedReplyError, a refusal or the content filter
    InvalidReplyError kind "refusal", any other finish reason kind "unfinished".
    """
    started = clock()
    try:
        completion = client.chat.completions.create(**code_params(model, messages, max_tokens, reasoning_effort))
    except openai.OpenAIError as err:
        raise classify_openai(err, client.api_key or "") from None
    except ValueError as err:  # the SDK's json.loads of a body that is not JSON or is cut off
        raise _malformed(OPENAI, f"not JSON: {_detail(str(err), '')}") from None
    return code_reply(completion, model, max_tokens, _elapsed_ms(clock, started))


def code_params(model: str, messages: list[dict[str, Any]], max_tokens: int, reasoning_effort: str | None) -> dict[str, Any]:
    """The Chat Completions parameters of a code request (also the ``body`` of a Batch API request).
    ``reasoning_effort`` only when given: older models refuse the parameter."""
    params: dict[str, Any] = {"model": model, "messages": messages, "max_completion_tokens": max_tokens}
    return {**params, "reasoning_effort": reasoning_effort} if reasoning_effort else params


def code_reply(completion: object, model: str, max_tokens: int, latency_ms: int) -> ModelReply:
    """A ``chat.completion`` (a call's, or a batch output line's body) as a ModelReply, only when
    finished with content (raises as ``write_code`` says)."""
    if not isinstance(completion, openai.types.chat.ChatCompletion) or completion.choices is None or completion.model is None:
        raise _malformed(OPENAI, "no chat completion in the body")
    choice = completion.choices[0] if completion.choices else None
    content = (choice.message.content or "") if choice else ""
    reported = _usage_reported(completion.usage, ("prompt_tokens", "completion_tokens"))
    reply = ModelReply(
        model=completion.model,
        text=content,
        usage=_openai_usage(completion.usage) if reported else Usage(),
        latency_ms=latency_ms,
        usage_reported=reported,
    )
    kind = "invalid_reply"
    if choice is None:
        problem = "returned no choices"
    elif choice.message.refusal:
        problem, kind = f"refused: {_detail(choice.message.refusal, '')}", "refusal"
    elif choice.finish_reason == "length":
        raise TruncatedReplyError(
            f"OpenAI: {model} stopped at max_completion_tokens ({max_tokens:,}, {reply.usage.reasoning_tokens:,} of "
            f"them reasoning) before the reply was complete; raise models.code_max_tokens or lower "
            f"models.code_reasoning_effort.",
            provider=OPENAI, reply=reply, max_tokens=max_tokens,
        )
    elif choice.finish_reason == "content_filter":
        problem, kind = "stopped by the content filter", "refusal"
    elif choice.finish_reason != "stop":  # tool or function calls (none offered), or a reason not known here
        problem, kind = f"did not finish its reply (finish_reason {choice.finish_reason}); the partial reply is not used", "unfinished"
    elif not content.strip():
        problem = f"returned no content (finish_reason {choice.finish_reason})"
    else:
        return reply
    raise _unusable(f"OpenAI: {model} {problem}.", kind, reply, OPENAI)
