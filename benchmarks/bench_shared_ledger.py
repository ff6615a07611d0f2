"""One ledger shared by many repositories (``ledger.repository``): does the cap hold, and how
fast is the compare-and-swap when every repository's runs push to the same branch at once?

Run: python benchmarks/bench_shared_ledger.py [--repositories M] [--runs N] [--spread S] [--quick] [--json]

Sets up M repositories (each a bare remote and its own loopback fake GitHub), one shared
ledger repository whose own config sets the organisation's cap at about half of what the M x N
runs would cost (each repository's share at 1.5 times an even split of it, so both bind), and one pair of
loopback model fakes billing close to each call's worst case (tests/spending.py). Then it starts
all M x N real `python -m automation run` processes at once, each in its own fresh clone, as
a cron minute shared by M repositories would (or evenly over ``--spread`` seconds, as staggered
cron minutes would), and reports:

- overshoot: what the providers billed (counted at the fakes) beyond the organisation's cap,
  and beyond each repository's share (from the shared ledger's rows): must be 0;
- reservation latency: seconds ``Reserver.reserve`` took (fetch, merge, commit, push, retried
  while other runs moved the branch), p50/p95; and the same for ``Reserver.cover`` (before
  every paid call);
- push retries: pushes to the shared ledger refused because the branch moved, per run;
- runs that failed (exit 1) and why, e.g. the branch moving on every attempt, and the
  reservations they left (booked as spent once they expire: the cap still holds);
- growth: the ledger file's bytes per 1,000 runs (from this race, and from a synthetic month
  of 1,000 two-call runs written by the bot's own ``ledger.to_text``), the ledger repository's
  git objects per 1,000 runs, and how long the bot takes to parse a 1,000-run ledger.

Timing comes from a wrapper that runs the same CLI with ``Reserver.reserve``/``cover`` and the
git push timed and counted (for measuring only, never how the bot runs). ``--quick`` is the
suite's smoke run (2 repositories x 2 runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
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

from automation.core.prices import Usage  # noqa: E402
from automation.money import ledger as ledger_module  # noqa: E402
from automation.money.ledger import CallRecord, RunRecord  # noqa: E402
from tests.fakes.github_server import FakeGitHub  # noqa: E402
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI  # noqa: E402
from tests.spending import ANALYSIS_COST, ANALYSIS_USAGE, CODE_COST, CODE_USAGE, PINNED_MODELS  # noqa: E402
from tests.test_run import GREETING, TASKS  # noqa: E402

ANALYSIS = (
    "## Changes\nAdd `app/greeting.py` with `greet`.\n\n## Files\n- `app/greeting.py`\n\n"
    "## Acceptance criteria\n- greet('Ada') returns 'Hello, Ada!'"
)
RUN_COST = ANALYSIS_COST + CODE_COST  # what one run that opens its pull request is billed
ROOM_FOR_ONE_RUN = 250_000  # a run's calls at their worst case (about $0.19) fit in this
LEDGER_FILE = "token_budget.json"
# The same CLI with the reservation and the ledger pushes timed (a JSON file per process).
TIMED = r"""
import atexit, json, os, sys, time
from automation.money import reservations
from automation.repo import gitops
stats = {"reserve_s": [], "cover_s": [], "pushes": 0, "stale": 0}
def timed(name, method):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            stats[name].append(time.perf_counter() - started)
    return wrapper
reservations.Reserver.reserve = timed("reserve_s", reservations.Reserver.reserve)
reservations.Reserver.cover = timed("cover_s", reservations.Reserver.cover)
push = gitops._push
def counted(root, sha, branch, env):
    result = push(root, sha, branch, env)
    if "ai-orchestration" in str(root):  # the shared ledger's git directory, not a work branch
        stats["pushes"] += 1
        stats["stale"] += result.returncode != 0
    return result
gitops._push = counted
atexit.register(lambda: open(os.environ["BENCH_STATS"], "w").write(json.dumps(stats)))
from automation.cli import main
sys.exit(main(sys.argv[1:]))
"""


def git(cwd: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))] if ordered else 0.0


def objects_bytes(bare: Path, env: dict[str, str]) -> int:
    """Bytes of a repository's git objects, loose and packed (``git count-objects``)."""
    fields = dict(line.split(": ") for line in git(bare, "count-objects", "-v", env=env).splitlines())
    return (int(fields["size"]) + int(fields["size-pack"])) * 1024


def seed_repository(tmp: Path, bare: Path, files: dict[str, str], env: dict[str, str]) -> None:
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare), env=env)
    seed = tmp / f"seed-{bare.stem}"
    git(tmp, "init", "-q", "-b", "main", str(seed), env=env)
    for path, content in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(content)
    git(seed, "add", "-A", env=env)
    git(seed, "commit", "-qm", "seed", env=env)
    git(seed, "remote", "add", "origin", str(bare), env=env)
    git(seed, "push", "-q", "origin", "main", env=env)
    shutil.rmtree(seed)


