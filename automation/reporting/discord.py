"""Discord notifications: pure embed builders, Discord's limits, and best-effort delivery.

Builders take plain values (micro-dollars, strings, ``now``) and return embed dicts that
already respect Discord's limits, so the same dicts can be posted, previewed by `simulate`
(``render_text``) and asserted on in tests. ``Notifier`` is the only part that does I/O, and
it never raises: a notification is never worth failing a run for.

The webhook URL is a secret (anyone holding it can post to the channel), so it is kept out
of every log line this module writes.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from ..core.prices import format_usd
from ..core.redact import MASK, redact, redact_tree, secret_values
from ..core.wording import plural
from ..money.windows import Window
from .reports import progress_bar, spent_usd

__all__ = [
    "COLOURS",
    "Notifier",
    "budget_exhausted_embed",
    "budget_warning_embed",
    "budget_window_stop_embed",
    "fit_embed",
    "fit_message",
    "milestone_embed",
    "model_retiring_embed",
    "monthly_recap_embed",
    "progress_bar",
    "render_text",
    "run_completed_embed",
    "run_failed_embed",
    "run_started_embed",
]

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
TOTAL_LIMIT = 6000  # across every embed of one message
EMBEDS_PER_MESSAGE = 10

ELLIPSIS = "…"
EMPTY = "—"

COLOURS: dict[str, int] = {
    "run_completed": 0x2ECC71,  # green
    "milestone": 0xF1C40F,  # gold
    "budget_exhausted": 0xE67E22,  # orange
    "monthly_recap": 0x3498DB,  # blue
    "run_failed": 0xE74C3C,  # red
    "model_retiring": 0x9B59B6,  # purple
    "run_started": 0x95A5A6,  # grey
    "budget_warning": 0xF1C40F,  # gold, like a milestone
}

MAX_RETRY_AFTER_SECONDS = 60.0  # a longer rate limit is not worth holding a CI job for
MAX_BACKOFF_SECONDS = 30.0
NOTIFICATIONS_OFF = "Discord notifications are off (DISCORD_WEBHOOK_URL is not set)"
FIX_WEBHOOK = "update the DISCORD_WEBHOOK_URL secret"
DISCORD_CODES = {10015: "unknown webhook", 50027: "invalid webhook token"}

# Discord's Markdown in descriptions and field values: a masked link [text](url) shows text that
# need not be its target, ||spoilers|| hide, # makes headings. Text from a task, a model or a
# ledger is shown as typed: those characters escaped, bare URLs left whole so they stay links.
_MARKDOWN = re.compile(r"([\\*_~`|\[\]()<]|^[ \t]*[#>\-+](?=[ \t#]))", re.M)
_KEPT = re.compile(rf"https?://[^\s<>()\[\]|`*]+|{re.escape(MASK)}")  # a URL stays a link showing its target
_WEBHOOK_URL = re.compile(r"https?://\S*discord(?:app)?\.com/api/(?:v\d+/)?webhooks/\S+", re.IGNORECASE)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)", re.IGNORECASE)


# ---------------------------------------------------------------- limits


def text_length(text: str) -> int:
    """Length in UTF-16 code units: never less than Discord's count, whichever way it counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit``; when cut, at a word break if one is near, ending with "…"."""
    if text_length(text) <= limit:
        return text
    room = limit - 1  # for the ellipsis (one code unit)
    used = 0
    end = 0
    for end, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > room:
            break
    kept = text[:end]
    space = max(kept.rfind(" "), kept.rfind("\n"))
    if space >= len(kept) - 20 and space > 0:
        kept = kept[:space]
    return kept.rstrip() + ELLIPSIS


def embed_length(embed: Mapping[str, Any]) -> int:
    """The characters Discord counts towards the 6000 total."""
    total = text_length(embed.get("title", "")) + text_length(embed.get("description", ""))
    total += text_length(embed.get("footer", {}).get("text", ""))
    total += text_length(embed.get("author", {}).get("name", ""))
    for field in embed.get("fields", []):
        total += text_length(field["name"]) + text_length(field["value"])
    return total


