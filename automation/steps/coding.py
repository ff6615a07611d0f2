"""The code step: a bounded prompt, one reply in SEARCH/REPLACE blocks, at most one repair, an EditPlan.

The prompt never exceeds a token bound (``models.code_max_input_tokens``, and the model's
context window from the price table when it has one). A file too big to send whole is sent as
its outline plus windows of verbatim lines around the places the plan points at (the names it
mentions in backticks, the lines it cites), each window headed by its line numbers, so a SEARCH
part can still be copied exactly. ``write_edits`` takes the model call as a function, so any
step that asks for code (a first run, a follow-up on a red pull request) shares it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import untrusted
from ..repo import edits
from ..repo.context import estimate_tokens, file_block

CODE_SYSTEM = (
    "You write the code for a planned change. Start with one short paragraph saying what the change does and "
    "why (it becomes the pull request's summary). Then give every edit as a SEARCH/REPLACE block: the file's "
    "path alone on a line, then a fenced block holding a line '<<<<<<< SEARCH', the exact current lines of the "
    "file (copied character for character, with their indentation, and enough of them to match one place "
    "only), a line '=======', the new lines, and a line '>>>>>>> REPLACE' that closes the block before any "
    "other text; one '=======' line per block. Use several small blocks rather "
    "than one large one; never repeat a whole file to change a few lines. An empty SEARCH part creates a new "
    "file. To delete a file, write 'DELETE path' alone on a line. Paths are relative to the repository root, "
    "with forward slashes. Never touch .git/, .github/workflows/, the budget ledger, the bot's configuration "
    "or the tasks file. Do not answer in JSON. " + untrusted.SYSTEM_RULE
)
# Room for the reply's framing and rounding in the window: the estimate already over-counts.
WINDOW_MARGIN_TOKENS = 1_000
MAX_READ_BYTES = 5_000_000  # a named file up to this size is read, then sent whole or in part
OUTLINE_MAX_LINES = 80
WINDOW_BEFORE = 12
WINDOW_AFTER = 40
MAX_WINDOWS = 200  # candidate windows tried per file: a name used everywhere cannot make the excerpt slow
_DEFINITION = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?:async[ \t]+)?(?:def|class|function|func|fn|interface|struct|enum|impl|trait)"
    r"[ \t]+([A-Za-z_$][\w$]*)|^(#{1,6}[ \t]+\S.*)$"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_CITED_LINES = re.compile(r"\blines?[ \t]+(\d{1,6})(?:[ \t]*(?:-|–|to)[ \t]*(\d{1,6}))?", re.IGNORECASE)


def prompt_bound(configured: int, window: int | None, max_output_tokens: int) -> int:
    """Tokens the code prompt may take: the configured bound, within the window less the reply's room."""
    if window is None:
        return configured
    return max(1, min(configured, window - max_output_tokens - WINDOW_MARGIN_TOKENS))


def _anchors(analysis: str, path: str) -> tuple[set[str], list[tuple[int, int]]]:
    """The names the plan mentions in backticks (not path parts) and the line ranges it cites (1-based)."""
    path_words = set(_IDENTIFIER.findall(path))
    names = {
        word for span in _BACKTICKED.findall(analysis) for word in _IDENTIFIER.findall(span) if word not in path_words
    }
    cited = [(int(first), int(last or first)) for first, last in _CITED_LINES.findall(analysis)]
    return names, cited


