"""One exception tree for the whole bot.

Every error carries the exit code the CLI returns and a message that says what to do next.
Only ``cli.py`` turns these into exit codes; library code raises them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


class AutomationError(Exception):
    """Base error: ``str(err)`` is the single line shown to the user."""

    exit_code = EXIT_FAILED
    step = "run"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(AutomationError):
    """Bad command-line usage."""

    exit_code = EXIT_INVALID


class ConfigError(AutomationError):
    """Invalid configuration: the message names the file and the key (and line, for YAML syntax)."""

    exit_code = EXIT_INVALID
    step = "config"


class TasksFileError(AutomationError):
    """The tasks file is missing, a directory, or not UTF-8: the message names it and the fix."""

    exit_code = EXIT_INVALID
    step = "tasks"


class LedgerError(AutomationError):
    """The ledger does not parse or validate; it is never overwritten in that state."""

    exit_code = EXIT_INVALID
    step = "ledger"


class MissingSecretError(AutomationError):
    """A required environment variable (API key, token) is missing."""

    exit_code = EXIT_FAILED
    step = "environment"


class ProviderError(AutomationError):
    """A model provider call failed.

    ``kind`` is one of: auth, permission, billing, quota, rate_limited, overloaded,
    server, connection, timeout, bad_request, context_length, invalid_reply, malformed_reply. ``retryable``
    says whether a fallback model may be tried (auth/quota/billing never fail over silently).
    ``may_be_billed``: the provider may have charged for this request without saying how
    much (a timeout, a connection lost after sending, a 200 whose body is unusable), so it
    is booked at its reserved worst case. ``retry_after``: seconds the provider asked us to
    wait, if it said.
    """

    step = "provider"

    def __init__(
        self, message: str, *, provider: str, kind: str, status: int | None = None, retryable: bool = False,
        may_be_billed: bool = False, retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.may_be_billed = may_be_billed
        self.retry_after = retry_after


class UnusableReplyError(AutomationError):
    """The code model's reply could not be turned into safe edits, even after one repair request."""

    step = "edits"


class GitError(AutomationError):
    """A git command failed."""

    step = "git"


class PushRefusedError(GitError):
    """origin refused a push for good: not because the branch moved, but because of what or who
    pushed (branch protection, a ruleset, a pre-receive hook, push protection, missing rights)."""


class ProtectedBranchError(PushRefusedError):
    """The branch refused the push (GH006 branch protection, GH013 rulesets)."""


class GitHubError(AutomationError):
    """A GitHub API call failed."""

    step = "github"


class PolicyStop(Exception):
    """Not an error: the run stops on purpose before spending (budget, no task, PR limit,
    circuit breaker). The CLI exits 0; ``outcome`` is what the ledger and alerts call it."""

    outcome = "stopped"

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if outcome is not None:
            self.outcome = outcome
