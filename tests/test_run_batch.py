"""Batch mode end to end: `python -m automation run` over several cron runs against a fake
Anthropic that speaks the Message Batches wire format; every call settled to the micro-dollar,
kills and expiries losing nothing."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading

from automation.core.prices import PriceTable, Usage
from automation.money.ledger import BATCH_PENDING, CallRecord, Ledger, Reservation
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import GREETING, World, git, wait_for, world  # noqa: F401

SONNET = PriceTable.builtin().find("claude-sonnet-5-5")
assert SONNET is not None


def _batch_mode(world: World) -> None:
    config = world.checkout / ".github" / "ai-orchestration.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("models:\n  batch: true\n")
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "batch mode", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)


def _tick(world: World) -> subprocess.CompletedProcess[str]:
    git(world.checkout, "pull", "-q", env=world.env)
    result = world.run()
    assert result.returncode == 0, result.stderr
    return result


def _cli(world: World, *args: str) -> str:
    git(world.checkout, "pull", "-q", env=world.env)
    result = subprocess.run([sys.executable, "-m", "automation", *args, "--repo", str(world.checkout)], cwd=world.tmp,
                            env=world.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_costs_shows_each_mode_per_pull_request_with_its_assumptions(world: World) -> None:
    out = _cli(world, "costs")
    rows = {line.split("  ")[1].strip(): line for line in out.splitlines() if line.startswith("  ") and "x)" in line}
    figures = {name: (float(line.split("$")[1].split()[0]), float(line.rsplit("(", 1)[1].rstrip("x)"))) for name, line in rows.items()}
    assert set(figures) == {"standard", "batch", "batch + cache"}
    standard, batch, cached = (figures[name] for name in ("standard", "batch", "batch + cache"))
    assert standard[1] == 1.0 and 1.5 < batch[1] < 2.0  # the analysis halves; the code call stays
    assert cached == batch and batch[0] < standard[0]  # this small repository's context is under the cache minimum
    assert "batch: the analysis as a Message Batch at half price, collected by the next cron run" in out
    assert "-token context is below claude-sonnet-5-5's 1,024-token minimum, so nothing is cached" in out

    (world.checkout / "app" / "handlers.py").write_text("".join(f"def handler_{n}(request):\n    return {n}\n\n" for n in range(400)))
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "handlers", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)
    bigger = _cli(world, "costs")
    ratios = [float(line.rsplit("(", 1)[1].rstrip("x)")) for line in bigger.splitlines() if line.startswith("  ") and "x)" in line]
    assert ratios[0] == 1.0 < ratios[1] < ratios[2]
    assert "read by the next within 5 minutes" in bigger


def _holds(world: World) -> list[dict]:
    return [r for r in world.ledger().get("reservations", []) if r["run_id"].startswith("batch-")]


def test_a_task_goes_from_batch_to_pull_request_over_three_cron_runs_settled_to_the_micro_dollar(world: World) -> None:
    _batch_mode(world)

    first = _tick(world)
    assert "Submitted the analysis of 'Add a greeting module' to claude-sonnet-5-5 as batch msgbatch_" in first.stdout
    assert world.anthropic.generation_requests == [] and world.openai.generation_requests == []
    [created] = world.anthropic.requests_to("/v1/messages/batches")
    [request] = created.json["requests"]
    assert request["custom_id"] == "analysis" and request["params"]["model"] == "claude-sonnet-5-5"
    assert "# Task\nAdd a greeting module" in request["params"]["messages"][0]["content"]
    [hold] = _holds(world)
    batch_id = hold["run_id"].removeprefix("batch-")
    assert batch_id in world.anthropic.batches
    bound, cap = hold["in_flight"][2], hold["in_flight"][3]
    assert hold["micro_usd"] == SONNET.batched().worst_case_micro_usd(bound, cap) == hold["in_flight"][8]
    assert hold["in_flight"][10] == BATCH_PENDING and world.created_pulls() == []

    status = _cli(world, "status")
    assert f"in flight: batch {batch_id} for 'Add a greeting module', held at ${hold['micro_usd'] / 1e6:.4f} until {hold['expires_at']}" in status
    assert f"In flight: batch {batch_id} for 'Add a greeting module'" in _cli(world, "run", "--dry-run")
    assert "Batch mode (models.batch): the analysis goes as a Message Batch at half price" in _cli(world, "run", "--dry-run")

    second = _tick(world)  # still processing: nothing spent, nothing else done
    assert f"Waiting for batch {batch_id} ('Add a greeting module'): in_progress" in second.stdout
    assert world.openai.generation_requests == [] and len(_holds(world)) == 1

    world.anthropic.end_batches()
    third = _tick(world)
    assert f"batch {batch_id} ended: succeeded" in third.stdout
    [pull] = world.created_pulls()
    assert pull["head"] == "ai/add-a-greeting-module"
    assert world.remote_file("ai/add-a-greeting-module", "app/greeting.py") == GREETING["content"]
    ledger = world.ledger()
    assert _holds(world) == [] and not ledger.get("reservations")
    done = [run for run in ledger["runs"] if run["outcome"] == "pr_opened"]
    [analysis] = [call for run in done for call in run["calls"] if call["step"] == "analysis"]
    usage = Usage(input_tokens=analysis["input"], output_tokens=analysis["output"], reasoning_tokens=analysis["reasoning"])
    assert analysis["cost_micro_usd"] == SONNET.batched().cost_micro_usd(usage) > 0
    assert 2 * analysis["cost_micro_usd"] - SONNET.cost_micro_usd(usage) in (0, 1)  # half the standard price
    assert ledger["spent_micro_usd"] == sum(call["cost_micro_usd"] for run in ledger["runs"] for call in run["calls"])
    assert "| analysis | `claude-sonnet-5-5` |" in pull["body"]


def test_an_expired_batch_is_booked_at_nothing_and_the_task_is_submitted_again(world: World) -> None:
    _batch_mode(world)
    _tick(world)
    [first_id] = world.anthropic.batches
    world.anthropic.end_batches("expired")

    result = _tick(world)

    assert f"batch {first_id} ended: expired, billed $0.000000" in result.stdout
    assert "'Add a greeting module' goes back in the queue" in result.stdout
    assert "Submitted the analysis of 'Add a greeting module'" in result.stdout  # the same tick resubmits it
    assert len(world.anthropic.batches) == 2 and world.created_pulls() == []
    ledger = world.ledger()
    rows = [call for run in ledger["runs"] for call in run["calls"]]
    assert [(row["outcome"], row["cost_micro_usd"]) for row in rows] == [("batch_expired", 0)]
    [hold] = _holds(world)
    assert hold["run_id"] != f"batch-{first_id}"


def test_an_errored_request_is_not_billed(world: World) -> None:
    _batch_mode(world)
    _tick(world)
    world.anthropic.end_batches("errored")
    result = _tick(world)
    assert "ended: errored, billed $0.000000" in result.stdout
    rows = [call for run in world.ledger()["runs"] for call in run["calls"]]
    assert [row["outcome"] for row in rows] == ["batch_errored"]


def test_a_run_killed_between_submit_and_collect_loses_nothing_and_passes_no_cap(world: World) -> None:
    _batch_mode(world)
    world.anthropic.batch_created_release = threading.Event()
    git(world.checkout, "pull", "-q", env=world.env)
    bot = subprocess.Popen([sys.executable, "-m", "automation", "run", "--repo", str(world.checkout)], cwd=world.tmp,
                           env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: bool(world.anthropic.batches), "the batch to be created")
        bot.send_signal(signal.SIGKILL)  # the provider has the batch; the bot never learns its id
        bot.wait(timeout=30)
    finally:
        world.anthropic.batch_created_release.set()
    [hold] = _holds(world)  # held on the branch before the batch was submitted
    assert hold["run_id"].startswith("batch-unsent-") and hold["micro_usd"] > 0

    world.anthropic.batch_created_release = None
    after = _tick(world)
    assert "was interrupted before its batch id was recorded" in after.stdout
    assert len(world.anthropic.batches) == 1 and world.anthropic.generation_requests == []
    ledger = world.ledger()
    assert ledger["spent_micro_usd"] == 0 and _holds(world) == [hold]

    # Once the provider must have ended it, the hold is booked at its worst case: never lost.
    loaded = Ledger(month=ledger["month"], budget_micro_usd=15_000_000,
                    reservations=(Reservation(hold["run_id"], hold["task"], hold["micro_usd"], hold["expires_at"],
                                              CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(), hold["micro_usd"], 0, BATCH_PENDING)),))
    expiry = dt.datetime.strptime(hold["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    before, _ = loaded.book_expired(expiry - dt.timedelta(hours=1), dt.timedelta(minutes=50), 10**9)
    assert before.reservations and before.spent_micro_usd == 0
    booked, [run] = loaded.book_expired(expiry + dt.timedelta(seconds=1), dt.timedelta(minutes=50), 10**9)
    assert booked.spent_micro_usd == hold["micro_usd"] and run.outcome == "unsettled" and not booked.reservations


def test_a_collected_batch_whose_task_got_a_pull_request_meanwhile_is_booked_once_and_released(world: World) -> None:
    from automation.repo.github import task_marker

    _batch_mode(world)
    _tick(world)
    world.anthropic.end_batches()
    world.github.add_pull(title="Add a greeting module", head="ai/add-a-greeting-module",
                          body=f"a human did it\n{task_marker('Add a greeting module')}")

    result = _tick(world)

    assert "already has an open pull request" in result.stdout
    ledger = world.ledger()
    [row] = [call for run in ledger["runs"] for call in run["calls"]]
    assert row["step"] == "analysis" and row["outcome"] == "ok" and row["cost_micro_usd"] > 0
    assert _holds(world) == [] and ledger["spent_micro_usd"] == row["cost_micro_usd"]  # booked once, hold released
