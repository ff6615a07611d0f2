"""Secrets in text found by well-known patterns, so none reaches a model or a commit.

The rules are gitleaks' own (``gitleaks/gitleaks.toml`` beside this module, vendored verbatim
from https://github.com/gitleaks/gitleaks, MIT licence in ``gitleaks/LICENSE``; the version is
in ``GITLEAKS_VERSION``): about 220 patterns for private keys, cloud keys and the tokens of
the major providers, each with gitleaks' keywords, entropy floor and allowlists. They are read
the way gitleaks reads them: a rule runs only on text holding one of its keywords, its secret
is the first non-empty capture group (or ``secretGroup``), a secret at or under the rule's
Shannon entropy is no finding, nor is one the global or the rule's allowlists allow, nor one on
a line marked ``gitleaks:allow``. Rules that name a path apply only to such paths, and files
gitleaks never scans (lock files, vendored packages, images) are skipped likewise.

What gitleaks does and this does not: decoding base64/hex/percent-encoded text before matching,
and multi-part rules (``[[rules.required]]``; the vendored set has none).

Go's regular expressions (RE2) differ from Python's in three ways the rules use: a flag group
such as ``(?i)`` in the middle of a pattern (scoped to the rest of its group in Go, an error in
Python), POSIX classes (``[[:alnum:]]``) and ``\\z``. ``python_pattern`` rewrites them.

Updating the rules: replace ``gitleaks/gitleaks.toml`` with a newer release's
``config/gitleaks.toml`` and set ``GITLEAKS_VERSION``; tests/test_secret_scan.py checks every
rule still compiles and finds the examples it must.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (a 3.10-only requirement)
    import tomli as tomllib

GITLEAKS_VERSION = "v8.30.0-27-gb58d3f10"  # `git describe` of the vendored gitleaks.toml
RULES_FILE = Path(__file__).with_name("gitleaks") / "gitleaks.toml"
ALLOW_SIGNATURE = "gitleaks:allow"
WITHHELD = "[secret withheld: {rule}]"  # what a redacted secret reads as

_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "lower": "a-z", "upper": "A-Z",
    "space": r"\s", "xdigit": "0-9a-fA-F", "word": r"\w", "punct": r"!-/:-@\[-`{-~",
}


@dataclass(frozen=True)
class Finding:
    """One secret: the rule that found it (gitleaks' id and description), its 1-based line, and
    the secret's span in the scanned text (character offsets, end exclusive)."""

    rule: str
    description: str
    line: int
    start: int
    end: int

    def describe(self) -> str:
        """``line 3: aws-access-token`` (never the secret itself)."""
        return f"line {self.line}: {self.rule}"


@dataclass(frozen=True)
class _Allowlist:
    regexes: re.Pattern[str] | None
    stopwords: tuple[str, ...]
    paths: re.Pattern[str] | None
    target: str  # "secret", "match" or "line"
    all_of: bool  # condition = "AND"

    def allows(self, secret: str, match: str, line: str, path: str) -> bool:
        target = {"match": match, "line": line}.get(self.target, secret)
        by_regex = bool(self.regexes and target and self.regexes.search(target))
        lowered = secret.lower()
        by_word = any(word in lowered for word in self.stopwords)
        if not self.all_of:
            return by_regex or by_word
        checks = [by_regex] if self.regexes else []
        checks += [by_word] if self.stopwords else []
        checks += [bool(path and self.paths.search(path))] if self.paths else []
        return bool(checks) and all(checks)


@dataclass(frozen=True)
class _Rule:
    id: str
    description: str
    regex: re.Pattern[str] | None
    anchor: re.Pattern[str] | None  # the regex without its leading identifier, when it has one
    path: re.Pattern[str] | None
    keywords: tuple[str, ...]
    entropy: float
    secret_group: int
    allowlists: tuple[_Allowlist, ...]


@dataclass(frozen=True)
class _RuleSet:
    rules: tuple[_Rule, ...]
    allowlist: _Allowlist
    skipped_paths: re.Pattern[str] | None
    path_rules: tuple[tuple[str, re.Pattern[str]], ...]  # (id, path) of the rules that flag a file by its path alone: asked of every file


def python_pattern(go: str) -> str:
    """A Go (RE2) pattern as Python ``re`` reads it the same: a mid-pattern flag group becomes a
    scoped group to the end of its enclosing group, POSIX classes are spelled out, ``\\z`` is
    ``\\Z``, and a ``[`` inside a class is escaped (Python warns of nested sets)."""
    out: list[str] = []
    pending = [0]  # per open group: scoped-flag groups opened in it, closed with it
    index = 0
    while index < len(go):
        char = go[index]
        if char == "\\":
            pair = go[index:index + 2]
            out.append(r"\Z" if pair == r"\z" else pair)
            index += 2
        elif char == "[":
            end, body = _char_class(go, index)
            out.append(body)
            index = end
        elif char == "(":
            flags = re.match(r"\(\?([a-zA-Z-]+)\)", go[index:])
            if flags and (index > 0 or "-" in flags.group(1)):
                out.append(f"(?{flags.group(1)}:")
                pending[-1] += 1
                index += len(flags.group(0))
            else:
                out.append(char)
                pending.append(0)
                index += 1
        elif char == ")":
            out.append(")" * pending.pop() + ")")
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out) + ")" * pending[0]


