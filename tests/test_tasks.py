"""The tasks file as a maintainer writes it: checklists among prose, code and done items."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from automation.core.errors import TasksFileError, UsageError
from automation.repo.tasks import Task, load, near_match, read_tasks, slug, task_text, tick

TASKS_MD = """# Tasks

Some prose about the project. - [ ] not an item, it is mid-line.

## Now
- [x] Done already
- [ ] Add a /health endpoint   
* [ ] Star bullet
+ [X] Done with a capital X
+ [ ] Plus bullet
  - [ ] Nested under plus
1. [ ] Numbered item
2) [ ] Numbered with a paren

```markdown
- [ ] Inside a code fence
```

~~~~
- [ ] Inside a tilde fence
```
- [ ] Still inside: a backtick line does not close a tilde fence
~~~~

- [ ]
- [ ]no-space is not a checkbox
-[ ] no space after the bullet
\t- [ ] Tab-indented item
"""


def test_read_tasks_finds_every_unticked_item_in_order() -> None:
    tasks = read_tasks(TASKS_MD)
    assert [task.text for task in tasks] == [
        "Add a /health endpoint",
        "Star bullet",
        "Plus bullet",
        "Numbered item",
        "Numbered with a paren",
        "Tab-indented item",
    ]


def test_nested_unticked_item_is_a_sub_step_of_its_task() -> None:
    plus = next(task for task in read_tasks(TASKS_MD) if task.text == "Plus bullet")
    assert plus.steps == ("- [ ] Nested under plus",)
    assert plus.brief == "Plus bullet\n\nSub-steps:\n- [ ] Nested under plus"


# Where GitHub renders no checkbox, there is no task: HTML comments and blocks, indented code
# (also right after a paragraph's blank line), fences, and "[ ]" that does not open an item.
NOT_TASKS = [
    "<!--\n- [ ] Example task kept in a template comment\n-->\n",
    "<!-- one-line comment - [ ] not a task -->\n",
    "Intro paragraph.\n\n    - [ ] in an indented code block\n",
    "<details>\n- [ ] inside an HTML block that runs to the blank line\n</details>\n",
    "````\n```\n- [ ] inside a fence with a longer opener\n```\n````\n",
    "    ```\n    - [ ] indented code that looks like a fence\n",
    "| a | b |\n|---|---|\n| - [ ] cell | x |\n",
    "Text - [ ] mid-line\n",
    "- [ ]\n",
]


@pytest.mark.parametrize("markdown", NOT_TASKS)
def test_lines_github_does_not_render_as_task_items_are_no_tasks(markdown: str) -> None:
    assert read_tasks(markdown) == []


def test_template_comment_above_the_real_list_is_skipped_and_never_ticked() -> None:
    text = "# Tasks\n<!-- Example:\n- [ ] Add a /health endpoint\n-->\n\n- [ ] Real task\n"
    assert read_tasks(text) == [Task("Real task", 6)]
    assert tick(text, read_tasks(text)[0]) == text.replace("- [ ] Real task", "- [x] Real task")


def test_items_github_renders_as_tasks_are_tasks() -> None:
    text = (
        "> - [ ] quoted item\n\n"
        "<details>\n\n- [ ] in details, after a blank line\n\n</details>\n\n"
        "- Backend\n  - [ ] under a plain item\n"
        "- [ ] wrapped over\n  two lines\n"
    )
    assert [task.text for task in read_tasks(text)] == [
        "quoted item", "in details, after a blank line", "under a plain item", "wrapped over two lines",
    ]
    ticked = tick(text, read_tasks(text)[0])
    assert ticked == text.replace("> - [ ] quoted", "> - [x] quoted")


def test_a_bom_keeps_the_first_item_and_the_tick_keeps_the_bom() -> None:
    text = "\ufeff- [ ] first\n"
    assert read_tasks(text) == [Task("first", 1)]
    assert tick(text, read_tasks(text)[0]) == "\ufeff- [x] first\n"


NESTED = """- [ ] Parent task
  - [ ] first step
  - [x] done step
    - [ ] deeper step
- [x] Done parent
  - [ ] left-over step of a done task
- [ ] Next task
"""


def test_nested_items_belong_to_their_top_level_task() -> None:
    assert read_tasks(NESTED) == [
        Task("Parent task", 1, ("- [ ] first step", "- [x] done step", "  - [ ] deeper step")),
        Task("Next task", 7),
    ]


def test_ticking_a_task_ticks_its_unticked_steps_and_nothing_else() -> None:
    ticked = tick(NESTED, read_tasks(NESTED)[0])
    assert ticked == NESTED.replace("[ ] Parent", "[x] Parent").replace("[ ] first", "[x] first").replace("[ ] deeper", "[x] deeper")
    assert read_tasks(ticked) == [Task("Next task", 7)]


def test_load_reads_utf8(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "TASKS.md").write_text("- [ ] é\n", encoding="utf-8")
    assert load(tmp_path, "docs/TASKS.md") == "- [ ] é\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("- [ ] x\n".encode("utf-16"), "docs/TASKS.md: the tasks file is UTF-16; save it as UTF-8"),
        ("- [ ] x\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16"),
        (b"- [ ] ok\n- [ ] caf\xe9\n", "docs/TASKS.md: the tasks file is not UTF-8 text (line 2"),
    ],
)
def test_load_refuses_text_that_is_not_utf8(tmp_path: Path, data: bytes, message: str) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "TASKS.md").write_bytes(data)
    with pytest.raises(TasksFileError, match=re.escape(message)) as caught:
        load(tmp_path, "docs/TASKS.md")
    assert caught.value.exit_code == 2


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "docs" / "TASKS.md").mkdir(parents=True)
    with pytest.raises(TasksFileError, match=r"docs/TASKS.md: is a directory") as caught:
        load(tmp_path, "docs/TASKS.md")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("existing", "suggested"),
    [("docs/tasks.md", "docs/tasks.md"), ("docs/TASK.md", "docs/TASK.md"), ("README.md", None)],
)
def test_a_missing_tasks_file_is_an_error_with_the_nearest_name(tmp_path: Path, existing: str, suggested: str | None) -> None:
    (tmp_path / existing).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / existing).write_text("- [ ] x\n")
    assert near_match(tmp_path, "docs/TASKS.md") == suggested
    with pytest.raises(TasksFileError, match=r"^docs/TASKS.md: tasks file not found") as caught:
        load(tmp_path, "docs/TASKS.md")
    assert (f"did you mean {suggested}?" in caught.value.message) is (suggested is not None)
    assert caught.value.exit_code == 2


