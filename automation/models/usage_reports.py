"""The providers' own usage and cost reports for a month, read with admin keys over ``requests``.

Anthropic's Admin API (https://platform.claude.com/docs/en/api/admin/cost_report and
.../usage_report/retrieve_messages): ``GET /v1/organizations/cost_report`` (daily buckets;
``amount`` is a decimal string in cents: ``"123.45"`` USD is $1.2345) and
``GET /v1/organizations/usage_report/messages`` (daily buckets of tokens per model).
OpenAI's organization API (the ``openai`` SDK's ``admin.organization.usage`` types):
``GET /v1/organization/costs`` (``amount.value`` in dollars, per ``line_item`` such as
``"gpt-4o-mini-2024-07-18, input"``) and ``GET /v1/organization/usage/completions``
(``input_tokens`` includes the cached and cache-written ones). Both page with ``has_more`` and
``next_page``; buckets start at 00:00 UTC. The key goes in a header only, never in a message.

Each reader returns ``reconcile.Billed`` rows: one per day and model, money in micro-dollars,
model names as the price table spells them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from ..core.errors import ProviderError, UsageError
from ..core.prices import ANTHROPIC, OPENAI, PriceTable, Usage
from ..money.reconcile import Billed
from .keys import ANTHROPIC_DEFAULT_BASE_URL, OPENAI_DEFAULT_BASE_URL

ADMIN_KEY_VARIABLES = {ANTHROPIC: "ANTHROPIC_ADMIN_KEY", OPENAI: "OPENAI_ADMIN_KEY"}
ADMIN_KEY_PAGES = {
    ANTHROPIC: "https://console.anthropic.com/settings/admin-keys",
    OPENAI: "https://platform.openai.com/settings/organization/admin-keys",
}
ANTHROPIC_VERSION = "2023-06-01"
DAYS_PER_PAGE = 31  # the most daily buckets either API returns in one page
MAX_PAGES = 50
TIMEOUT_SECONDS = 60
MICRO_USD_PER_CENT = 10_000


def admin_keys(env: Mapping[str, str]) -> dict[str, str]:
    """The admin keys that are set, by provider; UsageError (exit 2) naming both when none is."""
    keys = {provider: env[name].strip() for provider, name in ADMIN_KEY_VARIABLES.items() if env.get(name, "").strip()}
    if not keys:
        raise UsageError(
            "reconcile needs an admin key to read the providers' own usage and cost reports: set ANTHROPIC_ADMIN_KEY "
            f"(an Admin API key, sk-ant-admin…, from {ADMIN_KEY_PAGES[ANTHROPIC]}) and/or OPENAI_ADMIN_KEY (an admin key "
            f"from {ADMIN_KEY_PAGES[OPENAI]}); the bot's own API keys cannot read these reports"
        )
    return keys


def month_bounds(month: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start of ``month``, end) in UTC; the end is at most the end of ``now``'s day (reports have
    no buckets in the future)."""
    start = dt.datetime.strptime(f"{month}-01", "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    today_ends = now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    return start, min(following, today_ends)


class Reader:
    """One provider's reports for one month. ``session`` is a ``requests.Session`` (made by the
    caller); ``scope`` narrows the reports to an Anthropic workspace id or an OpenAI project id."""

    def __init__(self, provider: str, key: str, env: Mapping[str, str], session: requests.Session,
                 prices: PriceTable, scope: str | None = None) -> None:
        self.provider = provider
        self.key = key
        self.session = session
        self.prices = prices
        self.scope = scope
        if provider == ANTHROPIC:
            self.base = (env.get("ANTHROPIC_BASE_URL") or ANTHROPIC_DEFAULT_BASE_URL).rstrip("/")
        else:
            self.base = (env.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL).rstrip("/")

    def billed(self, start: dt.datetime, end: dt.datetime) -> list[Billed]:
        """Cost and usage per day and model in [start, end). Raises ProviderError (exit 1)."""
        if self.provider == ANTHROPIC:
            costs, usage = self._anthropic_costs(start, end), self._anthropic_usage(start, end)
        else:
            costs, usage = self._openai_costs(start, end), self._openai_usage(start, end)
        return [
            Billed(self.provider, day, model, costs.get((day, model), 0), usage.get((day, model), Usage()))
            for day, model in sorted(set(costs) | set(usage))
        ]

    # --- Anthropic ------------------------------------------------------------------------

    def _anthropic_pages(self, path: str, params: dict[str, Any]) -> Iterator[tuple[dt.date, dict[str, Any]]]:
        headers = {"x-api-key": self.key, "anthropic-version": ANTHROPIC_VERSION}
        for bucket in self._pages(path, params, headers, lambda body: body.get("next_page")):
            day = _day(bucket.get("starting_at"), self._where(path))
            for result in _list(bucket.get("results"), self._where(path)):
                yield day, result

    def _anthropic_costs(self, start: dt.datetime, end: dt.datetime) -> dict[tuple[dt.date, str], int]:
        group = ["description"] + (["workspace_id"] if self.scope else [])
        totals: dict[tuple[dt.date, str], int] = {}
        for day, row in self._anthropic_pages("/v1/organizations/cost_report", {
            "starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "bucket_width": "1d", "group_by[]": group,
        }):
            if self.scope and row.get("workspace_id") != self.scope:
                continue
            if str(row.get("currency", "USD")).upper() != "USD":
                raise self._unreadable("/v1/organizations/cost_report", f"a cost in {row.get('currency')}, not USD")
            cents = _decimal(row.get("amount"), self._where("/v1/organizations/cost_report"))
            key = (day, self._model(row.get("model"), row.get("cost_type")))
            totals[key] = totals.get(key, 0) + _micro_usd(cents * MICRO_USD_PER_CENT)
        return totals

    def _anthropic_usage(self, start: dt.datetime, end: dt.datetime) -> dict[tuple[dt.date, str], Usage]:
        params: dict[str, Any] = {"starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "bucket_width": "1d",
                                  "group_by[]": ["model"]}
        if self.scope:
            params["workspace_ids[]"] = [self.scope]
        totals: dict[tuple[dt.date, str], Usage] = {}
        for day, row in self._anthropic_pages("/v1/organizations/usage_report/messages", params):
            written = _object(row.get("cache_creation"))
            usage = Usage(
                input_tokens=_count(row.get("uncached_input_tokens")), output_tokens=_count(row.get("output_tokens")),
                cache_write_5m_tokens=_count(written.get("ephemeral_5m_input_tokens")),
                cache_write_1h_tokens=_count(written.get("ephemeral_1h_input_tokens")),
                cache_read_tokens=_count(row.get("cache_read_input_tokens")),
            )
            key = (day, self._model(row.get("model"), None))
            totals[key] = totals.get(key, Usage()) + usage
        return totals

    # --- OpenAI ---------------------------------------------------------------------------

    def _openai_pages(self, path: str, params: dict[str, Any]) -> Iterator[tuple[dt.date, dict[str, Any]]]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if self.scope:
            params = {**params, "project_ids[]": [self.scope]}
        for bucket in self._pages(path, params, headers, lambda body: body.get("next_page")):
            start = bucket.get("start_time")
            if isinstance(start, bool) or not isinstance(start, int):
                raise self._unreadable(path, "a bucket without a start_time")
            day = dt.datetime.fromtimestamp(start, dt.timezone.utc).date()
            for result in _list(bucket.get("results"), self._where(path)):
                yield day, result

    def _openai_costs(self, start: dt.datetime, end: dt.datetime) -> dict[tuple[dt.date, str], int]:
        totals: dict[tuple[dt.date, str], int] = {}
        for day, row in self._openai_pages("/organization/costs", {
            "start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "bucket_width": "1d",
            "group_by[]": ["line_item"],
        }):
            amount = _object(row.get("amount"))
            if str(amount.get("currency") or "usd").lower() != "usd":
                raise self._unreadable("/organization/costs", f"a cost in {amount.get('currency')}, not USD")
            dollars = _decimal(amount.get("value", 0), self._where("/organization/costs"))
            line_item = str(row.get("line_item") or "")
            key = (day, self._model(line_item.partition(", ")[0] or None, "other"))
            totals[key] = totals.get(key, 0) + _micro_usd(dollars * 1_000_000)
        return totals

    def _openai_usage(self, start: dt.datetime, end: dt.datetime) -> dict[tuple[dt.date, str], Usage]:
        totals: dict[tuple[dt.date, str], Usage] = {}
        for day, row in self._openai_pages("/organization/usage/completions", {
            "start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "bucket_width": "1d",
            "group_by[]": ["model"],
        }):
            cached, written = _count(row.get("input_cached_tokens")), _count(row.get("input_cache_write_tokens"))
            usage = Usage(
                input_tokens=max(0, _count(row.get("input_tokens")) - cached - written),
                output_tokens=_count(row.get("output_tokens")), cache_write_5m_tokens=written, cache_read_tokens=cached,
            )
            key = (day, self._model(row.get("model"), None))
            totals[key] = totals.get(key, Usage()) + usage
        return totals

    # --- shared ---------------------------------------------------------------------------

    def _model(self, reported: object, cost_type: object) -> str:
        """The price table's name for a reported model (dated aliases included), else as reported;
        costs that belong to no model are named by their kind, like ``(web_search)``."""
        if not isinstance(reported, str) or not reported:
            return f"({cost_type or 'other'})"
        price = self.prices.find(reported)
        return price.model if price is not None else reported

    def _pages(self, path: str, params: dict[str, Any], headers: dict[str, str],
               next_page: Callable[[dict[str, Any]], object]) -> Iterator[dict[str, Any]]:
        """Every bucket of every page: ``has_more`` and ``next_page`` are followed."""
        params = {**params, "limit": DAYS_PER_PAGE}
        for _ in range(MAX_PAGES):
            body = self._get(path, params, headers)
            yield from _list(body.get("data"), self._where(path))
            if not body.get("has_more"):
                return
            token = next_page(body)
            if not isinstance(token, str) or not token:
                raise self._unreadable(path, "has_more without a next_page")
            params = {**params, "page": token}
        raise self._unreadable(path, f"more than {MAX_PAGES} pages")

    def _get(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base}{path}"
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise ProviderError(f"{self._name}: could not read {url} ({type(error).__name__}); check the network "
                                f"and {self.provider.upper()}_BASE_URL", provider=self.provider, kind="connection") from None
        if response.status_code in (401, 403):
            variable = ADMIN_KEY_VARIABLES[self.provider]
            raise ProviderError(
                f"{self._name}: {url} refused {variable} ({response.status_code}): it must be an admin key of the "
                f"organisation (from {ADMIN_KEY_PAGES[self.provider]}), not an API key",
                provider=self.provider, kind="auth", status=response.status_code,
            )
        if response.status_code != 200:
            raise ProviderError(f"{self._name}: {url} answered {response.status_code}: {_said(response, self.key)}",
                                provider=self.provider, kind="server" if response.status_code >= 500 else "bad_request",
                                status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._unreadable(path, "the body is not a JSON object")
        return body

    @property
    def _name(self) -> str:
        return "Anthropic" if self.provider == ANTHROPIC else "OpenAI"

    def _where(self, path: str) -> str:
        return f"{self._name} {path}"

    def _unreadable(self, path: str, problem: str) -> ProviderError:
        return ProviderError(f"{self._where(path)}: not a report this bot can read ({problem})", provider=self.provider,
                             kind="malformed_reply", status=200)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(value: object, where: str) -> dt.date:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.timezone.utc).date()
    except ValueError:
        raise ProviderError(f"{where}: a bucket without a readable starting_at ({value!r})", provider=ANTHROPIC,
                            kind="malformed_reply", status=200) from None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ProviderError(f"{where}: not a report this bot can read (a list of objects was expected)",
                            provider=ANTHROPIC if where.startswith("Anthropic") else OPENAI, kind="malformed_reply", status=200)
    return value


def _decimal(value: object, where: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ProviderError(f"{where}: an amount that is not a number ({value!r})",
                            provider=ANTHROPIC if where.startswith("Anthropic") else OPENAI, kind="malformed_reply", status=200)
    return number


def _micro_usd(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _said(response: requests.Response, key: str) -> str:
    """The provider's own message, one short line, the key removed if it was echoed."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        text = str(error.get("message") if isinstance(error, dict) else body)
    except ValueError:
        text = response.text
    return " ".join(text.replace(key, "***").split())[:300]
