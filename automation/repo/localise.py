"""The localisation call's prompt and reply: a small model names the files and functions a task changes.

On a large repository the task's words alone rank the right file low when the subject shares
few words with the code ('Implement #180 in master', 'Fix indentation of option help'). As
Agentless does (Xia et al. 2024, "Agentless: Demystifying LLM-based Software Engineering
Agents"), one cheap call reads the best-ranked candidates' skeletons (their definitions) and the
repository's map, and names the files and functions most likely edited; the context then puts
them first (``context.Locations``). The call itself is made, reserved and booked like any other
by ``steps/pipeline.py``; this module only builds the prompt and reads the reply, which is
untrusted: only paths the prompt offered and plain names are kept.

Measured with recorded replies by ``benchmarks/bench_recall.py --locations``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core import untrusted
from . import context, excerpts

MIN_FILES = 200  # a repository with fewer files is not surveyed: ranking alone finds its files (click, flask: nothing gained)
CANDIDATES = 30  # the best-ranked files shown with their skeletons
SKELETON_BYTES = 900  # of each candidate's skeleton, at most
MAP_BYTES = 18_000  # of the map of the other files (their paths), at most
MAX_FILES = 5
MAX_SYMBOLS = 10
TASK_BYTES = 4_000  # of the task's text, at most (an issue taken as a task may be long)
MAX_TOKENS = 2_000  # the reply, one short JSON object (~300 tokens), with room for a reasoning model's thinking
CANDIDATE_BYTES = CANDIDATES * (SKELETON_BYTES + 300)  # of the candidates' lines in all: a block past it is left out
HEADING_BYTES = 1_000  # the brief's headings, at most

SYSTEM = (
    "You locate code for a change. Given a task, a repository's best-ranked candidate files with their "
    "definitions, and a map of its other paths, name the files most likely edited to carry out the task "
    "and the functions, methods or classes in them most likely edited. Reply with one JSON object only: "
    '{"files": ["path", ...], "symbols": [["path", "name"], ...]}, at most '
    f"{MAX_FILES} files and {MAX_SYMBOLS} symbols, most likely first, each path exactly as the prompt writes it. "
    + untrusted.SYSTEM_RULE
)
# The prompt's bound in tokens, as the call reserves it (providers.openai_input_token_bound: a token per byte at
# most, with framing): what the run's worst case counts for the call (budget.worst_case).
INPUT_BOUND_TOKENS = MAP_BYTES + CANDIDATE_BYTES + TASK_BYTES + HEADING_BYTES + len(SYSTEM.encode("utf-8")) + 100

# languages whose methods context.py's definitions leave out: their skeleton is read with excerpts.declared
_METHOD_SUFFIXES = (".java", ".kt", ".kts", ".cs", ".scala")
_TYPE_WORDS = frozenset(["class", "interface", "enum", "record", "object", "trait", "struct"])
_FENCED_JSON = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


@dataclass(frozen=True)
class Brief:
    """The user message of the call, and every path it offered (the only ones a reply may name)."""

    text: str
    offered: frozenset[str]

    @property
    def tokens(self) -> int:
        """The call's prompt, system prompt included, in estimated tokens (``context.estimate_tokens``)."""
        return context.estimate_tokens(SYSTEM + self.text)


def needed(total_files: int) -> bool:
    """Whether a repository of ``total_files`` files is large enough for the call to pay."""
    return total_files >= MIN_FILES


def skeleton(path: str, text: str, definitions: Sequence[tuple[str, str, str]]) -> list[str]:
    """A file's definitions, one a line, nested ones indented, each once, within SKELETON_BYTES (the brief's indentation counted)."""
    if path.endswith(_METHOD_SUFFIXES):
        parts = []
        for line in text.splitlines():
            found = excerpts.declared(line)
            if found:
                kind = next((word for word in found[0].split() if word in _TYPE_WORDS), "")
                parts.append(f"{kind} {found[1]}" if kind else f"    {found[1]}()")
    else:
        parts = [("    " if indent else "") + f"{kind} {name}" for indent, kind, name in definitions]
    kept: list[str] = []
    size = 0
    unique = list(dict.fromkeys(parts))
    for part in unique:
        if size + len(part) + 5 > SKELETON_BYTES:
            kept.append(f"    … {len(unique) - len(kept)} more")
            break
        kept.append(part)
        size += len(part) + 5
    return kept


