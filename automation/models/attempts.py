"""One paid call as a series of attempts: each reserved, each inside the run's deadline, each booked.

The SDKs make no retries of their own here (``max_retries=0``): this loop makes them, so that

* every attempt is reserved on its own, against the ledger as it stands after the attempts
  before it were booked, so the cap holds however many attempts a call takes;
* every attempt is booked at what it may have cost: what the reply says it used; the
  reserved worst case when the provider may have billed without saying (a timeout, a
  connection lost after the request was sent, a 200 without ``usage`` or with an unusable
  body, a stop signal mid-request); nothing when the provider refused before doing any work
  (an HTTP error status), and such a refusal that is retried leaves no row at all;
* no attempt starts unless it can end before the run's deadline with time kept back to
  commit the ledger: its timeout is cut to fit, and a retry that cannot fit is not made.

The rule is documented in docs/COST-TRACKING.md ("Timeouts and retries").
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import AutomationError, ProviderError
from ..core.prices import Price, Usage, format_usd
from ..money import budget
from ..money.ledger import CallRecord, Ledger

if TYPE_CHECKING:
    from .providers import ModelReply

MAX_ATTEMPTS = 5  # what the SDKs allow by default: one try and four retries
# Kinds worth another attempt on the same model: load and network trouble. The rest go
# straight to the fallback chain (or stop the run).
RETRY_KINDS = frozenset({"rate_limited", "overloaded", "server", "connection", "timeout"})
MIN_ATTEMPT_SECONDS = 5.0  # an attempt with less time than this left is not started
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0
PROGRESS_SECONDS = 30.0  # how often a call still waiting for its reply says so in the log
TICK_SECONDS = 0.25  # the still-waiting ticker's sleep: the most a call's end waits for it


class DeadlineReached(AutomationError):
    """The run's deadline leaves no time for another call; the ledger is still committed."""

    step = "deadline"


@dataclass(frozen=True)
class Deadline:
    """When the run stops calling models: ``ends_at`` on ``clock`` (seconds), keeping
    ``commit_seconds`` back for recording and committing the ledger."""

    clock: Callable[[], float]
    ends_at: float
    commit_seconds: float

    @classmethod
    def starting_now(cls, clock: Callable[[], float], run_seconds: float, commit_seconds: float) -> Deadline:
        return cls(clock=clock, ends_at=clock() + run_seconds, commit_seconds=commit_seconds)

    def left(self) -> float:
        """Seconds still available for calls."""
        return self.ends_at - self.commit_seconds - self.clock()

    def timeout(self, configured: float, what: str) -> float:
        """The timeout for the next request: the configured one, cut to the time left.

        Raises DeadlineReached when less than MIN_ATTEMPT_SECONDS is left.
        """
        left = self.left()
        if left < MIN_ATTEMPT_SECONDS:
            raise DeadlineReached(
                f"run deadline reached before {what}: {max(0.0, left):.0f}s left after keeping "
                f"{self.commit_seconds:.0f}s to commit the ledger (run.deadline_minutes); what was spent is recorded"
            )
        return min(configured, left)


@dataclass(frozen=True)
class Call:
    """What a call needs: its step and model, ``max_tokens``, ``bound(timeout_seconds)``
    giving an upper bound of its input tokens (asked once, maybe of the provider), and
    ``send(timeout_seconds) -> ModelReply``, which makes one attempt."""

    step: str
    price: Price
    max_tokens: int
    bound: Callable[[float], int]
    send: Callable[[float], ModelReply]


@dataclass(frozen=True)
class Ledgering:
    """How the loop reads the ledger and books each attempt (``book`` saves at once);
    ``cover(in_flight)`` makes the run's shared reservation cover the attempt about to be made,
    given as the row it would be booked at if the run stopped mid-request (its worst case)."""

    ledger: Callable[[], Ledger]
    budget_micro_usd: int
    book: Callable[[CallRecord], None]
    cover: Callable[[CallRecord], None] = lambda in_flight: None