def _char_class(go: str, start: int) -> tuple[int, str]:
    """The class opening at ``start``: where it ends, and its Python spelling."""
    out = ["["]
    index = start + 1
    if go[index:index + 1] == "^":
        out.append("^")
        index += 1
    first = True
    while index < len(go):
        char = go[index]
        if char == "]" and not first:
            return index + 1, "".join(out) + "]"
        posix = re.match(r"\[:(\^?)([a-z]+):\]", go[index:])
        if posix and posix.group(2) in _POSIX_CLASSES and not posix.group(1):
            out.append(_POSIX_CLASSES[posix.group(2)])
            index += len(posix.group(0))
        elif char == "\\":
            out.append(go[index:index + 2])
            index += 2
        else:
            out.append("\\" + char if char in "[]" else char)
            index += 1
        first = False
    raise ValueError(f"unterminated character class in {go!r}")


def _compile(patterns: Iterable[str]) -> re.Pattern[str] | None:
    joined = "|".join(python_pattern(f"(?:{p})") for p in patterns)  # a leading (?i) is scoped to its own pattern
    return re.compile(joined) if joined else None


def _allowlist(data: dict[str, Any]) -> _Allowlist:
    return _Allowlist(
        regexes=_compile(data.get("regexes", [])), stopwords=tuple(w.lower() for w in data.get("stopwords", [])),
        paths=_compile(data.get("paths", [])), target=data.get("regexTarget", "secret"),
        all_of=data.get("condition", "OR").upper() == "AND",
    )


@functools.cache
def rule_set() -> _RuleSet:
    """The vendored rules, compiled once (about 0.1 s)."""
    data = tomllib.loads(RULES_FILE.read_text(encoding="utf-8"))
    global_lists = [data["allowlist"]] if "allowlist" in data else []
    global_lists += data.get("allowlists", [])
    merged: dict[str, list[str]] = {"regexes": [], "stopwords": [], "paths": []}
    for entry in global_lists:
        for key, values in merged.items():
            values += entry.get(key, [])
    rules = tuple(
        _Rule(
            id=rule["id"], description=rule.get("description", rule["id"]),
            regex=re.compile(python_pattern(rule["regex"])) if "regex" in rule else None,
            anchor=_anchor(rule.get("regex", "")),
            path=re.compile(python_pattern(rule["path"])) if "path" in rule else None,
            keywords=tuple(k.lower() for k in rule.get("keywords", [])), entropy=float(rule.get("entropy", 0)),
            secret_group=int(rule.get("secretGroup", 0)), allowlists=tuple(map(_allowlist, rule.get("allowlists", []))),
        )
        for rule in data.get("rules", [])
    )
    path_rules = tuple((rule.id, rule.path) for rule in rules if rule.regex is None and rule.path is not None)
    return _RuleSet(rules, _allowlist({**merged, "paths": []}), _compile(merged["paths"]), path_rules)


# gitleaks' generated rules open with the identifier a secret is assigned to: up to 50 such
# characters before the keyword. Python's backtracking tries all 50 at every position (2 s
# on a 1 MB file), so those rules search from the keyword and look back for the identifier.
_IDENTIFIER_LEAD = re.compile(r"^(\(\?i\))?\[\\w\.-\]\{0,50\}\?")
_IDENTIFIER_CHAR = re.compile(r"[\w.-]")
IDENTIFIER_MAX = 50


def _anchor(go: str) -> re.Pattern[str] | None:
    lead = _IDENTIFIER_LEAD.match(go)
    return re.compile(python_pattern((lead.group(1) or "") + go[lead.end():])) if lead else None


