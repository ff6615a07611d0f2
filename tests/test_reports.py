"""reports.py: the PR body within GitHub's limit, and money shown as it really stands."""

from __future__ import annotations

import pytest

from automation.core.prices import Usage
from automation.money.ledger import CallRecord, Ledger, RunRecord
from automation.reporting.reports import GITHUB_BODY_LIMIT, job_summary, progress_bar, pull_request_body, spent_usd
from automation.repo.github import BotPull
from automation.steps import followups
from tests.markdown_render import visible_text

MARKER = "<!-- ai-orchestration:task=abc123 -->"
PULL = BotPull(number=7, url="https://github.example/o/r/pull/7", title="t", state="open", merged=False, head="ai/t", task_hash=None)
FOLLOW_UP = followups.Decision(followups.Work(PULL, (), (), 0), "fix", "")
RECORD = RunRecord(
    id="r1", started_at="2026-11-21T03:17:00Z", task="t",
    calls=(CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=1000, output_tokens=100), 4_500, 900),),
)


def body(summary: str, analysis: str) -> str:
    return pull_request_body(
        summary=summary, analysis=analysis, analysis_model="claude-sonnet-5-5", files=[("app/x.py", "create")],
        refused=(), record=RECORD, ledger=Ledger(month="2026-11", budget_micro_usd=15_000_000).with_run(RECORD),
        budget_micro_usd=15_000_000, link="https://github.example/o/r/actions/runs/1", marker=MARKER,
    )


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_body_that_fits_is_left_alone() -> None:
    text = body("Short summary.", "## Changes\nA few words.")
    assert "shortened" not in text and text.startswith("> Short summary.\n") and "> A few words." in text


@pytest.mark.parametrize("character", ["a", "é", "😀"])  # one, one and two UTF-16 units
def test_long_prose_is_shortened_but_the_receipt_and_marker_are_whole(character: str) -> None:
    text = body(character * 40_000, "## Changes\n" + character * 50_000)
    assert units(text) <= GITHUB_BODY_LIMIT
    assert "shortened here" in text and "## Files changed" in text and "- `app/x.py` (create)" in text
    assert "| **this run** | | | | | | **$0.004500** |" in text and text.endswith(MARKER + "\n")
    assert "\ufffd" not in text  # no half characters


def test_the_analysis_is_cut_before_the_summary() -> None:
    text = body("The summary stays whole.", "x" * 70_000)
    assert text.startswith("> The summary stays whole.\n") and units(text) <= GITHUB_BODY_LIMIT


def test_a_code_fence_left_open_by_the_cut_is_closed() -> None:
    text = body("s", "## Changes\n```python\n" + "print('x')\n" * 8_000)
    analysis = text.split("## Analysis (claude-sonnet-5-5)", 1)[1].split("## Files changed", 1)[0]
    assert analysis.count("```") % 2 == 0 and "shortened here" in analysis


def test_spend_is_never_rounded_up_to_the_budget() -> None:
    assert spent_usd(14_950_000, 15_000_000) == "$14.95"
    assert spent_usd(14_996_100, 15_000_000) == "$14.9961"  # cents would say $15.00
    assert spent_usd(15_000_000, 15_000_000) == "$15.00"
    assert progress_bar(14_996_100, 15_000_000).endswith(" 99% of $15.00")
    assert progress_bar(14_996_100, 15_000_000).count("▰") == 9
    # rounded down exactly: 29% of the budget is 29%, not 28% (0.29 * 100 is 28.999… in floats)
    assert progress_bar(4_350_000, 15_000_000) == "▰▰▱▱▱▱▱▱▱▱ 29% of $15.00"
    assert progress_bar(8_550_000, 15_000_000) == "▰▰▰▰▰▱▱▱▱▱ 57% of $15.00"
    assert [progress_bar(cents * 10_000, 100_000_000).split()[1] for cents in range(0, 10_001, 100)] == [
        f"{percent}%" for percent in range(101)
    ]
    assert progress_bar(15_000_000, 15_000_000).startswith("▰" * 10 + " 100%")


