"""Does verification catch a change that breaks the tests, and leave a good change alone?
Over the real commits of ../shared/bench/recall whose change touches both source and tests.

Run: python benchmarks/bench_verify.py [--limit N] [--project NAME] [--no-install] [--cache DIR] [--verbose]

Each case is a real commit (the tree before it and after it, see the data set's README). The
check is the commit's own changed test files, run with pytest the way ``verify.commands`` runs a
command (``sandbox.run``: a copy of the tree, the allow-listed environment, the sandbox this
machine can make), and compared the way the verify step compares (``checks.marks`` on the
untouched tree, ``checks.compare`` on the edited one):

- false alarm: the real commit applied (source and tests) is blamed for new failures;
- detected: only the commit's test changes applied, without its source change, and the check
  reports new failures (tests written for code that is not there);
- runnable: the real commit's tests pass after it, in this environment (old commits may need
  dependencies or Python versions that no longer install); the rates are given over all cases
  and over the runnable ones;
- overhead: what verification adds to a run, the untouched tree's pass plus one edited pass,
  copies and sandbox included (median and 90th percentile, seconds).

Each project's test dependencies are installed once into its own virtual environment under
``--cache`` (needs PyPI; ``--no-install`` uses this Python instead, offline). The cache lives
outside /tmp because the sandbox hides /tmp: the checks must see the environments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.repo import checks, sandbox  # noqa: E402

DEFAULT_CASES = ROOT.parent / "shared" / "bench" / "recall"
DEFAULT_CACHE = Path.home() / ".cache" / "ai-orchestration-bench-verify"
PASS_SECONDS = 180.0
_TEST_PATH = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")
_TEST_MODULE = re.compile(r"(^|/)(test[^/]*|[^/]*_test)\.py$")
# What each project's tests import besides the project itself (whose tree is on PYTHONPATH).
DEPENDENCIES = {
    "attrs": ["pytest", "hypothesis", "zope.interface", "cloudpickle"],
    "click": ["pytest"],
    "flask": ["pytest", "werkzeug", "jinja2", "itsdangerous", "click", "blinker", "markupsafe", "asgiref", "python-dotenv"],
    "httpx": ["pytest", "anyio", "trio", "trustme", "uvicorn", "httpcore", "h11", "h2", "certifi", "idna", "sniffio",
              "brotli", "socksio", "rich", "click", "pygments", "chardet", "charset-normalizer", "rfc3986",
              "pytest-asyncio", "pytest-trio", "cryptography", "zstandard"],
    "requests": ["pytest", "pytest-httpbin", "pytest-mock", "trustme", "urllib3", "certifi", "idna", "charset-normalizer",
                 "chardet", "PySocks"],
}


@dataclass(frozen=True)
class Case:
    project: str
    before: str
    after: str
    tests: tuple[str, ...]  # the commit's changed test files (path -> new text applied when tests-only)


@dataclass(frozen=True)
class Result:
    project: str
    commit: str
    runnable: bool
    false_alarm: bool
    detected: bool
    overhead: float
    blamed: tuple[str, ...]  # the new failures a false alarm named


def load(folder: Path, repo: Path, only: str | None, limit: int | None) -> list[Case]:
    """The cases whose commit changes both source and test files, their bundles fetched into ``repo``."""
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    fetched: set[str] = set()
    cases = []
    for line in (folder / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        bundle = folder / row["bundle"]
        project = bundle.stem
        if (only and project != only) or "after_ref" not in row:
            continue
        if project not in fetched:
            subprocess.run(["git", "fetch", "-q", str(bundle), f"refs/bench/*:refs/bench/{project}/*"], cwd=repo, check=True)
            fetched.add(project)
        before = _sha(repo, row["ref"].replace("refs/bench/", f"refs/bench/{project}/"))
        after = _sha(repo, row["after_ref"].replace("refs/bench/", f"refs/bench/{project}/"))
        changed = subprocess.run(["git", "diff", "--name-only", "--no-renames", before, after], cwd=repo, check=True,
                                 capture_output=True, text=True).stdout.split()
        python = [path for path in changed if path.endswith(".py")]
        tests = tuple(path for path in python if _TEST_PATH.search(path))
        if tests and len(tests) < len(python):
            cases.append(Case(project, before, after, tests))
    return cases[:limit] if limit else cases


def _sha(repo: Path, ref: str) -> str:
    return subprocess.run(["git", "rev-parse", ref], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _file(repo: Path, commit: str, path: str) -> bytes | None:
    found = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True)
    return found.stdout if found.returncode == 0 else None


def environment(project: str, cache: Path, install: bool) -> str:
    """The Python that runs ``project``'s tests: its own virtual environment, made once, or this one."""
    if not install:
        return sys.executable
    venv = cache / "venvs" / project
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *DEPENDENCIES[project]],
                       check=True)
    return str(python)