def _matches(rule: _Rule, text: str) -> Iterable[re.Match[str]]:
    """``rule.regex``'s matches in ``text``, leftmost first, not overlapping (as ``finditer``)."""
    assert rule.regex is not None
    if rule.anchor is None:
        yield from rule.regex.finditer(text)
        return
    position = 0
    for hit in rule.anchor.finditer(text):
        start = hit.start()
        if start < position:
            continue
        low = max(start - IDENTIFIER_MAX, position)
        while start > low and _IDENTIFIER_CHAR.match(text, start - 1):
            start -= 1
        match = next(filter(None, (rule.regex.match(text, p) for p in range(start, hit.start() + 1))), None)
        if match is not None:
            position = max(match.end(), match.start() + 1)
            yield match


def entropy(text: str) -> float:
    """Shannon entropy in bits per character, as gitleaks computes it."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values()) if text else 0.0


def path_rule(path: str) -> str | None:
    """The id of the gitleaks rule that flags ``path`` by its name alone (``pkcs12-file``), or None."""
    for rule_id, pattern in rule_set().path_rules:
        if pattern.search(path):
            return rule_id
    return None


def scan(text: str, path: str = "") -> list[Finding]:
    """The secrets in ``text`` (the content of ``path``, or a log, diff or comment when no path),
    in text order, overlapping ones merged."""
    rules = rule_set()
    if path and rules.skipped_paths is not None and rules.skipped_paths.search(path):
        return []
    lowered = text.lower()
    found: list[Finding] = []
    for rule in rules.rules:
        if rule.regex is None or (rule.keywords and not any(k in lowered for k in rule.keywords)):
            continue
        if rule.path is not None and not (path and rule.path.search(path)):
            continue
        found += _findings(rule, text, path, rules.allowlist)
    return _merged(found)


def _findings(rule: _Rule, text: str, path: str, global_list: _Allowlist) -> list[Finding]:
    found = []
    for match in _matches(rule, text):
        start, end = match.span()
        groups = [g for g in range(1, (match.lastindex or 0) + 1) if match.group(g)]
        group = rule.secret_group if rule.secret_group and match.group(rule.secret_group) else (groups[0] if groups else 0)
        if group:
            start, end = match.span(group)
        secret = text[start:end].strip("\n")
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start:line_end if line_end >= 0 else len(text)]
        if not secret or ALLOW_SIGNATURE in line:
            continue
        if rule.entropy and entropy(secret) <= rule.entropy:
            continue
        if any(a.allows(secret, match.group(0), line, path) for a in (global_list, *rule.allowlists)):
            continue
        found.append(Finding(rule.id, rule.description, text.count("\n", 0, start) + 1, start, start + len(secret)))
    return found


def _merged(found: list[Finding]) -> list[Finding]:
    """Findings by position, a span overlapping an earlier one folded into it (named by the
    more specific rule: ``github-pat`` rather than ``generic-api-key``)."""
    merged: list[Finding] = []
    for finding in sorted(found, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            named = finding if last.rule.startswith("generic") and not finding.rule.startswith("generic") else last
            merged[-1] = Finding(named.rule, named.description, last.line, last.start, max(last.end, finding.end))
            continue
        merged.append(finding)
    return merged


def redact(text: str, path: str = "") -> tuple[str, list[Finding]]:
    """``text`` with each secret replaced by ``[secret withheld: <rule>]``, and what was found."""
    found = scan(text, path)
    parts, position = [], 0
    for finding in found:
        parts += [text[position:finding.start], WITHHELD.format(rule=finding.rule)]
        position = finding.end
    return "".join(parts) + text[position:], found


def mask(text: str, found: Iterable[Finding], source: str) -> str:
    """``text`` with each secret of ``found`` (offsets into ``source``, which ``text`` is or is an
    excerpt of) replaced, line by line, by asterisks of its length: the text keeps its size."""
    for secret in {source[f.start:f.end] for f in found}:
        for piece in filter(str.strip, secret.split("\n")):
            text = text.replace(piece, "*" * len(piece))
    return text


def summary(found: Iterable[Finding], limit: int = 3) -> str:
    """``line 3: aws-access-token, line 9: private-key`` (the first ``limit``, then a count)."""
    found = list(found)
    shown = ", ".join(f.describe() for f in found[:limit])
    return shown + (f" and {len(found) - limit} more" if len(found) > limit else "")
