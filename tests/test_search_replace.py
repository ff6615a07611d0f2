"""The SEARCH/REPLACE format: what the parser reads, and where the applier places a block (never a guess)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automation.repo.search_replace import (
    Block,
    BlockRefused,
    Refused,
    apply_block,
    apply_blocks,
    clean_path,
    looks_like_path,
    nearest_lines,
    parse,
)

SOURCE = "import os\n\n\nclass Greeter:\n    def greet(self, name):\n        return f'Hello, {name}!'\n\n    def bye(self):\n        return 'Bye'\n"


def one(text: str) -> Block:
    parsed = parse(text)
    assert parsed.problems == ()
    [block] = parsed.blocks
    return block


def edit(search: str, replace: str, path: str = "app/x.py") -> Block:
    return one(f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")


def test_a_reply_with_prose_blocks_and_a_delete() -> None:
    reply = (
        "Adds a farewell and drops the old module.\n\nIt keeps the greeting.\n\n"
        "`app/x.py`\n````python\n<<<<<<< SEARCH\n    def bye(self):\n=======\n    def bye(self):\n        '''```'''\n"
        ">>>>>>> REPLACE\n<<<<<<< SEARCH\nimport os\n=======\nimport sys\n>>>>>>> REPLACE\n````\n\n"
        "Then:\n\nDELETE \"app/old module.py\"\n\n"
        '**docs/new.md**\n~~~\n<<<<<<< SEARCH\n=======\n# New\n>>>>>>> REPLACE\n~~~\nThat is all.\n'
    )
    parsed = parse(reply)
    assert parsed.problems == ()
    assert parsed.summary == "Adds a farewell and drops the old module.\n\nIt keeps the greeting."
    assert [(b.number, b.path, b.delete) for b in parsed.blocks] == [
        (1, "app/x.py", False), (2, "app/x.py", False), (3, "app/old module.py", True), (4, "docs/new.md", False),
    ]
    assert parsed.blocks[0].splits() == [(["    def bye(self):"], ["    def bye(self):", "        '''```'''"])]
    assert parsed.blocks[3].splits() == [([], ["# New"])]


def test_without_prose_before_the_blocks_the_closing_prose_is_the_summary() -> None:
    parsed = parse("a.py\n```\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n```\n\nAdds a.py.\n")
    assert parsed.summary == "Adds a.py." and len(parsed.blocks) == 1


def test_the_path_may_be_the_first_line_inside_the_fence_and_the_fence_may_be_missing() -> None:
    inside = one("Change.\n\n```python\napp/x.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n")
    bare = one("### app/y.py:\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")
    assert (inside.path, bare.path) == ("app/x.py", "app/y.py")


def test_markers_inside_an_ordinary_code_fence_are_a_block_never_dropped_unseen() -> None:
    parsed = parse("Example of the format:\n```\nx.py\n\n<<<<<<< SEARCH\n```\nNo edits.")
    assert [(block.path, block.problem) for block in parsed.blocks] == [("x.py", "cut off before its >>>>>>> REPLACE line")]
    assert parse("Run:\n```bash\nmake test\n>>>>>>> REPLACE\n```\n").problems[0].startswith("the reply holds no")


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```", "block 1: no file path on the line before"),
        ("", "the reply holds no SEARCH/REPLACE block"),
    ],
)
def test_format_problems_name_the_block(reply: str, problem: str) -> None:
    assert parse(reply).problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("x.py\n```\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n```", "block 1: no ======= line"),
        ("x.py\n```\n<<<<<<< SEARCH\na\n=======\nb", "block 1: cut off before its >>>>>>> REPLACE line"),
    ],
)
def test_a_malformed_block_of_a_known_file_is_refused_with_that_file(reply: str, problem: str) -> None:
    [block] = parse(reply).blocks
    with pytest.raises(BlockRefused) as caught:
        apply_blocks("a\n", [block])
    assert str(caught.value).startswith(problem)


@pytest.mark.parametrize(
    ("line", "path"),
    [("app/x.py", "app/x.py"), ("`app/x.py`", "app/x.py"), ('"my file.md"', "my file.md"), ("**a.py**:", "a.py"),
     ("## `a.py`", "a.py"), ("Here is the change:", "Here is the change"), ("", "")],
)
def test_paths_lose_their_decoration(line: str, path: str) -> None:
    assert clean_path(line) == path


def test_exact_match_replaces_in_place() -> None:
    block = edit("    def bye(self):\n        return 'Bye'\n", "    def bye(self):\n        return 'Goodbye'\n")
    assert apply_block(SOURCE, block) == SOURCE.replace("'Bye'", "'Goodbye'")


def test_an_empty_search_creates_a_file_or_fills_an_empty_one_only() -> None:
    block = edit("", "x = 1\n")
    assert apply_block(None, block) == apply_block("", block) == "x = 1\n"
    with pytest.raises(Refused, match="the file exists and is not empty"):
        apply_block("y = 2\n", block)


def test_an_ambiguous_search_is_refused_naming_the_lines() -> None:
    with pytest.raises(Refused, match=r"fit 2 places \(starting at lines 1, 3\)"):
        apply_block("x = 1\ny = 2\nx = 1\n", edit("x = 1\n", "x = 3\n"))
    with pytest.raises(Refused, match="fit 2 places"):
        apply_block("a \nb\na\t\nb\n", edit("a\nb\n", "c\n"))  # ambiguous after a forgiven slip too


@pytest.mark.parametrize(
    ("search", "how"),
    [
        ("    def bye(self):   \n        return 'Bye'\t\n", "trailing whitespace"),
        ("    def bye(self):\n\n        return 'Bye'\n", "extra blank line"),
        ("class Greeter:\n    def greet(self, name):\n        return f'Hello, {name}!'\n    def bye(self):\n", "missing blank line"),
        ("def bye(self):\n    return 'Bye'\n", "indentation removed"),
        ("        def bye(self):\n            return 'Bye'\n", "indentation added"),
    ],
)
def test_slips_are_forgiven_when_the_place_is_unique(search: str, how: str) -> None:
    first = search.splitlines()[0].strip()
    replace = search.replace("'Bye'", "'Goodbye'") if "Bye" in search else search.replace("name}!", "name}?")
    # REPLACE written like SEARCH (the model's own frame): moved into the file's frame
    result = apply_block(SOURCE, edit(search, replace))
    expected = SOURCE.replace("'Bye'", "'Goodbye'") if "Bye" in search else SOURCE.replace("name}!", "name}?")
    if how in ("trailing whitespace", "extra blank line", "missing blank line"):
        # REPLACE is written as given over the found span
        assert first in result and ("Goodbye" in result or "name}?" in result)
    else:
        assert result == expected, how


def test_replace_already_in_the_files_indentation_is_not_moved() -> None:
    result = apply_block(SOURCE, edit("def bye(self):\n    return 'Bye'\n", "    def bye(self):\n        return 'Goodbye'\n"))
    assert result == SOURCE.replace("'Bye'", "'Goodbye'")


def test_replace_whose_indentation_shows_no_frame_is_refused() -> None:
    with pytest.raises(Refused, match="do not show clearly which indentation"):
        apply_block(SOURCE, edit("def bye(self):\n    return 'Bye'\n", "  pass\n"))


@pytest.mark.parametrize(
    "search",
    [
        "    def bye(self):\n        return 'Hi'\n",  # a changed line
        "    def greet(self, name):\n    def bye(self):\n",  # a line left out
        "    def bye(self):\n    import os\n        return 'Bye'\n",  # a line from elsewhere
        "\n\n",  # only blank lines
    ],
)
def test_a_search_that_is_not_there_is_refused_never_guessed(search: str) -> None:
    with pytest.raises(Refused):
        apply_block(SOURCE, edit(search, "x\n"))


def test_crlf_files_keep_their_endings_and_a_missing_final_newline_stays_missing() -> None:
    assert apply_block("a\r\nb\r\nc\r\n", edit("b\n", "B\nB2\n")) == "a\r\nB\r\nB2\r\nc\r\n"
    assert apply_block("a\nb", edit("b\n", "c\n")) == "a\nc"


def test_a_divider_inside_the_file_does_not_cut_the_search_short() -> None:
    text = "Title\n=======\n\nBody\n"
    block = one("README.rst\n```\n<<<<<<< SEARCH\nTitle\n=======\n\nBody\n=======\nTitle\n=======\n\nNew body\n>>>>>>> REPLACE\n```")
    assert apply_block(text, block) == "Title\n=======\n\nNew body\n"


def test_nearest_lines_are_numbered_and_bounded() -> None:
    shown = nearest_lines(SOURCE, ["    def bye(self):", "        return 'Bey'"])
    assert shown == "8:     def bye(self):\n9:         return 'Bye'"
    assert nearest_lines("", ["x"]) == "(the file is empty)"
    long = "\n".join(f"line {n}" for n in range(500))
    assert len(nearest_lines(long, [f"line {n}" for n in range(100, 200)]).splitlines()) == 40


# --- malformed replies: a block ends at its own markers, or it is a problem named for the repair -----------


def _fenced(path: str, *body: str, fence: str = "```") -> str:
    return "\n".join([path, fence, "<<<<<<< SEARCH", *body, fence]) + "\n"


NEXT = _fenced("app/x.py", "a = 1", "=======", "a = 2", ">>>>>>> REPLACE")


@pytest.mark.parametrize(
    "broken",
    [
        # Claude 3.5 Sonnet in Aider's chat history: the block closed with =======, then prose, then the next block
        "docs/guide.md\n```markdown\n<<<<<<< SEARCH\nold\n=======\nnew\n=======\n```\n\nThen the code:\n\n",
        # the REPLACE marker forgotten
        "docs/guide.md\n```markdown\n<<<<<<< SEARCH\nold\n=======\nnew\n```\n\n",
        # the REPLACE marker and the closing fence forgotten, the next block's path right after
        "docs/guide.md\n```markdown\n<<<<<<< SEARCH\nold\n=======\nnew\n",
    ],
)
def test_a_replace_part_never_runs_past_a_new_search_marker(broken: str) -> None:
    parsed = parse("Updates the guide and the code.\n\n" + broken + NEXT)
    first, second = parsed.blocks
    assert first.path == "docs/guide.md" and ">>>>>>> REPLACE" in first.problem and "<<<<<<< SEARCH" in first.problem
    assert all("<<<<<<<" not in line and ">>>>>>>" not in line for line in first.body)
    assert (second.path, second.problem, second.splits()) == ("app/x.py", "", [(["a = 1"], ["a = 2"])])
    with pytest.raises(BlockRefused, match=r"^block 1: .*<<<<<<< SEARCH"):
        apply_blocks("old\n", [first])


def test_a_stray_replace_marker_after_a_block_is_a_problem_of_that_block() -> None:
    reply = _fenced("style.css", "a { color: red; }", "=======", "a { color: blue; }", ">>>>>>> REPLACE") + (
        "b { color: green; }\n>>>>>>> REPLACE\n"
    )
    [block] = parse(reply).blocks
    assert "stray >>>>>>> REPLACE" in block.problem


CSS = "a {\n  color: red;\n}\n\nb {\n  margin: 0;\n}\n"


@pytest.mark.parametrize(
    "body",
    [
        ("  color: red;", "=======", "  color: blue;", "=======", ">>>>>>> REPLACE"),  # an extra divider at the end
        ("  color: red;", "=======", "=======", "  color: blue;", ">>>>>>> REPLACE"),  # the divider written twice
        ("  color: red;", "=======", "  color: blue;", "=======", "  margin: 1px;", ">>>>>>> REPLACE"),  # one mid-way
    ],
)
def test_an_extra_divider_is_never_written_into_the_file(body: tuple[str, ...]) -> None:
    [block] = parse(_fenced("style.css", *body)).blocks
    with pytest.raises(Refused, match=r"======= line .* reads as an extra divider"):
        apply_block(CSS, block)


def test_an_extra_divider_in_a_new_file_is_refused_too() -> None:
    [block] = parse(_fenced("new.css", "=======", "a { color: red; }", "=======", ">>>>>>> REPLACE")).blocks
    with pytest.raises(Refused, match="extra divider"):
        apply_block(None, block)


@pytest.mark.parametrize(
    ("path", "text", "body", "expected"),
    [
        ("docs/a.rst", "Old Title\n=========\n\nText.\n",  # a heading renamed: both parts end on an underline
         ("Old Title", "=========", "=======", "New Title", "=========", ">>>>>>> REPLACE"),
         "New Title\n=========\n\nText.\n"),
        ("docs/new.rst", None, ("=======", "=====", "Guide", "=====", "", "Intro.", ">>>>>>> REPLACE"),
         "=====\nGuide\n=====\n\nIntro.\n"),  # an overlined title in a new file
        ("docs/b.md", "Guide\n=====\n\nIntro.\n",  # a setext heading added to a document that uses them
         ("Intro.", "=======", "Intro.", "", "Usage", "=====", "", "Run it.", ">>>>>>> REPLACE"),
         "Guide\n=====\n\nIntro.\n\nUsage\n=====\n\nRun it.\n"),
    ],
)
def test_a_files_own_heading_underlines_are_still_content(
    path: str, text: str | None, body: tuple[str, ...], expected: str
) -> None:
    [block] = parse(_fenced(path, *body)).blocks
    assert apply_block(text, block) == expected


# --- path lines -------------------------------------------------------------------------------------------


def test_a_path_in_its_own_fence_names_the_block() -> None:
    deepseek = "Here's the change:\n\n ```python\nfoo.txt\n```\n```python\n<<<<<<< SEARCH\none\n=======\ntwo\n>>>>>>> REPLACE\n```\n"
    assert one(deepseek).path == "foo.txt"


@pytest.mark.parametrize(
    "before",
    [
        "Run the tests with:\n```bash\nmake test\npytest -q\n```\n",  # a block right after an ordinary code fence
        "```\n",  # a fence line alone
        "Example:\n```python\nx = compute(1)\n```\n",  # a one-line fence that holds code, not a path
    ],
)
def test_a_closed_code_fence_is_never_a_path(before: str) -> None:
    parsed = parse(before + "```\n<<<<<<< SEARCH\n=======\nnew file\n>>>>>>> REPLACE\n```\n")
    assert all(block.path.strip("`") and block.path != "x = compute(1)" for block in parsed.blocks)
    assert parsed.problems and parsed.problems[0].startswith("block 1: ")


def test_prose_between_two_blocks_in_one_fence_keeps_the_file() -> None:
    reply = (
        "Here's the change:\n\n```text\nfoo.txt\n<<<<<<< SEARCH\none\n=======\ntwo\n>>>>>>> REPLACE\n\n...\n\n"
        "<<<<<<< SEARCH\nthree\n=======\nfour\n>>>>>>> REPLACE\n```\n\nHope you like it!\n"
    )
    parsed = parse(reply)
    assert parsed.problems == ()
    assert [(block.path, block.splits()) for block in parsed.blocks] == [
        ("foo.txt", [(["one"], ["two"])]), ("foo.txt", [(["three"], ["four"])]),
    ]


def test_every_search_marker_becomes_a_block_or_a_problem() -> None:
    reply = (
        "Notes.\n```\nprose inside a fence\n\napp/a.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n"
        "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n"
    )
    parsed = parse(reply)
    assert len(parsed.blocks) + len(parsed.problems) == reply.count("<<<<<<< SEARCH")
    assert parsed.blocks[0].path == "app/a.py"


@pytest.mark.parametrize(
    ("line", "path"),
    [("docs/user guide/intro.md", "docs/user guide/intro.md"), ("File: `src/app.py`", "src/app.py"),
     ("1. `src/app.py` (new file)", "src/app.py"), ("Changes:", "Changes")],
)
def test_path_lines_keep_what_models_write(line: str, path: str) -> None:
    assert clean_path(line) == path


@pytest.mark.parametrize(
    ("path", "known", "looks"),
    [
        ("app/x.py", False, True), (".gitignore", False, True), ("docker/Dockerfile", False, True),
        ("docs/user guide/intro.md", True, True), ("docs/user guide/intro.md", False, False),
        ("Changes", False, False), ("`", False, False), ("<source>python", False, False), ("python", False, False),
        ("Input/output", False, False), ("etc.", False, False), ("Here is the change to app.py", False, False),
        ("Makefile", False, True), ("bin/run", True, True), ("bin/run", False, False),
    ],
)
def test_a_path_must_be_known_or_look_like_a_file(path: str, known: bool, looks: bool) -> None:
    assert looks_like_path(path, lambda candidate: known and candidate == path) is looks


def test_a_block_after_prose_outside_any_fence_needs_its_own_path_and_a_delete_is_never_lost() -> None:
    reply = (
        "app/a.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n\n"
        "Now the tests:\n\n<<<<<<< SEARCH\ne\n=======\nf\n>>>>>>> REPLACE\n"
        "app/b.py\n```\n<<<<<<< SEARCH\ng\n=======\nh\n>>>>>>> REPLACE\n\nDELETE app/old.py\n"  # the fence left open
    )
    parsed = parse(reply)
    assert [(block.number, block.path, block.delete) for block in parsed.blocks] == [
        (1, "app/a.py", False), (2, "app/a.py", False), (3, "Now the tests", False), (4, "app/b.py", False),
        (5, "app/old.py", True),
    ]


POOL = ["a {", "  color: red;", "}", "b {", "  margin: 0;", "c {", "  padding: 1px;"]  # the file's lines, each once
PROSE = ["Here is the change:", "Changes:", "...", "", "Now the tests.", "```", "```python", "x = compute(1)", "======="]
DEFECTS = ["none", "no REPLACE line", "closed with a divider", "extra divider at the end", "divider twice",
           "extra divider inside", "no divider", "REPLACE line twice"]
# Not generated: an unfenced block without its REPLACE line, then prose, then a REPLACE line. That is
# byte for byte a valid block whose new lines are the prose; no reader can tell them apart.


@st.composite
def _block(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(["app/x.css", "`app/y.css`", "**app/z.css**", "Changes:", "```", ""]))
    search = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True))
    replace = draw(st.lists(st.sampled_from(POOL), max_size=3))
    defect = draw(st.sampled_from(DEFECTS))
    body = {
        "none": [*search, "=======", *replace, ">>>>>>> REPLACE"],
        "no REPLACE line": [*search, "=======", *replace],
        "closed with a divider": [*search, "=======", *replace, "======="],
        "extra divider at the end": [*search, "=======", *replace, "=======", ">>>>>>> REPLACE"],
        "divider twice": [*search, "=======", "=======", *replace, ">>>>>>> REPLACE"],
        "extra divider inside": [*search, "=======", *replace[:1], "=======", *replace[1:], ">>>>>>> REPLACE"],
        "no divider": [*search, *replace, ">>>>>>> REPLACE"],
        "REPLACE line twice": [*search, "=======", *replace[:1], ">>>>>>> REPLACE", *replace[1:], ">>>>>>> REPLACE"],
    }[defect]
    fence = draw(st.sampled_from(["```", "````css", None]))
    lines = [path, fence, "<<<<<<< SEARCH", *body, fence.rstrip("cs")] if fence else [path, "<<<<<<< SEARCH", *body]
    return "\n".join(line for line in lines if line is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_block(), st.sampled_from(PROSE)), min_size=1, max_size=8))
def test_malformed_replies_lose_no_block_and_write_nothing_but_file_lines(parts: list[str]) -> None:
    reply = "\n".join(parts) + "\n"
    parsed = parse(reply)
    searches = sum(line == "<<<<<<< SEARCH" for line in reply.splitlines())
    numbered = [problem for problem in parsed.problems if problem.startswith("block ")]
    assert len([block for block in parsed.blocks if not block.delete]) + len(numbered) == searches
    text = "\n".join(POOL) + "\n"
    for block in parsed.blocks:
        assert block.path not in ("`", "```", "")
        if block.problem:
            continue
        try:
            result = apply_block(text, block)
        except Refused:
            continue
        assert set(result.splitlines()) <= set(POOL) | {""}, (block, result)
