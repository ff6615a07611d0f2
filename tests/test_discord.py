"""Discord embeds and their delivery: what reaches the webhook, and what never does."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses import matchers

from automation.reporting.discord import (
    Notifier,
    budget_exhausted_embed,
    embed_length,
    fit_embed,
    fit_message,
    milestone_embed,
    model_retiring_embed,
    monthly_recap_embed,
    plain,
    progress_bar,
    render_text,
    run_completed_embed,
    run_failed_embed,
    run_started_embed,
    text_length,
)

NOW = dt.datetime(2026, 11, 14, 9, 30, tzinfo=dt.timezone.utc)
REPO = "octo/widgets"
TOKEN = "s3cr3t-T0ken-abcdefghijklmnop"
URL = f"https://discord.com/api/webhooks/123456789/{TOKEN}"
POST_URL = f"{URL}?wait=true"


def completed(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "repository": REPO,
        "now": NOW,
        "task": "Add a --verbose flag to the CLI",
        "pr_url": "https://github.com/octo/widgets/pull/42",
        "run_cost_micro": 31_234,
        "month_spent_micro": 4_650_000,
        "budget_micro": 15_000_000,
        "prs_this_month": 7,
        "projected_micro": 9_960_000,
    }
    values.update(overrides)
    return run_completed_embed(**values)


def every_kind() -> dict[str, dict[str, Any]]:
    return {
        "completed": completed(),
        "milestone": milestone_embed(
            repository=REPO, now=NOW, milestone_micro=5_000_000, month_spent_micro=5_010_000, budget_micro=15_000_000
        ),
        "exhausted": budget_exhausted_embed(
            repository=REPO, now=NOW, month_spent_micro=14_900_000, budget_micro=15_000_000, needed_micro=250_000,
            run_worst_micro=400_000,
        ),
        "recap": monthly_recap_embed(
            repository=REPO,
            now=NOW,
            month="2026-10",
            spent_micro=12_000_000,
            budget_micro=15_000_000,
            runs=40,
            prs=30,
            cost_by_model={"claude-sonnet-5-5": 9_000_000, "gpt-6-luna": 3_000_000},
            parked_tasks=["Rewrite the parser"],
            provider_stats="anthropic: 38 ok, 2 overloaded",
        ),
        "failed": run_failed_embed(
            repository=REPO,
            now=NOW,
            step="provider",
            error_kind="rate_limited",
            message="Anthropic is rate limiting this key; the next scheduled run will retry.",
            run_url="https://github.com/octo/widgets/actions/runs/99",
        ),
        "retiring": model_retiring_embed(
            repository=REPO,
            now=NOW,
            model="claude-sonnet-4-5",
            retires_on=dt.date(2026, 11, 30),
            successor="claude-sonnet-5-5",
        ),
        "started": run_started_embed(repository=REPO, now=NOW, task="Add a --verbose flag", model="claude-sonnet-5-5"),
    }


def fields_of(embed: dict[str, Any]) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed["fields"]}


# ---------------------------------------------------------------- payloads


def test_every_kind_has_timestamp_footer_and_its_own_colour() -> None:
    embeds = every_kind()
    assert len({embed["color"] for embed in embeds.values()}) == len(embeds)
    for name, embed in embeds.items():
        assert embed["timestamp"] == "2026-11-14T09:30:00+00:00", name
        month = "2026-10" if name == "recap" else "2026-11"
        assert embed["footer"]["text"] == f"{REPO} · {month}", name


def test_run_completed_says_task_pr_cost_month_prs_and_pace() -> None:
    embed = completed()
    assert embed["description"] == "Add a --verbose flag to the CLI"
    assert embed["url"] == "https://github.com/octo/widgets/pull/42"
    fields = fields_of(embed)
    assert fields["Pull request"] == "https://github.com/octo/widgets/pull/42"
    assert fields["This run"] == "$0.03"
    assert fields["Month to date"] == "$4.65\n▰▰▰▱▱▱▱▱▱▱ 31% of $15.00"
    assert fields["PRs this month"] == "7"
    assert fields["Pace"] == "$9.96 projected by month end"


def test_run_completed_shows_a_cheap_run_and_when_the_budget_runs_out() -> None:
    fields = fields_of(completed(run_cost_micro=4_200, projected_micro=20_000_000, runs_out_on=dt.date(2026, 11, 25)))
    assert fields["This run"] == "$0.0042"
    assert fields["Pace"] == "$20.00 projected by month end; the budget runs out around 2026-11-25"


def test_progress_bar() -> None:
    assert progress_bar(4_650_000, 15_000_000) == "▰▰▰▱▱▱▱▱▱▱ 31% of $15.00"
    assert progress_bar(0, 15_000_000) == "▱▱▱▱▱▱▱▱▱▱ 0% of $15.00"
    assert progress_bar(20_000_000, 15_000_000, width=4) == "▰▰▰▰ 100% of $15.00"


def test_milestone() -> None:
    embed = every_kind()["milestone"]
    assert "Milestone" in embed["title"] and "$5" in embed["title"]
    assert "▰" in fields_of(embed)["Month to date"]
    half = milestone_embed(
        repository=REPO, now=NOW, milestone_micro=7_500_000, month_spent_micro=7_600_000, budget_micro=15_000_000,
        projected_micro=14_000_000,
    )
    assert "$7.50" in half["title"]
    assert fields_of(half)["Pace"] == "$14.00 projected by month end"


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        (NOW, "2026-12-01"),
        (dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.timezone.utc), "2027-01-01"),
        # 20:00 on Jan 31 in New York is already February in UTC.
        (dt.datetime(2027, 1, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "2027-03-01"),
    ],
)
def test_budget_exhausted_says_when_it_resets(now: dt.datetime, reset: str) -> None:
    embed = budget_exhausted_embed(repository=REPO, now=now, month_spent_micro=15_000_000, budget_micro=15_000_000)
    assert "Budget exhausted" in embed["title"]
    assert f"resets on {reset} at 00:00 UTC" in embed["description"]
    assert fields_of(embed)["Resets"] == f"{reset} 00:00 UTC"


def test_budget_exhausted_with_what_the_next_run_needs() -> None:
    embed = every_kind()["exhausted"]
    # the run's worst case to the hundredth of a cent, as `costs` and the dry run state it
    assert "The next run could cost up to $0.4000 (its worst case), its next call up to $0.2500; $0.10 is left." in embed["description"]


def test_monthly_recap() -> None:
    embed = every_kind()["recap"]
    assert "recap" in embed["title"] and "2026-10" in embed["title"]
    fields = fields_of(embed)
    assert fields["Spent"] == "$12.00\n▰▰▰▰▰▰▰▰▱▱ 80% of $15.00"
    assert (fields["Runs"], fields["PRs"], fields["Cost per PR"]) == ("40", "30", "$0.40")
    assert fields["Cost by model"] == "claude-sonnet-5-5: $9.00\ngpt-6-luna: $3.00"
    assert fields["Parked tasks (1)"] == "• Rewrite the parser"
    assert fields["Providers"] == "anthropic: 38 ok, 2 overloaded"


def test_monthly_recap_of_a_quiet_month() -> None:
    embed = monthly_recap_embed(
        repository=REPO, now=NOW, month="2026-10", spent_micro=0, budget_micro=15_000_000, runs=0, prs=0, cost_by_model={}
    )
    fields = fields_of(embed)
    assert fields["Cost per PR"] == "—" and fields["Cost by model"] == "—"
    assert not any(name.startswith("Parked") or name == "Providers" for name in fields)


def test_run_failed_names_step_kind_message_and_run_without_tracebacks_or_secrets() -> None:
    embed = every_kind()["failed"]
    assert "failed" in embed["title"]
    fields = fields_of(embed)
    assert fields["Step"] == "provider" and fields["Error"] == "rate_limited"
    assert fields["Run"] == "https://github.com/octo/widgets/actions/runs/99"
    assert embed["description"].startswith("Anthropic is rate limiting")

    leaky = run_failed_embed(
        repository=REPO,
        now=NOW,
        step="git",
        error_kind="GitError",
        message=f"push failed for https://x-access-token:ghp_abcdef123456@github.com/o/r posting to {URL}\n"
        "Traceback (most recent call last):\n  File \"gitops.py\", line 3\nsk-ant-key-123456",
        secrets=["sk-ant-key-123456", "ghp_abcdef123456"],
    )
    text = json.dumps(leaky)
    for secret in (TOKEN, "ghp_abcdef123456", "sk-ant-key-123456", "Traceback", "gitops.py"):
        assert secret not in text
    assert leaky["description"].startswith("push failed for https://***@github.com/o/r")


def test_model_retiring() -> None:
    embed = every_kind()["retiring"]
    assert "claude-sonnet-4-5" in embed["title"]
    assert "2026-11-30 (in 16 days)" in embed["description"]
    assert "claude-sonnet-5-5" in embed["description"]
    assert fields_of(embed) == {"Model": "claude-sonnet-4-5", "Retires": "2026-11-30", "Successor": "claude-sonnet-5-5"}


def test_run_started() -> None:
    embed = every_kind()["started"]
    assert "started" in embed["title"]
    assert fields_of(embed) == {"Model": "claude-sonnet-5-5"}


def test_render_text_shows_what_would_be_posted() -> None:
    text = render_text(completed())
    assert text.splitlines()[:3] == [
        "✅ Run completed: pull request opened",
        "Add a --verbose flag to the CLI",
        "Pull request: https://github.com/octo/widgets/pull/42",
    ]
    assert "Month to date: $4.65\n  ▰▰▰▱▱▱▱▱▱▱ 31% of $15.00" in text
    assert text.endswith(f"— {REPO} · 2026-11")


def test_a_task_cannot_ping_everyone() -> None:
    (message,) = fit_message([completed(task="@everyone <@&123> free nitro")])
    assert message["allowed_mentions"] == {"parse": []}
    assert "content" not in message


# ---------------------------------------------------------------- limits

LIMITS = {"title": 256, "description": 4096, "footer": 2048}
texts = st.text(min_size=0, max_size=9000) | st.builds(lambda c, n: c * n, st.sampled_from(["a", "word ", "💰", "\n"]), st.integers(0, 9000))


def assert_within_limits(embed: dict[str, Any]) -> None:
    for key in ("title", "description"):
        if key in embed:
            assert 0 < text_length(embed[key]) <= LIMITS[key]
    assert text_length(embed["footer"]["text"]) <= LIMITS["footer"]
    assert len(embed.get("fields", [])) <= 25
    total = text_length(embed.get("title", "")) + text_length(embed.get("description", ""))
    total += text_length(embed["footer"]["text"])
    for field in embed.get("fields", []):
        assert 0 < text_length(field["name"]) <= 256
        assert 0 < text_length(field["value"]) <= 1024
        total += text_length(field["name"]) + text_length(field["value"])
    assert total <= 6000


def assert_cut_cleanly(original: str, fitted: str) -> None:
    original = original.strip()
    if fitted != original:
        assert fitted.endswith("…")
        assert original.startswith(fitted[:-1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task=texts, analysis=texts, footer=texts, many=st.lists(st.tuples(texts, texts), max_size=40))
def test_every_embed_and_message_respects_discords_limits(
    task: str, analysis: str, footer: str, many: list[tuple[str, str]]
) -> None:
    raw = {
        "title": task,
        "description": analysis,
        "footer": {"text": footer},
        "fields": [{"name": name, "value": value} for name, value in many],
    }
    fitted = fit_embed(raw)
    assert_within_limits(fitted)
    assert fit_embed(fitted) == fitted
    assert_cut_cleanly(task, fitted.get("title", ""))
    if fitted.get("description"):
        assert_cut_cleanly(analysis, fitted["description"])

    built = [
        completed(task=task, pr_url="https://github.com/o/r/pull/1"),
        run_failed_embed(repository=REPO, now=NOW, step="edits", error_kind="invalid_reply", message=analysis, task=task),
        monthly_recap_embed(
            repository=footer or REPO, now=NOW, month="2026-10", spent_micro=1, budget_micro=2, runs=1, prs=1,
            cost_by_model={name: 1 for name, _ in many}, parked_tasks=[value for _, value in many],
            provider_stats=analysis,
        ),
        run_started_embed(repository=REPO, now=NOW, task=task),
    ]
    for embed in built:
        assert_within_limits(embed)
    assert_cut_cleanly(plain(task), built[0].get("description", ""))

    embeds = built * 4 + [fitted] * 3
    messages = fit_message(embeds)
    assert [embed for message in messages for embed in message["embeds"]] == [fit_embed(e) for e in embeds]
    for message in messages:
        assert message["allowed_mentions"] == {"parse": []}
        assert 1 <= len(message["embeds"]) <= 10
        assert sum(embed_length(embed) for embed in message["embeds"]) <= 6000


def test_fields_past_25_are_summarised_and_empty_ones_filled() -> None:
    embed = fit_embed({"title": "t", "fields": [{"name": "", "value": ""}] + [{"name": str(i), "value": "v"} for i in range(30)]})
    assert len(embed["fields"]) == 25
    assert embed["fields"][0] == {"name": "—", "value": "—"}
    assert embed["fields"][-1]["value"] == "7 more not shown"


def test_long_text_is_cut_at_a_word_with_an_ellipsis() -> None:
    embed = completed(task="word " * 2000)
    assert embed["description"].endswith("word…")
    assert text_length(embed["description"]) <= 4096


def test_eleven_embeds_make_two_messages() -> None:
    messages = fit_message([completed()] * 11)
    assert [len(message["embeds"]) for message in messages] == [10, 1]


# ---------------------------------------------------------------- delivery


class Recorder:
    """A fake sleep and log that remember what they were asked."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.lines: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def notifier(self, url: str | None = URL, **kwargs: Any) -> Notifier:
        return Notifier(url, sleep=self.sleep, log=self.log, **kwargs)

    def assert_no_secret(self) -> None:
        for line in self.lines:
            assert TOKEN not in line and "123456789" not in line


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@responses.activate
def test_posts_with_wait_true_and_no_mentions(rec: Recorder) -> None:
    responses.post(
        POST_URL,
        json={"id": "1"},
        match=[matchers.query_param_matcher({"wait": "true"}), matchers.json_params_matcher({"embeds": [completed()], "allowed_mentions": {"parse": []}})],
    )
    assert rec.notifier().notify([completed()]) is True
    assert len(responses.calls) == 1
    assert rec.lines == [] and rec.sleeps == []


