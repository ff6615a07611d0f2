"""Batch mode end to end: `python -m automation run` over several cron runs against a fake
Anthropic that speaks the Message Batches wire format and a fake OpenAI that speaks the Batch
API's; every call settled to the micro-dollar, kills, expiries and outages losing nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import subprocess
import sys
import json
import threading

from automation.core.prices import PriceTable, Usage
from automation.money import ledger as ledger_module
from automation.money.ledger import BATCH_PENDING, CallRecord, Ledger, Reservation
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
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
    assert standard[1] == 1.0 and 1.99 <= batch[1] <= 2.0  # both calls halve (each rounded up to the micro-dollar)
    assert cached == batch and batch[0] < standard[0]  # this small repository's context is under the cache minimum
    assert "batch: the analysis as a Message Batch and the code request through OpenAI's Batch API" in out
    assert "-token context is below claude-sonnet-5-5's 1,024-token minimum, so nothing is cached" in out

    (world.checkout / "app" / "handlers.py").write_text("".join(f"def handler_{n}(request):\n    return {n}\n\n" for n in range(400)))
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "handlers", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)
    bigger = _cli(world, "costs")
    ratios = [float(line.rsplit("(", 1)[1].rstrip("x)")) for line in bigger.splitlines() if line.startswith("  ") and "x)" in line]
    assert ratios[0] == 1.0 < ratios[1] < ratios[2]
    assert "read by the next within 5 minutes" in bigger


def _killed_at_submit(world: World, provider: FakeAnthropic | FakeOpenAI) -> None:
    """A run killed once ``provider`` has created its batch and before the bot learns its id."""
    provider.batch_created_release = threading.Event()
    git(world.checkout, "pull", "-q", env=world.env)
    bot = subprocess.Popen([sys.executable, "-m", "automation", "run", "--repo", str(world.checkout)], cwd=world.tmp,
                           env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: bool(provider.batches), "the batch to be created")
        bot.send_signal(signal.SIGKILL)
        bot.wait(timeout=30)
    finally:
        provider.batch_created_release.set()
    provider.batch_created_release = None


def _holds(world: World) -> list[dict]:
    return [r for r in world.ledger().get("reservations", []) if r["run_id"].startswith("batch-")]


def _row_cost(row: dict) -> tuple[int, int]:
    """A call row's cost as booked, and at the batch price of its model from its usage."""
    price = PriceTable.builtin().find(row["model"])
    assert price is not None
    usage = Usage(input_tokens=row["input"], output_tokens=row["output"], reasoning_tokens=row["reasoning"],
                  cache_read_tokens=row.get("cache_read", 0), cache_write_5m_tokens=row.get("cache_write_5m", 0))
    return row["cost_micro_usd"], price.batched().cost_micro_usd(usage)


def _to_code_batch(world: World) -> str:
    """Tick 1 submits the analysis; it ends; tick 2 collects it and submits the code request: its batch id."""
    _tick(world)
    world.anthropic.end_batches()
    result = _tick(world)
    assert "Submitted the code request of 'Add a greeting module' to " in result.stdout
    [batch_id] = world.openai.batches
    return batch_id


