"""Provider health end to end: failover, auth and quota stops, the circuit breaker, parked tasks.

The real `python -m automation run` in a checkout with a bare `origin`, against the loopback
Anthropic/OpenAI/GitHub fakes (the `World` of tests/test_run.py). The fakes' retry-after is a
millisecond, so the SDKs' own retries (4 each) cost almost nothing. Time passing is simulated
by committing an older ``opened_at`` into the ledger, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Callable

from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import (  # noqa: F401
    FakeAnthropic,
    FakeOpenAI,
    RecordedRequest,
    Reply,
    fake_anthropic_fixture,
    fake_openai_fixture,
)
from tests.test_run import GREETING, World, git

world = test_run.world  # the fixture: a checkout with a bare origin, the three fakes, the bot's environment

SONNET, HAIKU = "claude-sonnet-5-5", "claude-haiku-4-5"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def failing(
    fake: FakeAnthropic | FakeOpenAI,
    reply: Callable[[], Reply],
    models: set[str] | None = None,
    generation_only: bool = False,
) -> None:
    """Every request to ``fake`` (or only those for ``models``, or only generation requests) gets ``reply``:
    an outage, not one bad answer."""
    normal = fake.default_reply

    def default(request: RecordedRequest) -> Reply:
        model = request.json.get("model") if isinstance(request.json, dict) else None
        if (models is not None and model not in models) or (generation_only and request.path != fake.generation_path):
            return normal(request)
        return reply()

    fake.default_reply = default  # type: ignore[method-assign]


def models_asked(fake: FakeAnthropic | FakeOpenAI) -> list[str]:
    return [request.json["model"] for request in fake.generation_requests]


def run_number(world: World, number: int) -> subprocess.CompletedProcess[str]:
    """One cron run with its own GITHUB_RUN_ID, as Actions gives every scheduled run."""
    return world.run(env={**world.env, "GITHUB_RUN_ID": str(5000 + number)})


def commit_to_main(world: World, files: dict[str, str]) -> None:
    """A person (or an earlier run) commits to the default branch; the checkout pulls it, like a fresh cron checkout."""
    for path, content in files.items():
        world.push_to_main(path, content, f"edit {path}")
    git(world.checkout, "checkout", "-q", "--", ".", env=world.env)
    git(world.checkout, "clean", "-qfd", env=world.env)
    git(world.checkout, "pull", "-q", env=world.env)


def ledger_with_open_breaker(world: World, opened: dt.datetime) -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "month": world.ledger_month(),
            "budget_micro_usd": 15_000_000,
            "runs": [],
            "health": {
                "breakers": {"anthropic": {"consecutive_failures": 3, "opened_at": opened.strftime(TIME_FORMAT)}}
            },
        }
    )


def status(world: World) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "automation", "status", "--repo", str(world.checkout)],
        check=False,
        cwd=world.tmp,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- failover ------------------------------------------------------------------------------------


def test_overloaded_analysis_model_fails_over_to_haiku_billed_at_haikus_price(world: World) -> None:
    failing(world.anthropic, FakeAnthropic.overloaded, models={SONNET}, generation_only=True)
    result = world.run()

    assert result.returncode == 0, result.stderr
    asked = models_asked(world.anthropic)
    assert asked == [SONNET] * (len(asked) - 1) + [HAIKU] and len(asked) == 6  # 1 + 4 SDK retries, then Haiku once
    assert f"analysis: {SONNET} failed (overloaded); falling back to {HAIKU}" in result.stdout

    [run] = world.ledger()["runs"]
    failed, answered, code = run["calls"]
    assert failed == {
        "step": "analysis",
        "model": SONNET,
        "input": 0, "output": 0, "reasoning": 0, "cache_write_5m": 0, "cache_write_1h": 0, "cache_read": 0,
        "cost_micro_usd": 0,
        "latency_ms": failed["latency_ms"],
        "outcome": "overloaded",
    }
    assert answered["model"] == HAIKU and answered["outcome"] == "ok"
    assert (answered["input"], answered["output"]) == (1200, 300)
    assert answered["cost_micro_usd"] == 1200 * 1 + 300 * 5  # $1 / $5 per million tokens: 2,700 micro-dollars
    assert code["step"] == "code" and run["outcome"] == "pr_opened"
    assert world.ledger()["models"][HAIKU]["spent_micro_usd"] == 2700

    [pull] = world.created_pulls()
    body = pull["body"]
    assert f"## Analysis ({HAIKU})" in body and f"## Analysis ({SONNET})" not in body
    assert f"| analysis (overloaded) | `{SONNET}` | 0 | 0 | 0 | 0 | $0.000000 |" in body
    assert f"| analysis | `{HAIKU}` | 1,200 | 300 | 0 | 0 | $0.002700 |" in body  # Haiku 4.5 does not think


def test_bad_anthropic_key_stops_without_failing_over(world: World) -> None:
    failing(world.anthropic, FakeAnthropic.authentication)  # every endpoint rejects the key, as Anthropic does
    result = world.run()

    assert result.returncode == 1
    assert "Anthropic" in result.stderr and "ANTHROPIC_API_KEY" in result.stderr
    assert "falling back" not in result.stdout
    assert {request.json["model"] for request in world.anthropic.requests} == {SONNET}  # never Haiku
    assert world.openai.requests == [] and world.created_pulls() == []
    [run] = world.ledger()["runs"]  # the refused call is on record, at no cost, and is not an outage
    assert [(c["model"], c["cost_micro_usd"], c["outcome"]) for c in run["calls"]] == [(SONNET, 0, "auth")]
    assert world.ledger()["health"]["breakers"]["anthropic"]["consecutive_failures"] == 0


def test_openai_out_of_credit_stops_without_failing_over(world: World) -> None:
    # code models that never retire, so the fallback chain is the same on any date
    commit_to_main(world, {".github/ai-orchestration.yml": "models:\n  code: gpt-6-luna\n  fallbacks:\n    code: [gpt-5.6-luna]\n"})
    failing(world.openai, FakeOpenAI.insufficient_quota)
    result = world.run()

    assert result.returncode == 1
    assert "OpenAI" in result.stderr and "out of credit" in result.stderr
    assert "falling back" not in result.stdout
    assert models_asked(world.openai) == ["gpt-6-luna"]  # neither retried nor sent to gpt-5.6-luna
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:provider" and run["calls"][-1]["outcome"] == "quota"
    assert "breakers" not in world.ledger()["health"] or all(
        b["consecutive_failures"] == 0 for b in world.ledger()["health"]["breakers"].values()
    )


# --- circuit breaker -----------------------------------------------------------------------------


def test_an_outage_over_several_runs_opens_the_breaker_and_later_runs_spend_nothing(world: World) -> None:
    failing(world.anthropic, FakeAnthropic.overloaded)  # every request, counting tokens included

    first = run_number(world, 1)
    assert first.returncode == 1 and "Anthropic: overloaded after retries" in first.stderr
    assert {request.json["model"] for request in world.anthropic.requests} == {SONNET, HAIKU}
    assert world.anthropic.generation_requests == []  # the free token count fails first in an outage
    assert world.ledger()["health"]["breakers"]["anthropic"] == {"consecutive_failures": 2, "opened_at": None}

    second = run_number(world, 2)
    assert second.returncode == 1
    breaker = world.ledger()["health"]["breakers"]["anthropic"]
    assert breaker["consecutive_failures"] == 4 and breaker["opened_at"] is not None
    assert [call["outcome"] for run in world.ledger()["runs"] for call in run["calls"]] == ["overloaded"] * 4
    assert world.ledger()["spent_micro_usd"] == 0

    asked_before = len(world.anthropic.requests)
    third = run_number(world, 3)
    assert third.returncode == 0, third.stderr
    assert "circuit breaker open for anthropic" in third.stdout and "next probe run is after" in third.stdout
    assert len(world.anthropic.requests) == asked_before and world.openai.requests == []
    assert world.created_pulls() == []
    assert "circuit breaker for anthropic: open" in status(world)


COOLDOWN_CONFIG = "health:\n  breaker_cooldown_hours: 1\n"


def test_after_the_cool_down_a_successful_probe_closes_the_breaker(world: World) -> None:
    commit_to_main(
        world,
        {
            ".github/ai-orchestration.yml": COOLDOWN_CONFIG,
            "token_budget.json": ledger_with_open_breaker(world, now() - dt.timedelta(minutes=61)),
        },
    )
    assert "circuit breaker for anthropic: half-open" in status(world)

    result = run_number(world, 1)

    assert result.returncode == 0, result.stderr
    assert models_asked(world.anthropic) == [SONNET]
    assert len(world.created_pulls()) == 1
    assert world.ledger()["health"]["breakers"]["anthropic"] == {"consecutive_failures": 0, "opened_at": None}


def test_a_failed_probe_reopens_the_breaker_for_another_cool_down(world: World) -> None:
    commit_to_main(
        world,
        {
            ".github/ai-orchestration.yml": COOLDOWN_CONFIG,
            "token_budget.json": ledger_with_open_breaker(world, now() - dt.timedelta(minutes=61)),
        },
    )
    failing(world.anthropic, FakeAnthropic.server_error)
    probe_started = now().replace(microsecond=0)

    probe = run_number(world, 1)

    assert probe.returncode == 1 and "Anthropic: server error after retries" in probe.stderr
    breaker = world.ledger()["health"]["breakers"]["anthropic"]
    assert breaker["consecutive_failures"] == 5
    assert dt.datetime.strptime(breaker["opened_at"], TIME_FORMAT).replace(tzinfo=dt.timezone.utc) >= probe_started

    assert "circuit breaker for anthropic: open" in status(world)  # for another hour: runs stop before spending


# --- parked tasks --------------------------------------------------------------------------------


def test_a_task_with_unusable_code_three_times_is_parked_until_its_text_changes(world: World) -> None:
    world.openai.content = "Sure! Here is the code you asked for."  # never JSON, repair or not
    for number in (1, 2, 3):
        failed = run_number(world, number)
        assert failed.returncode == 1 and "Skipping" not in failed.stdout
    runs = world.ledger()["runs"]
    assert [run["task"] for run in runs] == ["Add a greeting module"] * 3
    assert {run["outcome"] for run in runs} == {"failed:edits"}

    world.openai.content = FakeOpenAI.code_reply("Say it in French", [GREETING])
    fourth = run_number(world, 4)
    assert fourth.returncode == 0, fourth.stderr
    assert "Skipping 'Add a greeting module': parked after repeated failures" in fourth.stdout
    assert [pull["title"] for pull in world.created_pulls()] == ["Say hello in French too"]

    commit_to_main(world, {})
    shown = status(world)
    assert "parked task (edit its text to retry): Add a greeting module" in shown
    assert re.search(r"openai/gpt-[\w.-]+: 7 calls", shown)  # gpt-4o-mini, or gpt-6-luna after its shutdown

    edited = (
        (world.checkout / "docs" / "TASKS.md")
        .read_text()
        .replace("Add a greeting module", "Add a greeting module with a docstring")
    )
    commit_to_main(world, {"docs/TASKS.md": edited})
    fifth = run_number(world, 5)
    assert fifth.returncode == 0, fifth.stderr
    assert "parked" not in fifth.stdout
    assert [pull["title"] for pull in world.created_pulls()][-1] == "Add a greeting module with a docstring"

    commit_to_main(world, {})
    assert "parked task" not in status(world)


def test_decide_only_ends_a_run_while_the_breaker_is_open_without_the_sdks(world: World) -> None:
    from tests.test_run import light_install, shallow_checkout

    world.push_to_main("token_budget.json", ledger_with_open_breaker(world, now()), "breaker open")
    shallow_checkout(world)
    result = world.run("--decide-only", env=light_install(world))

    assert result.returncode == 0, result.stderr
    assert (world.tmp / "output").read_text() == "work=false\n"
    assert "circuit breaker" in result.stdout.lower()
    assert world.anthropic.requests == [] and world.openai.requests == []