def measure(case: Case, repo: Path, python: str, box: sandbox.Sandbox, env: dict[str, str]) -> Result:
    """The untouched tree, the real commit, and the commit's test changes alone, checked as the bot checks."""
    modules = [path for path in case.tests if _TEST_MODULE.search(path) and _file(repo, case.after, path) is not None]
    command = f"PYTHONPATH=src:. {python} -m pytest -q -p no:cacheprovider -o addopts= {' '.join(modules) or '.'}"
    hide = sandbox.hidden_paths(env, repo)

    def check(changes: dict[str, bytes | None], commit: str = case.before) -> tuple[sandbox.Outcome, float]:
        started = time.monotonic()
        with sandbox.scratch(repo, commit, changes, env) as workdir:
            outcome = sandbox.run(box, command, workdir, sandbox.environment(env, [], workdir), hide, PASS_SECONDS)
        return outcome, time.monotonic() - started

    baseline, baseline_seconds = check({})
    before = checks.marks(baseline)
    real, real_seconds = check({}, case.after)
    tests_only, _ = check({path: _file(repo, case.after, path) for path in case.tests})
    verdict = checks.compare(before, real)
    return Result(
        project=case.project, commit=case.after[:7], runnable=real.passed, false_alarm=verdict.status == checks.FAILED,
        detected=checks.compare(before, tests_only).status == checks.FAILED, overhead=baseline_seconds + real_seconds,
        blamed=verdict.new,
    )


def _rate(hits: int, total: int) -> str:
    return f"{hits / total:.2f}" if total else "-"


def report(results: Sequence[Result]) -> list[str]:
    lines = [f"{'project':<10}{'cases':>6}{'runnable':>9}{'detected':>9}{'false alarms':>13}{'median s':>9}{'p90 s':>7}"]
    groups: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        groups[result.project].append(result)
    for name, group in [*sorted(groups.items()), ("overall", list(results))]:
        overheads = sorted(r.overhead for r in group)
        p90 = overheads[min(len(overheads) - 1, int(0.9 * len(overheads)))]
        lines.append(f"{name:<10}{len(group):>6}{sum(r.runnable for r in group):>9}{_rate(sum(r.detected for r in group), len(group)):>9}"
                     f"{_rate(sum(r.false_alarm for r in group), len(group)):>13}{statistics.median(overheads):>9.1f}{p90:>7.1f}")
    runnable = [r for r in results if r.runnable]
    lines.append(
        f"detection rate {_rate(sum(r.detected for r in results), len(results))} "
        f"({_rate(sum(r.detected for r in runnable), len(runnable))} on runnable cases), "
        f"false-alarm rate {_rate(sum(r.false_alarm for r in results), len(results))} "
        f"({_rate(sum(r.false_alarm for r in runnable), len(runnable))} on runnable cases), "
        f"median overhead {statistics.median(r.overhead for r in results):.1f}s a run"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--project")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--no-install", action="store_true", help="run the tests with this Python; no PyPI")
    parser.add_argument("--verbose", action="store_true", help="a line per case, and what each false alarm blamed")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    repo = args.cache / "cases"
    cases = load(args.cases, repo, args.project, args.limit)
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(Path.home()), "LANG": "C.UTF-8"}
    box = sandbox.find(env, sandbox.hidden_paths(env, repo), uid=os.getuid(), gid=os.getgid())
    counts = defaultdict(int)
    for case in cases:
        counts[case.project] += 1
    print(f"{len(cases)} cases touching source and tests ({', '.join(f'{p} {n}' for p, n in sorted(counts.items()))}); "
          f"sandbox: {box.name}")
    pythons = {project: environment(project, args.cache, not args.no_install) for project in counts}
    results = []
    for case in cases:
        result = measure(case, repo, pythons[case.project], box, env)
        results.append(result)
        if args.verbose:
            print(f"  {result.project} {result.commit}: runnable={result.runnable} detected={result.detected} "
                  f"false_alarm={result.false_alarm} {result.overhead:.1f}s {'; '.join(result.blamed[:3])}")
    for line in report(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