@responses.activate
def test_wait_true_is_added_to_an_existing_query(rec: Recorder) -> None:
    responses.post(URL, json={"id": "1"}, match=[matchers.query_param_matcher({"thread_id": "777", "wait": "true"})])
    assert rec.notifier(f"{URL}?thread_id=777").notify([completed()]) is True
    assert responses.calls[0].request.url == f"{URL}?thread_id=777&wait=true"


@responses.activate
def test_a_429_waits_retry_after_then_succeeds(rec: Recorder) -> None:
    responses.post(POST_URL, status=429, json={"message": "You are being rate limited.", "retry_after": 1.25, "global": False})
    responses.post(POST_URL, json={"id": "1"})
    assert rec.notifier().notify([completed()]) is True
    assert rec.sleeps == [1.25]
    assert len(responses.calls) == 2


@responses.activate
def test_a_429_can_say_retry_after_in_the_header(rec: Recorder) -> None:
    responses.post(POST_URL, status=429, headers={"Retry-After": "3"}, body="slow down")
    responses.post(POST_URL, json={"id": "1"})
    assert rec.notifier().notify([completed()]) is True
    assert rec.sleeps == [3.0]


@responses.activate
def test_a_storm_of_500s_is_bounded_and_never_raises(rec: Recorder) -> None:
    responses.post(POST_URL, status=500, body="oops")
    assert rec.notifier(max_attempts=4).notify([completed()] * 15) is False
    assert len(responses.calls) == 4  # the second message is not attempted
    assert rec.sleeps == [1.0, 2.0, 4.0]
    assert len(rec.lines) == 1 and "after 4 attempts" in rec.lines[0]


