"""The tasks file as a maintainer writes it: checklists among prose, code and done items."""

from __future__ import annotations

import re

import pytest

from automation.tasks import Task, read_tasks, slug, tick

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
        "Nested under plus",
        "Numbered item",
        "Numbered with a paren",
        "Tab-indented item",
    ]


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
