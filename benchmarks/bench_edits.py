"""SEARCH/REPLACE edits on 200 real commits: reproduced byte for byte, output tokens, damaged blocks.

Run: python benchmarks/bench_edits.py [--cases DIR] [--limit N]
(DIR defaults to ../shared/bench/recall next to the repository; see its README.)

For each case the real change (``git diff -U0 REF AFTER_REF``: source, tests and docs) is written
the way a model would write it: one block per hunk, with just enough unchanged lines around it
for its SEARCH part to match one place only; new files get an empty SEARCH, deleted ones a
``DELETE`` line. The reply is applied to the tree before with the product's own parser and
applier (``search_replace.parse`` and ``apply_blocks``) and compared with the tree after.

Output tokens are estimated the same way for both formats (``context.estimate_tokens``, UTF-8
bytes / 3): this format's reply against the old contract's reply, the JSON object holding every
changed file whole.

The damaged pass breaks one block's SEARCH at a time, the ways models do: trailing spaces on
every line, indentation off by one level, one interior line left out, a line from elsewhere in
the file inserted. Each is recovered (the result is the tree after), refused (the block is named
with the nearest lines) or misapplied (anything else; must be 0). Lines left out or added at a
SEARCH's *edge* are not tried: a block missing its first line is a valid block for a different
edit, which no applier can tell from a slip. Exits 1 when the reproduced share is below 100% or
anything is misapplied.
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.repo.context import estimate_tokens  # noqa: E402
from automation.repo.search_replace import BlockRefused, Refused, Text, apply_blocks, parse, place  # noqa: E402

DEFAULT_CASES = ROOT.parent / "shared" / "bench" / "recall"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
OUTPUT_CAP = 16_384  # models.code_max_tokens, the default output cap of the code call
DAMAGES = ("trailing spaces", "indentation off by one level", "one line left out", "a line from elsewhere")


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout


def fetch_cases(cases_dir: Path, scratch: Path, limit: int | None) -> list[dict]:
    """The cases, with every bundle fetched into one scratch repository under refs/bench/<bundle>/."""
    cases = [json.loads(line) for line in (cases_dir / "cases.jsonl").read_text().splitlines() if line.strip()]
    cases = cases[:limit] if limit else cases
    git(scratch, "init", "-q")
    for bundle in sorted({case["bundle"] for case in cases}):
        name = Path(bundle).stem
        git(scratch, "fetch", "-q", str(cases_dir / bundle), f"refs/bench/*:refs/bench/{name}/*")
    for case in cases:
        name = Path(case["bundle"]).stem
        case["before"] = case["ref"].replace("refs/bench/", f"refs/bench/{name}/")
        case["after"] = case["after_ref"].replace("refs/bench/", f"refs/bench/{name}/")
    return cases


def blob(repo: Path, ref: str, path: str) -> bytes:
    return git(repo, "show", f"{ref}:{path}")


def _text(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _fence(lines: list[str]) -> str:
    longest = max((len(run) for line in lines for run in re.findall(r"`{3,}", line)), default=2)
    return "`" * (longest + 1)


def _shown(path: str) -> str:
    return f"`{path}`" if any(char.isspace() for char in path) else path


def _block(path: str, search: list[str], replace: list[str]) -> str:
    fence = _fence(search + replace)
    return "\n".join([_shown(path), fence, "<<<<<<< SEARCH", *search, "=======", *replace, ">>>>>>> REPLACE", fence]) + "\n"


def _fits(lines: list[str], before: int, after: int, replace: list[str]) -> bool:
    """Whether the product's applier places SEARCH = lines[before:after] there, and only there."""
    try:
        placed = place(lines, lines[before:after], replace)
    except Refused:
        return False
    return (placed.start, placed.end) == (before, after)


def hunks(repo: Path, before: str, after: str, path: str) -> list[tuple[int, int, list[str]]]:
    """(old start 0-based, old length, new lines) per hunk of git's own diff, top to bottom."""
    out = git(repo, "diff", "-U0", "--no-color", "--no-renames", "--no-ext-diff", before, after, "--", path)
    found: list[tuple[int, int, list[str]]] = []
    for line in out.decode("utf-8", "surrogateescape").split("\n"):
        match = _HUNK.match(line)
        if match:
            start, length = int(match[1]), int(match[2] if match[2] is not None else 1)
            found.append((start - 1 if length else start, length, []))
        elif found and line.startswith("+") and not line.startswith("+++"):
            found[-1][2].append(line[1:].removesuffix("\r"))  # a CRLF file's lines: the applier keeps its endings
    return found


