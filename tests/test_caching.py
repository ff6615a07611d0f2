"""Prompt caching: where marking pays, what the providers report over real sockets, and the
saving a user reads in the pull request's receipt."""

from __future__ import annotations

from pathlib import Path

from automation.core.prices import PriceTable, Usage
from automation.models import providers
from automation.money import caching
from automation.money.ledger import CallRecord
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import FakeAnthropic, FakeOpenAI, fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import GREETING, World, git, world  # noqa: F401

SONNET = PriceTable.builtin().find("claude-sonnet-5-5")
HAIKU = PriceTable.builtin().find("claude-haiku-4-5")
MINI = PriceTable.builtin().find("gpt-4o-mini")
assert SONNET is not None and HAIKU is not None and MINI is not None
SYSTEM = "You plan changes."
# About 2,000 tokens at the fakes' 4 bytes a token: over Sonnet's 1,024 minimum, under Haiku's 4,096.
REPOSITORY = "# Repository\n" + "def handler(request):\n    return respond(request)\n" * 170


def test_the_arithmetic_marks_only_where_a_write_is_read_often_enough() -> None:
    # A 5-minute write costs 0.25x input more; a read saves 0.9x (Sonnet 5.5: 2.50 - 2.00 vs 2.00 - 0.10).
    assert not caching.choose("auto", SONNET, 5_000, 0.0).mark
    assert not caching.choose("auto", SONNET, 5_000, 0.26).mark  # 0.26 x 1.90 = 0.494 < 0.50
    assert caching.choose("auto", SONNET, 5_000, 0.27).mark  # 0.27 x 1.90 = 0.513 > 0.50
    assert not caching.choose("always", SONNET, 1_000, 5.0).mark  # below the minimum nothing is cached anyway
    assert caching.choose("always", SONNET, 1_024, 0.0).mark
    assert not caching.choose("off", SONNET, 50_000, 9.0).mark
    assert "below claude-haiku-4-5's minimum of 4,096" in caching.choose("auto", HAIKU, 4_000, 9.0).reason


def test_the_saving_is_reads_at_the_discount_less_the_write_surcharge() -> None:
    written = Usage(input_tokens=100, output_tokens=10, cache_write_5m_tokens=10_000)
    read = Usage(input_tokens=100, output_tokens=10, cache_read_tokens=10_000)
    assert caching.saving_micro_usd(SONNET, written) == -5_000  # 10,000 x (2.50 - 2.00) µ$
    assert caching.saving_micro_usd(SONNET, read) == 19_000  # 10,000 x (2.00 - 0.10) µ$
    assert SONNET.cost_micro_usd(read) + 19_000 == SONNET.cost_micro_usd(Usage(input_tokens=10_100, output_tokens=10))


def test_reuse_is_measured_from_the_months_runs() -> None:
    from automation.money.ledger import Ledger, RunRecord

    def run(run_id: str, *models: str) -> RunRecord:
        calls = tuple(CallRecord("analysis", model, "anthropic", Usage(input_tokens=1), 2, 100) for model in models)
        return RunRecord(id=run_id, started_at="2026-12-01T00:00:00Z", task="t", calls=calls)

    ledger = Ledger(month="2026-12", budget_micro_usd=15_000_000, runs=(run("a", "claude-sonnet-5-5", "claude-sonnet-5-5"), run("b", "claude-sonnet-5-5"),
                                           run("c", "claude-haiku-4-5")))
    assert caching.reuse_rate(ledger, "analysis", "claude-sonnet-5-5") == 0.5  # one repeat over two runs
    assert caching.reuse_rate(ledger, "analysis", "claude-haiku-4-5") == 0.0
    assert caching.reuse_rate(ledger, "code", "gpt-4o-mini") == 0.0


def test_claude_writes_then_reads_a_marked_prefix_and_bills_it_as_the_api_does(fake_anthropic: FakeAnthropic) -> None:
    client = providers.make_anthropic_client(fake_anthropic.env(), max_retries=0)
    prompt = REPOSITORY + "# Task\nAdd a health check"

    first = providers.analyse(client, "claude-sonnet-5-5", SYSTEM, prompt, 4_000, cache_prefix=REPOSITORY)
    second = providers.analyse(client, "claude-sonnet-5-5", SYSTEM, prompt, 4_000, cache_prefix=REPOSITORY)
    fake_anthropic.clock = lambda: 1e12  # past the 5-minute lifetime
    third = providers.analyse(client, "claude-sonnet-5-5", SYSTEM, prompt, 4_000, cache_prefix=REPOSITORY)
    plain = providers.analyse(client, "claude-sonnet-5-5", SYSTEM, prompt, 4_000)

    sent = fake_anthropic.generation_requests[0].json["messages"][0]["content"]
    assert sent[0] == {"type": "text", "text": REPOSITORY, "cache_control": {"type": "ephemeral"}}
    assert sent[1]["text"] == "# Task\nAdd a health check" and "cache_control" not in sent[1]
    assert first.usage.cache_write_5m_tokens > 1_024 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_5m_tokens and second.usage.cache_write_5m_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens < 20  # only the task is outside the cache
    assert third.usage.cache_write_5m_tokens == first.usage.cache_write_5m_tokens  # expired: written again
    assert plain.usage.cache_read_tokens == plain.usage.cache_write_5m_tokens == 0
    assert fake_anthropic.generation_requests[3].json["messages"][0]["content"] == prompt
    # Written once, read once: cheaper than both uncached (the arithmetic's break-even is 0.26 reads).
    pair = SONNET.cost_micro_usd(first.usage) + SONNET.cost_micro_usd(second.usage)
    assert pair < 2 * SONNET.cost_micro_usd(Usage(input_tokens=first.usage.prompt_tokens, output_tokens=first.usage.output_tokens))


