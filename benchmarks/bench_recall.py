"""Does the context hold the files a real commit changed? Offline, over ../shared/bench/recall.

Run: python benchmarks/bench_recall.py [--limit N] [--project NAME] [--cap TOKENS]

Each case is a real commit: the task is its subject, the targets the source files it changed,
the tree the one before it (see the data set's README). Per project and overall:

- recall@ctx: share of target files the context sends whole, as the prompt carries them (a
  file only listed in the map, even with its outline, is not found: the model cannot edit
  what it has not seen);
- excerpt: share of target files too large for the room left and sent as an excerpt (their
  definitions and the lines around the task's words): counted apart, never as found;
- all-found: share of cases whose every target is sent whole;
- hit@map: share of targets at least listed in the repository map;
- bm25@room / bm25@cap: rank_bm25 (Okapi, over the path and the content split into lowercase
  words) sending whole files best first into the room the product's map leaves, and into the
  whole cap, by the same rules of what may be sent;
- time (median wall clock and CPU of this process, worst wall clock, ms) of one
  ``build_context`` call, and its peak traced memory (MB,
  tracemalloc on a separate call for every ``--memory-every``-th case of a project, so timing
  is not slowed).

The goal (issue 13): recall@ctx >= 0.80 and all-found >= 70% overall, recall@ctx never below
bm25@cap on any project. The last line says whether it is met.

Bundles are fetched once into a scratch repository under ``--cache`` (default: the system
temp dir) and each case is a ``git worktree`` there, kept for the next run.

Then the speed on a large real repository: the newest tree of every project, copied side by
side until there are at least ``--large-files`` (2,000) tracked files, with each project's
tasks; median wall clock and CPU of ``build_context`` and its peak traced memory.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rank_bm25 import BM25Okapi  # noqa: E402

from automation.repo import context  # noqa: E402

DEFAULT_CASES = ROOT.parent / "shared" / "bench" / "recall"
DEFAULT_CAP = 40_000
_BM25_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Case:
    project: str
    ref: str
    task: str
    targets: tuple[str, ...]
    bundle: Path


@dataclass(frozen=True)
class Result:
    project: str
    targets: int
    whole: int
    excerpt: int
    in_map: int
    bm25_room: int
    bm25_cap: int
    seconds: float
    cpu_seconds: float
    peak_bytes: int | None


def load_cases(folder: Path, limit: int | None, projects: Sequence[str]) -> list[Case]:
    """The cases of ``cases.jsonl``, at most ``limit`` per project, in file order."""
    cases: list[Case] = []
    seen: dict[str, int] = defaultdict(int)
    for line in (folder / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        project = raw["repo"].rsplit("/", 1)[-1]
        if projects and project not in projects or limit is not None and seen[project] >= limit:
            continue
        seen[project] += 1
        cases.append(Case(project, raw["ref"], raw["task"], tuple(raw["targets"]), folder / raw["bundle"]))
    return cases


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def checkout(case: Case, cache: Path) -> Path:
    """The case's tree as a git worktree under ``cache``, fetching its bundle on first use."""
    scratch = cache / "scratch"
    if not (scratch / ".git").exists():
        scratch.mkdir(parents=True, exist_ok=True)
        _git(scratch, "init", "-q")
    fetched = scratch / ".git" / f"fetched-{case.bundle.stem}"
    if not fetched.exists():
        _git(scratch, "fetch", "-q", str(case.bundle.resolve()), f"refs/bench/*:refs/bench/{case.bundle.stem}/*")
        fetched.touch()
    tree = cache / "cases" / f"{case.bundle.stem}-{case.ref.rsplit('/', 1)[-1]}"
    if not tree.exists():
        _git(scratch, "worktree", "add", "-q", "--detach", str(tree), case.ref.replace("refs/bench/", f"refs/bench/{case.bundle.stem}/", 1))
    return tree


def _bm25_words(text: str) -> list[str]:
    return _BM25_WORD.findall(text.lower())


def bm25_found(tree: Path, task: str, targets: Sequence[str], rooms: Sequence[int]) -> list[int]:
    """How many targets BM25 sends whole into each room (bytes), filling it best first."""
    texts: dict[str, str] = {}
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=tree, capture_output=True, check=True).stdout
    for raw in listed.split(b"\0"):
        path = raw.decode("utf-8", "surrogateescape")
        text = context.read_sendable(tree, path) if path else None
        if text is not None:
            texts[path] = text
    paths = sorted(texts)
    scores = BM25Okapi([_bm25_words(path + "\n" + texts[path]) for path in paths]).get_scores(_bm25_words(task))
    ranked = [path for _, path in sorted(zip(scores, paths), key=lambda pair: (-pair[0], pair[1]))]
    found = []
    for room in rooms:
        sent: set[str] = set()
        for path in ranked:
            size = len(context.file_block(path, texts[path]).encode("utf-8"))
            if size <= room:
                sent.add(path)
                room -= size
        found.append(sum(target in sent for target in targets))
    return found


def measure(case: Case, cache: Path, cap: int, trace_memory: bool) -> Result:
    tree = checkout(case, cache)
    started, cpu = time.perf_counter(), time.process_time()
    ctx = context.build_context(tree, case.task, cap)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    peak = None
    if trace_memory:
        tracemalloc.start()
        context.build_context(tree, case.task, cap)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    whole = sum(target in ctx.files for target in case.targets)
    excerpt = sum(target in ctx.excerpts for target in case.targets)
    listed = set(re.findall(r"^(\S+) \(", ctx.map_text, re.MULTILINE))
    in_map = sum(target in listed or target in ctx.files for target in case.targets)
    cap_bytes = cap * context.BYTES_PER_TOKEN
    room = cap_bytes - len(ctx.map_text.encode("utf-8"))
    bm25_room, bm25_cap = bm25_found(tree, case.task, case.targets, (room, cap_bytes))
    return Result(case.project, len(case.targets), whole, excerpt, in_map, bm25_room, bm25_cap, seconds, cpu_seconds, peak)


