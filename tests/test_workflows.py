"""The GitHub Actions side: workflows, the composite action, Dependabot and the example config.

Three layers, all offline:
1. schema validation with check-jsonschema's vendored schemas (no download);
2. zizmor's static analysis with ``--offline`` (no GitHub token, no network);
3. plain YAML checks for what the project asks of its workflows, plus the run scripts
   themselves executed against a stub ``python`` to see the exact command line they build.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
BOT_WORKFLOW = WORKFLOWS_DIR / "ai-orchestration.yml"
CI_WORKFLOW = WORKFLOWS_DIR / "ci.yml"
ACTION = ROOT / "action.yml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
EXAMPLE_CONFIG = ROOT / ".github" / "ai-orchestration.yml"

WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml")) + sorted(WORKFLOWS_DIR.glob("*.yaml"))
ACTION_FILES = [*WORKFLOWS, ACTION]

SHA_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(?:\.\d+)*\b")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?P<comment>#.*)?$")


# --- helpers ------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a YAML mapping"
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """PyYAML (YAML 1.1) reads the key ``on`` as the boolean True."""
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), "'on:' must be a mapping of events"
    return on


def steps_of(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, step) for every step of a workflow's jobs or a composite action."""
    if "jobs" in document:
        for job_id, job in document["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                yield f"jobs.{job_id}.steps[{index}]", step
    else:
        for index, step in enumerate(document.get("runs", {}).get("steps", [])):
            yield f"runs.steps[{index}]", step


def tool(name: str) -> str:
    """Path of an installed console script; skip (with the reason) only if it is really missing."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (it is in requirements-dev.txt: pip install -r requirements-dev.txt)")
    return found


def offline_env() -> dict[str, str]:
    """The environment for the linters: no GitHub token, so nothing can go online with one."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}}
    env["ZIZMOR_OFFLINE"] = "true"
    env["NO_COLOR"] = "1"
    return env


def run_tool(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=120)


def step_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    for _, step in steps_of(document):
        if step.get("name") == name:
            return step
    raise AssertionError(f"no step named {name!r}")


def test_the_files_exist() -> None:
    for path in (BOT_WORKFLOW, CI_WORKFLOW, ACTION, DEPENDABOT, EXAMPLE_CONFIG):
        assert path.is_file(), f"missing {path.relative_to(ROOT)}"


# --- 1. schemas (check-jsonschema, vendored schemas: no network) -----------------------------


@pytest.mark.parametrize(
    ("schema", "paths"),
    [
        ("vendor.github-workflows", WORKFLOWS),
        ("custom.github-workflows-require-timeout", WORKFLOWS),
        ("vendor.github-actions", [ACTION]),
        ("vendor.dependabot", [DEPENDABOT]),
    ],
    ids=["workflows", "workflows-timeout", "action", "dependabot"],
)
def test_schema(schema: str, paths: list[Path]) -> None:
    # --builtin-schema uses the copy vendored inside check-jsonschema; nothing is downloaded.
    result = run_tool([tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)])
    assert result.returncode == 0, f"{schema}:\n{result.stdout}\n{result.stderr}"


# --- 2. zizmor (offline, default persona and severity) -------------------------------------


def test_zizmor_has_no_findings() -> None:
    inputs = [str(path.relative_to(ROOT)) for path in [*ACTION_FILES, DEPENDABOT]]
    result = run_tool([tool("zizmor"), "--offline", "--no-progress", "--color", "never", *inputs])
    assert result.returncode == 0, f"zizmor findings (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    assert "No findings" in result.stdout, result.stdout


# --- 3. what the project asks of every workflow --------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_top_level_permissions_are_empty(path: Path) -> None:
    assert load(path).get("permissions") == {}, f"{path.name}: the top level must say 'permissions: {{}}'"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_its_own_permissions_and_a_timeout(path: Path) -> None:
    for job_id, job in load(path)["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict) and permissions, f"{path.name}: job {job_id} needs its own permissions"
        assert set(permissions.values()) <= {"read", "write", "none"}, f"{path.name}: job {job_id}: {permissions}"
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) and 0 < timeout <= 60, f"{path.name}: job {job_id} needs timeout-minutes"


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = USES_LINE.match(line)
        if not match:
            continue
        seen += 1
        ref = match["ref"]
        if ref.startswith(("./", "$/")):  # this repository at the commit being run
            continue
        assert SHA_PINNED.match(ref), f"{path.name}:{number}: '{ref}' is not pinned to a full 40-hex commit SHA"
        assert VERSION_COMMENT.search(match["comment"] or ""), f"{path.name}:{number}: add '# vX.Y.Z' after the SHA"
    # every `uses:` the YAML parser sees was looked at by the line scan above
    parsed = [step["uses"] for _, step in steps_of(load(path)) if "uses" in step]
    assert parsed and seen == len(parsed), f"{path.name}: every 'uses:' must sit on its own 'uses: ref # vX' line"


