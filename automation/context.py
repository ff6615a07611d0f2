"""What the analysis model sees of the repository: a map and the most relevant files.

Everything is measured in UTF-8 bytes and converted with :func:`estimate_tokens`, which
over-counts on purpose, so the rendered prompt can never exceed the cap we promised the
budget. Ranking reads paths first and only then the contents of the best candidates (up
to a fixed number of bytes), which keeps a 10k-file repository well under two seconds.
Nothing that could be a secret, ignored, binary or huge is ever read into the prompt.
"""

from __future__ import annotations

import math
import os
import re
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

LEDGER_NAME = "token_budget.json"
MAX_FILE_BYTES = 200_000
BINARY_SNIFF_BYTES = 8192
MAP_SHARE = 0.4
READ_BUDGET_BYTES = 4_000_000
MAX_CONTEXT_FILES = 25
CONTENT_HITS_COUNTED = 5  # a term's weight grows with hits up to double, then stops
MIN_SCORE = 3  # one path-word match, or a few words in the content
RELEVANCE_FLOOR = 0.05  # files scoring under 5% of the best are noise, not context
OUTLINE_NAMES_PER_FILE = 12
BYTES_PER_TOKEN = 3

SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "*.p12",
    "*.pfx",
    "credentials*.json",
    ".npmrc",
    ".pypirc",
    "*.kdbx",
)
BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .pdf .zip .gz .tgz .bz2 .xz .7z .tar .jar .whl .so .dll "
    ".dylib .exe .bin .o .a .pyc .class .woff .woff2 .ttf .otf .mp3 .mp4 .mov .wav .sqlite .db".split()
)
LANGUAGES = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".tsx": "tsx",
    ".jsx": "jsx", ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin", ".rb": "ruby",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp", ".php": "php",
    ".swift": "swift", ".sh": "bash", ".md": "markdown", ".json": "json", ".yml": "yaml",
    ".yaml": "yaml", ".toml": "toml", ".html": "html", ".css": "css", ".sql": "sql",
}
STOPWORDS = frozenset(
    "the and for with that this from into when then than should would could must will can not "
    "are was were been has have had its it's our your their them they there here what which who "
    "how why all any each every some more most other also only just very new add adds added make "
    "makes use uses using used support supports allow allows fix fixes implement create update "
    "remove change changes instead about after before over under via per out get set".split()
)

