"""Ledger size and load+save time after 12 simulated months; `status` start-up time.

Run: python benchmarks/bench_ledger.py [--quick]
Prints medians (these machines are noisy); exits non-zero if a target is missed:
the ledger after a year at 480 runs a month must stay under 300 KB, and `status` must not
import the provider SDKs. ``--quick`` (the suite's smoke run) times each step once.
"""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.core.prices import PriceTable, Usage  # noqa: E402
from automation.money import ledger as ledger_module  # noqa: E402
from automation.money.ledger import CallRecord, RunRecord  # noqa: E402

RUNS_PER_MONTH = 480
SIZE_LIMIT = 300_000


def year_of_ledgers() -> ledger_module.Ledger:
    """Twelve months of 480 runs (two calls each), rolled over month by month; each month is saved
    whole, so past its first week (``ledger.CLOSED_RUNS_KEPT``): last month is one summary line."""
    table = PriceTable.builtin()
    sonnet, mini = table.find("claude-sonnet-5-5"), table.find("gpt-4o-mini")
    assert sonnet and mini
    ledger = ledger_module.new_ledger(dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc), 15_000_000)
    for month in range(1, 13):
        ledger = ledger_module.as_of(ledger, dt.datetime(2026, month, 28, tzinfo=dt.timezone.utc))
        runs = []
        for index in range(RUNS_PER_MONTH):
            analysis = Usage(input_tokens=19_000 + index, output_tokens=1_900)
            code = Usage(input_tokens=23_000 + index, output_tokens=5_800, cache_read_tokens=1_024)
            started = dt.datetime(2026, month, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=80 * index)
            runs.append(
                RunRecord(
                    id=f"{7_000_000_000 + month * 1000 + index}-1-{started:%Y%m%dT%H%M%SZ}",
                    started_at=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    task=f"Add input validation to the settings form and cover it with tests (item {index})",
                    outcome="pr_opened",
                    pr_url=f"https://github.com/example-org/example-repo/pull/{month * 1000 + index}",
                    calls=(
                        CallRecord("analysis", sonnet.model, sonnet.provider, analysis, sonnet.cost_micro_usd(analysis), 14_000),
                        CallRecord("code", mini.model, mini.provider, code, mini.cost_micro_usd(code), 9_000),
                    ),
                )
            )
        ledger = _with_runs(ledger, runs)
    return ledger


def _with_runs(ledger: ledger_module.Ledger, runs: list[RunRecord]) -> ledger_module.Ledger:
    from dataclasses import replace

    return replace(ledger, runs=tuple(runs))


def median_seconds(action, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def process_seconds(argv: list[str], repeat: int = 7) -> float:
    return median_seconds(lambda: subprocess.run(argv, cwd=ROOT, check=True, capture_output=True), repeat)


def main(argv: list[str]) -> int:
    repeat = 1 if "--quick" in argv else 7
    ledger = year_of_ledgers()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "token_budget.json"
        ledger_module.save(ledger, path)
        size = path.stat().st_size
        now = dt.datetime(2026, 12, 31, tzinfo=dt.timezone.utc)

        def load_and_save() -> None:
            ledger_module.save(ledger_module.load(path, now, 15_000_000), path)

        load_save = median_seconds(load_and_save, 2 * repeat + 1)

    print(f"ledger after 12 months x {RUNS_PER_MONTH} runs: {size:,} bytes ({size / SIZE_LIMIT:.0%} of the 300 KB limit), "
          f"{len(ledger.history)} history entries, {len(ledger.runs)} runs kept")
    print(f"load + save: median {load_save * 1000:.1f} ms")

    python = sys.executable
    baseline = process_seconds([python, "-c", "pass"], repeat)
    status = process_seconds([python, "-m", "automation", "status"], repeat)
    sdks = process_seconds([python, "-c", "import anthropic, openai, github"], repeat)
    print(f"python -c pass: median {baseline * 1000:.0f} ms")
    print(f"python -m automation status: median {status * 1000:.0f} ms ({status / baseline:.1f}x python -c pass)")
    print(f"import anthropic, openai, github: median {sdks * 1000:.0f} ms ({sdks / baseline:.1f}x python -c pass)")
    leaked = subprocess.run(
        [python, "-c", "import sys, runpy; sys.argv=['automation','status']; "
         "import automation.cli as c; c.main(['status'], out=open('/dev/null','w')); "
         "print(sorted(m for m in ('anthropic','openai','github') if m in sys.modules))"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()
    print(f"SDK modules imported by status: {leaked}")
    ok = size < SIZE_LIMIT and leaked == "[]"
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
