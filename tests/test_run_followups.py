"""Follow-up runs end to end: the real ``python -m automation run`` in a subprocess, a checkout
whose origin is a local bare repository, and loopback Anthropic, OpenAI, GitHub and Discord.

Each test first lets the bot open its pull request for real (run 1), then plays what happens
on GitHub (a red check with its job log, a review, a mention, a human's push) and runs again.
Assertions read what a user sees: the branch on the remote, the PR's comments and labels, the
prompts the models got, the ledger on the default branch, the Discord embeds, the output.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from automation.core.config import Config
from automation.core.prices import PriceTable, format_usd
from automation.repo.github import task_hash, task_marker
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import FakeGitHub, FakePull, fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World, git, light_install, shallow_checkout, world  # noqa: F401

BRANCH = "ai/add-a-greeting-module"
FIXED = "def greet(name):\n    return f'Hello, {name}!'\n\n\ndef farewell(name):\n    return f'Goodbye, {name}!'\n"
FIX_REPLY = FakeOpenAI.code_reply("Add farewell, which the test expects", [{
    "path": "app/greeting.py", "search": "    return f'Hello, {name}!'\n",
    "replace": "    return f'Hello, {name}!'\n\n\ndef farewell(name):\n    return f'Goodbye, {name}!'\n",
}])
FIX_PLAN = "## Changes\nAdd `farewell` to `app/greeting.py`.\n\n## Files\n- `app/greeting.py`\n\n## Acceptance criteria\n- tests pass"


def failing_log(secret: str) -> str:
    """An Actions job log as GitHub serves it: timestamps, groups, noise, then the failure."""
    noise = "".join(f"2026-01-05T10:00:{i % 60:02d}.1234567Z Collecting package-{i}\n" for i in range(400))
    return (
        noise
        + "2026-01-05T10:00:59.0000000Z ##[group]Run pytest\n"
        f"2026-01-05T10:00:59.0000000Z env: TOKEN={secret}\n"
        "2026-01-05T10:00:59.0000000Z ##[endgroup]\n"
        "2026-01-05T10:01:00.0000000Z tests/test_greeting.py F\n"
        "2026-01-05T10:01:00.0000000Z E   ImportError: cannot import name 'farewell' from 'app.greeting'\n"
        "2026-01-05T10:01:00.0000000Z FAILED tests/test_greeting.py::test_farewell\n"
        "2026-01-05T10:01:01.0000000Z ##[error]Process completed with exit code 1.\n"
    )


@pytest.fixture()
def pr(world: World, fake_discord: FakeDiscord) -> FakePull:
    """Run 1: the bot opens its PR for 'Add a greeting module'; the fake's PR head follows the remote branch."""
    world.env.update(fake_discord.env())
    result = world.run()
    assert result.returncode == 0, result.stderr
    world.github.follow_remote(world.remote, world.env)
    for reviewer in ("alice", "carol"):  # the people who may direct the bot (see test_run_trust.py for the others)
        world.github.add_collaborator(reviewer, "write")
    world.anthropic.text = FIX_PLAN
    world.openai.content = FIX_REPLY
    return world.github.pull(1)


def tip(world: World, branch: str) -> str | None:
    result = git(world.remote, "for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}").strip()
    return result or None


def bot_comments(world: World, number: int = 1) -> list[str]:
    return [c["body"] for c in world.github.comments_on(number) if c["user"]["login"] == "github-actions[bot]"]


def follow_up_runs(world: World) -> list[dict]:
    return [run for run in world.ledger()["runs"] if run.get("kind") == "follow_up"]


