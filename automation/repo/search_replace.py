"""The code model's edit format: SEARCH/REPLACE blocks in plain text, and where each one applies.

The format is Aider's (https://aider.chat/docs/more/edit-formats.html), which models know best;
Aider measured that code returned inside JSON scores lower for every model it tried
(https://aider.chat/2024/08/14/code-in-json.html)::

    A one-paragraph summary of the change (becomes the pull request's summary).

    path/to/file.py
    ```python
    <<<<<<< SEARCH
    the exact current lines
    =======
    the new lines
    >>>>>>> REPLACE
    ```

    DELETE path/to/obsolete.py

An empty SEARCH part creates a file (or fills an empty one). ``DELETE path`` alone on a line
deletes a file. One fence may hold several blocks for the same file. The path line may be
decorated as models write it (see ``clean_path``), sit inside the fence or in a fence of its own;
the fence may be ``` or longer, ~~~ or Aider's <source>, and the file's own lines may hold fences:
inside a block only the markers count. A block ends at its own REPLACE line or it is malformed
(kept with its ``problem``, never applied); whether a path line names a file is
``looks_like_path``'s question, answered by the caller who knows the tree and the plan.

Placing a block never guesses. Exact lines first; then, only when the place is unique, the ways
models slip: trailing whitespace, a missing or extra blank line, the whole block indented by a
uniform amount more or less than the file. An ambiguous or missing SEARCH is refused with the
nearest lines that do exist. Line endings follow the file (a CRLF file stays CRLF).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import replace as replace_field
from pathlib import PurePosixPath

MARKER_SEARCH = "<<<<<<< SEARCH"
MARKER_DIVIDER = "======="
MARKER_REPLACE = ">>>>>>> REPLACE"
DELETE_PREFIX = "DELETE "
NEAREST_MAX_LINES = 40
SHOWN_LINE_MAX_CHARS = 200
# New files that carry no extension by convention; any other new path must have one, exist, or be named in the plan.
CONVENTIONAL_NAMES = frozenset({
    "Makefile", "GNUmakefile", "Dockerfile", "Containerfile", "Jenkinsfile", "Procfile", "Gemfile", "Rakefile",
    "Vagrantfile", "Brewfile", "Justfile", "justfile", "LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS",
    "CODEOWNERS", "README",
})

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
# Aider's fences for files that hold ``` themselves (https://aider.chat/docs/more/edit-formats.html): <source>python
_TAG_FENCE = re.compile(r"^ {0,3}<(?P<tag>source|code|pre|codeblock|sourcecode)>(?P<info>[\w+-]*)\s*$")
_SEARCH = re.compile(r"^ {0,3}<{5,9} ?SEARCH>?\s*$")
_DIVIDER = re.compile(r"^ {0,3}={5,9}\s*$")
_REPLACE = re.compile(r"^ {0,3}>{5,9} ?REPLACE\s*$")
_DELETE = re.compile(r"^ {0,3}DELETE[ \t]+(?P<path>\S.*)$")
_NEWLINE = re.compile(r"(\r\n|\n)")
_PATH_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+|(?:file ?name|file|path)\s*:\s*)", re.IGNORECASE)
_NOTE = re.compile(r"\s*\([^()]*\)$")  # "`src/new.py` (new file)"
_FILE_NAME = re.compile(r"[^/]*[^/.]\.[A-Za-z][A-Za-z0-9_+-]*|\.[A-Za-z0-9_][^/]*")  # name.ext, or a dotfile
_NOT_IN_PATHS = re.compile(r"[<>|*?\"`]")
_DOCUMENT_SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".rst", ".rest", ".txt", ".adoc", ".asciidoc"})


@dataclass(frozen=True)
class Block:
    """One edit: ``number`` counts from 1 in the reply; ``delete`` blocks have no lines.

    ``body`` holds the lines between the SEARCH and REPLACE markers; ``dividers`` the index in
    ``body`` of every ``=======`` line, since a file's own lines may hold one (a reStructuredText
    underline): the applier tries each split (see ``apply_block``).
    """

    number: int
    path: str
    body: tuple[str, ...] = ()
    dividers: tuple[int, ...] = ()
    delete: bool = False
    problem: str = ""  # why a malformed block cannot be applied (cut off, no divider, a marker out of place)

    def splits(self) -> list[tuple[list[str], list[str]]]:
        """(SEARCH lines, REPLACE lines) for every possible divider, first divider first."""
        return [(list(self.body[:at]), list(self.body[at + 1 :])) for at in self.dividers]

    @property
    def search(self) -> list[str]:
        return self.splits()[0][0] if self.dividers else []


@dataclass(frozen=True)
class ParsedReply:
    """The reply's summary (the prose before the first block, else after the last), its blocks in order,
    and format problems."""

    summary: str
    blocks: tuple[Block, ...]
    problems: tuple[str, ...]


def clean_path(line: str) -> str:
    """The path a line names, without the decoration models put around it ("" when nothing is left).

    Taken off: ``### ``, a list bullet or number, ``File:``, backticks, quotes, ``**``, a trailing
    colon and a trailing note in parentheses after a quoted path (`` `a.py` (new file) ``). Whether
    what is left is a path is ``looks_like_path``'s question.
    """
    text = _PATH_PREFIX.sub("", line.strip(), count=1)
    for _ in range(3):
        text = text.rstrip(":").strip()
        for left, right in (("**", "**"), ("__", "__"), ("`", "`"), ('"', '"'), ("'", "'"), ("*", "*")):
            if text.startswith(left) and (noted := _NOTE.sub("", text)) != text and noted.endswith(right):
                text = noted  # a note after a quoted path
            if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left) : len(text) - len(right)].strip()
    return text


def looks_like_path(path: str, known: Callable[[str], bool]) -> bool:
    """Whether a block's path line names a file: one ``known`` (it exists, or the plan names it), or a new
    file whose name has an extension, is a dotfile or is conventional (``Makefile``); never prose, a fence
    or a word such as ``Changes``. A path with spaces must be known."""
    if not path or known(path):
        return True
    name = path.rsplit("/", 1)[-1]
    if any(char.isspace() for char in path) or _NOT_IN_PATHS.search(path):
        return False
    return name in CONVENTIONAL_NAMES or _FILE_NAME.fullmatch(name) is not None


def _nothing_known(_path: str) -> bool:
    return False


def _fence_key(line: str) -> str | None:
    """The fence a line opens (``` or longer, ~~~, or Aider's <source>), None when it is not a fence line."""
    fence = _FENCE.match(line)
    if fence:
        return fence["fence"]
    tag = _TAG_FENCE.match(line)
    return f"<{tag['tag']}>" if tag else None


def _closes(line: str, key: str) -> bool:
    """Whether ``line`` closes a fence opened with ``key``."""
    stripped = line.strip()
    if key.startswith("<"):
        return stripped == f"</{key[1:]}"
    return bool(stripped) and set(stripped) == {key[0]} and len(stripped) >= len(key)


def _is_marker(line: str) -> bool:
    return bool(_SEARCH.match(line) or _DIVIDER.match(line) or _REPLACE.match(line))


def parse(reply_text: str, known: Callable[[str], bool] = _nothing_known) -> ParsedReply:
    """Every SEARCH/REPLACE and DELETE block in the reply, in order; never raises.

    Every ``<<<<<<< SEARCH`` line starts a block (even inside a code fence: a block is never dropped
    unseen), and a block ends at its own ``>>>>>>> REPLACE`` line or is malformed: a new SEARCH line
    before it, a stray REPLACE line after it, no divider or the reply's end. A malformed block of a
    named file is kept with its ``problem`` (refused when applied, so the file is taken whole or not at
    all); a block with no path line is a problem line naming the block. ``known(path)`` says whether a
    path exists or the plan names it: such a path may hold spaces.
    """
    lines = reply_text.replace("\r\n", "\n").split("\n")
    blocks: list[Block] = []
    problems: list[str] = []
    prose: list[int] = []  # indexes of prose lines since the last block
    summary_lines: list[str] | None = None
    fence: str | None = None  # the open fence that holds blocks
    group: str | None = None  # the path later blocks in the same fence (or right after, unfenced) share
    floor = 0  # a path line is looked for from here on: never inside an earlier block
    index = 0
    while index < len(lines):
        line = lines[index]
        key = _fence_key(line)
        if _SEARCH.match(line):
            number = len(blocks) + len(problems) + 1
            same_file = group if fence is not None or not any(text.strip() for text in lines[floor:index]) else None
            path, why, start = _path_before(lines, index, floor, same_file, known)
            if summary_lines is None:  # the prose before the first block (and its path line) is the summary
                summary_lines = [lines[at] for at in prose if at < start]
            end, body, dividers, problem = _read_block(lines, index, fence)
            if path is None:
                problems.append(f"block {number}: {problem or why}; put the file's path alone on the line before the block")
            else:
                blocks.append(Block(number=number, path=path, body=tuple(body), dividers=tuple(dividers), problem=problem))
            prose.clear()
            broken = end < len(lines) and _SEARCH.match(lines[end])
            group = path if not problem else None
            floor = (index + 1 + dividers[-1] + 1 if dividers else index + 1) if broken else end + 1
            if broken:  # the next block's fence is among the lines the broken one took
                fence = _fence_before(lines, end, floor)
            index = end if broken else end + 1
        elif key and fence and _closes(line, fence) and not _opens_block(lines, index):
            fence, group, floor = None, None, index + 1
            index += 1
        elif key and (_opens_block(lines, index) or (key[0] != "<" and _search_before_close(lines, index, key))):
            fence, group = key, None
            index += 1
        elif key and key[0] != "<":  # an ordinary code fence in the prose: markers cannot hide in it
            close = next((at for at in range(index + 1, len(lines)) if _closes(lines[at], key)), len(lines))
            prose.extend(range(index, min(close + 1, len(lines))))
            index = close + 1
        elif _REPLACE.match(line):
            _stray_replace(blocks, problems, index)
            index += 1
        elif (deleted := _DELETE.match(line)) and (path := _delete_path(deleted["path"], known)):
            if summary_lines is None:
                summary_lines = [lines[at] for at in prose]
            prose.clear()
            blocks.append(Block(number=len(blocks) + len(problems) + 1, path=path, delete=True))
            group, floor = None, index + 1
            index += 1
        else:
            prose.append(index)
            index += 1
    if not blocks and not problems:
        problems.append(
            "the reply holds no SEARCH/REPLACE block: each edit is the file's path alone on a line, then a fence "
            f"holding {MARKER_SEARCH}, the exact current lines, {MARKER_DIVIDER}, the new lines, {MARKER_REPLACE}"
        )
    summary = "\n".join(summary_lines or []).strip() or "\n".join(lines[at] for at in prose).strip()  # else the closing prose
    return ParsedReply(summary=summary, blocks=tuple(blocks), problems=tuple(problems))


def _opens_block(lines: list[str], index: int) -> bool:
    """Whether the fence line at ``index`` opens blocks: a SEARCH line next, or a path line and then one."""
    following = lines[index + 1 : index + 3]
    return bool(following) and (
        bool(_SEARCH.match(following[0]))
        or (len(following) == 2 and bool(following[0].strip()) and not _is_marker(following[0]) and bool(_SEARCH.match(following[1])))
    )


def _search_before_close(lines: list[str], index: int, key: str) -> bool:
    """Whether a SEARCH line comes inside the fence opened at ``index``, before the fence closes."""
    for line in lines[index + 1 :]:
        if _SEARCH.match(line):
            return True
        if _closes(line, key):
            return False
    return False


def _delete_path(text: str, known: Callable[[str], bool]) -> str | None:
    """The path of a ``DELETE path`` line; None when it reads as prose (``DELETE FROM users``)."""
    path = clean_path(text)
    quoted = text.strip()[:1] in ("`", '"', "'", "*")
    return path if path and (quoted or known(path) or not any(char.isspace() for char in path)) else None


def _fence_before(lines: list[str], index: int, floor: int) -> str | None:
    """The fence a block at ``index`` is in, read from the line before it or before its path line."""
    line = _previous(lines, index, floor)
    if line is not None and not _fence_key(lines[line]):
        line = _previous(lines, line, floor)
    return _fence_key(lines[line]) if line is not None else None


def _previous(lines: list[str], index: int, floor: int) -> int | None:
    """The last non-blank line before ``index``, not before ``floor``."""
    return next((at for at in range(index - 1, floor - 1, -1) if lines[at].strip()), None)


def _path_before(
    lines: list[str], index: int, floor: int, group: str | None, known: Callable[[str], bool]
) -> tuple[str | None, str, int]:
    """(the path of the block starting at ``index`` or None, why not, the index of its path line).

    The line before the block (before its opening fence) is its path; a fenced code block there is
    one only when it holds a single line that names a file (a path in its own fence). Inside the
    fence of an earlier block, or right after one with only blank lines between, a block with no
    path line of its own (or only prose such as ``...``) is for the same file.
    """
    line = _previous(lines, index, floor)
    if group is not None:
        if line is None:
            return group, "", index
        candidate = clean_path(lines[line])
        named = candidate and not _fence_key(lines[line]) and not _is_marker(lines[line])
        if named and (known(candidate) or not any(char.isspace() for char in candidate)) and any(c.isalnum() for c in candidate):
            return candidate, "", line
        return group, "", index
    if line is not None and _fence_key(lines[line]):  # the block's own opening fence
        start, line = line, _previous(lines, line, floor)
    else:
        start = index
    if line is None:
        return None, "no file path on the line before the block", start
    if _fence_key(lines[line]):  # a code block closes there: a path in its own fence, or no path
        opener = next((at for at in range(line - 1, floor - 1, -1) if _fence_key(lines[at])), line)
        inside = [text for text in lines[opener + 1 : line] if text.strip()]
        candidate = clean_path(inside[0]) if len(inside) == 1 else ""
        if candidate and looks_like_path(candidate, known):
            return candidate, "", opener
        return None, "the line before it closes a code block, which is not a file path", start
    return clean_path(lines[line]) or lines[line].strip(), "", line


def _read_block(lines: list[str], index: int, fence: str | None) -> tuple[int, list[str], list[int], str]:
    """(index of the line that ends the block, body lines, divider indexes in the body, problem) for the
    block whose SEARCH line is at ``index``, inside ``fence`` if any. The end is its REPLACE line, a new
    SEARCH line (malformed: the next block starts there) or len(lines) (cut off)."""
    body: list[str] = []
    dividers: list[int] = []
    at = index + 1
    while at < len(lines) and not _REPLACE.match(lines[at]):
        if _SEARCH.match(lines[at]):
            return at, body, dividers, (
                f"a new {MARKER_SEARCH} line (line {at + 1} of the reply) comes before its {MARKER_REPLACE} line; "
                f"end every block with {MARKER_REPLACE} before the next one starts"
            )
        if _DIVIDER.match(lines[at]):
            dividers.append(len(body))
        body.append(lines[at])
        at += 1
    if at >= len(lines):
        return at, body, dividers, f"cut off before its {MARKER_REPLACE} line"
    if not dividers:
        return at, body, dividers, f"no {MARKER_DIVIDER} line between the SEARCH and REPLACE parts"
    search, replace = body[: dividers[0]], body[dividers[0] + 1 :]
    dangling = _dangling_fence(replace, fence)
    if dangling is not None and _dangling_fence(search, fence) is None:
        return at, body, dividers, (
            f"its {MARKER_REPLACE} line comes after the fence that closes the block (line "
            f"{index + dividers[0] + 3 + dangling} of the reply); put {MARKER_REPLACE} right after the new lines, "
            "inside the fence"
        )
    return at, body, dividers, ""


def _dangling_fence(part: list[str], fence: str | None) -> int | None:
    """The index in ``part`` of a bare line that would close ``fence`` (the block's own) and that no later
    line closes in turn: the fence the block ends with, not a code sample of the file's own."""
    if fence is None or fence[0] == "<":
        return None
    opened: int | None = None  # a bare line that may open a sample, or be the block's closing fence
    inner: str | None = None  # a sample opened with an info string (```bash)
    for at, line in enumerate(part):
        key = _fence_key(line)
        if key is None:
            continue
        if inner is not None:
            inner = None if _closes(line, inner) else inner
        elif opened is not None:
            opened = None if _closes(line, part[opened].strip()) else opened
        elif _closes(line, fence):
            opened = at
        else:
            inner = key
    return opened


def _stray_replace(blocks: list[Block], problems: list[str], index: int) -> None:
    """A REPLACE line outside any block: the block before it may have ended early, so it is refused."""
    stray = f"a stray {MARKER_REPLACE} line (line {index + 1} of the reply)"
    if blocks and not blocks[-1].delete:
        blocks[-1] = replace_field(blocks[-1], problem=blocks[-1].problem or f"{stray} follows it; did its REPLACE part end early?")
    else:
        problems.append(f"{stray} belongs to no block")


# --- placing a block -------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A file as line bodies plus the ending of each line, so it can be rebuilt byte for byte."""

    bodies: list[str]
    endings: list[str]

    @classmethod
    def of(cls, text: str) -> Text:
        parts = _NEWLINE.split(text)
        bodies, endings = parts[0::2], parts[1::2] + [""]
        if bodies[-1] == "":
            bodies.pop()
            endings.pop()
        return cls(bodies, endings)

    def render(self) -> str:
        return "".join(body + ending for body, ending in zip(self.bodies, self.endings))

    @property
    def newline(self) -> str:
        """The file's usual line ending (LF for a new or one-line file)."""
        counts = Counter(ending for ending in self.endings if ending)
        return counts.most_common(1)[0][0] if counts else "\n"


@dataclass(frozen=True)
class Placed:
    """Where a block applies (line span [start, end), 0-based) and the lines that replace it."""

    start: int
    end: int
    lines: list[str]
    how: str  # "exact" or the slip that was forgiven


class Refused(Exception):
    """A block that cannot be placed safely; the message says why, for the repair request."""


class BlockRefused(Refused):
    """A refused block of a file: ``str()`` is "block N: why", then the nearest lines the file does hold."""

    def __init__(self, block: Block, reason: str, nearest: str) -> None:
        shown = f"\nThe nearest lines in the file:\n{nearest}" if nearest else ""
        super().__init__(f"block {block.number}: {reason}{shown}")
        self.block = block
        self.reason = reason


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _is_blank(line: str) -> bool:
    return not line.strip()


def _positions(haystack: list[str], needle: list[str]) -> list[int]:
    """Every index where ``needle`` occurs in ``haystack`` as consecutive items."""
    if not needle or len(needle) > len(haystack):
        return []
    first, size = needle[0], len(needle)
    return [at for at in range(len(haystack) - size + 1) if haystack[at] == first and haystack[at : at + size] == needle]


@dataclass(frozen=True)
class _Level:
    how: str
    key: Callable[[str], str]
    skip_blank: bool
    shift_indent: bool


_LEVELS = (
    _Level("exact", lambda line: line, False, False),
    _Level("trailing whitespace", str.rstrip, False, False),
    _Level("blank lines", str.rstrip, True, False),
    _Level("indentation", str.strip, False, True),
    _Level("indentation and blank lines", str.strip, True, True),
)

_HOW = [level.how for level in _LEVELS]


def _candidates(bodies: list[str], search: list[str], level: _Level) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    """(start, end, [(file line, search line) for aligned non-blank lines]) for each match at ``level``."""
    if level.skip_blank:
        kept = [at for at, body in enumerate(bodies) if not _is_blank(body)]
        wanted = [line for line in search if not _is_blank(line)]
        keys = [level.key(bodies[at]) for at in kept]
        for hit in _positions(keys, [level.key(line) for line in wanted]):
            span = kept[hit : hit + len(wanted)]
            yield span[0], span[-1] + 1, [(bodies[at], line) for at, line in zip(span, wanted)]
    else:
        for hit in _positions([level.key(body) for body in bodies], [level.key(line) for line in search]):
            pairs = [(bodies[hit + i], line) for i, line in enumerate(search) if not _is_blank(line)]
            yield hit, hit + len(search), pairs


def _shift(pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The uniform indentation change from SEARCH to file: ("add"|"remove", prefix), or None when not uniform."""
    if not pairs:
        return None
    file_indent, search_indent = _indent(pairs[0][0]), _indent(pairs[0][1])
    if file_indent.endswith(search_indent):
        shift = ("add", file_indent[: len(file_indent) - len(search_indent)])
    elif search_indent.endswith(file_indent):
        shift = ("remove", search_indent[: len(search_indent) - len(file_indent)])
    else:
        return None
    for file_line, search_line in pairs:
        if _to_file(_indent(search_line), shift) != _indent(file_line):
            return None
    return shift


def _to_file(indent: str, shift: tuple[str, str]) -> str | None:
    kind, prefix = shift
    if kind == "add":
        return prefix + indent
    return indent[len(prefix) :] if indent.startswith(prefix) else None


def _reindent(search: list[str], replace: list[str], shift: tuple[str, str], span: list[str]) -> list[str]:
    """REPLACE in the file's indentation: moved with SEARCH when written like SEARCH, kept when already like
    the file (``span``). Two signs must agree: the indentation of lines REPLACE shares with SEARCH, and
    REPLACE's least indentation (SEARCH's or the file's); otherwise the block is refused."""
    search_indents: dict[str, set[str]] = {}
    for line in search:
        if not _is_blank(line):
            search_indents.setdefault(line.strip(), set()).add(_indent(line))
    like_search = like_file = False
    for line in replace:
        for indent in search_indents.get(line.strip(), ()):
            if _indent(line) == indent:
                like_search = True
            elif _indent(line) == _to_file(indent, shift):
                like_file = True
    least = _least_indent(replace)
    if like_search and not like_file and least == _least_indent(search) != _least_indent(span):
        moved = [line if _is_blank(line) else _to_file(_indent(line), shift) for line in replace]
        if all(indent is not None for indent in moved):
            return [line if _is_blank(line) else f"{indent}{line.lstrip()}" for line, indent in zip(replace, moved)]
    if like_file and not like_search and least == _least_indent(span) != _least_indent(search):
        return list(replace)
    raise Refused(
        "its SEARCH lines are indented differently from the file, and its REPLACE lines do not show clearly which "
        "indentation they follow; copy the SEARCH lines with their exact indentation"
    )


def _least_indent(lines: list[str]) -> int:
    return min((len(_indent(line)) for line in lines if not _is_blank(line)), default=0)


def _trim_shared_edge_blanks(search: list[str], replace: list[str]) -> tuple[list[str], list[str], bool, bool]:
    """Blank lines both parts start or end with are context, not content: dropped for blank-tolerant matching.

    Returns the trimmed parts and whether a blank line was dropped at the start and at the end: the
    file must then hold a blank line there too, or the SEARCH would lose its anchor at that edge."""
    search, replace = list(search), list(replace)
    lead = trail = False
    while search and replace and _is_blank(search[0]) and _is_blank(replace[0]):
        search.pop(0)
        replace.pop(0)
        lead = True
    while search and replace and _is_blank(search[-1]) and _is_blank(replace[-1]):
        search.pop()
        replace.pop()
        trail = True
    return search, replace, lead, trail


def place(bodies: list[str], search: list[str], replace: list[str]) -> Placed:
    """Where SEARCH applies in the file's line bodies; raises Refused (with the reason) when nowhere or ambiguous.

    Every reading the applier accepts counts: a SEARCH that copies one place exactly but another
    place with its indentation off (or trailing spaces, or blank lines) fits two places, and is
    refused rather than guessed. A place found by a stricter reading is not counted again.
    """
    if all(_is_blank(line) for line in search):
        raise Refused("its SEARCH part holds only blank lines, which cannot say where the change goes")
    if search == replace:
        raise Refused("its SEARCH and REPLACE parts are the same, so it changes nothing; was a line left out?")
    readings: list[tuple[int, int, int, list[str] | Refused]] = []
    for index, level in enumerate(_LEVELS):
        wanted, new, lead, trail = search, replace, False, False
        if level.skip_blank:  # about blank lines *between* lines: needs two, or a short SEARCH loses its anchor
            wanted, new, lead, trail = _trim_shared_edge_blanks(search, replace)
            if sum(not _is_blank(line) for line in wanted) < 2 or _is_blank(wanted[0]) or _is_blank(wanted[-1]):
                continue
        for start, end, pairs in _candidates(bodies, wanted, level):
            if any(earlier < index and start < stop and begin < end for earlier, begin, stop, _ in readings):
                continue  # the same place, already read more strictly
            if (lead and start > 0 and not _is_blank(bodies[start - 1])) or (
                trail and end < len(bodies) and not _is_blank(bodies[end])
            ):
                continue  # the blank line SEARCH holds at its edge is not there
            if not level.shift_indent:
                readings.append((index, start, end, new))
                continue
            shift = _shift(pairs)
            if shift is None or not shift[1]:
                continue
            try:
                readings.append((index, start, end, _reindent(wanted, new, shift, bodies[start:end])))
            except Refused as refusal:
                readings.append((index, start, end, refusal))
    if not readings:
        raise Refused("its SEARCH lines are not in the file")
    if len(readings) > 1:
        where = ", ".join(str(start + 1) for _, start, _, _ in sorted(readings, key=lambda r: r[1])[:10])
        raise Refused(
            f"its SEARCH lines fit {len(readings)} places (starting at lines {where}), counting lines that differ "
            "only in indentation, trailing spaces or blank lines; include more lines so they fit one place only"
        )
    index, start, end, lines = readings[0]
    if isinstance(lines, Refused):
        raise lines
    if _LEVELS[index].shift_indent or _LEVELS[index].skip_blank:  # a weaker reading: no other slip may fit elsewhere
        near = next((at for at in _near_misses(bodies, search) if not start <= at < end), None)
        if near is not None:
            raise Refused(
                f"its SEARCH lines fit line {start + 1} only with a slip forgiven, and fit line {near + 1} but for one "
                "line left out or added; copy the lines exactly"
            )
    return Placed(start, end, lines, _LEVELS[index].how)


def _near_misses(bodies: list[str], search: list[str]) -> list[int]:
    """Where SEARCH fits but for one interior line the file has and SEARCH lacks, or the other way round."""
    keys = [line.rstrip() for line in bodies]
    wanted = [line.rstrip() for line in search]
    size = len(wanted)
    return [
        at
        for at in range(len(keys))
        if keys[at] == wanted[0]
        and (_one_line_apart(keys[at : at + size + 1], wanted) or _one_line_apart(wanted, keys[at : at + size - 1]))
    ]


def _one_line_apart(longer: list[str], shorter: list[str]) -> bool:
    """Whether ``shorter`` is ``longer`` with one interior line taken out."""
    if len(longer) != len(shorter) + 1 or len(shorter) < 2:
        return False
    differs = next((i for i, (a, b) in enumerate(zip(longer, shorter)) if a != b), len(shorter))
    return 1 <= differs <= len(shorter) - 1 and longer[differs + 1 :] == shorter[differs:]


def apply_block(text: str | None, block: Block) -> str:
    """The file's new text after one block (``text`` None: the file does not exist); raises Refused.

    Every divider split is tried; the one placed most exactly, then with the longest SEARCH, wins,
    so a file's own ``=======`` line cannot cut a SEARCH short. A ``=======`` line left in the
    winning REPLACE part must read as the file's own (see ``_extra_divider``), or the block is refused.
    """
    if block.delete:
        raise ValueError("a delete block has no text to apply")
    splits = block.splits()
    if not splits[0][0]:
        replace = splits[0][1]
        if text:
            raise Refused(
                "its SEARCH part is empty, which creates a file, but the file exists and is not empty; "
                "copy the lines to change into SEARCH"
            )
        _refuse_extra_divider(block.path, None, [], replace)
        return "".join(line + "\n" for line in replace)
    if text is None:
        raise Refused("the file does not exist; an empty SEARCH part creates it")
    current = Text.of(text)
    placed: list[tuple[int, int, Placed, int]] = []
    refusals: list[Refused] = []
    for number, (search, replace) in enumerate(splits):
        try:
            found = place(current.bodies, search, replace)
        except Refused as refusal:
            refusals.append(refusal)
            continue
        placed.append((_HOW.index(found.how), -len(search), found, number))
    if not placed:
        raise refusals[0]
    _, _, found, number = min(placed, key=lambda item: item[:2])
    _refuse_extra_divider(block.path, current.bodies, *splits[number])
    return _splice(current, found).render()


def _refuse_extra_divider(path: str, bodies: list[str] | None, search: list[str], replace: list[str]) -> None:
    """Raise Refused when a ``=======`` line in REPLACE reads as a second divider, not a line of the file.

    Such a line is the file's own only as a heading's underline or overline (reStructuredText, setext
    Markdown): at REPLACE's end when SEARCH ends on one too, at its start when SEARCH starts on one or
    it is an overline, and inside when it underlines or overlines a line of a document that already
    uses such lines (SEARCH holds the same line, the file holds one, or a new documentation file).
    An extra divider the model typed ends up nowhere else: it is refused for the repair, never written.
    """
    uses_them = (
        any(_DIVIDER.match(line) for line in bodies)
        if bodies is not None
        else PurePosixPath(path).suffix.lower() in _DOCUMENT_SUFFIXES
    )
    for at, line in enumerate(replace):
        if not _DIVIDER.match(line):
            continue
        before, after = replace[at - 1] if at else "", replace[at + 1 : at + 3]
        underline = bool(before.strip()) and not _DIVIDER.match(before)
        overline = len(after) == 2 and bool(after[0].strip()) and not _DIVIDER.match(after[0]) and after[1] == line
        if at == len(replace) - 1:
            own = underline and bool(search) and bool(_DIVIDER.match(search[-1]))
        elif at == 0:
            own = overline or (bool(search) and bool(_DIVIDER.match(search[0])))
        else:
            own = (underline or overline) and (line in search or uses_them)
        if not own:
            raise Refused(
                f"a {MARKER_DIVIDER} line (line {at + 1} of its REPLACE part) reads as an extra divider, not a line "
                f"of the file; give each block exactly one {MARKER_DIVIDER} line, between its SEARCH and REPLACE parts"
            )


def apply_blocks(text: str | None, blocks: Sequence[Block]) -> str | None:
    """A file's text after its blocks, in order (None: it does not exist, or is deleted); raises BlockRefused."""
    for block in blocks:
        try:
            if block.problem:
                raise Refused(block.problem)
            if block.delete:
                if text is None:
                    raise Refused("DELETE of a file that does not exist")
                text = None
            else:
                text = apply_block(text, block)
        except BlockRefused:
            raise
        except Refused as refusal:
            nearest = "" if text is None or block.problem or not block.search else nearest_lines(text, block.search)
            raise BlockRefused(block, str(refusal), nearest) from None
    return text


def _splice(current: Text, placed: Placed) -> Text:
    """The file with the span replaced; new lines take the file's line ending, and the last one
    keeps the ending the replaced span had (none at the end of a file without a final newline)."""
    newline = current.newline
    endings = [newline] * len(placed.lines)
    if endings:
        endings[-1] = current.endings[placed.end - 1] if placed.end > placed.start else newline
    return Text(
        current.bodies[: placed.start] + placed.lines + current.bodies[placed.end :],
        current.endings[: placed.start] + endings + current.endings[placed.end :],
    )


def nearest_lines(text: str, search: list[str]) -> str:
    """The lines of the file most like SEARCH, numbered, for a refusal (difflib ratio over windows)."""
    bodies = Text.of(text).bodies
    if not bodies:
        return "(the file is empty)"
    search = [line[:SHOWN_LINE_MAX_CHARS] for line in search[:NEAREST_MAX_LINES]]  # a huge SEARCH stays cheap
    wanted = {line.strip() for line in search if line.strip()}
    size = max(1, min(len(search), NEAREST_MAX_LINES))
    starts = range(max(1, len(bodies) - size + 1))
    scores = [sum(1 for line in bodies[at : at + size] if line.strip() in wanted) for at in starts]
    best_score = max(scores)
    shortlist = [at for at, score in zip(starts, scores) if score == best_score][:50]
    joined = "\n".join(search)

    def ratio(at: int) -> float:
        return difflib.SequenceMatcher(None, "\n".join(bodies[at : at + size]), joined, autojunk=False).ratio()

    start = max(shortlist, key=ratio)
    shown = bodies[start : start + size]
    width = len(str(start + len(shown)))
    return "\n".join(
        f"{start + offset + 1:>{width}}: {line[:SHOWN_LINE_MAX_CHARS]}" for offset, line in enumerate(shown)
    )
