"""What the analysis model sees of the repository: a map and the files most likely to matter.

Everything is measured in UTF-8 bytes and converted with :func:`estimate_tokens`, which
over-counts on purpose, so the rendered prompt can never exceed the cap we promised the
budget. Only the repository's own files are candidates (``git ls-files``: tracked, never
untracked or ignored ones), and nothing that could be a secret, binary or huge is ever read.

Ranking (measured by ``benchmarks/bench_recall.py`` on real commits):

1. files the task names by path come first (or by a snake_case name that is one source file's name, ``env_test``);
2. source before tests and docs (README, CHANGELOG, ``docs/``, prose, examples), unless one
   of the task's first :data:`SUBJECT_WORDS` words says tests or docs — commits change source
   far more often, and prose is large;
3. files defining a name the task gives (``prepare_cookies``, ``HTTPError``, ``__implements__``,
   ``next()``, one word in backticks, ``used-before-assignment``) that at most :data:`DEFINERS`
   files define, or, for a hyphenated name no file defines (a linter's message), the source
   files holding it when at most :data:`NAME_HOLDERS` do;
4. Okapi BM25 of the task's words against each file's words, identifiers split on camel and
   snake case (a word mixing letters and digits, ``i18n``, also whole), a path word counting as
   :data:`PATH_WEIGHT` content words and a defined name as :data:`DEFINITION_WEIGHT`: a file is
   about what it is called and what it defines; a source module adds :data:`PAIR_SHARE` of the
   score of the test named after it; among equal scores, source code before configuration.

On a large repository a localisation call (``repo/localise.py``) may add :class:`Locations`: the
files a small model read off the ranked candidates' skeletons and the map, which then come after
those of steps 1-3 and before every other of their kind (step 2 still puts tests and docs after
source), and the functions it named, whose regions are taken first.

Every sendable file is scored (no read budget); a file whose lowercased text holds none of
the task's words is read but not tokenised, which keeps a 2,000-file repository under a
second. Files are then sent whole, best first, into the room the map leaves, until the cap
is full; a relevant file too large for the room left, or over :data:`MAX_FILE_BYTES`, is sent
as an excerpt (its regions most likely to hold the change, ``repo/excerpts.py``: first, in a
small fixed share of the room, the regions of any candidate most relevant on their own; last, in
another, the regions those link to by a rarely defined name). The map lists
every file it has room for, and gives the outline of files not sent with the room left over.
"""

from __future__ import annotations

import keyword
import math
import os
import re
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase, translate
from pathlib import Path, PurePosixPath

from ..core import secret_scan
from ..core.errors import GitError
from ..core.textfiles import writable_path
from . import excerpts

LEDGER_NAME = "token_budget.json"
MAX_FILE_BYTES = 200_000  # a file larger than this is never sent whole ...
EXCERPT_MAX_BYTES = 1_000_000  # ... but up to this size its relevant parts may go as an excerpt
BINARY_SNIFF_BYTES = 8192
MAP_SHARE = 0.15  # of the cap, at most, for the map's plain lines on a large repository (0.05-0.25 measured)
OUTLINE_NAMES_PER_FILE = 12
DESCRIBED_SKIPPED = 10  # the dry run names this many held-back files
RANK_DECAY = 3.0  # a file's chance of holding the change falls as (rank + 1) ** -RANK_DECAY ...
SCORE_SLOPE = 0.0  # ... and as exp(SCORE_SLOPE * (score / best score - 1))
CANDIDATES = 50  # the best-ranked files that may give excerpts (repo/excerpts.py); the rest go whole or not at all
EXCERPT_NOTE = " (excerpt: the parts most relevant to the task; gaps marked)"
BYTES_PER_TOKEN = 3
PATH_WEIGHT = 5  # a path word counts as this many content words
DEFINITION_WEIGHT = 3  # a name defined here (def, class, function...) counts as this many
PAIR_SHARE = 0.5  # a source module gains this share of the score of the test named after it ...
TAIL_SHARE = 0.5  # ... times this when only the end of the test's name names the module (0, 0.25, 0.5, 1 measured)
PAIR_SOURCES = 2  # ... when the test's name points at no more modules than this
NAMED_FILES = 3  # a path or file name the task gives names the files it matches when at most this many do (else see _name_files)
DEFINERS = 3  # a name the task gives puts the files defining it first when at most this many do ...
NAME_HOLDERS = 3  # ... or, defined nowhere, the source files holding it when at most this many do
AREA_WEIGHT = 1.5  # a file in the area a task's subject starts with ('searcher: ...') scores this many times as much
NAME_WEIGHT = 3  # an occurrence of a name the task gives (identifier, hyphenated message name) counts as this many words
LOCATED_FILES = 3  # a localisation call's first this many files come after the task's named files and definers (2, 3, 5 measured)
SUBJECT_WORDS = 4  # a task is about tests or docs when one of its first this many words names them
BM25_K1 = 1.2  # Okapi BM25's usual parameters (Robertson & Zaragoza 2009; Lucene's defaults)
BM25_B = 0.75

