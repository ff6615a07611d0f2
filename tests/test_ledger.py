"""`token_budget.json`: the bytes on disk, rollover, merge, upgrades and what a broken file says."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from automation.core.errors import EXIT_INVALID, LedgerError
from automation.core.prices import PriceTable, Usage
from automation.money import ledger as ledger_module
from automation.money.ledger import (
    CallRecord,
    PULLS_KEPT,
    Ledger,
    ModelTotals,
    MonthSummary,
    RunRecord,
    from_text,
    load,
    merge,
    new_ledger,
    rollover,
    save,
    as_of,
    CLOSED_RUNS_KEPT,
    to_text,
)

NOW = dt.datetime(2026, 11, 21, 3, 17, tzinfo=dt.timezone.utc)
BUDGET = 15_000_000
HINT = "fix it or restore it from git history (git log -p -- {path})"


def call(step: str = "analysis", model: str = "claude-sonnet-5-5", cost: int = 59_711, **usage: int) -> CallRecord:
    provider = PriceTable.builtin().provider_of(model) or "unknown"
    tokens = Usage(**usage) if usage else Usage(input_tokens=20_105, output_tokens=1_950)
    return CallRecord(step, model, provider, tokens, cost, 14_210)


def run(run_id: str, cost: int = 59_711, started_at: str = "2026-11-21T03:17:00Z", pr: str | None = None) -> RunRecord:
    return RunRecord(run_id, started_at, f"task of {run_id}", "pr_opened" if pr else "failed", pr, (call(cost=cost),))


SAMPLE = Ledger(
    month="2026-11",
    budget_micro_usd=BUDGET,
    runs=(
        RunRecord(
            "1-1-20261121T031700Z",
            "2026-11-21T03:17:00Z",
            "Add a FAQ",
            "pr_opened",
            "https://github.com/o/r/pull/7",
            (
                call(),
                CallRecord("code", "gpt-4o-mini", "openai", Usage(2_000, 500, 0, 0, 8_000), 1_200, 9_000, "rate_limited"),
            ),
        ),
    ),
    history=(MonthSummary("2026-10", BUDGET, 1_000_000, 1, 0, {"gpt-4o": ModelTotals(1, 2, 3, 0, 1_000_000)}),),
    milestones_reached_micro_usd=(5_000_000,),
    notified={"b": True, "a": ["x"]},
    health={"z": {"open": False}, "a": 1},
)

SAMPLE_TEXT = """{
  "budget_micro_usd": 15000000,
  "call_columns": ["step", "model", "input", "output", "reasoning", "cache_write_5m", "cache_write_1h", "cache_read", "cost_micro_usd", "latency_ms", "outcome", "provider"],
  "executions": 1,
  "health": {
    "a": 1,
    "z": {
      "open": false
    }
  },
  "milestones_reached_micro_usd": [
    5000000
  ],
  "models": {
    "claude-sonnet-5-5": {
      "cached_tokens": 0,
      "calls": 1,
      "input_tokens": 20105,
      "output_tokens": 1950,
      "reasoning_tokens": 0,
      "spent_micro_usd": 59711
    },
    "gpt-4o-mini": {
      "cached_tokens": 8000,
      "calls": 1,
      "input_tokens": 2000,
      "output_tokens": 500,
      "reasoning_tokens": 0,
      "spent_micro_usd": 1200
    }
  },
  "month": "2026-11",
  "notified": {
    "a": [
      "x"
    ],
    "b": true
  },
  "prs_opened": 1,
  "remaining_micro_usd": 14939089,
  "schema_version": 4,
  "spent_micro_usd": 60911,
  "history": [
    {"budget_micro_usd":15000000,"executions":1,"models":{"gpt-4o":{"cached_tokens":0,"calls":1,"input_tokens":2,"output_tokens":3,"reasoning_tokens":0,"spent_micro_usd":1000000}},"month":"2026-10","prs_opened":0,"spent_micro_usd":1000000}
  ],
  "runs": [
    {"calls":[["analysis","claude-sonnet-5-5",20105,1950,0,0,0,0,59711,14210],["code","gpt-4o-mini",2000,500,0,0,0,8000,1200,9000,"rate_limited"]],"id":"1-1-20261121T031700Z","outcome":"pr_opened","pr_url":"https://github.com/o/r/pull/7","started_at":"2026-11-21T03:17:00Z","task":"Add a FAQ"}
  ]
}
"""

# The same ledger as schema version 3 wrote it: no PR outcomes yet (none are on record in it).
SAMPLE_TEXT_V3 = SAMPLE_TEXT.replace('"schema_version": 4', '"schema_version": 3')

# The same ledger as schema version 2 wrote it: no reasoning column, no reasoning_tokens totals.
SAMPLE_TEXT_V2 = (
    SAMPLE_TEXT_V3.replace('"output", "reasoning", ', '"output", ')
    .replace('      "reasoning_tokens": 0,\n', "")
    .replace('"reasoning_tokens":0,', "")
    .replace('"schema_version": 3', '"schema_version": 2')
    .replace(',1950,0,0,0,0,59711,', ',1950,0,0,0,59711,')
    .replace(',500,0,0,0,8000,', ',500,0,0,8000,')
)

# The same ledger as schema version 1 wrote it: no call_columns header, each call an object.
SAMPLE_TEXT_V1 = (
    "\n".join(line for line in SAMPLE_TEXT_V2.splitlines() if not line.startswith('  "call_columns"')) + "\n"
).replace('"schema_version": 2', '"schema_version": 1').replace(
    '''    {"calls":[["analysis","claude-sonnet-5-5",20105,1950,0,0,0,59711,14210],["code","gpt-4o-mini",2000,500,0,0,8000,1200,9000,"rate_limited"]],"id":"1-1-20261121T031700Z","outcome":"pr_opened","pr_url":"https://github.com/o/r/pull/7","started_at":"2026-11-21T03:17:00Z","task":"Add a FAQ"}''',
    '''    {"calls":[{"cost_micro_usd":59711,"latency_ms":14210,"model":"claude-sonnet-5-5","step":"analysis","tokens":{"input":20105,"output":1950}},{"cost_micro_usd":1200,"latency_ms":9000,"model":"gpt-4o-mini","outcome":"rate_limited","step":"code","tokens":{"cache_read":8000,"input":2000,"output":500}}],"id":"1-1-20261121T031700Z","outcome":"pr_opened","pr_url":"https://github.com/o/r/pull/7","started_at":"2026-11-21T03:17:00Z","task":"Add a FAQ"}''',
)


# --- the bytes ----------------------------------------------------------------------------


def test_text_is_sorted_indented_with_one_line_per_run_and_a_trailing_newline() -> None:
    assert to_text(SAMPLE) == SAMPLE_TEXT
    assert json.loads(SAMPLE_TEXT)["remaining_micro_usd"] == BUDGET - 59_711 - 1_200


def test_round_trip_is_identity() -> None:
    assert from_text(SAMPLE_TEXT, "token_budget.json") == SAMPLE
    assert to_text(from_text(SAMPLE_TEXT, "token_budget.json")) == SAMPLE_TEXT
    empty = new_ledger(NOW, BUDGET)
    assert to_text(from_text(to_text(empty), "x")) == to_text(empty)
    assert '  "runs": []\n}\n' in to_text(empty)


def test_runs_are_one_line_each_in_start_order() -> None:
    ledger = new_ledger(NOW, BUDGET)
    for run_id, started in [("b", "2026-11-02T00:00:00Z"), ("a", "2026-11-03T00:00:00Z"), ("c", "2026-11-01T00:00:00Z")]:
        ledger = ledger.with_run(run(run_id, started_at=started))
    lines = to_text(ledger).splitlines()
    start = lines.index('  "runs": [')
    rows = lines[start + 1 : start + 4]
    assert [json.loads(row.rstrip(","))["id"] for row in rows] == ["c", "b", "a"]
    assert lines[start + 4] == "  ]"
    # recording the same run again replaces it instead of adding a second line
    again = ledger.with_run(replace(run("b", started_at="2026-11-02T00:00:00Z"), outcome="pr_opened"))
    assert again.executions == 3 and again.run("b").outcome == "pr_opened"


def test_stored_totals_are_recomputed_not_trusted() -> None:
    doctored = SAMPLE_TEXT.replace('"spent_micro_usd": 60911', '"spent_micro_usd": 1')
    assert to_text(from_text(doctored, "x")) == SAMPLE_TEXT


def test_task_text_and_newlines_in_it_stay_on_the_run_line() -> None:
    long_task = "Line one\nline two " + "x" * 300
    ledger = new_ledger(NOW, BUDGET).with_run(replace(run("r"), task=long_task))
    text = to_text(ledger)
    lines = text.splitlines()
    start = lines.index('  "runs": [')
    assert lines[start + 2 :] == ["  ]", "}"]  # exactly one line for the run
    assert json.loads(lines[start + 1])["task"].startswith("Line one\nline two xxx")
    assert from_text(text, "x").runs[0].task == long_task[: ledger_module.TASK_TEXT_KEPT]


def test_a_version_1_ledger_loads_and_is_rewritten_as_rows() -> None:
    assert from_text(SAMPLE_TEXT_V1, "x") == SAMPLE
    assert to_text(from_text(SAMPLE_TEXT_V1, "x")) == SAMPLE_TEXT
    row = '{"cost_micro_usd":5,"latency_ms":1,"model":"gpt-4o","outcome":"ok","provider":"openai","step":"code","tokens":{"input":2}}'
    text = SAMPLE_TEXT_V1.replace('{"cost_micro_usd":1200,', row + ',{"cost_micro_usd":1200,')
    loaded = from_text(text, "x").runs[0].calls[1]
    assert (loaded.model, loaded.provider, loaded.outcome, loaded.usage) == ("gpt-4o", "openai", "ok", Usage(input_tokens=2))


def test_rollover_keeps_the_retired_models_announced_so_discord_hears_it_once() -> None:
    ledger = new_ledger(NOW, BUDGET).with_notified("retired", ["gpt-4o-mini"]).with_notified("retiring", ["x"])
    rolled = rollover(ledger, "2026-12")
    assert rolled.notified == {"recap_due": "2026-11", "retired": ["gpt-4o-mini"]}


def test_a_version_2_ledger_gains_a_reasoning_column_of_zeros() -> None:
    assert "reasoning" not in SAMPLE_TEXT_V2 and SAMPLE_TEXT_V2 != SAMPLE_TEXT
    assert from_text(SAMPLE_TEXT_V2, "x") == SAMPLE
    assert to_text(from_text(SAMPLE_TEXT_V2, "x")) == SAMPLE_TEXT


def test_thinking_tokens_have_their_own_column_inside_output() -> None:
    thought = CallRecord("analysis", "claude-sonnet-5-5", "anthropic", Usage(input_tokens=9, output_tokens=3_300, reasoning_tokens=3_000), 33_018, 5)
    ledger = new_ledger(NOW, BUDGET).with_run(replace(run("r"), calls=(thought,)))
    text = to_text(ledger)
    assert '["analysis","claude-sonnet-5-5",9,3300,3000,0,0,0,33018,5]' in text
    assert from_text(text, "x").runs[0].calls[0] == thought
    assert ledger.model_totals()["claude-sonnet-5-5"].reasoning_tokens == 3_000


def test_a_provider_the_model_name_does_not_imply_is_written_out() -> None:
    odd = CallRecord("code", "acme-coder", "openai", Usage(1, 1), 3, 10)
    text = to_text(new_ledger(NOW, BUDGET).with_run(replace(run("r"), calls=(odd,))))
    assert '["code","acme-coder",1,1,0,0,0,0,3,10,"ok","openai"]' in text
    assert from_text(text, "x").runs[0].calls[0] == odd
    missing = text.replace(',"ok","openai"', "")
    with pytest.raises(LedgerError, match=r"runs\[0\]\.calls\[0\]\.provider must be a string"):
        from_text(missing, "x")


# --- files ---------------------------------------------------------------------------------


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "state" / "token_budget.json"
    assert load(path, NOW, BUDGET) == Ledger(month="2026-11", budget_micro_usd=BUDGET)  # no file yet
    save(SAMPLE, path)
    assert path.read_bytes() == SAMPLE_TEXT.encode("utf-8")
    assert load(path, NOW, BUDGET) == SAMPLE
    assert sorted(p.name for p in path.parent.iterdir()) == ["token_budget.json"]  # no temporary left


def test_save_keeps_the_files_permissions(tmp_path: Path) -> None:
    path = tmp_path / "token_budget.json"
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)
    save(SAMPLE, path)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    fresh = tmp_path / "new.json"
    save(SAMPLE, fresh)
    assert fresh.stat().st_mode & 0o044 == 0o044  # readable by the group and others, like any checkout file


def test_a_save_that_fails_mid_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token_budget.json"
    save(SAMPLE, path)
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ledger_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save(new_ledger(NOW, BUDGET), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["token_budget.json"]


def test_a_ledger_that_cannot_be_serialised_never_touches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "token_budget.json"
    save(SAMPLE, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save(replace(SAMPLE, health={"breaker": {"until": object()}}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["token_budget.json"]


def test_a_rename_that_fails_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token_budget.json"
    save(SAMPLE, path)
    before = path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ledger_module.os, "replace", refuse)
    with pytest.raises(PermissionError):
        save(new_ledger(NOW, BUDGET), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["token_budget.json"]


def load_then_save(path: Path) -> None:
    """What every command does: load, change, save; a bad ledger stops it at the load."""
    ledger = load(path, NOW, BUDGET)
    ledger = rollover(ledger, "2026-11")
    save(ledger.with_run(run("new")), path)


def refused_and_kept(folder: Path, text: str) -> tuple[Path, str]:
    """Write ``text`` as the ledger, load-then-save it: the load must refuse it (exit 2) and leave
    the file as it was, with no temporary file beside it. Returns (path, the error's message)."""
    path = folder / "token_budget.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        load_then_save(path)
    assert caught.value.exit_code == EXIT_INVALID
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in folder.iterdir()] == ["token_budget.json"]
    return path, str(caught.value)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("{not json", "not valid JSON (line 1: Expecting property name enclosed in double quotes)"),
        ("[]", "must hold a JSON object"),
        ('{"schema_version": 1, "budget_micro_usd": 1}', "month must be a string"),
        ('{"schema_version": 1, "month": "2026-1", "budget_micro_usd": 1}', "month must be a month like 2026-11"),
        ('{"schema_version": 1, "month": "Nov 2026", "budget_micro_usd": 1}', "month must be a month like 2026-11"),
        ('{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1.5}', "budget_micro_usd must be a whole number, zero or more"),
        ('{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": {}}', "runs must be a list"),
        ('{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [3]}', "runs[0] must be an object"),
        (
            '{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [{"id": "a", "started_at": "t", '
            '"task": "x", "outcome": "ok", "calls": [{"step": "s", "model": "gpt-4o", "tokens": {}, '
            '"cost_micro_usd": -1, "latency_ms": 0}]}]}',
            "runs[0].calls[0].cost_micro_usd must be a whole number, zero or more",
        ),
        (
            '{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [{"id": "a", "started_at": "t", '
            '"task": "x", "outcome": "ok", "calls": [{"step": "s", "model": "gpt-4o", "tokens": {"input": "many"}, '
            '"cost_micro_usd": 1, "latency_ms": 0}]}]}',
            "runs[0].calls[0].input must be a whole number, zero or more",
        ),
        ('{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [{"id": 7}]}', "runs[0].id must be a string"),
        (
            '{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [], "history": [{"month": "2026-10", '
            '"budget_micro_usd": 1, "spent_micro_usd": 1, "executions": 1, "prs_opened": "one"}]}',
            "history[0].prs_opened must be a whole number, zero or more",
        ),
        ('{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [], "notified": []}', "notified must be an object"),
        ('{"schema_version": 1, "month": "2026-11", "budget_micro_usd": 1, "runs": [], "milestones_reached_micro_usd": ["5"]}',
         "milestones_reached_micro_usd[0] must be a whole number, zero or more"),
        ('{"schema_version": "1", "month": "2026-11"}', "schema_version must be a whole number"),
    ],
)
def test_a_broken_ledger_names_the_file_and_field_and_is_never_overwritten(tmp_path: Path, broken: str, expected: str) -> None:
    path, message = refused_and_kept(tmp_path, broken)
    assert message == f"{path}: {expected}; {HINT.format(path=path)}"