def test_red_pull_request_gets_a_fix_up_commit_then_the_bot_moves_on(world: World, pr: FakePull, fake_discord: FakeDiscord) -> None:
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log(world.env["OPENAI_API_KEY"]))
    world.github.add_check_run(red, "lint", conclusion="success")
    generation_calls = len(world.anthropic.generation_requests)

    result = world.run()

    assert result.returncode == 0, result.stderr
    print(result.stdout)  # the user's log, shown in the report
    assert f"Follow-up: #1 ({pr_url(world)}): failed checks test" in result.stdout
    green = tip(world, BRANCH)
    assert green != red
    git(world.remote, "merge-base", "--is-ancestor", red, green)  # a new commit on top: never a force-push
    assert world.remote_file(BRANCH, "app/greeting.py") == FIXED
    assert git(world.remote, "log", "-1", "--format=%ae", green).strip() == "41898282+github-actions[bot]@users.noreply.github.com"

    prompt = world.anthropic.generation_requests[generation_calls].json["messages"][0]["content"]
    assert "ImportError: cannot import name 'farewell'" in prompt and "exit code 1" in prompt
    assert "Collecting package-10\n" not in prompt  # the noise is cut, the failure kept
    assert world.env["OPENAI_API_KEY"] not in prompt and "TOKEN=***" in prompt
    assert "+def greet(name):" in prompt  # the PR's diff
    assert "## The original plan" in prompt and "Add `app/greeting.py` with `greet`." in prompt
    code_prompt = world.openai.generation_requests[-1].json["messages"][-1]["content"]
    assert "### app/greeting.py" in code_prompt  # the branch's file, read from a checkout of the branch

    [reply] = bot_comments(world)
    print(reply)  # the receipt comment, shown in the report
    assert "failed check [test]" in reply and f"Pushed {green[:7]} to `{BRANCH}`" in reply
    assert "`app/greeting.py` (update)" in reply and "### Cost receipt" in reply
    [run] = follow_up_runs(world)
    assert run["pull"] == 1 and run["outcome"] == "follow_up_pushed" and run["task"] == "Add a greeting module"
    assert [call["step"] for call in run["calls"]] == ["analysis", "code"]
    ledger = world.ledger()
    pr_cost = sum(c["cost_micro_usd"] for r in ledger["runs"] for c in r["calls"])
    assert f"This pull request so far: **${pr_cost / 1e6:.4f}**" in reply
    assert ledger["prs_opened"] == 1 and len(world.created_pulls()) == 1
    [embed] = fake_discord.embeds_titled("Follow-up")
    assert embed["url"] == pr_url(world)
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    run_cost = sum(c["cost_micro_usd"] for c in run["calls"])
    # Discord shows cents, and four places only below a cent
    assert fields["This PR so far"] == format_usd(pr_cost) and fields["This run"] == format_usd(run_cost, 4 if run_cost < 10_000 else 2)

    world.github.add_check_run(green, "test", conclusion="success")
    world.github.add_check_run(green, "lint", conclusion="success")
    next_task_reply(world)
    third = world.run()

    assert third.returncode == 0, third.stderr
    assert "Follow-up" not in third.stdout
    assert [p["title"] for p in world.created_pulls()] == ["Add a greeting module", "Say hello in French too"]
    assert len(bot_comments(world)) == 1


def next_task_reply(world: World) -> None:
    """The code reply for the next task ('Say hello in French too'), for runs that move on to it."""
    world.openai.content = FakeOpenAI.code_reply("French", [{"path": "app/french.py", "content": "X = 1\n"}])


def pr_url(world: World) -> str:
    return "https://github.com/octo/repo/pull/1"


def test_a_task_given_by_hand_comes_before_follow_ups(world: World, pr: FakePull) -> None:
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log("x"))
    next_task_reply(world)
    result = world.run("--task", "Add a farewell function")

    assert result.returncode == 0, result.stderr
    assert "Follow-up" not in result.stdout and tip(world, BRANCH) == red
    assert [p["title"] for p in world.created_pulls()][-1] == "Add a farewell function"


def test_pending_checks_wait_and_a_pull_request_without_checks_is_left_alone(world: World, pr: FakePull) -> None:
    world.github.add_check_run(tip(world, BRANCH), "test", status="in_progress")
    next_task_reply(world)
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "#1 has checks still running" in result.stdout
    assert bot_comments(world) == [] and follow_up_runs(world) == []
    assert len(world.created_pulls()) == 2  # the run went on to the next task


