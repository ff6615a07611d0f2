"""benchmarks/bench_recall.py and record_locations.py stay runnable: a tiny data set in the shared format, end to end."""

from __future__ import annotations

import datetime as dt
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_recall  # noqa: E402
import record_locations  # noqa: E402

from automation.core.config import Config  # noqa: E402
from automation.core.prices import Usage, format_usd  # noqa: E402
from automation.repo import localise  # noqa: E402
from tests.fakes.model_servers import FakeOpenAI, Reply, fake_openai_fixture  # noqa: E402, F401

FILES = {
    "shop/__init__.py": "",
    "shop/pricing.py": "def apply_discount(total, code):\n    return total\n",
    "shop/stock.py": "def stock_level(item):\n    return 3\n",
    "tests/test_pricing.py": "from shop.pricing import apply_discount\n",
    "README.md": "# Shop\n",
}


def _make_cases(folder: Path, fillers: int = 0) -> None:
    """Two cases in one bundle, as ../shared/bench/recall lays them out (refs/bench/NN, root commits);
    ``fillers`` unrelated modules make the repository large enough for a localisation call."""
    work = folder / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    env_args = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    for path, content in {**FILES, **{f"vendor/lib{index}.py": f"VALUE = {index}\n" for index in range(fillers)}}.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(content)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(
        ["git", *env_args, "commit-tree", tree, "-m", "snapshot"], cwd=work, check=True, capture_output=True, text=True
    ).stdout.strip()
    for ref, changed in (("00", {"shop/pricing.py": "    return total * 0.9\n"}), ("01", {"shop/stock.py": "    return 4\n", "shop/pricing.py": "    return total\n"})):
        subprocess.run(["git", "update-ref", f"refs/bench/{ref}", commit], cwd=work, check=True)
        subprocess.run(["git", "read-tree", tree], cwd=work, check=True)
        for path, last_line in changed.items():  # the real change: a hunk replacing the last line, or none
            (work / path).write_text(FILES[path].splitlines(keepends=True)[0] + last_line)
            subprocess.run(["git", "add", path], cwd=work, check=True)
        after_tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout.strip()
        after = subprocess.run(
            ["git", *env_args, "commit-tree", after_tree, "-p", commit, "-m", "change"], cwd=work, check=True, capture_output=True, text=True
        ).stdout.strip()
        subprocess.run(["git", "update-ref", f"refs/bench/{ref}-after", after], cwd=work, check=True)
    (folder / "bundles").mkdir()
    subprocess.run(["git", "bundle", "create", "-q", str(folder / "bundles" / "shop.bundle"), "--glob=refs/bench/*"], cwd=work, check=True)
    cases = [
        {"repo": "acme/shop", "bundle": "bundles/shop.bundle", "ref": "refs/bench/00", "after_ref": "refs/bench/00-after", "task": "Validate the discount code", "targets": ["shop/pricing.py"]},
        {"repo": "acme/shop", "bundle": "bundles/shop.bundle", "ref": "refs/bench/01", "after_ref": "refs/bench/01-after", "task": "Cache stock levels", "targets": ["shop/stock.py", "shop/pricing.py"]},
    ]
    (folder / "cases.jsonl").write_text("".join(json.dumps(case) + "\n" for case in cases))