@pytest.mark.parametrize("path", ACTION_FILES, ids=lambda p: p.name)
def test_no_expression_is_interpolated_into_a_script(path: Path) -> None:
    """Template injection: `${{ inputs.task }}` inside `run:` is pasted into the script as code.
    Inputs, event data and secrets reach scripts through `env:` only."""
    for where, step in steps_of(load(path)):
        script = step.get("run")
        if script is None:
            continue
        for dangerous in ("${{ inputs.", "${{ github.event.", "${{ secrets.", "${{ github.head_ref"):
            assert dangerous not in script, f"{path.name} {where}: '{dangerous}' inside run:; pass it through env:"
        assert "${{" not in script, f"{path.name} {where}: no expressions inside run: (use env:)"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_keeps_credentials_only_where_the_job_pushes(path: Path) -> None:
    for job_id, job in load(path)["jobs"].items():
        scripts = " ".join(str(step.get("run", "")) for step in job.get("steps", []))
        # a job pushes with git when it may write contents and runs the bot (which pushes) or git push;
        # the release job writes its tag through the API and keeps no credentials
        pushes = job.get("permissions", {}).get("contents") == "write" and ("-m automation" in scripts or "git push" in scripts)
        for step in job.get("steps", []):
            if not str(step.get("uses", "")).startswith("actions/checkout@"):
                continue
            persist = step.get("with", {}).get("persist-credentials")
            assert persist is (True if pushes else False), (
                f"{path.name}: job {job_id}: persist-credentials must be {str(pushes).lower()} "
                "(only a job that pushes keeps the checkout's credentials)"
            )


# --- the bot's workflow -----------------------------------------------------------------------


def test_bot_workflow_schedule_and_manual_inputs() -> None:
    on = triggers(load(BOT_WORKFLOW))
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert on["schedule"] == [{"cron": "17 */3 * * *"}]
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"task", "dry_run"}
    assert inputs["task"]["type"] == "string" and inputs["task"].get("required", False) is False
    assert inputs["dry_run"]["type"] == "boolean" and inputs["dry_run"]["default"] is False


def test_bot_workflow_runs_one_at_a_time_without_cancelling() -> None:
    concurrency = load(BOT_WORKFLOW)["concurrency"]
    assert isinstance(concurrency["group"], str) and "${{" not in concurrency["group"], "one fixed group"
    assert concurrency["cancel-in-progress"] is False


def test_bot_job_has_exactly_the_permissions_it_needs() -> None:
    jobs = load(BOT_WORKFLOW)["jobs"]
    assert set(jobs) == {"run", "pages"}
    assert jobs["run"]["permissions"] == {
        "contents": "write", "pull-requests": "write",  # branches, the ledger, PRs, labels and replies
        "checks": "read", "statuses": "read", "actions": "read",  # follow-ups read CI results and job logs
        "issues": "write",  # intake: labelled issues, their events, one comment on each
    }


def test_the_action_documents_the_follow_up_permissions() -> None:
    header = ACTION.read_text(encoding="utf-8").split("inputs:")[0]
    for permission in ("contents: write", "pull-requests: write", "checks: read", "statuses: read", "actions: read",
                       "issues: write"):
        assert permission in header


# --- the optional dashboard -------------------------------------------------------------------

DASHBOARD_SWITCH = "vars.AI_ORCHESTRATION_DASHBOARD"