# Matched against the file name and against the whole path, case-insensitively: the files where
# tools keep credentials (gitleaks' path rules, and the defaults of the CLIs and frameworks that
# write them). Names are not enough: every file sent is also scanned (``secret_scan``).
SECRET_PATTERNS = (
    # environment files
    ".env", ".env.*", "*.env", ".envrc", "*.env.*", ".env_*", ".env-*",
    # shell and client credentials, histories
    ".netrc", "_netrc", ".git-credentials*", ".gitcookies", ".pgpass", ".my.cnf", ".htpasswd", "*_history",
    ".history", ".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", ".gem/credentials", ".cargo/credentials",
    ".cargo/credentials.toml", ".m2/settings.xml", ".m2/settings-security.xml", ".gradle/gradle.properties",
    "nuget.config", "auth.json", ".composer/auth.json", ".config/gh/hosts.yml", ".config/hub", ".vault-token",
    ".terraformrc", "terraform.rc", "rclone.conf", ".s3cfg", ".boto", ".passwd-s3fs", ".git-credential-cache/*",
    # containers and clusters
    ".dockercfg", ".docker/config.json", "*.dockerconfigjson", ".kube/config", "kubeconfig*", "*.kubeconfig",
    # clouds
    ".aws/credentials", ".aws/config", ".azure/*", ".config/gcloud/*", "gha-creds-*.json", "*service-account*.json",
    "*service_account*.json", "*serviceaccount*.json", "*firebase-adminsdk*.json", "token.json",
    "credentials*.json", "client_secret*.json", "*-" + "[0-9a-f]" * 12 + ".json",  # a GCP key's default name
    "*.tfvars", "*.tfvars.json", "*.tfstate", "*.tfstate.backup",
    # keys and keystores
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "ssh_host_*_key", "*.pem", "*.key", "*.p8", "*.p12", "*.pfx",
    "*.pkcs12", "*.pkcs8", "*.pk8", "*.ppk", "*.asc", "*.jks", "*.keystore", "keystore.properties", "key.properties",
    "*.kdbx", "*.ovpn", "*.gpg", "*.secret", "*.secrets",
    # deploy and app configs that hold passwords by design
    "sftp-config.json", ".vscode/sftp.json", ".ftpconfig", "sitemanager.xml", "wp-config.php", "wp-config-*.php",
    "config/database.yml", "config/credentials.yml.enc", "config/secrets.yml",
    "secrets.json", "secrets.yml", "secrets.yaml", "secrets.toml", "secrets.env",
)
_SECRET = re.compile(r"(?:.*/)?(?:" + "|".join(translate(pattern) for pattern in SECRET_PATTERNS) + ")")
BINARY_SUFFIXES = frozenset(
    [
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz",
        ".7z", ".tar", ".jar", ".whl", ".so", ".dll", ".dylib", ".exe", ".bin", ".o", ".a", ".pyc", ".class",
        ".woff", ".woff2", ".ttf", ".otf", ".mp3", ".mp4", ".mov", ".wav", ".sqlite", ".db"
    ]
)
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript",
    ".tsx": "tsx", ".jsx": "jsx", ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin", ".rb": "ruby",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp", ".cs": "csharp", ".php": "php",
    ".swift": "swift", ".sh": "bash", ".md": "markdown", ".json": "json", ".yml": "yaml",
    ".yaml": "yaml", ".toml": "toml", ".html": "html", ".css": "css", ".sql": "sql",
}
CODE_SUFFIXES = frozenset(LANGUAGES) - {".md", ".json", ".yml", ".yaml", ".toml", ".html", ".css"}  # languages with definitions
PROSE_SUFFIXES = frozenset([".md", ".rst", ".txt", ".adoc", ".markdown"])
DOC_DIRS = frozenset(["docs", "doc", "documentation", "examples", "example", "changelog.d", "newsfragments", "changes"])
DOC_NAMES = ("readme", "changelog", "changes", "history", "news", "authors", "contributing", "license", "code_of_conduct")
TEST_DIRS = frozenset(["test", "tests", "testing", "testsuite", "spec", "specs", "__tests__", "e2e", "fixtures", "testdata", "playground"])
# Files a tool writes or keeps (translation catalogs, lock files, minified or mapped output): hardly ever edited by hand.
DATA_DIRS = frozenset(["locale", "locales", "l10n"])
DATA_SUFFIXES = (".po", ".pot", ".mo", ".lock", ".min.js", ".min.css", ".map", ".svg")
DATA_NAMES = frozenset(["package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum"])
STOPWORDS = frozenset(
    [
        "the", "and", "for", "with", "that", "this", "from", "into", "when", "then", "than", "should", "would",
        "could", "must", "will", "can", "not", "are", "was", "were", "been", "has", "have", "had", "its",
        "it's", "our", "your", "their", "them", "they", "there", "here", "what", "which", "who", "how", "why",
        "all", "any", "each", "every", "some", "more", "most", "other", "also", "only", "just", "very", "new",
        "add", "adds", "added", "make", "makes", "use", "uses", "using", "used", "support", "supports", "allow",
        "allows", "fix", "fixes", "fixed", "implement", "create", "update", "remove", "change", "changes",
        "instead", "about", "after", "before", "over", "under", "via", "per", "out", "get", "set", "don",
        "doesn", "isn", "now", "see", "refs", "ref", "closes", "issue", "pr", "to", "as", "is", "on", "in", "be",
        "of", "an", "or", "if", "by", "at", "it", "we", "so", "do", "up", "but", "too", "does", "did", "being",
        "these", "those", "where", "while", "because", "until", "again", "once", "between", "through", "during",
        "well", "cannot", "can't", "my", "me", "you", "he", "she", "his", "her", "him", "us", "off", "such", "both",
        "same", "own", "yet", "nor", "few", "whether", "within", "without", "upon", "onto", "like", "unless"
    ]
)

