"""Which environment variable holds each provider's API key, checked before any call.

Kept apart from ``providers`` so a run that stops on policy (no task, budget, PR limit) can
check its keys without loading the SDKs, which take seconds to import.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .errors import MissingSecretError
from .prices import ANTHROPIC, OPENAI

KEY_VARIABLES = {ANTHROPIC: "ANTHROPIC_API_KEY", OPENAI: "OPENAI_API_KEY"}
KEY_PAGES = {
    ANTHROPIC: "https://console.anthropic.com/settings/keys",
    OPENAI: "https://platform.openai.com/api-keys",
}


def api_key(env: Mapping[str, str], provider: str) -> str:
    """The provider's key from ``env``, or MissingSecretError naming the variable and the fix."""
    variable = KEY_VARIABLES[provider]
    key = env.get(variable, "").strip()
    if not key:
        raise MissingSecretError(
            f"{variable} is not set. Add it as a repository secret (Settings > Secrets and variables > "
            f"Actions) with a key from {KEY_PAGES[provider]}, and pass it to the workflow step's env."
        )
    return key


def require_keys(env: Mapping[str, str], providers: Iterable[str]) -> None:
    """Fail before any call when a key the configured models need is missing."""
    for provider in sorted(set(providers)):
        api_key(env, provider)
