"""What the repository's own checks said: the failures named in their output, the edit's new
failures told apart from those the untouched tree already had, and the commands a repository
suggests. Pure functions on plain data; ``sandbox.py`` runs the commands, ``steps/verify.py``
decides.

A failing command's *marks* are the failures its output names, in the forms the common tools
print them (pytest and unittest, go test, cargo test, TAP, jest and vitest, and compilers and
linters that print ``path:line:col: message``, ruff and rustc's ``-->`` lines included), with
line numbers and other figures replaced by ``#`` so a failure that only moved keeps its mark.
A failure no form names leaves the mark ``(exit code N)``; a command killed at the timeout adds
``(timed out)``. The edit's new failures are the marks the edited tree has beyond those of the
untouched tree (counted, so a second copy of a known failure is new too).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .sandbox import Outcome, Sandbox

PASSED, FAILED, PRE_EXISTING = "passed", "failed", "pre-existing"
TIMED_OUT_MARK = "(timed out)"
MARK_MAX_CHARS = 300
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_PATH = r"[\w./\\@+-]*[./][\w./\\@+-]*"
# (pattern, mark) for one line; the mark is a format over the match's groups.
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(FAILED|ERROR) ([^\s(].*?)(?: - .*)?$"), "{0} {1}"),  # pytest's short summary
    (re.compile(r"^(FAIL|ERROR): (.+)$"), "{0}: {1}"),  # unittest
    (re.compile(r"^\s*--- FAIL: (\S+)"), "--- FAIL: {0}"),  # go test
    (re.compile(r"^FAIL\s+(\S+)"), "FAIL {0}"),  # go test's package line, vitest
    (re.compile(r"^test (.+) \.\.\. FAILED$"), "test {0} FAILED"),  # cargo test
    (re.compile(r"^\s*not ok \d+ - (.+)$"), "not ok {0}"),  # TAP, node --test
    (re.compile(r"^\s*● (.+)$"), "● {0}"),  # jest
    (re.compile(r"^\s*[×✕✗] (.+)$"), "✕ {0}"),  # vitest, mocha
    (re.compile(rf"^({_PATH})\(\d+,\d+\): (error .+)$"), "{0}: {1}"),  # tsc
    # compilers, linters, go; not warnings, nor a traceback's frames ("path:12: in helper", pytest's long format)
    (re.compile(rf"^\s*({_PATH}):\d+(?::\d+)?: (?!.*[Ww]arning\b)(?!in \S+$)(.+)$"), "{0}: {1}"),
    (re.compile(r"^(error(?:\[\w+\])?: .+)$"), "{0}"),  # rustc, cargo
)
# ruff's and rustc's full format: "F401 `os` imported but unused" / "error[E0308]: ...", then " --> path:1:8".
_ARROW = re.compile(rf"^\s*--> ({_PATH}):\d+(?::\d+)?\s*$")


def _mark(line: str, previous: str) -> str | None:
    arrow = _ARROW.match(line)
    if arrow and previous:
        return f"{arrow.group(1)}: {previous}"
    for pattern, form in _FORMS:
        match = pattern.match(line)
        if match:
            return form.format(*(group.strip() for group in match.groups()))
    return None


def failures(output: str) -> tuple[str, ...]:
    """The failures ``output`` names, as marks (sorted; a failure named twice counts twice)."""
    marks = []
    previous = ""
    for raw in output.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        mark = _mark(line, previous)
        if mark is not None:
            marks.append(_NUMBER.sub("#", mark)[:MARK_MAX_CHARS])
        if line.strip() and not _ARROW.match(line):
            previous = line.strip()
    return tuple(sorted(marks))


def marks(outcome: Outcome) -> tuple[str, ...]:
    """A command's failures on one tree: empty when it passed, never empty when it failed."""
    if outcome.passed:
        return ()
    named = list(failures(outcome.output))
    if outcome.timed_out:
        named.append(TIMED_OUT_MARK)
    return tuple(sorted(named)) or (f"(exit code {outcome.exit_code})",)


@dataclass(frozen=True)
class Verdict:
    """One command on the edited tree, against the untouched tree: ``status`` is passed, failed
    (``new`` failures the edit introduced) or pre-existing (every failure, ``old``, was there before)."""

    command: str
    status: str
    seconds: float
    exit_code: int | None
    new: tuple[str, ...] = ()
    old: tuple[str, ...] = ()
    excerpt: str = ""  # for a failed command: what the output says about its new failures (bounded, redacted)