_PY_DEFINITION = re.compile(r"^([ \t]*)(?:async[ \t]+)?(def|class)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
# a type C or C++ defines ('struct x {', 'class EXPORT X final : public Y\n{', 'enum class Color {'), not one a variable has
_C_TYPE = re.compile(  # searched in "\n" + text, as excerpts' C functions are
    r"\n[ \t]*(?:typedef[ \t]+)?(struct|union|enum|class)(?:[ \t]+class)?[ \t]+(?:[A-Z_][A-Z0-9_]*[ \t]+)?([A-Za-z_]\w*)"
    r"(?:[ \t]+final)?[ \t]*(?::[^;{(\n]*)?\s*\{"
)
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALNUM_BYTES = bytes(byte if chr(byte).isascii() and chr(byte).isalnum() else ord(" ") for byte in range(256))  # the rest: spaces
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_CALLED = re.compile(r"([A-Za-z_]\w*)\(")
_DUNDER = re.compile(r"__\w+__")
_TEST_AFFIX = re.compile(r"^(?:test_|tests_|unittest_)|(?:_tests?|_spec)$")
_CAMEL_TEST_AFFIX = re.compile(r"^Tests?(?=[A-Z])|(?<=[a-z0-9])(?:Tests?|Spec|IT)$")  # TestMapper.java, JsonReaderTest.java, ParserTests.cs, ApiSpec.scala
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # pytest.DoctestItem, click.shell_completion
# 'searcher: ...', 'ignore/types: ...', 'net/http: ...', or a conventional commit's scope: 'fix(ssr): ...', 'feat(css)!: ...'
_AREA = re.compile(r"(?:[a-z]+\(([\w./-]+)\)!?|([A-Za-z][\w.-]*(?:/[\w.-]+)*)):\s")
# Conventional-commit types: the kind of change, not where it is ('fix: ...', 'chore: ...').
COMMIT_TYPES = frozenset(["build", "chore", "ci", "docs", "feat", "fix", "perf", "refactor", "revert", "style", "test"])
_HYPHENATED = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+")
NAME_KEY = "="  # counts of a name the task gives are kept under "=" + name, apart from words
_TASK_EDGE = "\"'`()[]{}<>,;:!?*"


@dataclass(frozen=True)
class RepoContext:
    """The map, the files sent whole, the estimated tokens of the rendered text, and what was held back.

    ``reasons`` says why each file in ``files`` or ``excerpts`` was sent (``named in the task``,
    ``defines X``, ``holds X``, ``score 7.3``, ``room left``): the dry run shows it so a user can tune the task
    or the config. ``excerpts`` holds relevant files too large for the room left, as their
    definition lines and the lines around the task's words (gaps marked), never whole.
    """

    map_text: str
    files: dict[str, str]
    tokens: int
    skipped: list[str]
    reasons: dict[str, str] = field(default_factory=dict)
    excerpts: dict[str, str] = field(default_factory=dict)
    masked: dict[str, str] = field(default_factory=dict)  # path -> what was masked ("line 3: aws-access-token")


@dataclass(frozen=True)
class Locations:
    """Where a localisation call says a task's change lies (``repo/localise.py``).

    ``files``: repository paths, most likely first; ``symbols``: (path, name) of the functions,
    methods or classes in them most likely edited, most likely first. Only the first
    :data:`LOCATED_FILES` files (those of ``symbols`` counted after ``files``) move up the ranking.
    """

    files: tuple[str, ...] = ()
    symbols: tuple[tuple[str, str], ...] = ()

    def ranked(self) -> list[str]:
        """The files that move up, most likely first."""
        return list(dict.fromkeys([*self.files, *(path for path, _ in self.symbols)]))[:LOCATED_FILES]


@dataclass
class _Entry:
    path: str
    size: int
    text: str | None = None
    named: bool = False
    demoted: bool = False
    defines: str = ""
    holds: str = ""  # a name the task gives that no file defines and few files hold (a linter message, a setting)
    score: float = 0.0
    tested_by: str = ""  # the test file whose score this source file shares
    area: str = ""  # the task's leading 'area:' when this file is in it
    located: int = -1  # its place among the localisation call's files, -1 when not one of them
    length: int = 0
    definitions: list[tuple[str, str, str]] | None = None  # read once (ranking, the map's outline, the survey): see _entry_definitions
    counts: dict[str, float] = field(default_factory=dict)


def estimate_tokens(text: str) -> int:
    """ceil(UTF-8 bytes / 3): real tokenizers average ~4 bytes per token on code and prose,
    so this over-counts (safe for a budget) without calling a tokenizer."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def _fence_for(content: str) -> str:
    """A backtick fence longer than any run inside the file, so the block cannot end early."""
    longest = max((len(run) for run in re.findall(r"`{3,}", content)), default=2)
    return "`" * (longest + 1)


def file_block(path: str, content: str, note: str = "") -> str:
    """How one file (or, with a ``note``, an excerpt) appears in the prompt; its byte length is what the budget counts."""
    fence = _fence_for(content)
    body = content if content.endswith("\n") or not content else content + "\n"
    lang = LANGUAGES.get(_suffix(path), "")
    return f"\n### {path}{note}\n{fence}{lang}\n{body}{fence}\n"


def render_context(ctx: RepoContext) -> str:
    """The prompt text: the map, then each chosen file in a fenced block under its path, then the excerpts."""
    return (
        ctx.map_text
        + "".join(file_block(path, content) for path, content in ctx.files.items())
        + "".join(file_block(path, body, EXCERPT_NOTE) for path, body in ctx.excerpts.items())
    )


def _name(path: str) -> str:
    """The last component of a '/'-separated path (pathlib is too slow for 10k paths)."""
    return path.rsplit("/", 1)[-1]


def _suffix(path: str) -> str:
    """The lowercased extension, '' for none or for dot-files such as '.env'."""
    name = _name(path)
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _is_secret(path: str) -> bool:
    """Whether the name or the path looks like a file that holds credentials (``.aws/credentials``, ``id_ed25519``)."""
    return _SECRET.fullmatch(path.lower()) is not None or secret_scan.path_rule(path) is not None


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


def _git_files(root: Path, *paths: str) -> list[str] | None:
    """Tracked paths (``git ls-files``), limited to ``paths`` when given; None when ``root`` is in no git checkout.

    A path that cannot be written into the prompt as it is (not UTF-8, or holding a control
    character: see :func:`~automation.core.textfiles.writable_path`) is left out, as if untracked.

    Raises GitError when git is there but fails (e.g. "dubious ownership"): walking the tree
    instead would send untracked files, such as the credentials an Actions step wrote.
    """
    try:
        done = subprocess.run(["git", "ls-files", "--cached", "-z", "--", *paths], cwd=root, capture_output=True, check=False)
    except OSError as error:
        raise GitError(f"git ls-files failed in {root}: {error}") from error
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        if "not a git repository" in detail:
            return None
        first = detail.splitlines()[0] if detail else f"exit {done.returncode}"
        raise GitError(f"git ls-files failed in {root}: {first}")
    return sorted(path for path in {os.fsdecode(raw) for raw in done.stdout.split(b"\0") if raw} if writable_path(path))


def _list_files(root: Path) -> list[str]:
    """The repository's own files: tracked ones in a git checkout, else (no git at all) a plain walk; only writable paths."""
    tracked = _git_files(root)
    if tracked is not None:
        return tracked
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name != ".git"]
        rel = Path(directory).relative_to(root)
        found.extend(path for path in ((rel / name).as_posix() for name in files) if writable_path(path))
    return sorted(found)


def is_sendable(root: Path, path: str, exclude: Sequence[str] = (), *, max_bytes: int = MAX_FILE_BYTES) -> bool:
    """Whether one file named later (e.g. by the analysis) may be sent, by the same rules as the map.

    The path must be a plain relative path (writable into text: no control character) to a regular
    text file inside ``root`` that git tracks; the ledger, secrets, ``exclude``, binaries and files
    over the size limit never are.
    """
    pure = PurePosixPath(path)
    if not path or "\\" in path or not writable_path(path) or pure.is_absolute():
        return False
    if any(part in ("..", ".git") for part in pure.parts) or _is_private(pure.as_posix(), exclude):
        return False
    target = Path(root) / pure
    try:
        info = target.lstat()
        inside = target.resolve().is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False
    if not inside or not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        return False
    if pure.suffix.lower() in BINARY_SUFFIXES:
        return False
    text = _read_text(target, max_bytes)
    if text is None or secret_scan.scan(text, pure.as_posix()):  # read whole, it would go whole: withheld
        return False
    tracked = _git_files(Path(root), pure.as_posix())
    return tracked is None or pure.as_posix() in tracked


