"""A small, offline stand-in for a GitHub Actions runner: a workflow job's (or a composite
action's) steps, run as the runner runs them.

Each `run:` step is the real script, run by bash with `-eo pipefail` in the workspace, with the
step's `env:` evaluated from the `inputs`, `secrets` and `vars` the test gives, the runner's own
variables (GITHUB_WORKSPACE, RUNNER_TEMP, GITHUB_OUTPUT, ...), and its `if:` decided from the
job's status and earlier steps' outputs. `uses:` steps are played by the test: the checkout is
the workspace it made, setup-python is a fresh virtual environment with no packages at all, and
an upload records the folder it would upload.

The one thing that cannot run offline is pip's download. Its place is taken by a `pip` module on
PYTHONPATH that installs, for every `-r FILE` a step names, exactly the distributions FILE
resolves to (its requirements and theirs, markers and extras followed) by linking them from the
test interpreter's own site-packages into the environment that runs it. So a later step sees
what that step's requirements file brings, and nothing else: a command that needs a package
the file lacks fails here as it fails on GitHub.
"""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.faked_clock import faked_clock_env

PIP_SHIM = '''"""pip, offline: link what `-r FILE` resolves to from the test interpreter's site-packages."""
import importlib.metadata as metadata
import os
import sys
import sysconfig
from pathlib import Path

SOURCES = os.environ["WORKFLOW_TEST_SITE_PACKAGES"].split(os.pathsep)
sys.path.extend(SOURCES)  # for `packaging`, which the bare environment lacks
from packaging.requirements import Requirement  # noqa: E402

IGNORED = {"--disable-pip-version-check", "-q", "--quiet", "--no-input"}


def requirement_lines(path):
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            yield from requirement_lines(Path(path).parent / line[3:].strip())
        elif line:
            yield line


def closure(lines):
    found, todo = {}, [(Requirement(line), ()) for line in lines]
    while todo:
        requirement, extras = todo.pop()
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in (extras or ("",))):
            continue
        dist = next(metadata.distributions(name=requirement.name, path=SOURCES), None)
        if dist is None or dist.version not in requirement.specifier:
            sys.exit(f"pip (offline): {requirement} is not installed where the tests run")
        key = dist.metadata["Name"].lower()
        wanted = tuple(sorted(requirement.extras))
        if key in found and set(wanted) <= set(found[key][1]):
            continue
        found[key] = (dist, tuple(sorted(set(wanted) | set(found.get(key, (None, ()))[1]))))
        todo += [(Requirement(text), found[key][1]) for text in dist.requires or ()]
    return [dist for dist, _ in found.values()]


def install(dists):
    target = Path(sysconfig.get_paths()["purelib"])
    for dist in dists:
        for name in dist.files or ():
            if name.parts[0] == ".." or "__pycache__" in name.parts:
                continue
            source, link = Path(dist.locate_file(name)), target / name
            if source.exists() and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)


args = sys.argv[1:]
if not args or args[0] != "install":
    sys.exit(f"pip (offline): only `install -r FILE` is played here, not {args}")
files, rest = [], iter(args[1:])
for arg in rest:
    if arg in ("-r", "--requirement"):
        files.append(next(rest))
    elif arg not in IGNORED:
        sys.exit(f"pip (offline): {arg!r} is not played here; install with -r FILE")
install(closure([line for path in files for line in requirement_lines(path)]))
print(f"installed from {', '.join(files)} (offline)")
'''


def write_pip_shim(folder: Path) -> Path:
    """A folder holding the offline `pip` package, to put first on PYTHONPATH."""
    (folder / "pip").mkdir(parents=True, exist_ok=True)
    (folder / "pip" / "__init__.py").write_text("", encoding="utf-8")
    (folder / "pip" / "__main__.py").write_text(PIP_SHIM, encoding="utf-8")
    return folder


_CONTEXT = re.compile(r"\b(?:inputs|secrets|vars|steps|github|runner)\.[A-Za-z0-9_.-]+")
_FUNCTION = re.compile(r"\b(success|failure|cancelled|always)\(\)")