def compare(before: tuple[str, ...], after: Outcome) -> Verdict:
    """The verdict on ``after`` (the edited tree) given ``before``, the same command's marks on the untouched tree."""
    if after.passed:
        return Verdict(after.command, PASSED, after.seconds, after.exit_code)
    now, then = Counter(marks(after)), Counter(before)
    new = tuple(sorted((now - then).elements()))
    old = tuple(sorted((now & then).elements()))
    return Verdict(after.command, FAILED if new else PRE_EXISTING, after.seconds, after.exit_code, new, old)


@dataclass(frozen=True)
class Verification:
    """What the checks said about one run's edit: a verdict per command, the repairs it took,
    the sandbox they ran in and the commit of the untouched tree they were compared with."""

    verdicts: tuple[Verdict, ...]
    repairs: int
    sandbox: str
    base: str

    @property
    def result(self) -> str:
        """"failed" when any command has new failures, else "passed" (pre-existing failures pass)."""
        return FAILED if any(v.status == FAILED for v in self.verdicts) else PASSED

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.status == FAILED)

    def headline(self) -> str:
        """One line for logs and Discord: ``passed (2 commands, after 1 repair)`` or ``failed: `npm test```."""
        after = f", after {self.repairs} repair{'s' if self.repairs != 1 else ''}" if self.repairs else ""
        if self.result == FAILED:
            return "failed: " + ", ".join(f"`{v.command}`" for v in self.failed) + (f" ({after[2:]})" if after else "")
        old = [f"`{v.command}`" for v in self.verdicts if v.status == PRE_EXISTING]
        count = len(self.verdicts)
        line = f"passed ({count} command{'s' if count != 1 else ''}{after})"
        return line + (f"; already failing before the change: {', '.join(old)}" if old else "")


@dataclass
class RunChecks:
    """A run's checks as they go: the sandbox found (once), the untouched trees' marks by
    commit (command -> marks, reused within the run), the commit the edit is compared with and
    the id of its files (``gitops.content_id``), and the last verification."""

    sandbox: Sandbox | None = None
    baselines: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    base: str | None = None
    files: str = ""
    result: Verification | None = None


# --- what a repository suggests -------------------------------------------------------------

_NPM_DEFAULT_TEST = "no test specified"


def suggest(root: Path) -> list[str]:
    """Commands worth putting in ``verify.commands`` for the repository at ``root``, judged
    from the files at its top: pytest or unittest, ruff or flake8, npm test, go test, cargo
    test, make test."""

    def text(name: str) -> str:
        try:
            return (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    pyproject, setup_cfg, tox = text("pyproject.toml"), text("setup.cfg"), text("tox.ini")
    requirements = "".join(text(path.name) for path in root.glob("requirements*.txt"))
    tests = [*root.glob("test*/test*.py"), *root.glob("test_*.py")]
    found = []
    if ((root / "pytest.ini").is_file() or (root / "conftest.py").is_file() or "[tool.pytest" in pyproject
            or "[tool:pytest]" in setup_cfg or "[pytest]" in tox or "pytest" in requirements + pyproject):
        found.append("python -m pytest -q")
    elif tests:
        found.append("python -m unittest discover -s tests" if (root / "tests").is_dir() else "python -m unittest")
    if (root / "ruff.toml").is_file() or (root / ".ruff.toml").is_file() or "[tool.ruff" in pyproject:
        found.append("ruff check --output-format=concise .")
    elif (root / ".flake8").is_file() or "[flake8]" in setup_cfg + tox:
        found.append("flake8")
    try:
        scripts = json.loads(text("package.json") or "{}").get("scripts") or {}
    except (ValueError, AttributeError):
        scripts = {}
    if isinstance(scripts, dict) and isinstance(scripts.get("test"), str) and _NPM_DEFAULT_TEST not in scripts["test"]:
        found.append("npm test")
    if (root / "go.mod").is_file():
        found.append("go test ./...")
    if (root / "Cargo.toml").is_file():
        found.append("cargo test")
    if re.search(r"^test\s*:", text("Makefile") or text("makefile"), re.M):
        found.append("make test")
    return found