def test_a_task_goes_from_batches_to_pull_request_over_five_cron_runs_settled_to_the_micro_dollar(world: World) -> None:
    _batch_mode(world)

    first = _tick(world)
    assert "Submitted the analysis of 'Add a greeting module' to claude-sonnet-5-5 as batch msgbatch_" in first.stdout
    assert world.anthropic.generation_requests == [] and world.openai.generation_requests == []
    [created] = world.anthropic.requests_to("/v1/messages/batches")
    [request] = created.json["requests"]
    assert request["custom_id"] == "analysis" and request["params"]["model"] == "claude-sonnet-5-5"
    assert "# Task\nAdd a greeting module" in request["params"]["messages"][0]["content"]
    [hold] = _holds(world)
    assert hold["run_id"].startswith("batch-anthropic-analysis-msgbatch_")
    batch_id = hold["run_id"].removeprefix("batch-anthropic-analysis-")
    assert batch_id in world.anthropic.batches
    bound, cap = hold["in_flight"][2], hold["in_flight"][3]
    assert hold["micro_usd"] == SONNET.batched().worst_case_micro_usd(bound, cap) == hold["in_flight"][8]
    assert hold["in_flight"][10] == BATCH_PENDING and world.created_pulls() == []

    status = _cli(world, "status")
    assert f"in flight: analysis batch {batch_id} for 'Add a greeting module', held at ${hold['micro_usd'] / 1e6:.4f} until {hold['expires_at']}" in status
    dry = _cli(world, "run", "--dry-run")
    assert f"In flight: analysis batch {batch_id} for 'Add a greeting module'" in dry
    assert "Batch mode (models.batch): the analysis and then the code request go as batches at half price" in dry

    second = _tick(world)  # still processing: nothing spent, nothing else done
    assert f"Waiting for batch {batch_id} ('Add a greeting module'): in_progress" in second.stdout
    assert world.openai.generation_requests == [] and len(_holds(world)) == 1

    world.anthropic.end_batches()
    third = _tick(world)  # the analysis collected, the code request submitted
    assert f"batch {batch_id} ended: succeeded" in third.stdout
    assert world.openai.generation_requests == [] and world.created_pulls() == []
    [code_id] = world.openai.batches
    assert "Submitted the code request of 'Add a greeting module' to " in third.stdout and f"as batch {code_id}" in third.stdout
    [upload] = world.openai.requests_to("/v1/files")
    assert b'name="purpose"' in upload.raw and b"batch" in upload.raw
    [created] = world.openai.requests_to("/v1/batches")
    assert created.json["endpoint"] == "/v1/chat/completions" and created.json["completion_window"] == "24h"
    assert created.json["metadata"] == {"analysis_batch": batch_id, "analysis_model": "claude-sonnet-5-5"}
    [line] = [json.loads(text) for text in world.openai.files[created.json["input_file_id"]]["bytes"].decode().splitlines()]
    assert line["custom_id"] == "code" and line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert "# Plan\n" + world.anthropic.text in line["body"]["messages"][1]["content"]
    [code_hold] = _holds(world)
    assert code_hold["run_id"] == f"batch-openai-code-{code_id}"
    code_price = PriceTable.builtin().find(line["body"]["model"])
    assert code_price is not None and code_hold["in_flight"][1] == line["body"]["model"]
    assert code_hold["micro_usd"] == code_price.batched().worst_case_micro_usd(
        code_hold["in_flight"][2], line["body"]["max_completion_tokens"]) == code_hold["in_flight"][8]
    assert f"in flight: code batch {code_id} for 'Add a greeting module'" in _cli(world, "status")

    fourth = _tick(world)
    assert f"Waiting for batch {code_id} ('Add a greeting module'): in_progress" in fourth.stdout

    world.openai.end_batches()
    fifth = _tick(world)
    assert f"batch {code_id} ended: succeeded" in fifth.stdout
    assert world.openai.generation_requests == []  # the code came from the batch
    [pull] = world.created_pulls()
    assert pull["head"] == "ai/add-a-greeting-module"
    assert world.remote_file("ai/add-a-greeting-module", "app/greeting.py") == GREETING["content"]
    ledger = world.ledger()
    assert _holds(world) == [] and not ledger.get("reservations")
    rows = {call["step"]: call for run in ledger["runs"] for call in run["calls"]}
    assert set(rows) == {"analysis", "code"} and sum(len(run["calls"]) for run in ledger["runs"]) == 2
    for row in rows.values():
        booked, at_batch_price = _row_cost(row)
        assert booked == at_batch_price > 0
    analysis = rows["analysis"]
    usage = Usage(input_tokens=analysis["input"], output_tokens=analysis["output"], reasoning_tokens=analysis["reasoning"])
    assert 2 * analysis["cost_micro_usd"] - SONNET.cost_micro_usd(usage) in (0, 1)  # half the standard price
    assert ledger["spent_micro_usd"] == sum(row["cost_micro_usd"] for row in rows.values())
    assert f"| code | `{line['body']['model']}` |" in pull["body"]
    assert "## Analysis (claude-sonnet-5-5)\n\n> ## Changes\n> Add `app/greeting.py` with `greet`." in pull["body"]
    assert "Batch mode: the analysis was collected and booked by run " in pull["body"]
    figures = json.loads(_cli(world, "status", "--json"))  # the PR is the batch analysis's and the code's
    assert list(figures["by_model"]) == [f"claude-sonnet-5-5 × {line['body']['model']}"]


