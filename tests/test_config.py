"""`.github/ai-orchestration.yml` as a maintainer writes it, and every message a mistake gets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from automation.core.config import BUILTIN_SOURCE, Config, load_config, parse_config
from automation.core.errors import EXIT_INVALID, ConfigError
from automation.core.prices import Usage

TODAY = dt.date(2026, 11, 15)
SOURCE = ".github/ai-orchestration.yml"
SHIPPED = Path(__file__).resolve().parent.parent / SOURCE


def last_line(text: str) -> int:
    """The line of the last key in ``text``: where these examples put the mistake."""
    return len(text.rstrip("\n").splitlines())


def problem(text: str, today: dt.date = TODAY) -> str:
    """The one line the user sees for a bad config."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE, today)
    assert caught.value.exit_code == EXIT_INVALID
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}: "), message
    return message


def test_every_key_is_optional_and_defaults_match_the_issue() -> None:
    for text in ("", "# nothing configured yet\n", "budget: {}\n"):
        config = parse_config(text, SOURCE, TODAY)
        assert config.monthly_budget_micro_usd == 15_000_000
        assert config.milestones_micro_usd == (5_000_000, 10_000_000, 15_000_000)
        assert config.tasks_file == "docs/TASKS.md"
        assert config.max_open_prs == 5
        assert config.ledger_path == "token_budget.json"
        assert config.analysis_model == "claude-sonnet-5-5"
        assert config.code_model == "gpt-4o-mini"
        assert config.source == SOURCE


def test_a_full_config_is_read_into_typed_values() -> None:
    config = parse_config(
        """
budget:
  monthly_usd: 7.5
  milestones_usd: [7.5, 2.25]
tasks:
  file: TODO.md
pull_requests:
  max_open: 2
  labels: [bot, ai]
  draft: true
ledger:
  path: state/budget.json
  branch: ai-ledger
models:
  analysis: claude-haiku-4-5-20251001
  code: gpt-6-luna
  code_max_tokens: 8000
  fallbacks:
    analysis: []
    code: [gpt-5.6-luna]
""",
        SOURCE,
        TODAY,
    )
    assert config.monthly_budget_micro_usd == 7_500_000
    assert config.milestones_micro_usd == (2_250_000, 7_500_000)  # sorted
    assert (config.tasks_file, config.max_open_prs, config.pr_labels, config.pr_draft) == ("TODO.md", 2, ("bot", "ai"), True)
    assert (config.ledger_path, config.ledger_branch) == ("state/budget.json", "ai-ledger")
    assert (config.analysis_model, config.code_model, config.code_max_tokens) == ("claude-haiku-4-5-20251001", "gpt-6-luna", 8000)
    assert config.price(config.analysis_model).model == "claude-haiku-4-5"
    assert config.configured_models() == {
        "models.analysis": "claude-haiku-4-5-20251001",
        "models.code": "gpt-6-luna",
        "models.fallbacks.code[0]": "gpt-5.6-luna",
    }


def test_malformed_yaml_names_the_file_and_the_line() -> None:
    message = problem("budget:\n  monthly_usd: 10\n models: x: y\n")
    assert message.startswith(f"{SOURCE}: line 3: YAML syntax error: ")
    assert "line 1:" in problem("budget: {monthly_usd: 10]\n")
    assert "line 2: YAML syntax error" in problem("budget:\n\tmonthly_usd: 10\n")


def test_a_key_written_twice_is_refused_naming_both_lines() -> None:
    """YAML parsers keep the last one, so the first block's settings would silently not apply."""
    assert problem("budget:\n  monthly_usd: 10\n  monthly_usd: 20\n") == (
        f"{SOURCE}: line 3: YAML syntax error: duplicate key 'monthly_usd' (also on line 2); keep one"
    )
    assert problem("budget:\n  monthly_usd: 10\nmodels:\n  code: gpt-4o\nbudget:\n  milestones_usd: [5]\n") == (
        f"{SOURCE}: line 5: YAML syntax error: duplicate key 'budget' (also on line 1); keep one"
    )


