"""The regions of the best-ranked files a task most likely touches, packed into the room the map leaves.

A file is cut into units at its definitions (Python: ``def``/``class`` lines with their
decorators, and module-level code after an indented block; C and C++: a function's first line,
:func:`c_functions`; other languages: a line that starts with a definition's keyword, ``fn``, ``func``, ``class``...), and a file under :data:`WHOLE_BYTES` is one unit. Each unit's worth is the chance the
change lies in it: the file's chance, by its rank (``(rank + 1) ** -RANK_DECAY``), times the
unit's share of it, mixing its share of the file's bytes (a change can lie anywhere) with its
share of the file's relevance (Okapi BM25 of the task's words over the file's units, plus the
identifiers the task names). Units are taken by worth per byte while they fit, so a small
relevant file goes whole, a large one gives its relevant functions first, and room left goes
to the rest of the best files. A file whose units all fit is sent whole. Before that, a small
fixed share of the room (:data:`REGION_SHARE`) goes to the most relevant units of all the
candidates by their own relevance (:func:`regions`), so a lower-ranked file's one matching
function is not crowded out by a large best file; before even that, the units declaring the
functions a localisation call named (:func:`defining`). After it, another small fixed share
of the room (:data:`LINK_SHARE`) goes to units linked to a sent matching unit by a rare name
(:func:`link`: a helper it calls, a caller of it), with no other worth changed: extra worth for
every link took share from the matching units (common names link too much).

Measured by ``benchmarks/bench_recall.py`` (hunk recall: the real change's lines in the prompt).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

WHOLE_BYTES = 6_000  # a file this small is one unit: cut finer, it reads worse and saves little
PIECE_BYTES = 2_000  # a unit grown past this (a long function, prose) is cut after its next blank line ...
LONG_PIECE_FACTOR = 2  # ... or, past this many times that with none, at its next line indented no deeper than its second (1-3 measured)
RELEVANCE_SHARE = 0.85  # a unit's share of its file's chance: this much by relevance, the rest by bytes (0.7-1.0 measured)
REGION_SHARE = 0.1  # of the room, kept first for the most relevant regions of any candidate (see regions; 0.05-0.2 measured)
LINK_SHARE = 0.02  # of the room, kept for regions a sent matching region links to by a rare name (see link)
DECLARATION_CHARS = 500  # a longer line (minified code, data) is not read for a declaration: the pattern would take quadratic time
LINK_NAME_LENGTH = 6  # a name shorter than this (get, run, visit) links too much to say anything
BM25_K1 = 1.2  # Okapi BM25's usual parameters (Robertson & Zaragoza 2009; Lucene's defaults)
BM25_B = 0.75

_PY_UNIT = re.compile(r"[ \t]*(?:@|(?:async[ \t]+)?def[ \t]|class[ \t])")
# what may come before a definition's keyword, in the languages that have one (Java, C#, Kotlin, Rust, Go, PHP, Ruby,
# JavaScript, TypeScript, Swift): `export default async`, `pub(crate)`, `private static`
_LEAD = r"(?:export[ \t]+)?(?:default[ \t]+)?(?:pub(?:\([^)\n]*\))?[ \t]+)?(?:async[ \t]+)?"
_MODIFIERS = "public|private|protected|static|abstract|final|override|internal"
_KEYWORDS = "function|class|def|fn|func|interface|struct|enum|trait|type|module"
_OTHER_UNIT = re.compile(r"[ \t]*" + _LEAD + r"(?:(?:" + _MODIFIERS + r")[ \t]+)*(?:" + _KEYWORDS + r"|impl)[ \t]")
_TYPE_ARGUMENTS = r"<(?:[^<>\n]|<[^<>\n]*>)*>"  # `<T>`, `<K, Map<String, V>>`: one level nested
# a JavaScript or TypeScript function kept in a variable: `const f = (a) =>`, `let f = async x =>`,
# `export const f: Handler = function`, `const f = (` with its parameters on the next lines; not a value
# computed in parentheses (`const x = (a + b) * c`, `const ids = (rows || []).map(r => r.id)`)
_ARROW = (
    r"(const|let|var)[ \t]+([A-Za-z_$][\w$]*)[ \t]*(?::[^=\n]*)?=[ \t]*(?:async[ \t]+)?(?:function\b|(?:" + _TYPE_ARGUMENTS + r")?"
    r"\((?:(?:[^()\n]|\([^()\n]*\))*\)[ \t]*(?::[^=\n]*)?=>|[ \t]*$)|[A-Za-z_$][\w$]*[ \t]*=>)"
)
# a definition's keyword and name; more modifiers and keywords than start a unit (Kotlin's `private suspend fun`,
# `enum class`, `fun interface`, `object`; Rust's `unsafe fn`; C#'s `partial class`, `readonly struct`, `record`;
# Kotlin Multiplatform's `actual fun`, `expect class`; Swift's `extension`, `protocol`, `actor`, `mutating func`,
# `fileprivate`, `class func`, not `class var`). After the keyword: a Go method's receiver (`func (s *Server)
# Serve`), type parameters (`fun <T> f`) and the types or object a method is defined on (`fun Headers.Builder.add`,
# Ruby's `def self.f`). Before it all, annotations on the same line (Kotlin's `@Synchronized override fun`, `@Test
# fun`). An arrow function only at column 0: an indented one is a local closure
_DEFINITION = re.compile(  # searched in "\n" + text, as _C_FUNCTION below (a fifth faster on Kotlin and Go than a MULTILINE '^')
    r"\n(?:(?=[ \t]*[a-z@])[ \t]*(?:@[\w.]+(?:\([^)\n]*\))?[ \t]+)*" + _LEAD + r"(?:(?:" + _MODIFIERS + r"|open|data|sealed|inner|suspend|inline|operator|unsafe"
    r"|const|enum|annotation|value|fun|partial|readonly|record|fileprivate|package|mutating|nonmutating|convenience|required"
    r"|nonisolated|class(?=[ \t]+func[ \t])|actual|expect)[ \t]+)*"
    r"(" + _KEYWORDS + r"|fun|object|extension|protocol|actor|record)(?![ \t]+(?:var|let)[ \t])(?:[ \t]*\*)?[ \t]+(?:\([^)\n]*\)[ \t]*)?"
    r"(?:" + _TYPE_ARGUMENTS + r"[ \t]*)?(?:[A-Za-z_$][\w$]*(?:" + _TYPE_ARGUMENTS + r")?\??\.)*([A-Za-z_$][\w$]*)"
    r"|(?:export[ \t]+)?" + _ARROW + ")",
    re.MULTILINE,
)  # the lookahead passes over most lines at once (each keyword and modifier starts with a lowercase letter)
C_FAMILY = (".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx")
# a C or C++ function's first line: at column 0, a name and its parameter list opened (see c_functions). A line is
# found by the newline before it (searched in "\n" + text): Python's re skips to a literal fast, but tries a
# MULTILINE '^' at every character, which took twice as long on redis's 10 MB of C
_C_FUNCTION = re.compile(r"\n(?=[A-Za-z_])(?:[^;{}=(\n]*?[ \t*&])?([A-Za-z_][\w:~]*)[ \t]*\(")
# between the name and the body's brace: no statement's end or directive (nor a blank line, see c_functions)
_C_HEADER = re.compile(r"[^;{}#]*\{")
_C_HEADER_CHARS = 1_000
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_C_NOT_NAMES = frozenset(["sizeof", "typedef", "void", "defined", "__attribute__", "__declspec", "alignof", "_Alignof", "asm", "__asm__"])
_WORD = re.compile(r"[A-Za-z_]\w*")
# words that start a statement, not a declaration, before a name and '(': `return f(`, `if f(`, `new F(`
_STATEMENT_WORDS = frozenset(["return", "if", "elif", "while", "for", "new", "await", "throw", "else", "case", "yield", "assert",
                              "not", "and", "or", "in", "raise", "print", "del", "with", "switch", "catch", "synchronized"])
# words (modifiers, a type, a keyword) then the name, then what follows a declared name; the shortest run of words first
_DECLARATION = re.compile(r"[ \t]*((?:[\w@<>\[\],.?*&:()]+[ \t]+)+?)(\w+)(?:[ \t]*[(<{:=\[]|[ \t]+(?:extends|implements|where)\b|[ \t]*$)")
_CLOSERS = (")", "]", "}", "#", "//", "/*", "*")


@dataclass
class Unit:
    """Lines ``first`` .. ``last`` (0-based, inclusive) of a file, ``size`` bytes, and its relevance to the task."""

    first: int
    last: int
    size: int
    relevance: float = 0.0
    parents: tuple[int, ...] = ()  # the lines defining what it is inside (its class, its function), sent with it


@dataclass
class Candidate:
    """A ranked file that may give units: its lines (each ending in a newline but maybe the last) and its units."""

    path: str
    chance: float  # of holding the change, relative to the best file's
    lines: list[str]
    units: list[Unit]
    whole_bytes: int  # its block sent whole
    excerpt_bytes: int  # an excerpt block's heading, fences and one gap mark: an upper bound
    gap_bytes: int  # one gap mark, at most
    chosen: set[int] = field(default_factory=set)  # indexes into ``units``


def split_lines(text: str) -> list[str]:
    """The lines as git counts them (split on newlines only, unlike ``str.splitlines``), each keeping its newline."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def cut_units(path: str, lines: Sequence[str], whole: bool = False) -> list[Unit]:
    """The file's units, covering every line once, in file order; one unit when ``whole`` or for a small file.

    Cut at definitions (see the module's docstring), and a unit grown past PIECE_BYTES after its
    next blank line, or, with no blank line (a table of a linter's messages), past
    LONG_PIECE_FACTOR times that at its next statement or entry; each unit knows the definition
    lines it is inside (sent with it).
    """
    sizes = [len(line.encode("utf-8")) for line in lines]
    total = sum(sizes)
    if whole or total <= WHOLE_BYTES:
        return [Unit(0, len(lines) - 1, total)] if lines else []
    python, c_family = path.endswith((".py", ".pyi")), path.endswith(C_FAMILY)
    c_starts = c_function_lines(lines) if c_family else {}
    boundary = _PY_UNIT if python else _OTHER_UNIT
    starts = [0]
    parents: dict[int, tuple[int, ...]] = {0: ()}
    open_definitions: list[tuple[int, int]] = []  # (indentation, line) of the definitions the scan is inside
    # module-level code after an indented block starts a unit; a decorator's lines stay with what it decorates
    after_decorator = previous_indented = in_string = False
    piece = 0  # bytes since the last start
    body = sys.maxsize  # the indentation of the unit's second line, once seen
    for index, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        start = False
        was_in_string = in_string
        if python and (line.count('"""') + line.count("'''")) % 2:
            in_string = not in_string  # a docstring's lines are text: no definition starts there
        if not stripped or was_in_string:
            pass
        elif (boundary.match(line) and not (c_family and (indent or stripped.endswith(";")))) or index in c_starts:
            # in C a type is defined at column 0: 'struct timeval tv;' in a function declares a variable
            start = index > 0 and not after_decorator
            after_decorator = stripped.startswith("@")
            if not after_decorator:
                while open_definitions and open_definitions[-1][0] >= indent:
                    open_definitions.pop()
                open_definitions.append((indent, index))
        else:
            top = not line[0].isspace()
            start = python and top and previous_indented and not stripped.startswith(_CLOSERS) and not after_decorator
            if top and (not c_family or stripped.startswith("}")):
                # a C function ends at its closing brace: its name's line, a brace, a directive ('#ifdef') or a label ('out:') is inside it
                open_definitions.clear()
        if not start and piece >= PIECE_BYTES and stripped:
            # a long unit: cut after a blank line or, with none for long (a table of messages), at its next statement or entry
            start = not lines[index - 1].strip() or (
                piece >= LONG_PIECE_FACTOR * PIECE_BYTES and not was_in_string and indent <= body and not stripped.startswith(_CLOSERS)
            )
        if start:
            body = sys.maxsize
            starts.append(index)
            parents[index] = tuple(at for depth, at in open_definitions if depth < indent and at < index)
            piece = 0
        piece += sizes[index]
        if stripped:
            previous_indented = line[0].isspace()
            if index > starts[-1] and body == sys.maxsize:
                body = indent
    ends = starts[1:] + [len(lines)]
    return [Unit(first, end - 1, sum(sizes[first:end]), parents=parents[first]) for first, end in zip(starts, ends) if end > first]