def test_only_the_pages_job_may_deploy_and_only_when_switched_on() -> None:
    pages = load(BOT_WORKFLOW)["jobs"]["pages"]
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}, "the least Pages needs"
    assert pages["needs"] == "run"
    assert pages["if"] == "${{ !cancelled() && vars.AI_ORCHESTRATION_DASHBOARD == 'pages' }}"
    assert pages["environment"] == {"name": "github-pages", "url": "${{ steps.deployment.outputs.page_url }}"}
    [deploy] = pages["steps"]
    assert deploy["uses"].startswith("actions/deploy-pages@") and deploy["id"] == "deployment"
    assert not any("checkout" in str(step.get("uses", "")) for step in pages["steps"]), "deploying needs no code"


def test_the_run_job_builds_and_uploads_the_dashboard_only_when_asked() -> None:
    workflow = load(BOT_WORKFLOW)
    names = [step.get("name") for step in workflow["jobs"]["run"]["steps"]]
    build = step_named(workflow, "Build the dashboard")
    for_pages = step_named(workflow, "Upload the dashboard for GitHub Pages")
    as_artifact = step_named(workflow, "Upload the dashboard as an artifact")
    assert names.index("Run the bot") < names.index("Build the dashboard") < names.index("Upload the dashboard for GitHub Pages")
    for step in (build, for_pages, as_artifact):
        assert step["if"].startswith("${{ !cancelled() && ") and DASHBOARD_SWITCH in step["if"], step["name"]
    assert "== 'pages'" in for_pages["if"] and "== 'artifact'" in as_artifact["if"]
    assert for_pages["uses"].startswith("actions/upload-pages-artifact@")
    assert as_artifact["uses"].startswith("actions/upload-artifact@")
    assert for_pages["with"]["path"] == as_artifact["with"]["path"] == "${{ runner.temp }}/dashboard"
    assert as_artifact["with"]["name"] == "ai-orchestration-dashboard"


def test_the_dashboard_step_builds_the_site_from_the_checkout_into_runner_temp(tmp_path: Path) -> None:
    script = step_named(load(BOT_WORKFLOW), "Build the dashboard")["run"]
    args = run_script(script, tmp_path, {}, tmp_path / "bin" / "python")
    # what the upload steps pick up: ${{ runner.temp }}/dashboard (the command is tested in test_dashboard.py)
    assert args == ["-m", "automation", "dashboard", "--repo", str(tmp_path / "workspace"),
                    "--out", str(tmp_path / "runner-temp" / "dashboard")]


def test_bot_workflow_reads_inputs_and_secrets_through_env() -> None:
    workflow = load(BOT_WORKFLOW)
    checkout = step_named(workflow, "Check out")
    token = "${{ secrets.AI_ORCHESTRATION_TOKEN || secrets.GITHUB_TOKEN }}"
    ledger_token = "${{ secrets.AI_ORCHESTRATION_LEDGER_TOKEN }}"
    assert checkout["with"]["token"] == token, "the optional PAT must also be what pushes"
    assert checkout["with"]["persist-credentials"] is True, "the bot pushes with the checkout's credentials"
    assert checkout["with"]["fetch-depth"] == 1, "one commit: the bot never needs the history"

    decide = step_named(workflow, "Decide")["env"]
    assert decide == {
        "TASK": "${{ inputs.task }}",
        "DRY_RUN": "${{ inputs.dry_run }}",  # the inputs context keeps booleans boolean
        "DISCORD_WEBHOOK_URL": "${{ secrets.DISCORD_WEBHOOK_URL }}",
        "GITHUB_TOKEN": token,
        "AI_ORCHESTRATION_LEDGER_TOKEN": ledger_token,  # a shared ledger's token is checked before any work
        "AI_ORCHESTRATION_PAUSED": "${{ vars.AI_ORCHESTRATION_PAUSED }}",
    }, "the deciding step gets no model keys"
    env = step_named(workflow, "Run the bot")["env"]
    assert env == {
        "TASK": "${{ inputs.task }}",
        "ANTHROPIC_API_KEY": "${{ secrets.ANTHROPIC_API_KEY }}",
        "OPENAI_API_KEY": "${{ secrets.OPENAI_API_KEY }}",
        "DISCORD_WEBHOOK_URL": "${{ secrets.DISCORD_WEBHOOK_URL }}",
        "GITHUB_TOKEN": token,
        "AI_ORCHESTRATION_LEDGER_TOKEN": ledger_token,
        "AI_ORCHESTRATION_PAUSED": "${{ vars.AI_ORCHESTRATION_PAUSED }}",
    }
    assert step_named(workflow, "Build the dashboard")["env"] == {"AI_ORCHESTRATION_LEDGER_TOKEN": ledger_token}
    assert "github.event.inputs" not in BOT_WORKFLOW.read_text(encoding="utf-8")