def fit_embed(embed: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``embed`` within every per-embed limit of Discord.

    Each text is cut to its own limit, empty field names or values become "—", fields past
    25 are summarised in a last field, and if the whole is still over 6000 characters the
    description, then field values (last first) are shortened, then trailing fields dropped.
    Idempotent, so builders and ``fit_message`` can both apply it.
    """
    fitted = dict(embed)
    for key, limit in (("title", TITLE_LIMIT), ("description", DESCRIPTION_LIMIT)):
        if key in fitted:
            text = cut(str(fitted[key] or "").strip(), limit)
            if text:
                fitted[key] = text
            else:
                del fitted[key]
    for key, inner, limit in (("footer", "text", FOOTER_LIMIT), ("author", "name", AUTHOR_LIMIT)):
        if key in fitted:
            part = dict(fitted[key])
            part[inner] = cut(str(part.get(inner) or "").strip(), limit) or EMPTY
            fitted[key] = part
    if "fields" in fitted:
        fitted["fields"] = _fit_fields(fitted["fields"])
    return _fit_total(fitted, TOTAL_LIMIT)


def _fit_fields(fields: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for field in fields:
        fitted = dict(field)
        fitted["name"] = cut(str(field.get("name") or "").strip(), FIELD_NAME_LIMIT) or EMPTY
        fitted["value"] = cut(str(field.get("value") or "").strip(), FIELD_VALUE_LIMIT) or EMPTY
        result.append(fitted)
    if len(result) > FIELDS_LIMIT:
        hidden = len(result) - (FIELDS_LIMIT - 1)
        result = result[: FIELDS_LIMIT - 1] + [{"name": ELLIPSIS, "value": f"{hidden} more not shown", "inline": False}]
    return result


def _fit_total(embed: dict[str, Any], limit: int) -> dict[str, Any]:
    """Shorten the long parts until the embed's total is within ``limit``."""
    excess = embed_length(embed) - limit
    if excess <= 0:
        return embed
    if "description" in embed:
        description = embed["description"]
        embed["description"] = cut(description, max(100, text_length(description) - excess))
        excess = embed_length(embed) - limit
    fields = embed.get("fields", [])
    for field in reversed(fields):
        if excess <= 0:
            break
        value = field["value"]
        field["value"] = cut(value, max(100, text_length(value) - excess))
        excess = embed_length(embed) - limit
    # Title, footer and author plus a 100-character description always fit in 6000.
    while excess > 0 and fields:
        fields.pop()
        excess = embed_length(embed) - limit
    return embed


def fit_message(embeds: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Webhook payloads carrying ``embeds`` in order: at most 10 embeds and 6000 characters
    each, and never a mention, so a task text cannot ping @everyone."""
    messages: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for embed in map(fit_embed, embeds):
        length = embed_length(embed)
        if batch and (len(batch) == EMBEDS_PER_MESSAGE or size + length > TOTAL_LIMIT):
            messages.append(_payload(batch))
            batch, size = [], 0
        batch.append(embed)
        size += length
    if batch:
        messages.append(_payload(batch))
    return messages


def _payload(embeds: list[dict[str, Any]]) -> dict[str, Any]:
    return {"embeds": embeds, "allowed_mentions": {"parse": []}}


# ---------------------------------------------------------------- builders


def plain(text: str) -> str:
    """``text`` as Discord shows it literally: its Markdown escaped, its URLs (the real targets)
    kept as links, and the redaction mask kept as it is."""
    parts, position = [], 0
    for url in _KEPT.finditer(text):
        parts += [_escape(text[position:url.start()]), url.group(0)]
        position = url.end()
    return "".join(parts) + _escape(text[position:])


def _escape(text: str) -> str:
    return _MARKDOWN.sub(lambda match: match.group(0)[:-1] + "\\" + match.group(0)[-1], text)


def _utc(now: dt.datetime) -> dt.datetime:
    return now.replace(tzinfo=dt.timezone.utc) if now.tzinfo is None else now.astimezone(dt.timezone.utc)


def _embed(
    kind: str,
    *,
    title: str,
    description: str,
    fields: Iterable[tuple[str, str, bool]],
    repository: str,
    now: dt.datetime,
    month: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """The common shape: colour by kind, ISO 8601 UTC timestamp, footer "repository · month"."""
    moment = _utc(now)
    embed: dict[str, Any] = {
        "title": title,
        "description": description,
        "color": COLOURS[kind],
        "fields": [{"name": name, "value": value, "inline": inline} for name, value, inline in fields],
        "timestamp": moment.isoformat(timespec="seconds"),
        "footer": {"text": f"{repository} · {month or moment.strftime('%Y-%m')}"},
    }
    if url:
        embed["url"] = url
    return fit_embed(embed)


def _money(micro_usd: int) -> str:
    """Cents for most amounts, but a cheap run still shows what it cost ($0.0042, not $0.00)."""
    return format_usd(micro_usd, 4 if 0 < abs(micro_usd) < 10_000 else 2)


def _whole_dollars(micro_usd: int) -> str:
    """``$5`` for a round milestone, ``$7.50`` otherwise."""
    return format_usd(micro_usd, 0) if micro_usd % 1_000_000 == 0 else format_usd(micro_usd)


def _month_to_date(spent_micro: int, budget_micro: int) -> str:
    return f"{spent_usd(spent_micro, budget_micro)}\n{progress_bar(spent_micro, budget_micro)}"


def _pace(projected_micro: int, runs_out_on: dt.date | None) -> str:
    text = f"{format_usd(projected_micro)} projected by month end"
    if runs_out_on is not None:
        text += f"; the budget runs out around {runs_out_on.isoformat()}"
    return text


def next_reset(now: dt.datetime) -> dt.datetime:
    """The first moment of next month, UTC: when the monthly budget starts again."""
    moment = _utc(now)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)


def run_completed_embed(
    *,
    repository: str,
    now: dt.datetime,
    task: str,
    pr_url: str,
    run_cost_micro: int,
    month_spent_micro: int,
    budget_micro: int,
    follow_up_outcome: str | None = None,
    pull_cost_micro: int | None = None,
    prs_this_month: int | None = None,
    projected_micro: int | None = None,
    runs_out_on: dt.date | None = None,
    notes: tuple[str, ...] = (),
    checks: str | None = None,
) -> dict[str, Any]:
    """A run that worked on a pull request: a task run that opened it, or a follow-up on it
    (``follow_up_outcome``: ``follow_up_pushed`` or a reply without a change).

    Shows what it was for, what it cost (and, for a follow-up, what the PR has cost so far: the
    ``pull_cost_micro`` micro-dollars), where the month stands, and anything the run had to work
    around (a reply cut at max_tokens and retried, a retired model), and what the repository's own
    checks said (``checks``, one line). Fields left ``None`` are left out.
    """
    if follow_up_outcome is None:
        title = "✅ Run completed: pull request opened"
    elif follow_up_outcome == "follow_up_pushed":
        title = "🔁 Follow-up: fix pushed"
    else:
        title = "💬 Follow-up: replied, no change"
    fields = [("Pull request", pr_url, False), ("This run", _money(run_cost_micro), True)]
    if pull_cost_micro is not None:
        fields.append(("This PR so far", _money(pull_cost_micro), True))
    if prs_this_month is not None:
        fields.append(("PRs this month", str(prs_this_month), True))
    fields.append(("Month to date", _month_to_date(month_spent_micro, budget_micro), False))
    if projected_micro is not None:
        fields.append(("Pace", _pace(projected_micro, runs_out_on), False))
    if checks:
        fields.append(("Checks", checks, False))
    if notes:
        fields.append(("Notes", "\n".join(f"• {note}" for note in notes), False))
    return _embed("run_completed", title=title, description=plain(task), url=pr_url, fields=fields, repository=repository, now=now)


def milestone_embed(
    *,
    repository: str,
    now: dt.datetime,
    milestone_micro: int,
    month_spent_micro: int,
    budget_micro: int,
    projected_micro: int | None = None,
) -> dict[str, Any]:
    """One spending milestone crossed this month (the ledger makes sure it is said once)."""
    fields = [("Month to date", _month_to_date(month_spent_micro, budget_micro), False)]
    if projected_micro is not None:
        fields.append(("Pace", _pace(projected_micro, None), False))
    return _embed(
        "milestone",
        title=f"💰 Milestone: {_whole_dollars(milestone_micro)} reached",
        description=f"This month's spend has passed {format_usd(milestone_micro)} "
        f"of the {format_usd(budget_micro)} budget.",
        fields=fields,
        repository=repository,
        now=now,
    )


def budget_exhausted_embed(
    *,
    repository: str,
    now: dt.datetime,
    month_spent_micro: int,
    budget_micro: int,
    needed_micro: int | None = None,
    run_worst_micro: int | None = None,
) -> dict[str, Any]:
    """The month's money is used up: no more runs until the budget resets. ``run_worst_micro``
    is a run's worst case (the figure `costs` shows), ``needed_micro`` what the refused call could cost."""
    reset = next_reset(now)
    description = f"No more runs this month. The budget resets on {reset:%Y-%m-%d} at 00:00 UTC."
    remaining = max(0, budget_micro - month_spent_micro)
    if run_worst_micro is not None:
        description += f" The next run could cost up to {format_usd(run_worst_micro, 4)} (its worst case)"
        if needed_micro is not None:
            description += f", its next call up to {format_usd(needed_micro, 4)}"
        description += f"; {_money(remaining)} is left."
    elif needed_micro is not None:
        description += f" The next call could cost up to {format_usd(needed_micro, 4)}; {_money(remaining)} is left."
    return _embed(
        "budget_exhausted",
        title="🛑 Budget exhausted",
        description=description,
        fields=[
            ("Month to date", _month_to_date(month_spent_micro, budget_micro), False),
            ("Resets", f"{reset:%Y-%m-%d} 00:00 UTC", True),
        ],
        repository=repository,
        now=now,
    )


def budget_warning_embed(*, repository: str, now: dt.datetime, window: Window, percent: int) -> dict[str, Any]:
    """A budget window's spend has reached ``budget.warn_at_percent`` of its cap (said once per window)."""
    return _embed(
        "budget_warning",
        title=f"⚠️ {percent}% of the {window.name}'s budget spent",
        description=f"Spend {window.describe()} has reached {percent}% of {window.key}; runs stop when the next "
        f"call no longer fits, until the window reopens.",
        fields=[
            (window.label, _month_to_date(window.spent_micro_usd, window.cap_micro_usd), False),
            ("Reopens", f"{_utc(window.reopens_at):%Y-%m-%d %H:%M} UTC", True),
        ],
        repository=repository,
        now=now,
    )


def _stopped_by(window: Window | None) -> str:
    if window is None:
        return "the run cap"
    return f"{window.scope}'s share is spent" if window.is_share else f"the {window.name} is spent"


def budget_window_stop_embed(*, repository: str, now: dt.datetime, message: str, window: Window | None) -> dict[str, Any]:
    """A run stopped by the day's or week's cap, a repository's share of a shared ledger, or the
    run cap (``message`` says which and why)."""
    fields = [] if window is None else [
        (window.label, _month_to_date(window.spent_micro_usd, window.cap_micro_usd), False),
        ("Reopens", f"{_utc(window.reopens_at):%Y-%m-%d %H:%M} UTC", True),
    ]
    return _embed(
        "budget_exhausted",
        title=f"🛑 Budget stop: {_stopped_by(window)}",
        description=message,
        fields=fields,
        repository=repository,
        now=now,
    )


def monthly_recap_embed(
    *,
    repository: str,
    now: dt.datetime,
    month: str,
    spent_micro: int,
    budget_micro: int,
    runs: int,
    prs: int,
    cost_by_model: Mapping[str, int],
    parked_tasks: Sequence[str] = (),
    provider_stats: str = "",
    corrects: Mapping[str, int] | None = None,
    bought: str = "",
) -> dict[str, Any]:
    """Last month in one card: spend, runs, PRs, cost per PR and per model, and what its PRs
    came to (``bought``: "12 merged of 19, $0.41 per merged PR").

    ``corrects``: what an earlier recap of the month said (``spent_micro_usd``, ``executions``,
    ``prs_opened``) when runs settled after it was posted: the card then says it is a correction.
    """
    by_model = sorted(cost_by_model.items(), key=lambda item: (-item[1], item[0]))
    fields = [
        ("Spent", _month_to_date(spent_micro, budget_micro), False),
        ("Runs", str(runs), True),
        ("PRs", str(prs), True),
        ("Cost per PR", _money(spent_micro // prs) if prs else EMPTY, True),
        ("What the money bought", bought or EMPTY, False),
        ("Cost by model", "\n".join(f"{plain(model)}: {_money(cost)}" for model, cost in by_model) or EMPTY, False),
    ]
    if parked_tasks:
        fields.append((f"Parked tasks ({len(parked_tasks)})", "\n".join(f"• {plain(task)}" for task in parked_tasks), False))
    if provider_stats.strip():
        fields.append(("Providers", provider_stats, False))
    description = f"{repository} spent {format_usd(spent_micro)} of {format_usd(budget_micro)} in {month}."
    if corrects is not None:
        late = runs - corrects.get("executions", 0)
        description += (
            f" This corrects the recap posted earlier, which said {format_usd(corrects.get('spent_micro_usd', 0))}, "
            f"{plural(corrects.get('executions', 0), 'run')} and {plural(corrects.get('prs_opened', 0), 'PR')}: "
            f"{plural(late, 'run') if late > 0 else 'runs'} of {month} settled after it was posted."
        )
    return _embed(
        "monthly_recap",
        title=f"📊 Monthly recap: {month}" + (" (corrected)" if corrects is not None else ""),
        description=description,
        fields=fields,
        repository=repository,
        now=now,
        month=month,
    )


def _clean_message(message: str, secrets: Iterable[str]) -> str:
    """One readable line or paragraph, shown as typed: no traceback, no webhook URL, no secret values."""
    text = _TRACEBACK.split(message, maxsplit=1)[0].strip() or "no details (see the run log)"
    text = _WEBHOOK_URL.sub(MASK, text)
    return plain(redact(text, sorted((value for value in secrets if len(value) >= 4), key=len, reverse=True)))


def run_failed_embed(
    *,
    repository: str,
    now: dt.datetime,
    step: str,
    error_kind: str,
    message: str,
    run_url: str | None = None,
    task: str | None = None,
    secrets: Iterable[str] = (),
    checks: str | None = None,
) -> dict[str, Any]:
    """A run failed: where, what kind of error, what it said, what the checks said (``checks``),
    and where to read more.

    ``secrets`` are redacted from the message as a last line of defence; the caller should
    already pass a message without them.
    """
    secrets = list(secrets)
    fields = [("Step", step, True), ("Error", error_kind, True)]
    if task:
        fields.append(("Task", _clean_message(task, secrets), False))
    if checks:
        fields.append(("Checks", _clean_message(checks, secrets), False))
    if run_url:
        fields.append(("Run", run_url, False))
    return _embed(
        "run_failed",
        title=f"❌ Run failed at step {step}",
        description=_clean_message(message, secrets),
        fields=fields,
        repository=repository,
        now=now,
        url=run_url,
    )


def model_retiring_embed(
    *,
    repository: str,
    now: dt.datetime,
    model: str,
    retires_on: dt.date,
    successor: str | None = None,
) -> dict[str, Any]:
    """A configured model is about to stop answering, or has: say when, and what runs use instead."""
    days = (retires_on - _utc(now).date()).days
    if days <= 0:
        title = f"🔁 Model retired: {model}"
        description = f"`{model}` retired on {retires_on.isoformat()}."
        if successor:
            description += f" Runs now use `{successor}` instead."
    else:
        when = f"in {days} days" if days > 1 else "tomorrow"
        title = f"⏳ Model retiring: {model}"
        description = f"`{model}` retires on {retires_on.isoformat()} ({when})."
        if successor:
            description += f" From that day runs use `{successor}` instead."
    return _embed(
        "model_retiring",
        title=title,
        description=description,
        fields=[("Model", model, True), ("Retires", retires_on.isoformat(), True), ("Successor", successor or EMPTY, True)],
        repository=repository,
        now=now,
    )


def run_started_embed(
    *,
    repository: str,
    now: dt.datetime,
    task: str,
    model: str | None = None,
    run_url: str | None = None,
) -> dict[str, Any]:
    """A run picked up a task (optional: the caller decides whether to send it)."""
    fields = []
    if model:
        fields.append(("Model", model, True))
    if run_url:
        fields.append(("Run", run_url, False))
    return _embed(
        "run_started",
        title="▶️ Run started",
        description=plain(task),
        fields=fields,
        repository=repository,
        now=now,
        url=run_url,
    )


def render_text(embed: Mapping[str, Any]) -> str:
    """What an embed says, as plain text, for `simulate` to show what it would post."""
    lines = []
    if embed.get("title"):
        lines.append(embed["title"])
    if embed.get("description"):
        lines.append(embed["description"])
    for field in embed.get("fields", []):
        value = str(field.get("value", "")).replace("\n", "\n  ")
        lines.append(f"{field.get('name', '')}: {value}")
    footer = embed.get("footer", {}).get("text")
    if footer:
        lines.append(f"— {footer}")
    return "\n".join(lines)


# ---------------------------------------------------------------- secrets


# ---------------------------------------------------------------- delivery


def with_wait(url: str) -> str:
    """``url`` with ``wait=true`` added to its query (kept alongside e.g. ``thread_id``), so
    Discord confirms the message was created instead of answering 204 before checking it."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "wait"]
    query.append(("wait", "true"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _retry_after(response: requests.Response) -> float | None:
    """Seconds Discord asks us to wait: the JSON ``retry_after`` or the Retry-After header."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("retry_after") is not None:
            return max(0.0, float(body["retry_after"]))
    except ValueError:
        pass
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _discord_error(response: requests.Response) -> tuple[int | None, str]:
    """Discord's JSON error code and message, if the body has them."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(body.get("message") or "")


class Notifier:
    """Posts embeds to a Discord webhook, best effort: retries what is worth retrying, gives
    up quietly otherwise, and stops for good once Discord says the webhook is gone."""

    def __init__(
        self,
        webhook_url: str | None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = print,
        timeout: float = 10,
        max_attempts: int = 5,
        secrets: Sequence[str] = (),
    ) -> None:
        self._url = (webhook_url or "").strip() or None
        # Every secret of the run, so a task typed with a token in it never reaches Discord.
        self._secrets = sorted({*secret_values({"DISCORD_WEBHOOK_URL": self._url or ""}), *secrets}, key=len, reverse=True)
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._log = log
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._disabled = False
        self._said_off = False
        self._pause_before_next = 0.0  # seconds, when the last reply said the rate-limit bucket is empty

    @property
    def enabled(self) -> bool:
        """Whether a ``notify`` call would try to post at all."""
        return self._url is not None and not self._disabled

    def notify(self, embeds: Sequence[Mapping[str, Any]]) -> bool:
        """Post ``embeds`` (split into as many messages as Discord's limits need).

        Returns True when every message was delivered. Never raises.
        """
        if self._url is None:
            if not self._said_off:
                self._said_off = True
                self._warn(NOTIFICATIONS_OFF)
            return False
        if self._disabled:
            return False
        try:
            url = with_wait(self._url)
            return all(self._post(url, payload) for payload in fit_message(redact_tree(list(embeds), self._secrets)))
        except Exception as error:  # best effort: a bug here must not fail the run
            self._warn(f"Discord notification skipped ({type(error).__name__})")
            return False

    def _post(self, url: str, payload: Mapping[str, Any]) -> bool:
        """One message, with bounded retries. ``all()`` stops at the first undelivered one."""
        last = ""
        for attempt in range(1, self._max_attempts + 1):
            final = attempt == self._max_attempts
            if self._pause_before_next:
                self._sleep(self._pause_before_next)
                self._pause_before_next = 0.0
            try:
                response = self._session.post(url, json=payload, timeout=self._timeout)
            except requests.RequestException as error:
                # Never str(error): requests puts the URL, token included, in its messages.
                last = f"could not reach Discord ({type(error).__name__})"
                if not final:
                    self._sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if 200 <= status < 300:
                self._respect_bucket(response)
                return True
            if status in (401, 404):
                self._disable(response)
                return False
            if status == 429:
                wait = _retry_after(response)
                last = "Discord rate limit (HTTP 429)"
                if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                    self._warn(f"Discord notification skipped: rate limited for {wait:.0f}s")
                    return False
                if not final:
                    self._sleep(self._backoff(attempt) if wait is None else wait)
                continue
            if status >= 500:
                last = f"Discord server error (HTTP {status})"
                if not final:
                    self._sleep(self._backoff(attempt))
                continue
            code, message = _discord_error(response)
            detail = f", code {code}" if code is not None else ""
            self._warn(f"Discord rejected the notification (HTTP {status}{detail}: {message or 'no message'})")
            return False
        self._warn(f"Discord notification not delivered after {self._max_attempts} attempts ({last})")
        return False

    def _backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_SECONDS, float(2 ** (attempt - 1)))

    def _respect_bucket(self, response: requests.Response) -> None:
        """Note an exhausted rate-limit bucket so the next message waits it out, not hits a 429."""
        if response.headers.get("X-RateLimit-Remaining") != "0":
            return
        try:
            wait = float(response.headers.get("X-RateLimit-Reset-After", "0"))
        except ValueError:
            return
        if 0 < wait <= MAX_RETRY_AFTER_SECONDS:
            self._pause_before_next = wait

    def _disable(self, response: requests.Response) -> None:
        """401/404: the webhook was deleted or mistyped; retrying cannot help this process."""
        self._disabled = True
        code, _ = _discord_error(response)
        reason = f", code {code} {DISCORD_CODES[code]}" if code in DISCORD_CODES else ""
        self._warn(
            f"Discord webhook refused (HTTP {response.status_code}{reason}): it was deleted or mistyped; "
            f"{FIX_WEBHOOK}. Notifications are off for the rest of this run."
        )

    def _warn(self, message: str) -> None:
        """Log, with the webhook URL and token redacted whatever the message holds."""
        self._log(redact(_WEBHOOK_URL.sub(MASK, message), self._secrets))