def test_a_ledger_that_is_not_utf8_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "token_budget.json"
    path.write_bytes(b'{"month": "\xff"}')
    with pytest.raises(LedgerError, match=r"token_budget\.json: cannot read the ledger"):
        load_then_save(path)
    assert path.read_bytes() == b'{"month": "\xff"}'


def test_a_newer_schema_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "token_budget.json"
    newer = SAMPLE_TEXT.replace('"schema_version": 4', '"schema_version": 5')
    path.write_text(newer, encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        load_then_save(path)
    assert str(caught.value) == f"{path}: schema_version 5 is newer than this bot understands (4); upgrade ai-orchestration"
    assert caught.value.exit_code == EXIT_INVALID
    assert path.read_text(encoding="utf-8") == newer


def test_a_version_0_ledger_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "token_budget.json"
    path.write_text('{"month": "2026-11", "budget": 15, "spent": 1.25}', encoding="utf-8")
    ledger = load(path, NOW, 99)
    assert (ledger.month, ledger.budget_micro_usd, ledger.spent_micro_usd, ledger.executions) == ("2026-11", 15_000_000, 1_250_000, 1)
    save(ledger, path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert (saved["schema_version"], saved["spent_micro_usd"], saved["remaining_micro_usd"]) == (4, 1_250_000, 13_750_000)
    assert saved["runs"][0]["calls"][0][-1] == "unknown"  # the provider column
    assert load(path, NOW, 99) == ledger  # and the upgraded file loads as itself
    # nothing spent yet: no imported run at all
    assert from_text('{"month": "2026-11", "budget": 20, "spent": 0}', "x") == Ledger("2026-11", 20_000_000)
    # a last month's seed ledger rolls into history like any other
    rolled = rollover(from_text('{"month": "2026-10", "budget": 15, "spent": 2.5}', "x"), "2026-11")
    closed = rolled.history[-1]
    assert closed.month == "2026-10" and closed.spent_micro_usd == 2_500_000 and rolled.spent_micro_usd == 0


def test_a_version_0_ledger_with_a_bad_number_says_so() -> None:
    with pytest.raises(LedgerError) as caught:
        from_text('{"month": "2026-11", "budget": "fifteen"}', "token_budget.json")
    assert str(caught.value) == (
        "token_budget.json: cannot upgrade from schema_version 0: budget must be a number; "
        + HINT.format(path="token_budget.json")
    )


# --- rollover --------------------------------------------------------------------------


def test_rollover_moves_totals_to_history_and_resets_the_month() -> None:
    october = replace(
        SAMPLE,
        month="2026-10",
        runs=tuple(replace(run, started_at="2026-10-21T03:17:00Z") for run in SAMPLE.runs),
        history=(),
        notified={"milestone_5": True},
        health={"breakers": {"openai": {"consecutive_failures": 2, "opened_at": None}}},
    )
    november = rollover(october, "2026-11")
    closed = november.history[-1]
    assert november.notified == {"recap_due": "2026-10"}
    assert (closed.month, closed.spent_micro_usd, closed.executions, closed.prs_opened) == ("2026-10", 60_911, 1, 1)
    assert closed.models["gpt-4o-mini"].cached_tokens == 8_000
    assert november.month == "2026-11"
    assert (november.spent_micro_usd, november.executions, november.runs) == (0, 0, ())
    assert november.milestones_reached_micro_usd == ()
    assert "milestone_5" not in november.notified
    assert november.health == {"breakers": {"openai": {"consecutive_failures": 2, "opened_at": None}}}
    assert november.history == (closed,)
    assert november.budget_micro_usd == BUDGET
    assert november.closed_runs == october.runs  # kept a week, so a late October run merges by id
    # the closed month survives a save and load as one history line, its rows beside it for now
    text = to_text(november)
    assert text.count('"month":"2026-10"') == 1
    assert from_text(text, "x") == november
    # a week into November October is one summary line; its rows stay in git history
    frozen = as_of(november, dt.datetime(2026, 11, 8, tzinfo=dt.timezone.utc))
    assert (frozen.closed_runs, frozen.history) == ((), (closed,))
    assert as_of(november, dt.datetime(2026, 11, 7, 23, 59, tzinfo=dt.timezone.utc)) == november
    assert '"closed_runs"' not in to_text(frozen)


def test_rollover_in_the_same_month_changes_nothing_and_history_has_one_entry_per_month() -> None:
    assert rollover(SAMPLE, "2026-11") == SAMPLE
    assert rollover(SAMPLE, "2026-10") == SAMPLE  # an older clock never rewinds the ledger
    ledger = new_ledger(dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc), BUDGET)
    for number in range(2, 13):
        ledger = ledger.with_run(run(f"r{number}", cost=number, started_at=f"{ledger.month}-15T00:00:00Z"))
        ledger = rollover(ledger, f"2026-{number:02d}")
    assert [entry.month for entry in ledger.history] == [f"2026-{n:02d}" for n in range(1, 12)]
    assert [entry.spent_micro_usd for entry in ledger.history] == list(range(2, 13))


# --- merge -----------------------------------------------------------------------------


def test_merge_of_two_diverged_ledgers_loses_no_run_and_recomputes_totals() -> None:
    base = new_ledger(NOW, BUDGET).with_run(run("shared", cost=1_000))
    ours = base.with_run(run("ours", cost=2_000, started_at="2026-11-21T04:00:00Z", pr="https://github.com/o/r/pull/8"))
    ours = replace(ours, milestones_reached_micro_usd=(5_000_000,), notified={"pace_warned": True})
    theirs = base.with_run(run("theirs", cost=4_000, started_at="2026-11-21T03:30:00Z"))
    theirs = replace(theirs, milestones_reached_micro_usd=(10_000_000,), notified={"retiring": ["gpt-4o-mini"], "pace_warned": False})
    merged = merge(base, ours, theirs)
    assert [r.id for r in merged.runs] == ["shared", "theirs", "ours"]
    assert merged.spent_micro_usd == 7_000
    assert merged.prs_opened == 1
    assert merged.milestones_reached_micro_usd == (5_000_000, 10_000_000)
    assert merged.notified == {"pace_warned": True, "retiring": ["gpt-4o-mini"]}
    saved = json.loads(to_text(merged))
    assert (saved["spent_micro_usd"], saved["executions"], saved["remaining_micro_usd"]) == (7_000, 3, BUDGET - 7_000)
    # and the other way round, the same runs and totals
    assert merge(base, theirs, ours).runs == merged.runs


def test_merge_keeps_our_newer_copy_of_a_run_both_sides_hold() -> None:
    base = new_ledger(NOW, BUDGET).with_run(run("r", cost=1_000))
    ours = base.with_run(replace(run("r", cost=1_000), outcome="pr_opened", pr_url="https://github.com/o/r/pull/9"))
    merged = merge(base, ours, base)
    assert merged.executions == 1 and merged.run("r").outcome == "pr_opened"


def test_merge_takes_a_humans_budget_edit() -> None:
    base = new_ledger(NOW, BUDGET)
    ours = base.with_run(run("bot"))
    human = replace(base, budget_micro_usd=25_000_000)
    merged = merge(base, ours, human)
    assert merged.budget_micro_usd == 25_000_000 and merged.executions == 1
    assert json.loads(to_text(merged))["remaining_micro_usd"] == 25_000_000 - 59_711
    # our own budget change (from the config) wins when the other side left it alone
    assert merge(base, replace(ours, budget_micro_usd=20_000_000), base).budget_micro_usd == 20_000_000


def test_merge_across_a_month_boundary_keeps_both_months() -> None:
    base = new_ledger(NOW, BUDGET).with_run(run("early", cost=1_000))
    late_november = base.with_run(run("late", cost=2_000, started_at="2026-11-30T23:59:00Z"))
    december = rollover(base, "2026-12")
    december = december.with_run(run("dec", cost=4_000, started_at="2026-12-01T00:01:00Z"))
    for merged in (merge(base, late_november, december), merge(base, december, late_november)):
        assert merged.month == "2026-12"
        assert [r.id for r in merged.runs] == ["dec"]
        assert [(h.month, h.spent_micro_usd, h.executions) for h in merged.history] == [("2026-11", 3_000, 2)]


def test_two_late_november_runs_both_land_in_novembers_history_whatever_the_order() -> None:
    """The issue's race: two November runs settle after a December run rolled the ledger over."""
    base = new_ledger(NOW, BUDGET).with_run(run("nov-early", cost=1_000_000, pr="https://github.com/o/r/pull/1"))
    december = rollover(base, "2026-12").with_run(run("dec", cost=40_000, started_at="2026-12-01T00:05:00Z"))
    late_a = base.with_run(run("nov-late-a", cost=160_000, started_at="2026-11-30T23:58:00Z", pr="https://github.com/o/r/pull/2"))
    late_b = base.with_run(run("nov-late-b", cost=160_000, started_at="2026-11-30T23:59:00Z"))
    for first, second in ((late_a, late_b), (late_b, late_a)):
        settled = merge(base, second, merge(base, first, december))
        [november] = settled.history
        assert (november.spent_micro_usd, november.executions, november.prs_opened) == (1_320_000, 3, 2)
        assert [r.id for r in settled.closed_runs] == ["nov-early", "nov-late-a", "nov-late-b"]
        assert [r.id for r in settled.runs] == ["dec"] and settled.spent_micro_usd == 40_000
        assert from_text(to_text(settled), "x") == settled
    # a December run that started before the late runs settled, and commits after them
    both = merge(base, late_b, merge(base, late_a, december))
    assert merge(december, december.with_run(run("dec-2", cost=1, started_at="2026-12-01T00:06:00Z")), both).history == both.history


def test_a_week_into_the_month_last_month_is_a_summary_line_and_a_stale_copy_cannot_shrink_it() -> None:
    base = new_ledger(NOW, BUDGET).with_run(run("a", cost=1_000)).with_run(run("b", cost=2_000))
    december = rollover(base, "2026-12")
    frozen = as_of(december, dt.datetime(2026, 12, 9, tzinfo=dt.timezone.utc))
    assert frozen.closed_runs == () and frozen.history[-1].spent_micro_usd == 3_000
    stale = replace(base, runs=tuple(r for r in base.runs if r.id != "b"))  # a copy from before run b
    for merged in (merge(None, frozen, stale), merge(None, stale, frozen), merge(None, frozen, december)):
        assert merged.closed_runs == () and merged.history[-1].spent_micro_usd == 3_000  # the summary stays
    # a copy with more in it than the summary line is believed (never less than a copy recorded)
    fuller = base.with_run(run("late", cost=9_000))
    assert merge(None, frozen, fuller).history[-1].spent_micro_usd == 12_000
    with pytest.raises(ValueError, match="keeps only as a summary"):
        frozen.with_run(run("later", cost=1, started_at="2026-11-30T23:59:00Z"))


def test_runs_of_earlier_months_kept_among_this_months_are_filed_under_their_own() -> None:
    years = tuple(run(f"r{month}", cost=month, started_at=f"2025-{month:02d}-10T00:00:00Z") for month in range(1, 13))
    ledger = Ledger(month="2026-01", budget_micro_usd=BUDGET, runs=years + (run("now", cost=7, started_at="2026-01-02T00:00:00Z"),))
    filed = rollover(ledger, "2026-01")
    assert [r.id for r in filed.runs] == ["now"] and filed.spent_micro_usd == 7
    assert [r.id for r in filed.closed_runs] == ["r12"]  # December, still mergeable by id
    assert [(e.month, e.spent_micro_usd) for e in filed.history] == [(f"2025-{m:02d}", m) for m in range(1, 13)]
    assert rollover(filed, "2026-01") is filed


def test_merge_keeps_health_from_both_sides() -> None:
    ours = replace(new_ledger(NOW, BUDGET), health={"breakers": {"openai": {"open": True}}})
    theirs = replace(new_ledger(NOW, BUDGET), health={"breakers": {"anthropic": {"open": False}}, "parked": ["x"]})
    assert merge(None, ours, theirs).health == {
        "breakers": {"anthropic": {"open": False}, "openai": {"open": True}},
        "parked": ["x"],
    }


# --- size ------------------------------------------------------------------------------


def test_a_year_at_480_runs_a_month_stays_under_300_kb(tmp_path: Path) -> None:
    """Saved at its largest each month: a week in, last month's rows and this week's side by side
    (with the newest 300 PR records, that peak is allowed 330 KB), and at each month's end."""
    table = PriceTable.builtin()
    sonnet, mini = table.find("claude-sonnet-5-5"), table.find("gpt-4o-mini")
    assert sonnet and mini
    ledger = new_ledger(dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc), BUDGET)
    largest = 0
    path = tmp_path / "token_budget.json"
    for month in range(1, 13):
        first = dt.datetime(2026, month, 1, tzinfo=dt.timezone.utc)
        ledger = as_of(ledger, first)
        for index in range(480):
            started = first + dt.timedelta(minutes=90 * index)
            if started >= first + CLOSED_RUNS_KEPT and ledger.closed_runs:
                save(ledger, path)
                largest = max(largest, path.stat().st_size)
                ledger = as_of(ledger, started)
            analysis = Usage(input_tokens=21_345 + index, output_tokens=1_876, cache_read_tokens=12_000)
            code = Usage(input_tokens=24_567 + index, output_tokens=6_789, cache_read_tokens=3_456)
            ledger = ledger.with_run(
                RunRecord(
                    id=f"{12_345_678_901 + index}-1-{started:%Y%m%dT%H%M%SZ}",
                    started_at=f"{started:%Y-%m-%dT%H:%M:%SZ}",
                    task=f"Add a /health endpoint that returns the build version and uptime as JSON (#{index:03d})",
                    outcome="pr_opened",
                    pr_url=f"https://github.com/example-org/example-repository/pull/{month * 1000 + index}",
                    calls=(
                        CallRecord("analysis", sonnet.model, sonnet.provider, analysis, sonnet.cost_micro_usd(analysis), 12_345),
                        CallRecord("code", mini.model, mini.provider, code, mini.cost_micro_usd(code), 23_456),
                    ),
                )
            )
        save(ledger, path)
        month_end = path.stat().st_size
        assert month_end < 300_000, f"the ledger at the end of month {month} is {month_end:,} bytes"
    text = path.read_text(encoding="utf-8")
    assert len(ledger.history) == 12 and ledger.executions == 480  # 2025-12 (empty) to 2026-11
    assert len(ledger.pulls) == PULLS_KEPT  # the newest PRs' outcomes, one line each
    assert len(text.splitlines()) < 480 + 12 + PULLS_KEPT + 60  # one line per run, per month and per PR
    assert largest < 330_000, f"a year of ledger peaks at {largest:,} bytes"
    print(f"largest ledger over the year: {largest:,} bytes; at the year's end: {month_end:,} bytes")
    assert from_text(text, "x") == ledger


