"""PR outcomes piece by piece: the ledger's ``pulls`` section (schema 4), what a PR cost, the
requests a run makes on a repository with 200 bot PRs (real PyGithub against the loopback
GitHub), task kinds, the ``models.experiment`` and ``outcomes`` settings."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from functools import partial
from typing import Any

import pytest

from automation.core.config import parse_config
from automation.core.errors import ConfigError, LedgerError
from automation.core.prices import Usage
from automation.models import experiment
from automation.money import outcomes
from automation.money.ledger import (
    CallRecord,
    Ledger,
    PullOutcome,
    RunRecord,
    as_of,
    from_text,
    merge,
    new_ledger,
    rollover,
    to_text,
)
from automation.repo import github as gh
from automation.repo import outcomes as pull_outcomes
from automation.repo.gitops import BOT_EMAIL
from automation.repo.tasks import read_tasks, task_kind
from tests.fakes.github_server import FakeGitHub, FakePull
from tests.test_github import FAST

NOW = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()
URL = "https://github.com/octo/repo/pull/{}".format


def call(step: str, model: str, cost: int, outcome: str = "ok") -> CallRecord:
    return CallRecord(step, model, "anthropic" if model.startswith("claude") else "openai", Usage(10, 5), cost, 100, outcome)


def task_run(run_id: str, at: str, task: str, cost: int, *, pr: int | None = None, kind: str = "", arm: str = "",
             code: str = "gpt-4o-mini") -> RunRecord:
    return RunRecord(id=run_id, started_at=at, task=task, outcome="pr_opened" if pr else "failed:edits",
                     pr_url=URL(pr) if pr else None, task_kind=kind, arm=arm,
                     calls=(call("analysis", "claude-sonnet-5-5", cost // 2), call("code", code, cost - cost // 2)))


def follow_up(run_id: str, at: str, pr: int, cost: int) -> RunRecord:
    return RunRecord(id=run_id, started_at=at, task="t", outcome="follow_up_pushed", pr_url=URL(pr), kind="follow_up",
                     pull=pr, calls=(call("analysis", "claude-sonnet-5-5", cost),))


def month_ledger() -> Ledger:
    """November: a failed attempt at task A then its PR 1 (with a follow-up), PR 2 for task B."""
    ledger = new_ledger(NOW, 15_000_000)
    for run in (
        task_run("r1", "2026-11-02T01:00:00Z", "Task A", 1_000),
        task_run("r2", "2026-11-02T02:00:00Z", "Task A", 3_000, pr=1, kind="features"),
        follow_up("r3", "2026-11-03T02:00:00Z", 1, 500),
        task_run("r4", "2026-11-04T02:00:00Z", "Task B", 2_000, pr=2, kind="docs"),
        task_run("r5", "2026-11-05T02:00:00Z", "Task C", 700),  # bought nothing (yet)
        follow_up("r6", "2026-11-06T02:00:00Z", 9, 300),  # on a PR opened before PRs were recorded
    ):
        ledger = ledger.with_run(run)
    return ledger


# --- the ledger section -------------------------------------------------------------------


def test_a_pull_request_costs_its_runs_its_follow_ups_and_the_failed_attempts_before_it() -> None:
    pulls = {pull.number: pull for pull in outcomes.on_record(month_ledger())}
    assert set(pulls) == {1, 2}  # known from the runs alone, before GitHub was read; #9 is not this month's
    assert (outcomes.cost(pulls[1]), dict(pulls[1].follow_ups)) == (1_000 + 3_000 + 500, {"2026-11": 1})
    assert outcomes.cost(pulls[2]) == 2_000
    assert (pulls[1].analysis_model, pulls[1].code_model, pulls[1].task_kind) == ("claude-sonnet-5-5", "gpt-4o-mini", "features")
    assert (pulls[1].state, pulls[1].opened_at, pulls[1].task) == ("open", "2026-11-02T02:00:00Z", "Task A")


def spent_by_number(pulls: tuple[PullOutcome, ...]) -> dict[int, dict[str, int]]:
    return {pull.number: dict(pull.spent) for pull in pulls}


def test_a_closed_month_keeps_each_pull_requests_spend_after_its_runs_are_gone() -> None:
    ledger = month_ledger()
    first_week = rollover(ledger, "2026-12")  # November's rows kept a week (closed_runs): read from them
    assert first_week.runs == () and first_week.pulls == ()
    assert spent_by_number(outcomes.on_record(first_week)) == {1: {"2026-11": 4_500}, 2: {"2026-11": 2_000}}
    # a November run that settles after the rollover counts toward its PR
    late = first_week.with_run(follow_up("r7", "2026-11-30T23:00:00Z", 2, 100))
    assert spent_by_number(outcomes.on_record(late)) == {1: {"2026-11": 4_500}, 2: {"2026-11": 2_100}}
    december = as_of(late, dt.datetime(2026, 12, 9, tzinfo=dt.timezone.utc))  # the rows go: the spend stays
    assert december.closed_runs == ()
    assert spent_by_number(december.pulls) == {1: {"2026-11": 4_500}, 2: {"2026-11": 2_100}}
    assert dict(december.pulls[1].follow_ups) == {"2026-11": 1} and december.pulls[0].task == ""  # its URL names it
    # a December follow-up adds to PR 1 without counting November twice, however often it is rolled
    december = as_of(december.with_run(follow_up("r6", "2026-12-10T02:00:00Z", 1, 250)), dt.datetime(2026, 12, 11, tzinfo=dt.timezone.utc))
    assert outcomes.cost(next(p for p in outcomes.on_record(december) if p.number == 1)) == 4_750
    assert to_text(from_text(to_text(december), "x")) == to_text(december)
    # two months on in one step (no run in between): November is folded in all the same
    assert spent_by_number(rollover(late, "2027-01").pulls) == spent_by_number(december.pulls)


DECEMBER_9 = dt.datetime(2026, 12, 9, tzinfo=dt.timezone.utc)  # November's rows have gone


def test_pulls_round_trip_and_a_schema_3_ledger_is_upgraded() -> None:
    ledger = as_of(month_ledger(), DECEMBER_9)
    text = to_text(ledger)
    assert json.loads(text)["schema_version"] == 4
    assert '    {"analysis_model":"claude-sonnet-5-5","code_model":"gpt-4o-mini"' in text  # one line per PR
    assert from_text(text, "x") == ledger
    november = to_text(month_ledger())
    assert '"task_kind":"features"' in november and '"pulls"' not in november  # none on record yet
    old = november.replace('"schema_version": 4', '"schema_version": 3')
    upgraded = from_text(old, "x")
    assert upgraded == month_ledger() and to_text(upgraded) == november


@pytest.mark.parametrize(("entry", "message"), [
    ('{"url": "u", "number": 1, "task": "t", "opened_at": "x", "state": "reverted"}',
     "pulls[0].state must be one of open, merged, closed"),
    ('{"url": "u", "number": -1, "task": "t", "opened_at": "x", "state": "open"}', "pulls[0].number must be a whole number"),
    ('{"url": "u", "number": 1, "task": "t", "opened_at": "x", "state": "open", "spent": {"Nov": 3}}',
     "pulls[0].spent key 'Nov' must be a month like 2026-11"),
    ('{"url": "u", "number": 1, "task": "t", "opened_at": "x", "state": "open", "humans_pushed": "yes"}',
     "pulls[0].humans_pushed must be true, false or missing"),
])
def test_a_damaged_pulls_entry_is_named(entry: str, message: str) -> None:
    text = to_text(new_ledger(NOW, 1)).replace('  "runs": []', f'  "pulls": [{entry}],\n  "runs": []')
    with pytest.raises(LedgerError, match=re.escape(f"token_budget.json: {message}")):
        from_text(text, "token_budget.json")


def test_merging_two_ledgers_keeps_the_newest_look_at_each_pull_request() -> None:
    base = as_of(month_ledger(), DECEMBER_9)
    first = base.pulls[0]
    ours = Ledger(month="2026-12", budget_micro_usd=1, pulls=(
        PullOutcome(**{**first.__dict__, "state": "merged", "seen_at": "2026-12-02T00:00:00Z"}),))
    theirs = Ledger(month="2026-12", budget_micro_usd=1, pulls=(
        PullOutcome(**{**first.__dict__, "state": "open", "seen_at": "2026-12-01T00:00:00Z", "spent": {"2026-10": 9}}),
        base.pulls[1]))
    merged = merge(base, ours, theirs)
    assert [(p.number, p.state) for p in merged.pulls] == [(1, "merged"), (2, "open")]
    assert dict(merged.pulls[0].spent) == {"2026-10": 9, "2026-11": 4_500}


# --- reading GitHub: 200 bot pull requests ------------------------------------------------


def seed(fake: FakeGitHub, count: int) -> list[FakePull]:
    """``count`` bot PRs of this month and last: a quarter open, half merged, the rest closed."""
    pulls = []
    for index in range(count):
        opened = NOW - dt.timedelta(hours=5 * index)
        pull = fake.add_pull(title=f"Task {index}", head=f"ai/task-{index}", body=gh.task_marker(f"Task {index}"))
        pull.created_at = opened.strftime("%Y-%m-%dT%H:%M:%SZ")
        if index % 4:
            fake.decide(pull.number, merged=index % 4 != 3, at=(opened + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        pulls.append(pull)
    fake.add_pull(title="A human's PR", head="fix/typo")  # not the bot's: listed, never read
    bot = {"name": "github-actions[bot]", "email": BOT_EMAIL, "date": "2026-11-01T00:00:00Z"}

    def commits(pull: FakePull) -> list[dict[str, Any]]:
        sha = pull.head_sha
        return [{"sha": sha, "node_id": "C", "url": "", "html_url": "", "author": None, "committer": None,
                 "commit": {"author": bot, "committer": bot, "message": pull.title, "tree": {"sha": "0" * 40, "url": ""}},
                 "parents": [{"sha": "1" * 40, "url": ""}]}]

    fake.commits_of = commits
    fake.files_of = lambda pull: [{"sha": "0" * 40, "filename": "app.py", "status": "modified", "additions": 3,
                                   "deletions": 1, "changes": 4, "blob_url": "", "raw_url": "", "contents_url": "",
                                   "patch": "@@ -1 +1,3 @@\n-a\n+b\n+c\n+d"}]
    return pulls


def one_run(fake: FakeGitHub, repo: Any, ledger: Ledger, max_reads: int = 3) -> tuple[Ledger, Counter[str]]:
    """What a run does: list the bot's PRs (as it always has), then fold their fate in."""
    before = len(fake.requests)
    pulls = gh.bot_pull_requests(repo)
    ledger, _ = outcomes.update(ledger, pulls, NOW, max_reads=max_reads,
                                read=partial(pull_outcomes.read, repo, bot_email=BOT_EMAIL), say=print)
    kinds = Counter(request.path.rsplit("/", 1)[-1] if "/pulls/" in request.path else "list"
                    for request in fake.requests[before:])
    return ledger, kinds


