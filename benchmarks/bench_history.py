"""Ledgers with years of history: file size, `status` time, and a real `run`'s time and peak memory.

Run: python benchmarks/bench_history.py [--runs 100000,200000] [--quick]

For each total of runs N, spread evenly over 36 closed months (``HISTORY_MONTHS_KEPT``) and the
current one, two ledger files are measured:

- **kept**: what the bot holds after those months: one summary line per closed month, last
  month's rows (``closed_runs``, as in a month's first week) and this month's rows, built month
  by month through the real rollover (``ledger.as_of``);
- **one list**: every run in ``runs`` (the issue's 33 MB file at 100,000 runs, as another tool
  or an older version could leave it); the first run files them under their months.

For each file, in a world of its own (benchmarks/bench_run.py's: bare origin, loopback
Anthropic, OpenAI, GitHub and Discord): its bytes, the median wall and CPU time of
``python -m automation status`` (a child process), and one real ``python -m automation run``:
wall and CPU time, peak RSS (the child and the git processes it waited for), the size of the
ledger it committed and `status` after it. Exits 1 if a target is missed for the kept file:
``status`` under 1 s of CPU (wall time on a shared machine includes waiting for a core) and a
run under 200 MiB. ``--quick`` (the test suite's smoke run): N = 2,000, ``status`` once, and a
run on the one-list file only.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.core.config import Config  # noqa: E402
from automation.core.prices import Usage  # noqa: E402
from automation.money import ledger as ledger_module  # noqa: E402
from automation.money.ledger import CallRecord, Ledger, RunRecord  # noqa: E402
from benchmarks.bench_run import ANALYSIS, World  # noqa: E402
from tests.fakes.discord_server import FakeDiscord  # noqa: E402
from tests.fakes.github_server import FakeGitHub  # noqa: E402
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI  # noqa: E402
from tests.test_run import GREETING  # noqa: E402

STATUS_LIMIT_S = 1.0
RUN_LIMIT_MIB = 200
CLOSED_MONTHS = ledger_module.HISTORY_MONTHS_KEPT
# An organisation's budget: thousands of runs a month at about $0.08 each.
BUDGET_USD = 100_000
CONFIG = Config(monthly_budget_micro_usd=BUDGET_USD * 1_000_000)


def months_before(month: str, count: int) -> list[str]:
    """The ``count`` months before ``month``, oldest first."""
    months = [month]
    for _ in range(count):
        months.append(ledger_module.previous_month(months[-1]))
    return months[:0:-1]


def month_of_runs(month: str, count: int, seed: int) -> Iterator[RunRecord]:
    """``count`` runs spread over ``month`` as `run` records them: analysis and code, most with a PR."""
    rng = random.Random(seed)
    sonnet, mini = CONFIG.price(CONFIG.analysis_model), CONFIG.price(CONFIG.code_model)
    start = dt.datetime.fromisoformat(f"{month}-01T00:00:00+00:00")
    step = dt.timedelta(days=28) / max(1, count)
    for index in range(count):
        started = start + index * step
        analysis = Usage(input_tokens=rng.randint(12_000, 28_000), output_tokens=rng.randint(1_200, 3_000), reasoning_tokens=900)
        code = Usage(input_tokens=rng.randint(15_000, 33_000), output_tokens=rng.randint(3_000, 8_000), cache_read_tokens=1_024)
        opened = rng.random() < 0.88
        yield RunRecord(
            id=f"{8_000_000_000 + seed * 100_000 + index}-1-{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(32):08x}",
            started_at=f"{started:%Y-%m-%dT%H:%M:%SZ}",
            task=f"Add input validation to the settings form and cover it with tests (item {index})",
            outcome="pr_opened" if opened else "failed:edits",
            pr_url=f"https://github.com/example-org/example-repo/pull/{seed * 100_000 + index}" if opened else None,
            calls=(
                CallRecord("analysis", sonnet.model, sonnet.provider, analysis, sonnet.cost_micro_usd(analysis), rng.randint(6_000, 30_000)),
                CallRecord("code", mini.model, mini.provider, code, mini.cost_micro_usd(code), rng.randint(4_000, 20_000)),
            ),
        )


def kept_ledger(now: dt.datetime, total: int) -> Ledger:
    """``total`` runs over 36 closed months and this one, each month closed by the real rollover;
    last month's rows still kept (the first week of ``now``'s month)."""
    month = ledger_module.month_of(now)
    months = [*months_before(month, CLOSED_MONTHS), month]
    per_month = total // len(months)
    ledger = Ledger(month=months[0], budget_micro_usd=CONFIG.monthly_budget_micro_usd)
    first_week = dt.datetime.fromisoformat(f"{month}-01T12:00:00+00:00")
    for seed, name in enumerate(months):
        ledger = ledger_module.as_of(ledger, dt.datetime.fromisoformat(f"{name}-01T12:00:00+00:00"))
        ledger = replace(ledger, runs=tuple(month_of_runs(name, per_month, seed)))
        if name != month:  # a month in, last month is a summary line
            ledger = ledger_module.as_of(ledger, dt.datetime.fromisoformat(f"{name}-09T00:00:00+00:00"))
    assert ledger_module.as_of(ledger, first_week) == ledger
    return ledger


def one_list_text(now: dt.datetime, total: int) -> str:
    """The same runs, every one of them in ``runs``, written line by line (never all in memory)."""
    month = ledger_module.month_of(now)
    months = [*months_before(month, CLOSED_MONTHS), month]
    per_month = total // len(months)
    head = ledger_module.to_text(Ledger(month=month, budget_micro_usd=CONFIG.monthly_budget_micro_usd))
    assert head.endswith('  "runs": []\n}\n')
    lines = [
        ledger_module.json.dumps(run.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        for seed, name in enumerate(months) for run in month_of_runs(name, per_month, seed)
    ]
    return head.removesuffix('  "runs": []\n}\n') + '  "runs": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"


def child(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (user + system, the child and what it waited for), peak RSS in
    KiB and stdout of one child. On a shared machine wall time includes waiting for a core; the
    CPU time does not, so both are shown."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{stdout}\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout


def status(world: World, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of `status` on the checkout as it is."""
    timings = [child([sys.executable, "-m", "automation", "status", "--repo", str(world.checkout)], world.env, world.tmp)
               for _ in range(repeat)]
    return statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings)


