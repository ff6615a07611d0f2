"""attempts.py: each attempt reserved and booked, inside the run's deadline.

The calls go through the real SDKs to the loopback model fakes; the deadline runs on a clock
the test moves (``Clock``), so the decisions about time do not depend on the machine's speed.
"""

from __future__ import annotations

import time

import pytest

from automation.core.errors import ProviderError
from automation.core.prices import PriceTable, format_usd
from automation.models.attempts import Call, Deadline, DeadlineReached, Ledgering, make_call
from automation.models.providers import make_openai_client, with_timeout, write_code
from automation.money.budget import BudgetStop
from automation.money.ledger import CallRecord, Ledger, RunRecord
from tests.fakes.model_servers import FakeOpenAI, Reply, fake_openai_fixture  # noqa: F401

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "x"}]


class Clock:
    """Seconds that pass only when the test (or a sleep) says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Book:
    """A ledger that grows as attempts are booked, as the pipeline's session does."""

    def __init__(self, budget_micro_usd: int) -> None:
        self.record = RunRecord(id="r", started_at="2026-11-21T03:17:00Z", task="t")
        self.ledger = Ledger(month="2026-11", budget_micro_usd=budget_micro_usd)
        self.budget = budget_micro_usd

    def add(self, call: CallRecord) -> None:
        self.record = RunRecord(id="r", started_at=self.record.started_at, task="t", calls=(*self.record.calls, call))
        self.ledger = self.ledger.with_run(self.record)

    def ledgering(self) -> Ledgering:
        return Ledgering(ledger=lambda: self.ledger, budget_micro_usd=self.budget, book=self.add)


def price():  # type: ignore[no-untyped-def]
    found = PriceTable.builtin().find(MODEL)
    assert found is not None
    return found


def code_call(fake: FakeOpenAI, max_tokens: int = 1_000, timeouts: list[float] | None = None) -> Call:
    client = make_openai_client(fake.env(), max_retries=0)

    def send(timeout: float) -> object:
        if timeouts is not None:
            timeouts.append(timeout)
        return write_code(with_timeout(client, timeout), MODEL, MESSAGES, max_tokens)

    return Call(step="code", price=price(), max_tokens=max_tokens, bound=lambda _timeout: 500, send=send)  # type: ignore[arg-type]


def run(call: Call, book: Book, clock: Clock, *, seconds: float = 600, timeout: float = 120,
        said: list[str] | None = None) -> object:
    deadline = Deadline.starting_now(clock, seconds, 60)
    return make_call(call, book.ledgering(), deadline, timeout=timeout, sleep=clock.sleep,
                     say=(said if said is not None else []).append)


def test_a_refusal_that_is_retried_costs_nothing_and_leaves_no_row(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(FakeOpenAI.rate_limited(retry_after="7"), FakeOpenAI.server_error(retry_after=None))
    book, clock, said = Book(15_000_000), Clock(), []
    run(code_call(fake_openai), book, clock, said=said)

    assert [call.outcome for call in book.record.calls] == ["ok"]
    assert len(fake_openai.generation_requests) == 3
    assert clock.now == 1_000.0 + 7 + 1.0  # the provider's retry-after, then the second back-off step
    assert [line for line in said if "asking" not in line][0] == "code: gpt-4o-mini rate_limited; attempt 2 of 5 in 7.0s"


def test_each_attempt_is_reserved_against_what_the_earlier_ones_were_booked_at(fake_openai: FakeOpenAI) -> None:
    # an unusable 200 is booked at the worst case; a budget of two worst cases has no room for a third attempt
    worst = price().worst_case_micro_usd(500, 1_000)
    fake_openai.script(Reply(200, b"not json"))
    book = Book(worst + worst - 1)
    with pytest.raises(ProviderError) as failure:
        run(code_call(fake_openai), book, Clock())
    assert failure.value.kind == "malformed_reply"  # not retried on the same model: the fallback decides
    [booked] = book.record.calls
    assert booked.cost_micro_usd == worst and booked.outcome == "malformed_reply"
    with pytest.raises(BudgetStop):  # the next attempt would not fit beside the one booked
        run(code_call(fake_openai), book, Clock())


def test_attempts_stop_at_the_deadline_and_timeouts_are_cut_to_fit(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(*[FakeOpenAI.rate_limited(retry_after="20")] * 4)
    book, clock, timeouts = Book(15_000_000), Clock(), []
    # 100 s for the run, 60 s kept to commit: 40 s for calls
    with pytest.raises(ProviderError) as failure:
        run(code_call(fake_openai, timeouts=timeouts), book, clock, seconds=100)
    assert failure.value.kind == "rate_limited"
    assert timeouts == [40.0, 20.0]  # the second attempt got what was left, not the configured 120 s
    assert clock.now == 1_020.0  # a third 20 s wait would not leave 5 s for the attempt after it
    [booked] = book.record.calls
    assert booked.cost_micro_usd == 0 and booked.outcome == "rate_limited"

    with pytest.raises(DeadlineReached, match="run deadline reached before the code call to gpt-4o-mini"):
        run(code_call(fake_openai), book, clock, seconds=64)  # 4 s left after the commit margin


def test_the_deadline_cuts_timeouts_and_keeps_time_to_commit() -> None:
    clock = Clock()
    deadline = Deadline.starting_now(clock, 1_500, 120)
    assert deadline.left() == 1_380 and deadline.timeout(120, "x") == 120
    clock.sleep(1_300)
    assert deadline.timeout(120, "x") == 80
    clock.sleep(76)
    with pytest.raises(DeadlineReached):
        deadline.timeout(120, "x")


def test_a_reply_without_usage_is_booked_at_the_worst_case(fake_openai: FakeOpenAI) -> None:
    body = FakeOpenAI.completion(FakeOpenAI.code_reply("s", [])).body
    del body["usage"]
    fake_openai.script(Reply(200, body))
    book, said = Book(15_000_000), []
    run(code_call(fake_openai), book, Clock(), said=said)
    [booked] = book.record.calls
    assert booked.outcome == "ok" and booked.cost_micro_usd == price().worst_case_micro_usd(500, 1_000)
    assert said[1:] == ["warning: OpenAI sent no usage for the code call to gpt-4o-mini; booked at its reserved worst case"]


def test_each_attempt_is_announced_and_a_long_wait_says_so(fake_openai: FakeOpenAI) -> None:
    """The log is never silent while a reply takes minutes: what is asked, then a line every
    ``progress_every`` seconds (here a real 0.3 s wait, reported every 0.05 s)."""
    slow = code_call(fake_openai)
    call = Call(step=slow.step, price=slow.price, max_tokens=slow.max_tokens, bound=slow.bound,
                send=lambda timeout: (time.sleep(0.3), slow.send(timeout))[1])
    book, said = Book(15_000_000), []
    make_call(call, book.ledgering(), Deadline.starting_now(Clock(), 600, 60), timeout=120, sleep=Clock().sleep,
              say=said.append, progress_every=0.05)
    worst = price().worst_case_micro_usd(500, 1_000)
    assert said[0] == f"code: asking gpt-4o-mini (at most 500 input and 1,000 output tokens, up to {format_usd(worst, 4)})"
    waiting = said[1:]
    assert len(waiting) >= 2 and all(line.startswith("code: still waiting for gpt-4o-mini (") for line in waiting)