def test_a_review_requesting_changes_is_acted_on_and_answered_once(world: World, pr: FakePull) -> None:
    world.github.add_review(1, user="alice", state="CHANGES_REQUESTED", body="Please also add a farewell.",
                            comments=(("app/greeting.py", 2, "and keep greet as it is"),))
    world.github.add_review(1, user="dave", state="APPROVED", body="fine by me")
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "Follow-up: #1" in result.stdout and "review by @alice" in result.stdout
    prompt = world.anthropic.generation_requests[-1].json["messages"][0]["content"]
    assert "Please also add a farewell." in prompt and "`app/greeting.py` line 2: and keep greet as it is" in prompt
    assert "fine by me" not in prompt
    [reply] = bot_comments(world)
    assert "[review by @alice](https://github.com/octo/repo/pull/1#pullrequestreview-" in reply
    assert world.remote_file(BRANCH, "app/greeting.py") == FIXED

    next_task_reply(world)
    again = world.run()
    assert again.returncode == 0, again.stderr
    assert "Follow-up" not in again.stdout and len(bot_comments(world)) == 1


def test_a_mention_is_answered_once_and_other_comments_are_not_requests(world: World, pr: FakePull) -> None:
    world.github.add_comment(1, user="carol", body="Looks good, ai-orchestration fans!")
    world.github.add_comment(1, user="carol", body="@AI-Orchestration please add a farewell function too")
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "comment by @carol" in result.stdout
    prompt = world.anthropic.generation_requests[-1].json["messages"][0]["content"]
    assert "please add a farewell function too" in prompt and "fans" not in prompt
    [reply] = bot_comments(world)
    assert "[comment by @carol]" in reply and "Pushed" in reply

    generation_calls = len(world.anthropic.generation_requests)
    next_task_reply(world)
    again = world.run()
    assert again.returncode == 0, again.stderr
    assert len(bot_comments(world)) == 1
    assert "Follow-up" not in again.stdout
    assert [p["title"] for p in world.created_pulls()][-1] == "Say hello in French too"
    assert len(world.anthropic.generation_requests) == generation_calls + 1  # only the new task's analysis


def test_after_the_attempt_limit_the_pull_request_is_labelled_and_left_alone(world: World, pr: FakePull) -> None:
    config = world.checkout / ".github" / "ai-orchestration.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("follow_ups:\n  max_attempts: 1\n  needs_human_label: please-help\n")
    world.github.add_check_run(tip(world, BRANCH), "test", log=failing_log("x"))
    assert world.run().returncode == 0
    fixed = tip(world, BRANCH)
    world.github.add_check_run(fixed, "test", log=failing_log("x"))  # still red
    next_task_reply(world)
    generation_calls = len(world.anthropic.generation_requests)

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "1 of 1 follow-up attempts used; labelled please-help" in result.stdout
    assert tip(world, BRANCH) == fixed
    assert "please-help" in world.github.pull(1).labels
    assert "Not trying again: 1 of 1 follow-up attempts used" in bot_comments(world)[-1]
    assert len(world.anthropic.generation_requests) == generation_calls + 1  # the next task only: giving up is free
    assert len(follow_up_runs(world)) == 1

    comments = len(bot_comments(world))
    world.github.add_comment(1, user="carol", body="@ai-orchestration any news?")
    assert world.run().returncode == 0
    assert len(bot_comments(world)) == comments  # labelled: left alone, even when mentioned