def test_top_level_must_be_a_mapping() -> None:
    assert problem("- budget\n") == (
        f"{SOURCE}: the file must be a YAML mapping of settings (like 'budget: {{monthly_usd: 15}}')"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budget:\n  montly_usd: 10\n", "line 2: unknown key 'budget.montly_usd'; did you mean 'budget.monthly_usd'?"),
        ("budget:\n  milestone_usd: [5]\n", "line 2: unknown key 'budget.milestone_usd'; did you mean 'budget.milestones_usd'?"),
        ("pull_requests:\n  max_opn: 3\n", "line 2: unknown key 'pull_requests.max_opn'; did you mean 'pull_requests.max_open'?"),
        ("models:\n  fallbacks:\n    analyss: []\n", "line 3: unknown key 'models.fallbacks.analyss'; did you mean 'models.fallbacks.analysis'?"),
        ("modles:\n  code: gpt-6-luna\n", "line 1: unknown key 'modles'; did you mean 'models'?"),
        ("budjet:\n  monthly_usd: 10\n", "line 1: unknown key 'budjet'; did you mean 'budget'?"),
        ("enabeld: false\n", "line 1: unknown key 'enabeld'; did you mean 'enabled'?"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_valid_key(text: str, expected: str) -> None:
    assert problem(text) == f"{SOURCE}: {expected}"


def test_unknown_key_far_from_everything_lists_the_valid_keys() -> None:
    message = problem("zzzzzz: 1\n")
    # a misspelt top-level key is compared with the sections, not with all forty keys
    assert message == (f"{SOURCE}: line 1: unknown key 'zzzzzz'; valid keys: budget, context, edits, enabled, "
                       "follow_ups, health, intake, ledger, models, notifications, outcomes, prices, pull_requests, run, tasks, verify")
    nested = problem("models:\n  zzzzzz: 1\n")
    assert nested.startswith(f"{SOURCE}: line 2: unknown key 'models.zzzzzz'; valid keys: models.analysis, ")
    assert "budget" not in nested, "only the keys of the section it is in"


def test_a_section_given_a_value_instead_of_settings() -> None:
    assert problem("budget: 15\n") == f"{SOURCE}: line 1: 'budget' must be a mapping of settings"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budget:\n  monthly_usd: fifteen\n", "budget.monthly_usd must be an amount in US dollars, like 15.00"),
        ("budget:\n  monthly_usd: true\n", "budget.monthly_usd must be an amount in US dollars, like 15.00"),
        ("budget:\n  monthly_usd: [15]\n", "budget.monthly_usd must be an amount in US dollars, like 15.00"),
        ("budget:\n  monthly_usd: .inf\n", "budget.monthly_usd must be a finite amount in US dollars"),
        ("budget:\n  milestones_usd: 5\n", "budget.milestones_usd must be a list of dollar amounts, like [5, 10, 15]"),
        ("budget:\n  milestones_usd: [5, ten]\n", "budget.milestones_usd[1] must be an amount in US dollars, like 15.00"),
        ("budget:\n  milestones_usd: [5, 0]\n", "budget.milestones_usd[1] must be greater than zero (got 0)"),
        ("pull_requests:\n  max_open: 2.5\n", "pull_requests.max_open must be a whole number greater than zero (got 2.5)"),
        ("pull_requests:\n  max_open: '3'\n", "pull_requests.max_open must be a whole number greater than zero (got '3')"),
        ("pull_requests:\n  max_open: 0\n", "pull_requests.max_open must be a whole number greater than zero (got 0)"),
        ("pull_requests:\n  draft: yes please\n", "pull_requests.draft must be true or false (got 'yes please')"),
        ("pull_requests:\n  labels: ai\n", "pull_requests.labels must be a list of strings"),
        ("pull_requests:\n  labels: [ai, '']\n", "pull_requests.labels[1] must be a non-empty string (got '')"),
        ("tasks:\n  file: 42\n", "tasks.file must be a non-empty string (got 42)"),
        ("tasks:\n  file: /etc/passwd\n", "tasks.file must be a path inside the repository (got '/etc/passwd')"),
        ("ledger:\n  path: ../elsewhere.json\n", "ledger.path must be a path inside the repository (got '../elsewhere.json')"),
        ("models:\n  analysis: null\n", "models.analysis must be a non-empty string (got None)"),
        ("context:\n  exclude: vendor/**\n", "context.exclude must be a list of strings"),
        ("context:\n  exclude: ['vendor/**', 3]\n", "context.exclude[1] must be a non-empty string (got 3)"),
        ("follow_ups:\n  max_attempts: 0\n", "follow_ups.max_attempts must be a whole number greater than zero (got 0)"),
        ("follow_ups:\n  handle: ai-orchestration\n", "follow_ups.handle must be a GitHub mention like @ai-orchestration (got 'ai-orchestration')"),
        ("follow_ups:\n  enabled: maybe\n", "follow_ups.enabled must be true or false (got 'maybe')"),
        ("follow_ups:\n  needs_human_label: ''\n", "follow_ups.needs_human_label must be a non-empty string (got '')"),
        ("follow_ups:\n  attempts: 3\n", "unknown key 'follow_ups.attempts'; did you mean 'follow_ups.max_attempts'?"),
        ("follow_ups:\n  trusted_users: alice\n", "follow_ups.trusted_users must be a list of GitHub logins, like [alice, \"renovate[bot]\"]"),
        ("follow_ups:\n  trusted_users: [alice, 'bob smith']\n",
         "follow_ups.trusted_users[1] must be a GitHub login like alice or renovate[bot] (got 'bob smith')"),
        ("follow_ups:\n  trusted_permission: triage\n", "follow_ups.trusted_permission must be one of write, maintain, admin (got 'triage')"),
        ("follow_ups:\n  untrusted_reply: no thanks\n", "follow_ups.untrusted_reply must be true or false (got 'no thanks')"),
        ("intake:\n  order: issues\n", "intake.order must be one of file_first, issues_first (got 'issues')"),
        ("intake:\n  label: ''\n", "intake.label must be a non-empty string (got '')"),
        ("intake:\n  any_authors: true\n", "unknown key 'intake.any_authors'; did you mean 'intake.any_author'?"),
    ],
)
def test_wrong_types_name_the_key_and_what_it_must_be(text: str, expected: str) -> None:
    assert problem(text) == f"{SOURCE}: line {last_line(text)}: {expected}"


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("-5", "-5"), ("0.0000001", "1e-07")])
def test_zero_or_negative_budget_is_refused(value: str, shown: str) -> None:
    assert problem(f"budget:\n  monthly_usd: {value}\n") == (
        f"{SOURCE}: line 2: budget.monthly_usd must be greater than zero (got {shown})"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budget:\n  monthly_usd: 1e27\n", "budget.monthly_usd must be at most $1,000,000.00 (got 1e27)"),
        ("budget:\n  monthly_usd: 1e20\n", "budget.monthly_usd must be at most $1,000,000.00 (got 1e20)"),
        ("budget:\n  monthly_usd: 15\n  milestones_usd: [1e300]\n",
         "budget.milestones_usd[0] must be at most $1,000,000.00 (got 1e300)"),
        ("prices:\n  gpt-4o-mini:\n    input: 1e30\n", "prices.gpt-4o-mini.input must be at most $1,000,000.00 (got 1e30)"),
    ],
)
def test_absurdly_large_amounts_are_refused_naming_the_key(text: str, expected: str) -> None:
    """Beyond a million dollars an amount is a typo, and past 2**53 micro-dollars it is no longer exact."""
    assert problem(text) == f"{SOURCE}: line {last_line(text)}: {expected}"


