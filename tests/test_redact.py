"""Secrets never reach what the bot writes; in Actions, derived values are masked too."""

from automation.core.redact import mask_commands, redact, secret_values

URL = "https://discord.com/api/webhooks/123456789/abcDEF-secret-token_value"
TOKEN = "abcDEF-secret-token_value"


def test_mask_commands_hide_every_secret_and_the_webhook_token() -> None:
    env = {"DISCORD_WEBHOOK_URL": URL, "OPENAI_API_KEY": "sk-test-openai-key", "GITHUB_TOKEN": "ghs_token_value"}
    lines = mask_commands(env)
    assert f"::add-mask::{URL}" in lines and f"::add-mask::{TOKEN}" in lines
    assert "::add-mask::sk-test-openai-key" in lines and "::add-mask::ghs_token_value" in lines
    assert f"::add-mask::{TOKEN}" in mask_commands({"DISCORD_WEBHOOK_URL": f"{URL}?thread_id=1"})
    assert mask_commands({}) == []


def test_redact_replaces_values_and_url_credentials() -> None:
    secrets = secret_values({"ANTHROPIC_API_KEY": "sk-ant-secret-1234", "DISCORD_WEBHOOK_URL": URL})
    text = f"key sk-ant-secret-1234 failed; posting to {URL}; remote https://x-access-token:abc123@github.com/o/r"
    cleaned = redact(text, secrets)
    assert "sk-ant-secret-1234" not in cleaned and TOKEN not in cleaned and "abc123" not in cleaned
    assert "https://***@github.com/o/r" in cleaned


def test_other_variables_named_as_secrets_are_redacted_too() -> None:
    env = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "NPM_TOKEN": "npm_abcdefgh1234",
        "DB_PASSWORD": "hunter2-but-longer",
        "DEBUG_KEY_ID": "1",  # too short to be a secret
        "HOME": "/home/runner/work/project",  # not named as a secret
    }
    secrets = secret_values(env)
    cleaned = redact("wJalrXUtnFEMI/K7MDENG npm_abcdefgh1234 hunter2-but-longer key 1 in /home/runner/work/project", secrets)
    assert cleaned == "*** *** *** key 1 in /home/runner/work/project"


def test_redact_tree_masks_every_string_in_a_json_like_value() -> None:
    from automation.core.redact import redact_tree

    value = {"title": "key sk-1234567", "fields": [{"value": "sk-1234567!"}, 3, None], "n": 1.5}
    assert redact_tree(value, ["sk-1234567"]) == {"title": "key ***", "fields": [{"value": "***!"}, 3, None], "n": 1.5}
