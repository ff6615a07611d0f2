"""Today's models end to end: Claude thinking inside max_tokens, OpenAI reasoning models,
cut-off replies, and a retired model replaced by its successor without downtime.

The bot runs as `python -m automation run` against the loopback fakes (tests/test_run.py's
world), which think and reason the way the 5.x and GPT-6 models do. The retirement test runs
the same CLI in-process with the clock passed in, so it holds on any date.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from automation.cli import main
from automation.reporting.model_text import quote
from tests import test_run
from tests.faked_clock import faked_clock_env
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.markdown_render import visible_text
from tests.test_run import World

world = test_run.world  # the fixture of tests/test_run.py: checkout, bare origin, model and GitHub fakes
CONFIG = ".github/ai-orchestration.yml"
AFTER_SHUTDOWN = dt.datetime(2027, 1, 20, 12, 0, tzinfo=dt.timezone.utc)
PLAN = "## Changes\n" + "Add `app/greeting.py` with `greet`. " * 40 + "\n\n## Acceptance criteria\n- the very last line of the plan"


@pytest.fixture()
def discord(world: World, fake_discord: FakeDiscord) -> FakeDiscord:
    world.env.update(fake_discord.env())
    return fake_discord


def configure(world: World, text: str) -> None:
    """A config file committed on the default branch, as a maintainer would."""
    world.push_to_main(CONFIG, text, "configure the bot")
    test_run.git(world.checkout, "pull", "-q", env=world.env)


def calls(world: World, step: str) -> list[dict]:
    [run] = world.ledger()["runs"]
    return [call for call in run["calls"] if call["step"] == step]


def fresh_checkout(world: World) -> None:
    """What the next scheduled run checks out: the remote's default branch, ledger included."""
    test_run.git(world.checkout, "fetch", "-q", "origin", env=world.env)
    test_run.git(world.checkout, "reset", "-q", "--hard", "origin/main", env=world.env)
    test_run.git(world.checkout, "clean", "-qfdx", env=world.env)


