"""The tasks file: unticked Markdown checklist items are the bot's queue.

The file is parsed as GitHub renders it (CommonMark + GFM task lists, through markdown-it-py),
so a ``- [ ]`` line inside an HTML comment, an indented or fenced code block, or mid-paragraph
is never a task. The parser only says *where* the items are (its tokens carry line ranges);
ticking then changes exactly the three bytes of the ``[ ]`` on that line and leaves everything
else (line endings, spacing, other items) as the humans wrote it.

Nesting: an unticked item inside another checklist item (ticked or not) is a sub-step of that
item, never a task of its own. The task's ``steps`` carry its sub-items, and ticking a task
ticks its unticked sub-steps too, so a merged PR never leaves orphaned sub-steps behind.
Checklist items inside a plain list item (``- Backend`` with ``- [ ]`` items under it) are tasks.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..core.errors import TasksFileError, UsageError
from ..core.textfiles import decode_utf8, writable_path

SLUG_MAX = 50
# How many files the near-match search for a missing tasks file looks at, at most.
NEAR_MATCH_SCAN_LIMIT = 20_000

# GFM's task list item marker: "[ ]" or "[x]"/"[X]" opening the item's first paragraph,
# followed by whitespace (https://github.github.com/gfm/#task-list-items-extension-).
_MARKER = re.compile(r"\[(?P<mark>[ \txX])\](?=[ \t\n]|$)")
_BOX_IN_LINE = re.compile(r"\[[ \t]\]")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@dataclass(frozen=True)
class Task:
    """One unticked item. ``line`` is 1-based so it matches what editors and GitHub show.

    ``text`` is the item's first paragraph on one line (its identity: PR title, branch, task
    hash); ``steps`` are its sub-items as ``- [ ] …``/``- [x] …``/``- …`` lines, indented
    two spaces per level below the task.
    """

    text: str
    line: int
    steps: tuple[str, ...] = ()
    kind: str = field(default="", compare=False)  # what kind of work it is (``task_kind``), for the outcome figures

    @property
    def brief(self) -> str:
        """What the models are asked to do: the task, then its sub-steps."""
        if not self.steps:
            return self.text
        return self.text + "\n\nSub-steps:\n" + "\n".join(self.steps)


@dataclass
class _Item:
    """A checklist item while the token walk is inside it."""

    ticked: bool
    text: str
    line: int  # 0-based line of its "[ ]"
    boxes: list[int]  # 0-based lines of the unticked boxes of its sub-steps
    steps: list[str]
    nested: bool  # inside another checklist item: a sub-step, not a task
    heading: str = ""  # the text of the nearest heading above it


def _split_lines(markdown: str) -> list[str]:
    """Lines with their own endings kept, so joining them gives back the exact input."""
    return _LINE.findall(markdown)


def _items(markdown: str) -> list[_Item]:
    """Every checklist item (ticked or not) in file order, from markdown-it's block tokens."""
    # A BOM is not a line ending, so removing it keeps every line number.
    tokens = _PARSER.parse(markdown.removeprefix("\ufeff"))
    found: list[_Item] = []
    stack: list[_Item | None] = []  # one entry per open list item; None for a plain item
    heading = ""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and not stack and index + 1 < len(tokens):
            heading = " ".join(tokens[index + 1].content.split())
        if token.type == "list_item_open":
            stack.append(_checklist_item(tokens, index, nested=any(stack)))
            if stack[-1] is not None:
                stack[-1].heading = heading
                found.append(stack[-1])  # type: ignore[arg-type]
        elif token.type == "list_item_close":
            stack.pop()
        elif token.type == "inline" and stack and tokens[index - 1].type == "paragraph_open":
            _add_step(stack, tokens, index)
    return found


def _checklist_item(tokens: list[Token], index: int, *, nested: bool) -> _Item | None:
    """The item opening at ``tokens[index]`` if its first paragraph starts with a checkbox."""
    if index + 2 >= len(tokens) or tokens[index + 1].type != "paragraph_open":
        return None
    inline = tokens[index + 2]
    match = _MARKER.match(inline.content)
    if match is None or inline.map is None:
        return None
    text = " ".join(part.strip() for part in inline.content[match.end():].splitlines() if part.strip())
    if not text:
        return None  # "- [ ]" with nothing after it is no task (GitHub shows no checkbox either)
    return _Item(ticked=match["mark"] in "xX", text=text, line=inline.map[0], boxes=[], steps=[], nested=nested)


