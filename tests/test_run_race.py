"""Overlapping runs: several real `python -m automation run` processes racing against one bare
remote (each in its own checkout, as separate Actions jobs are), one fake GitHub and the model
fakes. What the providers billed is counted at the fakes, so a lost ledger entry cannot hide an
overshoot; the ledger on the branch must then hold every call.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys

from automation.money.ledger import Reservation
from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git
from tests.test_run_alerts import CONFIG, publish, seeded_ledger
from tests.test_run_ledger import this_month

world = test_run.world
RACERS = 3
BUDGET = 15_000_000
# The fakes bill close to each call's worst case (every max_tokens used), as in the report.
ANALYSIS_USAGE = {"input_tokens": 900, "output_tokens": 16_000}  # 900 x $2/M + 16000 x $10/M (thinking and plan)
CODE_USAGE = {"prompt_tokens": 2000, "completion_tokens": 16000}  # billed at PINNED_MODELS' gpt-6-luna: CODE_COST
ANALYSIS_COST = 1_800 + 160_000
# A code model that never retires, at a cap near what the fake bills, so every figure here holds
# on any date (gpt-4o-mini would turn into gpt-6-luna, with its larger cap, from 2027-01-14).
PINNED_MODELS = "models:\n  code: gpt-6-luna\n  code_max_tokens: 16384\n  fallbacks:\n    code: []\n"
CODE_COST = 200 + 8_000  # 2000 x $0.10/M + 16000 x $0.50/M


def race(world: World, argument_lists: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start one run per argument list at once, each from its own fresh clone, all with the same
    GITHUB_RUN_ID (a re-run of one workflow, or two jobs of one run); wait for all of them."""
    processes = []
    for index, arguments in enumerate(argument_lists):
        checkout = world.tmp / f"racer-{index}"
        git(world.tmp, "clone", "-q", str(world.remote), str(checkout), env=world.env)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "automation", "run", "--repo", str(checkout), *arguments],
            cwd=world.tmp, env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


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


def test_racing_runs_on_different_tasks_never_spend_past_the_cap(world: World) -> None:
    room = ANALYSIS_COST + CODE_COST + 7_000  # one run fits, two would pass the cap by about $0.165
    seeded = BUDGET - room
    publish(world, {"token_budget.json": seeded_ledger(this_month(world), [seeded]), CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)

    results = race(world, [["--task", f"Add helper number {index}"] for index in range(RACERS)])

    assert all(result.returncode == 0 for result in results), [result.stderr for result in results]
    assert seeded + billed(world) <= BUDGET
    assert len(world.created_pulls()) == 1  # the one run that fitted
    assert sum("budget stop" in result.stdout for result in results) == RACERS - 1
    ledger = world.ledger()
    assert recorded(world) == seeded + billed(world)  # every billed call is in the ledger
    assert ledger.get("reservations", []) == []  # all settled
    paid = [run for run in ledger["runs"] if run["calls"] and not run["id"].startswith("seed-")]
    assert len(paid) == 1 and paid[0]["outcome"] == "pr_opened"


def test_racing_runs_on_the_same_task_open_one_pull_request(world: World) -> None:
    publish(world, {CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)
    results = race(world, [[] for _ in range(RACERS)])

    assert all(result.returncode == 0 for result in results), [result.stderr for result in results]
    titles = collections.Counter(pull["title"] for pull in world.created_pulls())
    assert titles and max(titles.values()) == 1, titles  # no task got two pull requests
    assert titles["Add a greeting module"] == 1
    ledger = world.ledger()
    ids = [run["id"] for run in ledger["runs"]]
    assert len(ids) == len(set(ids)) == len(titles)  # same GITHUB_RUN_ID, same second: still one id each
    assert recorded(world) == billed(world) and ledger.get("reservations", []) == []


# Far from any clock, the bot's or the test's (the suite also runs under faketime).
LONG_AGO, FAR_AHEAD = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"


def ledger_with(world: World, reservations: list[Reservation]) -> str:
    data = json.loads(seeded_ledger(this_month(world), []))
    data["reservations"] = [r.to_json() for r in reservations]
    return json.dumps(data)


def test_another_runs_live_reservation_counts_as_spent(world: World) -> None:
    publish(world, {"token_budget.json": ledger_with(world, [Reservation("crashed-run", "Another task", BUDGET - 10_000, FAR_AHEAD)])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "budget stop" in result.stdout
    assert world.anthropic.requests == [] and world.openai.requests == []
    assert [r["run_id"] for r in world.ledger()["reservations"]] == ["crashed-run"]


def test_a_crashed_runs_reservation_expires_and_cannot_block_the_month(world: World) -> None:
    publish(world, {"token_budget.json": ledger_with(world, [Reservation("crashed-run", "Another task", BUDGET, LONG_AGO)])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.created_pulls()) == 1
    ledger = world.ledger()
    assert ledger.get("reservations", []) == []  # the expired one is dropped, ours settled
    assert [run["outcome"] for run in ledger["runs"]] == ["pr_opened"]


def test_a_run_claiming_a_task_another_run_holds_stops_before_spending(world: World) -> None:
    held = Reservation("other-run", "Add a greeting module", 200_000, FAR_AHEAD)
    publish(world, {"token_budget.json": ledger_with(world, [held])})

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "run other-run is already working on 'Add a greeting module'" in result.stdout
    assert world.anthropic.requests == [] and world.created_pulls() == []


def test_the_reservation_is_on_the_branch_before_the_first_paid_call(world: World) -> None:
    """The fake Anthropic reads the remote at the moment it is asked to generate."""
    seen: list[dict] = []
    original = world.anthropic.default_reply

    def reply(request):  # noqa: ANN001, ANN202
        if request.path == world.anthropic.generation_path and not seen:
            seen.append(json.loads(world.remote_file("main", "token_budget.json") or "{}"))
        return original(request)

    world.anthropic.default_reply = reply  # type: ignore[method-assign]
    result = world.run()

    assert result.returncode == 0, result.stderr
    [held] = seen[0]["reservations"]
    assert held["task"] == "Add a greeting module" and held["micro_usd"] > 0
    assert world.ledger().get("reservations", []) == []