def synthetic_growth(runs: int = 1000) -> tuple[int, float]:
    """(bytes of a month of ``runs`` two-call runs from 20 repositories, median ms to parse it)."""
    calls = (CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(20_000, 4_000, 2_500, 0, 0, 0), 89_711, 14_210),
             CallRecord("code", "gpt-4o-mini", "openai", Usage(23_000, 6_000), 7_050, 5_120))
    ledger = ledger_module.new_ledger(dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), 1_000_000_000)
    rows = tuple(RunRecord(f"{9_000_000 + n}-1-20261201T{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}Z-{n:08x}",
                           f"2026-12-{1 + n * 28 // runs:02d}T00:00:00Z", f"Task number {n} of the month", "pr_opened",
                           f"https://github.com/octo/repo-{n % 20}/pull/{n}", calls, repository=f"octo/repo-{n % 20}")
                 for n in range(runs))
    text = ledger_module.to_text(dt_replace(ledger, rows))
    times = []
    for _ in range(5):
        started = time.perf_counter()
        ledger_module.from_text(text, "synthetic")
        times.append((time.perf_counter() - started) * 1000)
    return len(text.encode("utf-8")), statistics.median(times)


def dt_replace(ledger: ledger_module.Ledger, runs: tuple[RunRecord, ...]) -> ledger_module.Ledger:
    from dataclasses import replace

    return replace(ledger, runs=runs)


