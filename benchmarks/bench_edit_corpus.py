"""Real model replies in SEARCH/REPLACE blocks, read by our parser and by Aider's: identical, safer, or wrong.

Run: python benchmarks/bench_edit_corpus.py [--corpus FILE.jsonl] [--show N]
(FILE defaults to tests/data/aider_edits/replies.jsonl; see the README beside it for where the
replies come from and under which licence.)

Each line of the corpus is one reply with Aider's reading of it: ``{"source", "reply", "aider":
[[path, search, replace], ...], "aider_error": null | "why Aider refused the reply"}``. When Aider
refused the reply, ``aider`` holds the blocks it had read before the block it refused. Our side is
what the bot would do with the reply: ``search_replace.parse``, the path check of ``edits``
(``path_doubt``, ``path_refusal``) with no file known, files taken whole or not at all, and
``apply_block`` on a file that holds exactly Aider's SEARCH text between two lines of its own.

Each reply is counted once:
- identical: neither side reports a problem, and every block writes what Aider's reading writes;
- both refuse: Aider refused the reply, and so do we for the block it refused (a problem for the
  repair); every block we keep writes what Aider's reading of it writes;
- safer refusal: we report a problem (for the repair) where Aider accepted a reading, and every
  block we keep writes what Aider's reading writes;
- wrong: a block we would apply writes anything else, or a block Aider read vanished with no
  problem reported. Must be 0: exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.repo.edits import EditRules, path_doubt, path_refusal  # noqa: E402
from automation.repo.search_replace import Block, Refused, apply_block, parse  # noqa: E402

DEFAULT_CORPUS = ROOT / "tests" / "data" / "aider_edits" / "replies.jsonl"
ABOVE, BELOW = "\u27e6a line above\u27e7", "\u27e6a line below\u27e7"  # lines no reply holds
OUTCOMES = ("identical", "both refuse", "safer refusal", "wrong")


@dataclass(frozen=True)
class Verdict:
    outcome: str
    why: str  # for a reply that is not identical: what differed, first thing first


def _writes(block: Block, search: str, replace: str) -> str:
    """What our applier does with ``block`` in a file holding Aider's SEARCH text: "same", "refused" or "other"."""
    if search:
        before, after = f"{ABOVE}\n{search}", f"{ABOVE}\n{replace}"
        text, expected = before + ("" if before.endswith("\n") else "\n") + f"{BELOW}\n", after + f"{BELOW}\n"
    else:
        text, expected = None, replace
    try:
        result = apply_block(text, block)
    except Refused:
        return "refused"
    return "same" if result.rstrip("\n") == expected.rstrip("\n") else "other"


def judge(record: dict, root: Path) -> Verdict:
    """One reply's verdict (see the module docstring); ``root`` is an empty directory for the path checks.

    ``record["files"]``, when given, lists the files of the repository the reply was written for
    (Aider's test's ``valid_fnames``): they are the known paths, and a SEARCH for any other file finds
    no file. Without it, the files Aider's reading edits are taken to exist, and no other.
    """
    rules = EditRules()
    reading = [tuple(item) for item in record["aider"]]
    files = set(record.get("files") or [path for path, search, _ in reading if search])
    known: Callable[[str], bool] = files.__contains__
    parsed = parse(record["reply"], known)
    refused: dict[str, str] = {}
    for block in parsed.blocks:
        why = block.problem or path_doubt(block.path, known, rules) or path_refusal(block.path, root, rules)
        if why:
            refused.setdefault(block.path, f"block {block.number} ({block.path}): {why}")
    unread = list(range(len(reading)))  # Aider's blocks no kept block of ours matched yet
    problems = [*parsed.problems, *refused.values()]
    read_paths = {path for path, _, _ in reading}
    # our blocks refused under no path Aider read: each may stand for one of Aider's blocks
    unplaced = len(parsed.problems) + sum(block.path in refused and block.path not in read_paths for block in parsed.blocks)
    for block in parsed.blocks:
        if block.path in refused or block.delete:
            continue
        if block.search and block.path not in files:
            problems.append(f"block {block.number} ({block.path}): the file does not exist")
            unplaced += 1
            continue
        match = next((at for at in unread if reading[at][0] == block.path), None)
        if match is None:
            return Verdict("wrong", f"block {block.number} ({block.path}) is not in Aider's reading")
        found = _writes(block, reading[match][1], reading[match][2])
        if found == "other":
            return Verdict("wrong", f"block {block.number} ({block.path}) writes other text than Aider's reading")
        unread.remove(match)
        if found == "refused":
            problems.append(f"block {block.number} ({block.path}): refused by the applier")
    dropped = [at for at in unread if reading[at][0] not in refused]
    if len(dropped) > unplaced:
        return Verdict("wrong", f"Aider's block {dropped[0] + 1} ({reading[dropped[0]][0]}) vanished without a problem")
    if record.get("aider_error"):
        if not problems:
            return Verdict("wrong", f"Aider refused the reply ({record['aider_error']}); we report no problem")
        return Verdict("both refuse", problems[0].splitlines()[0])
    return Verdict("safer refusal", problems[0].splitlines()[0]) if problems else Verdict("identical", "")


def run(corpus: Path, show: int = 0, out: Callable[[str], None] = print) -> Counter[str]:
    """The verdicts over the corpus, counted (also printed, with the first ``show`` non-identical replies)."""
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    counts: Counter[str] = Counter()
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as empty:
        for record in records:
            verdict = judge(record, Path(empty))
            counts[verdict.outcome] += 1
            if verdict.outcome != "identical":
                notes.append(f"  {verdict.outcome}: {record['source']}: {verdict.why}"[:300])
    blocks = sum(record["reply"].count("\n<<<<<<< SEARCH") for record in records)
    out(f"replies: {len(records)} ({blocks} SEARCH lines); Aider refused {sum(bool(r.get('aider_error')) for r in records)}")
    out(f"parsed identically: {counts['identical']}; both refuse: {counts['both refuse']}; "
        f"safer refusal: {counts['safer refusal']}; wrong: {counts['wrong']}")
    for line in [note for note in notes if note.startswith("  wrong")] + [n for n in notes if not n.startswith("  wrong")][:show]:
        out(line)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--show", type=int, default=0, help="list this many replies that are not parsed identically")
    args = parser.parse_args()
    return 1 if run(args.corpus, args.show)["wrong"] else 0


if __name__ == "__main__":
    sys.exit(main())
