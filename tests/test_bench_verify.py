"""benchmarks/bench_verify.py stays runnable and its figures sane: a tiny data set in the shared
format (a commit that adds a function and its test), offline, with the Python running this suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_verify  # noqa: E402

# The project before the commit, after it (subtraction and its test), and after a docs-only commit.
BEFORE = {
    "calc/__init__.py": "",
    "calc/ops.py": "def add(a, b):\n    return a + b\n",
    "tests/test_ops.py": "from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    "README.md": "# Calc\n",
}
AFTER = {
    **BEFORE,
    "calc/ops.py": BEFORE["calc/ops.py"] + "\n\ndef sub(a, b):\n    return a - b\n",
    "tests/test_ops.py": "from calc.ops import add, sub\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_sub():\n"
                         "    assert sub(5, 3) == 2\n",
}
DOCS_ONLY = {**BEFORE, "README.md": "# Calc\n\nAdds numbers.\n"}


def _commit(work: Path, files: dict[str, str], parent: str | None = None) -> str:
    for path, content in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout.strip()
    args = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com", "commit-tree", tree, "-m", "snapshot"]
    return subprocess.run([*args, *(["-p", parent] if parent else [])], cwd=work, check=True, capture_output=True,
                          text=True).stdout.strip()


def _make_cases(folder: Path) -> None:
    """Two cases as ../shared/bench/recall lays them out: one changes source and tests, one only docs."""
    work = folder / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    before = _commit(work, BEFORE)
    refs = {"00": before, "00-after": _commit(work, AFTER, before), "01": before, "01-after": _commit(work, DOCS_ONLY, before)}
    for name, sha in refs.items():
        subprocess.run(["git", "update-ref", f"refs/bench/{name}", sha], cwd=work, check=True)
    (folder / "bundles").mkdir()
    subprocess.run(["git", "bundle", "create", "-q", str(folder / "bundles" / "calc.bundle"), "--glob=refs/bench/*"],
                   cwd=work, check=True)
    rows = [{"repo": "acme/calc", "bundle": "bundles/calc.bundle", "ref": f"refs/bench/{n}", "after_ref": f"refs/bench/{n}-after",
             "task": "Add subtraction", "targets": ["calc/ops.py"]} for n in ("00", "01")]
    (folder / "cases.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_the_benchmark_detects_a_missing_change_and_leaves_the_real_one_alone(tmp_path: Path,
                                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _make_cases(tmp_path / "data")

    assert bench_verify.main(["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--no-install"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 cases touching source and tests (calc 1); sandbox: ")  # the docs-only commit is left out
    calc = out[2].split()
    assert calc[:5] == ["calc", "1", "1", "1.00", "0.00"]  # runnable, detected, no false alarm
    assert 0 < float(calc[5]) <= float(calc[6]) < 60
    assert out[-1].startswith("detection rate 1.00 (1.00 on runnable cases), false-alarm rate 0.00 (0.00 on runnable cases)")
