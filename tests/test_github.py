"""github.py through real PyGithub against the loopback fake GitHub API."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from automation.core.errors import GitHubError, MissingSecretError
from automation.repo import github as gh
from tests.fakes.github_server import GITHUB_TEST_TOKEN, FakeGitHub

FAST = gh.ApiPolicy(
    retries=2, backoff_factor=0.0, secondary_rate_wait=0.0, max_rate_limit_wait=1.0,
    seconds_between_requests=0.0, seconds_between_writes=0.0, timeout=5,
)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def connect(fake: FakeGitHub, **env: str):
    return gh.connect({**fake.env(), **env}, FAST)


def test_task_marker_round_trips() -> None:
    marker = gh.task_marker("  Add a /health endpoint\n")
    assert marker == f"<!-- ai-orchestration:task={gh.task_hash('Add a /health endpoint')} -->"
    assert len(gh.task_hash("x")) == 64
    assert gh.parse_task_hash(f"Summary\n\n{marker}\n") == gh.task_hash("Add a /health endpoint")
    assert gh.parse_task_hash("no marker") is None
    assert gh.parse_task_hash(None) is None


def test_connect_requires_token_and_repository(fake: FakeGitHub) -> None:
    env = fake.env()
    with pytest.raises(MissingSecretError, match="GITHUB_TOKEN.*GH_TOKEN"):
        gh.connect({k: v for k, v in env.items() if k != "GITHUB_TOKEN"}, FAST)
    with pytest.raises(MissingSecretError, match="GITHUB_REPOSITORY"):
        gh.connect({k: v for k, v in env.items() if k != "GITHUB_REPOSITORY"}, FAST)
    alt = {k: v for k, v in env.items() if k != "GITHUB_TOKEN"} | {"GH_TOKEN": GITHUB_TEST_TOKEN}
    assert gh.connect(alt, FAST).full_name == "octo/repo"
    assert fake.requests[-1].headers["authorization"] == f"token {GITHUB_TEST_TOKEN}"


def test_enterprise_api_url_is_honoured() -> None:
    with FakeGitHub(prefix="/api/v3") as fake:
        repo = gh.connect(fake.env(), FAST)
        fake.add_pull(title="t", head="ai/x", body=gh.task_marker("x"))
        assert [p.head for p in gh.bot_pull_requests(repo)] == ["ai/x"]
        assert fake.url.endswith("/api/v3")
        assert [r.path for r in fake.requests] == ["/repos/octo/repo", "/repos/octo/repo/pulls"]


def test_bad_token_is_a_clear_error_without_the_token(fake: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match="rejected the token \\(401\\)") as caught:
        connect(fake, GITHUB_TOKEN="ghp_wrongTokenValue0123456789abcdefXYZ")
    assert "ghp_wrongTokenValue" not in str(caught.value)


def test_missing_repository(fake: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match="octo/other not found"):
        connect(fake, GITHUB_REPOSITORY="octo/other")


def test_unreachable_api(fake: FakeGitHub) -> None:
    env = fake.env()
    fake.stop()
    with pytest.raises(GitHubError, match="could not reach the GitHub API at http://127.0.0.1"):
        gh.connect(env, dataclasses.replace(FAST, retries=0))


def test_bot_pull_requests_pages_and_parses_markers(fake: FakeGitHub) -> None:
    fake.max_per_page = 2
    fake.add_pull(title="Merged", head="ai/one", body=f"text\n{gh.task_marker('one')}", merged=True)
    fake.add_pull(title="Human", head="feature/x", body=gh.task_marker("human"))
    fake.add_pull(title="Closed", head="ai/two", body=gh.task_marker("two"), state="closed")
    fake.add_pull(title="Fork", head="ai/three", body=gh.task_marker("three"), head_repo="mallory/repo")
    fake.add_pull(title="Open", head="ai/four", body=None)
    repo = connect(fake)

    pulls = gh.bot_pull_requests(repo)

    assert [(p.number, p.url, p.title, p.state, p.merged, p.head, p.task_hash) for p in pulls] == [
        (5, "https://github.com/octo/repo/pull/5", "Open", "open", False, "ai/four", None),
        (3, "https://github.com/octo/repo/pull/3", "Closed", "closed", False, "ai/two", gh.task_hash("two")),
        (1, "https://github.com/octo/repo/pull/1", "Merged", "closed", True, "ai/one", gh.task_hash("one")),
    ]
    assert pulls[0].author == "github-actions[bot]" and pulls[0].head_sha == fake.pull(5).head_sha
    listing = fake.requests_to("GET", "/repos/octo/repo/pulls")
    assert [r.query.get("page", "1") for r in listing] == ["1", "2", "3"]
    assert all(r.query["state"] == "all" for r in listing)
    assert len(fake.requests) == 1 + 3  # no per-PR fetches


def test_server_errors_are_retried(fake: FakeGitHub) -> None:
    repo = connect(fake)
    fake.fail_next("GET", "/repos/octo/repo/pulls", FakeGitHub.server_error(502))
    fake.fail_next("GET", "/repos/octo/repo/pulls", FakeGitHub.secondary_rate_limit())
    assert gh.bot_pull_requests(repo) == []
    assert len(fake.requests_to("GET", "/repos/octo/repo/pulls")) == 3


def test_server_errors_give_up_with_status(fake: FakeGitHub) -> None:
    repo = connect(fake)
    for _ in range(3):
        fake.fail_next("GET", "/repos/octo/repo/pulls", FakeGitHub.server_error(503))
    with pytest.raises(GitHubError, match="listing pull requests failed: GitHub answered 503: Server Error"):
        gh.bot_pull_requests(repo)


def test_open_pull_request_sends_what_we_asked(fake: FakeGitHub) -> None:
    repo = connect(fake)
    body = f"Does the thing.\n\n{gh.task_marker('the thing')}"

    pull = gh.open_pull_request(
        repo, title="Do the thing", body=body, head="ai/the-thing", base="main", labels=["ai", "needs-review"], draft=True
    )

    assert (pull.number, pull.url, pull.title, pull.state, pull.merged, pull.head, pull.task_hash) == (
        1, "https://github.com/octo/repo/pull/1", "Do the thing", "open", False, "ai/the-thing", gh.task_hash("the thing"))
    (create,) = fake.requests_to("POST", "/repos/octo/repo/pulls")
    assert create.json == {"title": "Do the thing", "body": body, "head": "ai/the-thing", "base": "main", "draft": True}
    (labels,) = fake.requests_to("POST", "/repos/octo/repo/issues/1/labels")
    assert labels.json == ["ai", "needs-review"]
    assert fake.pull(1).labels == ["ai", "needs-review"] and fake.pull(1).draft


def test_no_labels_means_no_label_request(fake: FakeGitHub) -> None:
    repo = connect(fake)
    gh.open_pull_request(repo, title="t", body="b", head="ai/t", base="main", labels=[], draft=False)
    assert fake.requests_to("POST", "*/labels") == []
    assert fake.requests_to("POST", "/repos/octo/repo/pulls")[0].json["draft"] is False


def test_actions_not_permitted_explains_the_setting(fake: FakeGitHub) -> None:
    repo = connect(fake)
    fake.fail_next("POST", "/repos/octo/repo/pulls", FakeGitHub.actions_not_permitted())
    with pytest.raises(GitHubError) as caught:
        gh.open_pull_request(repo, title="t", body="b", head="ai/t", base="main", labels=["ai"], draft=False)
    message = str(caught.value)
    assert 'Settings → Actions → General → Workflow permissions → "Allow GitHub Actions to create and approve pull requests"' in message
    assert "AI_ORCHESTRATION_TOKEN" in message
    assert len(fake.requests_to("POST", "/repos/octo/repo/pulls")) == 1  # a plain 403 is not retried


def test_duplicate_returns_existing_pull(fake: FakeGitHub) -> None:
    existing = fake.add_pull(title="Earlier", head="ai/t", body=gh.task_marker("t"))
    repo = connect(fake)
    pull = gh.open_pull_request(repo, title="Again", body="b", head="ai/t", base="main", labels=["ai"], draft=False)
    assert (pull.number, pull.title, pull.task_hash) == (existing.number, "Earlier", gh.task_hash("t"))
    assert len(fake.pulls) == 1
    assert fake.pull(existing.number).labels == ["ai"]
    listing = fake.requests_to("GET", "/repos/octo/repo/pulls")[-1]
    assert listing.query == {"state": "open", "head": "octo:ai/t", "per_page": "100"}


def test_draft_falls_back_to_ready_where_drafts_are_unsupported(fake: FakeGitHub) -> None:
    repo = connect(fake)
    fake.fail_next(
        "POST", "/repos/octo/repo/pulls", FakeGitHub.validation_failed("Draft pull requests are not supported in this repository.")
    )
    pull = gh.open_pull_request(repo, title="t", body="b", head="ai/t", base="main", labels=[], draft=True)
    assert [r.json["draft"] for r in fake.requests_to("POST", "/repos/octo/repo/pulls")] == [True, False]
    assert pull.state == "open" and not fake.pull(pull.number).draft


def test_other_errors_carry_status_and_message_but_not_the_token(fake: FakeGitHub) -> None:
    repo = connect(fake)
    fake.fail_next(
        "POST", "/repos/octo/repo/pulls", FakeGitHub.validation_failed(f"No commits between main and ai/t ({GITHUB_TEST_TOKEN})")
    )
    with pytest.raises(GitHubError) as caught:
        gh.open_pull_request(repo, title="t", body="b", head="ai/t", base="main", labels=[], draft=False)
    message = str(caught.value)
    assert "opening a pull request from ai/t into main failed: GitHub answered 422" in message
    assert "No commits between main and ai/t" in message
    assert GITHUB_TEST_TOKEN not in message


def test_token_revoked_mid_run(fake: FakeGitHub) -> None:
    repo = connect(fake)
    fake.fail_next("POST", "/repos/octo/repo/pulls", FakeGitHub.bad_credentials())
    with pytest.raises(GitHubError, match="rejected the token") as caught:
        gh.open_pull_request(repo, title="t", body="b", head="ai/t", base="main", labels=[], draft=False)
    assert GITHUB_TEST_TOKEN not in str(caught.value)


def test_label_failure_still_names_the_pull(fake: FakeGitHub) -> None:
    repo = connect(fake)
    fake.fail_next("POST", "/repos/octo/repo/issues/*/labels", FakeGitHub.validation_failed("bad label"))
    with pytest.raises(GitHubError, match="opened https://github.com/octo/repo/pull/1 but could not add labels ai"):
        gh.open_pull_request(repo, title="t", body="b", head="ai/t", base="main", labels=["ai"], draft=False)


def test_fake_rejects_requests_without_authorization(fake: FakeGitHub) -> None:
    import requests

    answer = requests.get(f"{fake.url}/repos/octo/repo", timeout=5)
    assert answer.status_code == 401 and answer.json()["message"] == "Requires authentication"


def test_a_subprocess_bot_reaches_the_fake_through_its_environment(fake: FakeGitHub) -> None:
    import os
    import subprocess
    import sys

    fake.add_pull(title="t", head="ai/x", body=gh.task_marker("x"))
    script = (
        "import os\nfrom automation.repo import github as gh\n"
        "repo = gh.connect(os.environ, gh.ApiPolicy(retries=0, seconds_between_requests=0))\n"
        "print([p.task_hash == gh.task_hash('x') for p in gh.bot_pull_requests(repo)])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))} | fake.env()
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "[True]"


def test_fake_single_pull_issue_and_patch_parse_in_pygithub(fake: FakeGitHub) -> None:
    fake.add_pull(title="Merged", head="ai/m", merged=True, labels=("ai",))
    fake.add_pull(title="Open", head="ai/o", draft=True)
    repo = connect(fake)

    merged = repo.get_pull(1)
    assert (merged.merged, merged.state, merged.head.repo.full_name, merged.base.ref) == (True, "closed", "octo/repo", "main")
    assert [label.name for label in merged.as_issue().labels] == ["ai"]

    opened = repo.get_pull(2)
    assert opened.draft and not opened.merged
    opened.edit(state="closed", title="Closed by hand")
    assert (fake.pull(2).state, fake.pull(2).title) == ("closed", "Closed by hand")
    assert fake.requests_to("PATCH", "/repos/octo/repo/pulls/2")[0].json == {"title": "Closed by hand", "state": "closed"}


# --- a PR's identity ---------------------------------------------------------------------


def test_only_the_last_marker_in_a_body_counts_and_model_text_cannot_carry_one() -> None:
    quoted = gh.task_marker("someone else's task")
    body = f"The model said {quoted}\n\n{gh.task_marker('mine')}"
    assert gh.parse_task_hash(body) == gh.task_hash("mine")
    neutral = gh.neutralise_markers(f"see {quoted} and <!-- ai-orchestration:follow-up {{}} -->")
    assert gh.parse_task_hash(neutral) is None and "<!--" not in neutral and "&lt;!-- ai-orchestration:task=" in neutral
    assert gh.neutralise_markers("<!-- a normal comment -->") == "<!-- a normal comment -->"


@pytest.mark.parametrize(
    ("head", "belongs"),
    [("ai/add-x", True), ("ai/add-x-2", True), ("ai/add-x-17", True), ("ai/add-x-1", False), ("ai/add-x-y", False),
     ("ai/add-x-02", False), ("ai/add", False), ("feature/add-x", False)],
)
def test_a_pull_request_without_a_marker_belongs_to_its_task_by_branch(head: str, belongs: bool) -> None:
    pull = gh.BotPull(1, "u", "t", "open", False, head, None)
    assert gh.belongs_to(pull, "Add x", "ai/add-x") is belongs
    marked = dataclasses.replace(pull, task_hash=gh.task_hash("Another task"))
    assert gh.belongs_to(marked, "Add x", "ai/add-x") is False  # a marker, when there is one, decides


# --- what a follow-up reads and writes ---------------------------------------------------


def test_checks_read_check_runs_and_statuses_with_their_states(fake: FakeGitHub) -> None:
    sha = "a" * 40
    fake.add_check_run(sha, "test", log="boom")
    fake.add_check_run(sha, "build", status="in_progress")
    fake.add_check_run(sha, "docs", conclusion="cancelled")
    fake.add_check_run(sha, "external", conclusion="timed_out", app="circleci-checks", title="Timed out", summary="after 10m")
    fake.add_status(sha, "ci/jenkins", "pending")
    fake.add_status(sha, "ci/jenkins", "error", "Jenkins broke", "https://ci.example/1")  # the latest per context wins
    fake.add_status(sha, "coverage", "success")
    repo = connect(fake)

    found = {check.name: check for check in gh.checks(repo, sha)}

    assert {name: check.state for name, check in found.items()} == {
        "test": "failed", "build": "pending", "docs": "done", "external": "failed", "ci/jenkins": "failed", "coverage": "done",
    }
    assert found["test"].job_id is not None and found["external"].job_id is None  # only Actions jobs have logs to fetch
    assert found["external"].summary == "Timed out\nafter 10m"
    assert found["ci/jenkins"].url == "https://ci.example/1" and found["ci/jenkins"].summary == "Jenkins broke"
    assert gh.checks(repo, "b" * 40) == ()  # no checks at all (the combined status says "pending" then)


def test_job_log_follows_the_redirect_without_sending_the_token_to_the_log_host(fake: FakeGitHub) -> None:
    job = fake.add_check_run("a" * 40, "test", log="x" * 5000 + "the end\n")
    repo = connect(fake)

    log = gh.job_log(repo, job, max_bytes=100)

    assert log.endswith("the end\n") and len(log) == 100  # the tail, bounded
    [api] = fake.requests_to("GET", f"/repos/octo/repo/actions/jobs/{job}/logs")
    [storage] = [r for r in fake.requests if r.path.startswith("/_blob/")]
    assert api.headers["authorization"] == f"Bearer {GITHUB_TEST_TOKEN}"
    assert "authorization" not in storage.headers and storage.headers["host"].startswith("localhost:")
    assert gh.job_log(repo, 999_999, max_bytes=100) == "(no log for job 999999: GitHub answered 404; the job needs `actions: read`)"


def test_comments_fold_inline_review_comments_into_their_review_and_come_oldest_first(fake: FakeGitHub) -> None:
    fake.add_pull(title="T", head="ai/t")
    fake.add_comment(1, user="bob", body="first")
    review = fake.add_review(1, user="alice", state="CHANGES_REQUESTED", body="Needs work", comments=(("a.py", 3, "rename"),))
    repo = connect(fake)

    found = gh.comments(repo, 1)

    assert [(c.key, c.kind, c.author, c.state) for c in found] == [
        (f"comment-{fake.comments[0]['id']}", "comment", "bob", ""),
        (f"review-{review}", "review", "alice", "CHANGES_REQUESTED"),
    ]
    assert found[1].body == "Needs work\n`a.py` line 3: rename"
    assert found[1].url.endswith(f"#pullrequestreview-{review}")


def test_comment_and_labels_are_posted_to_the_pull_requests_conversation(fake: FakeGitHub) -> None:
    fake.add_pull(title="T", head="ai/t")
    repo = connect(fake)

    url, comment_id = gh.comment(repo, 1, "hello")
    gh.add_labels(repo, 1, ["ai-needs-human"])

    [posted] = fake.comments_on(1)
    assert posted["body"] == "hello" and url == posted["html_url"] and comment_id == posted["id"]
    gh.edit_comment(repo, 1, comment_id, "hello again")
    gh.edit_pull_body(repo, 1, "a new body")
    assert [c["body"] for c in fake.comments_on(1)] == ["hello again"] and fake.pull(1).body == "a new body"
    assert fake.pull(1).labels == ["ai-needs-human"]


def test_who_may_direct_the_bot_is_read_as_github_sends_it(fake: FakeGitHub) -> None:
    fake.add_pull(title="T", head="ai/t", labels=("ai-task",))  # GitHub lists pull requests among the issues
    fake.add_collaborator("maya", "maintain")
    fake.add_collaborator("tri", "triage")
    mine = fake.add_issue(title="Do it", body="please", user="maya", labels=("ai-task",))
    fake.label_issue(mine.number, "AI-TASK", actor="tri", remove=True)
    fake.label_issue(mine.number, "ai-task", actor="tri")
    fake.add_issue(title="Closed", user="maya", labels=("ai-task",), state="closed")
    fake.add_issue(title="Other label", user="maya", labels=("bug",))
    fake.add_comment(1, user="maya", body="@ai-orchestration hi")
    repo = connect(fake)

    [issue] = gh.labelled_issues(repo, "ai-task")
    assert (issue.number, issue.title, issue.author, issue.association) == (mine.number, "Do it", "maya", "COLLABORATOR")
    assert issue.url == f"https://github.com/octo/repo/issues/{mine.number}" and issue.labels == ("ai-task",)
    assert gh.labelled_by(repo, mine.number, "ai-task") == "tri"  # the latest application counts
    assert gh.labelled_by(repo, mine.number, "bug") is None
    assert gh.issue(repo, 3).state == "closed" and gh.issue(repo, 4).labels == ("bug",)
    assert gh.permission(repo, "maya") == ("write", "maintain") and gh.permission(repo, "octo") == ("admin", "admin")
    assert gh.permission(repo, "stranger") == ("read", "read")  # anyone reads a public repository
    [comment] = gh.comments(repo, 1)
    assert comment.association == "COLLABORATOR"
    assert gh.parse_issue(f"x {gh.issue_marker(12)} {gh.issue_marker(3)}") == 3 and gh.parse_issue("Closes #12") is None
