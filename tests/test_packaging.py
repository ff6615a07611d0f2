"""Installing and running the bot: the package, its command, and the cheap no-op job.

The install test builds the package from a copy of the sources (so the checkout gains no
build/ or egg-info) into a fresh virtual environment, offline (`--no-build-isolation
--no-deps`, the dependencies coming from the interpreter running the tests: a `.pth` file names
its site-packages, so this works inside a user's own virtual environment too), and runs the
`ai-orchestration` command from a folder where `automation` cannot be imported otherwise.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("-r ")]


def test_the_package_depends_on_exactly_what_the_requirements_files_list() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert sorted(project["dependencies"]) == sorted(requirement_lines("requirements-light.txt") + requirement_lines("requirements.txt"))
    assert "-r requirements-light.txt" in (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert project["scripts"] == {"ai-orchestration": "automation.cli:main"}


def test_pip_install_gives_the_ai_orchestration_command(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "automation", source / "automation", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # `--system-site-packages` would show the base interpreter's packages, not those of the venv
    # the tests run in: name the running interpreter's site-packages instead.
    (venv_site,) = (venv / "lib").glob("python3*/site-packages")
    (venv_site / "test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # The venv's own bundled setuptools may predate the built-in bdist_wheel: take the dev one.
    backend = subprocess.run([*pip, "setuptools>=70.1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert backend.returncode == 0, backend.stderr
    install = subprocess.run([*pip, "--no-build-isolation", "--no-deps", str(source)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = str(venv / "bin" / "ai-orchestration")
    helped = subprocess.run([command, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: ai-orchestration ")
    for name in ("run", "status", "costs", "simulate"):
        assert f"    {name} " in helped.stdout

    subprocess.run(["git", "init", "-q", str(elsewhere)], check=True)
    # models that do not retire, so a clock faked months ahead cannot make this refuse the config
    (elsewhere / ".github").mkdir()
    (elsewhere / ".github" / "ai-orchestration.yml").write_text(
        "models:\n  code: gpt-6-luna\n  fallbacks:\n    code: [gpt-5.6-luna]\n", encoding="utf-8"
    )
    status = subprocess.run([command, "status", "--json"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert '"spent_usd": 0.0' in status.stdout
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", "import automation; print(automation.__file__)"],
                              cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert str(venv) in imported.stdout, "the installed package, not the checkout"


def test_the_readme_opens_with_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.split("```sh\n", 1)[1].startswith(
        "pip install -r requirements.txt && python -m automation run --dry-run\n"
        "pip install -r requirements-dev.txt && python -m pytest\n"
    )


def test_the_no_op_job_benchmark_runs() -> None:
    """Smoke test of benchmarks/bench_noop_job.py (without the slow pip installs)."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_noop_job.py"), "--repeat", "1", "--no-pip"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "checkout" in result.stdout and "run" in result.stdout and "ratio" in result.stdout


def test_the_supported_python_versions_are_stated_the_same_everywhere() -> None:
    """CI's matrix is the truth; the package, the action and the guides say the same range."""
    import yaml

    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    versions = ci["jobs"]["tests"]["strategy"]["matrix"]["python-version"]
    stated = f"Python {versions[0]} to {versions[-1]}"
    for name in ("README.md", "automation/README.md", "action.yml"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert stated in text, f"{name} must say {stated}"
        assert "or later" not in text and "3.10–3.13" not in text, f"{name} states the versions another way"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'requires-python = ">={versions[0]}"' in pyproject
    assert [f'"Programming Language :: Python :: {v}"' in pyproject for v in versions] == [True] * len(versions)


def test_the_readme_command_table_lists_every_command_and_output_format() -> None:
    """The README's table is where a new user looks for what the tool can do."""
    import argparse

    from automation.cli import build_parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[1]
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        assert f"`python -m automation {name}" in table, f"the README's command table lacks `{name}`"
        for action in sub._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help", "--repo", "--config", "--seed"):
                    assert flag in table, f"the README's command table lacks `{name} {flag}`"
            if action.dest == "format" and action.choices:
                assert all(choice in table for choice in action.choices if choice != "text")
