"""The code model's reply is untrusted: hostile paths are refused, broken files make it unusable."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from automation.edits import (
    EditPlan,
    EditRules,
    FileEdit,
    apply,
    changes,
    parse_and_check,
    repair_prompt,
)
from automation.errors import UnusableReplyError

RULES = EditRules()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for path, text in {
        "app/main.py": "print('hi')\n",
        "app/old.py": "x = 1\n",
        "README.md": "# Demo\n",
        "docs/TASKS.md": "- [ ] a task\n",
        "token_budget.json": "{}\n",
        ".github/ai-orchestration.yml": "budget: 5\n",
        ".github/workflows/ci.yml": "on: push\n",
        ".git/config": "[core]\n",
        "secrets/prod.txt": "s\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def reply(*files: dict[str, Any], summary: str = "Do the thing") -> str:
    return json.dumps({"summary": summary, "files": list(files)})


def file(path: str, action: str = "create", content: str = "x = 1\n") -> dict[str, Any]:
    return {"path": path, "action": action, "content": content}


GOOD = file("app/new.py", "create", "def hello() -> str:\n    return 'hi'\n")


def problems(excinfo: pytest.ExceptionInfo[UnusableReplyError]) -> list[str]:
    return excinfo.value.message.splitlines()[1:]


def test_a_good_reply_becomes_a_plan(repo: Path) -> None:
    text = reply(GOOD, file("app/main.py", "update", "print('hello')\n"), file("app/old.py", "delete", ""))
    plan = parse_and_check(text, repo, RULES)
    assert plan == EditPlan(
        summary="Do the thing",
        edits=(
            FileEdit("app/new.py", "create", GOOD["content"]),
            FileEdit("app/main.py", "update", "print('hello')\n"),
            FileEdit("app/old.py", "delete", ""),
        ),
        refused=(),
    )
    assert changes(plan) == {
        "app/new.py": GOOD["content"].encode(),
        "app/main.py": b"print('hello')\n",
        "app/old.py": None,
    }


def test_a_markdown_fence_around_the_json_is_tolerated(repo: Path) -> None:
    plan = parse_and_check("```json\n" + reply(GOOD) + "\n```\n", repo, RULES)
    assert [edit.path for edit in plan.edits] == ["app/new.py"]


HOSTILE = [
    ("../x.py", "'..'"),
    ("/etc/passwd", "absolute path"),
    (".git/config", "inside .git/"),
    (".git/hooks/pre-commit", "inside .git/"),
    ("sub/.git/config", "inside .git/"),
    (".GIT/config", "inside .git/"),
    (".github/workflows/ci.yml", "workflow"),
    (".github/workflows/new.yml", "workflow"),
    (".GitHub/Workflows/ci.yml", "workflow"),
    ("token_budget.json", "ledger"),
    (".github/ai-orchestration.yml", "configuration"),
    ("docs/TASKS.md", "tasks file"),
    ("a/../../b", "'..'"),
    ("a/../b.py", "'..'"),
    ("./a.py", "not normalised"),
    ("a//b.py", "not normalised"),
    ("dir/", "not normalised"),
    ("C:\\x", "backslash"),
    ("C:/x", "drive-letter"),
    ("..\\..\\x", "backslash"),
    ("a\0.py", "NUL"),
    ("a\n.py", "control character"),
]


@pytest.mark.parametrize(("path", "reason"), HOSTILE)
def test_hostile_paths_are_refused_and_the_rest_kept(repo: Path, path: str, reason: str) -> None:
    plan = parse_and_check(reply(GOOD, file(path, "update" if (repo / path).exists() else "create")), repo, RULES)
    assert [edit.path for edit in plan.edits] == ["app/new.py"]
    assert len(plan.refused) == 1
    assert reason in plan.refused[0]
    assert "\n" not in plan.refused[0] and "\0" not in plan.refused[0]


def test_only_hostile_paths_make_the_reply_unusable(repo: Path) -> None:
    hostile = [file(path) for path, _ in HOSTILE]
    with pytest.raises(UnusableReplyError) as excinfo:
        parse_and_check(reply(*hostile), repo, RULES)
    assert "every file was refused" in excinfo.value.message.splitlines()[0]
    assert len(problems(excinfo)) == len(HOSTILE)
    assert (repo / ".git" / "config").read_text() == "[core]\n"


def test_symlink_pointing_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.py").write_text("x = 1\n")
    (repo / "escape").symlink_to(outside)
    (repo / "app" / "link.py").symlink_to(outside / "target.py")
    plan = parse_and_check(
        reply(GOOD, file("escape/evil.py"), file("app/link.py", "update"), file("escape/target.py", "update")), repo, RULES
    )
    assert [edit.path for edit in plan.edits] == ["app/new.py"]
    assert [line.split(":")[0] for line in plan.refused] == ["escape/evil.py", "app/link.py", "escape/target.py"]
    assert all("outside the repository" in line for line in plan.refused)


def test_symlink_inside_into_a_protected_directory_is_refused(repo: Path) -> None:
    (repo / "ci").symlink_to(repo / ".github" / "workflows")
    (repo / "app" / "alias.py").symlink_to(repo / "app" / "main.py")
    plan = parse_and_check(reply(GOOD, file("ci/ci.yml", "update", "on: pull_request\n"), file("app/alias.py", "update")), repo, RULES)
    assert plan.refused == (
        "ci/ci.yml: resolves to .github/workflows/ci.yml: workflow files are never edited by the bot",
        "app/alias.py: is a symbolic link; links are not edited",
    )


def test_deny_list_and_custom_protected_paths(repo: Path) -> None:
    rules = EditRules(ledger_path="state/spend.json", tasks_path="TODO.md", deny=("secrets/", "*.lock", "app/generated_*"))
    (repo / "state").mkdir()
    (repo / "state" / "spend.json").write_text("{}")
    plan = parse_and_check(
        reply(
            GOOD,
            file("secrets/prod.txt", "update"),
            file("secrets/new/deep.txt"),
            file("poetry.lock"),
            file("app/generated_api.py"),
            file("state/spend.json", "update", "{}"),
            file("TODO.md"),
            file("token_budget.json", "update", "{}"),  # no longer the ledger under these rules
        ),
        repo,
        rules,
    )
    assert [edit.path for edit in plan.edits] == ["app/new.py", "token_budget.json"]
    assert plan.refused == (
        "secrets/prod.txt: denied by edits.deny (secrets/)",
        "secrets/new/deep.txt: denied by edits.deny (secrets/)",
        "poetry.lock: denied by edits.deny (*.lock)",
        "app/generated_api.py: denied by edits.deny (app/generated_*)",
        "state/spend.json: the budget ledger is written only by the bot",
        "TODO.md: the tasks file is ticked by the bot, not edited by the model",
    )


def test_create_existing_update_missing_and_duplicates_are_refused(repo: Path) -> None:
    plan = parse_and_check(
        reply(
            GOOD,
            file("app/main.py", "create"),
            file("app/missing.py", "update"),
            file("app/gone.py", "delete", ""),
            file("app", "update"),
            file("README.md/child.md"),
            file("dup.md", "create", "a"),
            file("DUP.md", "create", "b"),
        ),
        repo,
        RULES,
    )
    assert [edit.path for edit in plan.edits] == ["app/new.py"]
    assert plan.refused == (
        "app/main.py: create of a file that already exists (use update)",
        "app/missing.py: update of a file that does not exist (use create)",
        "app/gone.py: delete of a file that does not exist (use create)",
        "app: is a directory",
        "README.md/child.md: README.md is a file, not a directory",
        "dup.md: listed more than once",
        "DUP.md: listed more than once",
    )


def test_size_limit_and_binary_content_are_refused(repo: Path) -> None:
    rules = EditRules(max_file_bytes=100)
    plan = parse_and_check(reply(GOOD, file("big.txt", content="é" * 51), file("blob.txt", content="a\0b")), repo, rules)
    assert plan.refused == (
        "big.txt: content is 102 bytes, over the 100-byte limit",
        "blob.txt: content holds a NUL byte; only text files are accepted",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sure! Here are the changes.", "the reply is not JSON: Expecting value at line 1 column 1"),
        ("", "the reply is not JSON"),
        ('{"summary": "x", "files": [', "the reply is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"summary": "x", "files": []}', '"files" is empty'),
        ('{"summary": "x"}', '"files" must be a list'),
        ('{"summary": 3, "files": [{"path": "a.py", "action": "create", "content": ""}]}', '"summary" must be a string'),
        ('{"summary": "", "files": [], "extra": 1}', "unexpected keys in the reply: extra"),
        ('{"summary": "", "files": ["a.py"]}', "files[0]: must be an object"),
        ('{"summary": "", "files": [{"path": "a.py", "action": "rename", "content": ""}]}', '"action" must be one of'),
        ('{"summary": "", "files": [{"path": "", "action": "create", "content": ""}]}', '"path" must be a non-empty'),
        ('{"summary": "", "files": [{"path": "a.py", "action": "create"}]}', '"content" must be a string'),
        ('{"summary": "", "files": [{"path": "a", "action": "create", "content": "", "mode": 1}]}', "unexpected keys mode"),
    ],
)
def test_replies_that_are_not_the_contract_are_unusable(repo: Path, text: str, expected: str) -> None:
    with pytest.raises(UnusableReplyError) as excinfo:
        parse_and_check(text, repo, RULES)
    assert excinfo.value.message.startswith("The code model's reply is unusable")
    assert any(expected in line for line in problems(excinfo)), excinfo.value.message


def test_too_many_files_is_unusable(repo: Path) -> None:
    with pytest.raises(UnusableReplyError, match="at most 2"):
        parse_and_check(reply(*(file(f"f{i}.txt") for i in range(3))), repo, EditRules(max_files=2))


def test_delete_needs_no_content(repo: Path) -> None:
    plan = parse_and_check(json.dumps({"summary": "", "files": [{"path": "app/old.py", "action": "delete"}]}), repo, RULES)
    assert plan.edits == (FileEdit("app/old.py", "delete", ""),)


def test_every_problem_is_listed_one_per_line(repo: Path) -> None:
    text = reply(
        file("app/broken.py", content="def f(:\n    pass\n"),
        file("app/also.py", content="x = 1\n\n\nif x\n    y = 2\n"),
        file("../escape.py"),
        GOOD,
    )
    with pytest.raises(UnusableReplyError) as excinfo:
        parse_and_check(text, repo, RULES)
    lines = problems(excinfo)
    assert excinfo.value.message.splitlines()[0] == "The code model's reply is unusable (3 problems):"
    assert lines[0].startswith("app/broken.py: Python syntax error at line 1: ")
    assert lines[1].startswith("app/also.py: Python syntax error at line 4: ")
    assert lines[2] == "../escape.py: '..' in the path"


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        ("conf/settings.json", '{"a": 1,}', "conf/settings.json: invalid JSON at line 1 column 9"),
        ("conf/app.yml", "a: [1, 2\nb: 3\n", "conf/app.yml: invalid YAML at line"),
        ("conf/app.yaml", "---\na: 1\n---\n  - b\n c: d\n", "conf/app.yaml: invalid YAML at line"),
        pytest.param(
            "pyproject.toml",
            "[project]\nname = \n",
            "pyproject.toml: invalid TOML: ",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+"),
        ),
    ],
)
def test_bad_json_yaml_toml_make_the_reply_unusable(repo: Path, path: str, content: str, expected: str) -> None:
    with pytest.raises(UnusableReplyError) as excinfo:
        parse_and_check(reply(GOOD, file(path, content=content)), repo, RULES)
    assert problems(excinfo)[0].startswith(expected)


def test_valid_config_files_and_python_warnings_pass(repo: Path) -> None:
    plan = parse_and_check(
        reply(
            file("a.json", content='{"a": [1, 2]}'),
            file("a.yml", content="a: 1\n---\nb: [2]\n"),
            file("a.toml", content='[tool]\nname = "x"\n'),
            file("a.py", content="path = '\\d'\n"),  # a SyntaxWarning, not an error
            file("notes.txt", content="{not json"),
        ),
        repo,
        RULES,
    )
    assert len(plan.edits) == 5 and plan.refused == ()


def test_repair_prompt_quotes_the_errors() -> None:
    prompt = repair_prompt("app/x.py: Python syntax error at line 3: invalid syntax")
    assert "app/x.py: Python syntax error at line 3: invalid syntax" in prompt
    assert '"summary"' in prompt and "whole new content" in prompt


def test_apply_writes_and_deletes_inside_the_tree(repo: Path) -> None:
    plan = parse_and_check(
        reply(
            file("pkg/deep/new.py", content="x = 2\r\n"),
            file("app/main.py", "update", "print('hi')\n"),  # unchanged: not reported
            file("README.md", "update", "# Demo 2\n"),
            file("app/old.py", "delete", ""),
        ),
        repo,
        RULES,
    )
    assert apply(plan, repo) == ["pkg/deep/new.py", "README.md", "app/old.py"]
    assert (repo / "pkg/deep/new.py").read_bytes() == b"x = 2\r\n"
    assert (repo / "README.md").read_text() == "# Demo 2\n"
    assert not (repo / "app/old.py").exists()


def test_apply_refuses_paths_that_escape_the_scratch_tree(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "out").symlink_to(tmp_path)
    for path in ("../evil.py", "out/evil.py"):
        with pytest.raises(ValueError, match="not a safe path"):
            apply(EditPlan("", (FileEdit(path, "create", "x"),), ()), scratch)
    assert not (tmp_path / "evil.py").exists()
