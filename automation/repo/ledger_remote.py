"""Where the ledger lives: this repository, or another one shared by every repository naming it
(``ledger.repository``), reached with its own token.

A shared ledger is fetched and pushed through a git directory inside this checkout's ``.git``
(``gitops.remote_clone_dir``), so the ledger's reads, its compare-and-swap and the rescue branch
work there exactly as on this repository's own origin. The token never touches a file or a URL:
it reaches git as an ``http.<url>.extraheader`` set in git's environment (``GIT_CONFIG_*``), as
actions/checkout sends ``GITHUB_TOKEN``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.config import REPOSITORY_NAME, Config
from ..core.errors import MissingSecretError
from . import gitops

# The variable holding the token that may push to a shared ledger's repository.
TOKEN_VARIABLE = "AI_ORCHESTRATION_LEDGER_TOKEN"
GUIDE = "docs/COST-TRACKING.md#one-budget-across-repositories"


class LedgerAccessError(MissingSecretError):
    """No token, or one that may not push, for the shared ledger's repository: found before any
    paid call (exit 1, as a missing provider key)."""

    step = "ledger"


@dataclass(frozen=True)
class LedgerHome:
    """Where a run reads and commits its ledger: ``root``, a git checkout whose ``origin`` holds
    it, used with ``env``. ``repository`` is this repository (owner/name, the name its rows carry
    in a shared ledger); ``shared`` is ``ledger.repository`` as configured (None: its own ledger)."""

    root: Path
    env: Mapping[str, str]
    repository: str
    shared: str | None = None


def this_repository(repo: Path, env: Mapping[str, str]) -> str:
    """owner/name from Actions' ``GITHUB_REPOSITORY``, else the checkout's directory name."""
    return env.get("GITHUB_REPOSITORY") or repo.name


def url_of(spec: str, env: Mapping[str, str]) -> str:
    """``owner/name`` on this job's GitHub host (``GITHUB_SERVER_URL``, else github.com), or
    ``spec`` itself: any URL or path git takes."""
    if REPOSITORY_NAME.fullmatch(spec) and not Path(spec).exists():
        server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
        return f"{server}/{spec}.git"
    return spec


def open_home(repo: Path, config: Config, env: Mapping[str, str], *, writing: bool) -> LedgerHome:
    """The ledger's home for a run (``writing``) or a reader such as ``status``.

    Raises LedgerAccessError naming TOKEN_VARIABLE when a run would push to an HTTP(S) ledger
    repository without it; GitError when the local git directory cannot be made.
    """
    repository = this_repository(repo, env)
    spec = config.ledger_repository
    if spec is None:
        return LedgerHome(repo, env, repository)
    url = url_of(spec, env)
    token = env.get(TOKEN_VARIABLE, "").strip()
    over_http = url.startswith(("https://", "http://"))
    if writing and over_http and not token:
        raise LedgerAccessError(
            f"ledger.repository is {spec} ({url}) but {TOKEN_VARIABLE} is not set: set it to a token that may push "
            f"there (a fine-grained PAT with Contents: read and write on that one repository, or a GitHub App "
            f"installation token); see {GUIDE}"
        )
    ledger_env = dict(env)
    if over_http and token:
        ledger_env.update(_auth_header(env, url, token))
    name = "ledger-" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return LedgerHome(gitops.remote_clone_dir(repo, name, url, env), ledger_env, repository, spec)


def check_push(home: LedgerHome, branch: str) -> None:
    """Before any paid call: LedgerAccessError when the shared ledger's repository refuses this
    run's push (a read-only or wrong token), naming the variable and the right to give it."""
    if home.shared is None:
        return
    if gitops.known_remote_tip(home.root, branch, home.env) is None:  # a ledger.branch the first run creates
        branch = gitops.remote_default_branch(home.root, home.env)
    refused = gitops.push_refusal(home.root, branch, home.env)
    if refused is not None:
        raise LedgerAccessError(
            f"{TOKEN_VARIABLE} may not push to the shared ledger's repository {home.shared} ({refused}): give it "
            f"Contents: read and write on that repository (fine-grained PAT or GitHub App installation token); see {GUIDE}"
        )


def _auth_header(env: Mapping[str, str], url: str, token: str) -> dict[str, str]:
    """git configuration in the environment sending ``token`` to ``url`` only, after any the
    environment already sets (``GIT_CONFIG_COUNT``)."""
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    basic = base64.b64encode(f"x-access-token:{token}".encode("utf-8")).decode("ascii")
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": f"http.{url}.extraheader",
        f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {basic}",
    }
