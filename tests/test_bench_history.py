"""A quick run of benchmarks/bench_history.py keeps it runnable and its figures sane (not timed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_history_benchmark_measures_status_and_a_real_run_and_the_run_files_old_months() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_history.py"), "--quick"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2,000 runs of history (54 a month over 36 closed months and this one):"
    kept = re.fullmatch(r"  kept     file +([\d.]+) MB; status median +([\d.]+) s \(CPU ([\d.]+) s\)", lines[1])
    one_list = re.fullmatch(
        r"  one list file +([\d.]+) MB; status median +([\d.]+) s \(CPU ([\d.]+) s\); run +([\d.]+) s \(CPU ([\d.]+) s\), "
        r"peak RSS +(\d+) MiB; it committed ([\d.]+) MB, then status ([\d.]+) s \(CPU ([\d.]+) s\)", lines[2])
    assert kept and one_list, lines
    kept_mb, one_list_mb, committed_mb = float(kept[1]), float(one_list[1]), float(one_list[7])
    assert 0 < kept_mb < one_list_mb / 5  # 36 months as summary lines, not 2,000 run rows
    assert kept_mb <= committed_mb <= kept_mb * 1.2  # the run filed the old months' rows away
    assert all(float(value) > 0 for value in (kept[2], kept[3], one_list[2], one_list[4], one_list[5], one_list[8]))
    assert 50 < int(one_list[6]) < 2048  # a whole Python process with the SDKs, not a runaway
    assert lines[3].startswith("targets for the kept file:") and lines[3].endswith(": met")
