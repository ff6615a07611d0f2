"""`python -m automation run` as the channel, the job page and the repository settings see it.

The same world as tests/test_run.py (real CLI subprocess, bare `origin`, loopback Anthropic,
OpenAI and GitHub) plus a loopback Discord webhook. Assertions read what reached Discord,
the job summary, the output, and the ledger on the remote, across runs: an alert owed once
is posted once because its flag travels in the committed ledger, not in the checkout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from automation.core.prices import Usage, format_usd
from automation.money import ledger as ledger_module
from automation.money.ledger import CallRecord, Ledger, RunRecord
from tests import test_run
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.spending import PINNED_MODELS, bill_near_the_worst_case, billed, expire_reservations, hold, start, status
from tests.test_run import World, git, wait_for

world = test_run.world  # the fixture of tests/test_run.py: checkout, bare origin, model and GitHub fakes
CONFIG = ".github/ai-orchestration.yml"
PROTECTED_HOOK = """#!/bin/sh
while read old new ref; do
  if [ "$ref" = "refs/heads/main" ]; then
    echo "error: GH006: Protected branch update failed for refs/heads/main." >&2
    echo "error: Changes must be made through a pull request." >&2
    exit 1
  fi
done
exit 0
"""


@pytest.fixture()
def discord(world: World, fake_discord: FakeDiscord) -> FakeDiscord:
    """The world with its webhook configured, as a repository secret would be."""
    world.env.update(fake_discord.env())
    return fake_discord


# -- helpers ---------------------------------------------------------------------------------


def this_month() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")


def last_month() -> str:
    first = dt.datetime.now(dt.timezone.utc).replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def seeded_ledger(
    month: str, costs: list[int], *, budget_usd: float = 15, milestones_usd: tuple[float, ...] = ()
) -> str:
    """A committed ledger with one earlier run (and pull request) per cost in micro-dollars."""
    runs = tuple(
        RunRecord(
            id=f"seed-{index}", started_at=f"{month}-01T00:00:{index:02d}Z", task=f"Earlier task {index}",
            outcome="pr_opened", pr_url=f"https://github.com/octo/repo/pull/{900 + index}",
            calls=(CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=1000, output_tokens=100),
                              cost, 1200),),
        )
        for index, cost in enumerate(costs)
    )
    ledger = Ledger(month=month, budget_micro_usd=round(budget_usd * 1e6), runs=runs,
                    milestones_reached_micro_usd=tuple(round(m * 1e6) for m in milestones_usd))
    return ledger_module.to_text(ledger)


def fresh_checkout(world: World) -> None:
    """What actions/checkout gives the next scheduled run: the remote's default branch and nothing else."""
    git(world.checkout, "fetch", "-q", "origin", env=world.env)
    git(world.checkout, "reset", "-q", "--hard", "origin/main", env=world.env)
    git(world.checkout, "clean", "-qfdx", env=world.env)


def publish(world: World, files: dict[str, str]) -> None:
    """Commit files on the remote default branch (a merged PR), then start from a fresh checkout."""
    for path, content in files.items():
        world.push_to_main(path, content, f"update {path}")
    fresh_checkout(world)


def next_run(world: World, run_id: str) -> dict[str, str]:
    """The environment of a later scheduled run (GitHub gives each one its own run id)."""
    return {**world.env, "GITHUB_RUN_ID": run_id}


def field(embed: dict, name: str) -> str:
    return next(item["value"] for item in embed["fields"] if item["name"] == name)


