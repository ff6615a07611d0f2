"""Context-recall cases from a repository's history, for benchmarks/bench_recall.py.

Run: python benchmarks/make_recall_cases.py --out FOLDER --repo GIT_DIR --name NAME --github OWNER/NAME
         [--cases 40] [--min-files N] [--max-files N] [--doc-dirs docs,doc] [--seed 0]
then: python benchmarks/bench_recall.py --cases FOLDER
(GIT_DIR: a local clone or mirror of OWNER/NAME, bare or not, of any language; NAME is best
the last part of OWNER/NAME, which bench_recall.py names the project by.)

Walks the first-parent history of GIT_DIR's HEAD, keeps the eligible commits (rules below), cuts
them, oldest first, into ``--cases`` equal spans and draws one commit from each with
``random.Random(--seed)``, so the cases spread over the whole history; fewer eligible commits than
``--cases``: all of them. Each case is written as ../shared/bench/recall/ lays them out (see its
README): a line of ``FOLDER/cases.jsonl`` (the subject as the task, the first paragraph of the
body without trailers added for ``task_with_body``, the changed source files as the targets) and,
in ``FOLDER/bundles/NAME.bundle``, ``refs/bench/NN``, a root commit whose tree is the parent's
tree, and ``refs/bench/NN-after``, its child with the commit's tree. Author and committer are
``bench <bench@invalid>`` at 2026-01-01, so the commit ids depend only on the trees and the
messages: a re-run on the same HEAD gives the same lines and the same refs. One run builds one
project: it replaces NAME's lines of ``cases.jsonl`` (in place; appended if it had none) and its
entry of ``FOLDER/build-info.json`` (HEAD, eligible commits, tree sizes), other projects' are left
as they are. GIT_DIR is only read: the commits are written into a scratch bare repository that
borrows its objects (alternates), deleted once the bundle is made.

A commit is eligible when:

- it is not a merge nor the root commit, and its author is not a bot;
- its subject has at least four words and is not a merge, revert, fixup/squash, release, version
  bump or changelog update, even behind a tag (``[maven-release-plugin] prepare release ...``),
  and its body does not say "This reverts commit";
- it changes at most 400 lines in all (added + deleted, every file);
- it changes 1-4 source files (code or configuration, e.g. ``.go``, ``.js``, ``.ts``, ``.py``,
  ``.rs``, ``.java``, ``.kt``, ``.cs``, ``.swift``, ``.php``, ``package.json``, ``go.mod``,
  ``pom.xml``, ``*.gradle``, ``*.yml``, ``Makefile``, ``CMakeLists.txt``, scripts with a shebang)
  outside tests (``test/``, ``tests/``, ``testing/``, ``__tests__/``, ``spec/``, ``fixtures/``,
  ``testdata/``, ``playground/``, ``e2e/``, ``test_*``, ``*_test.go``, ``*.test.*``, ``*.spec.*``,
  ``conftest.py``, ``*_test.rb``, ``*_spec.rb``, ``*_test.exs``, JUnit's and its kin's
  ``FooTest.java``, ``TestFoo.java``, ``FooTests.cs``, ``FooTest.php``, ``FooTests.swift``), docs
  (``*.md``, ``*.rst``, the ``--doc-dirs`` folders at any depth, changelogs), examples, benchmarks,
  vendored, built and lock files: those ride along, never targets. Every source file it changes
  existed before and still does (no source file added, deleted or renamed: the context cannot find a
  file that is not there yet), none is binary or generated ("generated" / "do not edit" in its first
  lines), and its lines are not all about "version";
- with ``--min-files`` / ``--max-files``: its parent's tree tracks that many files (inclusive).

The author built a held-back check set with it from spf13/cobra (Go; ``--doc-dirs docs,site``, as
cobra's ``doc/`` is a Go package), expressjs/express (JavaScript), vitejs/vite (TypeScript
monorepo, ``--min-files 800 --max-files 3000``: trees of 800-3,000 files) and pytest-dev/pytest
(Python, ``--min-files 500 --max-files 2500``: trees of 500-700 files), 40 cases each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES = 40
MAX_LINES = 400  # changed lines of a commit, added + deleted, every file
MAX_TARGETS = 4
MIN_WORDS = 4
DOC_DIRS = frozenset({"docs", "doc"})
BENCH_AUTHOR = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid", "GIT_AUTHOR_DATE": "1767225600 +0000",  # 2026-01-01T00:00:00Z
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid", "GIT_COMMITTER_DATE": "1767225600 +0000",
}

# What a target is, told apart here on purpose from automation/repo/context.py's own rules (its tests, docs
# and code): the cases must not be drawn by the rules they measure.
CODE_EXT = {
    ".go", ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".vue", ".svelte",
    ".rs", ".c", ".h", ".cc", ".cpp", ".hpp", ".rb", ".sh", ".bash", ".zsh", ".fish", ".vim", ".lua",
    ".css", ".scss", ".less", ".html", ".pyx", ".ps1", ".bat",
    ".java", ".kt", ".kts", ".scala", ".groovy", ".clj", ".cs", ".fs", ".vb", ".swift", ".m", ".mm", ".php", ".pl", ".pm",
    ".r", ".dart", ".ex", ".exs", ".erl", ".hs", ".ml", ".zig", ".nim", ".jl", ".sql",
}
CONFIG_EXT = {".json", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".gradle", ".properties"}
CONFIG_NAMES = {"Makefile", "go.mod", "Dockerfile", "setup.py", "setup.cfg", "tox.ini", ".eslintrc", ".prettierrc", ".npmrc",
                ".editorconfig", ".babelrc", "pom.xml", "CMakeLists.txt", "Gemfile", "Rakefile", "Jenkinsfile"}
LOCK_NAMES = {"go.sum", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "Cargo.lock", "npm-shrinkwrap.json",
              "uv.lock", "Gopkg.lock"}
DOC_EXT = {".md", ".rst", ".txt", ".adoc", ".mdx", ".markdown", ".rdoc"}
TEST_DIRS = {"test", "tests", "testing", "__tests__", "spec", "specs", "__mocks__", "fixtures", "__fixtures__", "__snapshots__",
             "testdata", "test-fixtures", "playground", "e2e"}
OTHER_DIRS = {"examples", "example", "benchmarks", "benchmark", "bench", "vendor", "third_party", "node_modules", "dist",
              "extern", "_vendor"}
TEST_NAME = re.compile(r"^(test_.*\.pyi?|.*_test\.(py|go|rb|exs)|.*_spec\.rb|conftest\.py|.*\.(test|spec)\.[cm]?[jt]sx?|.*\.snap"
                       r"|(Test[A-Z]\w*|\w+(Tests?|Spec|IT))\.(java|kt|scala|groovy|cs|php|swift))$")
GENERATED = re.compile(r"code generated .* do not edit|@generated|do not edit|auto-generated|autogenerated", re.IGNORECASE)
BOT = re.compile(r"\[bot\]|dependabot|renovate|pre-commit-ci|github-actions|greenkeeper", re.IGNORECASE)
SKIP_SUBJECT = re.compile(
    r"^(\[[^\]]*\]\s*)?"  # behind a tag: [maven-release-plugin] prepare release ...
    r"(merge\b|revert\b|fixup!|squash!|apply suggestions from code review|release\b|releasing\b"
    r"|prepare\b.*\b(release|development iteration)"
    r"|chore\(release\)|v?\d+\.\d+(\.\d+)?\S*$|bump\b.*\bversion|version bump|update changelog)"
    r"|\bbump (the )?version\b|\brelease v?\d+\.\d+",
    re.IGNORECASE,
)
TRAILER = re.compile(r"^[A-Za-z][A-Za-z-]*(-[Bb]y|-[Ii]d)?:\s")
TRAILER_KEYS = re.compile(
    r"^(signed-off-by|co-authored-by|reviewed-by|acked-by|tested-by|reported-by|suggested-by|helped-by|change-id|cc|closes|fixes"
    r"|refs?|pr-url|resolves|see-also|related|issue):\s",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Project:
    """One repository to draw cases from, as the command line names it."""

    name: str  # the bundle's stem: bundles/NAME.bundle
    github: str  # OWNER/NAME, each case's "repo"
    git_dir: Path
    doc_dirs: frozenset[str] = DOC_DIRS  # a folder of that name, at any depth, holds docs
    min_files: int = 0  # files tracked by the parent's tree, inclusive
    max_files: int | None = None


@dataclass
class Commit:
    """A first-parent commit and what it changed against its first parent."""

    sha: str
    parents: list[str]
    author: str
    subject: str
    body: str
    changes: list[tuple[str, str]] = field(default_factory=list)  # (status letter, path)
    lines: int = 0  # added + deleted, text files
    binary: set[str] = field(default_factory=set)


def git(repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=True,
                            env={**os.environ, **(env or {})})
    return result.stdout.decode("utf-8", "surrogateescape")


def kind(path: str, doc_dirs: frozenset[str]) -> str:
    """'test', 'doc', 'other' (rides along, never a target), 'source' (a possible target) or 'script?' (source if it has a shebang)."""
    *dirs, name = path.split("/")
    if any(part in TEST_DIRS for part in dirs) or TEST_NAME.match(name):
        return "test"
    ext = os.path.splitext(name)[1].lower()
    prose = ext in DOC_EXT and name not in CONFIG_NAMES  # CMakeLists.txt is a build file
    if prose or any(part in doc_dirs for part in dirs) or name.upper().startswith(("CHANGELOG", "HISTORY", "CHANGES")):
        return "doc"
    if any(part in OTHER_DIRS for part in dirs) or name in LOCK_NAMES or name.endswith((".min.js", ".min.css", ".map")):
        return "other"
    if ext in CODE_EXT or ext in CONFIG_EXT or name in CONFIG_NAMES or name.startswith("tsconfig"):
        return "source"
    if not ext and not name.startswith("."):
        return "script?"
    return "other"


def history(git_dir: Path) -> list[Commit]:
    """First-parent commits of HEAD, oldest first (renames read as a deletion and an addition)."""
    out = git(git_dir, "-c", "core.quotepath=false", "log", "--first-parent", "--reverse", "--no-renames", "--raw", "--numstat",
              "--no-abbrev", "--format=%x00%H%x01%P%x01%an <%ae>%x01%s%x01%b%x02", "HEAD")
    commits = []
    for chunk in out.split("\0")[1:]:
        head, _, changes = chunk.partition("\x02")
        sha, parents, author, subject, body = head.split("\x01")
        commit = Commit(sha, parents.split(), author, subject.strip(), body)
        for line in changes.splitlines():
            if line.startswith(":"):  # --raw: ":100644 100644 OLD NEW M\tpath"
                meta, path = line.split("\t", 1)
                commit.changes.append((meta.split()[-1][0], path))
            elif line.strip():  # --numstat: "added\tdeleted\tpath", "-\t-\tpath" for a binary file
                added, deleted, path = line.split("\t", 2)
                if added == "-":
                    commit.binary.add(path)
                else:
                    commit.lines += int(added) + int(deleted)
        commits.append(commit)
    return commits


def first_paragraph(body: str) -> str:
    """The body's first paragraph that is not trailers, its lines joined by spaces; '' if none."""
    paragraphs: list[list[str]] = [[]]
    for line in body.splitlines():
        if TRAILER_KEYS.match(line.strip()):
            continue
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    for paragraph in paragraphs:
        if paragraph and not all(TRAILER.match(line) for line in paragraph):
            return " ".join(paragraph)
    return ""