def brief(root: Path, task: str, exclude: Sequence[str] = ()) -> Brief | None:
    """The call's prompt for ``task`` on the checkout at ``root``, or None on a repository below MIN_FILES.

    Raises GitError when ``root`` is a git checkout that git cannot list.
    """
    found = context.survey(root, task, MAP_BYTES, exclude, CANDIDATES)
    if not needed(found.total):
        return None
    blocks: list[str] = []
    offered = set(found.listed)
    room = CANDIDATE_BYTES
    for path, size, text, definitions in found.files:
        block = "".join(f"{line}\n" for line in [f"{len(blocks) + 1}. {path} ({size:,} bytes)",
                                                  *("    " + part for part in skeleton(path, text, definitions))])
        if len(block.encode("utf-8")) <= room:  # so the prompt stays within INPUT_BOUND_TOKENS whatever the paths are
            blocks.append(block)
            offered.add(path)
            room -= len(block.encode("utf-8"))
    clipped = task.encode("utf-8")[:TASK_BYTES].decode("utf-8", "ignore")
    text = (f"# Task\n{clipped}\n\n# Candidate files ({len(blocks)} of {found.total}, ranked by the words they share with "
            f"the task; best first), with their definitions\n{''.join(blocks)}\n"
            f"# Repository map (the best-ranked files by folder: a folder's line, then its files' names)\n{found.map_text}")
    return Brief(text=text, offered=frozenset(offered))


def parse(reply: str, offered: frozenset[str]) -> tuple[context.Locations, str]:
    """The locations a reply names, and a note on what was not used ("" when all was).

    The reply is untrusted: a JSON object, bare or in a fence, whose ``files`` are paths the
    prompt offered and whose ``symbols`` are [path, name] pairs with such a path and a name that
    is one word. A small model strays from that shape in foreseeable ways, which are read as meant
    (see :func:`_offered_path`, :func:`_plain_name`, :func:`_symbols`): a path with ``./``, a line
    number or the prompt's size note, or only its last parts when they end one offered path; a name
    written ``Class.method``, ``def total`` or ``total()``; a symbol as ``{"path": .., "name": ..}``
    or ``"path::name"``; a file as an object carrying its symbols; one path as a string. Anything
    else is dropped and counted in the note; a reply with no object gives empty locations (the
    context is then built as without the call). Only paths the prompt offered ever come out.
    """
    data = _json_object(reply)
    if data is None:
        return context.Locations(), "the reply held no JSON object; the context is ranked without it"
    by_name: dict[str, list[str]] = {}
    for path in offered:
        by_name.setdefault(path.rsplit("/", 1)[-1], []).append(path)
    raw_files, raw_symbols = (_listed(data, keys) for keys in (_FILES_KEYS, _SYMBOLS_KEYS))
    files: list[str] = []
    symbols: list[tuple[str, str]] = []
    dropped = 0
    for item in raw_files:
        file = _offered_path(item.get(_first_key(item, _PATH_KEYS)) if isinstance(item, dict) else item, offered, by_name)
        files += [file] if file else []
        named = _symbols(item, offered, by_name) if isinstance(item, dict) else []
        symbols += named
        dropped += not file and not named
    for item in raw_symbols:
        named = _symbols(item, offered, by_name)
        symbols += named
        dropped += not named
    files, symbols = list(dict.fromkeys(files))[:MAX_FILES], list(dict.fromkeys(symbols))[:MAX_SYMBOLS]
    note = f"{dropped} of the reply's entries named no path the prompt offered, or no plain name: not used" if dropped else ""
    return context.Locations(files=tuple(files), symbols=tuple(symbols)), note