def measure(fakes: dict[str, object], text: str, repeat: int, *, run: bool) -> dict[str, float]:
    """Size and `status` (and, with ``run``, one real `run` and `status` after it) on a ledger with
    ``text`` committed on the default branch of a new world (a repository of its own: git's work
    on another file's big blobs is not counted)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        world = World(tmp, fakes)
        (world.checkout / "token_budget.json").write_text(text, encoding="utf-8")
        (world.checkout / ".github").mkdir(exist_ok=True)
        (world.checkout / ".github" / "ai-orchestration.yml").write_text(f"budget:\n  monthly_usd: {BUDGET_USD}\n")
        for command in (["add", "token_budget.json", ".github"], ["commit", "-qm", "years of history"], ["push", "-q", "origin", "HEAD:main"]):
            subprocess.run(["git", *command], cwd=world.checkout, env=world.env, check=True)
        figures = {"bytes": len(text.encode("utf-8"))}
        figures["status_s"], figures["status_cpu_s"] = status(world, repeat)
        if run:
            world.github.pulls.clear()
            world.fresh_checkout()
            wall, cpu, peak_kib, stdout = child([sys.executable, "-m", "automation", "run", "--repo", str(world.checkout)],
                                                {**world.env, "GITHUB_RUN_ID": "9001"}, tmp)
            assert "Opened https://github.com/" in stdout, stdout
            figures.update(run_s=wall, run_cpu_s=cpu, run_mib=peak_kib / 1024, committed_bytes=committed_bytes(world))
            world.fresh_checkout()
            figures["status_after_s"], figures["status_after_cpu_s"] = status(world, repeat)
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def committed_bytes(world: World) -> int:
    return len(subprocess.run(["git", "show", "main:token_budget.json"], cwd=world.remote, capture_output=True,
                              check=True).stdout)


def report(name: str, figures: dict[str, float]) -> str:
    line = (f"  {name:8} file {figures['bytes'] / 1e6:6.2f} MB; status median {figures['status_s']:5.2f} s "
            f"(CPU {figures['status_cpu_s']:.2f} s)")
    if "run_s" in figures:
        line += (f"; run {figures['run_s']:5.1f} s (CPU {figures['run_cpu_s']:.1f} s), peak RSS {figures['run_mib']:4.0f} MiB; "
                 f"it committed {figures['committed_bytes'] / 1e6:.2f} MB, then status {figures['status_after_s']:.2f} s "
                 f"(CPU {figures['status_after_cpu_s']:.2f} s)")
    return line


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    totals = [2_000] if quick else [100_000, 200_000]
    if "--runs" in argv:
        totals = [int(n) for n in argv[argv.index("--runs") + 1].split(",")]
    repeat = 1 if quick else 5
    now = dt.datetime.now(dt.timezone.utc)
    anthropic, openai, github, discord = FakeAnthropic(), FakeOpenAI(), FakeGitHub(), FakeDiscord()
    fakes: dict[str, object] = {"anthropic": anthropic, "openai": openai, "github": github, "discord": discord}
    for fake in fakes.values():
        fake.start()  # type: ignore[attr-defined]
    missed = False
    try:
        anthropic.text = ANALYSIS
        anthropic.counted_tokens = 900
        openai.content = FakeOpenAI.code_reply("Add a greeting module", [GREETING])
        for total in totals:
            print(f"{total:,} runs of history ({total // (CLOSED_MONTHS + 1):,} a month over {CLOSED_MONTHS} closed months and this one):")
            kept = measure(fakes, ledger_module.to_text(kept_ledger(now, total)), repeat, run=not quick)
            print(report("kept", kept), flush=True)
            print(report("one list", measure(fakes, one_list_text(now, total), repeat, run=True)), flush=True)
            missed |= kept["status_cpu_s"] >= STATUS_LIMIT_S or kept.get("run_mib", 0) >= RUN_LIMIT_MIB
    finally:
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
    print(f"targets for the kept file: status < {STATUS_LIMIT_S:.0f} s of CPU, run < {RUN_LIMIT_MIB} MiB: "
          + ("TARGET MISSED" if missed else "met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