def test_two_hundred_bot_pull_requests_cost_a_few_requests_per_run() -> None:
    with FakeGitHub() as fake:
        repo = gh.connect(fake.env(), FAST)
        pulls = seed(fake, 200)
        ledger, first = one_run(fake, repo, new_ledger(NOW, 1))
        # the list the run always read (201 PRs at 100 a page), then 3 PRs read: merged ones
        # need their commits and files, a closed one its commits
        assert first["list"] == 3 and sum(first.values()) - first["list"] <= 3 * 2
        assert len(ledger.pulls) == 200 and sum(p.head_sha != "" for p in ledger.pulls) == 3
        runs = 1
        while any(p.head_sha == "" for p in ledger.pulls):
            ledger, _ = one_run(fake, repo, ledger)
            runs += 1
        assert runs == -(-200 // 3)  # the history is read three PRs a run
        ledger, quiet = one_run(fake, repo, ledger)
        assert quiet == Counter({"list": 3})  # nothing changed: no request beyond the list
        for pull in pulls[:8:4]:  # two open PRs merged since
            fake.decide(pull.number, merged=True, at="2026-11-21T09:00:00Z")
        ledger, busy = one_run(fake, repo, ledger)
        assert busy == Counter({"list": 3, "commits": 2, "files": 2})
        print(f"200 bot PRs: first run {sum(first.values())} requests, a quiet run {sum(quiet.values())}, "
              f"a run after 2 merges {sum(busy.values())}; the history takes {runs} runs to read")
    data = outcomes.tally(outcomes.on_record(ledger))
    assert (data.merged, data.closed, data.open) == (102, 50, 48)
    assert data.lines_changed == data.lines_survived == 102 * 4
    assert data.median_hours_to_merge == 2.0


def test_a_failed_read_leaves_the_rest_to_a_later_run_and_never_stops_the_run() -> None:
    with FakeGitHub() as fake:
        repo = gh.connect(fake.env(), FAST)
        seed(fake, 4)
        fake.fail_next("GET", "/repos/octo/repo/pulls/*/commits", FakeGitHub.bad_credentials())
        said: list[str] = []
        ledger, requests = outcomes.update(new_ledger(NOW, 1), gh.bot_pull_requests(repo), NOW, max_reads=3,
                                           read=partial(pull_outcomes.read, repo, bot_email=BOT_EMAIL), say=said.append)
        # the list's facts are kept; the PR whose commits GitHub refused, and those after it, wait
        assert [(p.number, p.state, p.head_sha) for p in ledger.pulls] == [
            (4, "closed", ""), (3, "merged", ""), (2, "merged", ""), (1, "open", "")]
        assert requests == 0 and len(said) == 1
        assert said[0].startswith("note: what became of #4 is read by a later run (GitHub rejected the token (401)")
        assert fake.token not in said[0]


# --- task kinds, settings and the experiment ----------------------------------------------


def test_a_task_kind_is_its_label_or_prefix_else_its_heading() -> None:
    listed = read_tasks("# Tasks\n\n## Bug fixes\n- [ ] Fix the login\n- [ ] kind:Docs Explain the login\n\n"
                        "## Later\n- [ ] Refactor\n")
    assert [task.kind for task in listed] == ["bug fixes", "docs", "later"]
    assert task_kind("Add a page", "Features", ["ai-task", "kind:ui"]) == "ui"
    assert task_kind("Add a page") == ""


def test_experiment_and_outcome_settings_are_checked() -> None:
    config = parse_config("models:\n  experiment:\n    code: [gpt-4o-mini, gpt-4.1-mini]\noutcomes:\n  max_reads_per_run: 5\n",
                          "c.yml", TODAY)
    assert (config.experiment_code_models, config.outcome_reads_per_run) == (("gpt-4o-mini", "gpt-4.1-mini"), 5)
    assert config.configured_models()["models.experiment.code[1]"] == "gpt-4.1-mini"  # its key is checked too
    for text, message in (
        ("models:\n  experiment:\n    code: [gpt-4o-mini]\n", "models.experiment.code must be a list of two values"),
        ("models:\n  experiment:\n    code: [gpt-4o-mini, gpt-4o-mini]\n", "must name two different values"),
        ("models:\n  experiment:\n    code: [gpt-4o-mini, claude-haiku-4-5]\n", "models.experiment.code\\[1\\]: 'claude-haiku-4-5' is an anthropic model"),
        ("models:\n  experiment:\n    analysis_effort: [low, extreme]\n", "analysis_effort\\[1\\] must be one of"),
        ("models:\n  experiment:\n    code: [gpt-4o-mini, gpt-4.1-mini]\n    analysis_effort: [low, high]\n", "one thing at a time"),
        ("outcomes:\n  max_reads_per_run: 0\n", "outcomes.max_reads_per_run must be a whole number greater than zero"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config(text, "c.yml", TODAY)


def test_the_experiment_takes_its_arms_in_turn() -> None:
    config = parse_config("models:\n  experiment:\n    analysis_effort: [low, high]\n", "c.yml", TODAY)
    ledger = new_ledger(NOW, 1)
    taken = []
    for index in range(4):
        armed, arm = experiment.choose(config, ledger)
        taken.append((arm, armed.analysis_effort))
        ledger = ledger.with_run(task_run(f"r{index}", f"2026-11-0{index + 1}T00:00:00Z", "T", 10, arm=arm))
        ledger = ledger.with_run(follow_up(f"f{index}", f"2026-11-0{index + 1}T01:00:00Z", 1, 10))  # not a turn
    assert taken == [("analysis_effort=low", "low"), ("analysis_effort=high", "high")] * 2
    plain = parse_config("", "c.yml", TODAY)
    assert experiment.choose(plain, ledger) == (plain, "")
