"""What one run holds while it works: shared by the run (``pipeline``) and the follow-up step.

It lives apart from ``pipeline`` so the follow-up step can take a session without importing
the run that calls it (no import cycle).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TextIO

from ..core.config import Config
from ..core.redact import redact
from ..models import attempts
from ..money import ledger as ledger_module
from ..money import reservations
from ..money.ledger import Ledger, RunRecord
from ..repo.checks import RunChecks


@dataclass(frozen=True)
class Posted:
    """Text with the month's figures already shown on GitHub (a PR body, a reply) at ``where``:
    after the ledger commit it is rendered again from the ledger as committed and, when that
    differs (a run that overlapped this one settled first), ``update`` replaces it."""

    where: str
    text: str
    render: Callable[[Ledger], str]
    update: Callable[[str], None]


@dataclass
class Session:
    """What one run holds: settings, clients, and the ledger as it grows call by call."""

    repo: Path
    config: Config
    env: Mapping[str, str]
    now: dt.datetime
    out: TextIO
    base_ledger: Ledger
    ledger: Ledger
    record: RunRecord
    clock: Callable[[], float]
    secrets: list[str]
    reserver: reservations.Reserver
    deadline: attempts.Deadline
    sleep: Callable[[float], None] = time.sleep
    repository: str = "local"
    ledger_root: Path | None = None  # the checkout holding the ledger's home (ledger_remote.LedgerHome), when not ``repo``
    anthropic_client: object = None
    openai_client: object = None
    # What the run had to work around, said in the log, the PR body and Discord.
    notes: list[str] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    # The repository's own checks as the run goes (steps/verify.py): sandbox, baselines, result.
    checks: RunChecks = field(default_factory=RunChecks)

    def say(self, line: str) -> None:
        self.out.write(redact(line, self.secrets) + "\n")
        self.out.flush()

    def save(self, record: RunRecord) -> None:
        """Keep the run in the ledger and on disk at once: a crash after a paid call loses nothing."""
        self.record = record
        self.ledger = self.ledger.with_run(record)
        ledger_module.save(self.ledger, self.ledger_file)

    @property
    def ledger_file(self) -> Path:
        """The run's copy of the ledger on disk: in this checkout, or in the shared ledger's."""
        return (self.ledger_root or self.repo) / self.config.ledger_path
