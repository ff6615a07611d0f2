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

FILES = {
    "shop/__init__.py": "",
    "shop/pricing.py": "def apply_discount(total, code):\n    return total\n",
    "shop/stock.py": "def stock_level(item):\n    return 3\n",
    "tests/test_pricing.py": "from shop.pricing import apply_discount\n",
    "README.md": "# Shop\n",
}


def _make_cases(folder: Path) -> None:
    """Two cases in one bundle, as ../shared/bench/recall lays them out (refs/bench/NN, root commits)."""
    work = folder / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    env_args = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    for path, content in FILES.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(
        ["git", *env_args, "commit-tree", tree, "-m", "snapshot"], cwd=work, check=True, capture_output=True, text=True
    ).stdout.strip()
    for ref in ("00", "01"):
        subprocess.run(["git", "update-ref", f"refs/bench/{ref}", commit], cwd=work, check=True)
    (folder / "bundles").mkdir()
    subprocess.run(["git", "bundle", "create", "-q", str(folder / "bundles" / "shop.bundle"), "--glob=refs/bench/*"], cwd=work, check=True)
    cases = [
        {"repo": "acme/shop", "bundle": "bundles/shop.bundle", "ref": "refs/bench/00", "task": "Validate the discount code", "targets": ["shop/pricing.py"]},
        {"repo": "acme/shop", "bundle": "bundles/shop.bundle", "ref": "refs/bench/01", "task": "Cache stock levels", "targets": ["shop/stock.py", "shop/pricing.py"]},
    ]
    (folder / "cases.jsonl").write_text("".join(json.dumps(case) + "\n" for case in cases))


def test_the_benchmark_runs_on_a_tiny_data_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_cases(tmp_path / "data")
    assert bench_recall.main(["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--memory-every", "1", "--large-files", "12"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 cases, cap 40,000 tokens"
    assert out[1].split() == ["project", "cases", "recall@ctx", "excerpt", "all-found", "hit@map", "bm25@room", "bm25@cap", "median", "ms", "cpu", "ms", "max", "ms", "peak", "MB"]
    shop, overall = out[3].split(), out[4].split()
    assert shop[:7] == ["shop", "2", "1.00", "0.00", "100%", "1.00", "1.00"] and overall[0] == "overall"
    assert float(shop[-1]) > 0  # peak memory traced
    assert out[-2].startswith("large repository, 15 files: median ")  # three copies of the five files
    assert out[-1] == "goal met"