@pytest.mark.parametrize(
    ("damaged", "expected"),
    [
        (SAMPLE_TEXT.replace('  "schema_version": 4,\n', ""), "schema_version is missing"),
        ('{"month": "2026-11", "budget_micro_usd": 15000000, "runs": []}', "schema_version is missing"),
        ('{"schema_version": 2, "month": "2026-11", "budget_micro_usd": 15000000}', "runs is missing"),
        ('{"schema_version": 2, "month": "2026-11", "budget_micro_usd": 1, "runs": [{"id": "a", "started_at": "t", '
         '"task": "x", "outcome": "pr_opened"}]}', "runs[0].calls is missing"),
        ('{"month": "2026-11", "monthly_budget": 15}', "cannot upgrade from schema_version 0: the spend is missing"),
    ],
)
def test_a_ledger_whose_spend_is_not_stated_is_refused_not_read_as_zero(tmp_path: Path, damaged: str, expected: str) -> None:
    path, message = refused_and_kept(tmp_path, damaged)
    assert message.startswith(f"{path}: {expected}")


def test_two_runs_under_one_id_are_refused_naming_the_id(tmp_path: Path) -> None:
    twice = Ledger("2026-11", BUDGET, runs=(run("4242-1-20261121T031700Z"), run("other")))
    text = to_text(twice).replace('"id":"other"', '"id":"4242-1-20261121T031700Z"')
    path = tmp_path / "token_budget.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LedgerError) as caught:
        load_then_save(path)
    assert caught.value.exit_code == EXIT_INVALID
    assert "run id '4242-1-20261121T031700Z' appears twice (runs[0] and runs[1])" in str(caught.value)
    assert path.read_text(encoding="utf-8") == text


