"""Wall time and peak memory of a whole `python -m automation run`, and where the time goes.

Run: python benchmarks/bench_run.py [--runs N] [--json]

Sets up the world of tests/test_run.py outside pytest: a temporary directory, a bare `origin`,
a checkout, and loopback fakes of Anthropic, OpenAI, GitHub and a Discord webhook started in
this process. Then it times, as whole child processes:

- 5 real runs (each opens a pull request and commits the ledger), with the peak RSS of each
  child from ``os.wait4`` (the child and the git processes it waited for);
- 3 runs with GitHub pacing switched off (``automation.repo.github.ApiPolicy`` with no waits),
  so the difference shows what the pacing costs;
- 3 no-op runs (no task left: GitHub is asked for the open PRs, no model is called);
- 5 of ``python -c "import anthropic, openai, github"`` and of the imports `run` needs.

The kinds of run are interleaved round by round (a neighbour's load falls on all of them
alike), and the breakdown is in CPU seconds of the child and what it waited for (``wait4``),
which a loaded machine disturbs far less than the wall clock: a no-op run or the imports alone
can then never look dearer than a whole run. Prints medians and a breakdown: interpreter +
imports, the rest of the run's own work (git, context, HTTP), GitHub pacing and model calls
(wall, from the committed ledger's latency_ms). ``--json`` adds the figures as one JSON line
(the suite's smoke run checks them); ``--runs 1`` is the quick run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faked_clock import faked_clock_env  # noqa: E402
from tests.fakes.discord_server import FakeDiscord  # noqa: E402
from tests.fakes.github_server import FakeGitHub  # noqa: E402
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI  # noqa: E402
from automation.money import ledger as ledger_module  # noqa: E402
from tests.test_run import GREETING, TASKS  # noqa: E402

ANALYSIS = (
    "## Changes\nAdd `app/greeting.py` with `greet`.\n\n## Files\n- `app/greeting.py`\n\n"
    "## Acceptance criteria\n- greet('Ada') returns 'Hello, Ada!'"
)
# The same CLI with GitHub pacing off: only for attributing time, never how the bot runs.
UNPACED = (
    "import sys, automation.repo.github as g; "
    "g.connect.__defaults__ = (g.ApiPolicy(seconds_between_requests=0, seconds_between_writes=0),); "
    "from automation.cli import main; sys.exit(main(sys.argv[1:]))"
)


def git(cwd: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@dataclass(frozen=True)
class Timing:
    """One child process: wall and CPU seconds, peak RSS in KiB (the child and what it waited for)."""

    wall: float
    cpu: float
    rss_kib: int
    stdout: str


class World:
    def __init__(self, tmp: Path, fakes: dict[str, object], tasks: str = TASKS) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.github: FakeGitHub = fakes["github"]  # type: ignore[assignment]
        gitconfig = tmp / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(tmp), "PYTHONPATH": str(ROOT),
            "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1",
            "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ATTEMPT": "1",
            **faked_clock_env(),  # the bot sees the benchmark's clock, faked or not
        }
        for fake in fakes.values():
            self.env.update(fake.env())  # type: ignore[attr-defined]
        self.remote = tmp / "remote.git"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(self.remote), env=self.env)
        seed = tmp / "seed"
        git(tmp, "init", "-q", "-b", "main", str(seed), env=self.env)
        (seed / "docs").mkdir()
        (seed / "docs" / "TASKS.md").write_text(tasks)
        (seed / "app").mkdir()
        (seed / "app" / "__init__.py").write_text("")
        (seed / "README.md").write_text("# Demo\n\nA demo app with a greeting module.\n")
        git(seed, "add", "-A", env=self.env)
        git(seed, "commit", "-qm", "seed", env=self.env)
        git(seed, "remote", "add", "origin", str(self.remote), env=self.env)
        git(seed, "push", "-q", "origin", "main", env=self.env)
        self.checkout = tmp / "checkout"
        git(tmp, "clone", "-q", str(self.remote), str(self.checkout), env=self.env)
        self.count = 0

    def fresh_checkout(self) -> None:
        git(self.checkout, "fetch", "-q", "origin", env=self.env)
        git(self.checkout, "reset", "-q", "--hard", "origin/main", env=self.env)
        git(self.checkout, "clean", "-qfdx", env=self.env)

    def run(self, *, paced: bool = True) -> Timing:
        """One scheduled run from a fresh checkout, with the task free again: no open PR and no
        pushed ``ai/`` branch (a run finding the branch of an earlier run would reopen its PR
        without calling a model, and time something else)."""
        self.fresh_checkout()
        branches = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/heads/ai/"], cwd=self.remote,
                                  env=self.env, capture_output=True, text=True, check=True).stdout.split()
        for ref in branches:
            git(self.remote, "update-ref", "-d", ref, env=self.env)
        self.github.pulls.clear()  # every run finds the first task free again
        self.count += 1
        env = {**self.env, "GITHUB_RUN_ID": str(5000 + self.count)}
        head = [sys.executable, "-m", "automation"] if paced else [sys.executable, "-c", UNPACED]
        return timed([*head, "run", "--repo", str(self.checkout)], env, self.tmp)

    def last_run_model_seconds(self) -> float:
        """Seconds the last run spent in model calls, read with the bot's own ledger parser from
        the ledger it committed (so a schema change cannot break this benchmark unnoticed)."""
        text = subprocess.run(["git", "show", "main:token_budget.json"], cwd=self.remote, capture_output=True,
                              text=True, check=True).stdout
        run = ledger_module.from_text(text, "main:token_budget.json").runs[-1]
        return sum(call.latency_ms for call in run.calls) / 1000


def timed(command: list[str], env: dict[str, str], cwd: Path) -> Timing:
    """Run one child to the end; a failure stops the benchmark with its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed ({child.returncode}):\n{stdout}\n{stderr}")
    return Timing(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout)


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure(rounds: int) -> dict[str, float]:
    """The figures of ``rounds`` interleaved rounds, as medians (seconds, MiB, requests)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-"))
    anthropic, openai, github, discord = FakeAnthropic(), FakeOpenAI(), FakeGitHub(), FakeDiscord()
    fakes = {"anthropic": anthropic, "openai": openai, "github": github, "discord": discord}
    for fake in fakes.values():
        fake.start()  # type: ignore[attr-defined]
    samples: dict[str, list[float]] = {}

    def keep(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    try:
        anthropic.text = ANALYSIS
        anthropic.counted_tokens = 900
        openai.content = FakeOpenAI.code_reply("Add a greeting module", [GREETING])
        world = World(tmp / "work", fakes)
        idle = World(tmp / "idle", fakes, tasks="# Tasks\n- [x] Done already\n")
        py_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp)}
        for _ in range(rounds):
            before = len(github.requests)
            full = world.run()
            assert "Opened https://github.com/" in full.stdout, full.stdout
            keep("run_wall", full.wall)
            keep("run_cpu", full.cpu)
            keep("run_rss_mib", full.rss_kib / 1024)
            keep("model_seconds", world.last_run_model_seconds())
            keep("github_requests", len(github.requests) - before)
            keep("github_writes", sum(r.method != "GET" for r in github.requests[before:]))
            unpaced = world.run(paced=False)
            assert "Opened https://github.com/" in unpaced.stdout, unpaced.stdout
            keep("unpaced_model_seconds", world.last_run_model_seconds())
            keep("unpaced_wall", unpaced.wall)
            idle.fresh_checkout()
            noop = timed([sys.executable, "-m", "automation", "run", "--repo", str(idle.checkout)], idle.env, tmp)
            assert "No task left" in noop.stdout, noop.stdout
            keep("noop_wall", noop.wall)
            keep("noop_cpu", noop.cpu)
            for name, code in (("bare", "pass"), ("sdks", "import anthropic, openai, github"),
                               ("run_imports", "import automation.steps.pipeline, automation.models.providers, anthropic, openai"),
                               ("status_imports", "import automation.cli, automation.reporting.reports")):
                imported = timed([sys.executable, "-c", code], py_env, tmp)
                keep(f"{name}_wall", imported.wall)
                keep(f"{name}_cpu", imported.cpu)
    finally:
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)
    figures = {name: median(values) for name, values in samples.items()}
    figures["pacing_wall"] = max(0.0, figures["run_wall"] - figures["unpaced_wall"])
    figures["rest_cpu"] = max(0.0, figures["run_cpu"] - figures["run_imports_cpu"])
    figures["rounds"] = rounds
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds of each kind of run (default 5); medians are reported")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args(argv)
    f = measure(args.runs)
    print(f"python -m automation run, {args.runs} rounds (PR opened, ledger committed, Discord notified):")
    print(f"  wall time   median {f['run_wall']:.2f} s, CPU {f['run_cpu']:.2f} s")
    print(f"  peak RSS    median {f['run_rss_mib']:.0f} MiB")
    print(f"  GitHub API  {f['github_requests']:.0f} requests a run, {f['github_writes']:.0f} of them writes")
    print(f"same, GitHub pacing off: median {f['unpaced_wall']:.2f} s")
    print(f"no-op run, no task left: median {f['noop_wall']:.2f} s, CPU {f['noop_cpu']:.2f} s")
    print(f"python -c 'pass': CPU {f['bare_cpu']:.2f} s; 'import anthropic, openai, github': CPU {f['sdks_cpu']:.2f} s; "
          f"everything run imports: CPU {f['run_imports_cpu']:.2f} s; what status imports: CPU {f['status_imports_cpu']:.2f} s")
    print("where a run's time goes (medians):")
    print(f"  interpreter + imports (CPU)             {f['run_imports_cpu']:5.2f} s  (SDKs alone {f['sdks_cpu'] - f['bare_cpu']:.2f} s CPU)")
    print(f"  the rest of its own work (CPU: git, context, HTTP)  {f['rest_cpu']:5.2f} s")
    print(f"  GitHub pacing (wall: paced minus unpaced)  {f['pacing_wall']:5.2f} s")
    print(f"  model calls (wall, ledger latency_ms, loopback fakes)  {f['model_seconds']:5.2f} s")
    if args.json:
        print(json.dumps(f, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