def blocks_for(path: str, old: str, diff: list[tuple[int, int, list[str]]]) -> list[tuple[list[str], list[str]]]:
    """(SEARCH, REPLACE) per hunk, each SEARCH grown by unchanged lines until it matches one place only
    in the file as the earlier blocks left it (blocks apply in order), as the product's applier reads it."""
    lines = Text.of(old).bodies
    shift = 0
    made: list[tuple[list[str], list[str]]] = []
    for start, length, new in diff:
        start += shift
        end = start + length
        before, after = start, end
        grow_after = True
        while not _fits(lines, before, after, lines[before:start] + new + lines[end:after]):
            if after < len(lines) and (grow_after or before == 0):
                after += 1
            elif before > 0:
                before -= 1
            else:
                break
            grow_after = not grow_after
        replace = lines[before:start] + new + lines[end:after]
        made.append((lines[before:after], replace))
        lines = lines[:before] + replace + lines[after:]
        shift += len(new) - length
    return made


@dataclass
class CaseReply:
    """One case as a model would answer it, with what the tree after holds."""

    name: str
    reply: str
    expected: dict[str, str | None]  # path -> text after (None: deleted)
    originals: dict[str, str | None]
    whole_json: str
    skipped: list[str] = field(default_factory=list)  # binary or non-UTF-8 files: no text format carries them


def express(repo: Path, case: dict) -> CaseReply:
    """The real change of one case, in this format and in the old whole-file JSON."""
    before, after = case["before"], case["after"]
    status = git(repo, "diff", "--no-renames", "--name-status", "-z", before, after).decode().split("\0")
    entries = list(zip(status[0::2], status[1::2]))
    parts = [case["task"], ""]
    files: list[dict[str, str]] = []
    expected: dict[str, str | None] = {}
    originals: dict[str, str | None] = {}
    skipped: list[str] = []
    for kind, path in entries:
        old = None if kind == "A" else _text(blob(repo, before, path))
        new = None if kind == "D" else _text(blob(repo, after, path))
        if (kind != "A" and old is None) or (kind != "D" and new is None):
            skipped.append(path)
            continue
        originals[path], expected[path] = old, new
        if kind == "D":
            parts.append(f"DELETE {_shown(path)}\n")
            files.append({"path": path, "action": "delete", "content": ""})
        elif kind == "A" or not old:
            parts.append(_block(path, [], (new or "").split("\n")[:-1] if (new or "").endswith("\n") else (new or "").split("\n")))
            files.append({"path": path, "action": "create", "content": new or ""})
        else:
            for search, replace in blocks_for(path, old, hunks(repo, before, after, path)):
                parts.append(_block(path, search, replace))
            files.append({"path": path, "action": "update", "content": new or ""})
    whole = json.dumps({"summary": case["task"], "files": files})
    return CaseReply(f"{Path(case['bundle']).stem}/{case['ref'].rsplit('/', 1)[-1]}", "\n".join(parts), expected,
                     originals, whole, skipped)


def apply_reply(reply: str, originals: dict[str, str | None]) -> dict[str, str | None]:
    """The product's parser and applier on one reply; raises BlockRefused for a block that does not place."""
    parsed = parse(reply)
    if parsed.problems:
        raise ValueError("; ".join(parsed.problems))
    by_path: dict[str, list] = {}
    for block in parsed.blocks:
        by_path.setdefault(block.path, []).append(block)
    return {path: apply_blocks(originals.get(path), blocks) for path, blocks in by_path.items()}


def _indent_unit(text: str) -> str:
    return "\t" if re.search(r"^\t", text, re.MULTILINE) and not re.search(r"^    ", text, re.MULTILINE) else "    "


def damaged(search: list[str], kind: str, file_lines: list[str], unit: str) -> list[str] | None:
    """SEARCH broken one way, or None when that damage cannot apply to it."""
    if kind == "trailing spaces":
        return [line + "  " for line in search]
    if kind == "indentation off by one level":
        body = [line for line in search if line.strip()]
        if all(line.startswith(unit) for line in body):
            return [line[len(unit) :] if line.strip() else line for line in search]
        return [unit + line if line.strip() else line for line in search]
    if kind == "one line left out":  # an interior line whose loss does not leave a shorter, valid block
        middle = len(search) // 2
        for at in sorted(range(1, len(search) - 1), key=lambda at: abs(at - middle)):
            shorter = search[:at] + search[at + 1 :]
            if not any(search[i : i + len(shorter)] == shorter for i in range(len(search) - len(shorter) + 1)):
                return shorter
        return None
    if len(search) < 2:
        return None
    wanted = set(search)
    foreign = next((line for line in reversed(file_lines) if line.strip() and line not in wanted), None)
    if foreign is None:
        return None
    at = len(search) // 2
    return search[:at] + [foreign] + search[at:]


