"""The code model's edits, checked before anything touches a working tree.

The reply (SEARCH/REPLACE blocks, see ``search_replace``) is untrusted input: its paths could
point into ``.git`` (or one of its aliases on Windows and macOS checkouts), at the workflows
(which hold the secrets), at the ledger that records what we spent, or out of the repository
through ``..`` or a symlink. Each file is checked on its own: unsafe ones are refused and the
rest kept. A block that cannot be placed, or a resulting file that does not parse, is a problem
the model is asked once to repair; the other files' edits are kept meanwhile, so the repair
carries only what went wrong. Every resulting file is checked as a whole, whatever the blocks.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from ..core.errors import UnusableReplyError
from . import search_replace
from .search_replace import Block, Refused

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: TOML files are not checked
    tomllib = None  # type: ignore[assignment]

_DRIVE = re.compile(r"^[A-Za-z]:")
# A Windows 8.3 short name ("GIT~1" is how NTFS may also reach ".git"): six characters, ~, digits.
_SHORT_NAME = re.compile(r"^[^~/]{1,6}~[0-9]+(\.[^.]{0,3})?$")
MAX_NAME_BYTES = 255  # ext4, APFS, NTFS: longer names are refused by the file system
MAX_PATH_BYTES = 1024
REPAIR_MAX_CHARS = 24_000


@dataclass(frozen=True)
class FileEdit:
    """One whole-file result: ``action`` is create, update or delete; ``content`` is empty for a delete."""

    path: str
    action: str
    content: str


@dataclass(frozen=True)
class EditRules:
    """Paths the model may never write (besides ``.git/`` and ``.github/workflows/``), size limits,
    and the secret values (``redact.secret_values(env)``) no file may contain."""

    ledger_path: str = "token_budget.json"
    config_path: str = ".github/ai-orchestration.yml"
    tasks_path: str = "docs/TASKS.md"
    deny: tuple[str, ...] = ()
    max_file_bytes: int = 200_000
    max_files: int = 30
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class EditPlan:
    """The edits that passed every check, and one "path: reason" line per refused file."""

    summary: str
    edits: tuple[FileEdit, ...]
    refused: tuple[str, ...]


def unusable(problems: list[str], headline: str = "") -> UnusableReplyError:
    """One header line (shown in logs) then the first line of every problem (the details go to the repair)."""
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    lines = [problem.splitlines()[0] for problem in problems]
    return UnusableReplyError(f"The code model's reply is unusable ({headline or count}):\n" + "\n".join(lines))


def _show(path: str) -> str:
    """A path as it can be printed on one line, whatever the model put in it."""
    return path if path.isprintable() and path.strip() == path and path else ascii(path)


def _lexical_refusal(path: str) -> str | None:
    """Why a path is not a plain, normalised, relative path the file system accepts (checked before touching the disk)."""
    if "\0" in path:
        return "NUL byte in the path"
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        return "control character in the path"
    if "\\" in path:
        return "backslash in the path; use forward slashes"
    if _DRIVE.match(path):
        return "drive-letter path; paths are relative to the repository root"
    if path.startswith("/"):
        return "absolute path; paths are relative to the repository root"
    parts = path.split("/")
    if ".." in parts:
        return "'..' in the path"
    if any(part in ("", ".") for part in parts):
        return "path is not normalised (empty or '.' component)"
    try:
        encoded = [part.encode("utf-8") for part in parts]
    except UnicodeEncodeError:
        return "path is not valid UTF-8"
    if any(len(part) > MAX_NAME_BYTES for part in encoded):
        return f"a name in the path is longer than {MAX_NAME_BYTES} bytes, which file systems refuse"
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        return f"path is longer than {MAX_PATH_BYTES} bytes"
    return _alias_refusal(parts)


def _alias_refusal(parts: list[str]) -> str | None:
    """Names a Windows or macOS checkout would read as another name (git's is_ntfs_dotgit / is_hfs_dotgit):
    NTFS drops trailing dots and spaces and knows 8.3 short names and ``:stream`` suffixes; HFS+ ignores
    zero-width and direction characters. Such names could reach ``.git`` or the workflows, so none is written."""
    for part in parts:
        invisible = next((char for char in part if unicodedata.category(char) == "Cf"), None)
        if invisible is not None:
            return f"invisible character U+{ord(invisible):04X} in the path (macOS ignores it: it can alias .git)"
        if part.endswith((".", " ")):
            return "a name ends in a dot or space, which Windows drops (so '.git.' is '.git')"
        if ":" in part:
            return "':' in the path (an NTFS alternate data stream on Windows)"
        if _SHORT_NAME.match(part):
            return f"'{part}' reads as a Windows 8.3 short name (GIT~1 is .git)"
    return None


def _denied(path: str, pattern: str) -> bool:
    """Case-insensitive fnmatch of the path or any of its parent directories."""
    path, pattern = path.casefold(), pattern.strip().strip("/").casefold()
    if not pattern:
        return False
    parents = [path[:index] for index, char in enumerate(path) if char == "/"]
    return any(fnmatchcase(candidate, pattern) for candidate in (path, *parents))


def _protected_refusal(path: str, rules: EditRules) -> str | None:
    """Why the bot never lets the model write ``path``; compared case-insensitively for macOS/Windows checkouts."""
    folded = path.casefold()
    parts = folded.split("/")
    if ".git" in parts:
        return "inside .git/"
    if parts[:2] == [".github", "workflows"]:
        return "workflow files are never edited by the bot"
    if folded == rules.ledger_path.casefold():
        return "the budget ledger is written only by the bot"
    if folded == rules.config_path.casefold():
        return "the bot's configuration is not the model's to change"
    if folded == rules.tasks_path.casefold():
        return "the tasks file is ticked by the bot, not edited by the model"
    for pattern in rules.deny:
        if _denied(path, pattern):
            return f"denied by edits.deny ({pattern})"
    return None


def _inside(root: Path, path: str) -> Path | None:
    """``root/path`` with symlinks resolved, or None when that lands outside ``root``."""
    real_root = root.resolve()
    try:
        real = (root / path).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return real if real == real_root or real.is_relative_to(real_root) else None


def _disk_refusal(path: str, root: Path, rules: EditRules) -> str | None:
    """Why the path is unsafe once symlinks are followed, or not a file this tree can hold."""
    try:
        real = _inside(root, path)
        if real is None:
            return "resolves outside the repository (through a symlink)"
        real_rel = real.relative_to(root.resolve()).as_posix()
        if real_rel != path:
            reason = _protected_refusal(real_rel, rules)
            if reason:
                return f"resolves to {real_rel}: {reason}"
        target = root / path
        if target.is_symlink():
            return "is a symbolic link; links are not edited"
        for parent in list(Path(path).parents)[:-1]:
            if (root / parent).exists() and not (root / parent).is_dir():
                return f"{parent.as_posix()} is a file, not a directory"
        if target.is_dir():
            return "is a directory"
    except OSError as error:  # a name the file system refuses (too long, invalid on this OS)
        return f"the file system refuses this path ({error.strerror or type(error).__name__})"
    return None


def path_refusal(path: str, root: Path, rules: EditRules) -> str | None:
    """Why the model may not write ``path`` in ``root``, or None: lexical, alias, protected, then disk checks."""
    return _lexical_refusal(path) or _protected_refusal(path, rules) or _disk_refusal(path, root, rules)


def path_doubt(path: str, known: Callable[[str], bool], rules: EditRules) -> str | None:
    """Why a block's path line names no file (prose, a fence, a word such as "Changes"), or None.

    ``known(path)``: the path exists in the tree or the plan names it. A path the bot refuses anyway
    (inside .git, absolute, ...) is left to ``path_refusal`` when it has a directory part, so the
    refusal says why.
    """
    if search_replace.looks_like_path(path, known):
        return None
    if ("/" in path or "\\" in path) and (_lexical_refusal(path) or _protected_refusal(path, rules)):
        return None
    return (
        f"{_show(path)!r} is not a file path: no such file is in the repository, the plan does not name it, and it has "
        "no file extension (a path with spaces must be one that exists or that the plan names)"
    )


def _content_refusal(content: str, original: str | None, rules: EditRules) -> str | None:
    """Why a resulting file may not be written; an existing file over the size limit may be edited, not grown."""
    if "\0" in content:
        return "content holds a NUL byte; only text files are accepted"
    try:
        size = len(content.encode("utf-8"))
    except UnicodeEncodeError:
        return "content is not valid UTF-8 text (lone surrogate)"
    limit = max(rules.max_file_bytes, len(original.encode("utf-8")) if original else 0)
    if size > limit:
        return f"content is {size:,} bytes, over the {limit:,}-byte limit"
    if any(secret and secret in content for secret in rules.secrets):
        return "content holds a secret value from the environment (an API key, token or webhook)"
    return None


def _python_error(path: str, source: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning (e.g. bad escapes) is not a failure
            compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        return f"Python syntax error at line {error.lineno}: {error.msg}"
    except (RecursionError, MemoryError):
        return "Python source nested too deeply to compile"
    return None


def _json_error(path: str, source: str) -> str | None:
    try:
        json.loads(source)
    except json.JSONDecodeError as error:
        return f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
    except RecursionError:
        return "JSON nested too deeply"
    return None


def _yaml_error(path: str, source: str) -> str | None:
    try:
        list(yaml.safe_load_all(source))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return f"invalid YAML at line {mark.line + 1}: {problem}" if mark else f"invalid YAML: {problem}"
    return None


def _toml_error(path: str, source: str) -> str | None:
    if tomllib is None:
        return None
    try:
        tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        return f"invalid TOML: {error}"
    return None


SYNTAX_CHECKS: dict[str, Callable[[str, str], str | None]] = {
    ".py": _python_error,
    ".json": _json_error,
    ".yml": _yaml_error,
    ".yaml": _yaml_error,
    ".toml": _toml_error,
}


def syntax_error(path: str, text: str) -> str | None:
    """Why ``text`` does not parse as the language of ``path`` (Python, JSON, YAML, TOML), or None."""
    check = SYNTAX_CHECKS.get(Path(path).suffix.lower())
    return check(path, text) if check else None


def _read(root: Path, path: str) -> str | None:
    """The file's current text (None when it does not exist); raises Refused for a file that is not UTF-8 text."""
    target = root / path
    if not target.is_file():
        return None
    try:
        return target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the file is not UTF-8 text; it cannot be edited with SEARCH/REPLACE") from None


def named_in(plan: str, path: str) -> bool:
    """Whether the plan names ``path``: anywhere as a whole path when it has a directory or an extension,
    only in backticks when it is a bare name (so the word "Changes" in the plan names no file)."""
    if "/" not in path and "." not in path:
        return f"`{path}`" in plan
    return re.search(rf"(?<![\w./-]){re.escape(path)}(?![\w/-]|\.\w)", plan) is not None


def _exists(root: Path, path: str) -> bool:
    """Whether ``path`` is in the tree (a file, directory or link); False for a path that is not plain and relative."""
    if _lexical_refusal(path):
        return False
    try:
        return os.path.lexists(root / path)
    except (OSError, ValueError):
        return False


@dataclass
class Draft:
    """The files a reply and its repair change, as they grow: ``accepted`` maps path -> new text (None deletes).

    Blocks are grouped by file; a file is taken whole or not at all in each reply, so a repair
    asks only for the files that went wrong, and the others stay as they were accepted. ``analysis``
    is the plan the code was written from: a new file it names needs no extension, and may hold spaces.
    """

    root: Path
    rules: EditRules
    analysis: str = ""
    summary: str = ""
    originals: dict[str, str | None] = field(default_factory=dict)
    accepted: dict[str, str | None] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)  # files whose blocks the last reply could not apply

    def take(self, reply_text: str) -> list[str]:
        """Apply one reply; return its problems (first line a headline, then details for the repair)."""
        parsed = search_replace.parse(reply_text, self.known)
        self.summary = self.summary or parsed.summary
        problems = list(parsed.problems)
        by_path: dict[str, list[Block]] = {}
        for block in parsed.blocks:
            by_path.setdefault(block.path, []).append(block)
        touched = len(set(by_path) | set(self.accepted))
        if touched > self.rules.max_files:
            return [*problems, f"the reply changes {touched} files; at most {self.rules.max_files} are accepted in one change"]
        unresolved = self.failed - set(by_path)
        spelled = {path.casefold(): path for path in self.accepted}
        for path, blocks in list(by_path.items()):
            doubt = path_doubt(path, self.known, self.rules)
            if doubt:
                problems.append(f"block {blocks[0].number}: {doubt}")
                del by_path[path]
                continue
            twin = spelled.setdefault(path.casefold(), path)
            if twin != path:  # one file on a macOS or Windows checkout
                self.refused[_show(path)] = f"differs from {_show(twin)} only in case"
                continue
            problem = self._take_file(path, blocks)
            self.failed.discard(path)
            if problem:
                problems.append(problem)
                self.failed.add(path)
        problems += [f"{path}: its blocks could not be applied and were not sent again" for path in sorted(unresolved)]
        if not problems and not self.accepted:
            refused = "; ".join(f"{path}: {reason}" for path, reason in self.refused.items())
            problems.append(
                "the reply changes nothing: every edit leaves its file as it was"
                + (f", or was refused ({refused})" if refused else "")
            )
        return problems

    def known(self, path: str) -> bool:
        """Whether ``path`` exists in the tree or the plan names it."""
        return _exists(self.root, path) or named_in(self.analysis, path)

    def _take_file(self, path: str, blocks: list[Block]) -> str | None:
        reason = path_refusal(path, self.root, self.rules)
        if reason:
            self.refused[_show(path)] = reason
            return None
        if path not in self.originals:
            try:
                self.originals[path] = _read(self.root, path)
            except Refused as refusal:
                self.refused[path] = str(refusal)
                return None
        try:
            text = search_replace.apply_blocks(self.accepted.get(path, self.originals[path]), blocks)
        except search_replace.BlockRefused as refusal:
            return f"{path}, {refusal}"
        return self._check_result(path, text)

    def _check_result(self, path: str, text: str | None) -> str | None:
        original = self.originals[path]
        if text == original:  # a no-op: nothing to commit for this file
            self.accepted.pop(path, None)
            return None
        if text is not None:
            reason = _content_refusal(text, original, self.rules)
            if reason:
                self.refused[path] = reason
                return None
            error = syntax_error(path, text)
            if error and (original is None or syntax_error(path, original) is None):
                return f"{path}: after the blocks, {error}"
        self.accepted[path] = text
        self.refused.pop(path, None)
        return None

    def plan(self) -> EditPlan:
        """The accepted files as edits; raises UnusableReplyError when there are none."""
        edits = tuple(
            FileEdit(path, "delete" if text is None else "create" if self.originals[path] is None else "update", text or "")
            for path, text in self.accepted.items()
        )
        refused = tuple(f"{path}: {reason}" for path, reason in self.refused.items())
        if not edits:
            raise unusable(list(refused) or ["the reply changes nothing"], headline="nothing left to change")
        return EditPlan(summary=self.summary, edits=edits, refused=refused)