@responses.activate
@pytest.mark.parametrize(("status", "code"), [(404, 10015), (401, 50027)])
def test_a_deleted_webhook_warns_once_and_stops_trying(rec: Recorder, status: int, code: int) -> None:
    responses.post(POST_URL, status=status, json={"message": "Unknown Webhook", "code": code})
    notifier = rec.notifier()
    assert notifier.notify([completed()]) is False
    assert notifier.notify([completed()]) is False
    assert len(responses.calls) == 1
    assert len(rec.lines) == 1
    assert "update the DISCORD_WEBHOOK_URL secret" in rec.lines[0] and str(code) in rec.lines[0]
    assert not notifier.enabled
    rec.assert_no_secret()


@responses.activate
def test_other_client_errors_are_not_retried(rec: Recorder) -> None:
    responses.post(POST_URL, status=400, json={"message": "Invalid Form Body", "code": 50035})
    notifier = rec.notifier()
    assert notifier.notify([completed()]) is False
    assert len(responses.calls) == 1 and notifier.enabled
    assert "HTTP 400, code 50035: Invalid Form Body" in rec.lines[0]


@responses.activate
def test_connection_errors_retry_then_warn_without_the_url(rec: Recorder) -> None:
    leak = requests.ConnectionError(f"HTTPSConnectionPool: Max retries exceeded with url: {POST_URL}")
    responses.post(POST_URL, body=leak)
    assert rec.notifier(max_attempts=3).notify([completed()]) is False
    assert len(responses.calls) == 3
    assert rec.sleeps == [1.0, 2.0]
    assert rec.lines == ["Discord notification not delivered after 3 attempts (could not reach Discord (ConnectionError))"]
    rec.assert_no_secret()


