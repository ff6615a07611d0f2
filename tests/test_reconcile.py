"""`reconcile`: the ledger against the providers' own usage and cost reports, read over real
sockets from loopback fakes of Anthropic's Admin API and OpenAI's organization API (their wire
formats: daily buckets, pages, cents as decimal strings, dollars as floats). The CLI runs with
its clock passed in, against a checkout whose `origin` is a bare repository."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys

import pytest

from automation.cli import main
from automation.core.prices import Usage
from automation.money import ledger as ledger_module
from automation.money.ledger import CallRecord, Ledger, RunRecord
from tests import test_run
from tests.fakes.admin_servers import FakeAnthropicAdmin, FakeOpenAIAdmin, fake_anthropic_admin_fixture, fake_openai_admin_fixture  # noqa: F401
from tests.fakes.github_server import fake_github  # noqa: F401
from tests.fakes.model_servers import fake_anthropic_fixture, fake_openai_fixture  # noqa: F401
from tests.test_run import World
from tests.test_run_alerts import fresh_checkout, publish

world = test_run.world
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
SONNET = Usage(input_tokens=20_000, output_tokens=2_000)
MINI = Usage(input_tokens=24_000, output_tokens=6_000)


def bot_run(run_id: str, day: str, analysis_cost: int, code_cost: int) -> RunRecord:
    return RunRecord(run_id, f"{day}T03:00:00Z", f"task {run_id}", "pr_opened", f"https://github.com/o/r/pull/{run_id}", (
        CallRecord("analysis", "claude-sonnet-5-5", "anthropic", SONNET, analysis_cost, 12_000),
        CallRecord("code", "gpt-4o-mini", "openai", MINI, code_cost, 8_000),
    ))


NOVEMBER = Ledger(month="2026-11", budget_micro_usd=15_000_000, runs=(
    bot_run("r1", "2026-11-20", 60_000, 7_200), bot_run("r2", "2026-11-21", 60_000, 7_200),
))


@pytest.fixture()
def admin(world: World, fake_anthropic_admin: FakeAnthropicAdmin, fake_openai_admin: FakeOpenAIAdmin) -> World:
    """The world with both admin keys, the providers' base URLs pointing at the admin fakes, and
    November's ledger on the default branch. What the providers billed:

    - 11-20: exactly what the ledger holds (Anthropic reports the alias, OpenAI the dated name);
    - 11-21: Anthropic $0.30 more (a killed run's analysis the ledger never got);
    - 11-22: a run the ledger has not at all, $0.162 on Anthropic, $0.0072 on OpenAI.
    """
    world.env.update({**fake_anthropic_admin.env(), **fake_openai_admin.env()})
    publish(world, {"token_budget.json": ledger_module.to_text(NOVEMBER)})
    fake_anthropic_admin.bill("2026-11-20", "claude-sonnet-5-5", 60_000, **_tokens(SONNET))
    fake_anthropic_admin.bill("2026-11-21", "claude-sonnet-5-5", 360_000, input_tokens=40_000, output_tokens=32_000)
    fake_anthropic_admin.bill("2026-11-22", "claude-sonnet-5-5", 162_000, input_tokens=900, output_tokens=16_000)
    for day in ("2026-11-20", "2026-11-21", "2026-11-22"):
        fake_openai_admin.bill(day, "gpt-4o-mini-2024-07-18", 7_200, **_tokens(MINI))
    fake_anthropic_admin.buckets_per_page = fake_openai_admin.buckets_per_page = 7  # four pages for 25 days
    return world


def _tokens(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def reconcile(world: World, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["reconcile", "--repo", str(world.checkout), *args], env=env or world.env, now=NOW, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def remote_ledger(world: World) -> Ledger:
    return ledger_module.from_text(world.remote_file("main", "token_budget.json") or "", "main")


def test_without_admin_keys_it_says_what_it_needs_and_exits_2(tmp_path) -> None:  # noqa: ANN001
    result = subprocess.run([sys.executable, "-m", "automation", "reconcile", "--repo", str(tmp_path)],
                            env={"PATH": "/usr/bin:/bin", "ANTHROPIC_API_KEY": "sk-ant-api03-x"},
                            capture_output=True, text=True, cwd=test_run.ROOT, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("error: reconcile needs an admin key") and "ANTHROPIC_ADMIN_KEY" in line and "OPENAI_ADMIN_KEY" in line


def test_it_prints_each_day_and_model_the_providers_billed_differently(admin: World, fake_anthropic_admin, fake_openai_admin) -> None:  # noqa: ANN001
    code, out, err = reconcile(admin)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Reconciling 2026-11 per day and model with Anthropic's cost and usage reports and OpenAI's costs and usage."
    assert not any(line.startswith("2026-11-20") for line in lines)  # the same on both sides
    [killed] = [line for line in lines if line.startswith("2026-11-21")]
    assert "anthropic" in killed and "$0.0600" in killed and "$0.3600" in killed and "+$0.3000" in killed
    assert "tokens in/out: ledger 20,000/2,000, billed 40,000/32,000" in killed
    unknown = [line for line in lines if line.startswith("2026-11-22")]
    assert len(unknown) == 1 and "+$0.1620" in unknown[0]  # OpenAI's $0.0072 on that day is under a cent
    assert "Total: the ledger's runs $0.1344, billed $0.6036" in out
    assert "The providers billed $0.4620 the ledger lacks; run with --apply" in out
    assert remote_ledger(admin) == NOVEMBER  # nothing written without --apply
    documented = (test_run.ROOT / "docs" / "COST-TRACKING.md").read_text(encoding="utf-8")
    assert f"$ python -m automation reconcile --month 2026-11\n{out}```" in documented  # the docs show the real output
    for fake, paths in ((fake_anthropic_admin, ("/v1/organizations/cost_report", "/v1/organizations/usage_report/messages")),
                        (fake_openai_admin, ("/v1/organization/costs", "/v1/organization/usage/completions"))):
        for path in paths:
            assert len(fake.requests_to(path)) == 4  # 25 days in pages of 7: every next_page followed
    first = fake_anthropic_admin.requests_to("/v1/organizations/cost_report")[0]
    assert "starting_at=2026-11-01T00%3A00%3A00Z" in first.query and "ending_at=2026-11-26T00%3A00%3A00Z" in first.query
    assert first.headers["anthropic-version"] == "2023-06-01"
    for fake in (fake_anthropic_admin, fake_openai_admin):
        key = fake.api_key
        assert key not in out and not [p for r in fake.requests for p in (r.path, r.query) if key in p]


def test_apply_records_what_was_billed_beyond_the_ledger_once(admin: World) -> None:
    code, out, _ = reconcile(admin, "--apply")

    assert code == 0
    assert "Recorded $0.4620 the providers billed beyond the ledger as adjustment rows." in out
    assert out.splitlines()[-1] == "Ledger committed to main"
    ledger = remote_ledger(admin)
    assert ledger.spent_micro_usd == NOVEMBER.spent_micro_usd + 462_000
    assert ledger.executions == 2  # adjustments are spend, not runs
    adjustments = {run.id: run for run in ledger.runs if run.kind == "adjustment"}
    assert sorted(adjustments) == ["reconcile-anthropic-2026-11-21", "reconcile-anthropic-2026-11-22"]
    [call] = adjustments["reconcile-anthropic-2026-11-21"].calls
    assert (call.model, call.cost_micro_usd, call.outcome, call.usage.output_tokens) == ("claude-sonnet-5-5", 300_000, "reconciled", 30_000)
    status = io.StringIO()
    fresh_checkout(admin)
    assert main(["status", "--repo", str(admin.checkout)], env={}, now=NOW, out=status, err=io.StringIO()) == 0
    assert "spent $0.60 of $15.00" in status.getvalue()

    again, out, _ = reconcile(admin, "--apply")  # the same bill again: nothing new to record
    assert again == 0 and "Ledger committed" not in out
    assert "+$0.3000" in out and "(adjusted: $0.3000)" in out
    assert remote_ledger(admin) == ledger


def test_a_workspace_and_a_project_narrow_the_reports_to_the_bot(admin: World, fake_anthropic_admin, fake_openai_admin) -> None:  # noqa: ANN001
    fake_anthropic_admin.billings = [b for b in fake_anthropic_admin.billings if b.day.day == 20]
    fake_anthropic_admin.billings = [type(b)(**{**b.__dict__, "scope": "wrkspc_bot"}) for b in fake_anthropic_admin.billings]
    fake_anthropic_admin.bill("2026-11-21", "claude-sonnet-5-5", 60_000, scope="wrkspc_bot", **_tokens(SONNET))
    fake_anthropic_admin.bill("2026-11-21", "claude-opus-5", 9_000_000, scope="wrkspc_humans")  # someone else's usage
    fake_openai_admin.billings = [type(b)(**{**b.__dict__, "scope": "proj_bot"}) for b in fake_openai_admin.billings if b.day.day < 22]
    fake_openai_admin.bill("2026-11-21", "gpt-5.6-luna", 5_000_000, scope="proj_other")

    code, out, _ = reconcile(admin, "--anthropic-workspace", "wrkspc_bot", "--openai-project", "proj_bot")

    assert code == 0
    assert "The providers billed nothing the ledger lacks." in out and "claude-opus-5" not in out
    assert "project_ids%5B%5D=proj_bot" in fake_openai_admin.requests_to("/v1/organization/costs")[0].query
    code, out, _ = reconcile(admin)  # the whole organisation: everyone's usage
    assert "claude-opus-5" in out and "+$9.0000" in out


def test_a_key_the_report_refuses_is_named_without_being_shown(admin: World) -> None:
    code, out, err = reconcile(admin, env={**admin.env, "ANTHROPIC_ADMIN_KEY": "sk-ant-api03-not-an-admin-key"})

    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert "refused ANTHROPIC_ADMIN_KEY (401)" in line and "admin key" in line
    assert "sk-ant-api03-not-an-admin-key" not in err


def test_only_one_admin_key_compares_that_provider_and_says_so(admin: World) -> None:
    env = {k: v for k, v in admin.env.items() if k != "OPENAI_ADMIN_KEY"}
    code, out, _ = reconcile(admin, env=env)
    assert code == 0
    assert "note: OPENAI_ADMIN_KEY is not set: openai is not compared" in out
    assert "with Anthropic's cost and usage reports." in out and "gpt-4o-mini" not in out


def test_a_month_kept_as_a_summary_line_is_compared_per_model_and_cannot_take_adjustments(admin: World) -> None:
    february = ledger_module.as_of(NOVEMBER, dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc))
    publish(admin, {"token_budget.json": ledger_module.to_text(february)})
    out, err = io.StringIO(), io.StringIO()
    args = ["reconcile", "--repo", str(admin.checkout), "--month", "2026-11"]
    later = dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc)
    assert main(args, env=admin.env, now=later, out=out, err=err) == 0
    assert "per model (the month is one summary line in the ledger)" in out.getvalue()
    assert "+$0.4620" in out.getvalue() or "$0.4620 the ledger lacks" in out.getvalue()
    assert main([*args, "--apply"], env=admin.env, now=later, out=io.StringIO(), err=err) == 2
    assert "is kept in the ledger only as a summary line" in err.getvalue()
    assert json.loads(admin.remote_file("main", "token_budget.json") or "{}")["month"] == "2027-01"
