"""A quick run of benchmarks/bench_edits.py on a few real cases keeps the benchmark runnable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT.parent / "shared" / "bench" / "recall"


@pytest.mark.skipif(not (CASES / "cases.jsonl").exists(), reason="the shared recall cases are not checked out here")
def test_the_edit_benchmark_reproduces_a_few_real_commits_and_misapplies_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_edits.py"), "--cases", str(CASES), "--limit", "4"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "cases: 4; reproduced byte for byte: 4 (100.0%)"
    assert "SEARCH/REPLACE vs whole files in JSON: median" in result.stdout
    damaged = [line for line in lines if line.startswith("damaged, ")]
    assert len(damaged) == 4 and all("misapplied 0;" in line for line in damaged)