def test_bot_workflow_caches_pip_on_requirements() -> None:
    setup = step_named(load(BOT_WORKFLOW), "Set up Python")
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["cache"] == "pip"
    assert setup["with"]["cache-dependency-path"].split() == ["requirements-light.txt", "requirements.txt"]


@pytest.mark.parametrize("document", [BOT_WORKFLOW, ACTION], ids=lambda p: p.name)
def test_a_run_with_nothing_to_do_never_installs_the_provider_sdks(document: Path) -> None:
    """Light install, decide, and only with work (work=true from --decide-only) the SDKs and the run."""
    steps = [step for _, step in steps_of(load(document))]
    names = [step.get("name") for step in steps]
    light, decide, sdks, run = (names.index(name) for name in (
        "Install the light dependencies" if document == BOT_WORKFLOW else "Install the bot", "Decide",
        "Install the model SDKs", "Run the bot"))
    assert light < decide < sdks < run
    assert "requirements-light.txt" in steps[light]["run"] and "requirements.txt" not in steps[light]["run"].replace("requirements-light.txt", "")
    assert "--decide-only" in steps[decide]["run"] and steps[decide]["id"] == "decide"
    for index in (sdks, run):
        assert steps[index]["if"] == "steps.decide.outputs.work == 'true'"
    assert "requirements.txt" in steps[sdks]["run"]
    light_requirements = (ROOT / "requirements-light.txt").read_text(encoding="utf-8").lower()
    assert "anthropic" not in light_requirements and "openai" not in light_requirements


# --- the run scripts, executed against a stub python ------------------------------------------