def test_the_benchmark_runs_on_a_tiny_data_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_cases(tmp_path / "data")
    assert bench_recall.main(["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--memory-every", "1", "--large-files", "12"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 cases, cap 40,000 tokens"
    assert out[1].split() == ["project", "cases", "files", "excerpt", "all", "map", "bm25", "hunks@20k", "hunks@40k", "bm25@20k", "bm25@40k",
                              "tok@20k", "tok@40k", "median-ms", "cpu-ms", "max-ms", "peak-MB"]
    shop, overall = out[3].split(), out[4].split()
    # every file fits: all targets whole, the one hunk of each case found (the unchanged pricing.py of 01 has none)
    assert shop[:11] == ["shop", "2", "1.00", "0.00", "100%", "1.00", "1.00", "1.00", "1.00", "1.00", "1.00"] and overall[0] == "overall"
    assert 0 < int(shop[11].replace(",", "")) <= 20_000 and 0 < int(shop[12].replace(",", "")) <= 40_000
    assert float(shop[-1]) > 0  # peak memory traced
    assert out[-2].startswith("large repository, 15 files: median ")  # three copies of the five files
    assert out[-1] == "goal met"


def test_hunk_recall_counts_a_hunk_only_when_all_its_old_lines_are_in_the_prompt() -> None:
    excerpt = "def a():\n    return 1\n… lines 3-9 left out\nline ten\n… lines 11-20 left out\n"
    assert bench_recall.excerpt_lines(excerpt) == {1, 2, 10}
    hunks = [bench_recall.Hunk("m.py", 1, 2), bench_recall.Hunk("m.py", 2, 2), bench_recall.Hunk("m.py", 10, 0),
             bench_recall.Hunk("m.py", 11, 0), bench_recall.Hunk("m.py", 0, 0), bench_recall.Hunk("n.py", 5, 3)]
    # 1-2 carried; 2-3 half; an insertion after line 10 (carried), after 11 (not), at the top (line 1 carried); n.py sent whole
    assert bench_recall.hunks_found(hunks, {"n.py"}, {"m.py": bench_recall.excerpt_lines(excerpt)}) == 4
    assert bench_recall.hunks_found(hunks, set(), {}) == 0


def test_recorded_localisation_replies_are_replayed_with_their_cost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_cases(tmp_path / "data", fillers=localise.MIN_FILES)
    replies = tmp_path / "replies.jsonl"
    reply = '{"files": ["shop/pricing.py"], "symbols": []}'
    replies.write_text("".join(json.dumps(row) + "\n" for row in [
        {"project": "shop", "ref": "refs/bench/00", "task": "Validate the discount code", "reply": reply},
        {"project": "shop", "ref": "refs/bench/01", "task": "A case of another data set, with the same ref", "reply": reply},
    ]))
    args = ["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--memory-every", "0", "--large-files", "0"]
    assert bench_recall.main([*args, "--locations", str(replies)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[-2:] == ["loc-calls", "loc-$"]
    shop = out[3].split()
    assert shop[0] == "shop" and shop[-2] == "50%"  # one case of two has a recorded reply (the other's task differs)
    assert 0.0001 < float(shop[-1].removeprefix("$")) < 0.01  # ~7 KB of prompt on the default code model
    assert bench_recall.main(args) == 0
    assert "loc-calls" not in capsys.readouterr().out  # without replies: no such columns


TODAY = dt.date(2026, 12, 1)  # gpt-4o-mini in service
DEPLOY_TOKEN = "ghp_" + "d" * 36  # a secret of the environment, written into a task


def _record(tmp_path: Path, env: dict[str, str], *extra: str) -> tuple[int, str]:
    said = io.StringIO()
    args = ["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "replies.jsonl"), *extra]
    return record_locations.main(args, env=env, say=said, today=TODAY), said.getvalue()


def test_a_real_models_replies_are_recorded_once_each_with_their_cost_and_replayed(
    tmp_path: Path, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_cases(tmp_path / "data", fillers=localise.MIN_FILES)
    cases = tmp_path / "data" / "cases.jsonl"
    rows = [json.loads(line) for line in cases.read_text().splitlines()]
    rows[1]["task"] = f"Cache stock levels (deploy with {DEPLOY_TOKEN})"
    cases.write_text("".join(json.dumps(row) + "\n" for row in rows))
    fake_openai.contents.extend(['{"files": ["shop/pricing.py"], "symbols": [{"path": "shop/pricing.py", "name": "apply_discount"}]}',
                                 '```json\n{"files": ["shop/stock.py"], "symbols": []}\n```'])
    env = {**fake_openai.env(), "DEPLOY_TOKEN": DEPLOY_TOKEN}

    code, said = _record(tmp_path, env)

    assert code == 0, said
    sent = fake_openai.generation_requests
    assert [request.json["model"] for request in sent] == ["gpt-4o-mini", "gpt-4o-mini"]  # the bot's code model
    assert all(request.json["max_completion_tokens"] == localise.MAX_TOKENS for request in sent)
    assert sent[0].json["messages"][0] == {"role": "system", "content": localise.SYSTEM}
    assert "Validate the discount code" in sent[0].json["messages"][1]["content"]
    assert fake_openai.places_containing(DEPLOY_TOKEN) == []  # masked in the prompt, as a run masks it
    recorded = [json.loads(line) for line in (tmp_path / "replies.jsonl").read_text().splitlines()]
    assert [(row["ref"], row["reply"][:12]) for row in recorded] == [("refs/bench/00", '{"files": ["'), ("refs/bench/01", "```json\n{\"fi")]
    price = Config().price("gpt-4o-mini")
    usage = Usage(input_tokens=recorded[0]["input_tokens"], output_tokens=recorded[0]["output_tokens"])
    assert recorded[0]["cost_micro_usd"] == price.cost_micro_usd(usage) > 0
    assert said.splitlines()[-1].startswith("recorded 2 replies from gpt-4o-mini for $0.0")

    code, said = _record(tmp_path, env)  # run again: nothing left to ask
    assert (code, len(fake_openai.generation_requests)) == (0, 2)
    assert said.startswith("recorded 0 replies")

    args = ["--cases", str(tmp_path / "data"), "--cache", str(tmp_path / "cache"), "--memory-every", "0", "--large-files", "0"]
    assert bench_recall.main([*args, "--locations", str(tmp_path / "replies.jsonl")]) == 0
    shop = capsys.readouterr().out.splitlines()[3].split()
    assert shop[0] == "shop" and shop[-2] == "100%"  # both cases replayed with their call, at what it was billed
    assert shop[-1] == format_usd(round(statistics.mean(row["cost_micro_usd"] for row in recorded)), 4)


def test_recording_stops_before_a_call_that_could_pass_the_limit(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    _make_cases(tmp_path / "data", fillers=localise.MIN_FILES)
    code, said = _record(tmp_path, fake_openai.env(), "--max-usd", "0.001")  # a call's worst case: ~$0.002
    assert code == 0
    assert said.splitlines()[0].startswith("stopped before shop refs/bench/00: its call could pass --max-usd $0.00")
    assert fake_openai.generation_requests == []


def test_a_billed_unusable_reply_is_recorded_as_no_locations_and_a_failure_keeps_what_was_recorded(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    _make_cases(tmp_path / "data", fillers=localise.MIN_FILES)
    fake_openai.script(FakeOpenAI.completion("{\"files\": [\"shop/pri", finish_reason="length"), FakeOpenAI.invalid_api_key())
    code, said = _record(tmp_path, fake_openai.env())
    assert code == 1
    lines = said.splitlines()
    assert lines[0] == "shop refs/bench/00: the reply was not usable (max_tokens); recorded as no locations"
    assert "run again to go on" in lines[1] and FakeOpenAI.api_key not in said
    recorded = [json.loads(line) for line in (tmp_path / "replies.jsonl").read_text().splitlines()]
    assert [(row["ref"], row["reply"]) for row in recorded] == [("refs/bench/00", "")]
    assert recorded[0]["cost_micro_usd"] > 0  # billed all the same

    completion = FakeOpenAI.completion('{"files": ["shop/stock.py"]}').body
    del completion["usage"]  # a gateway that strips it
    fake_openai.script(Reply(200, completion))
    assert _record(tmp_path, fake_openai.env())[0] == 0  # resumes at the second case
    recorded = [json.loads(line) for line in (tmp_path / "replies.jsonl").read_text().splitlines()]
    worst = record_locations.worst_case_micro_usd(Config().price("gpt-4o-mini"), fake_openai.generation_requests[-1].json["messages"])
    assert [(row["ref"], row["cost_micro_usd"]) for row in recorded[1:]] == [("refs/bench/01", worst)]  # booked at its worst case


def test_recording_without_a_key_or_with_a_broken_replies_file_says_so_in_one_line(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    _make_cases(tmp_path / "data", fillers=localise.MIN_FILES)
    code, said = _record(tmp_path, {"OPENAI_BASE_URL": fake_openai.base_url})
    assert (code, len(said.splitlines())) == (1, 1)
    assert said.startswith("OPENAI_API_KEY is not set.")
    assert not (tmp_path / "replies.jsonl").exists()
    (tmp_path / "replies.jsonl").write_text('{"project": "shop"}\n')
    code, said = _record(tmp_path, fake_openai.env())
    assert (code, said) == (2, f"{tmp_path / 'replies.jsonl'}:1: not a recorded reply (JSON with project, ref, task and reply)\n")
    code, said = _record(tmp_path, fake_openai.env(), "--model", "gpt-nonesuch")
    assert (code, said) == (2, "--model gpt-nonesuch: no price is known for it (automation/core/prices.py), so its spend cannot be bounded\n")
    code, said = _record(tmp_path, fake_openai.env(), "--model", Config().analysis_model)
    assert (code, said) == (2, f"--model {Config().analysis_model}: not an OpenAI model; the localisation call runs on an OpenAI code model\n")
    assert fake_openai.generation_requests == []