_FILES_KEYS = ("files", "paths", "file_paths")
_SYMBOLS_KEYS = ("symbols", "functions", "names", "methods", "classes")
_PATH_KEYS = ("path", "file", "filename", "file_path")
_NAME_KEYS = ("name", "symbol", "function", "method", "class")
_NUMBERING = re.compile(r"^(?:\d+[.)]|[-*])\s+")  # '3. ' or '- ' copied from the prompt's list
_PATH_TAIL = re.compile(r"(?:\s*\([^()]*\)|:L?\d+(?:-L?\d+)?|#L\d+(?:-L?\d+)?)$")  # ' (1,234 bytes)', ':120', '#L5-L9'
_NAME = re.compile(r"(?:(?:(?:async\s+)?def|class|fun|func|fn|function|method)\s+)?([A-Za-z_$][\w$]*(?:(?:\.|::|#)[A-Za-z_$][\w$]*)*)\s*(?:\([^()]*\))?")
_PLAIN = re.compile(r"[A-Za-z_]\w{0,99}", re.ASCII)
_ENTRY_CHARS = 1_000  # a longer path or name is no path or name the prompt offered: not read (the patterns would take quadratic time)
_SYMBOL_STRING = re.compile(r"(.+?\.\w+)(?:::|:|#)(.+)")  # 'billing/invoice.py::Invoice.total', 'a.py:total'


def _first_key(data: dict, keys: Sequence[str]) -> str:
    return next((key for key in keys if key in data), "")


def _listed(data: dict, keys: Sequence[str]) -> list:
    """The list under the first of ``keys`` present; a lone string or object as a list of one; else []."""
    value = data.get(_first_key(data, keys))
    return value if isinstance(value, list) else [value] if isinstance(value, str | dict) else []


def _offered_path(raw: object, offered: frozenset[str], by_name: dict[str, list[str]]) -> str | None:
    """The offered path ``raw`` means, or None: as written, or with its decoration stripped, or the one offered path it ends."""
    if not isinstance(raw, str) or len(raw) > _ENTRY_CHARS:
        return None
    if raw.strip() in offered:
        return raw.strip()
    text = _PATH_TAIL.sub("", _NUMBERING.sub("", raw.strip().strip("`'\"").strip())).strip().replace("\\", "/")
    while text.startswith(("./", "/")):
        text = text.removeprefix(".").removeprefix("/")
    if text in offered:
        return text
    ending = [path for path in by_name.get(text.rsplit("/", 1)[-1], []) if path.endswith("/" + text)]
    return ending[0] if len(ending) == 1 else None


def _plain_name(raw: object) -> str | None:
    """The one-word name ``raw`` means ('Invoice.total', 'def total(self)', 'Outer$Inner.total' -> 'total'), or None."""
    found = _NAME.fullmatch(raw.strip().strip("`").strip()) if isinstance(raw, str) and len(raw) <= _ENTRY_CHARS else None
    last = re.split(r"\.|::|#|\$", found.group(1))[-1] if found else ""
    return last if _PLAIN.fullmatch(last) else None


def _symbols(item: object, offered: frozenset[str], by_name: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The (path, name) pairs one entry of ``symbols`` (or a file's object) names: [path, name, ...], {path, name or a list of
    names} or 'path::name'."""
    if isinstance(item, str):
        split = _SYMBOL_STRING.fullmatch(item.strip())
        item = [split.group(1), split.group(2)] if split else []
    if isinstance(item, dict):
        item = [item.get(_first_key(item, _PATH_KEYS)), *(_listed(item, _SYMBOLS_KEYS) or [item.get(_first_key(item, _NAME_KEYS))])]
    if not isinstance(item, list) or len(item) < 2:
        return []
    path = _offered_path(item[0], offered, by_name)
    names = [name for name in map(_plain_name, item[1:]) if name]
    return [(path, name) for name in names] if path else []


def _json_object(reply: str) -> dict | None:
    """The reply's JSON object: the whole reply, a fenced block, or the span from its first '{' to its last '}'."""
    fenced = _FENCED_JSON.search(reply)
    start, end = reply.find("{"), reply.rfind("}")
    for text in (reply.strip(), fenced.group(1) if fenced else "", reply[start : end + 1] if 0 <= start < end else ""):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            continue
        if isinstance(data, dict):
            return data
    return None
