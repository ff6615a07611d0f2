"""Which environment variable holds each provider's API key, checked before any call.

Kept apart from ``providers`` so a run that stops on policy (no task, budget, PR limit) can
check its keys without loading the SDKs, which take seconds to import.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from ..core.errors import MissingSecretError
from ..core.prices import ANTHROPIC, OPENAI

KEY_VARIABLES = {ANTHROPIC: "ANTHROPIC_API_KEY", OPENAI: "OPENAI_API_KEY"}
# Where each provider's API is unless ANTHROPIC_BASE_URL / OPENAI_BASE_URL say otherwise.
ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_PAGES = {
    ANTHROPIC: "https://console.anthropic.com/settings/keys",
    OPENAI: "https://platform.openai.com/api-keys",
}


def api_key(env: Mapping[str, str], provider: str) -> str:
    """The provider's key from ``env``, or MissingSecretError naming the variable and the fix."""
    key = env.get(KEY_VARIABLES[provider], "").strip()
    if not key:
        raise MissingSecretError(missing_keys_message([provider]))
    return key


def missing_keys_message(providers: Iterable[str]) -> str:
    """One line naming every missing key, where to get it, and how to set it locally and in Actions."""
    ordered = sorted(set(providers))
    variables = [KEY_VARIABLES[provider] for provider in ordered]
    several = len(variables) > 1
    return (
        f"{' and '.join(variables)} {'are' if several else 'is'} not set. "
        f"Get {'the keys' if several else 'a key'} at {' and '.join(KEY_PAGES[provider] for provider in ordered)}; "
        f"on your machine: export {' '.join(f'{variable}=…' for variable in variables)}; "
        f"in GitHub Actions: add {'each' if several else 'it'} as a repository secret (Settings > Secrets and variables > "
        f"Actions) and pass {'them' if several else 'it'} in the workflow step's env. A dry run (run --dry-run) needs no keys."
    )


def require_keys(env: Mapping[str, str], providers: Iterable[str]) -> None:
    """Fail before any call when a key the configured models need is missing, naming them all."""
    missing = [provider for provider in set(providers) if not env.get(KEY_VARIABLES[provider], "").strip()]
    if missing:
        raise MissingSecretError(missing_keys_message(missing))