def damaged_replies(reply: str, originals: dict[str, str | None]) -> Iterator[tuple[str, int, bool, str]]:
    """(damage, block number, verbatim, reply) with one block's SEARCH damaged, for every block and damage.

    ``verbatim``: the damaged SEARCH is, line for line, somewhere in the file as the earlier blocks
    left it, so it is a valid block for that place: no applier can tell it from a slip.
    """
    parsed = parse(reply)
    for target in parsed.blocks:
        if target.delete or not target.search:
            continue
        old = originals.get(target.path) or ""
        earlier = [block for block in parsed.blocks if block.path == target.path and block.number < target.number]
        state = Text.of(apply_blocks(originals.get(target.path), earlier) or "").bodies
        search = target.splits()[0][0]
        for kind in DAMAGES:
            broken = damaged(search, kind, Text.of(old).bodies, _indent_unit(old))
            if broken is None:
                continue
            verbatim = any(state[at : at + len(broken)] == broken for at in range(len(state) - len(broken) + 1))
            rebuilt = []
            for block in parsed.blocks:
                if block.delete:
                    rebuilt.append(f"DELETE {_shown(block.path)}\n")
                else:
                    kept, replace = block.splits()[0]
                    rebuilt.append(_block(block.path, broken if block is target else kept, replace))
            yield kind, target.number, verbatim, "\n".join(rebuilt)


def _median(values: list[int | float]) -> float:
    return statistics.median(values) if values else 0.0


def run(cases_dir: Path, limit: int | None, out: Callable[[str], None] = print) -> dict:
    """Both passes over the cases; returns the figures (also printed)."""
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        cases = fetch_cases(cases_dir, scratch, limit)
        replies = [express(scratch, case) for case in cases]
    reproduced, failures, times = 0, [], []
    ours, whole = [], []
    for case in replies:
        started = time.perf_counter()
        try:
            result = apply_reply(case.reply, case.originals)
        except (BlockRefused, ValueError) as error:
            result = {"error": str(error).splitlines()[0]}
        times.append(time.perf_counter() - started)
        if result == case.expected:
            reproduced += 1
        else:
            wrong = sorted(path for path in set(result) | set(case.expected) if result.get(path) != case.expected.get(path))
            failures.append(f"{case.name}: {wrong[:3]} {result.get('error', '')}")
        ours.append(estimate_tokens(case.reply))
        whole.append(estimate_tokens(case.whole_json))
    outcomes: Counter[tuple[str, str]] = Counter()
    for case in replies:
        for kind, number, verbatim, reply in damaged_replies(case.reply, case.originals):
            try:
                outcome = "recovered" if apply_reply(reply, case.originals) == case.expected else "misapplied"
            except BlockRefused as refusal:
                precise = refusal.block.number == number and "nearest lines" in str(refusal)
                outcome = "refused" if precise else "misapplied"  # a later block caught what this one did
            if outcome == "misapplied" and verbatim:
                outcome = "verbatim elsewhere"
            if outcome == "misapplied":
                failures.append(f"misapplied: {case.name} block {number} ({kind})")
            outcomes[(kind, outcome)] += 1
    figures = {
        "cases": len(replies),
        "reproduced": reproduced,
        "files_skipped_binary": sum(len(case.skipped) for case in replies),
        "tokens_ours_median": _median(ours), "tokens_ours_total": sum(ours),
        "tokens_whole_median": _median(whole), "tokens_whole_total": sum(whole),
        "apply_ms_median": _median(times) * 1000, "apply_s_total": sum(times),
        "damaged": {f"{kind}: {result}": count for (kind, result), count in sorted(outcomes.items())},
        "misapplied": sum(count for (_, result), count in outcomes.items() if result == "misapplied"),
    }
    out(f"cases: {len(replies)}; reproduced byte for byte: {reproduced} ({reproduced / max(1, len(replies)):.1%})")
    out(f"binary or non-UTF-8 files left out (no text format carries them): {figures['files_skipped_binary']}")
    out(f"output tokens (UTF-8 bytes / 3), SEARCH/REPLACE vs whole files in JSON: median {_median(ours):,.0f} vs "
        f"{_median(whole):,.0f} ({_median(ours) / max(1, _median(whole)):.1%}); total {sum(ours):,} vs {sum(whole):,} "
        f"({sum(ours) / max(1, sum(whole)):.1%})")
    over = (sum(tokens > OUTPUT_CAP for tokens in ours), sum(tokens > OUTPUT_CAP for tokens in whole))
    out(f"replies over the {OUTPUT_CAP:,}-token output cap: SEARCH/REPLACE {over[0]}, whole files {over[1]} "
        f"({over[1] / max(1, len(replies)):.0%} of cases)")
    out(f"parse + apply: median {figures['apply_ms_median']:.2f} ms a case, {figures['apply_s_total']:.2f} s in all")
    for kind in DAMAGES:
        row = {result: outcomes[(kind, result)] for result in ("recovered", "refused", "verbatim elsewhere", "misapplied")}
        total = sum(row.values())
        out(f"damaged, {kind}: {total} blocks; recovered {row['recovered']} ({row['recovered'] / max(1, total):.1%}), "
            f"refused with the block and the nearest lines {row['refused']} ({row['refused'] / max(1, total):.1%}), "
            f"misapplied {row['misapplied']}; became a verbatim copy of other lines {row['verbatim elsewhere']}")
    for line in failures[:20]:
        out(f"  {line}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    figures = run(args.cases, args.limit)
    return 0 if figures["reproduced"] == figures["cases"] and figures["misapplied"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