def test_run_ids_are_unique_by_construction_even_for_one_workflow_run_in_one_second() -> None:
    from automation.money.ledger import new_run_id, random_nonce

    ids = {new_run_id("4242", "1", NOW, nonce) for nonce in ("0a1b2c3d", "ffffffff")}
    assert ids == {"4242-1-20261121T031700Z-0a1b2c3d", "4242-1-20261121T031700Z-ffffffff"}
    assert len({new_run_id("4242", "1", NOW, random_nonce()) for _ in range(200)}) == 200


def test_follow_up_runs_round_trip_and_are_not_new_pull_requests() -> None:
    follow_up = replace(run("f", pr="https://github.com/o/r/pull/1"), kind="follow_up", pull=1, outcome="follow_up_pushed")
    ledger = replace(SAMPLE, runs=(run("a", pr="https://github.com/o/r/pull/1"), follow_up))
    text = to_text(ledger)
    assert '"kind":"follow_up"' in text and '"pull":1' in text and text.count('"kind"') == 1  # a task run says nothing
    again = from_text(text, "token_budget.json")
    assert again.runs == ledger.runs and again.prs_opened == 1
    with pytest.raises(LedgerError, match=r"runs\[1\].pull must be a whole number"):
        from_text(text.replace('"pull":1', '"pull":"one"'), "token_budget.json")


