"""benchmarks/make_recall_cases.py: cases drawn from a real git history, in the shared format, read back by bench_recall.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_recall  # noqa: E402
import make_recall_cases  # noqa: E402

KEYS = ["repo", "bundle", "ref", "after_ref", "upstream_parent", "upstream_commit", "task", "task_with_body", "targets"]
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
FILES = {
    "calc/__init__.py": '__version__ = "1.0.0"\n',
    "calc/ops.py": "def add(a, b):\n    return a + b\n\n\ndef divide(a, b):\n    return a / b\n",
    "calc/parse.py": "def parse(text):\n    left, op, right = text.split(' ')\n    return float(left), op, float(right)\n",
    "tests/test_ops.py": "from calc.ops import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "README.md": "# calc\n",
    "docs/usage.md": "Usage: calc '1 + 2'\n",
    "setup.cfg": "[metadata]\nname = calc\n",
}
# the first-parent history after the root commit: (subject, body, changes); a change appends text, replaces (old, new) or deletes (None)
HISTORY: list[tuple[str, str, dict[str, str | tuple[str, str] | None]]] = [
    ("Handle division by zero in divide", "", {"calc/ops.py": ("return a / b", "return a / b if b else float('nan')")}),
    ("Add tests for the parser module", "", {"tests/test_parse.py": "def test_parse():\n    pass\n"}),
    ("Accept spaces around the operator", "The parser split on one space only.\nNow any run of spaces works.\n\nSigned-off-by: Dev <dev@example.com>\n",
     {"calc/parse.py": ("text.split(' ')", "text.split()"), "calc/ops.py": "\n\ndef sub(a, b):\n    return a - b\n"}),
    ("Describe every operator in the docs", "", {"docs/usage.md": "Operators: + - /\n", "README.md": "See docs/usage.md\n"}),
    ("Fix typo", "", {"calc/ops.py": ("def add(a, b):", "def add(a, b):  # a + b")}),
    ("Add a power operator module", "", {"calc/power.py": "def power(a, b):\n    return a ** b\n", "calc/__init__.py": "from calc import power\n"}),
    ("Merge branch 'rounding'", "", {}),  # a merge of the side commit below
    ("Report where a parse error happens", "",
     {"calc/parse.py": ("def parse(text):\n", "def parse(text):\n    if not text:\n        raise ValueError('empty at 0')\n"),
      "tests/test_parse.py": "def test_empty():\n    pass\n"}),
    ("Bump version to 1.1.0", "", {"calc/__init__.py": ('"1.0.0"', '"1.1.0"')}),
    ("Parse negative numbers in expressions", "", {"calc/parse.py": "\n\ndef negative(text):\n    return text.startswith('-')\n"}),
    ("Update the pinned package metadata", "", {"setup.cfg": "version = attr: calc.__version__\n"}),  # by a bot
    ("Cache parsed expressions between calls", "",
     {"calc/parse.py": ("def parse(text):\n", "@cache\ndef parse(text):\n"), "calc/ops.py": ("def divide", "def divide_")}),    ("Remove the power operator module", "", {"calc/power.py": None}),  # a source file deleted
]
SIDE = ("Round results to two decimals", {"calc/ops.py": ("return a + b", "return round(a + b, 2)")})
# subject -> targets of the eligible commits, oldest first
ELIGIBLE = {
    "Handle division by zero in divide": ["calc/ops.py"],
    "Accept spaces around the operator": ["calc/ops.py", "calc/parse.py"],
    "Report where a parse error happens": ["calc/parse.py"],
    "Parse negative numbers in expressions": ["calc/parse.py"],
    "Cache parsed expressions between calls": ["calc/ops.py", "calc/parse.py"],
}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env or GIT_ENV).stdout.strip()


def _commit(repo: Path, subject: str, body: str, changes: dict[str, str | tuple[str, str] | None], env: dict[str, str] | None = None) -> str:
    for path, change in changes.items():
        file = repo / path
        if change is None:
            file.unlink()
            continue
        file.parent.mkdir(parents=True, exist_ok=True)
        text = file.read_text() if file.exists() else ""
        file.write_text(text.replace(*change, 1) if isinstance(change, tuple) else text + change)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", subject + (f"\n\n{body}" if body else ""), env=env)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A small repository with a dozen first-parent commits, some eligible; and each subject's commit id."""
    repo = tmp_path_factory.mktemp("calc") / "calc"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=GIT_ENV)
    shas = {"Initial layout of the calculator": _commit(repo, "Initial layout of the calculator", "", dict(FILES))}
    for subject, body, changes in HISTORY:
        if subject.startswith("Merge"):
            git(repo, "checkout", "-q", "-b", "rounding")
            shas[SIDE[0]] = _commit(repo, SIDE[0], "", dict(SIDE[1]))
            git(repo, "checkout", "-q", "main")
            git(repo, "merge", "-q", "--no-ff", "-m", subject, "rounding")
            shas[subject] = git(repo, "rev-parse", "HEAD")
            continue
        bot = {**GIT_ENV, "GIT_AUTHOR_NAME": "dependabot[bot]"} if subject.startswith("Update the pinned") else None
        shas[subject] = _commit(repo, subject, body, changes, bot)
    return repo, shas