def _stem(word: str) -> str:
    """A plural's singular, crudely ('proxies' -> 'proxy', 'redirects' -> 'redirect'), so both match."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _root(term: str) -> str:
    """What every form of a lowercase term holds, as :func:`_stem` reads it: 'proxy' -> 'prox' (for 'proxies'), 'key' as it is."""
    return term[:-1] if term.endswith("y") and len(term) > 3 else term


def _pieces(word: str) -> list[str]:
    """One run of letters and digits as :meth:`_Words.split` cuts it."""
    pieces = [_stem(piece.lower()) for piece in _CAMEL.findall(word)]
    if not word.isalpha() and not word.isdigit():
        pieces.append(word.lower())
    return pieces


class _Words:
    """Lowercase, singular sub-words of identifiers ('buildContexts_v2' -> build, context, v, 2).

    Counting works on distinct words with set operations, and looks at a word's sub-words
    only the first time it is seen in a build: on a 2,000-file repository that is most of
    the time saved.
    """

    def __init__(self, keep: set[str] | None = None) -> None:
        self.keep = keep or set()
        self._seen: set[bytes] = set()
        self._hits: dict[bytes, tuple[str, ...]] = {}  # words holding a kept sub-word -> those sub-words
        # a word none of the kept words' roots is in holds none of them: one search, not a split (most new words)
        roots = sorted({_root(word) for word in self.keep}, key=len, reverse=True)
        self._may_hold = re.compile("|".join(map(re.escape, roots)).encode("ascii")) if roots else None

    def split(self, text: str) -> list[str]:
        """Each word's camel/snake pieces, and a word mixing letters and digits whole as well ('i18n', 'utf8', 'Python12')."""
        return [piece for word in _ALNUM.findall(text) for piece in _pieces(word)]

    def counts(self, text: str) -> Counter[str]:
        """How often each kept sub-word occurs in ``text``.

        Words are the runs of ASCII letters and digits (as ``_ALNUM`` finds them), cut with
        ``bytes.translate`` and ``split``: three times faster than the regex on a large repository.
        """
        words = Counter(text.encode("utf-8", "replace").translate(_ALNUM_BYTES).split())
        new = words.keys() - self._seen
        self._seen |= new
        for word in new:
            if self._may_hold is None or not self._may_hold.search(word.lower()):
                continue
            hits = tuple(piece for piece in _pieces(word.decode("ascii")) if piece in self.keep)
            if hits:
                self._hits[word] = hits
        kept: Counter[str] = Counter()
        for word in words.keys() & self._hits.keys():
            for hit in self._hits[word]:
                kept[hit] += words[word]
        return kept


def _task_tokens(task: str) -> list[tuple[str, str]]:
    """(raw, bare) tokens of the task split on whitespace, the bare one without surrounding quotes and punctuation: linear in its length."""
    pairs = ((raw, raw.strip(_TASK_EDGE).rstrip(".")) for raw in task.split())
    return [(raw, token) for raw, token in pairs if token]


def _task_terms(task: str) -> tuple[list[tuple[str, ...]], set[str], set[str]]:
    """(paths or file names mentioned, names, query words) of the task, lowercased.

    Each mention is its readings, best first: as written, then, for a dotted Python name, the
    modules it may be written from, longest first ('pytest.DoctestItem' -> pytest/doctestitem.py,
    pytest/doctestitem/__init__.py, pytest.py, pytest/__init__.py): an attribute lives in the
    longest that exists. Names are identifiers (``prepare_cookies``, ``HTTPError``) and
    hyphenated names such as a linter's message (``used-before-assignment``: two hyphens, or
    one inside quotes or brackets).
    """
    mentions: list[tuple[str, ...]] = []
    identifiers: set[str] = set()
    for raw, token in _task_tokens(task):
        modules = []
        if "/" in token or "." in token.strip("."):
            mention = token.strip("./").lower()
            modules = _modules(mention)
            mentions.append((mention, *modules))
        # `name`, ``.name``: one word written as code; so is every part of a dotted name (``Metafunc.parametrize``)
        code = bool(modules) or (
            raw.startswith("`") and raw.rstrip(",;:!?.)]").endswith("`") and _WORD.fullmatch(token.strip(".")) is not None
        )
        called = set(_CALLED.findall(raw))  # next(), .format(
        for name in _WORD.findall(token):
            if (
                "_" in name.strip("_") or re.search(r"[a-z][A-Z]|[A-Z]{2}[a-z]", name) or _DUNDER.fullmatch(name)
                or (code or name in called) and len(name) >= 3 and not keyword.iskeyword(name)
            ):
                identifiers.add(name.lower())
        if _HYPHENATED.fullmatch(token) and (token.count("-") >= 2 or raw[0] in _TASK_EDGE):
            identifiers.add(token.lower())
    query = {word for word in _Words().split(task) if len(word) >= 2 and word not in STOPWORDS and not word.isdigit()}
    return mentions, identifiers, query


def _task_area(task: str) -> list[str]:
    """The parts of the area a task's subject starts with, lowercased ('ignore/types: add dts' -> ignore, types); [] for none.

    Many projects (Go, Rust, git, the Linux kernel) start a subject with the package, crate or
    folder it changes, others with a conventional commit's scope ('fix(ssr): ...' -> ssr); a
    conventional-commit type alone ('fix: ...') says what kind of change, not where.
    """
    match = _AREA.match(task.strip())
    area = (match.group(1) or match.group(2)).lower() if match else ""
    if area in COMMIT_TYPES:
        return []
    return [part for part in area.split("/") if part]


def _favour_area(entries: list[_Entry], area: list[str]) -> None:
    """Multiply by AREA_WEIGHT the (final) score of the files in the task's area, and set their ``entry.area``.

    A file is in it when each part of the area is a folder of its path, its name without the
    suffix, or a word of either ('types' is in 'crates/ignore/src/default_types.rs', 'util' in
    'tokio-util/'). An area whose parts no file holds all of is read from its first parts
    ('ignore/doc': 'ignore'). A weight, not a rank: the area is where most such commits change
    code, not all ('net: fix use-after-free in slab compaction' changes 'util/slab.rs').
    """
    parts = [(entry, _path_parts(entry.path)) for entry in entries] if area else []
    for depth in range(len(area), 0, -1):
        found = [entry for entry, held in parts if set(area[:depth]) <= held]
        if found:
            for entry in found:
                entry.area = "/".join(area[:depth])
                entry.score *= AREA_WEIGHT
            return


def _path_parts(path: str) -> set[str]:
    """'crates/ignore/src/default_types.rs' -> crates, ignore, src, default_types, default, types."""
    *folders, name = path.lower().split("/")
    stem = name.split(".", 1)[0]
    return {piece for part in (*folders, stem) for piece in (part, *re.split(r"[-_.]", part))}


def _modules(mention: str) -> list[str]:
    """The Python modules a dotted name may be written from, longest first; none for a file name ('theme.toml')."""
    if not _DOTTED.fullmatch(mention) or _suffix(mention) in LANGUAGES.keys() | PROSE_SUFFIXES | BINARY_SUFFIXES:
        return []
    parts = mention.split(".")
    modules = ["/".join(parts[:depth]) for depth in range(len(parts), 0, -1)]
    return [module + tail for module in modules for tail in (".py", "/__init__.py")]


