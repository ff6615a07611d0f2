"""The code step's prompt stays within its bound, and one reply plus at most one repair becomes a plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation.core.errors import UnusableReplyError
from automation.repo.context import estimate_tokens
from automation.repo.edits import EditRules
from automation.steps.coding import CODE_SYSTEM, code_prompt, excerpt, prompt_bound, write_edits

BIG = "".join(f"def helper_{n}(value):\n    return value + {n}\n\n\n" for n in range(5_000))  # ~190 KB


def test_the_bound_is_the_configured_one_within_the_window() -> None:
    assert prompt_bound(60_000, 128_000, 16_384) == 60_000
    assert prompt_bound(200_000, 128_000, 16_384) == 128_000 - 16_384 - 1_000
    assert prompt_bound(60_000, None, 16_384) == 60_000


def test_six_big_files_fit_the_bound_each_sent_as_outline_and_windows() -> None:
    files = {f"pkg/mod{n}.py": BIG for n in range(6)}
    plan = "Change `helper_4321` in every module (see line 17285)."
    prompt = code_prompt("Double it", plan, files, 60_000)
    text = "".join(message["content"] for message in prompt.messages)
    assert estimate_tokens(text) <= prompt.tokens <= 60_000 < estimate_tokens(BIG) * 6
    assert prompt.excerpted == tuple(files) and prompt.left_out == ()
    assert text.count("def helper_4321(value):\n    return value + 4321\n") == 6  # exact lines to copy into SEARCH
    assert "### pkg/mod0.py lines 17273-" in text  # windows are headed by their line numbers
    assert prompt.messages[0] == {"role": "system", "content": CODE_SYSTEM}


def test_small_files_go_whole_and_room_is_shared_from_the_smallest_up() -> None:
    files = {"big.py": BIG, "small.py": "x = 1\n", "doc.md": "Use ```python``` fences.\n"}
    prompt = code_prompt("t", "Edit `helper_10`.", files, 30_000)
    text = prompt.messages[1]["content"]
    assert "### small.py\n```python\nx = 1\n```" in text
    assert "### doc.md\n````markdown\nUse ```python``` fences.\n````" in text  # the fence outgrows the file's own
    assert prompt.excerpted == ("big.py",) and prompt.tokens <= 30_000


def test_a_file_with_no_room_is_named_as_left_out() -> None:
    prompt = code_prompt("t", "plan", {"big.py": BIG}, 1_000)
    assert prompt.left_out == ("big.py",) and prompt.tokens <= 1_000


def test_excerpt_without_anything_to_point_at_shows_the_head_and_outline() -> None:
    shown = excerpt("big.py", BIG, "Make it faster.", 5_000)
    assert shown is not None and "### big.py lines 1-52\n```python\ndef helper_0(value):" in shown and "5: def helper_1(value):" in shown
    assert estimate_tokens(shown) <= 5_000


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("def greet():\n    return 'hi'\n")
    return tmp_path


def block(search: str, replace: str, path: str = "app.py") -> str:
    return f"Greets louder.\n\n{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def test_a_good_reply_needs_one_call(repo: Path) -> None:
    asked: list[list[dict]] = []
    plan = write_edits(lambda m: asked.append(m) or block("    return 'hi'\n", "    return 'HI'\n"),
                       [{"role": "user", "content": "x"}], repo, EditRules(), print)
    assert len(asked) == 1 and plan.summary == "Greets louder."
    assert plan.edits[0].content == "def greet():\n    return 'HI'\n"


def test_one_repair_carries_only_the_problem_then_gives_up(repo: Path) -> None:
    replies = iter([block("    return 'hello'\n", "x\n"), block("    return 'hey'\n", "x\n")])
    asked: list[list[dict]] = []
    said: list[str] = []
    with pytest.raises(UnusableReplyError) as caught:
        write_edits(lambda m: asked.append(m) or next(replies), [{"role": "user", "content": "x"}], repo, EditRules(), said.append)
    assert len(asked) == 2 and len(asked[1]) == 2
    repair = asked[1][-1]["content"]
    assert "app.py, block 1: its SEARCH lines are not in the file" in repair and "2:     return 'hi'" in repair
    assert "asking once for a repair" in said[0]
    assert "app.py, block 1: its SEARCH lines are not in the file" in caught.value.message


def test_a_new_file_the_plan_names_needs_no_extension_and_a_broken_block_is_named_in_the_repair(repo: Path) -> None:
    broken = "bin/greet\n```\n<<<<<<< SEARCH\n=======\necho hi\n=======\n```\n\n" + block("    return 'hi'\n", "    return 'HI'\n")
    asked: list[list[dict]] = []
    replies = iter([broken, block("", "echo hi\n", path="bin/greet")])
    plan = write_edits(lambda m: asked.append(m) or next(replies), [{"role": "user", "content": "x"}], repo, EditRules(),
                       print, analysis="Add a launcher `bin/greet`.")
    assert "bin/greet, block 1: a new <<<<<<< SEARCH line" in asked[1][-1]["content"]
    assert [(edit.path, edit.content) for edit in plan.edits] == [
        ("app.py", "def greet():\n    return 'HI'\n"), ("bin/greet", "echo hi\n"),
    ]
