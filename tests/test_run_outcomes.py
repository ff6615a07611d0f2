"""What the money bought, end to end: the real ``python -m automation run`` in a subprocess opens
pull requests against the loopback GitHub, a follow-up and a human push land on one, reviewers
merge two and close one, and the next run reads their fate. Then `status --json`, OpenMetrics,
the dashboard and the monthly recap must all show the figures computed here by hand from the
ledger's own run rows.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import statistics
from pathlib import Path

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from automation.cli import main
from automation.core.config import load_config
from automation.core.prices import format_usd
from automation.money.ledger import CLOSED_RUNS_KEPT, as_of, from_text, pull_number, rollover
from automation.reporting import alerts
from automation.reporting import outcomes as outcome_report
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.spending import PINNED_MODELS
from tests.test_run import World, git, world  # noqa: F401
from tests.test_run_followups import FIX_PLAN, FIX_REPLY, failing_log

TASKS = """# Tasks

## Features
- [ ] Add a greeting module
- [ ] Say hello in French too

## Docs
- [ ] Write the changelog
- [ ] kind:chore Tidy the README
"""
UNUSABLE = "I would rather not change any file."


def cli(*argv: str, now: dt.datetime) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env={}, now=now, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def later(stamp: str, hours: int) -> str:
    moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_ok(world: World) -> str:
    result = world.run()
    assert result.returncode == 0, result.stderr
    return result.stdout


def cost_of(runs: list[dict], url: str, task: str) -> int:
    """By hand: the runs that name the PR, and the failed runs of its task (no PR of their own)."""
    return sum(call["cost_micro_usd"] for run in runs for call in run["calls"]
               if run.get("pr_url") == url or (run["task"] == task and not run.get("pr_url")))


def test_outcomes_reach_status_metrics_dashboard_and_recap(world: World, tmp_path: Path) -> None:
    world.push_to_main("docs/TASKS.md", TASKS, "tasks by kind")
    world.push_to_main(".github/ai-orchestration.yml", PINNED_MODELS, "a code model that never retires")
    git(world.checkout, "pull", "-q", env=world.env)
    greeting_reply = world.openai.content
    run_ok(world)  # PR 1: Add a greeting module
    world.github.follow_remote(world.remote, world.env)
    world.openai.content = UNUSABLE  # a failed attempt at the next task, and its repair request
    failed = world.run()
    assert failed.returncode == 1, failed.stderr
    world.openai.content = greeting_reply
    run_ok(world)  # PR 2: Say hello in French too
    run_ok(world)  # PR 3: Write the changelog
    assert [pull.title for pull in world.github.pulls] == [
        "Add a greeting module", "Say hello in French too", "Write the changelog"]

    # a red check on PR 2: the next run is a follow-up with one fix-up commit
    world.github.add_check_run(world.github.head_sha_of(world.github.pull(2)), "test", log=failing_log("x"))
    world.anthropic.text, world.openai.content = FIX_PLAN, FIX_REPLY
    assert "Follow-up: #2" in run_ok(world)
    # then a human rewrites one of the bot's lines on PR 2
    human = tmp_path / "human"
    git(tmp_path, "clone", "-q", "-b", "ai/say-hello-in-french-too", str(world.remote), str(human), env=world.env)
    greeting = (human / "app" / "greeting.py").read_text().replace("Goodbye", "Bye")
    (human / "app" / "greeting.py").write_text(greeting)
    git(human, "commit", "-qam", "Shorter farewell", env=world.env)
    git(human, "push", "-q", "origin", "HEAD", env=world.env)
    # reviewers: PR 1 merged after 3 hours, PR 2 after 5, PR 3 closed unmerged after 1
    for number, merged, hours in ((1, True, 3), (2, True, 5), (3, False, 1)):
        pull = world.github.pull(number)
        world.github.decide(number, merged=merged, at=later(pull.created_at, hours))

    world.openai.content = greeting_reply
    log = run_ok(world)  # PR 4: kind:chore Tidy the README; reads the three decided PRs first
    print(log)
    # PR 1: commits + files; PR 2 (a human pushed): commits + files + compare; PR 3 (closed): commits
    assert "Pull request outcomes: 6 requests to GitHub for the PRs that changed" in log
    assert world.github.pull(4).title == "kind:chore Tidy the README"

    ledger = world.ledger()
    runs = ledger["runs"]
    urls = {pull.number: f"https://github.com/octo/repo/pull/{pull.number}" for pull in world.github.pulls}
    titles = {pull.number: pull.title for pull in world.github.pulls}
    cost = {n: cost_of(runs, urls[n], titles[n]) for n in urls}
    assert sum(cost.values()) == sum(c["cost_micro_usd"] for run in runs for c in run["calls"])  # every run bought a PR
    failed_run = next(run for run in runs if run["outcome"].startswith("failed"))
    assert failed_run["task"] == titles[2] and cost[2] > sum(c["cost_micro_usd"] for c in failed_run["calls"]) > 0
    per_merged = (cost[1] + cost[2] + cost[3]) // 2
    records = {pull_number(pull["url"]): pull for pull in ledger["pulls"]}
    assert {n: (r["state"], r.get("humans_pushed")) for n, r in records.items()} == {
        1: ("merged", False), 2: ("merged", True), 3: ("closed", False)}  # PR 4 is read by the next run
    # PR 1: greeting.py's two lines and the tick (one line out, one in); PR 2: six lines of
    # greeting.py and the tick, of which the human rewrote one
    assert (records[1]["lines_changed"], records[1]["lines_survived"]) == (4, 4)
    assert (records[2]["lines_changed"], records[2]["lines_survived"]) == (8, 7)

    now = dt.datetime.now(dt.timezone.utc)
    code, raw, err = cli("status", "--repo", str(world.checkout), "--json", now=now)
    assert code == 0, err
    data = json.loads(raw)
    assert (data["prs_merged"], data["prs_closed_unmerged"], data["prs_open"]) == (2, 1, 1)
    assert data["merge_rate"] == round(2 / 3, 4)
    assert data["cost_per_merged_pr_usd"] == per_merged / 1e6
    assert data["outcomes"]["median_hours_to_merge"] == statistics.median([3, 5])
    assert (data["outcomes"]["follow_ups"], data["outcomes"]["humans_pushed"]) == (1, 1)
    assert (data["outcomes"]["lines_changed"], data["outcomes"]["lines_survived"]) == (12, 11)
    kinds = data["by_kind"]
    assert set(kinds) == {"features", "docs", "chore"}
    assert (kinds["features"]["prs_merged"], kinds["features"]["merge_rate"]) == (2, 1.0)
    assert kinds["features"]["cost_per_merged_pr_usd"] == (cost[1] + cost[2]) // 2 / 1e6
    assert (kinds["docs"]["prs_closed_unmerged"], kinds["docs"]["merge_rate"], kinds["docs"]["cost_per_merged_pr_usd"]) == (1, 0.0, None)
    assert (kinds["chore"]["prs_open"], kinds["chore"]["merge_rate"]) == (1, None)
    [(pair, group)] = data["by_model"].items()
    assert pair == "claude-sonnet-5-5 × gpt-6-luna" and group["cost_per_merged_pr_usd"] == per_merged / 1e6
    [month] = data["outcomes"]["by_month"]
    assert (month["month"], month["prs_merged"]) == (now.strftime("%Y-%m"), 2)

    code, text, err = cli("status", "--repo", str(world.checkout), now=now)
    assert code == 0, err
    print(text)
    assert (f"pull requests on record: 2 merged, 1 closed unmerged, 1 open (67% merged); "
            f"{format_usd(per_merged)} per merged PR; median 4 h to merge") in text
    assert f"features: 2 merged of 2, {format_usd((cost[1] + cost[2]) // 2)} per merged PR" in text

    code, metrics, err = cli("status", "--repo", str(world.checkout), "--format", "openmetrics", now=now)
    assert code == 0, err
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(metrics) for s in family.samples}
    assert found[("ai_orchestration_outcome_pull_requests", (("state", "merged"),))] == 2
    assert found[("ai_orchestration_outcome_pull_requests", (("state", "closed_unmerged"),))] == 1
    assert found[("ai_orchestration_outcome_pull_requests", (("state", "open"),))] == 1
    assert found[("ai_orchestration_outcome_merge_ratio", ())] == round(2 / 3, 4)
    assert found[("ai_orchestration_outcome_cost_per_merged_pr_usd", ())] == per_merged / 1e6
    assert found[("ai_orchestration_kind_cost_per_merged_pr_usd", (("kind", "features"),))] == (cost[1] + cost[2]) // 2 / 1e6
    assert ("ai_orchestration_kind_cost_per_merged_pr_usd", (("kind", "docs"),)) not in found  # nothing merged

    code, _, err = cli("dashboard", "--repo", str(world.checkout), "--out", str(tmp_path / "site"), now=now)
    assert code == 0, err
    page = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    shown = {key: html.unescape(text) for key, text in re.findall(r'<dd data-figure="([a-z_]+)">([^<]*)</dd>', page)}
    assert (shown["prs_merged"], shown["prs_closed_unmerged"], shown["prs_open"], shown["merge_rate"]) == ("2", "1", "1", "67%")
    assert shown["cost_per_merged_pr_usd"] == format_usd(per_merged)
    kind_chart = re.search(r'<figure id="chart-cost-per-merged-kind".*?</figure>', page, re.S)
    assert kind_chart and 'class="series' in kind_chart[0]
    assert (f"<tr><td>features</td><td>2</td><td>0</td><td>0</td><td>100% of 2</td><td>{format_usd((cost[1] + cost[2]) // 2)}</td>"
            "<td>4 h</td>") in html.unescape(kind_chart[0])

    # the first run of next month owes the recap: what last month's PRs came to
    closed = from_text(world.remote_file("main", "token_budget.json") or "", "token_budget.json")
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    rolled = rollover(closed, next_month.strftime("%Y-%m"))
    config = load_config(None, world.checkout, now.date())
    _, embeds = alerts.before_run(rolled, closed, config, next_month, "octo/repo")
    [recap] = [embed for embed in embeds if embed["title"].startswith("📊 Monthly recap")]
    fields = {field["name"]: field["value"] for field in recap["fields"]}
    assert fields["What the money bought"] == f"2 merged of 4, {format_usd(per_merged)} per merged PR"
    # a week on, the closed month's rows go and its spend is in each record: nothing changes
    frozen = as_of(rolled, next_month + CLOSED_RUNS_KEPT)
    assert frozen.closed_runs == () and frozen.runs == ()
    assert {pull.url: sum(pull.spent.values()) for pull in frozen.pulls} == {urls[n]: cost[n] for n in urls}
    assert outcome_report.month_headline(frozen, closed.month) == fields["What the money bought"]


EXPERIMENT = """models:
  experiment:
    code: [gpt-6-luna, gpt-5.6-luna]