def score_units(candidate: Candidate, counts: Callable[[str], Mapping[str, float]], idf: Mapping[str, float]) -> None:
    """Each unit's relevance: Okapi BM25 of the task's terms (``counts`` of a text) over the file's units."""
    units = candidate.units
    if len(units) < 2:
        return
    average = sum(unit.size for unit in units) / len(units) or 1.0
    for unit in units:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * unit.size / average)
        terms = counts("".join(candidate.lines[unit.first : unit.last + 1]))
        unit.relevance = sum(idf.get(term, 0.0) * tf * (BM25_K1 + 1) / (tf + norm) for term, tf in terms.items())


def pack(candidates: Sequence[Candidate], room: int) -> int:
    """Choose units (into each ``candidate.chosen``) by worth per byte while they fit ``room`` bytes; the room left."""
    offers: list[tuple[float, int, int]] = []  # (-worth per byte, candidate, unit)
    for number, candidate in enumerate(candidates):
        chance = candidate.chance
        total_size = sum(unit.size for unit in candidate.units) or 1
        total_relevance = sum(unit.relevance for unit in candidate.units)
        for index, unit in enumerate(candidate.units):
            share = unit.size / total_size
            if total_relevance > 0:
                share = (1 - RELEVANCE_SHARE) * share + RELEVANCE_SHARE * unit.relevance / total_relevance
            offers.append((-chance * share / _cost(candidate, unit), number, index))
    offers.sort()
    return _take(candidates, offers, room)