STUB_PYTHON = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$ARGS_FILE"
printf '%s\\n' "${PYTHONPATH:-}" > "$ARGS_FILE.pythonpath"
"""


def run_script(script: str, tmp_path: Path, env: dict[str, str], stub: Path) -> list[str]:
    """Run a `run:` block with bash -e like Actions does, with `python` replaced by a stub."""
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(STUB_PYTHON, encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    args_file = tmp_path / "args"
    full_env = {
        "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "ARGS_FILE": str(args_file),
        **env,
    }
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                            cwd=workspace, env=full_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not (workspace / "pwned").exists(), "a task text was executed as shell code"
    return args_file.read_text(encoding="utf-8").splitlines()


HOSTILE_TASK = 'Fix "quotes" $(touch pwned) `touch pwned`; echo done'


@pytest.mark.parametrize(
    ("task", "dry_run", "expected_tail"),
    [
        ("", "", ["--decide-only"]),  # the cron run: the inputs context is empty
        ("", "false", ["--decide-only"]),
        ("", "true", ["--dry-run"]),
        (HOSTILE_TASK, "false", ["--decide-only", "--task", HOSTILE_TASK]),
        (HOSTILE_TASK, "true", ["--dry-run", "--task", HOSTILE_TASK]),
    ],
)
def test_bot_workflow_decide_script_builds_the_command(tmp_path: Path, task: str, dry_run: str, expected_tail: list[str]) -> None:
    script = step_named(load(BOT_WORKFLOW), "Decide")["run"]
    args = run_script(script, tmp_path, {"TASK": task, "DRY_RUN": dry_run}, tmp_path / "bin" / "python")
    assert args == ["-m", "automation", "run", "--repo", str(tmp_path / "workspace"), *expected_tail]


@pytest.mark.parametrize("task", ["", HOSTILE_TASK])
def test_bot_workflow_run_script_builds_the_command(tmp_path: Path, task: str) -> None:
    script = step_named(load(BOT_WORKFLOW), "Run the bot")["run"]
    args = run_script(script, tmp_path, {"TASK": task}, tmp_path / "bin" / "python")
    assert args == ["-m", "automation", "run", "--repo", str(tmp_path / "workspace"), *(["--task", task] if task else [])]


@pytest.mark.parametrize("document", [BOT_WORKFLOW, ACTION], ids=lambda p: p.name)
@pytest.mark.parametrize("task", [" ", "   ", "\t \n"])
def test_a_task_input_of_spaces_is_refused_before_anything_runs(tmp_path: Path, document: Path, task: str) -> None:
    script = step_named(load(document), "Decide")["run"]
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir(parents=True)
    stub.write_text(STUB_PYTHON, encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), "ARGS_FILE": str(tmp_path / "args"),
           "GITHUB_WORKSPACE": str(tmp_path), "RUNNER_TEMP": str(tmp_path), "TASK": task, "DRY_RUN": "false",
           "CONFIG_PATH": "", "ACTION_PATH": str(ROOT)}
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout.startswith("::error title=ai-orchestration::the task input is only spaces")
    assert not (tmp_path / "args").exists(), "the bot was started"


def test_action_scripts_build_the_commands(tmp_path: Path) -> None:
    action = load(ACTION)
    (tmp_path / "decide").mkdir()
    (tmp_path / "run").mkdir()
    stub = tmp_path / "decide" / "runner-temp" / "ai-orchestration-venv" / "bin" / "python"
    env = {"ACTION_PATH": "/actions/ai-orchestration", "TASK": HOSTILE_TASK, "DRY_RUN": "true",
           "CONFIG_PATH": ".github/bot.yml"}
    args = run_script(step_named(action, "Decide")["run"], tmp_path / "decide", env, stub)
    workspace = str(tmp_path / "decide" / "workspace")
    assert args == ["-m", "automation", "run", "--repo", workspace, "--dry-run", "--task", HOSTILE_TASK,
                    "--config", ".github/bot.yml"]  # relative to --repo
    pythonpath = (tmp_path / "decide" / "args.pythonpath").read_text(encoding="utf-8").strip()
    assert pythonpath.split(os.pathsep)[0] == "/actions/ai-orchestration"

    stub = tmp_path / "run" / "runner-temp" / "ai-orchestration-venv" / "bin" / "python"
    args = run_script(step_named(action, "Run the bot")["run"], tmp_path / "run", env, stub)
    assert args == ["-m", "automation", "run", "--repo", str(tmp_path / "run" / "workspace"), "--task", HOSTILE_TASK,
                    "--config", ".github/bot.yml"]


def test_action_script_defaults(tmp_path: Path) -> None:
    script = step_named(load(ACTION), "Decide")["run"]
    stub = tmp_path / "runner-temp" / "ai-orchestration-venv" / "bin" / "python"
    args = run_script(script, tmp_path, {"ACTION_PATH": "/a", "TASK": "", "DRY_RUN": "false", "CONFIG_PATH": ""}, stub)
    assert args == ["-m", "automation", "run", "--repo", str(tmp_path / "workspace"), "--decide-only"]


# --- the composite action ---------------------------------------------------------------------


def test_action_inputs_mirror_the_workflow() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {
        "task", "dry-run", "config", "anthropic-api-key", "openai-api-key", "discord-webhook-url",
        "github-token", "ledger-token", "paused", "python-version",
    }
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    for name, spec in action["inputs"].items():
        assert spec.get("required") is False, f"input {name} must be optional (a dry run needs no keys)"


def test_action_masks_secrets_installs_from_its_own_path_and_runs_on_the_workspace() -> None:
    action = load(ACTION)
    for _, step in steps_of(action):
        if "run" in step:
            assert step.get("shell") == "bash", "composite run steps need an explicit shell"

    mask = step_named(action, "Mask secrets")
    assert "::add-mask::" in mask["run"]
    assert set(mask["env"].values()) >= {
        "${{ inputs.anthropic-api-key }}", "${{ inputs.openai-api-key }}",
        "${{ inputs.discord-webhook-url }}", "${{ inputs.github-token }}", "${{ inputs.ledger-token }}",
    }
    assert '"$AI_ORCHESTRATION_LEDGER_TOKEN"' in mask["run"]
    names = [step.get("name") for _, step in steps_of(action)]
    assert names.index("Mask secrets") == 0, "mask before anything can print a secret"

    install = step_named(action, "Install the bot")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert '-r "$ACTION_PATH/requirements-light.txt"' in install["run"]
    assert '-r "$ACTION_PATH/requirements.txt"' in step_named(action, "Install the model SDKs")["run"]

    run = step_named(action, "Run the bot")
    assert run["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert 'PYTHONPATH="$ACTION_PATH' in run["run"]
    assert '--repo "$GITHUB_WORKSPACE"' in run["run"]
    assert run["env"]["GITHUB_TOKEN"] == "${{ inputs.github-token }}"
    assert run["env"]["ANTHROPIC_API_KEY"] == "${{ inputs.anthropic-api-key }}"

    setup = step_named(action, "Set up Python")
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"


# --- CI and Dependabot ------------------------------------------------------------------------


def test_ci_runs_the_suite_on_every_supported_python() -> None:
    ci = load(CI_WORKFLOW)
    assert {"push", "pull_request"} <= set(triggers(ci))
    tests = ci["jobs"]["tests"]
    assert tests["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12", "3.13"]
    scripts = "\n".join(step.get("run", "") for step in tests["steps"])
    assert "pip install --disable-pip-version-check -r requirements-dev.txt" in scripts
    assert "python -m pytest" in scripts
    for job_id, job in ci["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, f"ci.yml: job {job_id} only reads"


def test_dependabot_updates_actions_and_pip_weekly() -> None:
    updates = {entry["package-ecosystem"]: entry for entry in load(DEPENDABOT)["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    for entry in updates.values():
        assert entry["schedule"]["interval"] == "weekly"
        assert entry["directory"] == "/"


# --- the example config -----------------------------------------------------------------------

def test_example_config_shows_milestones_commented_out() -> None:
    # Left out, milestones follow budget.monthly_usd; that every key is listed is tests/test_config.py's job
    assert "  # milestones_usd: [5, 10, 15]\n" in EXAMPLE_CONFIG.read_text(encoding="utf-8")


def test_example_config_is_exactly_the_defaults() -> None:
    import dataclasses
    import datetime as dt

    from automation.core.config import Config, load_config

    loaded = load_config(EXAMPLE_CONFIG, ROOT, dt.date(2026, 11, 21))
    defaults = Config()
    for field in dataclasses.fields(Config):
        if field.name in {"source", "prices", "from_file", "bot_paths"}:  # bot_paths: this repository holds the bot
            continue
        assert getattr(loaded, field.name) == getattr(defaults, field.name), field.name


# --- the model guide's cost table follows the price table ----------------------------------------

GUIDE = ROOT / "docs" / "SONNET-MINI-GUIDE.md"
GUIDE_ROW = re.compile(
    r"^\| `(?P<analysis>[\w.-]+)` \| `(?P<code>[\w.-]+)`[^|]*\| \$(?P<a>[\d.]+) \| \$(?P<c>[\d.]+) \| "
    r"\*\*\$(?P<typical>[\d.]+)\*\* \| \**(?P<runs>[\d,]+)\** \|(?: \$(?P<worst>[\d.]+) \| (?P<guaranteed>[\d,]+) \|)?",
    re.MULTILINE,
)


def test_guide_cost_figures_match_the_price_table() -> None:
    """The guide's numbers were computed with automation.core.prices; a price change must update them."""
    from automation.core.config import Config
    from automation.core.prices import MICRO, PriceTable, Usage, format_usd
    from automation.money.budget import run_cost

    if not GUIDE.is_file():
        pytest.skip("docs/SONNET-MINI-GUIDE.md not written yet")
    table = PriceTable.builtin()
    rows = list(GUIDE_ROW.finditer(GUIDE.read_text(encoding="utf-8")))
    assert len(rows) >= 5, "the guide's cost table was not found"
    for row in rows:
        caps = Config().output_cap(row["analysis"]), Config().output_cap(row["code"])  # the default caps
        # the plan and typical thinking at effort medium (3,000 tokens), counted for every analysis model
        analysis = Usage(input_tokens=20_000, output_tokens=5_000, reasoning_tokens=3_000)
        cost = run_cost(table.find(row["analysis"]), table.find(row["code"]), *caps,
                        analysis=analysis, code=Usage(input_tokens=24_000, output_tokens=6_000))
        where = f"{row['analysis']} + {row['code']}"
        assert format_usd(cost.analysis_typical, 4) == f"${row['a']}", where
        assert format_usd(cost.code_typical, 4) == f"${row['c']}", where
        assert format_usd(cost.typical, 4) == f"${row['typical']}", where
        assert 15 * MICRO // cost.typical == int(row["runs"].replace(",", "")), where
        if row["worst"]:
            assert format_usd(cost.worst, 4) == f"${row['worst']}", where
            assert 15 * MICRO // cost.worst == int(row["guaranteed"].replace(",", "")), where
