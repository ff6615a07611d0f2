"""A scheduled job with nothing to do, step by step: the workflow as it was and as it is now.

Run: python benchmarks/bench_noop_job.py [--repeat N] [--no-pip]

Times the commands of each step of `.github/workflows/ai-orchestration.yml` (no Actions runner
needed), as child processes, and prints medians and the after/before ratio:

- checkout: `git clone` of this repository with its whole history (`fetch-depth: 0`, before)
  and with one commit (`fetch-depth: 1`, now), through file:// so the pack is really built and
  sent; also the size of each clone's `.git`;
- install: `pip install -r requirements.txt` (both SDKs, before) and `pip install -r
  requirements-light.txt` (now) into fresh virtual environments, from the machine's pip cache
  and configured index (the venv itself is made outside the timing: setup-python provides it);
- run: `python -m automation run` (before) and `run --decide-only` (now) on a repository with
  no task left, against the loopback GitHub fake of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.github_server import FakeGitHub  # noqa: E402

DONE_TASKS = "# Tasks\n- [x] Everything is done\n"


def timed(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one child; a failure stops the benchmark with its output."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:5])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def folder_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def clone_seconds(tmp: Path, depth: int | None) -> tuple[float, int]:
    """(seconds, bytes of .git) of one clone of this repository, whole or ``depth`` commits."""
    target = tmp / f"clone-{depth or 'full'}"
    shutil.rmtree(target, ignore_errors=True)
    command = ["git", "clone", "-q", "--no-local", *(["--depth", str(depth)] if depth else []), f"file://{ROOT}", str(target)]
    seconds = timed(command, cwd=tmp)
    return seconds, folder_bytes(target / ".git")


def pip_seconds(tmp: Path, requirements: str) -> float:
    venv = tmp / f"venv-{requirements}"
    shutil.rmtree(venv, ignore_errors=True)
    timed([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    return timed(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(ROOT / requirements)],
        cwd=ROOT,
    )


def noop_repository(tmp: Path, env: dict[str, str]) -> Path:
    """A checkout (with a bare origin) whose tasks are all done."""
    remote, checkout = tmp / "remote.git", tmp / "checkout"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True, env=env)
    subprocess.run(["git", "init", "-q", "-b", "main", str(checkout)], check=True, env=env)
    (checkout / "docs").mkdir()
    (checkout / "docs" / "TASKS.md").write_text(DONE_TASKS)
    for args in (["add", "-A"], ["commit", "-qm", "seed"], ["remote", "add", "origin", str(remote)], ["push", "-q", "origin", "main"]):
        subprocess.run(["git", *args], cwd=checkout, check=True, env=env, capture_output=True)
    return checkout


def run_seconds(checkout: Path, env: dict[str, str], *extra: str) -> float:
    return timed([sys.executable, "-m", "automation", "run", "--repo", str(checkout), *extra], cwd=checkout.parent, env=env)


def report(name: str, before: list[float], after: list[float]) -> tuple[float, float]:
    b, a = statistics.median(before), statistics.median(after)
    print(f"{name:<10}{b:>10.2f} s{a:>10.2f} s{a / b:>9.2f}x")
    return b, a


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="samples per step (default 3); medians are reported")
    parser.add_argument("--no-pip", action="store_true", help="leave out the pip installs (the slow part)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-noop-"))
    github = FakeGitHub()
    github.start()
    try:
        gitconfig = tmp / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "PYTHONPATH": str(ROOT), "GIT_CONFIG_GLOBAL": str(gitconfig),
               "GIT_CONFIG_NOSYSTEM": "1", "ANTHROPIC_API_KEY": "sk-ant-bench", "OPENAI_API_KEY": "sk-bench", **github.env()}
        checkout = noop_repository(tmp, env)
        full = [clone_seconds(tmp, None) for _ in range(args.repeat)]
        shallow = [clone_seconds(tmp, 1) for _ in range(args.repeat)]
        full_bytes, shallow_bytes = full[0][1], shallow[0][1]
        steps = {"checkout": ([seconds for seconds, _ in full], [seconds for seconds, _ in shallow])}
        if not args.no_pip:
            steps["install"] = ([pip_seconds(tmp, "requirements.txt") for _ in range(args.repeat)],
                                [pip_seconds(tmp, "requirements-light.txt") for _ in range(args.repeat)])
        steps["run"] = ([run_seconds(checkout, env) for _ in range(args.repeat)],
                        [run_seconds(checkout, env, "--decide-only") for _ in range(args.repeat)])
        print(f"No-op scheduled job, medians of {args.repeat} (this repository: .git {full_bytes / 1e6:.2f} MB whole, "
              f"{shallow_bytes / 1e6:.2f} MB at depth 1)")
        print(f"{'step':<10}{'before':>12}{'after':>12}{'ratio':>10}")
        totals = [report(name, before, after) for name, (before, after) in steps.items()]
        report("total", [sum(b for b, _ in totals)], [sum(a for _, a in totals)])
    finally:
        github.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