def _name_files(entries: list[_Entry], mentions: list[tuple[str, ...]], names: set[str]) -> None:
    """Set ``entry.named`` of the files the task names: by path or a tail of it ('sessions.py', 'requests/sessions.py'),
    or by a snake_case name that is one source file's name without its suffix ('Fix tsan problem in env_test' -> util/env_test.cc;
    not a setting that names a test's data, `collections_dir` -> features/collections_dir.feature, nor, when the task is not
    about tests, a test but by a name saying so: 'Fix autodoc_type_aliases when ...' -> tests/roots/.../autodoc_type_aliases.py).

    A mention names the files its first reading that matches any matches (see
    :func:`_task_terms`). A file name many files share ('conftest.py', '__init__.py',
    'package.json') says which only when at most NAMED_FILES of them are not tests or docs put
    after the source, or when it is the whole path: else it names none, and the score decides.
    """
    stems: dict[str, list[_Entry]] = {name: [] for name in names if "_" in name.strip("_")}
    for entry in entries if stems else []:
        stem = _name(entry.path).split(".", 1)[0].lower()
        if stem in stems and _suffix(entry.path) in CODE_SUFFIXES and (not entry.demoted or "test" in stem):
            stems[stem].append(entry)
    for found in stems.values():
        if len(found) == 1:
            found[0].named = True
    if not mentions:
        return
    tails: dict[str, list[_Entry]] = {}
    for entry in entries:
        lowered = entry.path.lower()
        for tail in [lowered] + [lowered[index + 1 :] for index, char in enumerate(lowered) if char == "/"]:
            tails.setdefault(tail, []).append(entry)
    for readings in mentions:
        reading = next((reading for reading in readings if reading in tails), "")
        found = tails.get(reading, [])
        kept = [entry for entry in found if not entry.demoted] if len(found) > NAMED_FILES else found
        for entry in (kept if len(kept) <= NAMED_FILES else []) + [entry for entry in found if entry.path.lower() == reading]:
            entry.named = True


