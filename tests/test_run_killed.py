"""Killed and slow runs, end to end: a cancelled job, a slow Discord, a run that meets its deadline.

Each test runs the real ``python -m automation run`` in a subprocess against the loopback fakes
and a bare remote (the world of tests/test_run.py), and asserts what reached the remote.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from automation.core.config import Config
from automation.core.prices import PriceTable
from tests import test_run
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, Reply, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, wait_for
from tests.spending import BUDGET, PINNED_MODELS, bill_near_the_worst_case, billed, expire_reservations, hold, start, status
from tests.test_run_alerts import publish, seeded_ledger
from tests.test_run_ledger import this_month

world = test_run.world  # the fixture of tests/test_run.py: checkout, bare origin, model and GitHub fakes
CONFIG = ".github/ai-orchestration.yml"


# Code models that never retire, so these tests mean the same under a clock faked months ahead.
CODE_MODEL = "gpt-6-luna"
PINNED = f"models:\n  code: {CODE_MODEL}\n  fallbacks:\n    code: [gpt-5.6-luna]\n"
CODE_CAP = Config().output_cap(CODE_MODEL)


def configure(world: World, text: str) -> None:
    (world.checkout / CONFIG).parent.mkdir(exist_ok=True)
    (world.checkout / CONFIG).write_text(PINNED + text)


@pytest.fixture(autouse=True)
def _pinned_code_model(world: World) -> None:
    configure(world, "")


def worst_case(model: str, input_tokens: int, max_tokens: int) -> int:
    price = PriceTable.builtin().find(model)
    assert price is not None
    return price.worst_case_micro_usd(input_tokens, max_tokens)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_cancelled_job_still_commits_what_it_spent(world: World, stop: signal.Signals) -> None:
    # The code model holds its request (a slow provider); the job is cancelled meanwhile.
    world.openai.script(Reply(200, FakeOpenAI.completion("{}").body, delay=30))
    bot = start(world, None)
    wait_for(lambda: len(world.openai.generation_requests) == 1, "the code request")
    bot.send_signal(stop)
    out, err = bot.communicate(timeout=60)

    assert bot.returncode == 1, err
    assert f"interrupted by {stop.name}" in err and "Traceback" not in err
    assert "Ledger committed to main" in out
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:interrupted"
    analysis, code = run["calls"]
    assert analysis["outcome"] == "ok" and analysis["cost_micro_usd"] > 0
    # the request in flight may still be billed: booked at the worst case that was reserved for it
    assert code["outcome"] == "interrupted" and code["output"] == CODE_CAP
    assert code["cost_micro_usd"] == worst_case(CODE_MODEL, code["input"], CODE_CAP) > 0
    assert world.ledger()["spent_micro_usd"] == analysis["cost_micro_usd"] + code["cost_micro_usd"]
    assert world.created_pulls() == []


def test_the_ledger_is_committed_before_a_slow_discord_is_told(world: World, fake_discord: FakeDiscord) -> None:
    world.env.update(fake_discord.env())
    fake_discord.fail_always(FakeDiscord.rate_limited(45))  # Discord asks for 45 s, again and again
    bot = start(world, None)
    try:
        wait_for(lambda: any("Run completed" in json.dumps(r.json) for r in fake_discord.requests), "the run's Discord message")
        # a cancel (or a kill) now must not lose the run: it is already on the remote
        [run] = world.ledger()["runs"]
        assert run["outcome"] == "pr_opened" and world.ledger()["spent_micro_usd"] > 0
    finally:
        bot.kill()
        bot.communicate(timeout=30)


def test_a_slow_provider_meets_the_run_deadline_and_the_ledger_is_still_committed(world: World) -> None:
    configure(world, "run:\n  deadline_minutes: 0.4\n  ledger_commit_seconds: 4\n")
    world.anthropic.script(Reply(200, FakeAnthropic.message("late").body, delay=60))  # answers after 60 s
    started = time.monotonic()
    result = world.run()
    took = time.monotonic() - started

    assert result.returncode == 1
    assert "run deadline reached" in result.stderr and "run.deadline_minutes" in result.stderr
    assert took < 24 + 10  # the deadline (24 s, room for the pushes before the call) and start-up, not the 60 s
    assert "Ledger committed to main" in result.stdout
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:deadline"
    [call] = run["calls"]  # one attempt: no retry or fallback could fit before the deadline
    assert call["outcome"] == "timeout" and call["model"] == "claude-sonnet-5-5"
    # a request that timed out may still be billed: booked at its reserved worst case
    assert call["cost_micro_usd"] == worst_case("claude-sonnet-5-5", call["input"], 16_000) > 0
    assert len(world.anthropic.generation_requests) == 1 and world.openai.requests == []


def test_a_timed_out_attempt_is_booked_and_the_retry_reserved_on_its_own(world: World) -> None:
    configure(world, "run:\n  request_timeout_seconds: 3\n")
    world.openai.script(Reply(200, FakeOpenAI.completion("{}").body, delay=8))  # the first attempt times out
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert f"code: {CODE_MODEL} timeout; attempt 2 of 5" in result.stdout
    [run] = world.ledger()["runs"]
    steps = [(call["step"], call["outcome"]) for call in run["calls"]]
    assert steps == [("analysis", "ok"), ("code", "timeout"), ("code", "ok")]
    timed_out = run["calls"][1]
    assert timed_out["cost_micro_usd"] == worst_case(CODE_MODEL, timed_out["input"], CODE_CAP) > 0
    assert world.ledger()["spent_micro_usd"] == sum(call["cost_micro_usd"] for call in run["calls"])


def without_usage(reply: Reply) -> Reply:
    body = json.loads(json.dumps(reply.body))
    del body["usage"]
    return Reply(reply.status, body)


def test_replies_without_usage_are_booked_at_the_worst_case_with_a_warning(world: World) -> None:
    world.anthropic.script(without_usage(FakeAnthropic.message(world.anthropic.text)))
    world.openai.script(without_usage(FakeOpenAI.completion(world.openai.content)))
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "warning: Anthropic sent no usage for the analysis call to claude-sonnet-5-5" in result.stdout
    assert f"warning: OpenAI sent no usage for the code call to {CODE_MODEL}" in result.stdout
    [run] = world.ledger()["runs"]
    analysis, code = run["calls"]
    assert analysis["cost_micro_usd"] == worst_case("claude-sonnet-5-5", analysis["input"], 16_000) > 0
    assert code["cost_micro_usd"] == worst_case(CODE_MODEL, code["input"], CODE_CAP) > 0
    assert len(world.created_pulls()) == 1


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"id": "msg_01", "content": [{"type": "te', b"{}"])
def test_a_200_that_is_not_a_reply_is_booked_and_falls_back(world: World, body: bytes) -> None:
    world.anthropic.script(Reply(200, body))
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "analysis: claude-sonnet-5-5 failed (malformed_reply); falling back to claude-haiku-4-5" in result.stdout
    [run] = world.ledger()["runs"]
    bad, good = run["calls"][:2]
    assert (bad["model"], bad["outcome"]) == ("claude-sonnet-5-5", "malformed_reply")
    assert bad["cost_micro_usd"] == worst_case("claude-sonnet-5-5", bad["input"], 16_000) > 0
    assert (good["model"], good["outcome"]) == ("claude-haiku-4-5", "ok")
    assert len(world.created_pulls()) == 1


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_gateway_without_token_counting_gets_a_local_bound(world: World, status: int) -> None:
    world.anthropic.script(Reply(status, {"detail": "Not Found"}, path=FakeAnthropic.count_tokens_path))
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert f"/v1/messages/count_tokens answered {status}" in result.stdout and "local upper bound" in result.stdout
    prompt = world.anthropic.generation_requests[0].json
    size = len(prompt["system"].encode()) + len(prompt["messages"][0]["content"].encode())
    assert f"prompt's {size:,} UTF-8 bytes" in result.stdout
    assert len(world.created_pulls()) == 1


def test_an_implausibly_small_count_is_not_trusted(world: World) -> None:
    world.anthropic.counted_tokens = 3
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "counted 3 tokens for" in result.stdout and "too few to trust" in result.stdout


def test_an_unknown_model_is_still_a_model_problem_not_a_missing_endpoint(world: World) -> None:
    world.anthropic.script(FakeAnthropic.error(404, "not_found_error", "model: claude-sonnet-5-5",
                                               path=FakeAnthropic.count_tokens_path))
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "count_tokens answered" not in result.stdout
    assert "analysis: claude-sonnet-5-5 failed (bad_request); falling back to claude-haiku-4-5" in result.stdout


def test_runs_killed_one_after_another_never_spend_past_the_cap(world: World) -> None:
    """SIGKILL (a lost runner, an OOM kill) mid-call, again and again, 45 minutes apart: each
    killed run's spend outlives its reservation, so the month's room is paid for once."""
    room = 240_000  # one run's first call fits, as in the issue ($0.24 of room)
    seeded = BUDGET - room
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [seeded]), CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)
    never = threading.Event()  # the code requests are never answered: each run is killed in them
    for nth in range(1, 4):
        hold(world.openai, nth, never)
    outcomes = []
    for kill in range(3):
        bot = start(world, f"killed-{kill}", "--task", f"Add helper number {kill}")
        wait_for(lambda: len(world.openai.generation_requests) > kill or bot.poll() is not None, "a code request")
        if bot.poll() is None:
            bot.kill()  # SIGKILL: no handler runs, nothing is committed at the end
        out, _ = bot.communicate(timeout=60)
        outcomes.append("budget stop" if "budget stop" in out else "killed")
        expire_reservations(world)
    never.set()

    month = status(world)
    assert outcomes == ["killed", "budget stop", "budget stop"]
    assert seeded + billed(world) <= BUDGET  # what the providers were asked for fits the month
    spent = round(month["spent_usd"] * 1_000_000)
    assert spent >= seeded + billed(world)  # and the ledger holds at least that, booked at the worst case
    assert month["unsettled"]["runs"] == 1 and spent == seeded + round(month["unsettled"]["spent_usd"] * 1_000_000)