class Blobs:
    """The first bytes of blobs, read through one ``git cat-file --batch`` rather than a process per blob."""

    def __init__(self, git_dir: Path) -> None:
        self.proc = subprocess.Popen(["git", "-C", str(git_dir), "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def head(self, spec: str, size: int = 2048) -> bytes | None:
        """The first ``size`` bytes of ``REV:PATH``; None if there is no such blob."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(spec.encode("utf-8", "surrogateescape") + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()  # "SHA TYPE SIZE", or "SPEC missing"
        if len(header) < 3:
            return None
        return self.proc.stdout.read(int(header[2]) + 1)[:-1][:size]

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def targets_of(commit: Commit, git_dir: Path, doc_dirs: frozenset[str], blobs: Blobs) -> list[str] | None:
    """The commit's targets (sorted) if it is eligible (rules in the module's docstring), else None."""
    if len(commit.parents) != 1 or BOT.search(commit.author):
        return None
    if len(commit.subject.split()) < MIN_WORDS or SKIP_SUBJECT.search(commit.subject) or "This reverts commit" in commit.body:
        return None
    if commit.lines > MAX_LINES:
        return None
    parent = commit.parents[0]
    targets = []
    for status, path in commit.changes:
        what = kind(path, doc_dirs)
        if what == "script?":
            blob = blobs.head(f"{parent if status == 'D' else commit.sha}:{path}")
            what = "source" if blob and blob.startswith(b"#!") else "other"
        if what != "source":
            continue
        if status != "M" or path in commit.binary:
            return None
        targets.append(path)
    if not 1 <= len(targets) <= MAX_TARGETS:
        return None
    for path in targets:
        blob = blobs.head(f"{parent}:{path}")
        if blob is None or GENERATED.search(b"\n".join(blob.splitlines()[:5]).decode("utf-8", "replace")):
            return None
    diff = git(git_dir, "diff", "-U0", "--no-color", parent, commit.sha, "--", *targets)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    if changed and all("version" in line.lower() for line in changed):
        return None
    return sorted(targets)


def tree_files(git_dir: Path, rev: str) -> int:
    return len(git(git_dir, "ls-tree", "-r", "--name-only", "-z", rev).split("\0")) - 1


def spread(eligible: int, cases: int, seed: int) -> list[int]:
    """Indexes of the commits drawn: one from each of ``cases`` equal spans of the ``eligible``, or all of them."""
    if eligible <= cases:
        return list(range(eligible))
    rng = random.Random(seed)
    return [rng.randrange(eligible * span // cases, eligible * (span + 1) // cases) for span in range(cases)]


def sample(project: Project, cases: int, seed: int) -> tuple[list[tuple[Commit, list[str]]], int]:
    """The drawn (commit, targets), oldest first, and the number of eligible commits."""
    blobs = Blobs(project.git_dir)
    pool = []
    try:
        for commit in history(project.git_dir):
            targets = targets_of(commit, project.git_dir, project.doc_dirs, blobs)
            if targets is None:
                continue
            if project.min_files or project.max_files is not None:  # ls-tree only when a size is asked for
                files = tree_files(project.git_dir, commit.parents[0])
                if files < project.min_files or project.max_files is not None and files > project.max_files:
                    continue
            pool.append((commit, targets))
    finally:
        blobs.close()
    return [pool[index] for index in spread(len(pool), cases, seed)], len(pool)


def write_bundle(project: Project, picked: Sequence[tuple[Commit, list[str]]], bundle: Path) -> None:
    """``refs/bench/NN`` (the parent's tree, a root commit) and ``NN-after`` (the commit's tree, its child), per case."""
    objects = (project.git_dir / git(project.git_dir, "rev-parse", "--git-path", "objects").strip()).resolve()
    with tempfile.TemporaryDirectory(prefix="make-recall-cases-") as folder:
        scratch = Path(folder) / "scratch.git"
        subprocess.run(["git", "init", "-q", "--bare", str(scratch)], check=True)
        (scratch / "objects" / "info" / "alternates").write_text(f"{objects}\n")  # borrow, never write, the repository's objects
        for number, (commit, _) in enumerate(picked):
            parent = commit.parents[0]
            before = git(scratch, "commit-tree", f"{parent}^{{tree}}", stdin=f"{project.github} at {parent}\n".encode(), env=BENCH_AUTHOR)
            after = git(scratch, "commit-tree", f"{commit.sha}^{{tree}}", "-p", before.strip(),
                        stdin=f"{project.github} {commit.sha}: {commit.subject}\n".encode(), env=BENCH_AUTHOR)
            git(scratch, "update-ref", f"refs/bench/{number:02d}", before.strip())
            git(scratch, "update-ref", f"refs/bench/{number:02d}-after", after.strip())
        bundle.parent.mkdir(parents=True, exist_ok=True)
        bundle.unlink(missing_ok=True)
        git(scratch, "bundle", "create", "-q", str(bundle), "--glob=refs/bench/*")


def case_line(project: Project, number: int, commit: Commit, targets: list[str]) -> dict[str, Any]:
    """One line of cases.jsonl, keys in the shared data set's order."""
    ref = f"refs/bench/{number:02d}"
    paragraph = first_paragraph(commit.body)
    return {
        "repo": project.github,
        "bundle": f"bundles/{project.name}.bundle",
        "ref": ref,
        "after_ref": f"{ref}-after",
        "upstream_parent": commit.parents[0],
        "upstream_commit": commit.sha,
        "task": commit.subject,
        "task_with_body": commit.subject + (f"\n\n{paragraph}" if paragraph else ""),
        "targets": targets,
    }


def build(project: Project, out: Path, cases: int = CASES, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Writes ``out/bundles/NAME.bundle`` and returns the project's cases.jsonl lines and its build-info entry."""
    picked, eligible = sample(project, cases, seed)
    if not picked:
        return [], {"repo": project.github, "eligible": 0, "cases": 0}
    bundle = (out / "bundles" / f"{project.name}.bundle").resolve()
    write_bundle(project, picked, bundle)
    lines = [case_line(project, number, commit, targets) for number, (commit, targets) in enumerate(picked)]
    sizes = [tree_files(project.git_dir, commit.parents[0]) for commit, _ in picked]

    def date(sha: str) -> str:
        return git(project.git_dir, "log", "-1", "--format=%cs", sha).strip()

    info = {
        "repo": project.github, "head": git(project.git_dir, "rev-parse", "HEAD").strip(), "eligible": eligible, "cases": len(lines),
        "tree_files_min": min(sizes), "tree_files_max": max(sizes),
        "targets": sum(len(line["targets"]) for line in lines),
        "with_body": sum(line["task"] != line["task_with_body"] for line in lines),
        "bundle_bytes": bundle.stat().st_size,
        "first_case_date": date(picked[0][0].sha), "last_case_date": date(picked[-1][0].sha),
    }
    return lines, info


def replace_lines(old: str, bundle: str, new: Sequence[dict[str, Any]]) -> str:
    """cases.jsonl with the lines of ``bundle`` replaced by ``new`` where the first of them was (appended if none); others untouched."""
    kept: list[str] = []
    at = None
    for line in old.splitlines():
        if line.strip() and json.loads(line)["bundle"] == bundle:
            at = len(kept) if at is None else at
        elif line.strip():
            kept.append(line)
    at = len(kept) if at is None else at
    return "".join(f"{line}\n" for line in [*kept[:at], *(json.dumps(case) for case in new), *kept[at:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of cases.jsonl, bundles/ and build-info.json (made if missing)")
    parser.add_argument("--repo", type=Path, required=True, help="the project's git directory (a clone or mirror), only read")
    parser.add_argument("--name", required=True, help="the project's short name: bundles/NAME.bundle, its lines replaced on a re-run")
    parser.add_argument("--github", required=True, metavar="OWNER/NAME", help="the project on GitHub, each case's repo")
    parser.add_argument("--cases", type=int, default=CASES, help="commits to draw, one per equal span of the eligible ones")
    parser.add_argument("--min-files", type=int, default=0, help="only commits whose parent's tree tracks at least this many files")
    parser.add_argument("--max-files", type=int, help="only commits whose parent's tree tracks at most this many files")
    parser.add_argument("--doc-dirs", default="docs,doc", help="comma-separated folder names holding docs (never targets)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random.Random drawing one commit per span")
    args = parser.parse_args(argv)
    doc_dirs = frozenset(part.strip() for part in args.doc_dirs.split(",") if part.strip())
    project = Project(args.name, args.github, args.repo, doc_dirs, args.min_files, args.max_files)
    try:
        lines, info = build(project, args.out, args.cases, args.seed)
    except subprocess.CalledProcessError as error:  # one line, no traceback: most often a partial clone missing old blobs
        said = error.stderr.decode("utf-8", "replace").strip().splitlines() if error.stderr else []
        print(f"{project.name}: git failed in {project.git_dir}: {said[0] if said else f'exit {error.returncode}'}"
              " (a shallow or partial clone lacks history: clone it in full)", file=sys.stderr)
        return 1
    if not lines:
        print(f"{project.name}: no eligible commit in {project.git_dir}; nothing written", file=sys.stderr)
        return 1
    cases_path, info_path = args.out / "cases.jsonl", args.out / "build-info.json"
    old = cases_path.read_text(encoding="utf-8") if cases_path.exists() else ""
    cases_path.write_text(replace_lines(old, lines[0]["bundle"], lines), encoding="utf-8")
    infos = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    infos[project.name] = info
    info_path.write_text(json.dumps(infos, indent=2) + "\n", encoding="utf-8")
    print(f"{project.name}: {info['cases']} cases of {info['eligible']} eligible, trees {info['tree_files_min']}-"
          f"{info['tree_files_max']} files, bundle {info['bundle_bytes'] / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