def test_a_run_killed_between_the_code_submit_and_its_collection_loses_nothing_and_passes_no_cap(world: World) -> None:
    _batch_mode(world)
    _tick(world)
    world.anthropic.end_batches()
    _killed_at_submit(world, world.openai)
    [hold] = _holds(world)
    assert hold["run_id"].startswith("batch-openai-code-unsent-") and hold["micro_usd"] > 0
    text = world.remote_file("main", "token_budget.json")
    assert text is not None
    ledger = ledger_module.from_text(text, "token_budget.json")
    [analysis] = [call for run in ledger.runs for call in run.calls]  # booked on the branch before the code was submitted
    assert analysis.step == "analysis" and analysis.cost_micro_usd > 0 and ledger.spent_micro_usd == analysis.cost_micro_usd

    git(world.checkout, "checkout", "--", ".", env=world.env)  # the killed run's copy of the ledger (a runner's checkout is thrown away)
    after = _tick(world)
    assert "was interrupted before its batch id was recorded" in after.stdout
    assert len(world.openai.batches) == 1 and world.openai.generation_requests == [] and world.created_pulls() == []
    assert _holds(world) == [hold]

    # Once the provider must have ended it, every run's hold is booked at its worst case: nothing is lost,
    # and the month never held less than the analysis plus the code request's worst case.
    text = world.remote_file("main", "token_budget.json")
    assert text is not None
    ledger = ledger_module.from_text(text, "token_budget.json")
    expiry = dt.datetime.strptime(hold["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    booked, _ = ledger.book_expired(expiry + dt.timedelta(seconds=1), dt.timedelta(minutes=50), 10**9)
    assert booked.spent_micro_usd == analysis.cost_micro_usd + hold["micro_usd"] and not booked.reservations


def test_an_expired_code_batch_is_booked_at_nothing_and_the_task_starts_again(world: World) -> None:
    _batch_mode(world)
    code_id = _to_code_batch(world)
    world.openai.end_batches("expired")

    result = _tick(world)

    assert f"batch {code_id} ended: expired, billed $0.000000" in result.stdout
    assert "'Add a greeting module' goes back in the queue" in result.stdout
    assert "Submitted the analysis of 'Add a greeting module'" in result.stdout  # the task starts again
    assert len(world.anthropic.batches) == 2 and world.created_pulls() == [] and world.openai.generation_requests == []
    rows = [call for run in world.ledger()["runs"] for call in run["calls"]]
    assert [(row["step"], row["outcome"], row["cost_micro_usd"] > 0) for row in rows] == [
        ("analysis", "ok", True), ("code", "batch_expired", False)]
    assert [hold["run_id"].split("-")[1] for hold in _holds(world)] == ["anthropic"]


def test_a_provider_error_while_collecting_leaves_the_hold_and_waits_and_a_rejected_key_names_its_variable(world: World) -> None:
    _batch_mode(world)
    code_id = _to_code_batch(world)
    [hold] = _holds(world)
    spent = world.ledger()["spent_micro_usd"]
    world.openai.script(dataclasses.replace(FakeOpenAI.server_error(500), path=f"/v1/batches/{code_id}"))

    waited = _tick(world)  # exit 0: a policy stop

    assert f"Could not collect batch {code_id} ('Add a greeting module'): OpenAI: server error" in waited.stdout
    assert "The hold stays" in waited.stdout and "a later run asks again" in waited.stdout
    assert _holds(world) == [hold] and world.ledger()["spent_micro_usd"] == spent and world.created_pulls() == []

    world.openai.script(dataclasses.replace(FakeOpenAI.invalid_api_key(), path=f"/v1/batches/{code_id}"))
    git(world.checkout, "pull", "-q", env=world.env)
    refused = world.run()
    assert refused.returncode == 1
    assert "OPENAI_API_KEY" in refused.stderr + refused.stdout and "Traceback" not in refused.stderr
    assert _holds(world) == [hold] and world.ledger()["spent_micro_usd"] == spent

    world.openai.end_batches()
    assert f"batch {code_id} ended: succeeded" in _tick(world).stdout  # a later run collects it
    assert len(world.created_pulls()) == 1


def test_a_task_whose_batch_requests_keep_ending_unrun_is_parked_and_the_queue_moves_on(world: World) -> None:
    _batch_mode(world)
    _tick(world)
    world.anthropic.end_batches("errored")
    assert "Submitted the analysis of 'Add a greeting module'" in _tick(world).stdout  # failure 1: submitted again
    world.anthropic.end_batches()
    assert "Submitted the code request of 'Add a greeting module'" in _tick(world).stdout
    world.openai.end_batches("errored")
    assert "Submitted the analysis of 'Add a greeting module'" in _tick(world).stdout  # failure 2
    world.anthropic.end_batches("expired")

    parked = _tick(world)  # failure 3: parked before it is submitted again

    assert "'Add a greeting module' is parked after 3 failures without a pull request" in parked.stdout
    assert "Skipping 'Add a greeting module': parked after repeated failures" in parked.stdout
    assert "Submitted the analysis of 'Say hello in French too'" in parked.stdout  # the queue moves on
    assert world.ledger()["health"]["parked"]
    assert "Add a greeting module" in _cli(world, "status")


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
    assert hold["run_id"] != f"batch-anthropic-analysis-{first_id}"


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
    _killed_at_submit(world, world.anthropic)
    [hold] = _holds(world)  # held on the branch before the batch was submitted
    assert hold["run_id"].startswith("batch-anthropic-analysis-unsent-") and hold["micro_usd"] > 0

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
