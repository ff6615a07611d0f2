"""Releases: the changelog's format, the version scheme, and the release workflow run offline.

The workflow's steps run as a runner runs them (tests/workflow_runner.py) on a copy of this
repository: the real checks, the real `python -m build` with the pinned tools, and a stand-in
`gh` (the one step that needs GitHub) that records the release it was asked to create.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from automation import __version__
from tests.workflow_runner import Job, runner_env, setup_python, steps_of, write_pip_shim

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".github" / "scripts"))
import release  # noqa: E402

RELEASE_WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\](?P<rest>.*)$", re.MULTILINE)
SEMVER = re.compile(r"\d+\.\d+\.\d+")


def test_the_changelog_keeps_a_changelog_and_the_version_is_semver() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n") and "keepachangelog.com/en/1.1.0" in text and "semver.org" in text
    headings = HEADING.findall(text)
    assert headings[0] == ("Unreleased", ""), "pending changes go under [Unreleased], at the top"
    released = [name for name, _ in headings[1:]]
    for name, rest in headings[1:]:
        assert SEMVER.fullmatch(name) and re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{name}]{rest}"
    assert released == sorted(released, key=lambda v: tuple(map(int, v.split("."))), reverse=True), "newest first"
    for section in re.findall(r"^### (.+)$", text, re.MULTILINE):
        assert section in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, section
    assert SEMVER.fullmatch(__version__)
    # the version is released, or the next release: then [Unreleased] says what it holds
    assert __version__ in released or text.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0].strip()


CHANGELOG = """# Changelog

## [Unreleased]

## [1.2.0] - 2027-02-01

### Added

- A thing.

## [1.1.0] - 2027-01-01

### Fixed

- Another.

[1.2.0]: https://example.invalid/v1.2.0
"""


def test_the_notes_are_the_version_s_section_and_a_missing_or_undated_one_is_refused() -> None:
    assert release.notes(CHANGELOG, "1.2.0") == "### Added\n\n- A thing.\n"
    assert release.notes(CHANGELOG, "1.1.0") == "### Fixed\n\n- Another.\n"
    with pytest.raises(release.ReleaseError, match=r"no section for 1\.3\.0: move the \[Unreleased\] entries"):
        release.notes(CHANGELOG, "1.3.0")
    with pytest.raises(release.ReleaseError, match="must end in ' - YYYY-MM-DD'"):
        release.notes(CHANGELOG.replace("[1.2.0] - 2027-02-01", "[1.2.0]"), "1.2.0")
    assert release.version('__version__ = "0.3.1"\n') == "0.3.1"
    with pytest.raises(release.ReleaseError, match="not MAJOR.MINOR.PATCH"):
        release.version('__version__ = "0.3"\n')


def copy_for_release(tmp_path: Path, version: str, dated: bool = True) -> Path:
    """This repository at a commit whose changelog dates ``version`` (or leaves it Unreleased)."""
    work = tmp_path / "workspace"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", "__pycache__", "test-artifacts", "*.egg-info", "build"))
    init = work / "automation" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text(encoding="utf-8")))
    if dated:
        changelog = work / "CHANGELOG.md"
        changelog.write_text(changelog.read_text(encoding="utf-8").replace(
            "## [Unreleased]\n", f"## [Unreleased]\n\n## [{version}] - 2027-03-01\n", 1), encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@example.com",
                                                               "commit", "-qm", "release"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    return work


STUB_GH = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$GH_ARGS"
cp "${@: -1}" "$GH_ARGS.notes" 2>/dev/null || true
"""


def release_job(tmp_path: Path, work: Path) -> Job:
    stub = tmp_path / "gh-bin" / "gh"
    stub.parent.mkdir()
    stub.write_text(STUB_GH, encoding="utf-8")
    stub.chmod(0o755)
    env = runner_env(tmp_path, work, setup_python(tmp_path), write_pip_shim(tmp_path / "pip-shim"),
                     {"GH_ARGS": str(tmp_path / "gh-args"), "GITHUB_SHA": "0" * 40})
    env["PATH"] = f"{stub.parent}:{env['PATH']}"
    return Job(tmp=tmp_path, workspace=work, env=env, secrets={"GITHUB_TOKEN": "ghs_release"})


def test_the_release_workflow_tags_builds_and_publishes_the_dated_version(tmp_path: Path) -> None:
    work = copy_for_release(tmp_path, "9.8.7")
    finished = release_job(tmp_path, work).run_steps(steps_of(RELEASE_WORKFLOW, "release"))

    assert not finished.failed, {name: log.stdout + log.stderr for name, log in finished.logs.items()}
    assert finished.outputs["check"] == {"version": "9.8.7", "tag": "v9.8.7"}
    dist = Path(finished.env["RUNNER_TEMP"]) / "dist"
    wheel, sdist = dist / "ai_orchestration-9.8.7-py3-none-any.whl", dist / "ai_orchestration-9.8.7.tar.gz"
    assert wheel.is_file() and sdist.is_file()
    with zipfile.ZipFile(wheel) as package:
        assert "automation/cli.py" in package.namelist()
        assert "Version: 9.8.7\n" in package.read("ai_orchestration-9.8.7.dist-info/METADATA").decode()
    args = (tmp_path / "gh-args").read_text(encoding="utf-8").splitlines()
    assert args[:3] == ["release", "create", "v9.8.7"]
    assert sorted(args[3:5]) == sorted([str(sdist), str(wheel)])
    assert args[5:] == ["--target", "0" * 40, "--title", "v9.8.7", "--notes-file", str(Path(finished.env["RUNNER_TEMP"]) / "notes.md")]
    assert (tmp_path / "gh-args.notes").read_text(encoding="utf-8").startswith("The first release")


@pytest.mark.parametrize("problem", ["undated", "tagged"])
def test_the_release_workflow_refuses_an_undated_or_released_version_before_building(tmp_path: Path, problem: str) -> None:
    work = copy_for_release(tmp_path, "9.8.7", dated=problem != "undated")
    if problem == "tagged":
        subprocess.run(["git", "tag", "v9.8.7"], cwd=work, check=True)
    finished = release_job(tmp_path, work).run_steps(steps_of(RELEASE_WORKFLOW, "release"))

    assert finished.failed
    assert "Build the package" not in finished.ran and not (tmp_path / "gh-args").exists()
    said = "".join(log.stdout + log.stderr for log in finished.logs.values())
    expected = ("error: CHANGELOG.md has no section for 9.8.7" if problem == "undated"
                else "::error title=release::v9.8.7 exists already")
    assert expected in said