def test_a_million_dollars_is_still_a_budget() -> None:
    config = parse_config("budget:\n  monthly_usd: 1000000\n", SOURCE, TODAY)
    assert config.monthly_budget_micro_usd == 1_000_000_000_000


def test_milestones_above_the_budget_are_refused() -> None:
    assert problem("budget:\n  monthly_usd: 10\n  milestones_usd: [5, 12.5]\n") == (
        f"{SOURCE}: budget.milestones_usd has $12.50, above budget.monthly_usd $10.00; "
        "lower the milestone or raise the budget (or leave milestones_usd out: it defaults to a third, "
        "two thirds and all of the budget)"
    )
    # a budget set without milestones gets a third, two thirds and all of it, to the cent
    assert parse_config("budget:\n  monthly_usd: 8\n", SOURCE, TODAY).milestones_micro_usd == (2_670_000, 5_330_000, 8_000_000)
    # a milestone exactly at the budget is fine
    assert parse_config("budget:\n  monthly_usd: 8\n  milestones_usd: [4, 8]\n", SOURCE, TODAY).milestones_micro_usd == (
        4_000_000,
        8_000_000,
    )


def test_a_model_with_no_known_price_is_refused_with_a_suggestion() -> None:
    assert problem("models:\n  code: gpt-4o-mni\n") == (
        f"{SOURCE}: models.code: no price is known for model 'gpt-4o-mni'; did you mean 'gpt-4o-mini'? "
        "(or add it under 'prices')"
    )
    message = problem("models:\n  fallbacks:\n    analysis: [claude-haiku-4-5, claude-opus-9]\n")
    assert message.startswith(f"{SOURCE}: models.fallbacks.analysis[1]: no price is known for model 'claude-opus-9'")


