"""Pausing the bot: `enabled: false` in the config, or the repository variable the workflow passes in.

A paused run stops before any work: no ledger read, no network (the GitHub API below is a closed
port), nothing written to the checkout; `--decide-only` tells the workflow there is no work, and
`status` says the bot is paused and why.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
from pathlib import Path

import pytest

from automation.cli import main

NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.timezone.utc)
CLOSED_PORT = "http://127.0.0.1:9"  # discard: any request would fail the run with exit 1
CONFIG = ".github/ai-orchestration.yml"


def checkout(tmp_path: Path, config: str | None) -> Path:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "TASKS.md").write_text("# Tasks\n- [ ] Add a greeting\n", encoding="utf-8")
    if config is not None:
        (repo / ".github").mkdir()
        (repo / CONFIG).write_text(config, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "seed"],
                   check=True)
    return repo


def cli(repo: Path, *argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--repo", str(repo)], env=env, now=NOW, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def git_status(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--ignored"],
                          capture_output=True, text=True, check=True).stdout


PAUSES = [
    pytest.param("enabled: false\n", {}, f"enabled is false in {{repo}}/{CONFIG}; set it to true (or delete the line) to resume", id="config"),
    pytest.param(None, {"AI_ORCHESTRATION_PAUSED": "true"},
                 "the repository variable AI_ORCHESTRATION_PAUSED is 'true'; delete it to resume", id="variable"),
]


@pytest.mark.parametrize(("config", "variables", "reason"), PAUSES)
@pytest.mark.parametrize("decide_only", [False, True])
def test_a_paused_run_stops_before_any_work(
    tmp_path: Path, config: str | None, variables: dict[str, str], reason: str, decide_only: bool
) -> None:
    repo = checkout(tmp_path, config)
    output, summary = tmp_path / "output", tmp_path / "summary"
    env = {"GITHUB_API_URL": CLOSED_PORT, "GITHUB_REPOSITORY": "o/r", "GITHUB_TOKEN": "t",
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), **variables}
    # no API keys either: a paused run does not even ask for them
    code, out, err = cli(repo, "run", *(["--decide-only"] if decide_only else []), env=env)
    assert (code, err) == (0, "")
    assert out == f"Paused: {reason.format(repo=repo)}. Nothing was done (exit 0).\n"
    assert git_status(repo) == "", "nothing written to the checkout (no ledger)"
    assert ("work=false\n" if decide_only else "") == (output.read_text(encoding="utf-8") if output.exists() else "")
    assert "ai-orchestration is paused" in summary.read_text(encoding="utf-8")


@pytest.mark.parametrize(("config", "variables", "reason"), PAUSES)
def test_status_and_the_dry_run_say_the_bot_is_paused(
    tmp_path: Path, config: str | None, variables: dict[str, str], reason: str
) -> None:
    repo = checkout(tmp_path, config)
    expected = reason.format(repo=repo)
    code, out, _ = cli(repo, "status", env=variables)
    assert code == 0 and out.startswith(f"Paused: {expected}")
    code, out, _ = cli(repo, "status", "--json", env=variables)
    assert code == 0 and json.loads(out)["paused"].startswith(expected)
    code, out, _ = cli(repo, "run", "--dry-run", env=variables)
    assert code == 0 and out.splitlines()[1].startswith(f"Paused: {expected}")
    assert "Task: Add a greeting" in out, "the dry run still shows what a run would do once resumed"


def test_not_paused_by_default_nor_by_an_empty_or_false_variable(tmp_path: Path) -> None:
    repo = checkout(tmp_path, "enabled: true\n")
    for variables in ({}, {"AI_ORCHESTRATION_PAUSED": ""}, {"AI_ORCHESTRATION_PAUSED": "false"}):
        code, out, _ = cli(repo, "status", "--json", env=variables)
        assert code == 0 and json.loads(out)["paused"] is None
