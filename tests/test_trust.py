"""Who may direct the bot: repo/trust.py through real PyGithub against the loopback fake GitHub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automation.core.config import Config
from automation.core.errors import GitHubError
from automation.repo import github as gh
from automation.repo.trust import Trust, meets
from tests.fakes.github_server import FakeGitHub
from tests.test_github import FAST

PERMISSION = "/repos/octo/repo/collaborators/*/permission"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        for login, role in (("ada", "admin"), ("max", "maintain"), ("wes", "write"), ("tri", "triage"), ("rae", "read")):
            server.add_collaborator(login, role)
        yield server


@pytest.mark.parametrize(("bar", "trusted"), [
    ("write", {"ada", "max", "wes"}), ("maintain", {"ada", "max"}), ("admin", {"ada"}),
])
def test_the_permission_bar_decides_for_collaborators(fake: FakeGitHub, bar: str, trusted: set[str]) -> None:
    trust = Trust(gh.connect(fake.env(), FAST), Config(trusted_permission=bar))
    verdicts = {login: trust.check(login, "COLLABORATOR") for login in ("ada", "max", "wes", "tri", "rae")}
    assert {login for login, verdict in verdicts.items() if verdict.trusted} == trusted
    assert verdicts["tri"].reason == f"has triage access to octo/repo, below follow_ups.trusted_permission ({bar})"


def test_associations_answer_without_a_request_where_they_can(fake: FakeGitHub) -> None:
    trust = Trust(gh.connect(fake.env(), FAST), Config(trusted_users=("renovate[bot]", "outsider")))
    assert trust.check("octo", "OWNER").trusted
    assert not trust.check("mallory", "NONE").trusted and not trust.check("wes", "CONTRIBUTOR").trusted
    assert not trust.check("dependabot[bot]", "NONE").trusted and not trust.check("github-actions[bot]", "MEMBER").trusted
    assert trust.check("Renovate[bot]", "NONE").trusted and trust.check("outsider", "NONE").trusted  # listed by name
    assert not trust.check("", "NONE").trusted  # a deleted account
    assert fake.requests_to("GET", PERMISSION) == []

    assert not trust.check("rae", "MEMBER").trusted  # an organisation member who can only read
    assert trust.check("wes", None).trusted and trust.check("WES", "").trusted  # no association: the endpoint; once per account
    assert [r.path.split("/")[-2] for r in fake.requests_to("GET", PERMISSION)] == ["rae", "wes"]


def test_a_failed_lookup_trusts_nobody(fake: FakeGitHub) -> None:
    trust = Trust(gh.connect(fake.env(), FAST), Config())
    fake.fail_next("GET", PERMISSION, FakeGitHub.server_error(500))
    fake.fail_next("GET", PERMISSION, FakeGitHub.server_error(500))
    fake.fail_next("GET", PERMISSION, FakeGitHub.server_error(500))
    with pytest.raises(GitHubError, match="reading the permission of wes on octo/repo failed: GitHub answered 500"):
        trust.check("wes", "COLLABORATOR")


def test_maintain_shows_as_write_with_its_role_name() -> None:
    assert meets("write", "maintain", "maintain") and not meets("write", "write", "maintain")
    assert meets("admin", "custom-admin", "maintain") and not meets("write", "custom-maintainer", "maintain")
    assert not meets("read", "triage", "write") and not meets("none", "none", "write")