def test_a_retired_model_is_replaced_by_its_successor_from_its_retirement_day() -> None:
    config = parse_config("models:\n  analysis: claude-3-5-sonnet-20241022\n", SOURCE, TODAY)
    assert config.analysis_model == "claude-sonnet-5-5"
    assert config.retirement_notes() == [
        "models.analysis: claude-3-5-sonnet-20241022 retired on 2025-10-22; runs use claude-sonnet-5-5 instead "
        f"(set models.analysis: claude-sonnet-5-5 in {SOURCE} to make it explicit)"
    ]
    config.check_retirement()  # the default policy: go on with the successor
    # Sonnet 4.5 is used until its retirement day, and replaced from that day on
    text = "models:\n  analysis: claude-sonnet-4-5-20250929\n"
    assert parse_config(text, SOURCE, dt.date(2026, 11, 29)).analysis_model == "claude-sonnet-4-5-20250929"
    assert parse_config(text, SOURCE, dt.date(2026, 11, 29)).retired == ()
    assert parse_config(text, SOURCE, dt.date(2026, 11, 30)).analysis_model == "claude-sonnet-5-5"


def test_the_default_code_models_move_to_gpt_6_luna_at_the_openai_shutdown(tmp_path: Path) -> None:
    before = load_config(None, tmp_path, dt.date(2027, 1, 13))
    assert (before.code_model, before.code_fallbacks, before.retired) == ("gpt-4o-mini", ("gpt-4.1-mini",), ())
    after = load_config(None, tmp_path, dt.date(2027, 1, 14))  # no config file in the repository
    # the fallback's successor is the primary's too: the chain does not repeat a model
    assert (after.code_model, after.code_fallbacks) == ("gpt-6-luna", ())
    # the default fallback, which the user never chose, is replaced without a word
    assert after.retirement_notes() == ["models.code: gpt-4o-mini retired on 2027-01-14; runs use gpt-6-luna instead"]
    assert not any(".github" in note for note in after.retirement_notes())  # never told to fix a file it lacks
    after.check_retirement()
    fixed = "models:\n  code: gpt-6-luna\n  fallbacks:\n    code: [gpt-5.6-luna]\n"
    explicit = parse_config(fixed, SOURCE, dt.date(2027, 1, 14))
    assert (explicit.code_model, explicit.code_fallbacks, explicit.retired) == ("gpt-6-luna", ("gpt-5.6-luna",), ())


def test_on_retirement_stop_stops_the_run_naming_the_key() -> None:
    config = parse_config("models:\n  on_retirement: stop\n", SOURCE, dt.date(2027, 1, 20))
    assert config.retirement_notes()[0] == (
        "models.code: gpt-4o-mini retired on 2027-01-14; runs stop until models.code is changed "
        "(models.on_retirement is 'stop'; its successor is gpt-6-luna)"
    )
    with pytest.raises(ConfigError) as caught:
        config.check_retirement()
    assert str(caught.value) == (
        f"{SOURCE}: models.code: model 'gpt-4o-mini' retired on 2027-01-14; "
        "models.on_retirement is 'stop', so the run stops: switch models.code to 'gpt-6-luna'"
    )
    assert problem("models:\n  on_retirement: halt\n") == (
        f"{SOURCE}: line 2: models.on_retirement must be one of successor, stop (got 'halt')"
    )


def test_effort_and_thinking_settings() -> None:
    defaults = parse_config("", SOURCE, TODAY)
    assert (defaults.analysis_effort, defaults.analysis_thinking, defaults.code_reasoning_effort) == ("medium", "adaptive", "medium")
    # room for thinking and the answer; each model's own output limit caps the request
    assert (defaults.analysis_max_tokens, defaults.output_cap("claude-sonnet-5-5")) == (16_000, 16_000)
    assert defaults.output_cap("gpt-4o-mini") == 16_384 and defaults.output_cap("gpt-6-luna") == 32_768
    chosen = parse_config(
        "models:\n  analysis_effort: low\n  analysis_thinking: 'off'\n  code_reasoning_effort: high\n", SOURCE, TODAY
    )
    assert (chosen.analysis_effort, chosen.analysis_thinking, chosen.code_reasoning_effort) == ("low", "off", "high")
    assert problem("models:\n  analysis_effort: extreme\n") == (
        f"{SOURCE}: line 2: models.analysis_effort must be one of low, medium, high, xhigh, max (got 'extreme')"
    )
    assert problem("models:\n  code_reasoning_effort: 3\n").startswith(f"{SOURCE}: line 2: models.code_reasoning_effort must be one of none,")