def test_a_missing_tasks_file_never_suggests_a_name_the_message_cannot_print(tmp_path: Path) -> None:
    """A Latin-1 name ('TASKS\\xe9.md') is the nearest, but a message holding it could not be written out."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs").joinpath(os.fsdecode(b"TASKS\xe9.md")).write_text("- [ ] x\n")
    (tmp_path / "docs" / "TASKS\n.md").write_text("- [ ] x\n")
    assert near_match(tmp_path, "docs/TASKS.md") is None
    with pytest.raises(TasksFileError, match=r"^docs/TASKS.md: tasks file not found") as caught:
        load(tmp_path, "docs/TASKS.md")
    caught.value.message.encode("utf-8")
    assert "did you mean" not in caught.value.message


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "\u200b", "\u00a0\u3000"])
def test_task_text_refuses_empty_or_invisible_text(text: str) -> None:
    with pytest.raises(UsageError, match="--task is empty"):
        task_text(text)


def test_task_text_strips_surrounding_space() -> None:
    assert task_text("  Add a /health endpoint \n") == "Add a /health endpoint"


def test_read_tasks_reports_one_based_lines() -> None:
    lines = TASKS_MD.splitlines()
    for task in read_tasks(TASKS_MD):
        assert task.text in lines[task.line - 1]


def test_read_tasks_handles_crlf_and_empty_input() -> None:
    assert read_tasks("") == []
    assert read_tasks("# Only a heading\r\n\r\nprose\r\n") == []
    assert read_tasks("- [ ] one\r\n- [ ] two\r\n") == [Task("one", 1), Task("two", 2)]


def test_tick_changes_only_the_checkbox_and_keeps_line_endings() -> None:
    text = "# T\r\n- [ ] first\r\n- [ ] second  \r\n\r\nend without newline"
    task = read_tasks(text)[1]
    ticked = tick(text, task)
    assert ticked == "# T\r\n- [ ] first\r\n- [x] second  \r\n\r\nend without newline"
    assert read_tasks(ticked) == [Task("first", 2)]


def test_tick_numbered_and_nested_items() -> None:
    task = next(task for task in read_tasks(TASKS_MD) if task.text == "Numbered item")
    ticked = tick(TASKS_MD, task)
    assert "1. [x] Numbered item" in ticked
    assert len(ticked) == len(TASKS_MD)
    assert sum(a != b for a, b in zip(ticked, TASKS_MD)) == 1


def test_tick_finds_the_task_after_the_file_moved_on() -> None:
    original = "- [ ] alpha\n- [ ] beta\n"
    task = read_tasks(original)[1]
    edited = "# New heading\n\n- [ ] gamma\n- [ ] alpha\n- [ ] beta\n"
    assert tick(edited, task) == "# New heading\n\n- [ ] gamma\n- [ ] alpha\n- [x] beta\n"


def test_tick_prefers_the_nearest_duplicate() -> None:
    text = "- [ ] same\n\n\n\n- [ ] same\n"
    assert tick(text, Task("same", 4)) == "- [ ] same\n\n\n\n- [x] same\n"


def test_tick_raises_when_the_task_is_gone_or_done() -> None:
    with pytest.raises(ValueError, match="no longer"):
        tick("- [x] alpha\n", Task("alpha", 1))
    with pytest.raises(ValueError):
        tick("- [ ] other\n", Task("alpha", 1))
    with pytest.raises(ValueError):
        tick("```\n- [ ] alpha\n```\n", Task("alpha", 2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Add a /health endpoint", "add-a-health-endpoint"),
        ("  Fix   `build_context()` — it's SLOW!  ", "fix-build-context-it-s-slow"),
        ("Café déjà vu", "cafe-deja-vu"),
        ("v2.0: release..notes/.lock", "v2-0-release-notes-lock"),
    ],
)
def test_slug_examples(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_slug_cuts_at_a_word_boundary() -> None:
    text = "implement the repository context builder with a token cap and ranking of files"
    result = slug(text)
    assert len(result) <= 50
    assert text.replace(" ", "-").startswith(result)
    assert not result.endswith("-")


def test_slug_cuts_one_giant_word() -> None:
    assert slug("x" * 80) == "x" * 50


@pytest.mark.parametrize("text", ["", "   ", "日本語のタスク", "!!!", "🚀🚀"])
def test_slug_is_never_empty(text: str) -> None:
    result = slug(text)
    assert re.fullmatch(r"task-[0-9a-f]{8}", result)
    assert slug(text) == result


@pytest.mark.parametrize("text", ["a/b", "..lock", "x@{y}", "name.lock", "-leading", "a~b^c:d?e*f[g]\\h"])
def test_slug_is_a_safe_git_ref_component(text: str) -> None:
    result = slug(text)
    assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", result)
    assert 0 < len(result) <= 50