def measure(repositories: int, runs_each: int, spread: float = 0.0) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-shared-ledger-"))
    total = repositories * runs_each
    org_cap = max(2 * ROOM_FOR_ONE_RUN, total * RUN_COST // 2)
    share = max(ROOM_FOR_ONE_RUN, org_cap * 3 // (2 * repositories))
    names = [f"octo/app-{index}" for index in range(repositories)]
    gitconfig = tmp / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
    base_env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "PYTHONPATH": str(ROOT), "GIT_CONFIG_GLOBAL": str(gitconfig),
                "GIT_CONFIG_NOSYSTEM": "1", "GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ATTEMPT": "1"}
    anthropic, openai = FakeAnthropic().start(), FakeOpenAI().start()
    githubs = [FakeGitHub(*name.split("/")).start() for name in names]
    try:
        anthropic.text, anthropic.counted_tokens, anthropic.thinking_tokens = ANALYSIS, 900, 0
        anthropic.usage.update(ANALYSIS_USAGE)
        openai.content, openai.reasoning_tokens = FakeOpenAI.code_reply("Add a greeting module", [GREETING]), 0
        openai.usage.update(CODE_USAGE)
        base_env.update({**anthropic.env(), **openai.env()})
        ledger_repo = tmp / "org" / "ledger.git"
        ledger_repo.parent.mkdir()
        shares = "".join(f"    {name}: {{monthly_usd: {share / 1e6}}}\n" for name in names)
        seed_repository(tmp, ledger_repo, {".github/ai-orchestration.yml":
                                           f"budget:\n  monthly_usd: {org_cap / 1e6}\n  repositories:\n{shares}"}, base_env)
        config = f"{PINNED_MODELS}ledger:\n  repository: {ledger_repo}\n"
        remotes = []
        for name in names:
            remote = tmp / f"{name.split('/')[1]}.git"
            seed_repository(tmp, remote, {"docs/TASKS.md": TASKS, "app/__init__.py": "", "README.md": "# Demo\n",
                                          ".github/ai-orchestration.yml": config}, base_env)
            remotes.append(remote)
        git(ledger_repo, "gc", "-q", "--prune=now", env=base_env)
        objects_before = objects_bytes(ledger_repo, base_env)
        jobs = []
        for index in range(total):
            repo_index, run_index = index % repositories, index // repositories
            checkout = tmp / f"job-{index}"
            git(tmp, "clone", "-q", str(remotes[repo_index]), str(checkout), env=base_env)
            env = {**base_env, **githubs[repo_index].env(), "GITHUB_RUN_ID": str(7000 + index),
                   "BENCH_STATS": str(tmp / f"stats-{index}.json")}
            jobs.append((index, checkout, env, f"Add helper {run_index}"))
        started = time.perf_counter()
        processes = []
        for index, checkout, env, task in jobs:  # evenly over ``spread`` seconds (0: all at once)
            time.sleep(max(0.0, started + spread * index / total - time.perf_counter()))
            processes.append(subprocess.Popen([sys.executable, "-c", TIMED, "run", "--repo", str(checkout), "--task", task],
                                              cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [process.communicate(timeout=1800) for process in processes]
        wall = time.perf_counter() - started
        codes = [process.returncode for process in processes]
        failures = [err.strip().splitlines()[-1][:160] if err.strip() else f"exit {code}"
                    for code, (_, err) in zip(codes, outputs) if code != 0]
        stats = [json.loads((tmp / f"stats-{index}.json").read_text()) for index in range(total)
                 if (tmp / f"stats-{index}.json").exists()]
        text = git(ledger_repo, "show", f"main:{LEDGER_FILE}", env=base_env)
        ledger = ledger_module.from_text(text, LEDGER_FILE)
        billed = len(anthropic.generation_requests) * ANALYSIS_COST + len(openai.generation_requests) * CODE_COST
        by_repository = {name: sum(run.cost_micro_usd for run in ledger.runs if run.repository == name) for name in names}
        recorded_runs = len(ledger.runs)
        empty_bytes = len(ledger_module.to_text(dt_replace(ledger, ())).encode("utf-8"))  # what is not the runs
        commits = int(git(ledger_repo, "rev-list", "--count", "main", env=base_env).strip()) - 1
        git(ledger_repo, "gc", "-q", "--prune=now", env=base_env)  # what the history keeps, packed as GitHub does
        objects_growth = objects_bytes(ledger_repo, base_env) - objects_before
        synthetic_bytes, parse_ms = synthetic_growth()
        reserve = [s for run in stats for s in run["reserve_s"]]
        cover = [s for run in stats for s in run["cover_s"]]
        return {
            "repositories": repositories, "runs": total, "wall_s": wall, "spread_s": spread,
            "org_cap_usd": org_cap / 1e6, "share_usd": share / 1e6, "billed_usd": billed / 1e6,
            "recorded_usd": ledger.spent_micro_usd / 1e6,
            "overshoot_usd": max(0, billed - org_cap) / 1e6,
            "share_overshoot_usd": max(0, *(spent - share for spent in by_repository.values())) / 1e6,
            "pull_requests": sum(len([r for r in gh.requests_to("POST", "/repos/*/pulls")]) for gh in githubs),
            "budget_stops": sum("budget stop" in out for out, _ in outputs), "failed_runs": len(failures),
            "failures": sorted(set(failures))[:3],
            "reserve_p50_s": percentile(reserve, 0.5), "reserve_p95_s": percentile(reserve, 0.95),
            "cover_p50_s": percentile(cover, 0.5), "cover_p95_s": percentile(cover, 0.95),
            "ledger_pushes": sum(run["pushes"] for run in stats), "push_retries": sum(run["stale"] for run in stats),
            "push_retries_per_run": sum(run["stale"] for run in stats) / max(1, len(stats)),
            "recorded_runs": recorded_runs, "ledger_commits": commits,
            "reservations_left": len(ledger.reservations),  # runs that could not settle: booked once they expire
            "held_usd": sum(held.micro_usd for held in ledger.reservations) / 1e6,
            "ledger_bytes": len(text.encode("utf-8")),
            "ledger_bytes_per_1000_runs": (len(text.encode("utf-8")) - empty_bytes) * 1000 / max(1, recorded_runs),
            "synthetic_1000_runs_bytes": synthetic_bytes, "parse_1000_runs_ms": parse_ms,
            "git_objects_bytes_per_1000_runs": objects_growth * 1000 / max(1, recorded_runs),
        }
    finally:
        for fake in (anthropic, openai, *githubs):
            fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=10, help="repositories sharing the ledger (default 10)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each repository, all started at once (default 5)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="start the runs evenly over this many seconds (default 0: all at once, the worst case)")
    parser.add_argument("--quick", action="store_true", help="2 repositories x 2 runs: the suite's smoke run")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args(argv)
    repositories, runs = (2, 2) if args.quick else (args.repositories, args.runs)
    f = measure(repositories, runs, 0.0 if args.quick else args.spread)
    when = f"started over {f['spread_s']:g} s" if f["spread_s"] else "all started at once"
    print(f"{f['runs']} runs from {f['repositories']} repositories, {when}, on one shared ledger ({f['wall_s']:.1f} s wall):")
    print(f"  organisation cap ${f['org_cap_usd']:.2f}, each share ${f['share_usd']:.2f}: billed ${f['billed_usd']:.4f}, "
          f"recorded ${f['recorded_usd']:.4f}; overshoot ${f['overshoot_usd']:.4f} (cap), ${f['share_overshoot_usd']:.4f} (shares)")
    print(f"  {f['pull_requests']} pull requests, {f['budget_stops']} budget stops, {f['failed_runs']} failed runs"
          + (f" ({'; '.join(f['failures'])})" if f["failures"] else "")
          + (f"; {f['reservations_left']} reservations left unsettled, holding ${f['held_usd']:.4f} until they expire"
             if f["reservations_left"] else ""))
    print(f"  reservation latency: p50 {f['reserve_p50_s']:.2f} s, p95 {f['reserve_p95_s']:.2f} s; "
          f"before each call: p50 {f['cover_p50_s']:.2f} s, p95 {f['cover_p95_s']:.2f} s")
    print(f"  ledger pushes: {f['ledger_pushes']}, retried because the branch moved: {f['push_retries']} "
          f"({f['push_retries_per_run']:.1f} a run)")
    print(f"  growth: ledger {f['ledger_bytes_per_1000_runs']:,.0f} bytes per 1,000 runs (this race), "
          f"{f['synthetic_1000_runs_bytes']:,} bytes for a synthetic month of 1,000 runs, parsed in "
          f"{f['parse_1000_runs_ms']:.0f} ms; git objects {f['git_objects_bytes_per_1000_runs']:,.0f} bytes per 1,000 runs "
          f"({f['ledger_commits']} commits for {f['recorded_runs']} recorded runs)")
    if args.json:
        print(json.dumps(f, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
