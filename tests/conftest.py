"""Shared test set-up: every test runs hermetically (no keys, no network, its own tmp dirs)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

# End-to-end files whose tests each drive real bot processes over several cron runs (15-60 s a
# test). The README's command leaves them out (pytest.ini: -m "not slow") to stay under ten
# minutes on two cores; .ci/run runs them right after it, so CI still runs every test.
SLOW_FILES = frozenset({
    "test_run_health.py", "test_run_month_boundary.py", "test_benchmarks.py", "test_run_windows.py",
    "test_run_alerts.py", "test_workflow_steps.py", "test_run_followups.py", "test_run_killed.py",
    "test_run_race.py", "test_run_shared_ledger.py", "test_run_batch.py",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