def test_an_unexpected_error_is_swallowed_without_the_url(rec: Recorder) -> None:
    class Broken(requests.Session):
        def post(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"bug while posting to {URL}")

    assert rec.notifier(session=Broken()).notify([completed()]) is False
    assert rec.lines == ["Discord notification skipped (RuntimeError)"]


def test_without_a_url_notifications_are_off_said_once(rec: Recorder) -> None:
    notifier = rec.notifier(None)
    assert notifier.notify([completed()]) is False
    assert rec.notifier("  ").enabled is False
    assert notifier.notify([completed()]) is False
    assert rec.lines == ["Discord notifications are off (DISCORD_WEBHOOK_URL is not set)"]


@responses.activate
def test_an_empty_rate_limit_bucket_delays_the_next_message_only(rec: Recorder) -> None:
    responses.post(POST_URL, json={"id": "1"}, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.5"})
    big = completed(task="x" * 4000)
    assert rec.notifier().notify([big, big]) is True
    assert len(responses.calls) == 2
    assert rec.sleeps == [0.5]


@responses.activate
def test_a_long_rate_limit_gives_up_instead_of_holding_the_job(rec: Recorder) -> None:
    responses.post(POST_URL, status=429, json={"retry_after": 3600.0, "global": True})
    assert rec.notifier().notify([completed()]) is False
    assert rec.sleeps == [] and len(responses.calls) == 1


# Discord's Markdown: a masked link [text](url), optionally <url>, rendered as ``text`` pointing at url.
MASKED_LINK = re.compile(r"(?<!\\)\[([^\]]*)(?<!\\)\]\(<?(https?://[^)>\s]+)")
DISGUISED = "Fix [https://github.com/o/r/pull/1](https://evil.example/steal) and [docs](<https://evil.example/d>)"


def test_a_link_in_task_text_cannot_disguise_its_target_in_any_embed() -> None:
    shown = [
        completed(task=DISGUISED, pr_url="https://github.com/o/r/pull/1")["description"],
        run_started_embed(repository=REPO, now=NOW, task=DISGUISED)["description"],
        run_failed_embed(repository=REPO, now=NOW, step="edits", error_kind="invalid_reply", message=DISGUISED,
                         task=DISGUISED)["description"],
        *(f["value"] for f in run_failed_embed(repository=REPO, now=NOW, step="edits", error_kind="x", message="m",
                                              task=DISGUISED)["fields"]),
        *(f["value"] for f in monthly_recap_embed(repository=REPO, now=NOW, month="2026-10", spent_micro=1, budget_micro=2,
                                                 runs=1, prs=1, cost_by_model={DISGUISED: 1}, parked_tasks=[DISGUISED])["fields"]),
    ]
    for text in shown:
        assert MASKED_LINK.search(text) is None, text
    assert all("https://evil.example/steal" in text for text in shown if "Fix" in text)
    literal = re.sub(r"\\(.)", r"\1", shown[0])  # what Discord shows once its escapes are read
    assert literal == DISGUISED


def test_other_markdown_in_task_text_shows_as_typed() -> None:
    task = "# Big\n||spoiler|| *bold* `code` ~~gone~~ > quote <@&123> see https://example.com/a_b_c"
    text = completed(task=task, pr_url="https://github.com/o/r/pull/1")["description"]
    assert re.sub(r"\\(.)", r"\1", text) == task
    assert "https://example.com/a_b_c" in text  # a bare URL stays a link, its target in plain sight