# What a model's text can do to the Markdown after it, and the bot's sections it must not hide.
HIJACKS = {
    "comment at the end": "All done.\n<!--",
    "comment mid-line": "All done. <!--",
    "unclosed details": "All done.\n<details><summary>more</summary>\n",
    "inline details": "All done <details>",
    "unclosed fence": "All done.\n```text\n",
    "unclosed tilde fence": "All done.\n~~~~\n~~~",
    "script block": "<script>\nAll done.",
    "forged file list": "All done.\n\n## Files changed\n\n- `README.md` (update)\n<!--",
    "raw html": '<div align="center"><img src="x"><a href="https://evil.test">click</a>',
}


@pytest.mark.parametrize("text", HIJACKS.values(), ids=HIJACKS.keys())
def test_model_text_cannot_hide_the_bots_sections_of_a_pr_body(text: str) -> None:
    for rendered in (body(text, "analysis"), body("summary", text)):
        shown = visible_text(rendered)
        assert "app/x.py (create)" in shown and "Files changed" in shown and "Cost receipt" in shown
        assert "this run" in shown and "Opened by this workflow run" in shown
        assert "<!--" not in rendered.split("## Cost receipt")[0].replace("&lt;!--", "")
        assert shown.count("Files changed") <= 2 and "&lt;" not in shown
        assert rendered.rstrip().endswith(MARKER)


@pytest.mark.parametrize("text", HIJACKS.values(), ids=HIJACKS.keys())
def test_model_text_cannot_hide_a_follow_up_replys_receipt_or_a_job_summarys(text: str) -> None:
    reply = followups.reply(FOLLOW_UP, result=text, summary=text, receipt="| receipt |", pull_cost_micro_usd=10_000,
                            max_attempts=3, answered=["c1"], attempt=True)
    shown = visible_text(reply)
    assert "Cost receipt" in shown and "This pull request so far" in shown and "&lt;" not in shown
    summary = job_summary(task=text, outcome="failed:edits", pr_url=None, error=text, record=RECORD,
                          ledger=Ledger(month="2026-11", budget_micro_usd=15_000_000).with_run(RECORD), budget_micro_usd=15_000_000)
    shown = visible_text(summary)
    assert "this run" in shown and "Month to date" in shown and "&lt;" not in shown


def test_status_counts_checked_runs_and_the_pull_requests_they_opened() -> None:
    import datetime as dt
    from dataclasses import replace

    from automation.core.config import Config
    from automation.money.ledger import ChecksRecord
    from automation.reporting.reports import render_status, status_data

    ledger = Ledger(month="2026-11", budget_micro_usd=15_000_000)
    for index, (result, pr) in enumerate([("passed", True), ("failed", True), ("failed", False)]):
        ledger = ledger.with_run(replace(RECORD, id=f"r{index}", checks=ChecksRecord(result, repairs=1),
                                         pr_url=f"https://github.com/o/r/pull/{index}" if pr else None))
    data = status_data(Config(), ledger, dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc))

    assert data["checks"] == {"runs": 3, "passed": 1, "failed": 2, "repairs": 3, "pull_requests_passed": 1,
                              "pull_requests_failed": 1}
    assert ("  checks: 3 runs checked (1 passed, 2 failed, 3 repairs); pull requests opened with the checks passing: 1, "
            "failing: 1") in render_status(data, ledger, 15_000_000)


def test_paths_and_refusals_that_quote_the_model_cannot_hide_the_receipt() -> None:
    text = pull_request_body(
        summary="s", analysis="a", analysis_model="m", files=[("docs/a<details>.md", "create")],
        refused=("notes/x.md: denied by edits.deny (notes/) <!--",), record=RECORD,
        ledger=Ledger(month="2026-11", budget_micro_usd=15_000_000).with_run(RECORD), budget_micro_usd=15_000_000,
        link=None, marker=MARKER,
    )
    shown = visible_text(text)
    assert "Cost receipt" in shown and "this run" in shown and "docs/a<details>.md (create)" in shown
