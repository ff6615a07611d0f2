"""The bot's own code in a repository made from the template is never context for the user's tasks,
and the guide's list of what a template copy should delete is right.

The dry run is what a user reads to see what is sent: each test reads it.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from automation.cli import main
from automation.core.own_code import bot_paths

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.timezone.utc)
APP = "def greet(name):\n    return f'Hello, {name}!'\n"


def repository(tmp_path: Path, *, template: bool, config: str = "") -> Path:
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "TASKS.md").write_text("# Tasks\n- [ ] Make greet say goodbye too\n", encoding="utf-8")
    (repo / "app").mkdir()
    (repo / "app" / "greeting.py").write_text(APP, encoding="utf-8")
    if template:
        for folder in ("automation", "tests", "benchmarks"):
            shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    if config:
        (repo / ".github").mkdir()
        (repo / ".github" / "ai-orchestration.yml").write_text(config, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    return repo


def sent(repo: Path, task: str | None = None) -> list[str]:
    """The files the dry run says it would send."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["run", "--dry-run", "--repo", str(repo), *(["--task", task] if task else [])]
    assert main(argv, env={}, now=NOW, out=out, err=err) == 0, err.getvalue()
    return re.findall(r"^  (\S+) \([\d,]+ tokens\):", out.getvalue(), re.MULTILINE)


def test_a_template_copy_never_sends_the_bot_s_own_code(tmp_path: Path) -> None:
    repo = repository(tmp_path, template=True)
    assert bot_paths(repo) == ("automation", "tests", "benchmarks")
    files = sent(repo, "Change automation/cli.py and tests/test_cli.py so greet says goodbye")  # even when named
    assert "app/greeting.py" in files
    assert not [path for path in files if path.startswith(("automation/", "tests/", "benchmarks/"))], files


def test_exclude_bot_false_sends_the_bot_s_code_for_working_on_the_bot_itself(tmp_path: Path) -> None:
    repo = repository(tmp_path, template=True, config="context:\n  exclude_bot: false\n")
    assert "automation/cli.py" in sent(repo, "Change automation/cli.py")


def test_a_project_s_own_tests_and_automation_folders_stay_context(tmp_path: Path) -> None:
    repo = repository(tmp_path, template=False)
    (repo / "automation").mkdir()
    (repo / "automation" / "__init__.py").write_text('"""Deployment scripts for the greeting app."""\n', encoding="utf-8")
    (repo / "automation" / "deploy.py").write_text("def deploy():\n    pass\n", encoding="utf-8")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_greeting.py").write_text("from app.greeting import greet\n", encoding="utf-8")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    assert bot_paths(repo) == ()
    files = sent(repo, "Check automation/deploy.py and tests/test_greeting.py")
    assert "automation/deploy.py" in files and "tests/test_greeting.py" in files


def test_the_guide_s_list_of_what_a_template_copy_deletes_is_right() -> None:
    """Every path the `git rm` line names exists here, and the bot's workflow needs none of them."""
    guide = (ROOT / "automation" / "README.md").read_text(encoding="utf-8")
    [command] = [line for line in guide.splitlines() if line.startswith("git rm -r -q ")]
    deleted = command.removeprefix("git rm -r -q ").split()
    for path in deleted:
        assert (ROOT / path).exists(), f"the guide deletes {path}, which is not in this repository"
    workflow = (ROOT / ".github" / "workflows" / "ai-orchestration.yml").read_text(encoding="utf-8")
    scripts = " ".join(step.get("run", "") for step in yaml.safe_load(workflow)["jobs"]["run"]["steps"])
    needed = set(re.findall(r"-r (\S+)", scripts))
    assert needed == {"requirements-light.txt", "requirements.txt"} and not needed & set(deleted)
    assert "automation" not in deleted and ".github/workflows/ai-orchestration.yml" not in deleted
    assert not (set(deleted) & {"requirements-light.txt", "requirements.txt", "docs/TASKS.md", ".github/ai-orchestration.yml"})
