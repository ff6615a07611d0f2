"""The SEARCH/REPLACE format: what the parser reads, and where the applier places a block (never a guess)."""

from __future__ import annotations

import pytest

from automation.repo.search_replace import (
    Block,
    BlockRefused,
    Refused,
    apply_block,
    apply_blocks,
    clean_path,
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


def test_markers_inside_an_ordinary_code_fence_are_prose() -> None:
    parsed = parse("Example of the format:\n```\nx.py\n\n<<<<<<< SEARCH\n```\nNo edits.")
    assert parsed.blocks == () and "holds no SEARCH/REPLACE block" in parsed.problems[0]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("Here it is:\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```", "block 1: no file path on the line before"),
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
     ("## `a.py`", "a.py"), ("Here is the change", None), ("", None)],
)
def test_paths_lose_their_decoration_and_prose_is_not_a_path(line: str, path: str | None) -> None:
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
