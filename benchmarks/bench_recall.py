"""Does the context hold the code a real commit changed? Offline, over ../shared/bench/recall.

Run: python benchmarks/bench_recall.py [--cases FOLDER] [--limit N] [--project NAME] [--misses] [--locations FILE]

Each case is a real commit: the task is its subject, the targets the source files it changed,
the tree the one before it, and ``git diff REF AFTER_REF`` the real change (see the data set's
README). Per project and overall:

- files: share of target files the context sends whole at the default cap (``context.max_tokens``)
  as the prompt carries them (a file only listed in the map, even with its outline, is not found:
  the model cannot edit what it has not seen); excerpt: share sent as an excerpt instead; all:
  share of cases whose every target is sent whole; map: share of targets at least listed in the
  repository map; bm25: share of targets rank_bm25 (Okapi, over the path and the content split
  into lowercase words) sends whole filling the same cap best first, by the same rules of what may
  be sent;
- hunks@20k / hunks@40k: hunk recall at 20,000 and 40,000 tokens, the share of the real change's
  hunks in the targets (``git diff -U0``) whose old lines are all in the prompt, in a file sent
  whole or in an excerpt (a pure insertion counts when the line before it is there, the first line
  for one at the top); each case weighs the same (the mean over cases of the share of its
  hunks), so one sweeping commit does not outweigh forty small ones; bm25@20k / bm25@40k: the same
  for rank_bm25's whole files filling the whole cap;
- tok@20k / tok@40k: mean tokens the context used;
- with ``--locations``: each case's recorded localisation reply (``repo/localise.py``; JSON lines
  of project, ref, task and reply, as ``benchmarks/data/localisation-replies.jsonl``) is read as the
  bot reads it, for the cases whose repository is large enough for the call, and every figure
  is of the context built with it; loc-calls: share of cases that made the call; loc-$: its
  mean cost per run: as billed when the reply was recorded from a real model
  (``record_locations.py``), else on the default code model for its prompt's estimated tokens in
  and the reply's out (the shipped replies come from a stand-in: no model answers offline);
- time (median wall clock and CPU of this process, worst wall clock, ms) of one ``build_context``
  call at the default cap, and its peak traced memory (MB, tracemalloc on a separate call for
  every ``--memory-every``-th case of a project, so timing is not slowed).

The goal (issue 23): on every project, hunk recall >= 0.85 at the default cap and >= 0.80 at
20,000 tokens, and never below bm25 at the same cap. The last line says whether it is met.

Bundles are fetched once into a scratch repository under ``--cache`` (default: the system
temp dir) and each case is a ``git worktree`` there, kept for the next run, with BM25's ranking.

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

from automation.core.config import Config  # noqa: E402
from automation.core.prices import Usage, format_usd  # noqa: E402
from automation.repo import context, localise  # noqa: E402

DEFAULT_CASES = ROOT.parent / "shared" / "bench" / "recall"
DEFAULT_CAP = Config().context_max_tokens
CAPS = (20_000, 40_000)  # hunk recall is reported at each, and at the cap measured if another
_BM25_WORD = re.compile(r"[a-z0-9]+")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? ", re.MULTILINE)
_GAP = re.compile(r"… lines (\d+)-(\d+) left out\n")


@dataclass(frozen=True)
class Case:
    project: str
    ref: str
    after_ref: str
    task: str
    targets: tuple[str, ...]
    bundle: Path


@dataclass(frozen=True)
class Hunk:
    """Old lines ``first`` .. ``first + count - 1`` (1-based) of ``path``; ``count`` 0: an insertion after line ``first``."""

    path: str
    first: int
    count: int


@dataclass(frozen=True)
class Result:
    project: str
    targets: int
    whole: int
    excerpt: int
    in_map: int
    bm25_files: int
    hunks: int
    caps: tuple[int, ...]  # tokens
    found: tuple[int, ...]  # hunks in the prompt, per cap
    bm25_found: tuple[int, ...]
    tokens: tuple[int, ...]
    seconds: float
    cpu_seconds: float
    peak_bytes: int | None
    localise_micro_usd: int | None = None  # the localisation call's cost, when one was made


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
        cases.append(Case(project, raw["ref"], raw["after_ref"], raw["task"], tuple(raw["targets"]), folder / raw["bundle"]))
    return cases


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True).stdout.decode("utf-8", "surrogateescape")


def _scratch(case: Case, cache: Path) -> Path:
    """The scratch repository holding every case's refs, fetching the case's bundle on first use."""
    scratch = cache / "scratch"
    if not (scratch / ".git").exists():
        scratch.mkdir(parents=True, exist_ok=True)
        _git(scratch, "init", "-q")
    fetched = scratch / ".git" / f"fetched-{case.bundle.stem}"
    if not fetched.exists():
        _git(scratch, "fetch", "-q", str(case.bundle.resolve()), f"refs/bench/*:refs/bench/{case.bundle.stem}/*")
        fetched.touch()
    return scratch


def _local(case: Case, ref: str) -> str:
    return ref.replace("refs/bench/", f"refs/bench/{case.bundle.stem}/", 1)


def checkout(case: Case, cache: Path) -> Path:
    """The case's tree as a git worktree under ``cache``."""
    scratch = _scratch(case, cache)
    tree = cache / "cases" / f"{case.bundle.stem}-{case.ref.rsplit('/', 1)[-1]}"
    if not tree.exists():
        _git(scratch, "worktree", "add", "-q", "--detach", str(tree), _local(case, case.ref))
    return tree