def regions(candidates: Sequence[Candidate], room: int) -> int:
    """Choose the units most relevant to the task among every candidate's, whatever their file's rank, while they fit ``room``; the room left.

    The file-first worth of :func:`pack` leaves a lower-ranked file's one matching function out
    when the best file is large; ranking the regions themselves, as chunk-level retrieval does,
    finds it (BM25 over each file's units, the relevance :func:`score_units` gave).
    """
    offers = sorted((-unit.relevance, number, index) for number, candidate in enumerate(candidates)
                    for index, unit in enumerate(candidate.units) if unit.relevance > 0)
    return _take(candidates, offers, room)


def declared(line: str) -> tuple[str, str] | None:
    """(the words before it, the name) a line declares in any language, or None: a statement, a call, a line over DECLARATION_CHARS.

    A declaration is a line of words (modifiers, a return type, ``def``, ``fn``, ``class``) then
    the name, then ``(``, ``<``, ``{``, ``:``, ``=``, ``[``, ``extends``, ``implements``, ``where``
    or the line's end (``def f(``, ``public void f(``, ``fn f<T>(``, ``func (l *L) f(``,
    ``class F extends``), unless a word of it starts a statement (``return f(``, ``if f(``).
    """
    found = _DECLARATION.match(line) if len(line) <= DECLARATION_CHARS else None
    if found is None or found.group(1).split()[0] in _STATEMENT_WORDS or found.group(2) in _STATEMENT_WORDS:
        return None
    return found.group(1).strip(), found.group(2)


