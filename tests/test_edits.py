"""The code model's edits are untrusted: hostile paths are refused, every resulting file is checked whole."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from automation.core.errors import UnusableReplyError
from automation.repo.edits import Draft, EditPlan, EditRules, FileEdit, changes, repair_prompt

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


def block(path: str, search: str = "", replace: str = "x = 1\n") -> str:
    return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def reply(*blocks: str, summary: str = "Do the thing") -> str:
    return summary + "\n\n" + "\n".join(blocks)


GOOD = block("app/new.py", "", "def hello() -> str:\n    return 'hi'\n")


def take(repo: Path, text: str, rules: EditRules = RULES) -> tuple[Draft, list[str]]:
    draft = Draft(root=repo, rules=rules)
    return draft, draft.take(text)


def test_a_good_reply_becomes_a_plan(repo: Path) -> None:
    text = reply(GOOD, block("app/main.py", "print('hi')\n", "print('hello')\n"), "DELETE app/old.py\n")
    draft, problems = take(repo, text)
    assert problems == []
    plan = draft.plan()
    assert plan == EditPlan(
        summary="Do the thing",
        edits=(
            FileEdit("app/new.py", "create", "def hello() -> str:\n    return 'hi'\n"),
            FileEdit("app/main.py", "update", "print('hello')\n"),
            FileEdit("app/old.py", "delete", ""),
        ),
        refused=(),
    )
    assert changes(plan) == {
        "app/new.py": b"def hello() -> str:\n    return 'hi'\n",
        "app/main.py": b"print('hello')\n",
        "app/old.py": None,
    }
    assert (repo / "app/main.py").read_text() == "print('hi')\n"  # nothing touched the tree


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


ALIASES = [
    (".git./config", "dot or space"),
    (".git /config", "dot or space"),
    ("git~1/config", "8.3 short name"),
    ("GITHUB~1/workflows/ci.yml", "8.3 short name"),
    (".g\u200cit/config", "U+200C"),
    (".git\ufeff/hooks/pre-commit", "U+FEFF"),
    (".github\u200d/workflows/ci.yml", "U+200D"),
    (".git::$INDEX_ALLOCATION/config", "':'"),
    ("a" * 300 + ".py", "longer than 255 bytes"),
    ("/".join(["d" * 200] * 6) + "/x.py", "longer than 1024 bytes"),
]


# A line-based format cannot carry a newline in a path; every other hostile path can be written.
@pytest.mark.parametrize(("path", "reason"), [case for case in HOSTILE + ALIASES if "\n" not in case[0]])
def test_hostile_paths_and_git_aliases_are_refused_and_the_rest_kept(repo: Path, path: str, reason: str) -> None:
    draft, problems = take(repo, reply(GOOD, block(f"`{path}`", "", "x = 1\n")))
    assert problems == []
    plan = draft.plan()
    assert [edit.path for edit in plan.edits] == ["app/new.py"]
    [refusal] = plan.refused
    assert reason in refusal
    assert "\n" not in refusal and "\0" not in refusal and "\u200c" not in refusal


def test_only_hostile_paths_make_the_reply_unusable(repo: Path) -> None:
    draft, problems = take(repo, reply(*(block(path) for path, _ in HOSTILE if "\n" not in path and "\0" not in path)))
    assert problems and problems[0].startswith("the reply changes nothing") and "inside .git/" in problems[0]
    with pytest.raises(UnusableReplyError, match="nothing left to change"):
        draft.plan()
    assert (repo / ".git" / "config").read_text() == "[core]\n"


def test_symlink_pointing_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.py").write_text("x = 1\n")
    (repo / "escape").symlink_to(outside)
    (repo / "app" / "link.py").symlink_to(outside / "target.py")
    draft, _ = take(repo, reply(GOOD, block("escape/evil.py"), block("app/link.py", "x = 1\n"), block("escape/target.py", "x = 1\n")))
    plan = draft.plan()
    assert [edit.path for edit in plan.edits] == ["app/new.py"]
    assert [line.split(":")[0] for line in plan.refused] == ["escape/evil.py", "app/link.py", "escape/target.py"]
    assert all("outside the repository" in line for line in plan.refused)
    assert (outside / "target.py").read_text() == "x = 1\n"


def test_symlink_inside_into_a_protected_directory_is_refused(repo: Path) -> None:
    (repo / "ci").symlink_to(repo / ".github" / "workflows")
    (repo / "app" / "alias.py").symlink_to(repo / "app" / "main.py")
    draft, _ = take(repo, reply(GOOD, block("ci/ci.yml", "on: push\n", "on: pull_request\n"), block("app/alias.py", "print('hi')\n")))
    assert draft.plan().refused == (
        "ci/ci.yml: resolves to .github/workflows/ci.yml: workflow files are never edited by the bot",
        "app/alias.py: is a symbolic link; links are not edited",
    )


def test_deny_list_and_custom_protected_paths(repo: Path) -> None:
    rules = EditRules(ledger_path="state/spend.json", tasks_path="TODO.md", deny=("secrets/", "*.lock", "app/generated_*"))
    (repo / "state").mkdir()
    (repo / "state" / "spend.json").write_text("{}")
    draft, _ = take(
        repo,
        reply(
            GOOD, block("secrets/prod.txt", "s\n"), block("secrets/new/deep.txt"), block("poetry.lock"),
            block("app/generated_api.py"), block("state/spend.json", "{}\n", "{1}\n"), block("TODO.md"),
            block("token_budget.json", "{}\n", '{"a": 1}\n'),  # no longer the ledger under these rules
        ),
        rules,
    )
    plan = draft.plan()
    assert [edit.path for edit in plan.edits] == ["app/new.py", "token_budget.json"]
    assert plan.refused == (
        "secrets/prod.txt: denied by edits.deny (secrets/)",
        "secrets/new/deep.txt: denied by edits.deny (secrets/)",
        "poetry.lock: denied by edits.deny (*.lock)",
        "app/generated_api.py: denied by edits.deny (app/generated_*)",
        "state/spend.json: the budget ledger is written only by the bot",
        "TODO.md: the tasks file is ticked by the bot, not edited by the model",
    )


def test_blocks_that_do_not_fit_the_tree_are_problems_naming_file_and_block(repo: Path) -> None:
    _, problems = take(
        repo,
        reply(GOOD, block("app/main.py"), block("app/missing.py", "x = 1\n"), "DELETE app/gone.py\n",
              block("README.md/child.md")),
    )
    assert [problem.splitlines()[0] for problem in problems] == [
        ("app/main.py, block 2: its SEARCH part is empty, which creates a file, but the file exists and is not "
         "empty; copy the lines to change into SEARCH"),
        "app/missing.py, block 3: the file does not exist; an empty SEARCH part creates it",
        "app/gone.py, block 4: DELETE of a file that does not exist",
    ]


def test_two_paths_that_differ_only_in_case_are_one_file_on_some_checkouts(repo: Path) -> None:
    draft, problems = take(repo, reply(block("dup.md", "", "a\n"), block("DUP.md", "", "b\n")))
    assert problems == [] and draft.plan().refused == ("DUP.md: differs from dup.md only in case",)


def test_a_directory_or_a_file_as_parent_is_refused(repo: Path) -> None:
    draft, _ = take(repo, reply(GOOD, block("app"), block("README.md/child.md")))
    assert draft.plan().refused == ("app: is a directory", "README.md/child.md: README.md is a file, not a directory")


def test_size_limit_binary_and_secret_content_are_refused(repo: Path) -> None:
    rules = EditRules(max_file_bytes=100, secrets=("sk-test-0123456789",))
    big_existing = "y = 2\n" * 40
    (repo / "app" / "big.py").write_text(big_existing)
    draft, problems = take(
        repo,
        reply(
            GOOD, block("big.txt", "", "é" * 51 + "\n"), block("blob.txt", "", "a\0b\n"),
            block("app/key.py", "", "KEY = 'sk-test-0123456789'\n"),
            block("app/big.py", "y = 2\n" * 40, "y = 3\n" * 40),  # over the limit already: may be edited, not grown
        ),
        rules,
    )
    plan = draft.plan()
    assert plan.refused == (
        "big.txt: content is 103 bytes, over the 100-byte limit",
        "blob.txt: content holds a NUL byte; only text files are accepted",
        "app/key.py: content holds a secret value from the environment (an API key, token or webhook)",
    )
    assert [edit.path for edit in plan.edits] == ["app/new.py", "app/big.py"]
    assert "sk-test" not in "".join(plan.refused) + "".join(problems)


def test_edits_that_leave_a_file_as_it_was_are_dropped_and_a_reply_of_only_those_is_a_problem(repo: Path) -> None:
    there_and_back = block("app/main.py", "print('hi')\n", "print('ho')\n") + "\n" + block("app/main.py", "print('ho')\n", "print('hi')\n")
    draft, problems = take(repo, reply(there_and_back, block("docs/TASKS.md")))
    assert problems == [
        ("the reply changes nothing: every edit leaves its file as it was, or was refused "
         "(docs/TASKS.md: the tasks file is ticked by the bot, not edited by the model)")
    ]
    with pytest.raises(UnusableReplyError):
        draft.plan()
    draft, problems = take(repo, reply(GOOD, there_and_back))
    assert problems == [] and [edit.path for edit in draft.plan().edits] == ["app/new.py"]


def test_a_block_whose_replace_is_its_search_is_a_problem_not_a_silent_no_op(repo: Path) -> None:
    _, problems = take(repo, reply(GOOD, block("app/main.py", "print('hi')\n", "print('hi')\n")))
    assert problems[0].startswith("app/main.py, block 2: its SEARCH and REPLACE parts are the same")


def test_a_file_is_taken_whole_or_not_at_all_and_the_repair_asks_only_for_it(repo: Path) -> None:
    draft, problems = take(
        repo,
        reply(GOOD, block("app/main.py", "print('hi')\n", "print('a')\n") + "\n" + block("app/main.py", "nope\n", "x\n")),
    )
    assert [p.splitlines()[0] for p in problems] == ["app/main.py, block 3: its SEARCH lines are not in the file"]
    assert "app/main.py" not in draft.accepted and "app/new.py" in draft.accepted
    prompt = repair_prompt(problems, sorted(draft.accepted))
    assert "app/main.py, block 3" in prompt and "1: print('a')" in prompt  # after the file's earlier block
    assert "do not send them again: app/new.py" in prompt
    assert draft.take(reply(block("app/main.py", "print('hi')\n", "print('a')\n"))) == []
    assert [edit.path for edit in draft.plan().edits] == ["app/new.py", "app/main.py"]


def test_a_file_left_out_of_the_repair_is_a_problem(repo: Path) -> None:
    draft, problems = take(repo, reply(GOOD, block("app/main.py", "nope\n", "x\n")))
    assert len(problems) == 1
    assert draft.take(reply(block("README.md", "# Demo\n", "# Demo!\n"))) == [
        "app/main.py: its blocks could not be applied and were not sent again"
    ]


def test_the_repair_prompt_is_bounded_whatever_the_problems() -> None:
    problems = [f"f{i}.py, block {i}: its SEARCH lines are not in the file\n" + "x" * 5_000 for i in range(100)]
    prompt = repair_prompt(problems, [])
    assert len(prompt) < 30_000 and "more problems" in prompt and "f0.py, block 0" in prompt


def test_format_problems_are_listed(repo: Path) -> None:
    _, problems = take(repo, "Sure! Here are the changes.")
    assert problems[0].startswith("the reply holds no SEARCH/REPLACE block")
    cut = "app/main.py\n```\n<<<<<<< SEARCH\na\n=======\nb\n"
    draft, problems = take(repo, reply(GOOD, block("app/main.py", "print('hi')\n", "print('a')\n") + cut))
    assert problems == ["app/main.py, block 3: cut off before its >>>>>>> REPLACE line"]
    assert "app/main.py" not in draft.accepted and "app/new.py" in draft.accepted  # the file whole or not at all


def test_too_many_files_is_a_problem(repo: Path) -> None:
    _, problems = take(repo, reply(*(block(f"f{i}.txt") for i in range(3))), EditRules(max_files=2))
    assert problems == ["the reply changes 3 files; at most 2 are accepted in one change"]


def test_every_broken_result_is_a_problem_with_its_parse_error(repo: Path) -> None:
    (repo / "legacy.py").write_text("def f(:\n")  # already broken: editing it is not the model's fault
    _, problems = take(
        repo,
        reply(
            block("app/broken.py", "", "def f(:\n    pass\n"),
            block("app/main.py", "print('hi')\n", "x = 1\n\n\nif x\n    y = 2\n"),
            block("legacy.py", "def f(:\n", "def f(:\n# note\n"),
            GOOD,
        ),
    )
    assert [p.split(": after the blocks, ")[0] for p in problems] == ["app/broken.py", "app/main.py"]
    assert "Python syntax error at line 1" in problems[0] and "Python syntax error at line 4" in problems[1]


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        ("conf/settings.json", '{"a": 1,}\n', "conf/settings.json: after the blocks, invalid JSON at line 1 column 9"),
        ("conf/app.yml", "a: [1, 2\nb: 3\n", "conf/app.yml: after the blocks, invalid YAML at line"),
        pytest.param(
            "pyproject.toml", "[project]\nname = \n", "pyproject.toml: after the blocks, invalid TOML: ",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+"),
        ),
    ],
)
def test_bad_json_yaml_toml_are_problems(repo: Path, path: str, content: str, expected: str) -> None:
    _, problems = take(repo, reply(GOOD, block(path, "", content)))
    assert problems[0].startswith(expected)


def test_valid_config_files_and_python_warnings_pass(repo: Path) -> None:
    draft, problems = take(
        repo,
        reply(
            block("a.json", "", '{"a": [1, 2]}\n'), block("a.yml", "", "a: 1\n---\nb: [2]\n"),
            block("a.toml", "", '[tool]\nname = "x"\n'), block("a.py", "", "path = '\\d'\n"),
            block("notes.txt", "", "{not json\n"),
        ),
    )
    assert problems == [] and len(draft.plan().edits) == 5


def test_a_crlf_file_keeps_its_line_endings(repo: Path) -> None:
    (repo / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    draft, problems = take(repo, reply(block("win.txt", "two\n", "2\n2b\n")))
    assert problems == []
    assert changes(draft.plan()) == {"win.txt": b"one\r\n2\r\n2b\r\nthree\r\n"}


def test_a_file_that_is_not_utf8_is_refused(repo: Path) -> None:
    (repo / "latin.txt").write_bytes(b"caf\xe9\n")
    draft, _ = take(repo, reply(GOOD, block("latin.txt", "caf\n", "x\n")))
    assert draft.plan().refused == ("latin.txt: the file is not UTF-8 text; it cannot be edited with SEARCH/REPLACE",)


# --- malformed replies never write garbage; what cannot be read is a problem named for the repair ------------


def test_a_block_closed_with_a_divider_writes_nothing_and_the_next_file_is_kept(repo: Path) -> None:
    (repo / "docs" / "guide.md").write_text("# Guide\n\nOld text.\n")
    text = (
        "Updates the guide and the greeting.\n\ndocs/guide.md\n```markdown\n<<<<<<< SEARCH\nOld text.\n=======\n"
        "New text.\n=======\n```\n\nNow the code:\n\n" + block("app/main.py", "print('hi')\n", "print('hello')\n")
    )
    draft, problems = take(repo, text)
    assert [problem.splitlines()[0] for problem in problems] == [
        "docs/guide.md, block 1: a new <<<<<<< SEARCH line (line 16 of the reply) comes before its >>>>>>> REPLACE "
        "line; end every block with >>>>>>> REPLACE before the next one starts"
    ]
    assert draft.accepted == {"app/main.py": "print('hello')\n"}
    assert "docs/guide.md, block 1: a new <<<<<<< SEARCH line" in repair_prompt(problems, sorted(draft.accepted))


def test_an_extra_divider_is_a_problem_not_the_files_content(repo: Path) -> None:
    (repo / "style.css").write_text("a {\n  color: red;\n}\n")
    extra = "style.css\n```css\n<<<<<<< SEARCH\n  color: red;\n=======\n  color: blue;\n=======\n>>>>>>> REPLACE\n```\n"
    draft, problems = take(repo, reply(GOOD, extra))
    assert problems[0].startswith("style.css, block 2: a ======= line (line 2 of its REPLACE part) reads as an extra divider")
    assert "style.css" not in draft.accepted


@pytest.mark.parametrize(
    ("before", "shown"),
    [
        ("```\n", "block 2: "),  # right after a closed code fence
        ("Run it with:\n```bash\nmake run\n```\n", "block 2: "),
        ("Changes:\n", "block 2: 'Changes' is not a file path"),
        ("**Explanation**\n", "block 2: 'Explanation' is not a file path"),
        ("python\n", "block 2: 'python' is not a file path"),
    ],
)
def test_a_line_that_is_not_a_path_creates_no_file_and_is_a_problem(repo: Path, before: str, shown: str) -> None:
    draft, problems = take(repo, reply(GOOD, before + "```\n<<<<<<< SEARCH\n=======\nnotes\n>>>>>>> REPLACE\n```\n"))
    assert len(problems) == 1 and shown in problems[0]
    assert list(draft.accepted) == ["app/new.py"]


def test_a_path_with_spaces_is_accepted_when_it_exists_or_the_plan_names_it(repo: Path) -> None:
    (repo / "docs" / "user guide").mkdir(parents=True)
    (repo / "docs" / "user guide" / "intro.md").write_text("Hello.\n")
    text = reply(
        "docs/user guide/intro.md\n```\n<<<<<<< SEARCH\nHello.\n=======\nHello, reader.\n>>>>>>> REPLACE\n```\n",
        "docs/user guide/setup.md\n```\n<<<<<<< SEARCH\n=======\nInstall it.\n>>>>>>> REPLACE\n```\n",
    )
    draft = Draft(root=repo, rules=RULES, analysis="Also add `docs/user guide/setup.md`.")
    assert draft.take(text) == []
    assert draft.accepted == {"docs/user guide/intro.md": "Hello, reader.\n", "docs/user guide/setup.md": "Install it.\n"}
    _, problems = take(repo, text)  # a plan that does not name the new file
    assert [problem.split(" is not")[0] for problem in problems] == ["block 2: 'docs/user guide/setup.md'"]


def test_a_new_file_without_an_extension_needs_the_plan_to_name_it(repo: Path) -> None:
    text = reply(block("bin/run", "", "#!/bin/sh\n"))
    draft = Draft(root=repo, rules=RULES, analysis="Add a launcher script `bin/run`.")
    assert draft.take(text) == [] and list(draft.accepted) == ["bin/run"]
    draft, problems = take(repo, text)
    assert problems[0].startswith("block 1: 'bin/run' is not a file path") and draft.accepted == {}
