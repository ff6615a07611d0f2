"""Wall time and peak memory of a whole `python -m automation run`, and where the time goes.

Run: python benchmarks/bench_run.py

Sets up the world of tests/test_run.py outside pytest: a temporary directory, a bare `origin`,
a checkout, and loopback fakes of Anthropic, OpenAI, GitHub and a Discord webhook started in
this process. Then it times, as whole child processes:

- 5 real runs (each opens a pull request and commits the ledger), with the peak RSS of each
  child from ``os.wait4`` (the child and the git processes it waited for);
- 3 runs with GitHub pacing switched off (``automation.repo.github.ApiPolicy`` with no waits),
  so the difference shows what the pacing costs;
- 3 no-op runs (no task left: GitHub is asked for the open PRs, no model is called);
- 5 of ``python -c "import anthropic, openai, github"`` and of the imports `run` needs.

Prints medians (these machines are noisy) and a breakdown: interpreter + imports, GitHub
pacing, model calls (from the ledger's latency_ms), and the rest (git, context, HTTP).
"""

from __future__ import annotations

import json
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

from tests.fakes.discord_server import FakeDiscord  # noqa: E402
from tests.fakes.github_server import FakeGitHub  # noqa: E402
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI  # noqa: E402
from tests.test_run import GREETING, TASKS  # noqa: E402

RUNS = 5
UNPACED_RUNS = 3
NOOP_RUNS = 3
IMPORT_RUNS = 5
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


class World:
    def __init__(self, tmp: Path, fakes: dict[str, object]) -> None:
        self.tmp = tmp
        self.github: FakeGitHub = fakes["github"]  # type: ignore[assignment]
        gitconfig = tmp / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(tmp), "PYTHONPATH": str(ROOT),
            "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1",
            "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ATTEMPT": "1",
        }
        for fake in fakes.values():
            self.env.update(fake.env())  # type: ignore[attr-defined]
        self.remote = tmp / "remote.git"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(self.remote), env=self.env)
        seed = tmp / "seed"
        git(tmp, "init", "-q", "-b", "main", str(seed), env=self.env)
        (seed / "docs").mkdir()
        (seed / "docs" / "TASKS.md").write_text(TASKS)
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

    def run(self, *, paced: bool = True) -> tuple[float, int, str]:
        """One scheduled run from a fresh checkout: (wall seconds, peak RSS KiB, stdout)."""
        self.fresh_checkout()
        self.github.pulls.clear()  # every run finds the first task free again
        self.count += 1
        env = {**self.env, "GITHUB_RUN_ID": str(5000 + self.count)}
        head = [sys.executable, "-m", "automation"] if paced else [sys.executable, "-c", UNPACED]
        return timed([*head, "run", "--repo", str(self.checkout)], env, self.tmp)

    def last_run_model_seconds(self) -> float:
        text = subprocess.run(["git", "show", "main:token_budget.json"], cwd=self.remote, capture_output=True,
                              text=True, check=True).stdout
        run = json.loads(text)["runs"][-1]
        return sum(call["latency_ms"] for call in run["calls"]) / 1000


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    """Wall time and peak RSS (KiB, the child and the processes it waited for) of one child."""
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
    return wall, usage.ru_maxrss, stdout


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-"))
    anthropic, openai, github, discord = FakeAnthropic(), FakeOpenAI(), FakeGitHub(), FakeDiscord()
    fakes = {"anthropic": anthropic, "openai": openai, "github": github, "discord": discord}
    for fake in fakes.values():
        fake.start()  # type: ignore[attr-defined]
    try:
        anthropic.text = ANALYSIS
        anthropic.counted_tokens = 900
        openai.content = FakeOpenAI.code_reply("Add a greeting module", [GREETING])
        world = World(tmp, fakes)
        py_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp)}

        walls, rss, model_seconds = [], [], []
        for _ in range(RUNS):
            wall, peak, stdout = world.run()
            assert "Opened https://github.com/" in stdout, stdout
            walls.append(wall)
            rss.append(peak)
            model_seconds.append(world.last_run_model_seconds())
        github_requests = len(github.requests) / RUNS
        github_writes = sum(r.method != "GET" for r in github.requests) / RUNS

        unpaced = []
        for _ in range(UNPACED_RUNS):
            wall, _, stdout = world.run(paced=False)
            assert "Opened https://github.com/" in stdout, stdout
            unpaced.append(wall)

        noop = []
        world.fresh_checkout()
        (world.checkout / "docs" / "TASKS.md").write_text("# Tasks\n- [x] Done already\n")
        for _ in range(NOOP_RUNS):
            wall, _, stdout = timed([sys.executable, "-m", "automation", "run", "--repo", str(world.checkout)],
                                    world.env, tmp)
            assert "No task left" in stdout, stdout
            noop.append(wall)

        def imports(code: str) -> float:
            return median([timed([sys.executable, "-c", code], py_env, tmp)[0] for _ in range(IMPORT_RUNS)])

        bare = imports("pass")
        sdks = imports("import anthropic, openai, github")
        run_imports = imports("import automation.steps.pipeline, automation.models.providers, anthropic, openai")
        status_imports = imports("import automation.cli, automation.reporting.reports")
    finally:
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)

    run_median, unpaced_median = median(walls), median(unpaced)
    pacing = max(0.0, run_median - unpaced_median)
    models = median(model_seconds)
    rest = max(0.0, run_median - run_imports - pacing - models)
    print(f"python -m automation run, {RUNS} runs (PR opened, ledger committed, Discord notified):")
    print(f"  wall time   median {run_median:.2f} s  (min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"  peak RSS    median {median(rss) / 1024:.0f} MiB  (max {max(rss) / 1024:.0f} MiB)")
    print(f"  GitHub API  {github_requests:.0f} requests a run, {github_writes:.0f} of them writes")
    print(f"same, GitHub pacing off ({UNPACED_RUNS} runs): median {unpaced_median:.2f} s")
    print(f"no-op run, no task left ({NOOP_RUNS} runs): median {median(noop):.2f} s")
    print(f"python -c 'pass': {bare:.2f} s; 'import anthropic, openai, github': {sdks:.2f} s; "
          f"everything run imports: {run_imports:.2f} s; what status imports: {status_imports:.2f} s")
    print("where a run's time goes (medians):")
    print(f"  interpreter + imports   {run_imports:5.2f} s  (SDKs alone {sdks - bare:.2f} s over a bare interpreter)")
    print(f"  GitHub pacing (ApiPolicy: {0.25} s between requests, {1.0} s between writes)  {pacing:5.2f} s")
    print(f"  model calls (ledger latency_ms, loopback fakes)  {models:5.2f} s")
    print(f"  the rest: git plumbing, context, HTTP, Discord  {rest:5.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