def secrets_of(world: World) -> list[str]:
    return [world.env[name] for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN")]


def is_retirement(embed: dict) -> bool:
    """A model retiring or retired: which models that is depends on the date the bot runs at."""
    return "model retir" in embed.get("title", "").lower()


def alerts(discord: FakeDiscord) -> list[dict]:
    """Delivered embeds, leaving out model-retirement notices (they depend on today's date)."""
    return [embed for embed in discord.embeds if not is_retirement(embed)]


def run_requests(discord: FakeDiscord) -> list:
    """Webhook requests, leaving out those that carry only retirement notices."""
    return [request for request in discord.requests
            if not all(is_retirement(embed) for embed in (request.json or {}).get("embeds", []))]


def model_requests(world: World) -> int:
    return len(world.anthropic.requests) + len(world.openai.requests)


# -- tests -----------------------------------------------------------------------------------


def test_happy_path_posts_run_completed_and_writes_the_job_summary(world: World, discord: FakeDiscord) -> None:
    discord.fail_next(FakeDiscord.rate_limited(0.01))  # waited out, then delivered
    summary = world.tmp / "step-summary.md"
    result = world.run(env={**world.env, "GITHUB_STEP_SUMMARY": str(summary)})

    assert result.returncode == 0, result.stderr
    # the first post (the run's, or a retirement notice on some dates) is refused once, waited out, then delivered
    statuses = [request.status for request in discord.requests]
    assert statuses[0] == 429 and statuses[1:] == [200] * (len(statuses) - 1)
    assert [request.status for request in run_requests(discord)][-1] == 200
    [pull] = world.created_pulls()
    ledger = world.ledger()
    [run] = ledger["runs"]
    pr_url = run["pr_url"]
    [completed] = discord.embeds_titled("Run completed")
    assert completed["description"] == "Add a greeting module"
    assert field(completed, "Pull request") == pr_url and completed["url"] == pr_url
    cost = ledger["spent_micro_usd"]
    assert field(completed, "This run") == format_usd(cost, 4 if cost < 10_000 else 2)
    month = field(completed, "Month to date")
    assert "▰" in month or "▱" in month
    assert "of $15.00" in month
    assert field(completed, "PRs this month") == "1"
    assert len(alerts(discord)) == 1  # nothing else is owed on a first, cheap run
    for request in discord.requests:
        assert request.query.get("wait") == "true"
        assert request.json["allowed_mentions"] == {"parse": []}

    text = summary.read_text()
    assert "Add a greeting module" in text and pr_url in text
    assert "## Cost receipt" in pull["body"] and "| **this run** |" in text and "gpt-4o-mini" in text
    assert "▱" in text and "of $15.00" in text
    chart = text.split("```mermaid\n", 1)[1].split("\n```", 1)[0]  # the month's spend beside the receipt
    assert chart.startswith("xychart-beta\n") and 'y-axis "USD" 0 --> 15\n' in chart
    assert chart.splitlines()[-1].endswith(f"{cost / 1e6:.4f}".rstrip("0").rstrip(".") + "]"), chart

    ledger_text = world.remote_file("main", "token_budget.json")
    for leak in (discord.url, discord.token):
        for place in (result.stdout, result.stderr, pull["body"], text, ledger_text):
            assert leak not in place


def test_a_milestone_is_announced_once_and_remembered_on_the_remote(world: World, discord: FakeDiscord) -> None:
    publish(world, {
        CONFIG: "budget:\n  monthly_usd: 15\n  milestones_usd: [5, 10, 15]\n",
        "token_budget.json": seeded_ledger(this_month(), [2_500_000, 2_499_000]),
    })

    first = world.run()

    assert first.returncode == 0, first.stderr
    [milestone] = discord.embeds_titled("Milestone")
    assert "$5" in milestone["title"] and "of $15.00" in field(milestone, "Month to date")
    assert world.ledger()["milestones_reached_micro_usd"] == [5_000_000]
    assert world.ledger()["spent_micro_usd"] > 5_000_000

    fresh_checkout(world)
    second = world.run(env=next_run(world, "4243"))

    assert second.returncode == 0, second.stderr
    assert len(discord.embeds_titled("Milestone")) == 1
    assert [embed["description"] for embed in discord.embeds_titled("Run completed")] == [
        "Add a greeting module", "Say hello in French too"]
    assert world.ledger()["milestones_reached_micro_usd"] == [5_000_000]
    assert world.ledger()["executions"] == 4


def test_exhausted_budget_stops_before_any_model_call_and_says_so_once(world: World, discord: FakeDiscord) -> None:
    publish(world, {
        CONFIG: "budget:\n  monthly_usd: 1\n  milestones_usd: [0.5, 1]\n",
        "token_budget.json": seeded_ledger(this_month(), [600_000, 390_000], budget_usd=1, milestones_usd=(0.5,)),
    })

    first = world.run()

    assert first.returncode == 0, first.stderr
    assert "budget stop" in first.stdout
    assert model_requests(world) == 0 and world.created_pulls() == []
    [exhausted] = discord.embeds_titled("Budget exhausted")
    # where the month really stands: $0.99 of $1.00, not the $1 milestone and not "100%"
    assert field(exhausted, "Month to date").startswith("$0.99\n") and "99% of $1.00" in field(exhausted, "Month to date")
    assert "resets" in exhausted["description"] and "$0.01 is left" in exhausted["description"]
    assert "could cost up to $" in exhausted["description"]
    assert discord.embeds_titled("Milestone") == []  # $1 was never reached
    ledger = world.ledger()
    assert ledger["notified"]["budget_exhausted"] is True and ledger["spent_micro_usd"] == 990_000
    assert ledger["milestones_reached_micro_usd"] == [500_000]

    fresh_checkout(world)
    posted = len(discord.requests)
    second = world.run(env=next_run(world, "4243"))

    assert second.returncode == 0, second.stderr
    assert "budget stop" in second.stdout
    assert model_requests(world) == 0 and world.created_pulls() == []
    assert len(discord.requests) == posted  # nothing new to say


def test_first_run_of_a_month_posts_last_months_recap_once(world: World, discord: FakeDiscord) -> None:
    month = last_month()
    publish(world, {"token_budget.json": seeded_ledger(month, [1_234_567, 765_433, 500_000])})

    first = world.run()

    assert first.returncode == 0, first.stderr
    [recap] = [embed for embed in discord.embeds if "recap" in embed["title"].lower()]
    assert month in recap["title"]
    assert "$2.50" in field(recap, "Spent") and field(recap, "Runs") == "3" and field(recap, "PRs") == "3"
    assert "claude-sonnet-5-5" in field(recap, "Cost by model")
    ledger = world.ledger()
    assert ledger["month"] == this_month() and [entry["month"] for entry in ledger["history"]] == [month]
    assert ledger["notified"]["recap_sent"] is True

    fresh_checkout(world)
    second = world.run(env=next_run(world, "4243"))

    assert second.returncode == 0, second.stderr
    assert len([embed for embed in discord.embeds if "recap" in embed["title"].lower()]) == 1
    assert len(discord.embeds_titled("Run completed")) == 2


def test_failed_run_posts_one_clean_alert_and_annotates_the_job(world: World, discord: FakeDiscord) -> None:
    world.openai.content = "Sure! Here is the code you asked for."  # unusable, and so is the repair
    summary = world.tmp / "step-summary.md"
    env = {**world.env, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = world.run(env=env)

    assert result.returncode == 1
    [failed] = [embed for embed in discord.embeds if "failed" in embed["title"].lower()]
    assert "edits" in failed["title"] and field(failed, "Step") == "edits"
    assert field(failed, "Task") == "Add a greeting module"
    assert len(alerts(discord)) == 1
    posted = json.dumps(discord.messages, ensure_ascii=False)
    assert "Traceback" not in posted and "Traceback" not in result.stderr + result.stdout
    for secret in [*secrets_of(world), discord.url, discord.token]:
        assert secret not in posted

    masks = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::")]
    for secret in [*secrets_of(world), discord.url, discord.token]:
        assert f"::add-mask::{secret}" in masks
    lines = (result.stdout + result.stderr).splitlines()
    rest = "\n".join(line for line in lines if not line.startswith("::add-mask::"))
    for secret in [*secrets_of(world), discord.url, discord.token]:
        assert secret not in rest
    assert "::error title=ai-orchestration::" in result.stderr
    text = summary.read_text()
    assert "failed:edits" in text and "**Error:**" in text and discord.token not in text
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:edits" and world.ledger()["spent_micro_usd"] > 0


def test_discord_server_errors_never_fail_the_run_nor_hold_back_the_ledger(world: World, discord: FakeDiscord) -> None:
    discord.fail_always(FakeDiscord.server_error(500))
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.created_pulls()) == 1
    assert world.ledger()["runs"][0]["outcome"] == "pr_opened"
    assert "Discord notification not delivered" in result.stdout
    assert 1 < len(run_requests(discord)) <= 5 and discord.messages == []
    assert discord.token not in result.stdout + result.stderr


def test_unknown_webhook_warns_once_naming_the_secret_and_the_run_goes_on(world: World, discord: FakeDiscord) -> None:
    discord.fail_always(FakeDiscord.unknown_webhook())
    publish(world, {"token_budget.json": seeded_ledger(last_month(), [100_000])})  # a recap is owed too
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert len(world.created_pulls()) == 1 and world.ledger()["runs"][-1]["outcome"] == "pr_opened"
    output = result.stdout + result.stderr
    assert output.count("DISCORD_WEBHOOK_URL") == 1 and "10015" in output
    assert len(discord.requests) == 1  # the recap found the webhook gone; the run alert was not even tried
    assert discord.token not in output


def test_without_a_webhook_the_run_says_once_that_notifications_are_off(world: World) -> None:
    assert "DISCORD_WEBHOOK_URL" not in world.env
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Discord notifications are off") == 1
    assert len(world.created_pulls()) == 1


def test_actions_may_not_open_pull_requests_names_the_setting_and_keeps_the_spend(
    world: World, discord: FakeDiscord
) -> None:
    world.github.fail_next("POST", "/repos/*/pulls", FakeGitHub.actions_not_permitted())
    result = world.run()

    assert result.returncode == 1
    assert "Allow GitHub Actions to create and approve pull requests" in result.stderr
    assert world.github.pulls == []
    [run] = world.ledger()["runs"]
    assert run["outcome"] == "failed:github" and world.ledger()["spent_micro_usd"] > 0
    [failed] = [embed for embed in discord.embeds if "failed" in embed["title"].lower()]
    assert field(failed, "Step") == "github"


def test_protected_default_branch_points_at_ledger_branch_which_then_works(world: World, discord: FakeDiscord) -> None:
    hook = world.remote / "hooks" / "pre-receive"
    hook.write_text(PROTECTED_HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    blocked = world.run()

    assert blocked.returncode == 1
    assert "ledger.branch" in blocked.stderr and "protected" in blocked.stderr
    assert world.remote_file("main", "token_budget.json") is None
    rescued = json.loads(world.remote_file("ai-orchestration/ledger", "token_budget.json"))
    assert [run["outcome"] for run in rescued["runs"]] == ["pr_opened"] and rescued["spent_micro_usd"] > 0

    os.rename(hook, hook.with_name("pre-receive.off"))  # the admin merges the config change
    publish(world, {CONFIG: "ledger:\n  branch: ai-ledger\n"})
    os.rename(hook.with_name("pre-receive.off"), hook)

    second = world.run(env=next_run(world, "4243"))

    assert second.returncode == 0, second.stderr
    assert "ai-ledger" in world.remote_branches()
    assert world.remote_file("main", "token_budget.json") is None
    on_branch = json.loads(world.remote_file("ai-ledger", "token_budget.json"))
    assert [run["outcome"] for run in on_branch["runs"]] == ["pr_opened", "pr_opened"]  # the refused run too

    fresh_checkout(world)
    third = world.run(env=next_run(world, "4244"))

    assert third.returncode == 0, third.stderr
    on_branch = json.loads(world.remote_file("ai-ledger", "token_budget.json"))
    assert len(on_branch["runs"]) == 3 and on_branch["prs_opened"] == 3
    latest = discord.embeds_titled("Run completed")[-1]
    assert field(latest, "PRs this month") == "3"  # the third run started from the branch's ledger
    assert world.remote_file("main", "token_budget.json") is None



def test_what_the_notifier_posts_passes_discords_limits_and_a_rate_limit_is_waited_out(
    fake_discord: FakeDiscord,
) -> None:
    from automation.reporting.discord import Notifier, run_failed_embed

    now = dt.datetime(2026, 11, 21, 12, tzinfo=dt.timezone.utc)
    embeds = [run_failed_embed(repository="octo/repo", now=now, step="code", error_kind="invalid_reply",
                               message="x " * 3000, task="t" * 3000) for _ in range(12)]
    fake_discord.fail_next(FakeDiscord.rate_limited(0.01, is_global=True))
    slept: list[float] = []
    said: list[str] = []

    assert Notifier(fake_discord.url, sleep=slept.append, log=said.append).notify(embeds)

    assert len(fake_discord.embeds) == 12 and len(fake_discord.messages) >= 2  # split, each within 6000
    assert [request.status for request in fake_discord.requests][0] == 429 and slept == [0.01]
    assert said == []


def refuse_pushes_to(world: World, *branches: str, says: str) -> None:
    """Install a pre-receive hook on origin refusing every push to ``branches`` in its own words
    (a GitHub Enterprise hook, GH009 push protection, a ruleset's message): not GH006 or GH013."""
    refs = " ".join(f"refs/heads/{branch}" for branch in branches)
    hook = world.remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nwhile read old new ref; do\n  for refused in {refs}; do\n"
                    f"    if [ \"$ref\" = \"$refused\" ]; then echo \"error: {says}\" >&2; exit 1; fi\n"
                    "  done\ndone\nexit 0\n")
    hook.chmod(0o755)


def run_refused_at_the_end(world: World, *branches: str, says: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A paid run whose ledger push is refused: the refusal starts while its code call runs
    (a ruleset turned on mid-run), after every earlier push went through."""
    publish(world, {CONFIG: PINNED_MODELS})
    bill_near_the_worst_case(world)
    summary = world.tmp / "summary.md"
    world.env["GITHUB_STEP_SUMMARY"] = str(summary)
    release = threading.Event()
    hold(world.openai, 1, release)
    bot = start(world, "refused")
    wait_for(lambda: len(world.openai.generation_requests) == 1, "the code request")
    refuse_pushes_to(world, *branches, says=says)
    release.set()
    out, err = bot.communicate(timeout=120)
    return subprocess.CompletedProcess(bot.args, bot.returncode, out, err), summary


def test_a_ledger_refused_in_any_words_goes_to_the_rescue_branch_and_is_said_everywhere(
    world: World, discord: FakeDiscord
) -> None:
    result, summary = run_refused_at_the_end(world, "main", says="pre-receive hook declined: ledger commits need a ticket")

    assert result.returncode == 1 and "pre-receive hook declined" in result.stderr and "Traceback" not in result.stderr
    said = "it was committed to branch ai-orchestration/ledger instead, which every run merges back in, so no spend is lost"
    assert said in result.stdout and said in summary.read_text()
    [embed] = discord.embeds_titled("failed")
    assert field(embed, "Step") == "ledger" and said in embed["description"] + json.dumps(embed["fields"])
    rescued = json.loads(world.remote_file("ai-orchestration/ledger", "token_budget.json"))
    [run] = rescued["runs"]
    assert run["outcome"] == "pr_opened" and len(run["calls"]) == 2 and rescued["spent_micro_usd"] == billed(world)

    fresh_checkout(world)
    second = world.run(env=next_run(world, "4243"))  # the next run counts the refused one, once, from the rescue branch

    assert second.returncode == 1 and "Ledger committed" not in second.stdout
    rescued = json.loads(world.remote_file("ai-orchestration/ledger", "token_budget.json"))
    assert [run["outcome"] for run in rescued["runs"]] == ["pr_opened", "pr_opened"]
    assert rescued["spent_micro_usd"] == billed(world) and "reservations" not in rescued


def test_a_ledger_refused_everywhere_is_still_counted_from_its_reservation(world: World, discord: FakeDiscord) -> None:
    result, summary = run_refused_at_the_end(world, "main", "ai-orchestration/ledger",
                                             says="GH009: Secrets detected! This push failed.")

    assert result.returncode == 1 and "GH009" in result.stderr and "Traceback" not in result.stderr
    said = "are on main with its reservation, which every later run books as spent once it expires"
    assert said in result.stdout and said in summary.read_text()
    [embed] = discord.embeds_titled("failed")
    assert said in embed["description"] + json.dumps(embed["fields"])
    (world.remote / "hooks" / "pre-receive").unlink()  # a human lifts the rule; time passes
    expire_reservations(world)
    month = status(world)
    assert month["unsettled"]["runs"] == 1 and round(month["spent_usd"] * 1_000_000) >= billed(world) > 0
