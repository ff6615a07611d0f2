"""The bot's own code inside a user's repository, which is never context for a task there.

A repository made with "Use this template" holds the bot itself: its package (``automation/``),
its tests and its benchmarks. Sent to the analysis model, they crowd out the user's own files
(a task about the user's app got ``automation/followups.py``). Each directory is recognised by a
file only the bot has, not by its name alone, so a project's own ``tests/`` or ``automation/``
stays context. Run as the action, the bot lives outside the repository and none of this applies.
"""

from __future__ import annotations

from pathlib import Path

# directory -> (a file only the bot's copy of it has, text that file starts with or holds)
OWN_DIRECTORIES = {
    "automation": ("__init__.py", '"""ai-orchestration: '),
    "tests": ("test_layers.py", "automation"),
    "benchmarks": ("bench_recall.py", "automation"),
}


def bot_paths(repo_root: Path) -> tuple[str, ...]:
    """The directories of ``repo_root`` (repository paths) that hold the bot's own code; empty
    when the repository does not hold the bot."""
    found = []
    for directory, (marker, text) in OWN_DIRECTORIES.items():
        try:
            content = (repo_root / directory / marker).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if text in content[:4_000]:
            found.append(directory)
    return tuple(found) if "automation" in found else ()
