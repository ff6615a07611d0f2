"""Checks a release before it is made, and gives its notes: `python .github/scripts/release.py NOTES_FILE`.

The version is ``automation.__version__`` (Semantic Versioning, MAJOR.MINOR.PATCH), the tag is
``v`` + the version, and the notes are that version's section of CHANGELOG.md (Keep a
Changelog: ``## [1.2.3] - 2026-12-31``). Writes ``version=`` and ``tag=`` to ``$GITHUB_OUTPUT``
when it is set, the notes to NOTES_FILE, and exits 1 with one line when the version is not
SemVer or CHANGELOG.md has no dated section for it. Used by .github/workflows/release.yml.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


class ReleaseError(Exception):
    """What stops a release, said in one line with what to do."""


def version(init_text: str) -> str:
    """``__version__`` from automation/__init__.py; ReleaseError unless it is MAJOR.MINOR.PATCH."""
    found = VERSION_LINE.search(init_text)
    if found is None:
        raise ReleaseError("automation/__init__.py has no __version__ = \"X.Y.Z\" line")
    if not SEMVER.fullmatch(found.group(1)):
        raise ReleaseError(f"automation/__init__.py: __version__ {found.group(1)!r} is not MAJOR.MINOR.PATCH")
    return found.group(1)


def notes(changelog: str, wanted: str) -> str:
    """The body of ``## [wanted] - YYYY-MM-DD`` in CHANGELOG.md; ReleaseError when it is missing,
    undated or empty."""
    heading = re.search(rf"^## \[{re.escape(wanted)}\](.*)$", changelog, re.MULTILINE)
    if heading is None:
        raise ReleaseError(f"CHANGELOG.md has no section for {wanted}: move the [Unreleased] entries under "
                           f"'## [{wanted}] - YYYY-MM-DD' (the release date)")
    if not re.fullmatch(r" - \d{4}-\d{2}-\d{2}", heading.group(1)):
        raise ReleaseError(f"CHANGELOG.md: the {wanted} heading must end in ' - YYYY-MM-DD', the release date")
    body = changelog[heading.end():]
    following = re.search(r"^## |^\[[^\]]+\]: ", body, re.MULTILINE)
    text = (body[: following.start()] if following else body).strip()
    if not text:
        raise ReleaseError(f"CHANGELOG.md: the {wanted} section is empty; say what changed")
    return text + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python .github/scripts/release.py NOTES_FILE", file=sys.stderr)
        return 2
    try:
        current = version((ROOT / "automation" / "__init__.py").read_text(encoding="utf-8"))
        text = notes((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), current)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    Path(argv[0]).write_text(text, encoding="utf-8")
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"version={current}\ntag=v{current}\n")
    print(f"release v{current}: {len(text.splitlines())} lines of notes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
