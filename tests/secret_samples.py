"""Credentials of the shapes gitleaks' rules know, made up at run time from a seeded generator.

None is real and none is written in the sources (a literal would trip every secret scanner that
reads this repository, GitHub's push protection included): each is built from its format.
"""

from __future__ import annotations

import base64
import random
import string

ALNUM = string.ascii_letters + string.digits


def samples(seed: int = 20) -> dict[str, str]:
    """``{gitleaks rule id: a credential that rule finds}``."""
    rng = random.Random(seed)

    def pick(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    key_body = base64.b64encode(rng.randbytes(600)).decode()
    pem_lines = "\n".join(key_body[i:i + 64] for i in range(0, len(key_body), 64))
    begin, end = "-----BEGIN " + "RSA PRIVATE KEY-----", "-----END " + "RSA PRIVATE KEY-----"
    return {
        "private-key": f"{begin}\n{pem_lines}\n{end}",
        "aws-access-token": "AKIA" + pick(string.ascii_uppercase + "234567", 16),
        "github-pat": "ghp" + "_" + pick(ALNUM, 36),
        "anthropic-api-key": "sk-ant-" + "api03-" + pick(ALNUM, 93) + "AA",
        "openai-api-key": "sk-proj-" + pick(ALNUM, 74) + "T3Blbk" + "FJ" + pick(ALNUM, 74),
        "gcp-api-key": "AIza" + pick(ALNUM, 35),
        "slack-bot-token": "xoxb-" + pick(string.digits, 12) + "-" + pick(string.digits, 12) + "-" + pick(ALNUM, 24),
        "stripe-access-token": "sk_" + "live_" + pick(ALNUM, 24),
    }


def assignment(rule: str, secret: str) -> str:
    """How a credential sits in a file: an assignment for a token, a block for a key."""
    return secret if rule == "private-key" else f'{rule.replace("-", "_").upper()} = "{secret}"'
