"""One budget across repositories (``ledger.repository``): real `python -m automation run`
processes of two repositories, each with its own bare remote and fake GitHub, commit their
spend to one shared ledger repository (a local bare one, or one behind a git host speaking
GitHub's smart HTTP with its token rules). What the providers billed is counted at the fakes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import test_run
from tests.fakes.discord_server import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.git_http import READ, WRITE, FakeGitHost
from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.spending import PINNED_MODELS, bill_near_the_worst_case, billed, finish
from tests.test_run import World, git

world = test_run.world
CONFIG = ".github/ai-orchestration.yml"
LEDGER = "token_budget.json"
TOKEN_VARIABLE = "AI_ORCHESTRATION_LEDGER_TOKEN"


@dataclass
class Organisation:
    """Two repositories (``octo/repo``: the world's, ``octo/site``) sharing one ledger repository."""

    world: World
    ledger: Path  # the shared ledger's bare repository
    site_remote: Path
    site_env: dict[str, str]

    def env(self, repository: str) -> dict[str, str]:
        return self.world.env if repository == "octo/repo" else self.site_env

    def remote(self, repository: str) -> Path:
        return self.world.remote if repository == "octo/repo" else self.site_remote

    def start(self, repository: str, name: str, *arguments: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A run of ``repository`` in its own fresh clone (its own Actions job)."""
        checkout = self.world.tmp / name
        git(self.world.tmp, "clone", "-q", str(self.remote(repository)), str(checkout), env=self.world.env)
        return subprocess.Popen([sys.executable, "-m", "automation", "run", "--repo", str(checkout), *arguments],
                                cwd=self.world.tmp, env=env or self.env(repository), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def status(self, repository: str) -> dict:
        """`status --json` in a fresh checkout of ``repository``."""
        checkout = self.world.tmp / f"status-{len(list(self.world.tmp.glob('status-*')))}"
        git(self.world.tmp, "clone", "-q", str(self.remote(repository)), str(checkout), env=self.world.env)
        result = subprocess.run([sys.executable, "-m", "automation", "status", "--json", "--repo", str(checkout)],
                                cwd=self.world.tmp, env=self.env(repository), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def shared_ledger(self, branch: str = "main") -> dict:
        text = subprocess.run(["git", "show", f"{branch}:{LEDGER}"], cwd=self.ledger, capture_output=True, text=True,
                              check=True).stdout
        return json.loads(text)


def commit_files(world: World, remote: Path, files: dict[str, str]) -> None:
    """Commit ``files`` on ``remote``'s main branch (a merged pull request)."""
    seed = world.tmp / f"seed-{remote.name}-{len(list(world.tmp.glob('seed-*')))}"
    git(world.tmp, "clone", "-q", str(remote), str(seed), env=world.env)
    for path, content in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(content)
        git(seed, "add", path, env=world.env)
    git(seed, "commit", "-qm", "settings", env=world.env)
    git(seed, "push", "-q", "origin", "HEAD:main", env=world.env)


def ledger_repository(world: World, bare: Path, budget: str) -> None:
    """A new repository holding only the organisation's config (``budget``: its budget block)."""
    bare.parent.mkdir(parents=True, exist_ok=True)
    git(world.tmp, "init", "-q", "--bare", "-b", "main", str(bare), env=world.env)
    seed = world.tmp / f"seed-{bare.name}"
    git(world.tmp, "init", "-q", "-b", "main", str(seed), env=world.env)
    git(seed, "remote", "add", "origin", str(bare), env=world.env)
    (seed / ".github").mkdir()
    (seed / CONFIG).write_text(budget)
    git(seed, "add", "-A", env=world.env)
    git(seed, "commit", "-qm", "the organisation's budget", env=world.env)
    git(seed, "push", "-q", "origin", "main", env=world.env)


def shares(org_usd: float, repo_usd: float, site_usd: float) -> str:
    return (f"budget:\n  monthly_usd: {org_usd}\n  repositories:\n    octo/repo: {{monthly_usd: {repo_usd}}}\n"
            f"    octo/site: {{monthly_usd: {site_usd}}}\n")


@pytest.fixture()
def organisation(world: World) -> Iterator[Organisation]:
    site_remote = world.tmp / "site.git"
    git(world.tmp, "clone", "-q", "--bare", str(world.remote), str(site_remote), env=world.env)
    with FakeGitHub("octo", "site") as site_github:
        yield Organisation(world, world.tmp / "org" / "ledger.git", site_remote, {**world.env, **site_github.env()})


def share_ledger(organisation: Organisation, spec: str, branch: str | None = None) -> None:
    """Both repositories name ``spec`` as their ledger (on ``branch`` there, else its default branch)."""
    config = f"{PINNED_MODELS}ledger:\n  repository: {spec}\n" + (f"  branch: {branch}\n" if branch else "")
    for repository in ("octo/repo", "octo/site"):
        commit_files(organisation.world, organisation.remote(repository), {CONFIG: config})


def spent_by(ledger: dict, repository: str) -> int:
    columns = ledger["call_columns"]
    return sum(dict(zip(columns, row))["cost_micro_usd"] for run in ledger["runs"] if run["repository"] == repository
               for row in run["calls"])


def test_two_repositories_racing_on_one_shared_ledger_stay_within_the_cap_and_each_share(
    organisation: Organisation,
) -> None:
    world = organisation.world
    org_cap, repo_share, site_share = 500_000, 200_000, 400_000  # each run bills $0.17; one fits octo/repo, two octo/site
    ledger_repository(world, organisation.ledger, shares(org_cap / 1e6, repo_share / 1e6, site_share / 1e6))
    share_ledger(organisation, str(organisation.ledger))
    bill_near_the_worst_case(world)

    racers = [organisation.start(repository, f"{repository.replace('/', '-')}-{index}", "--task", f"Add helper {index}")
              for index in range(2) for repository in ("octo/repo", "octo/site")]
    results = [finish(process) for process in racers]

    assert all(result.returncode == 0 for result in results), [result.stderr for result in results]
    ledger = organisation.shared_ledger()
    assert billed(world) <= org_cap  # counted at the providers: the organisation's cap held
    assert ledger["spent_micro_usd"] == billed(world) > 0  # and every billed call is in the shared ledger
    assert spent_by(ledger, "octo/repo") <= repo_share and spent_by(ledger, "octo/site") <= site_share
    assert spent_by(ledger, "octo/repo") > 0 and spent_by(ledger, "octo/site") > 0  # both repositories got runs in
    assert ledger.get("reservations", []) == []  # all settled
    assert all(run["repository"] in ("octo/repo", "octo/site") for run in ledger["runs"])
    stops = [line for result in results for line in result.stdout.splitlines() if "budget stop" in line]
    assert stops and all(f"of {organisation.ledger}" in line for line in stops), stops  # the shared budget's keys
    for remote in (world.remote, organisation.site_remote):  # nothing went to either repository's own ledger
        assert subprocess.run(["git", "cat-file", "-e", f"main:{LEDGER}"], cwd=remote).returncode != 0

    seen = [organisation.status(repository) for repository in ("octo/repo", "octo/site")]
    assert seen[0]["spent_usd"] == seen[1]["spent_usd"] == ledger["spent_micro_usd"] / 1e6
    assert seen[0]["organisation"]["spent_usd"] == seen[1]["organisation"]["spent_usd"] == seen[0]["spent_usd"]
    assert seen[0]["budget_usd"] == org_cap / 1e6
    for status in seen:
        by_name = {entry["repository"]: entry for entry in status["organisation"]["repositories"]}
        assert by_name["octo/repo"]["spent_usd"] == spent_by(ledger, "octo/repo") / 1e6
        assert by_name["octo/site"]["share_usd"] == site_share / 1e6
    assert [seen[0]["organisation"]["repository"], seen[1]["organisation"]["repository"]] == ["octo/repo", "octo/site"]


def test_a_repository_past_its_share_stops_before_any_call_while_another_runs(
    organisation: Organisation, fake_discord: FakeDiscord,
) -> None:
    world = organisation.world
    ledger_repository(world, organisation.ledger, shares(5, 0.05, 1))  # $0.05: less than one analysis call
    share_ledger(organisation, str(organisation.ledger), branch="budget")  # a branch the first run creates there

    stopped = finish(organisation.start("octo/repo", "repo-run", env={**world.env, **fake_discord.env()}))
    assert stopped.returncode == 0, stopped.stderr
    assert f"budget stop (budget.repositories.octo/repo.monthly_usd of {organisation.ledger})" in stopped.stdout
    assert "this month for octo/repo" in stopped.stdout
    assert world.anthropic.generation_requests == []
    [alert] = fake_discord.embeds_titled("Budget stop")
    assert alert["title"] == "🛑 Budget stop: octo/repo's share is spent"  # not the organisation's budget
    assert alert["footer"]["text"].startswith("octo/repo · ")

    ran = finish(organisation.start("octo/site", "site-run"))
    assert ran.returncode == 0, ran.stderr
    [run] = organisation.shared_ledger("budget")["runs"]
    assert run["repository"] == "octo/site" and run["outcome"] == "pr_opened"
    text = subprocess.run([sys.executable, "-m", "automation", "status", "--repo", str(world.tmp / "repo-run")],
                          cwd=world.tmp, env=world.env, capture_output=True, text=True, timeout=60)
    assert f"organisation budget, shared through {organisation.ledger}" in text.stdout, text.stderr
    assert "octo/repo (this repository): $0.00 of its $0.05 share" in text.stdout


@pytest.mark.parametrize("token, why", [(None, "is not set"), ("read-token", "may not push")])
def test_a_missing_or_read_only_ledger_token_is_refused_before_any_paid_call(
    organisation: Organisation, token: str | None, why: str,
) -> None:
    world = organisation.world
    with FakeGitHost(world.tmp / "host", {"read-token": READ, "write-token": WRITE}) as host:
        ledger_repository(world, world.tmp / "host" / "org" / "ledger.git", "budget:\n  monthly_usd: 5\n")
        share_ledger(organisation, "org/ledger")  # owner/name on this job's GitHub host
        env = {**world.env, "GITHUB_SERVER_URL": host.url, **({TOKEN_VARIABLE: token} if token else {})}

        result = finish(organisation.start("octo/repo", "repo-run", env=env))

        assert result.returncode == 1, result.stdout + result.stderr
        [line] = [line for line in result.stderr.splitlines() if TOKEN_VARIABLE in line]
        assert why in line and "org/ledger" in line and "Contents: read and write" in line
        assert "Traceback" not in result.stderr and (token is None or token not in result.stdout + result.stderr)
        assert world.anthropic.requests == [] and world.openai.requests == []  # not even the free token count
        assert bool(host.refused) == (token is not None)  # a missing token is said before asking; a read-only one is refused

        allowed = finish(organisation.start("octo/repo", "repo-allowed", env={**env, TOKEN_VARIABLE: "write-token"}))
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        shared = subprocess.run(["git", "show", f"main:{LEDGER}"], cwd=world.tmp / "host" / "org" / "ledger.git",
                                capture_output=True, text=True, check=True).stdout
        assert [run["repository"] for run in json.loads(shared)["runs"]] == ["octo/repo"]
        assert "write-token" not in allowed.stdout + allowed.stderr