def test_a_marked_prefix_below_the_models_minimum_is_not_cached(fake_anthropic: FakeAnthropic) -> None:
    client = providers.make_anthropic_client(fake_anthropic.env(), max_retries=0)
    prompt = REPOSITORY + "# Task\nAdd a health check"
    for _ in range(2):
        reply = providers.analyse(client, "claude-haiku-4-5", SYSTEM, prompt, 4_000, cache_prefix=REPOSITORY)
        assert reply.usage.cache_write_5m_tokens == reply.usage.cache_read_tokens == 0
        assert reply.usage.input_tokens > 1_024  # all of it billed as plain input


def test_openai_caches_a_repeated_prefix_of_1024_tokens_or_more_by_itself(fake_openai: FakeOpenAI) -> None:
    client = providers.make_openai_client(fake_openai.env(), max_retries=0)
    first = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": REPOSITORY}]
    repair = [*first, {"role": "user", "content": "Block 2 did not apply; send it again."}]

    one = providers.write_code(client, "gpt-4o-mini", first, 1_000)
    two = providers.write_code(client, "gpt-4o-mini", repair, 1_000)

    assert one.usage.cache_read_tokens == 0
    assert two.usage.cache_read_tokens >= 1_024 and (two.usage.cache_read_tokens - 1_024) % 128 == 0
    assert caching.saving_micro_usd(MINI, two.usage) == int(two.usage.cache_read_tokens * (MINI.input - MINI.cache_read))


def _big_module(world: World) -> None:
    """A file large enough that the analysis prefix passes Sonnet's 1,024-token minimum."""
    checkout = world.checkout
    (checkout / "app" / "handlers.py").write_text("".join(f"def handler_{n}(request):\n    return {n}\n\n" for n in range(160)))
    config = checkout / ".github" / "ai-orchestration.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("models:\n  prompt_cache: always\n")
    git(checkout, "add", "-A", env=world.env)
    git(checkout, "commit", "-qm", "handlers", env=world.env)
    git(checkout, "push", "-q", "origin", "main", env=world.env)


def test_the_second_run_within_five_minutes_reads_the_analysis_prefix_and_its_receipt_shows_the_saving(world: World) -> None:
    _big_module(world)
    first = world.run()
    assert first.returncode == 0, first.stderr
    git(world.checkout, "pull", "-q", env=world.env)
    second = world.run()
    assert second.returncode == 0, second.stderr

    assert "analysis: prompt cache marked (models.prompt_cache is always)" in first.stdout
    runs = world.ledger()["runs"]
    [written] = [call for call in runs[0]["calls"] if call["step"] == "analysis"]
    [read] = [call for call in runs[1]["calls"] if call["step"] == "analysis"]
    assert written["cache_write_5m"] > 1_024 and written["cache_read"] == 0
    assert read["cache_read"] == written["cache_write_5m"] and read["cache_write_5m"] == 0
    saved = read["cache_read"] * 19 // 10  # Sonnet 5.5: 2.00 - 0.10 µ$ a token read
    surcharge = written["cache_write_5m"] // 2  # 2.50 - 2.00 µ$ a token written
    one, two = (pull["body"] for pull in world.created_pulls())
    assert f"Prompt caching cost ${surcharge / 1e6:.6f} ({surcharge:,} µ$) on this run" in one
    assert f"Prompt caching saved ${saved / 1e6:.6f} ({saved:,} µ$) on this run" in two


def test_auto_leaves_the_prefix_unmarked_when_nothing_this_month_reuses_it(world: World) -> None:
    _big_module(world)
    config = world.checkout / ".github" / "ai-orchestration.yml"
    config.write_text("models:\n  prompt_cache: auto\n")
    result = world.run()

    assert result.returncode == 0, result.stderr
    assert "analysis: prompt cache not marked (0.00 expected reuses within 5 minutes" in result.stdout
    content = world.anthropic.generation_requests[0].json["messages"][0]["content"]
    assert isinstance(content, str)
    assert "Prompt caching" not in world.created_pulls()[0]["body"]


def test_a_repair_request_reuses_the_code_prompt_from_openais_cache_and_the_receipt_says_so(world: World) -> None:
    bad = {"path": "README.md", "search": "no such line", "replace": "x"}
    fixed = {"path": "README.md", "search": "# Demo", "replace": "# Demo app"}
    (world.checkout / "app" / "big.py").write_text("".join(f"VALUE_{n} = {n}\n" for n in range(600)))
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "big", env=world.env)
    git(world.checkout, "push", "-q", "origin", "main", env=world.env)
    world.anthropic.text += "\nRead `app/big.py` and `README.md`."
    world.openai.contents.extend([FakeOpenAI.code_reply("Add", [GREETING, bad]), FakeOpenAI.code_reply("Fix", [fixed])])
    result = world.run()

    assert result.returncode == 0, result.stderr
    code = [call for call in world.ledger()["runs"][0]["calls"] if call["step"] == "code"]
    assert len(code) == 2 and code[0]["cache_read"] == 0 and code[1]["cache_read"] >= 1_024
    assert "Prompt caching saved" in world.created_pulls()[0]["body"]


def test_the_analysis_prompt_puts_the_repository_first_and_the_task_last(tmp_path: Path) -> None:
    from automation.repo.context import RepoContext
    from automation.steps.pipeline import analysis_prompt

    prompt = analysis_prompt("Add a health check", RepoContext(map_text="## Repository map (0 files)\n", files={}, tokens=10, skipped=[]), [])
    assert prompt.startswith("# Repository\n") and prompt.endswith("# Task\nAdd a health check")