def test_retiring_models_lists_those_within_30_days() -> None:
    config = parse_config("models:\n  analysis: claude-sonnet-4-5\n", SOURCE, dt.date(2026, 10, 1))
    assert config.retiring_models(dt.date(2026, 10, 30)) == []  # 31 days left
    soon = config.retiring_models(dt.date(2026, 10, 31))
    assert [(key, price.model, days) for key, price, days in soon] == [("models.analysis", "claude-sonnet-4-5", 30)]
    assert soon[0][1].successor == "claude-sonnet-5-5"
    # the OpenAI code model 14 days before its shutdown; not the default fallback nobody chose
    defaults = Config()
    assert [(key, days) for key, _, days in defaults.retiring_models(dt.date(2026, 12, 31))] == [("models.code", 14)]
    assert defaults.retiring_models(TODAY) == []


@pytest.mark.parametrize("text", ["", SHIPPED.read_text(encoding="utf-8")], ids=["no-file", "shipped-file"])
def test_a_default_fallback_nobody_chose_gets_no_retirement_warning(text: str) -> None:
    """A new install (no config, or the shipped one that writes the defaults out) is not told
    about the default fallback retiring; a fallback the user picked is."""
    month_before = dt.date(2026, 12, 20)
    config = parse_config(text, SOURCE, month_before)
    assert [key for key, _, _ in config.retiring_models(month_before)] == ["models.code"]
    assert not any("fallbacks" in line for line in config.retirement_warnings(month_before))
    after = parse_config(text, SOURCE, dt.date(2027, 1, 20))
    assert after.code_fallbacks == () and [key for key, _, _ in after.retired] == ["models.code"]
    picked = parse_config("models:\n  fallbacks:\n    code: [gpt-4o]\n", SOURCE, month_before)
    assert [key for key, _, _ in picked.retiring_models(month_before)] == ["models.code", "models.fallbacks.code[0]"]


def test_price_override_adds_a_new_model() -> None:
    config = parse_config(
        """
models:
  code: acme-coder
prices:
  acme-coder: {provider: openai, input: 0.5, output: 2}
""",
        SOURCE,
        TODAY,
    )
    price = config.price("acme-coder")
    assert price.provider == "openai"
    assert price.cost_micro_usd(Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == 2_500_000
    # no cached price was given: cached tokens are billed at the full input price, never less
    assert price.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 500_000


def test_a_new_anthropic_model_gets_anthropics_cache_multipliers() -> None:
    config = parse_config(
        "models:\n  analysis: claude-next\nprices:\n  claude-next: {provider: anthropic, input: 4, output: 20}\n",
        SOURCE,
        TODAY,
    )
    price = config.price("claude-next")
    assert price.cost_micro_usd(Usage(cache_write_5m_tokens=1_000_000)) == 5_000_000  # 1.25x, never under-counted
    assert price.cost_micro_usd(Usage(cache_write_1h_tokens=1_000_000)) == 8_000_000  # 2x
    assert price.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 400_000  # 0.1x


def test_price_override_of_an_existing_model() -> None:
    config = parse_config("prices:\n  gpt-4o-mini:\n    output: 0.8\n", SOURCE, TODAY)
    mini = config.price("gpt-4o-mini")
    assert mini.cost_micro_usd(Usage(output_tokens=1_000_000)) == 800_000
    assert mini.cost_micro_usd(Usage(input_tokens=1_000_000)) == 150_000  # untouched
    assert mini.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 75_000  # untouched
    assert mini.retires == dt.date(2027, 1, 14)  # an override cannot hide a shutdown


def test_overriding_an_anthropic_input_price_moves_its_cache_prices_and_keeps_its_limits() -> None:
    config = parse_config("prices:\n  claude-haiku-5-5:\n    input: 0.2\n", SOURCE, TODAY)
    haiku = config.price("claude-haiku-5-5")
    assert haiku.cost_micro_usd(Usage(cache_write_5m_tokens=1_000_000)) == 250_000
    assert haiku.cost_micro_usd(Usage(cache_write_1h_tokens=1_000_000)) == 400_000
    assert haiku.cost_micro_usd(Usage(cache_read_tokens=1_000_000)) == 20_000
    assert haiku.max_priced_input_tokens == 100_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prices: 3\n", "'prices' must map model names to prices in USD per million tokens"),
        ("prices:\n  acme: 3\n", "'prices.acme' must be a mapping with input and output prices"),
        ("prices:\n  acme: {input: 1, output: 2}\n", "'prices.acme.provider' must be 'anthropic' or 'openai'"),
        (
            "prices:\n  acme: {provider: openai, input: 1}\n",
            "'prices.acme' is a new model: give both 'input' and 'output' (USD per million tokens)",
        ),
        ("prices:\n  gpt-4o:\n    outptu: 1\n", "unknown key 'prices.gpt-4o.outptu'; did you mean 'output'?"),
        ("prices:\n  gpt-4o:\n    input: -1\n", "'prices.gpt-4o.input' must not be negative"),
        ("prices:\n  gpt-4o:\n    input: cheap\n", "prices.gpt-4o.input must be an amount in US dollars, like 15.00"),
    ],
)
def test_price_override_mistakes(text: str, expected: str) -> None:
    assert problem(text) == f"{SOURCE}: line {last_line(text)}: {expected}"


