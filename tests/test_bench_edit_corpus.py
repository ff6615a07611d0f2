"""Real replies (Aider's edit-block tests and chat history) read by our parser: none is read wrongly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_edit_corpus.py"


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_aider_corpus_is_read_identically_or_refused_for_repair_never_wrongly() -> None:
    result = replay("--show", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "replies: 46 (75 SEARCH lines); Aider refused 8",
        "parsed identically: 25; both refuse: 8; safer refusal: 13; wrong: 0",
    ]
    # the three Claude 3.5 Sonnet replies that close a block with ======= and go on with the next one
    closed_early = [line for line in lines if "a new <<<<<<< SEARCH line" in line]
    assert [line.split(", section ")[1].split(":")[0] for line in closed_early] == ["103", "7072", "8764"]


def test_a_reply_read_otherwise_than_aider_reads_it_is_counted_wrong(tmp_path: Path) -> None:
    reply = "Here.\n\napp/x.py\n```\n<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n```\n"
    records = [
        {"source": "same", "reply": reply, "aider": [["app/x.py", "a = 1\n", "a = 2\n"]], "aider_error": None},
        {"source": "other text", "reply": reply, "aider": [["app/x.py", "a = 1\n", "a = 3\n"]], "aider_error": None},
        {"source": "a block lost", "reply": reply, "aider": [["app/x.py", "a = 1\n", "a = 2\n"], ["app/y.py", "b\n", "c\n"]],
         "aider_error": None},
    ]
    corpus = tmp_path / "replies.jsonl"
    corpus.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = replay("--corpus", str(corpus))
    assert result.returncode == 1
    assert result.stdout.splitlines()[1] == "parsed identically: 1; both refuse: 0; safer refusal: 0; wrong: 2"
    assert "wrong: other text: block 1 (app/x.py) writes other text than Aider's reading" in result.stdout
    assert "wrong: a block lost: Aider's block 2 (app/y.py) vanished without a problem" in result.stdout
