"""What `python -m automation run` says before it pays, and the one worst case every command states.

The same world as tests/test_run.py: real CLI subprocess, bare `origin`, loopback model and
GitHub fakes. The log names the task, the reservation and the context before the first model
call; `costs`, the dry run, the reservation the run commits, and `simulate`'s budget alert all
give the same worst case.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import sys

from automation.cli import main
from tests import test_run
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, bot, git

world = test_run.world


def command(world: World, *argv: str, now: str | None = None) -> str:
    """The bot's output for ``argv`` in the world's checkout, started at ``now`` or the machine's time."""
    result = subprocess.run([*bot(now), *argv, "--repo", str(world.checkout)],
                            cwd=world.tmp, env=world.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_log_says_task_reservation_and_context_before_the_first_call_and_one_worst_case_holds(world: World) -> None:
    worst = re.search(r"^  total +\$[\d.]+ +(\$[\d.]+)$", command(world, "costs"), re.MULTILINE)
    assert worst is not None
    worst_case = worst.group(1)
    assert f"at most {worst_case} (what it reserves)" in command(world, "run", "--dry-run")

    result = world.run()

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first_reply = next(index for index, line in enumerate(lines) if re.match(r"analysis: \S+ [\d,]+ in / ", line))
    before = lines[:first_reply]
    assert "Task: Add a greeting module" in before
    assert any(re.fullmatch(rf"Reserved \{worst_case} for this run \(its worst case\) until \d{{4}}-\d\d-\d\dT[\d:]+Z", line)
               for line in before), before
    assert any(re.fullmatch(r"Context: \d+ files?, [\d,]+ of 40,000 tokens \(`run --dry-run` lists them and why\)", line)
               for line in before), before
    assert any(line.startswith("analysis: asking claude-sonnet-5-5 (at most ") for line in before), before
    assert [name for name in ("Task:", "Reserved", "Context:", "analysis: asking")
            if any(line.startswith(name) for line in before)] == ["Task:", "Reserved", "Context:", "analysis: asking"]
    # the reservation the run committed on the ledger's branch before its first call
    messages = git(world.remote, "log", "--format=%s", "main")
    assert f"ai-orchestration: reserve up to {worst_case} for run " in messages


def test_simulate_s_budget_alert_states_the_same_worst_case(world: World) -> None:
    (world.checkout / ".github").mkdir()
    (world.checkout / ".github" / "ai-orchestration.yml").write_text("budget:\n  monthly_usd: 5\n", encoding="utf-8")
    month_start = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)  # a whole month of runs every 3 hours
    worst = re.search(r"^  total +\$[\d.]+ +(\$[\d.]+)$", command(world, "costs", now=month_start.isoformat()), re.MULTILINE)
    assert worst is not None
    out, err = io.StringIO(), io.StringIO()
    assert main(["simulate", "--runs", "240", "--repo", str(world.checkout)], env={}, now=month_start, out=out, err=err) == 0
    assert f"The next run could cost up to {worst.group(1)} (its worst case)" in out.getvalue()


def test_the_dry_run_shows_the_exact_analysis_request_a_run_sends(world: World) -> None:
    shown = command(world, "run", "--dry-run", "--show-prompt")
    system = shown.split("--- the analysis request to claude-sonnet-5-5: system prompt ---\n", 1)[1].split("\n--- user message ---\n")[0]
    message = shown.split("\n--- user message ---\n", 1)[1].split("\n--- end (", 1)[0]

    result = world.run()

    assert result.returncode == 0, result.stderr
    [request] = world.anthropic.generation_requests
    assert request.json["system"] == system
    assert request.json["messages"] == [{"role": "user", "content": message}]
    refused = subprocess.run([sys.executable, "-m", "automation", "run", "--show-prompt", "--repo", str(world.checkout)],
                             cwd=world.tmp, env=world.env, capture_output=True, text=True, timeout=60)
    assert (refused.returncode, refused.stderr) == (2, "error: run: --show-prompt shows what a dry run would send; add --dry-run\n")