def _add_step(stack: list[_Item | None], tokens: list[Token], index: int) -> None:
    """Record a paragraph inside a checklist item as one of its steps (its own first one excepted)."""
    owners = [position for position, item in enumerate(stack) if item is not None]
    if not owners:
        return
    owner = stack[owners[0]]
    assert owner is not None
    depth = len(stack) - owners[0] - 1
    inline = tokens[index]
    first_of_item = tokens[index - 2].type == "list_item_open"
    if depth == 0 and first_of_item:
        return  # the owner's own text
    content = " ".join(part.strip() for part in inline.content.splitlines() if part.strip())
    item = stack[-1] if first_of_item else None
    if item is not None:
        mark = "[x]" if item.ticked else "[ ]"
        if not item.ticked:
            owner.boxes.append(item.line)
        content = f"- {mark} {item.text}"
    elif first_of_item:
        content = f"- {content}"
    owner.steps.append("  " * max(depth - 1, 0) + content)


def read_tasks(markdown: str) -> list[Task]:
    """Every unticked top-level checklist item in file order; ticked items, prose, code and
    HTML blocks are ignored, and nested unticked items become the ``steps`` of their task."""
    return [
        Task(text=item.text, line=item.line + 1, steps=tuple(item.steps), kind=task_kind(item.text, item.heading))
        for item in _items(markdown)
        if not item.ticked and not item.nested
    ]


_KIND = re.compile(r"kind:\s*([\w-]{1,40})", re.IGNORECASE)


def task_kind(text: str, heading: str = "", labels: Sequence[str] = ()) -> str:
    """What kind of work a task is, for the outcome figures, lower-cased: a ``kind:<name>`` label
    (on the issue or PR), else a ``kind:<name>`` at the start of the task's text, else the heading
    the task sits under in the tasks file; "" when there is none of them."""
    for candidate in (*labels, text):
        match = _KIND.match(candidate.strip())
        if match:
            return match.group(1).casefold()
    return " ".join(heading.split()).casefold()


def tick(markdown: str, task: Task) -> str:
    """Mark ``task`` and its unticked sub-steps done, changing only their ``[ ]``.

    The file may have moved on since it was read (someone edited it while the bot worked),
    so when the recorded line no longer holds the task, the nearest unticked item with the
    same text is ticked instead. Raises ValueError when no such item is left.
    """
    lines = _split_lines(markdown)
    candidates = [item for item in _items(markdown) if not item.ticked and not item.nested and item.text == task.text]
    if not candidates:
        raise ValueError(f"task {task.text!r} is no longer an unticked item in the tasks file")
    item = min(candidates, key=lambda found: (abs(found.line + 1 - task.line), found.line))
    for line in [item.line, *item.boxes]:
        box = _BOX_IN_LINE.search(lines[line])  # container markers ("> ", "- ", "1. ") hold no "["
        assert box is not None, "the parser placed a checkbox on this line"
        lines[line] = lines[line][: box.start()] + "[x]" + lines[line][box.end():]
    return "".join(lines)


def load(repo: Path, relative: str) -> str:
    """The tasks file ``relative`` (``tasks.file``) of the checkout ``repo``, as text.

    Raises TasksFileError (exit 2) naming the file when it is missing (with the nearest file
    of a similar name, if any), a directory, or not UTF-8 text.
    """
    path = repo / relative
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        near = near_match(repo, relative)
        hint = f"did you mean {near}? " if near else ""
        raise TasksFileError(
            f"{relative}: tasks file not found in {repo}; {hint}create it with one '- [ ] …' line per task, "
            f"or set tasks.file in .github/ai-orchestration.yml"
        ) from None
    except IsADirectoryError:
        raise TasksFileError(f"{relative}: is a directory, not a Markdown file; set tasks.file to the file that lists the tasks") from None
    except OSError as error:
        raise TasksFileError(f"{relative}: cannot read the tasks file: {error.strerror or error}") from None
    try:
        return decode_utf8(data, "tasks file")
    except ValueError as problem:
        raise TasksFileError(f"{relative}: {problem}") from None


def near_match(repo: Path, relative: str) -> str | None:
    """The repository file whose path is closest to the missing ``relative`` (case first), or None; only a name the message can print."""
    candidates: list[str] = []
    for root, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") or d == ".github")
        candidates += [path for path in (Path(root, name).relative_to(repo).as_posix() for name in files) if writable_path(path)]
        if len(candidates) >= NEAR_MATCH_SCAN_LIMIT:
            break
    same_case = [path for path in candidates if path.lower() == relative.lower()]
    if same_case:
        return same_case[0]
    close = difflib.get_close_matches(relative.lower(), [path.lower() for path in candidates], n=1, cutoff=0.8)
    return next((path for path in candidates if close and path.lower() == close[0]), None)


def task_text(text: str) -> str:
    """A task given on the command line, stripped; UsageError (exit 2) if nothing is left.

    Spaces, tabs, zero-width and other invisible characters alone are no task: they would
    pay for two model calls and then fail when GitHub refuses the empty title.
    """
    cleaned = text.strip()
    if not cleaned or all(unicodedata.category(char)[0] in "ZC" for char in cleaned):
        raise UsageError("--task is empty: give the task's text, or leave --task out to take the next task from the tasks file")
    return cleaned


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