def make_call(
    call: Call, ledgering: Ledgering, deadline: Deadline, *, timeout: float,
    sleep: Callable[[float], None], say: Callable[[str], None], progress_every: float = PROGRESS_SECONDS,
) -> ModelReply:
    """Make ``call`` with up to MAX_ATTEMPTS attempts; returns the reply.

    Raises BudgetStop before an attempt the budget cannot cover, DeadlineReached before one
    the deadline cannot fit, and the last ProviderError when the attempts are used up or the
    failure is not worth retrying (the fallback chain decides what next). A failed input
    bound (Anthropic's free count) is booked as a failed call at no cost: in an outage it is
    the first request to fail, and the health data and the breaker must see it. Each attempt
    is announced before it is sent, and a long wait says so every ``progress_every`` seconds.
    """
    price = call.price
    what = f"the {call.step} call to {price.model}"
    tokens: int | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        worst = 0  # nothing reserved yet: a failure now cost nothing
        started = deadline.clock()
        try:
            if tokens is None:
                tokens = call.bound(deadline.timeout(timeout, what))
            worst = budget.reserve(ledgering.ledger(), ledgering.budget_micro_usd, price, tokens, call.max_tokens)
            ledgering.cover(_worst_case(call, tokens, worst, 0, "in_flight"))
            say(f"{call.step}: asking {price.model} (at most {tokens:,} input and {call.max_tokens:,} output tokens, "
                f"up to {format_usd(worst, 4)})")
            with _still_waiting(say, f"{call.step}: still waiting for {price.model}", progress_every):
                reply = call.send(deadline.timeout(timeout, what))
        except ProviderError as error:
            wait = _retry_wait(error, attempt, deadline)
            booked = _failed(call, tokens or 0, error, worst, _ms(deadline, started))
            if wait is None or booked.cost_micro_usd:
                ledgering.book(booked)
            if wait is None:
                raise
            say(f"{call.step}: {price.model} {error.kind}; attempt {attempt + 1} of {MAX_ATTEMPTS} in {wait:.1f}s")
            sleep(wait)
            continue
        except KeyboardInterrupt:  # stopped mid-request: the provider may still finish and bill it
            if worst:
                ledgering.book(_worst_case(call, tokens or 0, worst, _ms(deadline, started), "interrupted"))
            raise
        if reply.usage_reported:
            ledgering.book(CallRecord(step=call.step, model=price.model, provider=price.provider, usage=reply.usage,
                                      cost_micro_usd=price.cost_micro_usd(reply.usage), latency_ms=reply.latency_ms))
        else:
            say(f"warning: {_provider_name(price)} sent no usage for the {call.step} call to {price.model}; "
                f"booked at its reserved worst case")
            ledgering.book(_worst_case(call, tokens, worst, reply.latency_ms, "ok"))
        return reply
    raise AssertionError("the last attempt returns or raises")


@contextlib.contextmanager
def _still_waiting(say: Callable[[str], None], what: str, every: float) -> Iterator[None]:
    """Say ``what (N s)`` every ``every`` seconds until the block ends: a reply can take minutes,
    and a silent log looks like a hung job. Time is counted in short relative sleeps, not read
    from a clock or a timed wait, so a stopped or shifted clock (libfaketime) cannot silence it;
    the block's end waits at most one short sleep for the ticker."""
    done = threading.Event()
    step = min(every, TICK_SECONDS)

    def tick() -> None:
        waited = since = 0.0
        while True:
            time.sleep(step)
            if done.is_set():
                return
            waited, since = waited + step, since + step
            if since >= every - 1e-9:
                say(f"{what} ({waited:.0f} s)")
                since = 0.0

    ticker = threading.Thread(target=tick, name="still-waiting", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()


def _retry_wait(error: ProviderError, attempt: int, deadline: Deadline) -> float | None:
    """Seconds to wait before the next attempt, or None when there is to be none."""
    if error.kind not in RETRY_KINDS or attempt >= MAX_ATTEMPTS:
        return None
    backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    wait = backoff if error.retry_after is None else error.retry_after
    return wait if wait + MIN_ATTEMPT_SECONDS <= deadline.left() else None


def _failed(call: Call, tokens: int, error: ProviderError, worst: int, latency_ms: int) -> CallRecord:
    """A failed attempt: what its unusable reply used, else the worst case when it was
    reserved and may have been billed unsaid, else $0."""
    reply = getattr(error, "reply", None)
    price = call.price
    if reply is not None and reply.usage_reported:
        return CallRecord(step=call.step, model=price.model, provider=price.provider, usage=reply.usage,
                          cost_micro_usd=price.cost_micro_usd(reply.usage), latency_ms=latency_ms, outcome=error.kind)
    if worst and (reply is not None or error.may_be_billed):
        return _worst_case(call, tokens, worst, latency_ms, error.kind)
    return CallRecord(step=call.step, model=price.model, provider=price.provider, usage=Usage(),
                      cost_micro_usd=0, latency_ms=latency_ms, outcome=error.kind)


def _worst_case(call: Call, tokens: int, worst: int, latency_ms: int, outcome: str) -> CallRecord:
    """Booked at the reservation: the input bound and every output token."""
    usage = Usage(input_tokens=tokens, output_tokens=call.max_tokens)
    return CallRecord(step=call.step, model=call.price.model, provider=call.price.provider, usage=usage,
                      cost_micro_usd=worst, latency_ms=latency_ms, outcome=outcome)


def _provider_name(price: Price) -> str:
    return {"anthropic": "Anthropic", "openai": "OpenAI"}.get(price.provider, price.provider)


def _ms(deadline: Deadline, started: float) -> int:
    return max(0, round((deadline.clock() - started) * 1000))
