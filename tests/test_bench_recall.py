"""benchmarks/bench_recall.py stays runnable: a tiny data set in the shared format, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_recall  # noqa: E402

from automation.repo import localise  # noqa: E402

FILES = {
    "shop/__init__.py": "",
    "shop/pricing.py": "def apply_discount(total, code):\n    return total\n",
    "shop/stock.py": "def stock_level(item):\n    return 3\n",
    "tests/test_pricing.py": "from shop.pricing import apply_discount\n",
    "README.md": "# Shop\n",
}


def _make_cases(folder: Path, fillers: int = 0) -> None:
    """Two cases in one bundle, as ../shared/bench/recall lays them out (refs/bench/NN, root commits);
    ``fillers`` unrelated modules make the repository large enough for a localisation call."""
    work = folder / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    env_args = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    for path, content in {**FILES, **{f"vendor/lib{index}.py": f"VALUE = {index}\n" for index in range(fillers)}}.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(
        ["git", *env_args, "commit-tree", tree, "-m", "snapshot"], cwd=work, check=True, capture_output=True, text=True
    ).stdout.strip()
    for ref, changed in (("00", {"shop/pricing.py": "    return total * 0.9\n"}), ("01", {"shop/stock.py": "    return 4\n", "shop/pricing.py": "    return total\n"})):
        subprocess.run(["git", "update-ref", f"refs/bench/{ref}", commit], cwd=work, check=True)
        subprocess.run(["git", "read-tree", tree], cwd=work, check=True)
        for path, last_line in changed.items():  # the real change: a hunk replacing the last line, or none
            (work / path).write_text(FILES[path].splitlines(keepends=True)[0] + last_line)
            subprocess.run(["git", "add", path], cwd=work, check=True)
        after_tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout.strip()
        after = subprocess.run(
            ["git", *env_args, "commit-tree", after_tree, "-p", commit, "-m", "change"], cwd=work, check=True, capture_output=True, text=True
        ).stdout.strip()
        subprocess.run(["git", "update-ref", f"refs/bench/{ref}-after", after], cwd=work, check=True)
    (folder / "bundles").mkdir()
    subprocess.run(["git", "bundle", "create", "-q", str(folder / "bundles" / "shop.bundle"), "--glob=refs/bench/*"], cwd=work, check=True)
    cases = [
        {"repo": "acme/shop", "bundle": "bundles/shop.bundle", "ref": "refs/bench/00", "after_ref": "refs/bench/00-after", "task": "Validate the discount code", "targets": ["shop/pricing.py"]},
        {"repo": "acme/shop", "bundle": "bundles/shop.bundle", "ref": "refs/bench/01", "after_ref": "refs/bench/01-after", "task": "Cache stock levels", "targets": ["shop/stock.py", "shop/pricing.py"]},
    ]
    (folder / "cases.jsonl").write_text("".join(json.dumps(case) + "\n" for case in cases))


def test_the_benchmark_runs_on_a_tiny_data_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_cases(tmp_path / "data")
    assert bench_recall.main(["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--memory-every", "1", "--large-files", "12"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 cases, cap 40,000 tokens"
    assert out[1].split() == ["project", "cases", "files", "excerpt", "all", "map", "bm25", "hunks@20k", "hunks@40k", "bm25@20k", "bm25@40k",
                              "tok@20k", "tok@40k", "median-ms", "cpu-ms", "max-ms", "peak-MB"]
    shop, overall = out[3].split(), out[4].split()
    # every file fits: all targets whole, the one hunk of each case found (the unchanged pricing.py of 01 has none)
    assert shop[:11] == ["shop", "2", "1.00", "0.00", "100%", "1.00", "1.00", "1.00", "1.00", "1.00", "1.00"] and overall[0] == "overall"
    assert 0 < int(shop[11].replace(",", "")) <= 20_000 and 0 < int(shop[12].replace(",", "")) <= 40_000
    assert float(shop[-1]) > 0  # peak memory traced
    assert out[-2].startswith("large repository, 15 files: median ")  # three copies of the five files
    assert out[-1] == "goal met"


def test_hunk_recall_counts_a_hunk_only_when_all_its_old_lines_are_in_the_prompt() -> None:
    excerpt = "def a():\n    return 1\n… lines 3-9 left out\nline ten\n… lines 11-20 left out\n"
    assert bench_recall.excerpt_lines(excerpt) == {1, 2, 10}
    hunks = [bench_recall.Hunk("m.py", 1, 2), bench_recall.Hunk("m.py", 2, 2), bench_recall.Hunk("m.py", 10, 0),
             bench_recall.Hunk("m.py", 11, 0), bench_recall.Hunk("m.py", 0, 0), bench_recall.Hunk("n.py", 5, 3)]
    # 1-2 carried; 2-3 half; an insertion after line 10 (carried), after 11 (not), at the top (line 1 carried); n.py sent whole
    assert bench_recall.hunks_found(hunks, {"n.py"}, {"m.py": bench_recall.excerpt_lines(excerpt)}) == 4
    assert bench_recall.hunks_found(hunks, set(), {}) == 0


def test_recorded_localisation_replies_are_replayed_with_their_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_cases(tmp_path / "data", fillers=localise.MIN_FILES)
    replies = tmp_path / "replies.jsonl"
    reply = '{"files": ["shop/pricing.py"], "symbols": []}'
    replies.write_text("".join(json.dumps(row) + "\n" for row in [
        {"project": "shop", "ref": "refs/bench/00", "task": "Validate the discount code", "reply": reply},
        {"project": "shop", "ref": "refs/bench/01", "task": "A case of another data set, with the same ref", "reply": reply},
    ]))
    args = ["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--memory-every", "0", "--large-files", "0"]
    assert bench_recall.main([*args, "--locations", str(replies)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[-2:] == ["loc-calls", "loc-$"]
    shop = out[3].split()
    assert shop[0] == "shop" and shop[-2] == "50%"  # one case of two has a recorded reply (the other's task differs)
    assert 0.0001 < float(shop[-1].removeprefix("$")) < 0.01  # ~7 KB of prompt on the default code model
    assert bench_recall.main(args) == 0
    assert "loc-calls" not in capsys.readouterr().out  # without replies: no such columns
