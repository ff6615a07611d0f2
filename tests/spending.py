"""What the tests that kill, race and refuse real runs share: real `python -m automation run`
processes, each in its own fresh clone of the bare remote (its own Actions job), fakes that bill
close to each call's worst case, and ways to hold a request, let time pass and read the month
as the next run would. What the providers billed is counted at the fakes, so a lost ledger entry
cannot hide an overshoot.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading

from tests.fakes.model_servers import FakeModelServer
from tests.test_run import World, bot, git

BUDGET = 15_000_000
# The fakes bill close to each call's worst case (every max_tokens used), as in the report.
ANALYSIS_USAGE = {"input_tokens": 900, "output_tokens": 16_000}  # 900 x $2/M + 16000 x $10/M (thinking and plan)
CODE_USAGE = {"prompt_tokens": 2000, "completion_tokens": 16000}  # billed at PINNED_MODELS' gpt-6-luna: CODE_COST
ANALYSIS_COST = 1_800 + 160_000
# A code model that never retires, at a cap near what the fake bills, so every figure here holds
# on any date (gpt-4o-mini would turn into gpt-6-luna, with its larger cap, from 2027-01-14).
PINNED_MODELS = "models:\n  code: gpt-6-luna\n  code_max_tokens: 16384\n  fallbacks:\n    code: []\n"
CODE_COST = 200 + 8_000  # 2000 x $0.10/M + 16000 x $0.50/M

# Long before any clock, the bot's or the test's (the suite also runs under faketime).
LONG_AGO = "2000-01-01T00:00:00Z"


def race(world: World, argument_lists: list[list[str]], now: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Start one run per argument list at once, each from its own fresh clone, all with the same
    GITHUB_RUN_ID (a re-run of one workflow, or two jobs of one run); wait for all of them.
    ``now``: their start time instead of the machine's clock."""
    processes = [start(world, f"racer-{index}", *arguments, now=now) for index, arguments in enumerate(argument_lists)]
    return [finish(process) for process in processes]


def billed(world: World) -> int:
    """What the providers were asked to bill, from the fakes' own request logs."""
    return len(world.anthropic.generation_requests) * ANALYSIS_COST + len(world.openai.generation_requests) * CODE_COST


def bill_near_the_worst_case(world: World) -> None:
    world.anthropic.usage.update(ANALYSIS_USAGE)
    world.anthropic.thinking_tokens = 0  # ANALYSIS_USAGE's output already stands for thinking and answer
    world.openai.reasoning_tokens = 0  # and CODE_USAGE's for reasoning and answer
    world.openai.usage.update(CODE_USAGE)


def recorded(world: World) -> int:
    return world.ledger()["spent_micro_usd"]


def hold(server: FakeModelServer, nth: int, release: threading.Event) -> None:
    """The fake answers its ``nth`` generation request (1-based) only once ``release`` is set."""
    original, seen = server.default_reply, []

    def reply(request):  # noqa: ANN001, ANN202
        answer = original(request)
        if request.path == server.generation_path:
            seen.append(request)
            if len(seen) == nth:
                return dataclasses.replace(answer, release=release)
        return answer

    server.default_reply = reply  # type: ignore[method-assign]


def start(world: World, name: str | None, *arguments: str, now: str | None = None) -> subprocess.Popen[str]:
    """A run in a fresh clone called ``name`` (its own Actions job), or in the world's checkout
    when ``name`` is None, started at ``now`` or the machine's time; not waited for."""
    checkout = world.checkout
    if name is not None:
        checkout = world.tmp / name
        git(world.tmp, "clone", "-q", str(world.remote), str(checkout), env=world.env)
    return subprocess.Popen([*bot(now), "run", "--repo", str(checkout), *arguments],
                            cwd=world.tmp, env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def expire_reservations(world: World) -> None:
    """Time passes: every reservation on the ledger branch is past its expiry, as it is for a
    runner whose clock is ahead, or once a run outlives a reservation too short for it."""
    data = json.loads(world.remote_file("main", "token_budget.json") or "{}")
    if data.get("reservations"):
        data["reservations"] = [{**held, "expires_at": LONG_AGO} for held in data["reservations"]]
        world.push_to_main("token_budget.json", json.dumps(data), "45 minutes later")


def status(world: World) -> dict:
    """`status --json` in a fresh checkout: the month as every later run counts it."""
    checkout = world.tmp / f"status-{len(list(world.tmp.glob('status-*')))}"
    git(world.tmp, "clone", "-q", str(world.remote), str(checkout), env=world.env)
    result = subprocess.run([sys.executable, "-m", "automation", "status", "--json", "--repo", str(checkout)],
                            cwd=world.tmp, env=world.env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)
