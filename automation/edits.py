"""The code model's reply, checked before anything touches a working tree.

The model is untrusted input: its paths could point into ``.git``, at the workflows (which
hold the secrets), at the ledger that records what we spent, or out of the repository
through ``..`` or a symlink. Every file is checked on its own; unsafe ones are refused and
the rest kept, but a file that does not even parse makes the whole reply unusable, since
shipping half a change that breaks the build is worse than asking once for a repair.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from .errors import UnusableReplyError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: TOML files are not checked
    tomllib = None  # type: ignore[assignment]

ACTIONS = ("create", "update", "delete")
REPLY_KEYS = {"summary", "files"}
FILE_KEYS = {"path", "action", "content"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_FENCED = re.compile(r"^```[\w-]*\s*\n(?P<body>.*)\n```\s*$", re.DOTALL)


@dataclass(frozen=True)
class FileEdit:
    """One whole-file change; ``content`` is empty for a delete."""

    path: str
    action: str
    content: str


@dataclass(frozen=True)
class EditRules:
    """Paths the model may never write, besides ``.git/`` and ``.github/workflows/``, and size limits."""

    ledger_path: str = "token_budget.json"
    config_path: str = ".github/ai-orchestration.yml"
    tasks_path: str = "docs/TASKS.md"
    deny: tuple[str, ...] = ()
    max_file_bytes: int = 200_000
    max_files: int = 30


@dataclass(frozen=True)
class EditPlan:
    """The edits that passed every check, and one "path: reason" line per refused file."""

    summary: str
    edits: tuple[FileEdit, ...]
    refused: tuple[str, ...]


def _unusable(problems: list[str], headline: str = "") -> UnusableReplyError:
    """One header line (shown in logs) then every problem on its own line (quoted in the repair request)."""
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    return UnusableReplyError(f"The code model's reply is unusable ({headline or count}):\n" + "\n".join(problems))


def _show(path: str) -> str:
    """A path as it can be printed on one line, whatever the model put in it."""
    return path if path.isprintable() and path.strip() == path and path else repr(path)


def _parse(reply_text: str) -> Any:
    text = reply_text.strip()
    fenced = _FENCED.match(text)
    if fenced:  # tolerated: some models wrap JSON in a Markdown fence despite the schema
        text = fenced["body"]
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _unusable([f"the reply is not JSON: {error.msg} at line {error.lineno} column {error.colno}"]) from None
    except RecursionError:
        raise _unusable(["the reply is not usable JSON: nested too deeply"]) from None


def _shape(data: Any, rules: EditRules) -> tuple[str, list[FileEdit]]:
    """The reply as plain edits, or every way in which it is not the contract."""
    if not isinstance(data, dict):
        raise _unusable(['the reply must be a JSON object {"summary": str, "files": [...]}'])
    problems: list[str] = []
    if sorted(set(data) - REPLY_KEYS):
        problems.append(f"unexpected keys in the reply: {', '.join(sorted(map(str, set(data) - REPLY_KEYS)))}")
    summary = data.get("summary")
    if not isinstance(summary, str):
        problems.append('"summary" must be a string')
    files = data.get("files")
    if not isinstance(files, list):
        problems.append('"files" must be a list of {"path", "action", "content"} objects')
        raise _unusable(problems)
    if not files:
        problems.append('"files" is empty: the reply changes nothing')
    if len(files) > rules.max_files:
        problems.append(f'"files" lists {len(files)} files; at most {rules.max_files} are accepted in one change')
    edits: list[FileEdit] = []
    for index, item in enumerate(files):
        where = f"files[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with path, action and content")
            continue
        path, action = item.get("path"), item.get("action")
        content = item.get("content", "" if action == "delete" else None)  # a delete needs no content
        if set(item) - FILE_KEYS:
            problems.append(f"{where}: unexpected keys {', '.join(sorted(map(str, set(item) - FILE_KEYS)))}")
        if not isinstance(path, str) or not path:
            problems.append(f'{where}: "path" must be a non-empty string')
        if action not in ACTIONS:
            problems.append(f'{where}: "action" must be one of {", ".join(ACTIONS)}, not {action!r}')
        if not isinstance(content, str):
            problems.append(f'{where}: "content" must be a string (the whole new file)')
        if isinstance(path, str) and path and action in ACTIONS and isinstance(content, str):
            edits.append(FileEdit(path=path, action=action, content=content if action != "delete" else ""))
    if problems:
        raise _unusable(problems)
    return str(summary), edits


def _lexical_refusal(path: str) -> str | None:
    """Why a path is not a plain, normalised, relative path (checked before touching the disk)."""
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


def _disk_refusal(edit: FileEdit, root: Path, rules: EditRules) -> str | None:
    """Why the path is unsafe once symlinks are followed, or wrong for the action on this tree."""
    real = _inside(root, edit.path)
    if real is None:
        return "resolves outside the repository (through a symlink)"
    real_rel = real.relative_to(root.resolve()).as_posix()
    if real_rel != edit.path:
        reason = _protected_refusal(real_rel, rules)
        if reason:
            return f"resolves to {real_rel}: {reason}"
    target = root / edit.path
    if target.is_symlink():
        return "is a symbolic link; links are not edited"
    for parent in list(Path(edit.path).parents)[:-1]:
        if (root / parent).exists() and not (root / parent).is_dir():
            return f"{parent.as_posix()} is a file, not a directory"
    if target.is_dir():
        return "is a directory"
    exists = target.exists()
    if edit.action == "create" and exists:
        return "create of a file that already exists (use update)"
    if edit.action != "create" and not exists:
        return f"{edit.action} of a file that does not exist (use create)"
    return None


def _content_refusal(edit: FileEdit, rules: EditRules) -> str | None:
    if edit.action == "delete":
        return None
    if "\0" in edit.content:
        return "content holds a NUL byte; only text files are accepted"
    try:
        size = len(edit.content.encode("utf-8"))
    except UnicodeEncodeError:
        return "content is not valid UTF-8 text (lone surrogate)"
    if size > rules.max_file_bytes:
        return f"content is {size:,} bytes, over the {rules.max_file_bytes:,}-byte limit"
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


def _syntax_error(edit: FileEdit) -> str | None:
    if edit.action == "delete":
        return None
    suffix = Path(edit.path).suffix.lower()
    check = SYNTAX_CHECKS.get(suffix)
    return check(edit.path, edit.content) if check else None


def parse_and_check(reply_text: str, root: Path, rules: EditRules) -> EditPlan:
    """The safe edits of a reply, with refused files listed; raises UnusableReplyError naming every problem.

    Unusable: not JSON, not the contract, no files, every file refused, or any file that does
    not parse (Python, JSON, YAML, TOML), so the caller can ask for one repair.
    """
    root = Path(root)
    summary, proposed = _shape(_parse(reply_text), rules)
    seen = Counter(edit.path.casefold() for edit in proposed)
    kept: list[FileEdit] = []
    refused: list[str] = []
    broken: list[str] = []
    for edit in proposed:
        reason = _lexical_refusal(edit.path) or _protected_refusal(edit.path, rules)
        if reason is None and seen[edit.path.casefold()] > 1:
            reason = "listed more than once"
        reason = reason or _content_refusal(edit, rules) or _disk_refusal(edit, root, rules)
        if reason:
            refused.append(f"{_show(edit.path)}: {reason}")
            continue
        error = _syntax_error(edit)
        if error:
            broken.append(f"{edit.path}: {error}")
            continue
        kept.append(edit)
    if broken:
        raise _unusable(broken + refused)
    if not kept:
        raise _unusable(refused, headline="every file was refused")
    return EditPlan(summary=summary, edits=tuple(kept), refused=tuple(refused))


def repair_prompt(errors: str) -> str:
    """The one follow-up message sent when a reply was unusable, quoting what was wrong."""
    return (
        "Your previous reply could not be used:\n"
        f"{errors}\n\n"
        'Reply again with the complete JSON object {"summary": "...", "files": [{"path": "...", '
        '"action": "create" | "update" | "delete", "content": "..."}]} that fixes every problem above. '
        "Give the whole new content of each file, not a diff. Use paths relative to the repository root "
        "with forward slashes. Never write inside .git/ or .github/workflows/, the budget ledger, the bot's "
        "configuration or the tasks file. Use create only for new files and update or delete only for "
        "existing ones. Leave out any file you cannot fix."
    )


def apply(plan: EditPlan, root: Path) -> list[str]:
    """Write the plan into ``root`` (a scratch tree) and return the paths whose content changed.

    Paths are re-checked against this tree, since it may differ from the one they were checked on.
    """
    root = Path(root)
    changed: list[str] = []
    for edit in plan.edits:
        if _lexical_refusal(edit.path) or _inside(root, edit.path) is None or (root / edit.path).is_symlink():
            raise ValueError(f"{_show(edit.path)}: not a safe path inside {root}")
        target = root / edit.path
        if edit.action == "delete":
            if target.exists():
                target.unlink()
                changed.append(edit.path)
            continue
        data = edit.content.encode("utf-8")
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        changed.append(edit.path)
    return changed


def changes(plan: EditPlan) -> dict[str, bytes | None]:
    """The plan as path -> new bytes (None deletes), for committing with git plumbing."""
    return {edit.path: None if edit.action == "delete" else edit.content.encode("utf-8") for edit in plan.edits}