def large_repository(cases: Sequence[Case], cache: Path, files: int) -> Path:
    """A git repository of at least ``files`` tracked files made of the newest case tree of each project."""
    newest = {case.project: case for case in cases}
    folder = cache / ("large-" + "-".join(f"{case.project}{case.ref.rsplit('/', 1)[-1]}" for case in newest.values()) + f"-{files}")
    if (folder / ".git").exists():
        return folder
    folder.mkdir(parents=True)
    _git(folder, "init", "-q")
    copy = 0
    while len(subprocess.run(["git", "ls-files"], cwd=folder, check=True, capture_output=True).stdout.splitlines()) < files:
        for case in newest.values():
            tree = checkout(case, cache)
            target = folder / f"copy{copy}" / case.project
            target.mkdir(parents=True)
            archive = subprocess.run(["git", "archive", "HEAD"], cwd=tree, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        copy += 1
        _git(folder, "add", "-A")
    return folder


def time_large(cases: Sequence[Case], cache: Path, cap: int, files: int) -> str:
    """One line: the large repository's size, median wall and CPU ms per call, peak traced MB."""
    folder = large_repository(cases, cache, files)
    count = len(subprocess.run(["git", "ls-files"], cwd=folder, check=True, capture_output=True).stdout.splitlines())
    tasks = [case.task for case in cases[:: max(1, len(cases) // 10)]][:10]
    walls, cpus = [], []
    for task in tasks:
        wall, cpu = time.perf_counter(), time.process_time()
        context.build_context(folder, task, cap)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    tracemalloc.start()
    context.build_context(folder, tasks[0], cap)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (
        f"large repository, {count:,} files: median {statistics.median(walls) * 1000:.0f} ms"
        f" ({statistics.median(cpus) * 1000:.0f} ms CPU) over {len(tasks)} tasks, peak {peak / 1e6:.1f} MB"
    )


def table(results: Sequence[Result]) -> str:
    """One row per project and an overall row: shares of targets (or cases), ms, MB."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        groups[result.project].append(result)
    header = f"{'project':<10} {'cases':>5} {'recall@ctx':>10} {'excerpt':>7} {'all-found':>9} {'hit@map':>7} {'bm25@room':>9} {'bm25@cap':>8} {'median ms':>9} {'cpu ms':>6} {'max ms':>7} {'peak MB':>7}"
    lines = [header, "-" * len(header)]
    for name, rows in [*sorted(groups.items()), ("overall", list(results))]:
        targets = sum(row.targets for row in rows)
        peaks = [row.peak_bytes for row in rows if row.peak_bytes is not None]
        lines.append(
            f"{name:<10} {len(rows):>5} {sum(r.whole for r in rows) / targets:>10.2f} {sum(r.excerpt for r in rows) / targets:>7.2f}"
            f" {sum(r.whole == r.targets for r in rows) / len(rows):>9.0%} {sum(r.in_map for r in rows) / targets:>7.2f}"
            f" {sum(r.bm25_room for r in rows) / targets:>9.2f} {sum(r.bm25_cap for r in rows) / targets:>8.2f}"
            f" {statistics.median(r.seconds for r in rows) * 1000:>9.0f} {statistics.median(r.cpu_seconds for r in rows) * 1000:>6.0f} {max(r.seconds for r in rows) * 1000:>7.0f}"
            f" {(max(peaks) / 1e6 if peaks else float('nan')):>7.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="folder holding cases.jsonl and bundles/")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ai-orchestration-bench-recall")
    parser.add_argument("--limit", type=int, help="at most this many cases per project")
    parser.add_argument("--project", action="append", default=[], help="only this project (repeatable), e.g. attrs")
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP, help="context cap in tokens")
    parser.add_argument("--memory-every", type=int, default=5, help="trace memory on every Nth case (0: never)")
    parser.add_argument("--misses", action="store_true", help="print each target not sent whole")
    parser.add_argument("--large-files", type=int, default=2_000, help="files in the large repository timed at the end (0: skip)")
    args = parser.parse_args(argv)
    cases = load_cases(args.cases, args.limit, args.project)
    if not cases:
        print(f"no cases in {args.cases / 'cases.jsonl'}")
        return 1
    results = []
    seen: dict[str, int] = defaultdict(int)
    for case in cases:
        traced = args.memory_every > 0 and seen[case.project] % args.memory_every == 0
        seen[case.project] += 1
        result = measure(case, args.cache, args.cap, traced)
        results.append(result)
        if args.misses and result.whole < result.targets:
            print(f"miss {case.project} {case.ref}: {case.task[:70]!r} {list(case.targets)}")
    print(f"{len(cases)} cases, cap {args.cap:,} tokens")
    print(table(results))
    if args.large_files > 0:
        print(time_large(cases, args.cache, args.cap, args.large_files))
    print("goal met" if goal_met(results) else "GOAL MISSED")
    return 0


def goal_met(results: Sequence[Result]) -> bool:
    """recall@ctx >= 0.80 and all-found >= 70% overall, and no project below bm25@cap."""
    targets = sum(row.targets for row in results)
    projects = {row.project for row in results}
    return (
        sum(row.whole for row in results) >= 0.80 * targets
        and sum(row.whole == row.targets for row in results) >= 0.70 * len(results)
        and all(
            sum(row.whole for row in results if row.project == name) >= sum(row.bm25_cap for row in results if row.project == name)
            for name in projects
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