def test_load_config_reads_the_default_file_or_falls_back_to_defaults(tmp_path: Path) -> None:
    assert load_config(None, tmp_path, TODAY) == Config(source=BUILTIN_SOURCE)
    default = tmp_path / ".github" / "ai-orchestration.yml"
    default.parent.mkdir()
    default.write_text("budget:\n  monthly_usd: 20\n  milestones_usd: [20]\n", encoding="utf-8")
    config = load_config(None, tmp_path, TODAY)
    assert (config.monthly_budget_micro_usd, config.source) == (20_000_000, str(default))


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, tmp_path, TODAY)
    assert str(caught.value) == f"{missing}: config file not found; check --config (a relative path is relative to --repo)"
    assert caught.value.exit_code == EXIT_INVALID

    bad = tmp_path / "bad.yml"
    bad.write_text("budget:\n  montly_usd: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^.*bad\.yml: line 2: unknown key 'budget\.montly_usd'; did you mean 'budget\.monthly_usd'\?$"):
        load_config(bad, tmp_path, TODAY)

    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00budget")
    with pytest.raises(ConfigError) as caught:
        load_config(binary, tmp_path, TODAY)
    assert str(caught.value) == f"{binary}: the config file is UTF-16; save it as UTF-8 (most editors: 'Save with encoding')"

    latin = tmp_path / "latin.yml"
    latin.write_bytes("# caf\u00e9\nbudget:\n  monthly_usd: 9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(latin, tmp_path, TODAY)
    assert str(caught.value) == f"{latin}: the config file is not UTF-8 text (line 1, byte 5); save it as UTF-8"

    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, tmp_path, TODAY)
    assert str(caught.value) == f"{tmp_path}: is a directory, not a config file; check --config"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  analysis: gpt-4o\n",
            "x.yml: models.analysis: 'gpt-4o' is an openai model, but the analysis step calls the Anthropic "
            "Messages API; pick a Claude model",
        ),
        (
            "models:\n  fallbacks:\n    code: [claude-haiku-4-5]\n",
            "x.yml: models.fallbacks.code[0]: 'claude-haiku-4-5' is an anthropic model, but the code step calls the "
            "OpenAI Chat Completions API; pick an OpenAI model",
        ),
    ],
)
def test_a_model_on_the_wrong_provider_for_its_step_is_refused(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "x.yml", dt.date(2026, 11, 21))
    assert str(caught.value) == expected
    assert caught.value.exit_code == 2


def test_context_exclude_globs_are_read() -> None:
    config = parse_config("context:\n  exclude: ['vendor/**', '*.min.js']\n", SOURCE, TODAY)
    assert config.context_exclude == ("vendor/**", "*.min.js")
    assert parse_config("", SOURCE, TODAY).context_exclude == ()


def test_the_shipped_config_file_holds_exactly_the_defaults() -> None:
    """Its header says every value shown is the default: parsing it must change nothing."""
    shipped = parse_config(SHIPPED.read_text(encoding="utf-8"), SOURCE, TODAY)
    assert shipped == Config(source=SOURCE, from_file=True)


