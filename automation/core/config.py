"""Loads and validates `.github/ai-orchestration.yml`.

Every key is optional; anything wrong stops with one line that names the file and the key
(and the line, for YAML syntax errors) before anything is called. Secrets never come from
this file: they come from the environment only.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import posixpath
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from .errors import ConfigError
from .own_code import bot_paths
from .prices import (
    ANTHROPIC,
    CLAUDE_5_EFFORTS,
    OPENAI,
    OPENAI_REASONING_EFFORTS,
    Price,
    PriceTable,
    format_usd,
    usd_to_micro,
)
from .redact import looks_secret
from .textfiles import decode_utf8

DEFAULT_CONFIG_PATH = ".github/ai-orchestration.yml"
# A repository variable the workflow passes to the bot: "true" pauses every run without a commit.
PAUSE_VARIABLE = "AI_ORCHESTRATION_PAUSED"
# What errors name when the repository has no config file: never a file the user does not have.
BUILTIN_SOURCE = f"the built-in defaults (this repository has no {DEFAULT_CONFIG_PATH}; create it to change a setting)"
RETIREMENT_WARNING_DAYS = 30
MIN_RESERVATION_MINUTES = 15
# How far two runners' clocks may disagree and a reservation still outlive its run as every
# runner sees it (reservations.py). A larger disagreement frees a live run's unspent reservation
# early, never money it spent: an expired reservation is booked at its calls and the call in flight.
CLOCK_SKEW_MINUTES = 5
MAX_USD = 1_000_000  # the largest dollar amount (budget, milestone or price) the config accepts
# Each step speaks one API: analysis the Anthropic Messages API (with its free token count),
# code OpenAI Chat Completions, answered in SEARCH/REPLACE blocks.
STEP_PROVIDERS = {"analysis": ANTHROPIC, "code": OPENAI}
STEP_APIS = {"analysis": "Anthropic Messages API", "code": "OpenAI Chat Completions API"}


@dataclass(frozen=True)
class Config:
    """Validated settings; money in integer micro-dollars."""

    source: str = DEFAULT_CONFIG_PATH
    monthly_budget_micro_usd: int = 15_000_000
    # Optional windows beside the month (money/windows.py): the UTC day, the ISO week, one run.
    daily_budget_micro_usd: int | None = None
    weekly_budget_micro_usd: int | None = None
    run_budget_micro_usd: int | None = None
    warn_at_percent: int = 80  # one Discord alert per window as its spend reaches this share of its cap
    milestones_micro_usd: tuple[int, ...] = (5_000_000, 10_000_000, 15_000_000)
    tasks_file: str = "docs/TASKS.md"
    max_open_prs: int = 5
    pr_labels: tuple[str, ...] = ("ai-generated",)
    pr_draft: bool = False
    branch_prefix: str = "ai/"
    ledger_path: str = "token_budget.json"
    ledger_branch: str | None = None
    # Another repository holding the ledger, shared by every repository naming it (money/shared_budget.py):
    # ``owner/name`` on the same GitHub host, or a git URL; None: this repository's own ledger.
    ledger_repository: str | None = None
    # In a shared ledger's own config: repository (``owner/name``) -> its monthly share in micro-dollars.
    repository_shares: tuple[tuple[str, int], ...] = ()
    ledger_start_fresh: str | None = None  # "YYYY-MM": that month may start at $0 without its ledger
    reservation_minutes: int = 45  # how long a run's reservation holds money back (reservations.py)
    analysis_model: str = "claude-sonnet-5-5"
    code_model: str = "gpt-4o-mini"
    # Thinking counts toward max_tokens: room for ~10k tokens of thinking and the plan.
    analysis_max_tokens: int = 16_000
    code_max_tokens: int = 32_768  # reasoning plus whole files; clamped to each model's own limit
    analysis_effort: str = "medium"  # Claude output_config.effort, where the model takes it
    analysis_thinking: str = "adaptive"  # or "off": no up-front thinking, where the model allows it
    code_reasoning_effort: str = "medium"  # OpenAI reasoning_effort, for reasoning models only
    # Mark the analysis prompt's stable prefix for Anthropic's cache: "auto" (where it pays,
    # money/caching.py), "always" or "off".
    prompt_cache: str = "auto"
    # Submit the analysis as an Anthropic Message Batch (half price) and collect it on a later
    # cron run (steps/batch.py): a task takes two or more ticks.
    batch: bool = False
    on_retirement: str = "successor"  # or "stop"
    analysis_fallbacks: tuple[str, ...] = ("claude-haiku-4-5",)
    code_fallbacks: tuple[str, ...] = ("gpt-4.1-mini",)
    code_max_input_tokens: int = 60_000  # the code prompt's bound (estimated tokens), within the model's window
    context_max_tokens: int = 40_000
    context_exclude: tuple[str, ...] = ()
    edits_deny: tuple[str, ...] = ()
    notify_run_started: bool = False
    breaker_failures: int = 3
    breaker_cooldown_hours: int = 6
    park_after_failures: int = 3
    # The run's own deadline, safely inside the workflow's 30-minute timeout-minutes, with time
    # kept back to commit the ledger; each request's timeout is cut to fit (all in seconds).
    run_deadline_seconds: float = 25 * 60
    ledger_commit_seconds: float = 120.0
    request_timeout_seconds: float = 120.0
    # Follow-ups on the bot's open PRs (red checks, change requests, mentions): see followups.py.
    follow_ups_enabled: bool = True
    follow_up_max_attempts: int = 2
    follow_up_handle: str = "@ai-orchestration"
    follow_up_needs_human_label: str = "ai-needs-human"
    follow_up_takeover_label: str = "ai-hands-off"
    follow_up_log_max_chars: int = 6_000
    follow_up_diff_max_chars: int = 12_000
    # Who may direct the bot (repo/trust.py): logins, lower-cased; the permission that counts.
    trusted_users: tuple[str, ...] = ()
    trusted_permission: str = "write"
    untrusted_reply: bool = True  # one short reply on a PR whose requests came from untrusted accounts
    # Tasks from labelled issues (repo/intake.py), off unless switched on.
    intake_enabled: bool = False
    intake_label: str = "ai-task"
    intake_any_author: bool = False
    intake_order: str = "file_first"  # or "issues_first"
    # The repository's own checks, run sandboxed on the untouched and the edited tree before a
    # pull request opens (steps/verify.py); no commands: no verification.
    verify_commands: tuple[str, ...] = ()
    verify_timeout_seconds: float = 300.0  # one pass: every command on one tree
    verify_on_failure: str = "draft"  # or "skip" (no PR) or "open"
    verify_max_repairs: int = 1
    verify_sandbox: str = "required"  # or "best_effort"
    verify_env: tuple[str, ...] = ()  # extra variables the checks may see (never secret ones)
    # Two code models, or two analysis efforts, taken in turn by new-task runs (models/experiment.py).
    experiment_code_models: tuple[str, ...] = ()
    experiment_analysis_efforts: tuple[str, ...] = ()
    # PRs whose commits and lines a run reads at most (money/outcomes.py): 1 to 3 requests each.
    outcome_reads_per_run: int = 3
    prices: PriceTable = field(default_factory=PriceTable.builtin)
    from_file: bool = False  # False: the defaults, with no config file in the repository
    chosen: frozenset[str] = frozenset()  # the dotted keys the config file sets
    enabled: bool = True  # False: every run stops before any work (see paused_by)
    context_exclude_bot: bool = True  # leave the bot's own code out of the context (core/own_code.py)
    # On a large repository, one call to the code model names the files and functions the task
    # changes before the context is built (repo/localise.py); reserved and booked like any call.
    context_localise: bool = True
    bot_paths: tuple[str, ...] = ()  # the bot's own files in this repository, found on load
    # (config key, retired model's price, successor now used) once ``in_service`` swapped them
    retired: tuple[tuple[str, Price, str], ...] = ()

    def price(self, model: str) -> Price:
        """The price of a configured model (validated on load, so always known)."""
        found = self.prices.find(model)
        if found is None:  # only reachable for a Config built by hand in code
            raise ConfigError(f"{self.source}: no price is known for model {model!r}; add it under 'prices'")
        return found

    @property
    def localises(self) -> bool:
        """Whether a task run makes the localisation call (repo/localise.py, on a large repository):
        ``context.localise``, and not in batch mode, whose context is built twice, in two runs."""
        return self.context_localise and not self.batch

    def private_paths(self) -> tuple[str, ...]:
        """Paths never sent to a model: the ledger, ``edits.deny``, ``context.exclude`` and the bot's own code."""
        return (self.ledger_path, *self.edits_deny, *self.context_exclude, *self.bot_paths)

    def paused_by(self, env: Mapping[str, str]) -> str | None:
        """Why runs are paused (``enabled: false``, or the ``AI_ORCHESTRATION_PAUSED`` repository
        variable passed in by the workflow), or None when they are not."""
        if not self.enabled:
            return f"enabled is false in {self.source}; set it to true (or delete the line) to resume"
        if env.get(PAUSE_VARIABLE, "").strip().lower() in ("true", "1", "yes"):
            return f"the repository variable {PAUSE_VARIABLE} is {env[PAUSE_VARIABLE].strip()!r}; delete it to resume"
        return None

    def configured_models(self) -> dict[str, str]:
        """Config key -> model name, for every model the bot may call."""
        models = {"models.analysis": self.analysis_model, "models.code": self.code_model}
        for index, name in enumerate(self.analysis_fallbacks):
            models[f"models.fallbacks.analysis[{index}]"] = name
        for index, name in enumerate(self.code_fallbacks):
            models[f"models.fallbacks.code[{index}]"] = name
        for index, name in enumerate(self.experiment_code_models):
            models[f"models.experiment.code[{index}]"] = name
        return models

    def retiring_models(self, today: dt.date) -> list[tuple[str, Price, int]]:
        """(config key, price entry, days left) for models that retire within 30 days."""
        soon = []
        for key, model in self.configured_models().items():
            if not self._chosen_by_user(key):
                continue
            price = self.price(model)
            days = price.days_to_retirement(today)
            if days is not None and 0 < days <= RETIREMENT_WARNING_DAYS and price.successor:
                soon.append((key, price, days))
        return soon

    def retirement_warnings(self, today: dt.date) -> list[str]:
        """The one wording `run`, `status` and `costs` use for a model about to retire."""
        warnings = []
        for key, price, days in self.retiring_models(today):
            then = (
                "the run stops (models.on_retirement is 'stop')" if self.on_retirement == "stop"
                else f"runs use {price.successor} instead{self._pin_hint(key, str(price.successor))}"
            )
            warnings.append(f"warning: {key} = {price.model} retires on {price.retires} ({days} days); from then on {then}")
        return warnings

    def retired_models(self, today: dt.date) -> list[tuple[str, Price, str]]:
        """(config key, retired model's price entry, the model in service instead) for every
        configured model whose retirement date has come."""
        retired = []
        for key, model in self.configured_models().items():
            price = self.price(model)
            if self._chosen_by_user(key) and price.retires is not None and today >= price.retires:
                retired.append((key, price, self.prices.in_service(model, today)))
        return retired

    def _chosen_by_user(self, key: str) -> bool:
        """False for a default fallback model the config file never named: the bot replaces it
        quietly when it retires, with no warning, alert or stop about a model nobody chose."""
        if not key.startswith("models.fallbacks."):
            return True
        return key.split("[")[0] in self.chosen

    def in_service(self, today: dt.date) -> Config:
        """This config with every retired model (fallbacks too) replaced by its successor, and
        ``retired`` saying which the user chose; ``check_retirement`` then decides whether a run may go on."""
        retired = self.retired_models(today)
        if not retired and all(self.prices.in_service(m, today) == m for m in self.configured_models().values()):
            return self

        def swap(model: str) -> str:
            return self.prices.in_service(model, today)

        analysis, code = swap(self.analysis_model), swap(self.code_model)
        return replace(
            self,
            analysis_model=analysis,
            code_model=code,
            analysis_fallbacks=tuple(m for m in dict.fromkeys(map(swap, self.analysis_fallbacks)) if m != analysis),
            code_fallbacks=tuple(m for m in dict.fromkeys(map(swap, self.code_fallbacks)) if m != code),
            experiment_code_models=tuple(map(swap, self.experiment_code_models)),
            retired=tuple(retired),
        )

    def retirement_notes(self) -> list[str]:
        """One line per retired model and what runs do instead (the log, `status`, `costs`, the receipt)."""
        if self.on_retirement == "stop":
            return [
                f"{key}: {price.model} retired on {price.retires}; runs stop until {key} is changed "
                f"(models.on_retirement is 'stop'; its successor is {successor})"
                for key, price, successor in self.retired
            ]
        return [
            f"{key}: {price.model} retired on {price.retires}; runs use {successor} instead{self._pin_hint(key, successor)}"
            for key, price, successor in self.retired
        ]

    def check_retirement(self) -> None:
        """Raises ConfigError naming ``models.on_retirement`` when it is "stop" and a model retired."""
        if self.retired and self.on_retirement == "stop":
            key, price, successor = self.retired[0]
            raise ConfigError(
                f"{self.source}: {key}: model '{price.model}' retired on {price.retires}; "
                f"models.on_retirement is 'stop', so the run stops: switch {key} to '{successor}'"
            )

    def _pin_hint(self, key: str, successor: str) -> str:
        """How to make the switch explicit, only when there is a config file to do it in."""
        return f" (set {key}: {successor} in {self.source} to make it explicit)" if self.from_file else ""

    @property
    def reservation_horizon(self) -> dt.timedelta:
        """The furthest ahead a reservation may expire and be believed: no run reserves for longer
        than ``ledger.reservation_minutes``; a clock up to CLOCK_SKEW_MINUTES behind sees that much more."""
        return dt.timedelta(minutes=self.reservation_minutes + CLOCK_SKEW_MINUTES)

    def output_cap(self, model: str) -> int:
        """``max_tokens`` for a call to ``model``: the step's setting, never above the model's limit."""
        price = self.price(model)
        wanted = self.analysis_max_tokens if price.provider == ANTHROPIC else self.code_max_tokens
        return min(wanted, price.max_output_tokens) if price.max_output_tokens else wanted