def _run(repo: Path, out: Path, *args: str) -> list[dict[str, object]]:
    assert make_recall_cases.main(["--out", str(out), "--repo", str(repo), "--name", "calc", "--github", "acme/calc", *args]) == 0
    return [json.loads(line) for line in (out / "cases.jsonl").read_text().splitlines()]


def _snapshot(repo: Path) -> tuple[str, str, bool]:
    return git(repo, "for-each-ref"), git(repo, "count-objects", "-v"), (repo / ".git" / "objects" / "info" / "alternates").exists()


def test_the_cases_are_the_eligible_commits_in_the_shared_format(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, shas = project
    other = {"repo": "acme/other", "bundle": "bundles/other.bundle", "ref": "refs/bench/00", "after_ref": "refs/bench/00-after",
             "upstream_parent": "0" * 40, "upstream_commit": "1" * 40, "task": "x", "task_with_body": "x", "targets": ["x.py"]}
    (tmp_path / "cases.jsonl").write_text(json.dumps(other) + "\n")  # another project's line, kept first
    before = _snapshot(repo)
    lines = _run(repo, tmp_path, "--cases", "10")
    assert lines[0] == other
    cases = lines[1:]
    # fewer eligible commits than --cases: every one, oldest first; no merge, tests- or docs-only commit, short subject, new or
    # deleted file, version bump, bot, nor the merged side commit
    assert [(case["task"], case["targets"]) for case in cases] == list(ELIGIBLE.items())
    assert [case["upstream_commit"] for case in cases] == [shas[subject] for subject in ELIGIBLE]
    assert [case["upstream_parent"] for case in cases] == [git(repo, "rev-parse", f"{shas[subject]}^") for subject in ELIGIBLE]
    shared = bench_recall.DEFAULT_CASES / "cases.jsonl"
    if shared.exists():  # the data set next to the repository, when there is one: the same keys in the same order
        assert list(json.loads(shared.read_text(encoding="utf-8").splitlines()[0])) == KEYS
    for number, case in enumerate(cases):
        assert list(case) == KEYS
        assert (case["repo"], case["bundle"], case["ref"], case["after_ref"]) == (
            "acme/calc", "bundles/calc.bundle", f"refs/bench/{number:02d}", f"refs/bench/{number:02d}-after")
    # the body's first paragraph, lines joined, trailers left out
    assert cases[1]["task_with_body"] == "Accept spaces around the operator\n\nThe parser split on one space only. Now any run of spaces works."
    assert all(case["task_with_body"] == case["task"] for case in cases if case is not cases[1])
    info = json.loads((tmp_path / "build-info.json").read_text())["calc"]
    assert (info["repo"], info["head"], info["eligible"], info["cases"], info["targets"], info["with_body"]) == (
        "acme/calc", git(repo, "rev-parse", "HEAD"), 5, 5, 7, 1)
    assert (info["tree_files_min"], info["tree_files_max"]) == (7, 9)
    assert _snapshot(repo) == before  # the repository is only read


def test_the_bundle_holds_each_tree_before_as_a_root_commit_and_after_as_its_child(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, _ = project
    cases = _run(repo, tmp_path / "out", "--cases", "10")
    check = tmp_path / "check"
    subprocess.run(["git", "init", "-q", str(check)], check=True, env=GIT_ENV)
    git(check, "fetch", "-q", str(tmp_path / "out" / "bundles" / "calc.bundle"), "refs/bench/*:refs/bench/*")
    assert git(check, "for-each-ref", "--format=%(refname)").split() == [f"refs/bench/{n:02d}{end}" for n in range(5) for end in ("", "-after")]
    for case in cases:
        ref, after = str(case["ref"]), str(case["after_ref"])
        assert git(check, "rev-list", "--parents", "-n", "1", ref) == git(check, "rev-parse", ref)  # no parent: a root commit
        assert git(check, "rev-parse", f"{after}^") == git(check, "rev-parse", ref)
        assert git(check, "rev-parse", f"{ref}^{{tree}}") == git(repo, "rev-parse", f"{case['upstream_parent']}^{{tree}}")
        assert git(check, "rev-parse", f"{after}^{{tree}}") == git(repo, "rev-parse", f"{case['upstream_commit']}^{{tree}}")
        for rev in (ref, after):  # fixed author and date: the ids depend only on the trees and the messages
            assert git(check, "log", "-1", "--date=raw", "--format=%an <%ae> %ad|%cn <%ce> %cd", rev) == (
                "bench <bench@invalid> 1767225600 +0000|bench <bench@invalid> 1767225600 +0000")
        assert git(check, "log", "-1", "--format=%s", after) == f"acme/calc {case['upstream_commit']}: {case['task']}"


def test_bench_recall_reads_a_built_case_and_finds_its_real_hunks(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, shas = project
    _run(repo, tmp_path / "out", "--cases", "10")
    cases = bench_recall.load_cases(tmp_path / "out", None, [])
    assert [(case.project, case.task, list(case.targets)) for case in cases] == [("calc", task, targets) for task, targets in ELIGIBLE.items()]
    first = cases[0]
    tree = bench_recall.checkout(first, tmp_path / "cache")
    assert (tree / "calc/ops.py").read_text() == FILES["calc/ops.py"]  # the tree before the commit
    assert not (tree / "tests/test_parse.py").exists()
    # "return a / b" (line 6) replaced
    assert bench_recall.real_hunks(first, tmp_path / "cache") == [bench_recall.Hunk("calc/ops.py", 6, 1)]
    for case in cases:
        hunks = bench_recall.real_hunks(case, tmp_path / "cache")
        assert hunks and {hunk.path for hunk in hunks} == set(case.targets)


def test_a_rerun_replaces_the_projects_lines_and_draws_one_commit_per_span(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, shas = project
    eligible = [shas[subject] for subject in ELIGIBLE]
    assert len(_run(repo, tmp_path, "--cases", "10")) == 5
    lines = _run(repo, tmp_path, "--cases", "2")
    text, heads = (tmp_path / "cases.jsonl").read_text(), git(tmp_path, "bundle", "list-heads", "bundles/calc.bundle")
    # five eligible commits in two spans: one of the first two, one of the last three
    assert [line["ref"] for line in lines] == ["refs/bench/00", "refs/bench/01"]
    assert lines[0]["upstream_commit"] in eligible[:2] and lines[1]["upstream_commit"] in eligible[2:]
    assert len(heads.splitlines()) == 4
    _run(repo, tmp_path, "--cases", "2")  # deterministic: the same cases and refs
    assert (tmp_path / "cases.jsonl").read_text() == text
    assert git(tmp_path, "bundle", "list-heads", "bundles/calc.bundle") == heads
    other_seed = {str(line["upstream_commit"]) for seed in range(1, 6) for line in _run(repo, tmp_path, "--cases", "2", "--seed", str(seed))}
    assert other_seed - {str(line["upstream_commit"]) for line in lines}  # the seed draws others


def test_tree_size_limits_and_a_history_with_nothing_eligible(project: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    repo, _ = project

    def tasks(min_files: int = 0, max_files: int | None = None) -> list[str]:
        limits = make_recall_cases.Project("calc", "acme/calc", repo, min_files=min_files, max_files=max_files)
        picked, _ = make_recall_cases.sample(limits, 10, 0)
        return [commit.subject for commit, _ in picked]

    # parent trees: 7 files, then 8 once tests/test_parse.py is added, 9 with calc/power.py
    assert tasks(max_files=7) == ["Handle division by zero in divide"]
    assert tasks(min_files=9) == list(ELIGIBLE)[2:]
    assert tasks(min_files=8, max_files=8) == ["Accept spaces around the operator"]
    assert make_recall_cases.main(["--out", str(tmp_path / "none"), "--repo", str(repo), "--name", "calc", "--github", "acme/calc",
                                   "--min-files", "100"]) == 1
    assert not (tmp_path / "none").exists()


def test_a_clone_missing_an_old_blob_gets_one_line_and_nothing_written(project: tuple[Path, dict[str, str]], tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A partial clone (or a snapshot without its largest files) cannot show old diffs: say so in one line, write nothing."""
    repo = tmp_path / "partial"
    subprocess.run(["git", "clone", "-q", "--no-local", str(project[0]), str(repo)], check=True, env=GIT_ENV)
    old_blob = git(repo, "rev-parse", f"{project[1]['Initial layout of the calculator']}:calc/ops.py")
    for pack in (repo / ".git" / "objects" / "pack").glob("*.pack"):  # every object loose, then one old blob gone
        moved = pack.rename(tmp_path / pack.name)
        pack.with_suffix(".idx").unlink()
        with moved.open("rb") as stream:
            subprocess.run(["git", "-C", str(repo), "unpack-objects", "-q"], stdin=stream, check=True, env=GIT_ENV)
    (repo / ".git" / "objects" / old_blob[:2] / old_blob[2:]).unlink()
    assert subprocess.run(["git", "-C", str(repo), "cat-file", "-e", old_blob], env=GIT_ENV).returncode != 0
    out = tmp_path / "out"
    assert make_recall_cases.main(["--out", str(out), "--repo", str(repo), "--name", "calc", "--github", "acme/calc"]) == 1
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith(f"calc: git failed in {repo}: ") and old_blob in said[0], said
    assert said[0].endswith("(a shallow or partial clone lacks history: clone it in full)")
    assert not out.exists()


@pytest.mark.parametrize(("path", "expected"), [
    ("src/main/java/com/acme/JsonReader.java", "source"),  # Java, Kotlin, C#, Swift, PHP code is a target as Python's is
    ("app/src/main/kotlin/acme/Reader.kt", "source"),
    ("Acme/Reader.cs", "source"),
    ("Sources/Acme/Reader.swift", "source"),
    ("lib/Reader.php", "source"),
    ("pom.xml", "source"),  # and so are their build files
    ("build.gradle", "source"),
    ("CMakeLists.txt", "source"),
    ("src/test/java/com/acme/JsonReaderTest.java", "test"),
    ("gson/src/main/java/com/acme/JsonReaderTest.java", "test"),  # JUnit's names, wherever they are
    ("core/TestJsonReader.java", "test"),
    ("Acme.Core/ReaderTests.cs", "test"),  # and their kin in C#, PHP, Swift, Ruby, Elixir
    ("src/ReaderTest.php", "test"),
    ("Sources/ReaderTests.swift", "test"),
    ("lib/reader_spec.rb", "test"),
    ("lib/reader_test.exs", "test"),
    ("docs/notes.txt", "doc"),
    ("docs/Makefile", "doc"),  # a build file is still a doc in the docs, and rides along in the examples
    ("examples/app/pom.xml", "other"),
])
def test_code_and_build_files_of_other_languages_are_targets(path: str, expected: str) -> None:
    assert make_recall_cases.kind(path, make_recall_cases.DOC_DIRS) == expected


@pytest.mark.parametrize(("subject", "skipped"), [
    ("[maven-release-plugin] prepare release jackson-databind-2.8.0", True),  # a release, behind the plugin's tag
    ("[maven-release-plugin] prepare for next development iteration", True),  # its version bump
    ("Prepare the 2.0 release", True),
    ("[core] Fix the parser on empty input", False),  # a tag alone says nothing
])
def test_releases_and_version_bumps_are_never_drawn_even_behind_a_tag(subject: str, skipped: bool) -> None:
    assert bool(make_recall_cases.SKIP_SUBJECT.search(subject)) is skipped
