"""What the checks' output names as failures, the edit's new failures against the untouched
tree's, and the commands a repository suggests: pure functions on real tools' output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation.repo.checks import FAILED, PASSED, PRE_EXISTING, Verdict, Verification, compare, failures, marks, suggest
from automation.repo.sandbox import Outcome

PYTEST = """\
============================= test session starts ==============================
collected 3 items

tests/test_app.py .F.                                                     [100%]

=================================== FAILURES ===================================
_________________________________ test_greet __________________________________

    def test_greet():
>       assert greet("Ada") == "Hello, Ada!"

tests/test_app.py:9: in greet
    return helper(name)
E       AssertionError: assert 'Hello Ada' == 'Hello, Ada!'

tests/test_app.py:12: AssertionError
=========================== short test summary info ============================
FAILED tests/test_app.py::test_greet - AssertionError: assert 'Hello Ada' == 'Hello, Ada!'
FAILED tests/test_app.py::test_case[2-3] - assert 5 == 6
ERROR tests/test_db.py - ModuleNotFoundError: No module named 'db'
========================= 2 failed, 1 passed in 0.12s ==========================
"""
UNITTEST = """\
F.
======================================================================
FAIL: test_greet (tests.test_greeting.GreetTest.test_greet)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "tests/test_greeting.py", line 8, in test_greet
AssertionError: 'Hello Ada' != 'Hello, Ada!'
----------------------------------------------------------------------
Ran 2 tests in 0.001s

FAILED (failures=1)
"""
GO = "--- FAIL: TestGreet (0.00s)\n    greet_test.go:9: got Hello Ada\nFAIL\nFAIL\texample.com/greet\t0.004s\n"
CARGO = "running 2 tests\ntest tests::adds ... ok\ntest tests::greets ... FAILED\n\nfailures:\n"
JEST = "  ● Greeter › says hello\n\n    expect(received).toBe(expected)\n"
RUFF_FULL = "F401 [*] `os` imported but unused\n --> app.py:1:8\n  |\n1 | import os\n  |        ^^\n\nFound 1 error.\n"
RUFF_CONCISE = "app.py:1:8: F401 [*] `os` imported but unused\nFound 1 error.\n"
MYPY = "app.py:3: error: Incompatible return value type (got \"int\", expected \"str\")  [return-value]\nFound 1 error\n"
TSC = "src/a.ts(3,5): error TS2322: Type 'number' is not assignable to type 'string'.\n"


@pytest.mark.parametrize(("output", "expected"), [
    (PYTEST, ("ERROR tests/test_db.py", "FAILED tests/test_app.py::test_case[#-#]", "FAILED tests/test_app.py::test_greet",
              "tests/test_app.py: AssertionError")),
    (UNITTEST, ("FAIL: test_greet (tests.test_greeting.GreetTest.test_greet)",)),
    (GO, ("--- FAIL: TestGreet", "FAIL example.com/greet", "greet_test.go: got Hello Ada")),
    (CARGO, ("test tests::greets FAILED",)),
    (JEST, ("● Greeter › says hello",)),
    (RUFF_FULL, ("app.py: F401 [*] `os` imported but unused",)),
    (RUFF_CONCISE, ("app.py: F401 [*] `os` imported but unused",)),
    (MYPY, ('app.py: error: Incompatible return value type (got "int", expected "str")  [return-value]',)),
    (TSC, ("src/a.ts: error TS2322: Type 'number' is not assignable to type 'string'.",)),
])
def test_failures_are_named_as_the_common_tools_print_them(output: str, expected: tuple[str, ...]) -> None:
    assert failures(output) == tuple(sorted(expected))


def test_a_failure_that_only_moved_keeps_its_mark() -> None:
    assert failures("app.py:3:1: E501 line too long (100 > 88)\n") == failures("app.py:40:1: E501 line too long (101 > 88)\n")


def outcome(output: str, code: int | None = 1) -> Outcome:
    return Outcome("make test", code, 1.5, output)


def test_only_failures_the_edit_added_are_new() -> None:
    before = marks(outcome(RUFF_CONCISE))
    after = outcome(RUFF_CONCISE + "app.py:9:1: F841 local variable `x` is assigned to but never used\n")

    verdict = compare(before, after)

    assert verdict.status == FAILED
    assert verdict.new == ("app.py: F841 local variable `x` is assigned to but never used",)
    assert verdict.old == ("app.py: F401 [*] `os` imported but unused",)


def test_a_failure_the_untouched_tree_had_is_pre_existing_and_a_fixed_one_passes() -> None:
    before = marks(outcome(UNITTEST))

    assert compare(before, outcome(UNITTEST)).status == PRE_EXISTING
    assert compare(before, outcome("ok\n", 0)) == Verdict("make test", PASSED, 1.5, 0)
    assert compare((), outcome(UNITTEST)).new == ("FAIL: test_greet (tests.test_greeting.GreetTest.test_greet)",)


def test_a_second_copy_of_a_known_failure_is_new() -> None:
    before = marks(outcome(RUFF_CONCISE))
    assert compare(before, outcome(RUFF_CONCISE + RUFF_CONCISE.replace(":1:8:", ":7:8:"))).status == FAILED


def test_unnamed_failures_and_timeouts_still_leave_a_mark() -> None:
    assert marks(outcome("Segmentation fault\n", 139)) == ("(exit code 139)",)
    assert "(timed out)" in marks(outcome(UNITTEST, None))
    assert compare(marks(outcome("boom\n", 2)), outcome("boom\n", 2)).status == PRE_EXISTING
    assert compare(marks(outcome("boom\n", 2)), outcome("boom\n", None)).new == ("(timed out)",)


def test_the_headline_says_what_a_user_needs() -> None:
    passed = Verdict("pytest", PASSED, 1.0, 0)
    old = Verdict("ruff check .", PRE_EXISTING, 0.2, 1, old=("x",))
    failed = Verdict("npm test", FAILED, 3.0, 1, new=("y",))

    assert Verification((passed,), 0, "user namespaces", "abc").headline() == "passed (1 command)"
    assert Verification((passed, old), 1, "none", "abc").headline() == (
        "passed (2 commands, after 1 repair); already failing before the change: `ruff check .`")
    failing = Verification((passed, failed), 2, "none", "abc")
    assert failing.result == FAILED and failing.headline() == "failed: `npm test` (after 2 repairs)"


@pytest.mark.parametrize(("files", "expected"), [
    ({"pyproject.toml": "[tool.pytest.ini_options]\n[tool.ruff]\n", "tests/test_a.py": ""},
     ["python -m pytest -q", "ruff check --output-format=concise ."]),
    ({"tests/test_a.py": "", "setup.cfg": "[flake8]\n"}, ["python -m unittest discover -s tests", "flake8"]),
    ({"package.json": json.dumps({"scripts": {"test": "jest"}}), "go.mod": "module x\n", "Cargo.toml": "",
      "Makefile": "all:\n\ttrue\ntest: all\n\tgo test\n"}, ["npm test", "go test ./...", "cargo test", "make test"]),
    ({"package.json": json.dumps({"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}), "README.md": ""}, []),
])
def test_suggestions_follow_the_files_present(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)

    assert suggest(tmp_path) == expected
