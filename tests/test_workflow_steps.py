"""The bot's workflow and the composite action, step by step, as a runner runs them.

Not the command lines against a stub (tests/test_workflows.py does that): here each step's real
script runs the real bot, in an interpreter that holds only what the earlier steps installed
(tests/workflow_runner.py), against a loopback GitHub (and model servers when there is work).
A scheduled run with nothing to do must end green with the light requirements alone, the
dashboard included; a run with work must get through with what its install step brings.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.fakes.github_server import FakeGitHub, fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import GREETING
from tests.workflow_runner import Job, runner_env, setup_python, steps_of, write_pip_shim

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ai-orchestration.yml"
ACTION = ROOT / "action.yml"
DONE = "# Tasks\n- [x] Everything is done\n"
ONE_TASK = "# Tasks\n- [ ] Add a greeting module\n"


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def checkout(tmp: Path, tasks: str, *, template: bool) -> Path:
    """What actions/checkout leaves: one commit of the repository, `origin` a bare remote.
    A template copy holds the bot itself (its package and requirements files)."""
    seed = tmp / "seed"
    (seed / "docs").mkdir(parents=True)
    (seed / "docs" / "TASKS.md").write_text(tasks, encoding="utf-8")
    (seed / "app").mkdir()
    (seed / "app" / "__init__.py").write_text("", encoding="utf-8")
    if template:
        shutil.copytree(ROOT / "automation", seed / "automation", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("requirements-light.txt", "requirements.txt"):
            shutil.copy(ROOT / name, seed / name)
    git(tmp, "init", "-q", "-b", "main", str(seed))
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "seed")
    remote = tmp / "remote.git"
    git(tmp, "clone", "-q", "--bare", str(seed), str(remote))
    workspace = tmp / "workspace"
    git(tmp, "clone", "-q", "--depth", "1", f"file://{remote}", str(workspace))
    return workspace


def job(tmp: Path, workspace: Path, github: FakeGitHub, *, extra_env: dict[str, str] | None = None, **contexts: object) -> Job:
    env = runner_env(tmp, workspace, setup_python(tmp), write_pip_shim(tmp / "pip-shim"),
                     {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": github.full_name, **(extra_env or {})})
    return Job(tmp=tmp, workspace=workspace, env=env, secrets={"GITHUB_TOKEN": github.token}, **contexts)  # type: ignore[arg-type]


def say(finished: Job) -> str:
    return "\n".join(f"--- {name} (exit {log.returncode})\n{log.stdout}{log.stderr}" for name, log in finished.logs.items())


def test_a_scheduled_run_with_nothing_to_do_is_green_with_the_light_requirements_and_the_dashboard(
    tmp_path: Path, fake_github: FakeGitHub
) -> None:
    workspace = checkout(tmp_path, DONE, template=True)
    finished = job(tmp_path, workspace, fake_github, inputs={"task": "", "dry_run": ""},
                   variables={"AI_ORCHESTRATION_DASHBOARD": "artifact"}).run_steps(steps_of(WORKFLOW, "run"))

    assert not finished.failed, say(finished)
    assert "Install the model SDKs" not in finished.ran and "Run the bot" not in finished.ran
    assert finished.outputs["decide"] == {"work": "false"}
    assert "No task left in docs/TASKS.md" in finished.logs["Decide"].stdout
    assert "Build the dashboard" in finished.ran
    [uploaded] = finished.uploaded.values()
    assert "Costs and provider health" in (uploaded / "index.html").read_text(encoding="utf-8")

    # the metrics a step after the run would push, with the same light install
    metrics = subprocess.run(["python", "-m", "automation", "status", "--format", "prometheus"], cwd=workspace,
                             env=finished.env, capture_output=True, text=True, timeout=60)
    assert metrics.returncode == 0, metrics.stderr
    assert "ai_orchestration_budget_usd" in metrics.stdout


def test_a_paused_bot_ends_in_the_decide_step(tmp_path: Path, fake_github: FakeGitHub) -> None:
    workspace = checkout(tmp_path, ONE_TASK, template=True)
    finished = job(tmp_path, workspace, fake_github, inputs={"task": "", "dry_run": ""},
                   variables={"AI_ORCHESTRATION_PAUSED": "true"}).run_steps(steps_of(WORKFLOW, "run"))

    assert not finished.failed, say(finished)
    assert finished.outputs["decide"] == {"work": "false"} and "Run the bot" not in finished.ran
    said = [line for line in finished.logs["Decide"].stdout.splitlines() if not line.startswith("::add-mask::")]
    assert said == ["Paused: the repository variable AI_ORCHESTRATION_PAUSED is 'true'; delete it to resume. "
                    "Nothing was done (exit 0)."]
    assert fake_github.requests == [], "paused before any work"


def test_a_run_with_work_installs_the_sdks_and_opens_the_pull_request(
    tmp_path: Path, fake_github: FakeGitHub, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    workspace = checkout(tmp_path, ONE_TASK, template=True)
    fake_anthropic.text = "## Changes\nAdd `app/greeting.py`.\n\n## Files\n- `app/greeting.py`\n"
    fake_openai.content = FakeOpenAI.code_reply("Add a greeting module", [GREETING])
    gateways = {"ANTHROPIC_BASE_URL": fake_anthropic.base_url, "OPENAI_BASE_URL": fake_openai.base_url}
    pending = job(tmp_path, workspace, fake_github, extra_env=gateways, inputs={"task": "", "dry_run": ""})
    pending.secrets.update({"ANTHROPIC_API_KEY": fake_anthropic.api_key, "OPENAI_API_KEY": fake_openai.api_key})
    finished = pending.run_steps(steps_of(WORKFLOW, "run"))

    assert not finished.failed, say(finished)
    assert finished.outputs["decide"] == {"work": "true"}
    assert finished.ran.count("Install the model SDKs") == 1 and "Run the bot" in finished.ran
    assert "Opened https://" in finished.logs["Run the bot"].stdout
    assert [request.json["head"] for request in fake_github.requests_to("POST", "/repos/*/pulls")] == ["ai/add-a-greeting-module"]


def test_the_action_runs_from_its_own_folder_with_the_light_requirements(tmp_path: Path, fake_github: FakeGitHub) -> None:
    """A user's repository (no bot code in it) with the action: its own venv, the light install, Decide."""
    workspace = checkout(tmp_path, DONE, template=False)
    finished = job(tmp_path, workspace, fake_github, action_path=ROOT,
                   inputs={"task": "", "dry-run": "false", "config": "", "github-token": fake_github.token,
                           "python-version": "3.12", "paused": ""},
                   extra_env={"ACTION_PATH": str(ROOT)}).run_steps(steps_of(ACTION))

    assert not finished.failed, say(finished)
    assert "Run the bot" not in finished.ran
    assert finished.outputs["decide"] == {"work": "false"} and "No task left" in finished.logs["Decide"].stdout