def _is_test(path: str) -> bool:
    parts = path.lower().split("/")
    name = parts[-1]
    return (
        any(part in TEST_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name == "conftest.py"
        or any(marker in name for marker in ("_test.", ".test.", ".spec.", "_spec."))
    )


def _is_doc(path: str) -> bool:
    parts = path.lower().split("/")
    return (
        any(part in DOC_DIRS for part in parts[:-1])
        or _suffix(path) in PROSE_SUFFIXES
        or (parts[-1].startswith(DOC_NAMES) and _suffix(path) not in CODE_SUFFIXES)  # not license_gpl.go, history.py
    )


def _is_data(path: str) -> bool:
    parts = path.lower().split("/")
    return any(part in DATA_DIRS for part in parts[:-1]) or parts[-1].endswith(DATA_SUFFIXES) or parts[-1] in DATA_NAMES


def _demoted_kinds(task: str) -> tuple[bool, bool, bool]:
    """(demote tests, docs, data): each unless the task is about them ('add a test', 'fix the docs', 'translations').

    Tests and docs count only when one of the task's first :data:`SUBJECT_WORDS` words names
    them ('Add tests for ...', 'Test that ...', 'Fix the docs ...'): said later, they describe
    the change ('... used as an `if` test', '... a typo in docs'), which is to source.
    """
    split = {piece.lower() for piece in _CAMEL.findall(task)}
    lead = {piece.lower() for word in _ALNUM.findall(task)[:SUBJECT_WORDS] for piece in _CAMEL.findall(word)}
    about_tests = any(word.startswith("test") for word in lead)
    about_docs = any(word.startswith(("doc", "readme", "changelog", "example", "tutorial")) and word != "docstring" for word in lead)
    about_data = any(word.startswith(("translat", "locale", "i18n", "l10n", "gettext", "lock", "depend", "svg", "minif")) for word in split)
    return not about_tests, not about_docs, not about_data


def _definitions(path: str, text: str) -> list[tuple[str, str, str]]:
    """(indentation, kind, name) of every definition of a source file; a regex, not a parser, for speed.

    Other languages' indentation is reported as '', so all their definitions make the outline.
    """
    suffix = _suffix(path)
    if suffix in (".py", ".pyi"):
        return _PY_DEFINITION.findall(text)
    if suffix not in CODE_SUFFIXES:
        return []
    if path.endswith(excerpts.C_FAMILY):  # functions have no keyword; 'struct stat st;' declares a variable, no type
        types = [(found.start(), found.group(1), found.group(2)) for found in _C_TYPE.finditer("\n" + text)]
        return [("", kind, name) for _, kind, name in sorted(types + [(at, "function", name) for at, name in excerpts.c_functions(text)])]
    return [("", kind, name) for kind, name in excerpts.definitions(text)]


def _outline_text(outline: list[tuple[str, str]]) -> str:
    """The outline as one compact map fragment, capped per file."""
    names = [f"{kind} {name}" for kind, name in outline]
    extra = len(names) - OUTLINE_NAMES_PER_FILE
    return ", ".join(names[:OUTLINE_NAMES_PER_FILE]) + (f", …+{extra}" if extra > 0 else "")


def _read_text(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """The file as text (its first ``max_bytes`` + 1), or None when it looks binary (NUL in the first 8 KiB, or not UTF-8)."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
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


def _entry_definitions(entry: _Entry) -> list[tuple[str, str, str]]:
    """The entry's :func:`_definitions`, read from its text the first time they are asked for."""
    if entry.definitions is None:
        entry.definitions = _definitions(entry.path, entry.text or "")
    return entry.definitions


def _outline(entry: _Entry) -> list[tuple[str, str]]:
    """(kind, name) of the top-level definitions (every definition outside Python)."""
    return [(kind, name) for indent, kind, name in _entry_definitions(entry) if not indent]


def _folder(path: str) -> str:
    """'a/b/c.py' -> 'a/b/', '' at the top."""
    return path[: path.rfind("/") + 1]


def _map_line(entry: _Entry, with_outline: bool) -> str:
    """A file's map line, under its folder's line (indented), or unindented at the top."""
    line = f"{'  ' if '/' in entry.path else ''}{_name(entry.path)} ({_human_size(entry.size)})"
    outline = _outline(entry) if with_outline else []
    if outline:
        line += f": {_outline_text(outline)}"
    return line + "\n"


def _collect(root: Path, exclude: Sequence[str]) -> tuple[list[_Entry], list[str]]:
    """Regular tracked files that may appear in the map, and the private paths held back by name."""
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
            continue  # tracked but deleted from the working tree
        if stat.S_ISREG(info.st_mode):  # not symlinks (which may point outside), submodules, sockets
            entries.append(_Entry(path=path, size=info.st_size))
    return entries, private


def _bm25(entries: list[_Entry]) -> dict[str, float]:
    """Okapi BM25 of the task's terms over the entries' weighted counts, into ``entry.score``; each term's idf.

    idf = ln(1 + (N - n + 0.5) / (n + 0.5)) (Lucene's, never negative); tf saturates with k1
    and is normalised by length with b. Only the query's words are counted, which is what
    keeps every file of a large repository scorable (rank_bm25, the benchmark's reference,
    tokenises every word of every file in Python: seconds on 2,000 files).
    """
    if not entries:
        return {}
    average = sum(entry.length for entry in entries) / len(entries) or 1.0
    idf = excerpts.idf_of(Counter(word for entry in entries for word in entry.counts), len(entries))
    for entry in entries:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * entry.length / average)
        entry.score = sum(idf[word] * tf * (BM25_K1 + 1) / (tf + norm) for word, tf in entry.counts.items())
    return idf


class _Terms:
    """What the task gives to match: paths it mentions, names, and words (see :func:`_task_terms`)."""

    def __init__(self, task: str) -> None:
        self.mentions, names, query = _task_terms(task)
        self.area = _task_area(task)
        self.names = names | {_stem(name) for name in names}  # 'AttributeErrors' finds AttributeError
        self.words = _Words(query)
        # Lowercased text holding none of these holds none of the task's words in any case or plural.
        self.roots = {_root(term) for term in query | self.names}

    def counts(self, text: str, lowered: str = "") -> Counter[str]:
        """How often each word of the task occurs in ``text``, and each name (under NAME_KEY + name, weighted)."""
        counts = self.words.counts(text)
        lowered = lowered or text.lower()
        for name in self.names:
            if name in lowered:
                counts[NAME_KEY + name] = NAME_WEIGHT * lowered.count(name)
        return counts


@dataclass(frozen=True)
class _Ranked:
    """What ranking found: the paths never sent whole (binary, unreadable, or over MAX_FILE_BYTES: an excerpt at most), the task's terms, each term's idf."""

    unsendable: set[str]
    terms: _Terms
    idf: dict[str, float]


def _rank(root: Path, entries: list[_Entry], task: str, located: Sequence[str] = ()) -> _Ranked:
    """Read and score every sendable entry, then sort ``entries`` best first (``located``: a localisation call's files, see Locations).
    """
    terms = _Terms(task)
    words = terms.words
    demote_tests, demote_docs, demote_data = _demoted_kinds(task)
    unsendable: set[str] = set()
    for entry in entries:
        entry.demoted = (
            (demote_tests and _is_test(entry.path)) or (demote_docs and _is_doc(entry.path)) or (demote_data and _is_data(entry.path))
        )
        path_counts = words.counts(entry.path)
        if entry.size > MAX_FILE_BYTES:
            unsendable.add(entry.path)  # never whole; read (below) for an excerpt when not too large
        if entry.size > EXCERPT_MAX_BYTES or _suffix(entry.path) in BINARY_SUFFIXES:
            unsendable.add(entry.path)
        else:
            try:
                entry.text = _read_text(os.path.join(root, entry.path), EXCERPT_MAX_BYTES)
            except OSError:
                entry.text = None
            if entry.text is None:
                unsendable.add(entry.path)
        text = entry.text or ""
        entry.length = len(text) + PATH_WEIGHT * len(entry.path)  # characters: BM25 needs only lengths relative to the mean
        lowered = text.lower()
        content_counts: Counter[str] = Counter()
        defined_counts: Counter[str] = Counter()
        if any(root in lowered for root in terms.roots):  # else read but not tokenised (most files, for most tasks)
            definitions = _entry_definitions(entry)
            entry.defines = ",".join(dict.fromkeys(name for _, _, name in definitions if name.lower() in terms.names))
            content_counts = terms.counts(text, lowered)
            defined_counts = words.counts(" ".join(name for _, _, name in definitions))
        counts: Counter[str] = Counter(content_counts)
        for word, count in path_counts.items():
            counts[word] += PATH_WEIGHT * count
        for word, count in defined_counts.items():
            counts[word] += DEFINITION_WEIGHT * count
        entry.counts = dict(counts)
    _name_files(entries, terms.mentions, terms.names)
    idf = _bm25(entries)
    _pair_tests(entries)
    _keep_specific_definitions(entries)
    _hold_rare_names(entries)
    _favour_area(entries, terms.area)
    place = {path: at for at, path in enumerate(located)}
    for entry in entries:
        entry.located = place.get(entry.path, -1)
    entries.sort(key=_rank_key)
    return _Ranked(unsendable, terms, idf)


def _module_keys(path: str) -> list[str]:
    """The names a test may give a source module: 'sphinx/domains/c.py' -> c, domain_c, sphinx_domain_c (plurals singular)."""
    parts = [_singular_key(part) for part in path.lower().rsplit(".", 1)[0].split("/")]
    if parts[-1] == "__init__":
        parts.pop()
    return ["_".join(parts[-depth:]) for depth in range(1, min(3, len(parts)) + 1)]


def _singular_key(name: str) -> str:
    """'domains_c' -> 'domain_c': a test named after a module may say its folder in the singular, or the other way round."""
    return "_".join(_stem(piece) for piece in name.split("_"))


def _test_keys(path: str) -> list[str]:
    """The modules a test file may be named after, longest first: 'tests/test_build_linkcheck.py' -> build_linkcheck, linkcheck;
    'JsonReaderTest.java' -> jsonreader."""
    stem = _CAMEL_TEST_AFFIX.sub("", _name(path).rsplit(".", 1)[0])
    pieces = _singular_key(_TEST_AFFIX.sub("", stem.lower())).split("_")
    return ["_".join(pieces[start:]) for start in range(len(pieces)) if pieces[start]]


def _pair_tests(entries: list[_Entry]) -> None:
    """A source module gains PAIR_SHARE of the best score of the tests named after it.

    A test holds the words of the behaviour it checks (the bug's symptom, the option's name),
    which its module may not. The test's longest name that names a module counts ('build_linkcheck'
    for no module, then 'linkcheck'); one naming more than PAIR_SOURCES modules ('utils') pairs none.
    Only the end of its name naming the module is weaker evidence ('test_detect_recursive_dependency_error'
    is hardly about 'error.py'): the module gains TAIL_SHARE of that share.
    """
    sources: dict[str, list[_Entry]] = {}
    for entry in entries:
        if _suffix(entry.path) in LANGUAGES and _suffix(entry.path) not in PROSE_SUFFIXES and not _is_test(entry.path):
            for key in _module_keys(entry.path):
                sources.setdefault(key, []).append(entry)
    bonus: dict[str, tuple[float, str]] = {}
    for test in entries:
        if test.score > 0 and _is_test(test.path):
            keys = _test_keys(test.path)
            key = next((key for key in keys if key in sources), "")
            paired = sources.get(key, [])
            share = PAIR_SHARE * (1.0 if [key] == keys[:1] else TAIL_SHARE)
            for entry in paired if len(paired) <= PAIR_SOURCES else []:
                if share * test.score > bonus.get(entry.path, (0.0, ""))[0]:
                    bonus[entry.path] = (share * test.score, test.path)
    for entry in entries:
        if entry.path in bonus:
            entry.score += bonus[entry.path][0]
            entry.tested_by = bonus[entry.path][1]


def _keep_specific_definitions(entries: list[_Entry]) -> None:
    """Keep in ``entry.defines`` the first name the task gives that at most DEFINERS files define.

    A name defined in one or two files points at them (``HTTPError``); one every checker or
    plugin defines (``format``, ``visit_call``) points at none, and is left to the score.
    """
    definers = Counter(name.lower() for entry in entries for name in filter(None, entry.defines.split(",")))
    for entry in entries:
        entry.defines = next((name for name in entry.defines.split(",") if name and definers[name.lower()] <= DEFINERS), "")


def _hold_rare_names(entries: list[_Entry]) -> None:
    """Set ``entry.holds`` of the files holding a hyphenated name the task gives, when at most NAME_HOLDERS do.

    A linter's message (``no-self-argument``) or an option (``--ignore-paths``) is defined by no
    ``def`` or ``class``: the few source files spelling it out are where it lives. They come
    first, each with its rank's chance (not a definer's certainty). Files put after the source
    (tests, docs) do not count, so a message's many test inputs do not hide its checker.
    """
    defined = {name.lower() for entry in entries for name in entry.defines.split(",") if name}
    holders: dict[str, list[_Entry]] = {}
    for entry in entries:
        if not entry.demoted and _suffix(entry.path) in CODE_SUFFIXES:
            for key in entry.counts:
                if key.startswith(NAME_KEY) and "-" in key and key[len(NAME_KEY):] not in defined:
                    holders.setdefault(key[len(NAME_KEY):], []).append(entry)
    for name, found in sorted(holders.items()):
        for entry in found if len(found) <= NAME_HOLDERS else []:
            entry.holds = entry.holds or name


def _rank_key(entry: _Entry) -> tuple[bool, bool, bool, int, float, bool, int, str]:
    """Best first; among equal scores (a task sharing no word with the code) source code before configuration, as commits go."""
    return (not entry.named, entry.demoted, not (entry.defines or entry.holds), entry.located if entry.located >= 0 else sys.maxsize,
            -entry.score, _suffix(entry.path) not in CODE_SUFFIXES, entry.path.count("/"), entry.path)


def _reason(entry: _Entry) -> str:
    if entry.named:
        return "named in the task"
    if entry.defines:
        return f"defines {entry.defines}"
    if entry.located >= 0:
        return "located by the localisation call"
    if entry.holds:
        return f"holds {entry.holds}"
    area = f", in the task's area {entry.area!r}" if entry.area else ""
    if entry.score > 0:
        return f"score {entry.score:.3g}" + (f", with its test {entry.tested_by}" if entry.tested_by else "") + area
    return "room left" + area


def _plain_map(entries: list[_Entry], budget: int) -> list[_Entry]:
    """The entries (best first) whose plain map line, and their folder's line, fit in ``budget`` bytes with the header and trailer."""
    total = len(entries)
    room = budget - len(_map_header(total).encode("utf-8")) - len(_map_trailer(total, 0).encode("utf-8"))
    listed: list[_Entry] = []
    folders: set[str] = {""}
    for entry in entries:
        folder = _folder(entry.path)
        size = len(_map_line(entry, False).encode("utf-8")) + (0 if folder in folders else len(folder.encode("utf-8")) + 1)
        if size <= room:
            listed.append(entry)
            folders.add(folder)
            room -= size
    return listed if room >= 0 else []


def _map_body(lines: dict[str, str]) -> str:
    """The map's lines by folder: top-level files first, then each folder's line and its files' lines."""
    parts: list[str] = []
    current = ""
    for path in sorted(lines, key=lambda path: (_folder(path), path)):
        if _folder(path) != current:
            current = _folder(path)
            parts.append(current + "\n")
        parts.append(lines[path])
    return "".join(parts)


def _map_header(total: int) -> str:
    return f"## Repository map ({total} files)\n"


def _map_trailer(total: int, listed: int) -> str:
    return f"… {total - listed} more files\n" if listed < total else ""


def _chance(entry: _Entry, rank: int, best: float) -> float:
    """A file's chance of holding the change relative to the best file's: falling with its rank and its score's distance to the best."""
    if entry.named or entry.defines or entry.located >= 0:
        return 1.0
    return (rank + 1) ** -RANK_DECAY * math.exp(SCORE_SLOPE * (min(entry.score / best, 1.0) - 1) if best > 0 else 0.0)


def _candidate(entry: _Entry, rank: int, ranked: _Ranked, best: float) -> excerpts.Candidate:
    """A ranked file cut into units scored against the task, with the bytes its block costs."""
    text = entry.text or ""
    lines = excerpts.split_lines(text)
    fence = _fence_for(text)
    gap_bytes = len(excerpts.gap(len(lines), len(lines)).encode("utf-8"))
    relevant = entry.named or entry.defines or entry.holds or entry.score > 0  # else a part is as good as any: whole or nothing
    whole = len(file_block(entry.path, text).encode("utf-8")) if entry.size <= MAX_FILE_BYTES else sys.maxsize  # too large: parts only
    candidate = excerpts.Candidate(
        path=entry.path, chance=_chance(entry, rank, best), lines=lines, units=excerpts.cut_units(entry.path, lines, whole=not relevant),
        whole_bytes=whole,
        excerpt_bytes=len(file_block(entry.path, "", EXCERPT_NOTE).encode("utf-8")) + 2 * len(fence) + gap_bytes + 1,
        gap_bytes=gap_bytes,
    )
    excerpts.score_units(candidate, ranked.terms.counts, ranked.idf)
    return candidate


def build_context(
    root: Path, task: str, max_tokens: int, exclude: Sequence[str] = (), locations: Locations | None = None,
) -> RepoContext:
    """The map and the files most relevant to ``task``; ``tokens`` of the rendered text never exceed ``max_tokens``.

    ``locations``, from a localisation call, moves its files up and sends the regions defining
    its symbols before any other region. Raises GitError when ``root`` is a git checkout that git cannot list.
    """
    locations = locations or Locations()
    root = Path(root)
    cap = max(max_tokens, 0) * BYTES_PER_TOKEN
    entries, private = _collect(root, exclude)
    ranked = _rank(root, entries, task, locations.ranked())
    total = len(entries)
    header, trailer_reserve = _map_header(total), len(_map_trailer(total, 0).encode("utf-8"))
    if len(header.encode("utf-8")) + trailer_reserve > int(cap * MAP_SHARE):
        header = ""
    listed = _plain_map(entries, int(cap * MAP_SHARE)) if header else []
    lines = {entry.path: _map_line(entry, False) for entry in listed}
    room = cap - len(header.encode("utf-8")) - len(_map_trailer(total, len(listed)).encode("utf-8"))
    room -= len(_map_body(lines).encode("utf-8"))
    sendable = [entry for entry in entries if entry.text is not None]
    best = max((entry.score for entry in sendable if not entry.demoted), default=0.0)
    candidates = [_candidate(entry, rank, ranked, best) for rank, entry in enumerate(sendable[:CANDIDATES])]
    room = excerpts.defining(candidates, locations.symbols, room)  # what the localisation call named, first
    first, reserve = int(room * excerpts.REGION_SHARE), int(room * excerpts.LINK_SHARE)  # kept out of the files' competition
    left = excerpts.pack(candidates, excerpts.regions(candidates, first) + room - first - reserve)
    excerpts.pack(candidates, excerpts.link(candidates, left + reserve))
    files: dict[str, str] = {}
    parts: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for candidate, entry in zip(candidates, sendable):
        chosen = excerpts.chosen_lines(candidate) if candidate.chosen else set()
        if chosen is None and entry.path in ranked.unsendable:  # every part of a file too large to go whole
            chosen = set(range(len(candidate.lines)))
        if chosen is None:
            files[entry.path], reasons[entry.path] = entry.text or "", _reason(entry)
            room -= len(file_block(entry.path, entry.text or "").encode("utf-8"))
        elif chosen:
            parts[entry.path], reasons[entry.path] = excerpts.render(candidate.lines, chosen), f"{_reason(entry)}; excerpt"
            room -= len(file_block(entry.path, parts[entry.path], EXCERPT_NOTE).encode("utf-8"))
    for entry in sendable[CANDIDATES:]:  # room left: whole files, best first
        if entry.size > room or entry.path in ranked.unsendable:
            continue  # its block is larger than the file: not worth rendering to find out
        size = len(file_block(entry.path, entry.text or "").encode("utf-8"))
        if size <= room:
            files[entry.path], reasons[entry.path] = entry.text or "", _reason(entry)
            room -= size
    for entry in listed:  # the room left shows what the files not sent define
        if entry.path not in files and entry.path not in parts and entry.text:
            line = _map_line(entry, True)
            extra = len(line.encode("utf-8")) - len(lines[entry.path].encode("utf-8"))
            if 0 < extra <= room:
                lines[entry.path] = line
                room -= extra
    map_text = header + _map_body(lines) + (_map_trailer(total, len(listed)) if header else "")
    skipped = sorted(private + [path for path in ranked.unsendable if path not in parts])
    ctx = RepoContext(map_text=map_text, files=files, tokens=0, skipped=skipped, reasons=reasons, excerpts=parts,
                      masked=_mask_secrets(entries, files, parts))
    return replace(ctx, tokens=estimate_tokens(render_context(ctx)))


@dataclass(frozen=True)
class Survey:
    """A repository ranked for a task, for a localisation call: ``total`` files; the sendable ones
    best first as (path, bytes, text, definitions as ``(indentation, kind, name)``); and the
    plain map of the best ones within the bytes asked (folder lines, then names and sizes), with the paths it lists."""

    total: int
    files: list[tuple[str, int, str, list[tuple[str, str, str]]]]
    map_text: str
    listed: tuple[str, ...]


def survey(root: Path, task: str, map_bytes: int, exclude: Sequence[str] = (), candidates: int = CANDIDATES) -> Survey:
    """Rank the repository for ``task`` as :func:`build_context` does; the first ``candidates`` files with their definitions.

    Raises GitError when ``root`` is a git checkout that git cannot list.
    """
    entries, _ = _collect(Path(root), exclude)
    _rank(Path(root), entries, task)
    sendable = [entry for entry in entries if entry.text is not None][:candidates]
    listed = _plain_map(entries, map_bytes)
    return Survey(
        total=len(entries),
        files=[(entry.path, entry.size, entry.text or "", _entry_definitions(entry)) for entry in sendable],
        map_text=_map_body({entry.path: _map_line(entry, False) for entry in listed}),
        listed=tuple(entry.path for entry in listed),
    )


def _mask_secrets(entries: list[_Entry], files: dict[str, str], parts: dict[str, str]) -> dict[str, str]:
    """Scan each file chosen (whole, even when only an excerpt goes) and mask its secrets in
    place, in ``files`` and ``parts`` (the excerpts); returns what was masked per path. Masks are as long as
    what they hide, so the rendered context keeps the size it was measured at."""
    masked: dict[str, str] = {}
    for entry in entries:
        if entry.text is None or (entry.path not in files and entry.path not in parts):
            continue
        found = secret_scan.scan(entry.text, entry.path)
        if found:
            masked[entry.path] = secret_scan.summary(found)
            for chosen in (files, parts):
                if entry.path in chosen:
                    chosen[entry.path] = secret_scan.mask(chosen[entry.path], found, entry.text)
    return masked


def read_sendable(root: Path, path: str) -> str | None:
    """The text of one listed path if it may be sent (not private, binary or too large), else None; for the benchmark."""
    if _is_private(path, ()) or _suffix(path) in BINARY_SUFFIXES:
        return None
    full = Path(root) / path
    if full.is_symlink() or not full.is_file() or full.stat().st_size > MAX_FILE_BYTES:
        return None
    return _read_text(full)


def describe(ctx: RepoContext) -> str:
    """What the dry run shows: one line per file sent (tokens, why), then the files held back by name.

    Names only, never content; the reasons are those of ``ctx.reasons``.
    """
    blocks = [(path, file_block(path, text)) for path, text in ctx.files.items()]
    blocks += [(path, file_block(path, text, EXCERPT_NOTE)) for path, text in ctx.excerpts.items()]
    lines = [f"  {path} ({estimate_tokens(block):,} tokens): {ctx.reasons.get(path, 'sent')}\n" for path, block in blocks]
    lines += [f"  secrets masked in {path} (they look like: {found})\n" for path, found in ctx.masked.items()]
    if ctx.skipped:
        shown = ", ".join(ctx.skipped[:DESCRIBED_SKIPPED]) + (f" and {len(ctx.skipped) - DESCRIBED_SKIPPED} more" if len(ctx.skipped) > DESCRIBED_SKIPPED else "")
        lines.append(f"  not sent (secret-like, excluded, binary or over {MAX_FILE_BYTES // 1000} KB): {shown}\n")
    return "".join(lines)
