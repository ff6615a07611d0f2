"""Keeps secrets out of everything the bot writes: output, logs, PRs, summaries, Discord."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

SECRET_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AI_ORCHESTRATION_TOKEN",
    "AI_ORCHESTRATION_LEDGER_TOKEN",
    "DISCORD_WEBHOOK_URL",
)
# Other variables whose name says they hold a secret (AWS_SECRET_ACCESS_KEY, NPM_TOKEN, DB_PASSWORD...).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|WEBHOOK", re.IGNORECASE)
SECRET_MIN_CHARS = 8  # shorter values of such variables are flags or names ("1", "us-east"), not secrets
_CREDENTIALS_IN_URL = re.compile(r"(https?://)[^/@\s:]+(:[^/@\s]*)?@")
MASK = "***"


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a secret (the bot's own, ``*_KEY``, ``*TOKEN*``, ...)."""
    return name in SECRET_VARIABLES or bool(_SECRET_NAME.search(name))


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The secret values present in ``env``, longest first, plus the token part of a webhook URL.

    The bot's own variables always count; any other variable counts when its name says it
    holds a secret (``*_KEY``, ``*TOKEN*``, ``*PASSWORD*``...) and its value is at least
    SECRET_MIN_CHARS long, so a file echoing a deployment secret is redacted from prompts too.
    """
    values = {env[name].strip() for name in SECRET_VARIABLES if env.get(name, "").strip()}
    values |= {value.strip() for name, value in env.items() if looks_secret(name) and len(value.strip()) >= SECRET_MIN_CHARS}
    webhook_path = [part for part in urlsplit(env.get("DISCORD_WEBHOOK_URL", "").strip()).path.split("/") if part]
    if len(webhook_path) >= 2 and len(webhook_path[-1]) >= 8:  # .../webhooks/<id>/<token>
        values.add(webhook_path[-1])
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value, and any user:password@ in a URL, with ***."""
    for value in secrets:
        text = text.replace(value, MASK)
    return _CREDENTIALS_IN_URL.sub(rf"\1{MASK}@", text)


def redact_tree(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {key: redact_tree(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(item, secrets) for item in value]
    return value


def mask_commands(env: Mapping[str, str]) -> list[str]:
    """``::add-mask::`` lines so GitHub Actions hides derived secret values in its logs."""
    return [f"::add-mask::{value}" for value in secret_values(env)]