def run_at(world: World, now: dt.datetime) -> tuple[int, str, str]:
    """`python -m automation run` in-process, at ``now``."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "--repo", str(world.checkout)], env=world.env, now=now, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- item 1: thinking within the cap, and in the ledger, the log and the receipt -------------


def test_an_analysis_that_thinks_3000_tokens_arrives_whole_in_the_pull_request(world: World) -> None:
    world.anthropic.text = PLAN
    world.anthropic.thinking_tokens = 6_000  # at effort high; the default effort, medium, thinks half
    result = world.run()

    assert result.returncode == 0, result.stderr
    [sent] = world.anthropic.generation_requests
    assert sent.json["max_tokens"] == 16_000
    assert sent.json["output_config"] == {"effort": "medium"}
    assert sent.json["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert not {"temperature", "top_p", "top_k"} & set(sent.json)  # Sonnet 5.5 refuses non-defaults
    [pull] = world.created_pulls()
    assert quote(PLAN.strip()) in pull["body"]  # whole, to its last line
    assert "| analysis | `claude-sonnet-5-5` | 1,200 | 3,300 | 3,000 | 0 |" in pull["body"]
    assert "of which thinking" in pull["body"]
    [analysis] = calls(world, "analysis")
    assert (analysis["output"], analysis["reasoning"]) == (3_300, 3_000)
    assert analysis["cost_micro_usd"] == 1_200 * 2 + 3_300 * 10  # thinking billed once, as output
    assert "analysis: claude-sonnet-5-5 1,200 in / 3,300 out (3,000 thinking)" in result.stdout

    fresh_checkout(world)
    shown = io.StringIO()
    assert main(["status", "--repo", str(world.checkout)], env={}, out=shown, err=io.StringIO()) == 0
    assert "  claude-sonnet-5-5: 3,000 of 3,300 output tokens were thinking" in shown.getvalue().splitlines()
    data = io.StringIO()
    main(["status", "--json", "--repo", str(world.checkout)], env={}, out=data, err=io.StringIO())
    assert json.loads(data.getvalue())["models"]["claude-sonnet-5-5"]["reasoning_tokens"] == 3_000


# --- item 2: a cut-off reply is never used silently -----------------------------------------


def test_a_cut_off_analysis_is_retried_once_with_more_room_and_said_everywhere(world: World, discord: FakeDiscord) -> None:
    world.anthropic.text = PLAN
    world.anthropic.thinking_tokens = 40_000  # 20,000 at medium: past the 16,000 cap; 10,000 at low fits 32,000
    result = world.run()

    assert result.returncode == 0, result.stderr
    first, retry = world.anthropic.generation_requests
    assert (first.json["max_tokens"], first.json["output_config"]) == (16_000, {"effort": "medium"})
    assert (retry.json["max_tokens"], retry.json["output_config"]) == (32_000, {"effort": "low"})
    assert ("analysis: claude-sonnet-5-5 stopped at max_tokens (16,000, 16,000 of them thinking); the cut-off reply "
            "is not used; retrying once with max_tokens 32,000 and effort low") in result.stdout
    cut, used = calls(world, "analysis")
    assert (cut["outcome"], cut["output"], used["outcome"]) == ("max_tokens", 16_000, "ok")
    assert cut["cost_micro_usd"] > 0  # the cut-off reply was billed, and is booked
    [pull] = world.created_pulls()
    assert "cut off at max_tokens (16,000) and not used" in pull["body"].split("## Cost receipt")[1]
    assert quote(PLAN.strip()) in pull["body"]
    [completed] = discord.embeds_titled("Run completed")
    notes = next(item["value"] for item in completed["fields"] if item["name"] == "Notes")
    assert "cut off at max_tokens (16,000)" in notes


def test_an_analysis_cut_off_twice_fails_the_step_and_counts_toward_parking(world: World, discord: FakeDiscord) -> None:
    world.anthropic.thinking_tokens = 200_000  # 100,000 at medium, 50,000 at low: never fits
    result = world.run()

    assert result.returncode == 1
    assert len(world.anthropic.generation_requests) == 2 and world.openai.generation_requests == []
    assert world.created_pulls() == []
    [line] = result.stderr.strip().splitlines()
    assert "stopped at max_tokens (32,000" in line and "models.analysis_max_tokens" in line
    ledger = world.ledger()
    [run] = ledger["runs"]
    assert run["outcome"] == "failed:provider"
    assert [call["outcome"] for call in run["calls"]] == ["max_tokens", "max_tokens"]
    [parked] = ledger["health"]["parked"].values()
    assert (parked["task"], parked["failures"], parked["parked"]) == ("Add a greeting module", 1, False)
    [failed] = [embed for embed in discord.embeds if "failed" in embed["title"].lower()]
    assert "max\\_tokens" in failed["description"]  # as typed: Discord reads \_ as _


def test_a_reasoning_code_model_gets_effort_and_room_and_a_cut_reply_is_retried(world: World) -> None:
    configure(world, "models:\n  code: gpt-6-luna\n  code_reasoning_effort: medium\n")
    world.openai.reasoning_tokens = 40_000  # at medium: past the 32,768 cap; 20,000 at low fits 65,536
    result = world.run()

    assert result.returncode == 0, result.stderr
    first, retry = world.openai.generation_requests
    assert (first.json["reasoning_effort"], first.json["max_completion_tokens"]) == ("medium", 32_768)
    assert (retry.json["reasoning_effort"], retry.json["max_completion_tokens"]) == ("low", 65_536)
    assert "max_tokens" not in first.json
    cut, used = calls(world, "code")
    assert (cut["outcome"], used["outcome"], used["reasoning"], used["output"]) == ("max_tokens", "ok", 20_000, 20_500)
    [pull] = world.created_pulls()
    assert "The code reply from gpt-6-luna was cut off at max_completion_tokens" not in pull["body"]
    assert "The code reply from gpt-6-luna was cut off at max_tokens (32,768) and not used" in pull["body"]


# --- replies the providers really send: only a finished one is used ----------------------------


def test_a_paused_analysis_never_becomes_a_pull_request(world: World, discord: FakeDiscord) -> None:
    world.anthropic.text = "Add a greeting"  # three words, then the turn paused
    world.anthropic.stop_reason = "pause_turn"
    result = world.run()

    assert result.returncode == 1
    assert world.created_pulls() == [] and world.openai.generation_requests == []
    assert [r.json["model"] for r in world.anthropic.generation_requests] == ["claude-sonnet-5-5", "claude-haiku-4-5"]
    assert "analysis: claude-sonnet-5-5 failed (unfinished); falling back to claude-haiku-4-5" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert "did not finish its answer (stop_reason pause_turn)" in line
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:provider"
    assert [call["outcome"] for call in run["calls"]] == ["unfinished", "unfinished"]
    assert all(call["cost_micro_usd"] > 0 for call in run["calls"])  # billed, and booked
    [failed] = [embed for embed in discord.embeds if "failed" in embed["title"].lower()]
    assert "(stop_reason pause_turn)" in visible_text(failed["description"])  # as Discord shows its Markdown


def test_a_reply_that_filled_the_context_window_falls_back_without_a_doubled_cap(world: World) -> None:
    world.anthropic.script(FakeAnthropic.message("## Changes\nAdd", stop_reason="model_context_window_exceeded",
                                                 input_tokens=190_000, output_tokens=10_000))
    result = world.run()

    assert result.returncode == 0, result.stderr
    first, fallback = world.anthropic.generation_requests
    assert (first.json["model"], fallback.json["model"]) == ("claude-sonnet-5-5", "claude-haiku-4-5")
    assert fallback.json["max_tokens"] <= first.json["max_tokens"]  # no retry with twice the cap
    assert "stopped at max_tokens" not in result.stdout
    assert "analysis: claude-sonnet-5-5 failed (context_length); falling back to claude-haiku-4-5" in result.stdout
    assert [call["outcome"] for call in calls(world, "analysis")] == ["context_length", "ok"]
    [pull] = world.created_pulls()
    assert "## Analysis (claude-haiku-4-5)" in pull["body"]


# --- item 5: retirement without downtime -----------------------------------------------------


def test_after_the_openai_shutdown_a_run_uses_gpt_6_luna_and_says_gpt_4o_mini_retired(
    world: World, discord: FakeDiscord
) -> None:
    code, out, err = run_at(world, AFTER_SHUTDOWN)

    assert code == 0, err
    [sent] = world.openai.generation_requests
    assert (sent.json["model"], sent.json["reasoning_effort"], sent.json["max_completion_tokens"]) == ("gpt-6-luna", "medium", 32_768)
    note = "models.code: gpt-4o-mini retired on 2027-01-14; runs use gpt-6-luna instead"
    assert f"note: {note}" in out.splitlines()
    assert CONFIG not in out + err  # the repository has no config file: it is not told to fix one
    [pull] = world.created_pulls()
    receipt = pull["body"].split("## Cost receipt")[1]
    assert f"- {note}" in receipt and "| code | `gpt-6-luna` |" in receipt
    [announced] = discord.embeds_titled("Model retired: gpt-4o-mini")
    assert "Runs now use `gpt-6-luna` instead" in announced["description"]
    assert [call["model"] for call in calls(world, "code")] == ["gpt-6-luna"]

    # the next run (a fresh checkout) says it in its log again, but Discord heard it once
    fresh_checkout(world)
    world.env["GITHUB_RUN_ID"] = "4243"
    code, out, err = run_at(world, AFTER_SHUTDOWN + dt.timedelta(hours=3))
    assert code == 0, err
    assert f"note: {note}" in out.splitlines()
    assert len(discord.embeds_titled("Model retired: gpt-4o-mini")) == 1


def test_on_retirement_stop_stops_the_run_naming_the_key(world: World) -> None:
    configure(world, "models:\n  on_retirement: stop\n")
    code, out, err = run_at(world, AFTER_SHUTDOWN)

    assert (code, out) == (2, "")
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and "models.on_retirement is 'stop'" in line and "models.code" in line
    assert world.anthropic.requests == [] and world.openai.requests == [] and world.github.requests == []


def test_a_faked_clock_is_passed_to_the_bot() -> None:
    environ = {"LD_PRELOAD": "/usr/lib/faketime/libfaketime.so.1", "FAKETIME": "@2027-06-01 12:00:00",
               "FAKETIME_DONT_RESET": "1", "PATH": "/bin", "ANTHROPIC_API_KEY": "k"}
    assert faked_clock_env(environ) == {
        "LD_PRELOAD": "/usr/lib/faketime/libfaketime.so.1", "FAKETIME": "@2027-06-01 12:00:00", "FAKETIME_DONT_RESET": "1",
    }
    assert faked_clock_env({"PATH": "/bin"}) == {}


def test_the_ledger_of_a_thinking_run_explains_its_columns(world: World) -> None:
    assert world.run().returncode == 0
    data = json.loads(world.remote_file("main", "token_budget.json") or "{}")
    assert data["schema_version"] == 4
    assert data["call_columns"][:5] == ["step", "model", "input", "output", "reasoning"]
    assert data["models"]["claude-sonnet-5-5"]["reasoning_tokens"] == 1_000  # the fake's 2,000 at high, halved