def real_hunks(case: Case, cache: Path) -> list[Hunk]:
    """The hunks of the real change in the case's targets (``git diff -U0``, old side)."""
    hunks: list[Hunk] = []
    for target in case.targets:
        diff = _git(_scratch(case, cache), "diff", "-U0", "--no-color", _local(case, case.ref), _local(case, case.after_ref), "--", target)
        hunks += [Hunk(target, int(first), int(count or 1)) for first, count in _HUNK.findall(diff)]
    return hunks


def excerpt_lines(excerpt: str) -> set[int]:
    """The 1-based line numbers an excerpt carries, read back from its gap marks."""
    carried: set[int] = set()
    number = 1
    for line in excerpt.splitlines(keepends=True):
        gap = _GAP.fullmatch(line)
        if gap and int(gap.group(1)) == number:
            number = int(gap.group(2)) + 1
        else:
            carried.add(number)
            number += 1
    return carried


def map_paths(map_text: str) -> set[str]:
    """The paths the map lists: a folder's line ('a/b/'), then its files indented ('  c.py (1.2 KB)'); top-level files unindented."""
    paths: set[str] = set()
    folder = ""
    for line in map_text.splitlines()[1:]:
        if line.endswith("/") and not line.startswith(" "):
            folder = line
        elif " (" in line:
            paths.add((folder if line.startswith("  ") else "") + line.strip().split(" (", 1)[0])
    return paths


def hunks_found(hunks: Sequence[Hunk], whole: set[str], excerpts: dict[str, set[int]]) -> int:
    """How many hunks have all their old lines in the prompt (an insertion: the line before, or the first)."""
    found = 0
    for hunk in hunks:
        if hunk.path in whole:
            found += 1
        elif hunk.path in excerpts:
            needed = range(hunk.first, hunk.first + hunk.count) if hunk.count else [max(hunk.first, 1)]
            found += all(line in excerpts[hunk.path] for line in needed)
    return found


def _bm25_words(text: str) -> list[str]:
    return _BM25_WORD.findall(text.lower())


def bm25_ranking(case: Case, tree: Path, cache: Path) -> list[tuple[str, int]]:
    """(path, bytes of its block) of every sendable file, best first by rank_bm25; cached under ``cache``."""
    stored = cache / "bm25" / f"{case.bundle.stem}-{case.ref.rsplit('/', 1)[-1]}.json"
    if stored.exists():
        saved = json.loads(stored.read_text(encoding="utf-8"))
        if saved["task"] == case.task:
            return [(path, size) for path, size in saved["ranking"]]
    texts: dict[str, str] = {}
    for path in _git(tree, "ls-files", "-z").split("\0"):
        text = context.read_sendable(tree, path) if path else None
        if text is not None:
            texts[path] = text
    paths = sorted(texts)
    scores = BM25Okapi([_bm25_words(path + "\n" + texts[path]) for path in paths]).get_scores(_bm25_words(case.task))
    ranked = [path for _, path in sorted(zip(scores, paths), key=lambda pair: (-pair[0], pair[1]))]
    ranking = [(path, len(context.file_block(path, texts[path]).encode("utf-8"))) for path in ranked]
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps({"task": case.task, "ranking": ranking}), encoding="utf-8")
    return ranking


def bm25_sent(ranking: Sequence[tuple[str, int]], room: int) -> set[str]:
    """The files BM25 sends whole into ``room`` bytes, filling it best first."""
    sent: set[str] = set()
    for path, size in ranking:
        if size <= room:
            sent.add(path)
            room -= size
    return sent


@dataclass(frozen=True)
class Recorded:
    """A recorded localisation reply; ``cost_micro_usd`` what the call was billed, when a real model's was recorded (record_locations.py)."""

    reply: str
    cost_micro_usd: int | None = None


