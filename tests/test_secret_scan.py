"""secret_scan: gitleaks' vendored rules, read in Python as gitleaks reads them."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from automation.core import secret_scan
from tests.secret_samples import assignment, samples

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = samples()


def test_every_vendored_rule_compiles_without_warnings() -> None:
    secret_scan.rule_set.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a nested set or a bad escape would warn, then change meaning
        rules = secret_scan.rule_set()
    assert len(rules.rules) >= 200
    assert {"aws-access-token", "github-pat", "private-key", "anthropic-api-key", "generic-api-key"} <= {r.id for r in rules.rules}


@pytest.mark.parametrize(("go", "python"), [
    (r"\b(p8e-(?i)[a-z0-9]{32})", r"\b(p8e-(?i:[a-z0-9]{32}))"),  # a flag mid-pattern covers the rest of its group
    (r"a|(?i)b|c", r"a|(?i:b|c)"),
    (r"(?i)abc", r"(?i)abc"),  # at the start it is global, as Python wants
    (r"\b(pat[[:alnum:]]{14})", r"\b(pat[a-zA-Z0-9]{14})"),
    (r"x(?:\s|\z)", r"x(?:\s|\Z)"),
    (r"[[a]", r"[\[a]"),
])
def test_go_patterns_are_read_the_same_way_in_python(go: str, python: str) -> None:
    assert secret_scan.python_pattern(go) == python


@pytest.mark.parametrize("rule", SAMPLES)
def test_each_kind_of_credential_is_found_where_it_is(rule: str) -> None:
    secret = SAMPLES[rule]
    text = f"# settings\n\n{assignment(rule, secret)}\nDEBUG = True\n"
    [finding] = secret_scan.scan(text, "app/settings.py")
    assert finding.rule == rule and finding.line == 3
    assert secret_scan.summary([finding]) == f"line 3: {rule}"
    if rule != "private-key":
        assert text[finding.start:finding.end] == secret


def test_redacting_says_what_was_withheld_and_keeps_the_rest() -> None:
    log = f"Run deploy\ncurl -H 'Authorization: token {SAMPLES['github-pat']}' https://api.github.com\nexit code 1\n"
    clean, found = secret_scan.redact(log)
    assert SAMPLES["github-pat"] not in clean and "[secret withheld: github-pat]" in clean
    assert clean.startswith("Run deploy\n") and clean.endswith("exit code 1\n") and len(found) == 1


def test_masking_keeps_the_size_and_covers_an_excerpt_of_a_key() -> None:
    key = SAMPLES["private-key"]
    text = f"KEY = '''\n{key}\n'''\n"
    found = secret_scan.scan(text, "app/keys.py")
    masked = secret_scan.mask(text, found, text)
    assert len(masked) == len(text) and all(line not in masked for line in key.splitlines()[1:-1])
    excerpt = "\n".join(text.splitlines()[2:5])  # a slice of the key, no BEGIN or END line
    assert not re.search(r"[A-Za-z0-9+/]{20}", secret_scan.mask(excerpt, found, text))


@pytest.mark.parametrize("text", [
    'password = settings.DATABASE_PASSWORD\napi_key = os.environ["API_KEY"]\n',
    "token = ${{ secrets.GITHUB_TOKEN }}\n",
    'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"\n',  # AWS's documented example key
    "def get_token(self, key):\n    return self.tokens[key]\n",
    f"TOKEN = '{SAMPLES['github-pat']}'  # gitleaks:allow\n",  # the author's word for a false positive
])
def test_ordinary_code_and_allowed_lines_are_no_findings(text: str) -> None:
    assert secret_scan.scan(text, "app/config.py") == []


def test_a_lock_file_gitleaks_skips_is_skipped_and_a_path_rule_flags_by_name() -> None:
    assert secret_scan.scan(assignment("github-pat", SAMPLES["github-pat"]), "web/package-lock.json") == []
    assert secret_scan.path_rule("deploy/client.p12") == "pkcs12-file"
    assert secret_scan.path_rule("deploy/client.py") is None


def test_the_secret_scan_benchmark_finds_every_planted_credential_and_flags_no_clean_file() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_secret_scan.py"), "--files", "40"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"48 files, 0\.\d MB: every file \d+\.\d\d s CPU \(\d+\.\d MB/s\), median of 5", lines[0]), lines[0]
    assert lines[2] == "planted credentials found: 8 of 8; clean files flagged: 0" and lines[-1] == "targets met"