def test_the_shipped_config_file_lists_every_key() -> None:
    """Its header and the set-up guide say it lists every key: a key only config.py knows is undocumented."""
    import yaml

    from automation.core.config import SCHEMA

    def keys(mapping: dict[str, object], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, value in mapping.items():
            found |= keys(value, f"{prefix}{name}.") if isinstance(value, dict) else {f"{prefix}{name}"}
        return found

    text = SHIPPED.read_text(encoding="utf-8")
    listed = keys(yaml.safe_load(text)) | {line.strip()[2:].split(":")[0] for line in text.splitlines()
                                          if line.strip().startswith("# ") and ":" in line}
    shown = {key for key in SCHEMA if key in listed or key.rsplit(".", 1)[-1] in listed}
    assert sorted(set(SCHEMA) - shown) == []
    assert "prices:" in text


@pytest.mark.parametrize("budget", ["10", "7.50", "100", "1000"])
def test_changing_only_the_budget_in_the_shipped_file_works(budget: str) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert "  monthly_usd: 15.00\n" in text
    config = parse_config(text.replace("  monthly_usd: 15.00\n", f"  monthly_usd: {budget}\n"), SOURCE, TODAY)
    cap = int(float(budget) * 1_000_000)
    assert config.monthly_budget_micro_usd == cap
    assert config.milestones_micro_usd[-1] == cap and len(config.milestones_micro_usd) == 3


def test_with_no_config_file_a_retirement_never_names_a_file_the_repository_lacks(tmp_path: Path) -> None:
    retiring = [price.retires for price in map(Config().price, Config().configured_models().values()) if price.retires]
    if not retiring:
        pytest.skip("no default model has a retirement date to trip over")
    config = load_config(None, tmp_path, min(retiring))  # no error: the successor is used
    config.check_retirement()
    assert config.retired and all(note.endswith(" instead") for note in config.retirement_notes())
    assert not any(".github" in note for note in config.retirement_notes()) and not (tmp_path / SOURCE).exists()


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("./token_budget.json", "token_budget.json"),
        ("state/./budget.json", "state/budget.json"),
        ("state//budget.json", "state/budget.json"),
        ("old/../token_budget.json", "token_budget.json"),
        ("state/budget.json/", "state/budget.json"),
        ("  ./state/budget.json  ", "state/budget.json"),
    ],
)
def test_every_config_path_is_read_in_the_one_spelling_git_and_the_edit_checks_compare(written: str, canonical: str) -> None:
    config = parse_config(
        f"ledger:\n  path: '{written}'\ntasks:\n  file: './{canonical}.md'\nedits:\n  deny: ['{written}', './secrets/']\n"
        f"context:\n  exclude: ['./vendor/**', '{written}']\n",
        SOURCE, TODAY,
    )
    assert config.context_exclude == ("vendor/**", canonical)
    assert config.ledger_path == canonical
    assert config.tasks_file == f"{canonical}.md"
    assert config.edits_deny == (canonical, "secrets")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ledger:\n  path: 'state\\budget.json'\n", "ledger.path must use forward slashes"),
        ("ledger:\n  path: /repo/token_budget.json\n", "ledger.path must be a path inside the repository"),
        ("ledger:\n  path: 'C:/repo/token_budget.json'\n", "ledger.path must be a path inside the repository"),
        ("ledger:\n  path: a/../../b.json\n", "ledger.path must be a path inside the repository"),
        ("ledger:\n  path: ./\n", "ledger.path must be a path inside the repository"),
        ("ledger:\n  path: .git/budget.json\n", "ledger.path must not point into .git"),
        ("tasks:\n  file: ./docs/../../TASKS.md\n", "tasks.file must be a path inside the repository"),
        ("edits:\n  deny: [ok, /etc]\n", "edits.deny[1] must be a path inside the repository"),
        ("ledger:\n  path: ./docs/TASKS.md\n", "ledger.path and tasks.file are both 'docs/TASKS.md'"),
    ],
)
def test_a_path_that_cannot_be_made_canonical_is_refused_naming_the_key(text: str, expected: str) -> None:
    assert expected in problem(text)


def test_the_model_cannot_write_the_ledger_tasks_or_denied_files_through_another_spelling(tmp_path: Path) -> None:
    from automation.repo import edits

    config = parse_config(
        "ledger:\n  path: ./token_budget.json\ntasks:\n  file: docs/./TASKS.md\nedits:\n  deny: [./secrets/]\n", SOURCE, TODAY
    )
    rules = edits.EditRules(ledger_path=config.ledger_path, tasks_path=config.tasks_file, deny=config.edits_deny)
    paths = ("token_budget.json", "docs/TASKS.md", "secrets/key.txt", "ok.txt")
    reply = "s\n\n" + "".join(f"{path}\n```\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE\n```\n" for path in paths)
    draft = edits.Draft(root=tmp_path, rules=rules)

    assert draft.take(reply) == []
    plan = draft.plan()

    assert [edit.path for edit in plan.edits] == ["ok.txt"]
    assert len(plan.refused) == 3


def test_ledger_reservation_and_start_over_keys() -> None:
    config = parse_config("ledger:\n  start_fresh: '2026-11'\n  reservation_minutes: 60\n", SOURCE, TODAY)
    assert (config.ledger_start_fresh, config.reservation_minutes) == ("2026-11", 60)
    assert Config().reservation_minutes == 45 and Config().ledger_start_fresh is None
    assert "ledger.start_fresh must be a month like 2026-11" in problem("ledger:\n  start_fresh: November\n")
    assert "ledger.reservation_minutes (5) must be at least 30" in problem("ledger:\n  reservation_minutes: 5\n")