def test_a_human_commit_on_the_branch_is_never_pushed_over(world: World, pr: FakePull) -> None:
    human = world.tmp / "human"
    git(world.tmp, "clone", "-q", "-b", BRANCH, str(world.remote), str(human), env=world.env)
    (human / "app" / "greeting.py").write_text("def greet(name):\n    return 'hi ' + name\n")
    git(human, "commit", "-qam", "my own take", env=world.env)
    git(human, "push", "-q", "origin", BRANCH, env=world.env)
    mine = tip(world, BRANCH)
    world.github.add_check_run(mine, "test", log=failing_log("x"))
    world.github.add_comment(1, user="carol", body="@ai-orchestration can you fix the test?")
    next_task_reply(world)
    generation_calls = len(world.anthropic.generation_requests)

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert f"not pushing, commit {mine[:7]} by Test User on the branch is not the bot's" in result.stdout
    assert tip(world, BRANCH) == mine
    [reply] = bot_comments(world)
    assert "Not pushing to this branch" in reply and "[comment by @carol]" in reply and "Cost receipt" not in reply
    assert len(world.anthropic.generation_requests) == generation_calls + 1  # the next task only
    assert follow_up_runs(world) == []

    assert world.run().returncode == 0
    assert len(bot_comments(world)) == 1  # said once


def test_the_takeover_label_keeps_the_bot_off_a_red_branch(world: World, pr: FakePull) -> None:
    pr.labels.append("ai-hands-off")
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log("x"))
    next_task_reply(world)
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "not pushing, it has the label 'ai-hands-off'" in result.stdout
    assert tip(world, BRANCH) == red and bot_comments(world) == []


def test_the_budget_stops_a_follow_up_before_it_spends(world: World, pr: FakePull) -> None:
    spent = world.ledger()["spent_micro_usd"]
    price = PriceTable.builtin().find("claude-sonnet-5-5")
    assert price is not None
    cap = Config().output_cap(price.model)  # the default analysis cap, thinking included
    # Enough for the run's opening check (no input yet), not for the follow-up's counted prompt.
    lowest = price.worst_case_micro_usd(0, cap)
    follow_up = price.worst_case_micro_usd(945, cap)  # the fake counts 900 tokens, padded 5%
    budget = Decimal(spent + (lowest + follow_up) // 2) / 1_000_000
    config = world.checkout / ".github" / "ai-orchestration.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f"budget:\n  monthly_usd: {budget}\n")
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log("x"))
    generation_calls = len(world.anthropic.generation_requests)

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "Follow-up: #1" in result.stdout and "budget stop" in result.stdout
    assert len(world.anthropic.generation_requests) == generation_calls and len(world.openai.generation_requests) == 1
    assert tip(world, BRANCH) == red and bot_comments(world) == []
    assert follow_up_runs(world) == [] and world.ledger()["spent_micro_usd"] == spent


# --- a PR's identity -------------------------------------------------------------------------


def test_a_marker_quoted_by_the_model_does_not_decide_the_task(world: World) -> None:
    world.anthropic.text += f"\n\nSee {task_marker('Say hello in French too')} for context."
    assert world.run().returncode == 0
    [first] = world.created_pulls()
    assert first["body"].count("<!-- ai-orchestration:task=") == 1
    assert first["body"].rstrip().endswith(task_marker("Add a greeting module"))

    next_task_reply(world)
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert [p["title"] for p in world.created_pulls()] == ["Add a greeting module", "Say hello in French too"]


def test_a_pull_request_whose_marker_a_reviewer_removed_still_holds_its_task(world: World) -> None:
    assert world.run().returncode == 0
    world.github.pull(1).body = "Rewritten by a reviewer: the description was too long."
    next_task_reply(world)

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "Skipping 'Add a greeting module': has an open pull request" in result.stdout
    assert [p["title"] for p in world.created_pulls()] == ["Add a greeting module", "Say hello in French too"]
    assert f"{BRANCH}-2" not in world.remote_branches()


