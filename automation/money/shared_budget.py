"""One budget across repositories: a ledger kept in another repository (``ledger.repository``)
states the budget in its own ``.github/ai-orchestration.yml``, on its default branch, where
people change it by pull request like any setting.

Its ``budget.*`` keys are the organisation's (over every repository's runs) and replace this
repository's own; its ``budget.repositories`` gives each repository a monthly share of them
(``windows.Share``). Every reservation checks both (windows.available).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from ..core.config import DEFAULT_CONFIG_PATH, Config, parse_config
from ..core.errors import ConfigError
from ..core.textfiles import decode_utf8
from ..repo import gitops
from ..repo.ledger_remote import LedgerHome
from .windows import Share

# The settings the shared ledger's config decides for every repository that shares it.
BUDGET_FIELDS = (
    "monthly_budget_micro_usd", "daily_budget_micro_usd", "weekly_budget_micro_usd", "run_budget_micro_usd",
    "warn_at_percent", "milestones_micro_usd", "repository_shares",
)


def organisation_config(home: LedgerHome, today: dt.date) -> Config:
    """The shared ledger's own config, from its repository's default branch.

    Raises ConfigError naming the file when it is missing or invalid (a shared budget must be
    stated), GitError when the repository cannot be read.
    """
    assert home.shared is not None, "only a shared ledger has a config of its own"
    default = gitops.remote_default_branch(home.root, home.env)
    tip = gitops.fetch(home.root, default, home.env)
    assert tip is not None, "fetch raises for a missing branch"
    source = f"{home.shared}:{DEFAULT_CONFIG_PATH}"
    data = gitops.remote_file(home.root, tip, DEFAULT_CONFIG_PATH, home.env)
    if data is None:
        raise ConfigError(
            f"{source}: missing on {default}; the shared ledger's repository states the organisation's budget there "
            "(budget.monthly_usd, and budget.repositories for each repository's share)"
        )
    try:
        text = decode_utf8(data, "config file")
    except ValueError as problem:
        raise ConfigError(f"{source}: {problem}") from None
    return parse_config(text, source, today)


def apply(config: Config, home: LedgerHome, today: dt.date) -> tuple[Config, Share | None, list[str]]:
    """``config`` with the budget of the ledger's home, this repository's share in it, and notes
    for the log. A repository's own ledger: ``config`` unchanged, no share."""
    if home.shared is None:
        return config, None, []
    organisation = organisation_config(home, today)
    budget = {name: getattr(organisation, name) for name in BUDGET_FIELDS}
    shares = dict(organisation.repository_shares)
    share = Share(home.repository, home.shared, shares.get(home.repository.casefold()))
    ignored = sorted(key for key in config.chosen if key.startswith("budget."))
    notes = [f"{', '.join(ignored)} in {config.source} not used: the budget is the shared ledger's ({home.shared})"] if ignored else []
    return replace(config, **budget), share, notes