@pytest.mark.parametrize(
    ("settings", "least"),
    [
        ("ledger:\n  reservation_minutes: 15\nrun:\n  request_timeout_seconds: 1500\n", 30),  # 25-minute deadline
        ("ledger:\n  reservation_minutes: 45\nrun:\n  deadline_minutes: 55\n", 60),
    ],
)
def test_a_reservation_that_cannot_outlive_the_runs_deadline_is_refused(settings: str, least: int) -> None:
    message = problem(settings)
    assert f"must be at least {least}: a reservation must outlive the run" in message
    assert "run.request_timeout_seconds" in message and "run.deadline_minutes" in message and "clocks" in message
    assert parse_config(settings.replace("reservation_minutes: 15", "reservation_minutes: 30")
                        .replace("reservation_minutes: 45", "reservation_minutes: 60"), SOURCE, TODAY)


def test_follow_ups_are_on_by_default_and_configurable() -> None:
    default = parse_config("", SOURCE, TODAY)
    assert (default.follow_ups_enabled, default.follow_up_max_attempts, default.follow_up_handle) == (True, 2, "@ai-orchestration")
    assert (default.follow_up_needs_human_label, default.follow_up_takeover_label) == ("ai-needs-human", "ai-hands-off")
    custom = parse_config(
        "follow_ups:\n  enabled: false\n  max_attempts: 4\n  handle: '@my-bot[bot]'\n  takeover_label: mine\n"
        "  log_max_chars: 100\n  diff_max_chars: 200\n", SOURCE, TODAY,
    )
    assert (custom.follow_ups_enabled, custom.follow_up_max_attempts, custom.follow_up_handle) == (False, 4, "@my-bot[bot]")
    assert (custom.follow_up_takeover_label, custom.follow_up_log_max_chars, custom.follow_up_diff_max_chars) == ("mine", 100, 200)


def test_trust_and_intake_settings() -> None:
    default = parse_config("", SOURCE, TODAY)
    assert (default.trusted_users, default.trusted_permission, default.untrusted_reply) == ((), "write", True)
    assert (default.intake_enabled, default.intake_label, default.intake_any_author, default.intake_order) == (
        False, "ai-task", False, "file_first")
    custom = parse_config(
        "follow_ups:\n  trusted_users: ['@Alice', 'renovate[bot]', alice]\n  trusted_permission: maintain\n"
        "  untrusted_reply: false\nintake:\n  enabled: true\n  label: bot-please\n  any_author: true\n"
        "  order: issues_first\n", SOURCE, TODAY,
    )
    assert (custom.trusted_users, custom.trusted_permission, custom.untrusted_reply) == (("alice", "renovate[bot]"), "maintain", False)
    assert (custom.intake_enabled, custom.intake_label, custom.intake_any_author, custom.intake_order) == (
        True, "bot-please", True, "issues_first")


def test_checks_are_off_by_default_and_configurable() -> None:
    default = parse_config("", SOURCE, TODAY)
    assert default.verify_commands == () and default.verify_on_failure == "draft" and default.verify_sandbox == "required"
    assert (default.verify_max_repairs, default.verify_timeout_seconds) == (1, 300.0)
    custom = parse_config(
        "verify:\n  commands: ['python -m pytest -q', 'ruff check .']\n  timeout_seconds: 90\n  on_failure: skip\n"
        "  max_repairs: 0\n  sandbox: best_effort\n  env: [NODE_ENV, DJANGO_SETTINGS_MODULE]\n", SOURCE, TODAY,
    )
    assert custom.verify_commands == ("python -m pytest -q", "ruff check .") and custom.verify_timeout_seconds == 90.0
    assert (custom.verify_on_failure, custom.verify_max_repairs, custom.verify_sandbox) == ("skip", 0, "best_effort")
    assert custom.verify_env == ("NODE_ENV", "DJANGO_SETTINGS_MODULE")


@pytest.mark.parametrize(("text", "expected"), [
    ("verify:\n  env: [NPM_TOKEN]\n", "verify.env[0]: NPM_TOKEN looks like a secret"),
    ("verify:\n  env: ['A B']\n", "verify.env[0] must be an environment variable name"),
    ("verify:\n  on_failure: close\n", "verify.on_failure must be one of draft, skip, open (got 'close')"),
    ("verify:\n  sandbox: off\n", "verify.sandbox must be one of required, best_effort (got False)"),
    ("verify:\n  max_repairs: -1\n", "verify.max_repairs must be a whole number, zero or more (got -1)"),
    ("verify:\n  commands: pytest\n", "verify.commands must be a list of strings"),
    ("verify:\n  timeout_seconds: 0\n", "verify.timeout_seconds must be a number greater than zero"),
])
def test_bad_checks_settings_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE, TODAY)
    assert expected in caught.value.message and caught.value.exit_code == 2