def _windows(lines: list[str], analysis: str, path: str) -> list[tuple[int, int]]:
    """Line ranges [start, end) around what the plan points at, most telling first: definitions of
    names it mentions, lines it cites, then other lines using those names; the file's head when none."""
    names, cited = _anchors(analysis, path)
    definitions, uses = [], []
    for number, line in enumerate(lines):
        match = _DEFINITION.match(line)
        if match and match.group(1) in names:
            definitions.append((max(0, number - WINDOW_BEFORE), min(len(lines), number + WINDOW_AFTER)))
        elif names and any(name in line for name in names) and names & set(_IDENTIFIER.findall(line)):
            uses.append((max(0, number - WINDOW_BEFORE), min(len(lines), number + WINDOW_BEFORE + 1)))
    cited_windows = [
        (max(0, first - 1 - WINDOW_BEFORE), min(len(lines), last + WINDOW_BEFORE))
        for first, last in cited
        if 0 < first <= len(lines)
    ]
    return definitions + cited_windows + uses or [(0, min(len(lines), WINDOW_BEFORE + WINDOW_AFTER))]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def excerpt(path: str, text: str, analysis: str, room_tokens: int) -> str | None:
    """A file too big to send whole: its outline and the windows the plan points at, within
    ``room_tokens``; None when not even the outline fits."""
    lines = text.split("\n")
    outline = [f"{number + 1}: {line.strip()[:120]}" for number, line in enumerate(lines) if _DEFINITION.match(line)]
    outline = outline[:OUTLINE_MAX_LINES] + ([f"... {len(outline) - OUTLINE_MAX_LINES} more"] if len(outline) > OUTLINE_MAX_LINES else [])
    head = (
        f"\n### {path} ({len(lines):,} lines: too big to send whole. Its outline, then the parts the plan points at, "
        "each headed by its line numbers, which are not part of the file. Copy SEARCH lines from these parts.)\n"
        "Outline (line: definition):\n" + "\n".join(outline) + "\n"
    )
    if estimate_tokens(head) > room_tokens:
        return None
    parts = [head]
    chosen: list[tuple[int, int]] = []
    for window in _windows(lines, analysis, path)[:MAX_WINDOWS]:
        trial = _merge([*chosen, window])
        rendered = "".join(
            file_block(path, "\n".join(lines[start:end]), f" lines {start + 1}-{end}") for start, end in trial
        )
        if estimate_tokens(head + rendered) > room_tokens:
            continue
        chosen = trial
        parts = [head, rendered]
    return "".join(parts)


@dataclass(frozen=True)
class CodePrompt:
    """The messages of the code call, and which named files went in part or not at all."""

    messages: list[dict[str, Any]]
    tokens: int  # estimated (``context.estimate_tokens``), never above the bound asked for
    excerpted: tuple[str, ...]
    left_out: tuple[str, ...]


def code_prompt(task: str, analysis: str, files: Mapping[str, str], max_tokens: int) -> CodePrompt:
    """The code call's messages within ``max_tokens`` (estimated): smaller files whole, bigger ones in part.

    Room is shared out from the smallest file up, so one huge file cannot crowd out the others.
    """
    frame = f"# Task\n{task}\n\n# Plan\n{analysis}\n\n# Current files\n"
    room = max_tokens - estimate_tokens(CODE_SYSTEM) - estimate_tokens(frame)
    rendered: dict[str, str] = {}
    excerpted: list[str] = []
    left_out: list[str] = []
    by_size = sorted(files, key=lambda path: len(files[path]))
    for index, path in enumerate(by_size):
        share = max(0, room) // (len(by_size) - index)
        whole = file_block(path, files[path])
        part = whole if estimate_tokens(whole) <= share else excerpt(path, files[path], analysis, share)
        if part is None:
            note = f"\n### {path} (not sent: no room left within the prompt bound)\n"
            part = note if estimate_tokens(note) <= share else ""
            left_out.append(path)
        elif part is not whole:
            excerpted.append(path)
        rendered[path] = part
        room -= estimate_tokens(part)
    body = "".join(rendered[path] for path in files) or "(none)\n"
    messages = [{"role": "system", "content": CODE_SYSTEM}, {"role": "user", "content": frame + body}]
    tokens = estimate_tokens(CODE_SYSTEM) + estimate_tokens(frame + body)
    return CodePrompt(messages=messages, tokens=tokens, excerpted=tuple(excerpted), left_out=tuple(left_out))


def write_edits(
    ask: Callable[[list[dict[str, Any]]], str],
    messages: list[dict[str, Any]],
    root: Path,
    rules: edits.EditRules,
    say: Callable[[str], None],
    analysis: str = "",
) -> edits.EditPlan:
    """Ask once; when part of the reply cannot be used, ask once more for that part only.

    ``ask(messages) -> reply text`` makes the paid call (with fallbacks). The repair message
    lists each refused block with the nearest existing lines, not the whole first reply; files
    that applied are kept. ``analysis`` is the plan: a new file it names is a path the model may
    write even without an extension or with spaces. Raises UnusableReplyError when problems
    remain, or nothing changes.
    """
    draft = edits.Draft(root=Path(root), rules=rules, analysis=analysis)
    problems = draft.take(ask(messages))
    if problems:
        say(f"code: {len(problems)} problem(s) in the reply, asking once for a repair: {problems[0].splitlines()[0]}")
        repair = edits.repair_prompt(problems, kept=sorted(draft.accepted))
        problems = draft.take(ask([*messages, {"role": "user", "content": repair}]))
        if problems:
            raise edits.unusable(problems)
    return draft.plan()