_PY_OUTLINE = re.compile(r"^(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
_OTHER_OUTLINE = re.compile(
    r"^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:pub(?:\([^)\n]*\))?[ \t]+)?(?:async[ \t]+)?"
    r"(?:(?:public|private|protected|static|abstract|final)[ \t]+)*"
    r"(function|class|def|fn|func|interface|struct|enum|trait|type|module)[ \t]*\*?[ \t]+([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATHISH = re.compile(r"[\w.-]*[/.][\w./-]*\w")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@dataclass(frozen=True)
class RepoContext:
    """The map, the files chosen whole, the estimated tokens of the rendered text, and what was held back."""

    map_text: str
    files: dict[str, str]
    tokens: int
    skipped: list[str]


@dataclass
class _Entry:
    path: str
    size: int
    score: float = 0.0
    text: str | None = None
    outline: list[tuple[str, str]] = field(default_factory=list)


def estimate_tokens(text: str) -> int:
    """ceil(UTF-8 bytes / 3): real tokenizers average ~4 bytes per token on code and prose,
    so this over-counts (safe for a budget) without calling a tokenizer."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def _fence_for(content: str) -> str:
    """A backtick fence longer than any run inside the file, so the block cannot end early."""
    longest = max((len(run) for run in re.findall(r"`{3,}", content)), default=2)
    return "`" * (longest + 1)


def _file_block(path: str, content: str) -> str:
    """How one file appears in the prompt; its byte length is what the budget counts."""
    fence = _fence_for(content)
    body = content if content.endswith("\n") or not content else content + "\n"
    lang = LANGUAGES.get(_suffix(path), "")
    return f"\n### {path}\n{fence}{lang}\n{body}{fence}\n"


def render_context(ctx: RepoContext) -> str:
    """The prompt text: the map, then each chosen file in a fenced block under its path."""
    return ctx.map_text + "".join(_file_block(path, content) for path, content in ctx.files.items())


def _name(path: str) -> str:
    """The last component of a '/'-separated path (pathlib is too slow for 10k paths)."""
    return path.rsplit("/", 1)[-1]


def _suffix(path: str) -> str:
    """The lowercased extension, '' for none or for dot-files such as '.env'."""
    name = _name(path)
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _is_secret(path: str) -> bool:
    name = _name(path).lower()
    return any(fnmatchcase(name, pattern) for pattern in SECRET_PATTERNS)


def _is_excluded(path: str, exclude: Sequence[str]) -> bool:
    """Globs match the whole path (or the file name when they hold no '/'); plain paths also cover directories."""
    name = _name(path)
    parents = [path[:index] for index, char in enumerate(path) if char == "/"]
    for raw in exclude:
        pattern = raw.strip().strip("/")
        if not pattern:
            continue
        if path == pattern or path.startswith(pattern + "/") or fnmatchcase(path, pattern):
            return True
        if "/" not in pattern and fnmatchcase(name, pattern):
            return True
        if any(fnmatchcase(parent, pattern) for parent in parents):
            return True
    return False


def _is_private(path: str, exclude: Sequence[str]) -> bool:
    """Never sent, whatever the task says: the ledger, secret-like files, and ``exclude``."""
    return _name(path) == LEDGER_NAME or _is_secret(path) or _is_excluded(path, exclude)


def is_sendable(root: Path, path: str, exclude: Sequence[str] = ()) -> bool:
    """Whether one file named later (e.g. by the analysis) may be sent, by the same rules as the map.

    The path must be a plain relative path to a regular text file inside ``root`` that git does
    not ignore; the ledger, secrets, ``exclude``, binaries and files over the size limit never are.
    """
    pure = PurePosixPath(path)
    if not path or "\\" in path or "\0" in path or pure.is_absolute():
        return False
    if any(part in ("..", ".git") for part in pure.parts):
        return False
    if _is_private(pure.as_posix(), exclude):
        return False
    target = Path(root) / pure
    try:
        info = target.lstat()
        inside = target.resolve().is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False
    if not inside or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        return False
    if pure.suffix.lower() in BINARY_SUFFIXES or _read_text(target) is None:
        return False
    try:
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "--", pure.as_posix()], cwd=root, capture_output=True, check=False
        )
    except OSError:
        return True
    return ignored.returncode != 0


def _list_files(root: Path) -> list[str]:
    """Repository paths that git would consider (tracked or untracked, not ignored), else a plain walk."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except OSError:
        done = None
    if done is not None and done.returncode == 0:
        paths = {os.fsdecode(raw) for raw in done.stdout.split(b"\0") if raw}
        return sorted(paths)
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name != ".git"]
        rel = Path(directory).relative_to(root)
        found.extend((rel / name).as_posix() for name in files)
    return sorted(found)


def _split_words(text: str) -> set[str]:
    """Lowercase sub-words of identifiers and paths: 'buildContext_v2' -> {build, context, v2}."""
    words: set[str] = set()
    for part in re.split(r"[^A-Za-z0-9]+", text):
        words.update(piece.lower() for piece in _CAMEL.findall(part))
    return words


def _task_terms(task: str) -> tuple[set[str], set[str], set[str]]:
    """(path-like mentions, identifiers, plain words) of the task, lowercased, stopwords dropped."""
    paths = {match.strip("./").lower() for match in _PATHISH.findall(task) if "/" in match or "." in match}
    identifiers = {word.lower() for word in _WORD.findall(task) if "_" in word.strip("_") or re.search(r"[a-z][A-Z]", word)}
    words = {word for word in _split_words(task) if len(word) >= 3 and word not in STOPWORDS}
    words |= {word[:-1] for word in words if word.endswith("s") and len(word) > 4}
    return {path for path in paths if path}, identifiers, words - identifiers


def _path_score(path: str, mentions: set[str], terms: set[str]) -> float:
    lowered = path.lower()
    name = _name(lowered)
    stem = name[: len(name) - len(_suffix(name))]
    score = 0.0
    for mention in mentions:
        if lowered == mention or lowered.endswith("/" + mention):
            score += 100
        elif mention in (name, stem):
            score += 60
    if stem in terms:
        score += 8
    score += 3 * len(terms & _split_words(path))
    if lowered in ("readme.md", "readme.rst", "readme", "readme.txt"):
        score += 2
    elif lowered == "docs/tasks.md":
        score += 1
    return score


def _outline(path: str, text: str) -> list[tuple[str, str]]:
    """(kind, name) of the top-level definitions of a source file; a regex, not a parser, for speed."""
    suffix = _suffix(path)
    if suffix == ".py":
        return _PY_OUTLINE.findall(text)
    if suffix in LANGUAGES and suffix not in (".md", ".json", ".yml", ".yaml", ".toml", ".html", ".css"):
        return _OTHER_OUTLINE.findall(text)
    return []


def _outline_text(outline: list[tuple[str, str]]) -> str:
    """The outline as one compact map fragment, capped per file."""
    names = [f"{kind} {name}" for kind, name in outline]
    extra = len(names) - OUTLINE_NAMES_PER_FILE
    return ", ".join(names[:OUTLINE_NAMES_PER_FILE]) + (f", …+{extra}" if extra > 0 else "")


def _read_text(path: str | Path) -> str | None:
    """The file as text, or None when it looks binary (NUL in the first 8 KiB, or not UTF-8)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB"


def _map_line(entry: _Entry, with_outline: bool) -> str:
    line = f"{entry.path} ({_human_size(entry.size)})"
    if with_outline and entry.outline:
        line += f": {_outline_text(entry.outline)}"
    return line + "\n"


def _build_map(entries: list[_Entry], budget: int) -> str:
    """Map lines chosen by relevance within ``budget`` bytes, shown in path order."""
    total = len(entries)
    header = f"## Repository map ({total} files)\n"
    trailer_reserve = len(f"… {total} more files\n".encode())
    room = budget - len(header.encode("utf-8")) - trailer_reserve
    if room < 0:
        return ""
    chosen: list[str] = []
    for entry in entries:
        for line in (_map_line(entry, True), _map_line(entry, False)):
            size = len(line.encode("utf-8"))
            if size <= room:
                chosen.append(line)
                room -= size
                break
    chosen.sort()
    trailer = f"… {total - len(chosen)} more files\n" if len(chosen) < total else ""
    return header + "".join(chosen) + trailer


def _collect(root: Path, exclude: Sequence[str]) -> tuple[list[_Entry], list[str]]:
    """Regular files that may appear in the map, and the private paths held back by name."""
    entries: list[_Entry] = []
    private: list[str] = []
    for path in _list_files(root):
        if path == ".git" or path.startswith(".git/") or "/.git/" in path:
            continue
        if _is_private(path, exclude):
            private.append(path)
            continue
        try:
            info = os.lstat(os.path.join(root, path))
        except OSError:
            continue  # listed by git but deleted from the working tree
        if stat.S_ISREG(info.st_mode):  # not symlinks (which may point outside), submodules, sockets
            entries.append(_Entry(path=path, size=info.st_size))
    return entries, private


def _rank(root: Path, entries: list[_Entry], task: str) -> set[str]:
    """Score by path, then read the best candidates (within a byte budget) and score their contents.

    Sorts ``entries`` best first and returns the paths found unsendable (binary or too large).
    """
    mentions, identifiers, words = _task_terms(task)
    path_terms = identifiers | words | {piece for ident in identifiers for piece in _split_words(ident) if len(piece) >= 3}
    for entry in entries:
        entry.score = _path_score(entry.path, mentions, path_terms)
    entries.sort(key=_rank_key)

    content_terms = identifiers | words
    unsendable: set[str] = set()
    read_left = READ_BUDGET_BYTES
    for entry in entries:
        if entry.size > MAX_FILE_BYTES or _suffix(entry.path) in BINARY_SUFFIXES:
            unsendable.add(entry.path)
            continue
        if entry.size > read_left:
            continue
        read_left -= entry.size
        try:
            entry.text = _read_text(os.path.join(root, entry.path))
        except OSError:
            entry.text = None
        if entry.text is None:
            unsendable.add(entry.path)
            continue
        entry.outline = _outline(entry.path, entry.text)
        lowered = entry.text.lower()
        defined = {name.lower() for _, name in entry.outline}
        for term in content_terms:
            count = _count_word(lowered, term, CONTENT_HITS_COUNTED)
            if count:
                weight = 12 if term in defined else 4 if term in identifiers else 1
                entry.score += weight * (1 + (count - 1) / (CONTENT_HITS_COUNTED - 1))
    entries.sort(key=_rank_key)
    return unsendable


def _count_word(lowered: str, term: str, limit: int) -> int:
    """Occurrences of ``term`` (or its plural) as a sub-word, up to ``limit``.

    Letters and digits bound a word but '_' does not, so "milestone" is found in
    "newly_reached_milestones". str.find beats one big regex alternation ~10x here.
    """
    count = 0
    start = lowered.find(term)
    while start != -1 and count < limit:
        end = start + len(term)
        if lowered.startswith("s", end):
            end += 1
        if (start == 0 or not lowered[start - 1].isalnum()) and not lowered[end : end + 1].isalnum():
            count += 1
        start = lowered.find(term, start + 1)
    return count


def _rank_key(entry: _Entry) -> tuple[float, int, str]:
    return (-entry.score, entry.path.count("/"), entry.path)


def _choose_files(entries: list[_Entry], room: int) -> dict[str, str]:
    """Whole files, best first, while they fit in ``room`` bytes; weak matches are left out."""
    files: dict[str, str] = {}
    top = entries[0].score if entries else 0
    floor = min(max(MIN_SCORE, top * RELEVANCE_FLOOR), top)
    for entry in entries:
        if len(files) >= MAX_CONTEXT_FILES or entry.score <= 0 or entry.score < floor:
            break
        if entry.text is None:
            continue
        size = len(_file_block(entry.path, entry.text).encode("utf-8"))
        if size <= room:
            files[entry.path] = entry.text
            room -= size
    return files


def build_context(root: Path, task: str, max_tokens: int, exclude: Sequence[str] = ()) -> RepoContext:
    """The map and the files most relevant to ``task``; ``tokens`` of the rendered text never exceed ``max_tokens``."""
    root = Path(root)
    cap = max(max_tokens, 0) * BYTES_PER_TOKEN
    entries, private = _collect(root, exclude)
    unsendable = _rank(root, entries, task)
    map_text = _build_map(entries, int(cap * MAP_SHARE))
    files = _choose_files(entries, cap - len(map_text.encode("utf-8")))
    skipped = sorted(private + [path for path in unsendable if path not in files])
    rendered = render_context(RepoContext(map_text=map_text, files=files, tokens=0, skipped=skipped))
    return RepoContext(map_text=map_text, files=files, tokens=estimate_tokens(rendered), skipped=skipped)