def load_replies(path: Path) -> dict[tuple[str, str, str], Recorded]:
    """Recorded localisation replies by (project, ref, task): two data sets of one project reuse refs.

    Raises ValueError naming the file and line when a line is not such a record.
    """
    replies: dict[tuple[str, str, str], Recorded] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                replies[(str(row["project"]), str(row["ref"]), str(row["task"]))] = Recorded(str(row["reply"]), row.get("cost_micro_usd"))
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}:{number}: not a recorded reply (JSON with project, ref, task and reply)") from None
    return replies


def located(case: Case, tree: Path, recorded: Recorded | None) -> tuple[context.Locations | None, int | None]:
    """The locations the bot would read from a recorded reply and the call's cost in micro-dollars
    (as billed, else estimated from the prompt and the reply); (None, None) without a call."""
    found = localise.brief(tree, case.task) if recorded is not None else None
    if found is None or recorded is None:
        return None, None
    cost = recorded.cost_micro_usd
    if cost is None:
        config = Config()
        usage = Usage(input_tokens=found.tokens, output_tokens=context.estimate_tokens(recorded.reply))
        cost = config.price(config.code_model).cost_micro_usd(usage)
    return localise.parse(recorded.reply, found.offered)[0], cost


def measure(case: Case, cache: Path, cap: int, trace_memory: bool, recorded: Recorded | None = None) -> Result:
    tree = checkout(case, cache)
    locations, call_cost = located(case, tree, recorded)
    started, cpu = time.perf_counter(), time.process_time()
    ctx = context.build_context(tree, case.task, cap, locations=locations)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    peak = None
    if trace_memory:
        tracemalloc.start()
        context.build_context(tree, case.task, cap, locations=locations)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    whole = sum(target in ctx.files for target in case.targets)
    excerpt = sum(target in ctx.excerpts for target in case.targets)
    listed = map_paths(ctx.map_text)
    in_map = sum(target in listed or target in ctx.files for target in case.targets)
    ranking = bm25_ranking(case, tree, cache)
    hunks = real_hunks(case, cache)
    caps = tuple(sorted({*CAPS, cap}))
    found, bm25_hunks, tokens = [], [], []
    for each in caps:
        at = ctx if each == cap else context.build_context(tree, case.task, each, locations=locations)
        found.append(hunks_found(hunks, set(at.files), {path: excerpt_lines(text) for path, text in at.excerpts.items()}))
        bm25_hunks.append(hunks_found(hunks, bm25_sent(ranking, each * context.BYTES_PER_TOKEN), {}))
        tokens.append(at.tokens)
    bm25_files = len(bm25_sent(ranking, cap * context.BYTES_PER_TOKEN) & set(case.targets))
    return Result(case.project, len(case.targets), whole, excerpt, in_map, bm25_files, len(hunks), caps, tuple(found),
                  tuple(bm25_hunks), tuple(tokens), seconds, cpu_seconds, peak, call_cost)


def large_repository(cases: Sequence[Case], cache: Path, files: int) -> Path:
    """A git repository of at least ``files`` tracked files made of the newest case tree of each project."""
    newest = {case.project: case for case in cases}
    folder = cache / ("large-" + "-".join(f"{case.project}{case.ref.rsplit('/', 1)[-1]}" for case in newest.values()) + f"-{files}")
    if (folder / ".git").exists():
        return folder
    folder.mkdir(parents=True)
    _git(folder, "init", "-q")
    copy = 0
    while len(_git(folder, "ls-files").splitlines()) < files:
        for case in newest.values():
            tree = checkout(case, cache)
            target = folder / f"copy{copy}" / case.project
            target.mkdir(parents=True)
            archive = subprocess.run(["git", "archive", "HEAD"], cwd=tree, check=True, capture_output=True).stdout
            # without .gitattributes: an encoding attribute (Sphinx's) fails the add of a copy
            subprocess.run(["tar", "-x", "--exclude=.gitattributes", "-C", str(target)], input=archive, check=True)
        copy += 1
        _git(folder, "add", "-A")
    return folder


def time_large(cases: Sequence[Case], cache: Path, cap: int, files: int) -> str:
    """One line: the large repository's size, median wall and CPU ms per call, peak traced MB."""
    folder = large_repository(cases, cache, files)
    count = len(_git(folder, "ls-files").splitlines())
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


def hunk_recall(rows: Sequence[Result], column: str, index: int) -> float:
    """The mean over cases (with hunks) of the share of a case's hunks found."""
    shares = [getattr(row, column)[index] / row.hunks for row in rows if row.hunks]
    return sum(shares) / len(shares) if shares else 1.0