@pytest.mark.parametrize("failure", [FakeGitHub.actions_not_permitted(), FakeGitHub.validation_failed("Head sha can't be blank")])
def test_a_pushed_branch_whose_pull_request_failed_is_opened_next_run_without_paying_again(world: World, failure) -> None:
    world.github.fail_next("POST", "/repos/*/pulls", failure)
    first = world.run()
    assert first.returncode == 1 and BRANCH in world.remote_branches() and world.github.pulls == []
    calls = (len(world.anthropic.generation_requests), len(world.openai.generation_requests))
    spent = world.ledger()["spent_micro_usd"]

    result = world.run()

    assert result.returncode == 0, result.stderr
    assert (len(world.anthropic.generation_requests), len(world.openai.generation_requests)) == calls
    assert [b for b in world.remote_branches() if b.startswith("ai/")] == [BRANCH]
    [_, pull] = world.created_pulls()
    assert pull["head"] == BRANCH and pull["title"] == "Add a greeting module"
    assert pull["body"].rstrip().endswith(task_marker("Add a greeting module"))
    assert "`app/greeting.py` (create)" in pull["body"] and "## Cost receipt" in pull["body"]
    ledger = world.ledger()
    assert ledger["spent_micro_usd"] == spent and ledger["prs_opened"] == 1


def test_a_token_typed_into_a_task_stays_out_of_title_commit_and_discord(world: World, fake_discord: FakeDiscord) -> None:
    world.env.update(fake_discord.env())
    token = world.env["GITHUB_TOKEN"]
    result = world.run("--task", f"Rotate the key {token} in the config")

    assert result.returncode == 0, result.stderr
    [pull] = world.created_pulls()
    assert pull["title"] == "Rotate the key *** in the config"
    branch = pull["head"]
    assert token not in git(world.remote, "log", "--format=%B", branch)
    assert token not in git(world.remote, "log", "--format=%B", "main")
    assert token not in json.dumps(fake_discord.messages) and fake_discord.embeds_titled("Run completed")
    assert task_hash(f"Rotate the key {token} in the config") in pull["body"]  # the identity is still the real text


def test_a_failed_attempt_is_paid_for_recorded_and_said_on_the_pull_request(world: World, pr: FakePull, fake_discord: FakeDiscord) -> None:
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log("x"))
    world.openai.content = FakeOpenAI.code_reply("evil", [{"path": ".github/workflows/evil.yml", "content": "x"}])

    result = world.run()

    assert result.returncode == 1 and "error:" in result.stderr
    assert tip(world, BRANCH) == red
    [reply] = bot_comments(world)
    assert "This attempt failed at the edits step" in reply and "### Cost receipt" in reply
    [run] = follow_up_runs(world)
    assert run["outcome"] == "failed:edits" and run["pull"] == 1 and len(run["calls"]) == 3  # analysis, code, repair
    assert fake_discord.embeds_titled("Run failed")

    world.openai.content = FIX_REPLY
    again = world.run()
    assert again.returncode == 0, again.stderr
    assert "attempt 2 of 2" in bot_comments(world)[-1] and tip(world, BRANCH) != red


def test_decide_only_hands_a_follow_up_over_and_a_shallow_checkout_does_it(world: World, pr: FakePull) -> None:
    red = tip(world, BRANCH)
    world.github.add_check_run(red, "test", log=failing_log("x"))
    world.push_to_main("NEWS.md", "news\n", "main moves on")  # the PR's fork point is not in a depth-1 clone
    shallow_checkout(world)
    calls = len(world.anthropic.generation_requests)

    decided = world.run("--decide-only", env=light_install(world))

    assert decided.returncode == 0, decided.stderr
    assert "Work to do: a follow-up on https://github.com/octo/repo/pull/1" in decided.stdout
    assert (world.tmp / "output").read_text() == "work=true\n"
    assert len(world.anthropic.generation_requests) == calls and bot_comments(world) == []

    result = world.run()
    assert result.returncode == 0, result.stderr
    assert tip(world, BRANCH) != red and world.remote_file(BRANCH, "app/greeting.py") == FIXED
    [reply] = bot_comments(world)
    assert "Pushed" in reply
    prompt = world.anthropic.generation_requests[-1].json["messages"][0]["content"]
    assert "+def greet(name):" in prompt and "NEWS.md" not in prompt.split("## The original plan")[0]
