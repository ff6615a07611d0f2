"""The tasks file: unticked Markdown checklist items are the bot's queue.

Reading is line-based rather than a full Markdown parse so that ticking can change exactly
three bytes of one line and leave everything else (line endings, spacing, other items) as the
humans wrote it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

SLUG_MAX = 50

# A list item (bullet or numbered, any indentation) whose checkbox is empty. Group "box" is
# the "[ ]" itself so tick() can replace precisely that span.
_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?P<box>\[ \])(?:[ \t]+(?P<text>.*?))?[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Task:
    """One unticked item; ``line`` is 1-based so it matches what editors and GitHub show."""

    text: str
    line: int


def _split_lines(markdown: str) -> list[str]:
    """Lines with their own endings kept, so joining them gives back the exact input."""
    return _LINE.findall(markdown)


def _unticked(lines: list[str]) -> list[tuple[int, re.Match[str]]]:
    """(0-based index, match) of every unticked item outside fenced code blocks."""
    found: list[tuple[int, re.Match[str]]] = []
    fence: str | None = None
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        opener = _FENCE.match(line)
        if fence is not None:
            # A fence closes with the same character, at least as long, and nothing after it.
            closer = opener["fence"] if opener else ""
            if closer[:1] == fence[0] and len(closer) >= len(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if opener:
            fence = opener["fence"]
            continue
        match = _ITEM.match(line)
        if match and match["text"]:
            found.append((index, match))
    return found


def read_tasks(markdown: str) -> list[Task]:
    """Every unticked checklist item in file order; ticked items, prose and code are ignored."""
    return [Task(text=match["text"], line=index + 1) for index, match in _unticked(_split_lines(markdown))]


def tick(markdown: str, task: Task) -> str:
    """Mark ``task`` done, changing only its ``[ ]``.

    The file may have moved on since it was read (someone edited it while the bot worked),
    so when the recorded line no longer holds the task, the nearest unticked item with the
    same text is ticked instead.
    """
    lines = _split_lines(markdown)
    candidates = [(index, match) for index, match in _unticked(lines) if match["text"] == task.text]
    if not candidates:
        raise ValueError(f"task {task.text!r} is no longer an unticked item in the tasks file")
    index, match = min(candidates, key=lambda item: (abs(item[0] + 1 - task.line), item[0]))
    start, end = match.span("box")
    lines[index] = lines[index][:start] + "[x]" + lines[index][end:]
    return "".join(lines)


def slug(text: str) -> str:
    """A short, readable, git-ref-safe name for a task (lowercase ASCII words joined by '-')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    result = ""
    for word in words:
        candidate = f"{result}-{word}" if result else word
        if len(candidate) > SLUG_MAX:
            break
        result = candidate
    if not result and words:
        result = words[0][:SLUG_MAX]
    if not result:
        result = "task-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return result