# --- schema -----------------------------------------------------------------------------

Validator = Callable[[str, Any], Any]


def _usd(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _TypeProblem(f"{key} must be an amount in US dollars, like 15.00")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _TypeProblem(f"{key} must be an amount in US dollars, like 15.00") from None
    if not amount.is_finite():
        raise _TypeProblem(f"{key} must be a finite amount in US dollars")
    if abs(amount) > MAX_USD:  # a typo, and beyond exact micro-dollars in a float (2**53)
        raise _TypeProblem(f"{key} must be at most {format_usd(usd_to_micro(MAX_USD))} (got {value})")
    return usd_to_micro(amount)


def _positive_usd(key: str, value: Any) -> int:
    micro = _usd(key, value)
    if micro <= 0:
        raise _TypeProblem(f"{key} must be greater than zero (got {value})")
    return micro


def _optional_usd(key: str, value: Any) -> int | None:
    """A positive dollar amount, or null (the window is off)."""
    return None if value is None else _positive_usd(key, value)


def _percent(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100:
        raise _TypeProblem(f"{key} must be a whole number from 1 to 100 (got {value!r})")
    return value


def _usd_list(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _TypeProblem(f"{key} must be a list of dollar amounts, like [5, 10, 15]")
    amounts = tuple(sorted({_positive_usd(f"{key}[{i}]", item) for i, item in enumerate(value)}))
    return amounts


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _TypeProblem(f"{key} must be a whole number greater than zero (got {value!r})")
    return value


def _non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _TypeProblem(f"{key} must be a whole number, zero or more (got {value!r})")
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _variable_names(key: str, value: Any) -> tuple[str, ...]:
    """Names of environment variables the checks may see: never one whose name says it holds a secret."""
    names = _text_list(key, value)
    for index, name in enumerate(names):
        if not _ENV_NAME.fullmatch(name):
            raise _TypeProblem(f"{key}[{index}] must be an environment variable name, like NODE_ENV (got {name!r})")
        if looks_secret(name):
            raise _TypeProblem(f"{key}[{index}]: {name} looks like a secret (its name says key, token, secret, "
                               "password or webhook); the checks never get secrets")
    return names


def _positive_seconds(key: str, value: Any, per_unit: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise _TypeProblem(f"{key} must be a number greater than zero (got {value!r})")
    return float(value) * per_unit


def _minutes(key: str, value: Any) -> float:
    return _positive_seconds(key, value, 60.0)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _TypeProblem(f"{key} must be true or false (got {value!r})")
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _TypeProblem(f"{key} must be a non-empty string (got {value!r})")
    return value.strip()


_DRIVE = re.compile(r"^[A-Za-z]:")


def _relative_path(key: str, value: Any) -> str:
    """A repository path (or ``edits.deny`` pattern) in the one spelling git, the edit checks,
    the tasks file and the ledger all compare: relative, POSIX, normalised (``./x``,
    ``a/../x``, ``x/``, ``a//x`` all become ``x`` or ``a/x``). Anything that cannot be made
    into such a path (absolute, backslashes, outside the repository, inside ``.git``) is refused."""
    text = _text(key, value)
    if "\\" in text:
        raise _TypeProblem(f"{key} must use forward slashes, like docs/TASKS.md (got {text!r})")
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise _TypeProblem(f"{key} must not contain control characters (got {text!r})")
    if text.startswith("/") or _DRIVE.match(text):
        raise _TypeProblem(f"{key} must be a path inside the repository (got {text!r})")
    normal = posixpath.normpath(text)
    if normal in (".", "..") or normal.startswith("../"):
        raise _TypeProblem(f"{key} must be a path inside the repository (got {text!r})")
    if ".git" in normal.casefold().split("/"):
        raise _TypeProblem(f"{key} must not point into .git (got {text!r})")
    return normal


def _optional_month(key: str, value: Any) -> str | None:
    if value is None:
        return None
    text = _text(key, value)
    try:
        if len(text) != 7:
            raise ValueError(text)
        dt.datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise _TypeProblem(f"{key} must be a month like 2026-11, in quotes (got {value!r})") from None
    return text


def _handle(key: str, value: Any) -> str:
    text = _text(key, value)
    if not re.fullmatch(r"@[A-Za-z0-9][A-Za-z0-9-]*(\[bot\])?", text):
        raise _TypeProblem(f"{key} must be a GitHub mention like @ai-orchestration (got {text!r})")
    return text


def _logins(key: str, value: Any) -> tuple[str, ...]:
    """GitHub logins (``alice``, ``@alice``, ``renovate[bot]``), lower-cased: GitHub compares them so."""
    if not isinstance(value, list):
        raise _TypeProblem(f"{key} must be a list of GitHub logins, like [alice, \"renovate[bot]\"]")
    logins = []
    for index, item in enumerate(value):
        text = _text(f"{key}[{index}]", item).removeprefix("@")
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(\[bot\])?", text):
            raise _TypeProblem(f"{key}[{index}] must be a GitHub login like alice or renovate[bot] (got {item!r})")
        logins.append(text.casefold())
    return tuple(dict.fromkeys(logins))


def _optional_text(key: str, value: Any) -> str | None:
    return None if value is None else _text(key, value)


REPOSITORY_NAME = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+")


def _ledger_repository(key: str, value: Any) -> str | None:
    """``owner/name`` (on the same GitHub host), a git URL, or a path to a repository (tests)."""
    text = _optional_text(key, value)
    if text is not None and (text.startswith("-") or any(c.isspace() for c in text)):
        raise _TypeProblem(f"{key} must be owner/name or a git URL (got {value!r})")
    return text


def _repository_shares(key: str, value: Any) -> tuple[tuple[str, int], ...]:
    """``{owner/name: {monthly_usd: 5}}``: each repository's monthly share of the organisation's budget."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _TypeProblem(f"{key} must be a mapping like {{octo/app: {{monthly_usd: 5}}}}")
    shares = []
    for name, share in value.items():
        if not isinstance(name, str) or not REPOSITORY_NAME.fullmatch(name):
            raise _TypeProblem(f"{key}: {name!r} must be a repository as owner/name")
        if not isinstance(share, Mapping) or set(share) != {"monthly_usd"}:
            raise _TypeProblem(f"{key}.{name} must be a mapping with monthly_usd only, like {{monthly_usd: 5}}")
        shares.append((name.casefold(), _positive_usd(f"{key}.{name}.monthly_usd", share["monthly_usd"])))
    return tuple(sorted(shares))


def _choice(*allowed: str) -> Validator:
    """A validator for one of ``allowed`` (the message lists them)."""

    def validate(key: str, value: Any) -> str:
        if value not in allowed:
            raise _TypeProblem(f"{key} must be one of {', '.join(allowed)} (got {value!r})")
        return str(value)

    return validate


def _text_list(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _TypeProblem(f"{key} must be a list of strings")
    return tuple(_text(f"{key}[{i}]", item) for i, item in enumerate(value))


def _path_list(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _TypeProblem(f"{key} must be a list of strings")
    return tuple(_relative_path(f"{key}[{i}]", item) for i, item in enumerate(value))


def _pair(item: Validator) -> Validator:
    """A validator for two different values, each checked by ``item`` (an experiment's two arms),
    or an empty list (no experiment)."""

    def validate(key: str, value: Any) -> tuple[Any, ...]:
        if value is None or value == []:
            return ()
        if not isinstance(value, list) or len(value) != 2:
            raise _TypeProblem(f"{key} must be a list of two values to compare, like [a, b], or [] (got {value!r})")
        pair = tuple(item(f"{key}[{i}]", entry) for i, entry in enumerate(value))
        if pair[0] == pair[1]:
            raise _TypeProblem(f"{key} must name two different values (got {pair[0]!r} twice)")
        return pair

    return validate


# dotted key -> (Config field, validator)
SCHEMA: dict[str, tuple[str, Validator]] = {
    "enabled": ("enabled", _bool),
    "budget.monthly_usd": ("monthly_budget_micro_usd", _positive_usd),
    "budget.milestones_usd": ("milestones_micro_usd", _usd_list),
    "budget.daily_usd": ("daily_budget_micro_usd", _optional_usd),
    "budget.weekly_usd": ("weekly_budget_micro_usd", _optional_usd),
    "budget.run_usd": ("run_budget_micro_usd", _optional_usd),
    "budget.warn_at_percent": ("warn_at_percent", _percent),
    "budget.repositories": ("repository_shares", _repository_shares),
    "tasks.file": ("tasks_file", _relative_path),
    "pull_requests.max_open": ("max_open_prs", _positive_int),
    "pull_requests.labels": ("pr_labels", _text_list),
    "pull_requests.draft": ("pr_draft", _bool),
    "pull_requests.branch_prefix": ("branch_prefix", _text),
    "ledger.path": ("ledger_path", _relative_path),
    "ledger.branch": ("ledger_branch", _optional_text),
    "ledger.repository": ("ledger_repository", _ledger_repository),
    "ledger.start_fresh": ("ledger_start_fresh", _optional_month),
    "ledger.reservation_minutes": ("reservation_minutes", _positive_int),
    "models.analysis": ("analysis_model", _text),
    "models.code": ("code_model", _text),
    "models.analysis_max_tokens": ("analysis_max_tokens", _positive_int),
    "models.code_max_tokens": ("code_max_tokens", _positive_int),
    "models.analysis_effort": ("analysis_effort", _choice(*CLAUDE_5_EFFORTS)),
    "models.analysis_thinking": ("analysis_thinking", _choice("adaptive", "off")),
    "models.code_reasoning_effort": ("code_reasoning_effort", _choice(*OPENAI_REASONING_EFFORTS)),
    "models.prompt_cache": ("prompt_cache", _choice("auto", "always", "off")),
    "models.batch": ("batch", _bool),
    "models.on_retirement": ("on_retirement", _choice("successor", "stop")),
    "models.fallbacks.analysis": ("analysis_fallbacks", _text_list),
    "models.fallbacks.code": ("code_fallbacks", _text_list),
    "models.code_max_input_tokens": ("code_max_input_tokens", _positive_int),
    "context.max_tokens": ("context_max_tokens", _positive_int),
    "context.exclude": ("context_exclude", _path_list),
    "context.exclude_bot": ("context_exclude_bot", _bool),
    "context.localise": ("context_localise", _bool),
    "edits.deny": ("edits_deny", _path_list),
    "notifications.run_started": ("notify_run_started", _bool),
    "health.breaker_failures": ("breaker_failures", _positive_int),
    "health.breaker_cooldown_hours": ("breaker_cooldown_hours", _positive_int),
    "health.park_after_failures": ("park_after_failures", _positive_int),
    "run.deadline_minutes": ("run_deadline_seconds", _minutes),
    "run.ledger_commit_seconds": ("ledger_commit_seconds", _positive_seconds),
    "run.request_timeout_seconds": ("request_timeout_seconds", _positive_seconds),
    "follow_ups.enabled": ("follow_ups_enabled", _bool),
    "follow_ups.max_attempts": ("follow_up_max_attempts", _positive_int),
    "follow_ups.handle": ("follow_up_handle", _handle),
    "follow_ups.needs_human_label": ("follow_up_needs_human_label", _text),
    "follow_ups.takeover_label": ("follow_up_takeover_label", _text),
    "follow_ups.log_max_chars": ("follow_up_log_max_chars", _positive_int),
    "follow_ups.diff_max_chars": ("follow_up_diff_max_chars", _positive_int),
    "follow_ups.trusted_users": ("trusted_users", _logins),
    "follow_ups.trusted_permission": ("trusted_permission", _choice("write", "maintain", "admin")),
    "follow_ups.untrusted_reply": ("untrusted_reply", _bool),
    "intake.enabled": ("intake_enabled", _bool),
    "intake.label": ("intake_label", _text),
    "intake.any_author": ("intake_any_author", _bool),
    "intake.order": ("intake_order", _choice("file_first", "issues_first")),
    "verify.commands": ("verify_commands", _text_list),
    "verify.timeout_seconds": ("verify_timeout_seconds", _positive_seconds),
    "verify.on_failure": ("verify_on_failure", _choice("draft", "skip", "open")),
    "verify.max_repairs": ("verify_max_repairs", _non_negative_int),
    "verify.sandbox": ("verify_sandbox", _choice("required", "best_effort")),
    "verify.env": ("verify_env", _variable_names),
    "models.experiment.code": ("experiment_code_models", _pair(_text)),
    "models.experiment.analysis_effort": ("experiment_analysis_efforts", _pair(_choice(*CLAUDE_5_EFFORTS))),
    "outcomes.max_reads_per_run": ("outcome_reads_per_run", _positive_int),
}
PRICE_FIELDS = ("provider", "input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


class _TypeProblem(Exception):
    """Internal: a value has the wrong type; turned into a ConfigError naming the file."""


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(known)}"


def _suggest_sibling(prefix: str, name: str) -> str:
    """The nearest valid key at ``name``'s level (under ``prefix``, "" for the sections), else that level's keys."""
    names = sorted({key[len(prefix):].split(".")[0] for key in [*SCHEMA, "prices"] if key.startswith(prefix)})
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{prefix}{close[0]}'?"
    return f"; valid keys: {', '.join(prefix + sibling for sibling in names)}"


def _key_lines(text: str) -> dict[str, int]:
    """Dotted key -> the line (from 1) it is written on, for messages that name it."""
    lines: dict[str, int] = {}

    def walk(prefix: str, node: yaml.Node | None) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines.setdefault(key, key_node.start_mark.line + 1)
            walk(key + ".", value_node)

    try:
        walk("", yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:  # already loaded once: only an exotic document gets here, and lines are extra
        pass
    return lines


def _where(source: str, lines: Mapping[str, int], key: str) -> str:
    """``source: line N`` for a key written in the file, else ``source``."""
    line = lines.get(key)
    return f"{source}: line {line}" if line else source


def _flatten(data: Mapping[str, Any], source: str, lines: Mapping[str, int]) -> dict[str, Any]:
    """Nested YAML mapping -> {dotted key: value}, refusing unknown keys with the nearest valid
    key of the same level (a misspelt section gets the section's name, not all forty keys)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for raw_key, value in node.items():
            key = f"{prefix}{raw_key}"
            if key in SCHEMA or key == "prices":
                flat[key] = value
            elif any(name.startswith(key + ".") for name in SCHEMA):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{_where(source, lines, key)}: '{key}' must be a mapping of settings")
                walk(key + ".", value)
            else:
                raise ConfigError(f"{_where(source, lines, key)}: unknown key '{key}'{_suggest_sibling(prefix, str(raw_key))}")

    walk("", data)
    return flat


def _price_overrides(source: str, value: Any, base: PriceTable, lines: Mapping[str, int]) -> dict[str, Price]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_where(source, lines, 'prices')}: 'prices' must map model names to prices in USD per million tokens")
    overrides: dict[str, Price] = {}
    for model, entry in value.items():
        key = f"prices.{model}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{_where(source, lines, key)}: '{key}' must be a mapping with input and output prices")
        for name in entry:
            if name not in PRICE_FIELDS:
                raise ConfigError(f"{_where(source, lines, f'{key}.{name}')}: unknown key '{key}.{name}'"
                                  f"{_suggest(str(name), list(PRICE_FIELDS))}")
        existing = base.find(str(model))
        provider = entry.get("provider", existing.provider if existing else None)
        if provider not in (ANTHROPIC, OPENAI):
            raise ConfigError(f"{_where(source, lines, key)}: '{key}.provider' must be 'anthropic' or 'openai'")
        if existing is None and ("input" not in entry or "output" not in entry):
            raise ConfigError(f"{_where(source, lines, key)}: '{key}' is a new model: give both 'input' and 'output' (USD per million tokens)")

        def rate(name: str, fallback: Decimal, entry: Mapping[str, Any] = entry, key: str = key) -> Decimal:
            """USD per million tokens from the entry, or ``fallback`` when it is not given."""
            if name not in entry:
                return fallback
            try:
                micro = _usd(f"{key}.{name}", entry[name])
            except _TypeProblem as problem:
                raise ConfigError(f"{_where(source, lines, f'{key}.{name}')}: {problem}") from None
            if micro < 0:
                raise ConfigError(f"{_where(source, lines, f'{key}.{name}')}: '{key}.{name}' must not be negative")
            return Decimal(micro) / 1_000_000

        input_rate = rate("input", existing.input if existing else Decimal(0))
        if existing is not None and "input" not in entry:
            cache_defaults = (existing.cache_write_5m, existing.cache_write_1h, existing.cache_read)
        elif provider == ANTHROPIC:  # Anthropic's published multipliers hold for every model
            cache_defaults = (input_rate * Decimal("1.25"), input_rate * 2, input_rate / 10)
        else:  # OpenAI: no cached price given for this input price, so never under-count
            cache_defaults = (input_rate, input_rate, input_rate)
        overrides[str(model)] = Price(
            model=str(model),
            provider=str(provider),
            input=input_rate,
            output=rate("output", existing.output if existing else Decimal(0)),
            cache_write_5m=rate("cache_write_5m", cache_defaults[0]),
            cache_write_1h=rate("cache_write_1h", cache_defaults[1]),
            cache_read=rate("cache_read", cache_defaults[2]),
            source=source,
            as_of="config",
            aliases=existing.aliases if existing else (),
            retires=existing.retires if existing else None,
            successor=existing.successor if existing else None,
            max_priced_input_tokens=existing.max_priced_input_tokens if existing else None,
            **_capabilities(existing),
        )
    return overrides


def _capabilities(existing: Price | None) -> dict[str, Any]:
    """What an override keeps of the built-in entry besides its rates: tiers, limits, efforts."""
    if existing is None:
        return {}
    names = ("long_context_tokens", "long_input_factor", "long_output_factor", "efforts", "thinking_types",
             "writes_cache_unasked", "max_output_tokens")
    return {name: getattr(existing, name) for name in names}


def default_milestones(budget_micro_usd: int) -> tuple[int, ...]:
    """A third, two thirds and all of the budget, to the cent: $5/$10/$15 for the default $15."""
    cents = budget_micro_usd // 10_000
    return tuple(sorted({round(cents * share / 3) * 10_000 for share in (1, 2, 3)} - {0} | {budget_micro_usd}))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a second ``budget:`` block would silently undo the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = lines.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: SafeLoader's own error names it
                continue
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (also on line {first + 1}); keep one", key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_config(text: str, source: str, today: dt.date) -> Config:
    """Validate YAML text into a Config. ``today`` decides which models have retired: they are
    replaced by their successors (see ``Config.in_service``)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}:{where}: YAML syntax error: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the file must be a YAML mapping of settings (like 'budget: {{monthly_usd: 15}}')")

    lines = _key_lines(text)
    flat = _flatten(data, source, lines)
    values: dict[str, Any] = {"source": source, "from_file": True}
    defaults = Config()
    chosen = set()
    for key, value in flat.items():
        if key == "prices":
            continue
        field_name, validate = SCHEMA[key]
        try:
            values[field_name] = validate(key, value)
        except _TypeProblem as problem:
            raise ConfigError(f"{_where(source, lines, key)}: {problem}") from None
        if values[field_name] != getattr(defaults, field_name):
            chosen.add(key)
    values["chosen"] = frozenset(chosen)

    if "monthly_budget_micro_usd" in values and "milestones_micro_usd" not in values:
        values["milestones_micro_usd"] = default_milestones(values["monthly_budget_micro_usd"])
    table = PriceTable.builtin()
    if "prices" in flat and flat["prices"] is not None:
        table = table.with_overrides(_price_overrides(source, flat["prices"], table, lines))
    config = Config(prices=table, **values)
    _check_consistency(config, today)
    return config.in_service(today)


def _check_consistency(config: Config, today: dt.date) -> None:
    source = config.source
    # A run's requests (run.request_timeout_seconds is cut to the time left) end by its deadline:
    # a reservation shorter than that, with room for clock skew, could end while a call still runs.
    outlive = max(MIN_RESERVATION_MINUTES, math.ceil(config.run_deadline_seconds / 60) + CLOCK_SKEW_MINUTES)
    if config.reservation_minutes < outlive:
        raise ConfigError(
            f"{source}: ledger.reservation_minutes ({config.reservation_minutes}) must be at least {outlive}: a reservation "
            f"must outlive the run, whose requests (run.request_timeout_seconds {config.request_timeout_seconds:g}) end by "
            f"its deadline (run.deadline_minutes {config.run_deadline_seconds / 60:g}), plus {CLOCK_SKEW_MINUTES} minutes "
            "for runners' clocks to disagree; raise ledger.reservation_minutes or lower run.deadline_minutes"
        )
    if config.ledger_path.casefold() == config.tasks_file.casefold():
        raise ConfigError(f"{source}: ledger.path and tasks.file are both {config.ledger_path!r}; give the ledger its own file")
    if config.ledger_commit_seconds >= config.run_deadline_seconds:
        raise ConfigError(
            f"{source}: run.ledger_commit_seconds ({config.ledger_commit_seconds:g}) must be less than "
            f"run.deadline_minutes ({config.run_deadline_seconds / 60:g} minutes)"
        )
    if config.experiment_code_models and config.experiment_analysis_efforts:
        raise ConfigError(f"{source}: models.experiment compares one thing at a time: set code or analysis_effort, not both")
    over = [m for m in config.milestones_micro_usd if m > config.monthly_budget_micro_usd]
    if over:
        raise ConfigError(
            f"{source}: budget.milestones_usd has {format_usd(over[0])}, above budget.monthly_usd "
            f"{format_usd(config.monthly_budget_micro_usd)}; lower the milestone or raise the budget "
            f"(or leave milestones_usd out: it defaults to a third, two thirds and all of the budget)"
        )
    for key, model in config.configured_models().items():
        price = config.prices.find(model)
        if price is None:
            raise ConfigError(
                f"{source}: {key}: no price is known for model '{model}'{_suggest(model, config.prices.known_models())}"
                f" (or add it under 'prices')"
            )
        step = "code" if key.startswith(("models.code", "models.fallbacks.code", "models.experiment.code")) else "analysis"
        # the model itself, and from its retirement date the successor a run would use instead
        for name in dict.fromkeys((model, config.prices.in_service(model, today))):
            used = config.prices.find(name)
            if used is None or used.provider != STEP_PROVIDERS[step]:
                raise ConfigError(
                    f"{source}: {key}: '{name}' is "
                    + (f"an {used.provider} model" if used else "not in the price table")
                    + f", but the {step} step calls the {STEP_APIS[step]}; pick a"
                    f"{'n OpenAI' if step == 'code' else ' Claude'} model"
                )


def load_config(path: Path | None, repo_root: Path, today: dt.date) -> Config:
    """The config at ``path`` (``--config``), else the repository's default file, else defaults;
    with ``bot_paths``, the bot's own code in ``repo_root`` (a template copy), left out of the context."""
    config = _read_config(path, repo_root, today)
    return replace(config, bot_paths=bot_paths(repo_root)) if config.context_exclude_bot else config


def _read_config(path: Path | None, repo_root: Path, today: dt.date) -> Config:
    if path is None:
        default = repo_root / DEFAULT_CONFIG_PATH
        if not default.exists():
            config = Config(source=BUILTIN_SOURCE)
            _check_consistency(config, today)
            return config.in_service(today)
        path = default
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check --config (a relative path is relative to --repo)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file; check --config") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file: {err.strerror or err}") from None
    try:
        text = decode_utf8(data, "config file")
    except ValueError as problem:
        raise ConfigError(f"{path}: {problem}") from None
    return parse_config(text, str(path), today)
