"""Quick runs of the scripts in benchmarks/: each must run, and its figures must make sense.

Not timed tests: the targets are checked by the scripts themselves on a quiet machine. These
runs use tiny case counts and check that what a script reports is coherent (a whole run is
dearer than a no-op run and than its own imports, a page is neither empty nor huge, ...), so a
benchmark that reads a stale format or measures the wrong thing fails here, not months later.
(bench_edits and bench_recall have their own smoke tests, next to their shared cases.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(name: str, *args: str, timeout: int = 300) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text}"
    return float(found.group(1).replace(",", ""))


def test_bench_run_figures_are_coherent() -> None:
    out = bench("bench_run.py", "--runs", "1", "--json")
    figures = json.loads(out.splitlines()[-1])
    assert figures["rounds"] == 1
    # every timed run called both models (a run that reused a pushed branch would not)
    assert figures["model_seconds"] > 0 and figures["unpaced_model_seconds"] > 0
    assert figures["model_seconds"] < figures["run_wall"]
    # a whole run does more than its imports and than a run with nothing to do
    assert figures["run_cpu"] > figures["run_imports_cpu"] > figures["bare_cpu"]
    assert figures["run_cpu"] > figures["noop_cpu"]
    assert figures["sdks_cpu"] > figures["status_imports_cpu"]
    # with pacing off too, a run lasts longer than its model calls (paced minus unpaced is a
    # difference of wall times: one round on a busy machine cannot order them, the bench's medians can)
    assert figures["unpaced_model_seconds"] < figures["unpaced_wall"]
    assert figures["pacing_wall"] >= 0
    assert 10 < figures["run_rss_mib"] < 1024
    assert figures["github_requests"] >= 2 and 1 <= figures["github_writes"] <= figures["github_requests"]
    assert "where a run's time goes" in out


def test_bench_ledger_figures_are_coherent() -> None:
    out = bench("bench_ledger.py", "--quick")
    size = number(r"runs: ([\d,]+) bytes", out)
    assert 10_000 < size < 300_000
    assert 0 < number(r"load \+ save: median ([\d.]+) ms", out) < 10_000
    bare, status, sdks = (number(rf"{label}: median (\d+) ms", out)
                          for label in ("python -c pass", "python -m automation status", "import anthropic, openai, github"))
    assert 0 < bare < status < sdks  # status never loads the SDKs, so it is cheaper than importing them
    assert "SDK modules imported by status: []" in out and out.rstrip().endswith("targets met")


def test_bench_context_figures_are_coherent() -> None:
    out = bench("bench_context.py", "--quick")
    rows = [line for line in out.splitlines() if " files: median " in line]
    assert [int(line.split()[0]) for line in rows] == [1002, 2002]  # the tracked files of each synthetic repository
    for line in rows:
        assert 30_000 < number(r"([\d,]+) of 40,000 tokens", line) <= 40_000  # the cap filled, never passed
        assert 0 < number(r"\((\d+) ms CPU\)", line) < 30_000
        assert 0 < number(r"peak ([\d.]+) MB", line) < 100
        assert "first service_17/orders/client_3.py" in line  # the file the task names comes first
    assert 0.5 < number(r"\(([\d.]+)x\)", out) < 10  # a 10x longer task costs less than 10x
    assert out.rstrip().endswith("targets met")


def test_bench_dashboard_figures_are_coherent() -> None:
    out = bench("bench_dashboard.py", "--quick")
    assert 0 < number(r"build median (\d+) ms", out) < 10_000
    assert 50_000 < number(r"page size ([\d,]+) bytes", out) < 1_000_000
    assert "11 closed months + 480 runs" in out


def test_bench_noop_job_figures_are_coherent() -> None:
    out = bench("bench_noop_job.py", "--repeat", "1", "--no-pip")
    whole, shallow = number(r"\.git ([\d.]+) MB whole", out), number(r"([\d.]+) MB at depth 1", out)
    assert 0 < shallow <= whole
    rows = {name: (float(before), float(after)) for name, before, after in re.findall(r"^(\w+)\s+([\d.]+) s\s+([\d.]+) s", out, re.M)}
    assert set(rows) == {"checkout", "run", "total"}
    assert all(before > 0 and after > 0 for before, after in rows.values())
    assert rows["total"][0] >= rows["run"][0] and rows["total"][1] >= rows["run"][1]


def test_bench_history_figures_are_coherent() -> None:
    """Status and a real run on years of history; the run files the old months' rows away."""
    lines = bench("bench_history.py", "--quick", timeout=600).splitlines()
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


def test_bench_shared_ledger_figures_are_coherent() -> None:
    out = bench("bench_shared_ledger.py", "--quick", "--json")
    f = json.loads(out.splitlines()[-1])
    assert (f["repositories"], f["runs"]) == (2, 4)
    assert f["overshoot_usd"] == 0 and f["share_overshoot_usd"] == 0  # the cap and every share held
    assert 0 < f["billed_usd"] == f["recorded_usd"] <= f["org_cap_usd"]  # every billed call is in the shared ledger
    assert f["failed_runs"] == 0, f["failures"]
    assert f["pull_requests"] >= 1 and f["pull_requests"] + f["budget_stops"] == f["runs"]
    assert 0 < f["reserve_p50_s"] <= f["reserve_p95_s"] < 120 and 0 < f["cover_p50_s"] <= f["cover_p95_s"] < 120
    assert f["ledger_pushes"] >= f["recorded_runs"] * 2 and 0 <= f["push_retries"] < f["ledger_pushes"]
    assert f["ledger_commits"] >= f["recorded_runs"] >= f["pull_requests"]
    assert 100_000 < f["synthetic_1000_runs_bytes"] < 2_000_000 and 0 < f["parse_1000_runs_ms"] < 10_000
    assert 0 < f["ledger_bytes_per_1000_runs"] < 10_000_000 and f["git_objects_bytes_per_1000_runs"] > 0
    assert "reservation latency: p50" in out