"""


def test_an_experiment_alternates_code_models_and_reports_both(world: World, fake_github: FakeGitHub) -> None:
    world.push_to_main(".github/ai-orchestration.yml", EXPERIMENT, "compare two code models")
    world.push_to_main("docs/TASKS.md", TASKS, "tasks by kind")
    git(world.checkout, "pull", "-q", env=world.env)
    for _ in range(3):
        run_ok(world)
    models = [call["model"] for run in world.ledger()["runs"] for call in run["calls"] if call["step"] == "code"]
    assert models == ["gpt-6-luna", "gpt-5.6-luna", "gpt-6-luna"]  # run by run, in turn
    assert [run["arm"] for run in world.ledger()["runs"]] == ["code=gpt-6-luna", "code=gpt-5.6-luna", "code=gpt-6-luna"]
    for number, merged in ((1, True), (2, True), (3, False)):
        world.github.decide(number, merged=merged, at=later(world.github.pull(number).created_at, 2))
    run_ok(world)  # the fourth task, on gpt-5.6-luna; reads the three decided PRs
    runs = world.ledger()["runs"]
    spent = {run["pr_url"]: sum(c["cost_micro_usd"] for c in run["calls"]) for run in runs}

    code, raw, err = cli("status", "--repo", str(world.checkout), "--json", now=dt.datetime.now(dt.timezone.utc))
    assert code == 0, err
    experiment = json.loads(raw)["outcomes"]["experiment"]
    assert experiment["arms"] == ["code=gpt-6-luna", "code=gpt-5.6-luna"]
    mini, other = experiment["by_arm"]["code=gpt-6-luna"], experiment["by_arm"]["code=gpt-5.6-luna"]
    url = "https://github.com/octo/repo/pull/{}".format
    assert (mini["prs_merged"], mini["prs_closed_unmerged"], mini["merge_rate"]) == (1, 1, 0.5)
    assert mini["cost_per_merged_pr_usd"] == (spent[url(1)] + spent[url(3)]) / 1e6
    assert (other["prs_merged"], other["prs_open"], other["merge_rate"]) == (1, 1, 1.0)
    assert other["cost_per_merged_pr_usd"] == spent[url(2)] / 1e6
    code, text, err = cli("status", "--repo", str(world.checkout), now=dt.datetime.now(dt.timezone.utc))
    assert "experiment (models.experiment), side by side:" in text
    assert "code=gpt-6-luna: 1 merged of 2" in text and "(50% merged of 2 decided PRs, 0 open)" in text
    assert "code=gpt-5.6-luna: 1 merged of 2" in text and "(100% merged of 1 decided PR, 1 open)" in text
