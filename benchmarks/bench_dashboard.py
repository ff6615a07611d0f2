"""Dashboard build time and page size for a year of history at 480 runs a month.

Run: python benchmarks/bench_dashboard.py [--quick]
Prints the median build time (these machines are noisy) and the page size; exits non-zero
if a target is missed: the site must build in under 1 s and weigh under 1 MB. Every chart is
drawn twice (for a screen and for a phone), so the time is that of both.
``--quick`` (the test suite's smoke test) builds three times instead of eleven and holds only the
size target: a suite on a shared machine is no place for a time limit (the time is still printed).
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.core.config import Config  # noqa: E402
from automation.reporting import dashboard  # noqa: E402
from tests import sample_ledgers  # noqa: E402

RUNS_PER_MONTH = 480
TIME_LIMIT_S = 1.0
SIZE_LIMIT = 1_000_000


def main(argv: list[str]) -> int:
    repeats = 3 if "--quick" in argv else 11
    # eleven closed months in history, the twelfth month open with 480 runs (and its health)
    ledger = sample_ledgers.with_health(sample_ledgers.year("2026-11", RUNS_PER_MONTH + 77),
                                        opened_at="2026-11-21T08:00:00Z")
    assert ledger.executions == RUNS_PER_MONTH and len(ledger.history) == 11
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    config = Config()
    times = []
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeats):
            started = time.perf_counter()
            page = dashboard.build(config, ledger, now, Path(scratch))
            times.append(time.perf_counter() - started)
        size = sum(path.stat().st_size for path in Path(scratch).rglob("*") if path.is_file())
    median = statistics.median(times)
    print(f"ledger: {len(ledger.history)} closed months + {ledger.executions} runs in {ledger.month}")
    print(f"build median {median * 1000:.0f} ms over {repeats} builds (min {min(times) * 1000:.0f} ms)"
          f" — target < {TIME_LIMIT_S * 1000:.0f} ms")
    print(f"page size {size:,} bytes ({page.name}) — target < {SIZE_LIMIT:,}")
    slow = median >= TIME_LIMIT_S
    failed = size >= SIZE_LIMIT or (slow and "--quick" not in argv)
    if failed:
        print("TARGET MISSED")
    elif slow:
        print("time target missed (not held in --quick: the machine may be busy)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