def repair_prompt(problems: list[str], kept: list[str]) -> str:
    """The one follow-up message: every problem with its details, within REPAIR_MAX_CHARS; not the whole reply."""
    shown: list[str] = []
    size = 0
    for index, problem in enumerate(problems):
        if size + len(problem) > REPAIR_MAX_CHARS:
            problem = problem.splitlines()[0][:500]
            if size + len(problem) > REPAIR_MAX_CHARS:
                shown.append(f"... and {len(problems) - index} more problems")
                break
        shown.append(f"- {problem}")
        size += len(problem)
    kept_line = (
        f"The blocks for these files applied and are kept; do not send them again: {', '.join(kept)}.\n"
        if kept else ""
    )
    return (
        "Part of your previous reply could not be used:\n"
        + "\n".join(shown)
        + "\n\n"
        + kept_line
        + "None of the blocks for a file named above were applied. Send every block for those files again, "
        "as SEARCH/REPLACE blocks: the path alone on a line, then a fence holding <<<<<<< SEARCH, lines copied "
        "exactly from the current file (enough to match one place only), =======, the new lines, and "
        ">>>>>>> REPLACE. An empty SEARCH creates a file; 'DELETE path' alone on a line deletes one. Never write "
        "inside .git/ or .github/workflows/, the budget ledger, the bot's configuration or the tasks file."
    )


def changes(plan: EditPlan) -> dict[str, bytes | None]:
    """The plan as path -> new bytes (None deletes), for committing with git plumbing."""
    return {edit.path: None if edit.action == "delete" else edit.content.encode("utf-8") for edit in plan.edits}