def definitions(text: str) -> list[tuple[str, str]]:
    """(keyword, name) of each definition in ``text`` written with a keyword, in order: ``('func', 'Serve')``,
    ``('const', 'handler')`` for an arrow function; a regex, not a parser, for speed. Python's and C's are read apart.
    """
    return [(kind, name) for _, kind, name in _keyword_definitions(text)]


def _keyword_definitions(text: str) -> list[tuple[int, str, str]]:
    """(offset of its line, keyword, name) of each definition :func:`definitions` reads."""
    return [(found.start(), found[1] or found[3], found[2] or found[4]) for found in _DEFINITION.finditer("\n" + text)]


def c_functions(text: str) -> list[tuple[int, str]]:
    """(offset, name) of each C or C++ function ``text`` defines, in order.

    C defines a function with no keyword ('static int parse(char *s) {', 'int\\nparse(char *s)\\n{'):
    a line at column 0 opening a parameter list whose body's brace follows within
    _C_HEADER_CHARS, with no ``;`` (a prototype, even over lines; a statement), ``#`` or blank
    line before it (a licence's 'Copyright (C) 2020', a comment's line); not ``if (``, ``sizeof(``
    or a function pointer's ``void (*f)(``.
    """
    found: list[tuple[int, str]] = []
    lined = "\n" + text  # a match starts at its newline: at the line's offset in ``text``
    for match in _C_FUNCTION.finditer(lined):
        name = match.group(1).rsplit(":", 1)[-1]
        first = match.group(0).split("(", 1)[0].split()[0]
        header = _C_HEADER.match(lined, match.end(), match.end() + _C_HEADER_CHARS)
        if (name and first not in _STATEMENT_WORDS and name not in _C_NOT_NAMES and header
                and not _BLANK_LINE.search(header.group(0))):
            found.append((match.start(), name))
    return found