# --- damaged ledgers: refused in one line, or never believed to hold less than they say ----------

SPENT_RUN = to_text(Ledger("2026-11", BUDGET, runs=(run("a", 14_990_000),)))


@pytest.mark.parametrize(
    ("damaged", "expected"),
    [
        # a hand-resolved merge conflict that kept both sides' "runs": json would keep the last, empty one
        (SPENT_RUN.replace('  "runs": [', '  "runs": [],\n  "runs": ['), "the key 'runs' appears twice in one object"),
        (SPENT_RUN.replace('"budget_micro_usd": 15000000,', '"budget_micro_usd": 15000000, "budget_micro_usd": 1,'),
         "the key 'budget_micro_usd' appears twice in one object"),
        (SPENT_RUN.replace(",14990000,", "," + "9" * 5_000 + ","), "holds a number thousands of digits long"),
        ('{"schema_version": 3, "month": "2026-11", "budget_micro_usd": 1, "runs": [], "notified": '
         + '{"a": ' * 100_000 + "1" + "}" * 100_001, "nested too deeply to be a ledger"),
        ('{"schema_version": 3, "month": "2026-11", "budget_micro_usd": 1, "runs": [], "health": '
         + '{"a": [' * 20 + "1" + "]}" * 20 + "}", "health must be nested at most 16 levels deep"),
        ('{"schema_version": 3, "month": "2026-11", "budget_micro_usd": NaN, "runs": []}', "holds NaN, which is not a number JSON allows"),
        ('{"schema_version": 3, "month": "2026-11", "budget_micro_usd": 1' + "0" * 40 + ', "runs": []}',
         "budget_micro_usd must be at most 9,007,199,254,740,991"),
    ],
)
def test_a_damaged_ledger_is_refused_in_one_line_and_kept(tmp_path: Path, damaged: str, expected: str) -> None:
    path, message = refused_and_kept(tmp_path, damaged)
    assert message.startswith(f"{path}: {expected}") and "\n" not in message and len(message) < 400