def table(results: Sequence[Result]) -> str:
    """One row per project and an overall row: shares of targets, cases or hunks; tokens; ms; MB."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        groups[result.project].append(result)
    caps = [f"{cap / 1000:g}k" for cap in results[0].caps]
    names = ["project", "cases", "files", "excerpt", "all", "map", "bm25",
             *(f"hunks@{cap}" for cap in caps), *(f"bm25@{cap}" for cap in caps), *(f"tok@{cap}" for cap in caps),
             "median-ms", "cpu-ms", "max-ms", "peak-MB", *(["loc-calls", "loc-$"] if any(r.localise_micro_usd is not None for r in results) else [])]
    widths = [max(len(name), 7) for name in names]
    widths[0] = 10
    lines = [" ".join(f"{name:<{width}}" if not column else f"{name:>{width}}" for column, (name, width) in enumerate(zip(names, widths)))]
    lines.append("-" * len(lines[0]))
    for name, rows in [*sorted(groups.items()), ("overall", list(results))]:
        targets = sum(row.targets for row in rows)
        peaks = [row.peak_bytes for row in rows if row.peak_bytes is not None]
        cells = [
            name, str(len(rows)), f"{sum(r.whole for r in rows) / targets:.2f}", f"{sum(r.excerpt for r in rows) / targets:.2f}",
            f"{sum(r.whole == r.targets for r in rows) / len(rows):.0%}", f"{sum(r.in_map for r in rows) / targets:.2f}",
            f"{sum(r.bm25_files for r in rows) / targets:.2f}",
            *(f"{hunk_recall(rows, 'found', index):.2f}" for index in range(len(caps))),
            *(f"{hunk_recall(rows, 'bm25_found', index):.2f}" for index in range(len(caps))),
            *(f"{statistics.mean(r.tokens[index] for r in rows):,.0f}" for index in range(len(caps))),
            f"{statistics.median(r.seconds for r in rows) * 1000:.0f}", f"{statistics.median(r.cpu_seconds for r in rows) * 1000:.0f}",
            f"{max(r.seconds for r in rows) * 1000:.0f}", f"{(max(peaks) / 1e6 if peaks else float('nan')):.1f}",
        ]
        if len(names) > len(cells):
            costs = [r.localise_micro_usd for r in rows if r.localise_micro_usd is not None]
            cells += [f"{len(costs) / len(rows):.0%}", format_usd(round(statistics.mean(costs)), 4) if costs else "-"]
        lines.append(" ".join(f"{cell:<{width}}" if not column else f"{cell:>{width}}" for column, (cell, width) in enumerate(zip(cells, widths))))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="folder holding cases.jsonl and bundles/")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ai-orchestration-bench-recall")
    parser.add_argument("--limit", type=int, help="at most this many cases per project")
    parser.add_argument("--project", action="append", default=[], help="only this project (repeatable), e.g. attrs")
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP, help="the cap in tokens the file shares, the time and the goal are measured at")
    parser.add_argument("--memory-every", type=int, default=5, help="trace memory on every Nth case (0: never)")
    parser.add_argument("--misses", action="store_true", help="print each case missing a target file or a hunk at the cap")
    parser.add_argument("--large-files", type=int, default=2_000, help="files in the large repository timed at the end (0: skip)")
    parser.add_argument("--locations", type=Path, help="recorded localisation replies (JSON lines: project, ref, task, reply) to build with")
    args = parser.parse_args(argv)
    replies = load_replies(args.locations) if args.locations else {}
    cases = load_cases(args.cases, args.limit, args.project)
    if not cases:
        print(f"no cases in {args.cases / 'cases.jsonl'}")
        return 1
    results = []
    seen: dict[str, int] = defaultdict(int)
    for case in cases:
        traced = args.memory_every > 0 and seen[case.project] % args.memory_every == 0
        seen[case.project] += 1
        result = measure(case, args.cache, args.cap, traced, replies.get((case.project, case.ref, case.task)))
        results.append(result)
        missed = result.hunks - result.found[result.caps.index(args.cap)]
        if args.misses and (result.whole < result.targets or missed):
            print(f"miss {case.project} {case.ref}: {case.task[:70]!r} {list(case.targets)}: {missed} of {result.hunks} hunks")
    print(f"{len(cases)} cases, cap {args.cap:,} tokens")
    print(table(results))
    if args.large_files > 0:
        print(time_large(cases, args.cache, args.cap, args.large_files))
    print("goal met" if goal_met(results, args.cap) else "GOAL MISSED")
    return 0


def goal_met(results: Sequence[Result], cap: int) -> bool:
    """On every project: hunk recall >= 0.85 at ``cap`` and >= 0.80 at 20,000 tokens, never below bm25 at any cap."""
    projects = {row.project for row in results}
    for name in projects:
        rows = [row for row in results if row.project == name]
        caps = rows[0].caps
        if hunk_recall(rows, "found", caps.index(cap)) < 0.85 or hunk_recall(rows, "found", caps.index(CAPS[0])) < 0.80:
            return False
        if any(hunk_recall(rows, "found", index) < hunk_recall(rows, "bm25_found", index) for index in range(len(caps))):
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