@dataclass
class Job:
    """One job's worth of state: contexts, the job's status, and what its steps left."""

    tmp: Path
    workspace: Path
    env: dict[str, str]  # the runner's environment for every step
    inputs: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    action_path: Path | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    failed: bool = False
    ran: list[str] = field(default_factory=list)
    uploaded: dict[str, Path] = field(default_factory=dict)
    logs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    # --- expressions ---------------------------------------------------------------------

    def lookup(self, name: str) -> Any:
        head, _, rest = name.partition(".")
        if head == "steps":
            step, _, output = rest.partition(".outputs.")
            return self.outputs.get(step, {}).get(output, "")
        if head == "github":
            return {"token": self.secrets.get("GITHUB_TOKEN", ""), "action_path": str(self.action_path or "")}.get(rest, "")
        if head == "runner":
            return {"temp": self.env["RUNNER_TEMP"]}.get(rest, "")
        return {"inputs": self.inputs, "secrets": self.secrets, "vars": self.variables}[head].get(rest, "")

    def evaluate(self, expression: str) -> Any:
        """A GitHub expression of the kinds our files use: contexts, ==, !=, !, &&, ||, status functions."""
        names: dict[str, Any] = {}

        def context(match: re.Match[str]) -> str:
            key = f"_c{len(names)}"
            names[key] = self.lookup(match.group(0))
            return key

        status = {"success": not self.failed, "failure": self.failed, "cancelled": False, "always": True}
        python = _CONTEXT.sub(context, expression)
        python = _FUNCTION.sub(lambda m: str(status[m.group(1)]), python)
        python = python.replace("&&", " and ").replace("||", " or ").replace("!=", " <> ").replace("!", " not ")
        python = python.replace(" <> ", " != ")
        return eval(python, {"__builtins__": {}}, {**names, "true": True, "false": False})  # noqa: S307 (test helper)

    def substitute(self, text: Any) -> str:
        """``${{ … }}`` in a value replaced as the runner does (booleans as true/false)."""

        def value(match: re.Match[str]) -> str:
            result = self.evaluate(match.group(1))
            return str(result).lower() if isinstance(result, bool) else str(result)

        return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", value, str(text))

    def should_run(self, step: dict[str, Any]) -> bool:
        condition = str(step.get("if", "")).strip()
        condition = condition[3:-2].strip() if condition.startswith("${{") else condition
        if not condition:
            return not self.failed
        if not _FUNCTION.search(condition):
            condition = f"success() && ({condition})"
        return bool(self.evaluate(condition))

    # --- steps ---------------------------------------------------------------------------

    def run_steps(self, steps: list[dict[str, Any]]) -> Job:
        for index, step in enumerate(steps):
            name = step.get("name") or step.get("uses") or f"step {index}"
            if not self.should_run(step):
                continue
            self.ran.append(name)
            if "uses" in step:
                self._uses(step)
            else:
                self._run(name, step)
        return self

    def _uses(self, step: dict[str, Any]) -> None:
        action = str(step["uses"]).split("@")[0]
        with_ = {key: self.substitute(value) for key, value in (step.get("with") or {}).items()}
        if action in ("actions/upload-artifact", "actions/upload-pages-artifact"):
            path = Path(with_["path"])
            if not path.is_dir():
                self.failed = True
            self.uploaded[action] = path
        # actions/checkout and actions/setup-python: the test made the workspace and the interpreter

    def _run(self, name: str, step: dict[str, Any]) -> None:
        output = self.tmp / f"output-{len(self.ran)}"
        output.write_text("", encoding="utf-8")
        env = {**self.env, "GITHUB_OUTPUT": str(output)}
        env.update({key: self.substitute(value) for key, value in (step.get("env") or {}).items()})
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                cwd=self.workspace, env=env, capture_output=True, text=True, timeout=300)
        self.logs[name] = result
        if result.returncode != 0:
            self.failed = True
        if "id" in step:
            pairs = [line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line]
            self.outputs[step["id"]] = dict(pairs)


def steps_of(path: Path, job: str | None = None) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document["jobs"][job]["steps"] if job else document["runs"]["steps"]


def runner_env(tmp: Path, workspace: Path, python_bin: Path, shim: Path, extra: dict[str, str]) -> dict[str, str]:
    """What a hosted runner sets for every step, with the set-up Python first on PATH."""
    runner_temp = tmp / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    summary = tmp / "step-summary.md"
    summary.touch()
    return {
        "PATH": f"{python_bin}{os.pathsep}{os.environ['PATH']}",
        **faked_clock_env(),
        "HOME": str(tmp),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_RUN_ID": "5151",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_SERVER_URL": "https://github.example",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONPATH": str(shim),
        "WORKFLOW_TEST_SITE_PACKAGES": os.pathsep.join(site.getsitepackages()),
        **extra,
    }


def setup_python(tmp: Path) -> Path:
    """actions/setup-python: an interpreter with no packages at all (the bin folder to put on PATH)."""
    target = tmp / "hostedtoolcache" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True, timeout=120)
    return target / "bin"