def c_function_lines(lines: Sequence[str]) -> dict[int, str]:
    """Line index -> name of each C or C++ function the lines define (:func:`c_functions`), at its name's line."""
    return _at_lines(lines, c_functions("".join(lines)))


def _at_lines(lines: Sequence[str], found: Sequence[tuple[int, str]]) -> dict[int, str]:
    """Line index -> name, of (offset of a line in the joined ``lines``, name) pairs."""
    starts, offset = {}, 0
    for index, line in enumerate(lines):
        starts[offset] = index
        offset += len(line)
    return {starts[at]: name for at, name in found}


def defining(candidates: Sequence[Candidate], symbols: Sequence[tuple[str, str]], room: int) -> int:
    """Choose the units declaring each (path, name) of ``symbols`` (:func:`declared`), in that order, while they fit ``room``; the room left.

    A path that is not a candidate is passed over.
    """
    by_path = {candidate.path: number for number, candidate in enumerate(candidates)}
    declaring: dict[int, dict[str, list[int]]] = {}  # candidate -> name -> the units declaring it, read once a file
    offers: list[tuple[float, int, int]] = []
    for order, (path, name) in enumerate(symbols):
        number = by_path.get(path)
        if number is None:
            continue
        if number not in declaring:
            candidate = candidates[number]
            names: dict[str, list[int]] = {}
            c_names = c_function_lines(candidate.lines) if candidate.path.endswith(C_FAMILY) else {}
            for index, unit in enumerate(candidate.units):
                for at in range(unit.first, unit.last + 1):
                    declares = (declared(candidate.lines[at]) or ("", ""))[1] or c_names.get(at)
                    if declares:
                        names.setdefault(declares, []).append(index)
            declaring[number] = names
        offers += [(order, number, index) for index in dict.fromkeys(declaring[number].get(name, []))]
    return _take(candidates, sorted(offers), room)


def _take(candidates: Sequence[Candidate], offers: Sequence[tuple[float, int, int]], room: int) -> int:
    """Add the offered units not yet chosen, in order, while their file's block grows within ``room``; the room left.

    A file's block costs its excerpt's bytes (heading, fences, the units and one gap mark each)
    or, when that is no less, its whole block's: so the room is an upper bound of the rendered size.
    """
    excerpt = [candidate.excerpt_bytes + sum(_cost(candidate, candidate.units[i]) for i in candidate.chosen) for candidate in candidates]
    spent = [min(size, candidate.whole_bytes) if candidate.chosen else 0 for size, candidate in zip(excerpt, candidates)]
    for _, number, index in offers:
        candidate = candidates[number]
        if index in candidate.chosen:
            continue
        grown = excerpt[number] + _cost(candidate, candidate.units[index])
        cost = min(grown, candidate.whole_bytes)
        if cost - spent[number] <= room:
            candidate.chosen.add(index)
            room -= cost - spent[number]
            spent[number], excerpt[number] = cost, grown
    return room