def test_runs_removed_with_the_stated_total_kept_are_never_read_as_less_without_saying_so() -> None:
    damaged = json.loads(SPENT_RUN)
    damaged["runs"] = []  # the total says $14.99
    ledger = from_text(json.dumps(damaged), "main:token_budget.json")

    assert ledger.spent_micro_usd == 14_990_000
    [kept] = ledger.runs
    assert (kept.id, kept.outcome) == ("unaccounted-2026-11-1", "unaccounted")
    [warning] = ledger.warnings
    assert warning.startswith("main:token_budget.json: spent_micro_usd says $14.99 but the runs add up to $0.00; "
                              "keeping the $14.99 difference as run 'unaccounted-2026-11-1'")
    again = from_text(to_text(ledger), "x")  # written back, it reads the same and says nothing more
    assert again == ledger and again.warnings == ()
    assert from_text(SPENT_RUN, "x").warnings == ()  # a total the runs add up to is believed silently


def test_a_runs_checks_round_trip_and_a_bad_record_names_its_field() -> None:
    from automation.money.ledger import ChecksRecord

    checks = ChecksRecord("failed", repairs=1, base="a" * 40, files="0123456789abcdef", commands="c0ffee",
                          failing_on_base=(("ruff check .", ("app.py: F401",)),))
    ledger = replace(SAMPLE, runs=(replace(SAMPLE.runs[0], checks=checks), replace(SAMPLE.runs[0], id="2", checks=None)))

    text = to_text(ledger)

    assert '"checks":{"base":"' + "a" * 40 + '","commands":"c0ffee","failing_on_base":{"ruff check .":["app.py: F401"]}' in text
    assert from_text(text, "x.json").runs == ledger.runs
    with pytest.raises(LedgerError, match=r"runs\[0\].checks.failing_on_base must be an object"):
        from_text(text.replace('{"ruff check .":["app.py: F401"]}', '["app.py"]'), "x.json")