def link(candidates: Sequence[Candidate], room: int) -> int:
    """Add the unsent units that define a rare name a chosen matching unit mentions, or mention one it defines; the room left.

    A matching unit is a chosen one with relevance; a rare name is defined once in the file, is
    not a dunder and has at least LINK_NAME_LENGTH characters (common names such as ``get`` or
    ``visit_*`` link too many units). Only excerpted files: a whole file holds its links already.
    Offers go by the matching unit's worth per byte of the linked one, as :func:`pack` weighs them.
    """
    offers: list[tuple[float, int, int]] = []
    for number, candidate in enumerate(candidates):
        units = candidate.units
        if not candidate.chosen or len(candidate.chosen) == len(units):
            continue
        total_relevance = sum(unit.relevance for unit in units)
        matching = [index for index in candidate.chosen if units[index].relevance > 0]
        if not matching:
            continue
        defined = _defined(candidate)
        owner = {name: at[0] for name, at in defined.items()
                 if len(at) == 1 and len(name) >= LINK_NAME_LENGTH and not name.startswith("__")}
        if not owner:
            continue
        mentions = [set(_WORD.findall("".join(candidate.lines[unit.first : unit.last + 1]))) & owner.keys() for unit in units]
        for index in matching:
            worth = candidate.chance * units[index].relevance / total_relevance
            own = {name for name, at in owner.items() if at == index}
            linked = {owner[name] for name in mentions[index]} | {other for other, names in enumerate(mentions) if names & own}
            for other in linked - candidate.chosen:
                offers.append((-worth / _cost(candidate, units[other]), number, other))
    offers.sort()
    return _take(candidates, offers, room)


def _defined(candidate: Candidate) -> dict[str, list[int]]:
    """Name -> the units defining it: C's and C++'s functions (not a variable's `struct tm tm;`), other languages' keyword lines."""
    if candidate.path.endswith(C_FAMILY):
        names = c_function_lines(candidate.lines)
    else:
        names = _at_lines(candidate.lines, [(at, name) for at, _, name in _keyword_definitions("".join(candidate.lines))])
    defined: dict[str, list[int]] = {}
    for index, unit in enumerate(candidate.units):
        for line in range(unit.first, unit.last + 1):
            if line in names:
                defined.setdefault(names[line], []).append(index)
    return defined


def _cost(candidate: Candidate, unit: Unit) -> int:
    """An upper bound of the bytes a unit adds to an excerpt: its lines, its parents' lines, a gap mark for each."""
    return unit.size + candidate.gap_bytes + sum(len(candidate.lines[line].encode("utf-8")) + candidate.gap_bytes for line in unit.parents)


def chosen_lines(candidate: Candidate) -> set[int] | None:
    """The 0-based line numbers chosen (with their parents' lines), or None when every unit was (the file goes whole)."""
    if len(candidate.chosen) == len(candidate.units):
        return None
    lines: set[int] = set()
    for index in candidate.chosen:
        unit = candidate.units[index]
        lines.update(range(unit.first, unit.last + 1))
        lines.update(unit.parents)
    return lines


def gap(first: int, last: int) -> str:
    """The mark standing for lines ``first`` .. ``last`` (0-based) left out; shown 1-based."""
    return f"… lines {first + 1}-{last + 1} left out\n"


def render(lines: Sequence[str], chosen: set[int]) -> str:
    """The chosen lines in file order, each run of lines left out replaced by its gap mark."""
    parts: list[str] = []
    previous = -1
    for index in sorted(chosen):
        if index > previous + 1:
            parts.append(gap(previous + 1, index - 1))
        parts.append(lines[index] if lines[index].endswith("\n") else lines[index] + "\n")
        previous = index
    if previous < len(lines) - 1:
        parts.append(gap(previous + 1, len(lines) - 1))
    return "".join(parts)


def idf_of(document_frequency: Mapping[str, int], documents: int) -> dict[str, float]:
    """Lucene's BM25 idf, ln(1 + (N - n + 0.5) / (n + 0.5)): never negative."""
    return {word: math.log(1 + (documents - n + 0.5) / (n + 0.5)) for word, n in document_frequency.items()}
