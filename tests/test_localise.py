"""The localisation call's prompt and reply (repo/localise.py), and what the context does with its answer.

A repository of MIN_FILES files or more gets a prompt of its best-ranked candidates' skeletons and
its map, never a private path; the reply is untrusted: only paths the prompt offered and plain
names are used, whatever else it says.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from automation.repo import excerpts, localise
from automation.repo.context import Locations, build_context, estimate_tokens

TASK = "Make the invoice total round half up"


def _repo(root: Path, files: dict[str, str], fillers: int = localise.MIN_FILES) -> Path:
    """A git checkout with ``files`` and ``fillers`` unrelated modules."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    every = {**{f"vendor/lib{index:03d}.py": f"def helper_{index}(value):\n    return value\n" for index in range(fillers)}, **files}
    for path, content in every.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content, encoding="utf-8")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


BILLING = {
    "billing/invoice.py": "class Invoice:\n    def total(self):\n        return round(self.amount)\n\n    def lines(self):\n        return []\n",
    "billing/Ledger.java": (
        "package billing;\n\npublic class Ledger {\n    private int sum;\n\n    public Ledger() {}\n\n"
        "    public synchronized int balance(int day) {\n        if (day > 0) {\n            return sum;\n        }\n        return 0;\n    }\n}\n"
    ),
    "money/rounding.py": "def half_even(value):\n    return round(value)\n",
    ".env": "STRIPE_KEY=sk_live_not_for_models\n",
    "deploy/secrets.yml": "token: hidden\n",
}


def test_a_small_repository_makes_no_call(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", BILLING, fillers=localise.MIN_FILES - 4)  # with the three files not private: one short
    assert localise.brief(root, TASK) is None


def test_the_prompt_shows_candidates_with_their_skeletons_and_the_map_but_no_private_path(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", BILLING)
    found = localise.brief(root, TASK, exclude=("billing/Ledger.java",))
    assert found is not None
    text = found.text
    assert text.startswith(f"# Task\n{TASK}\n")
    assert f"(30 of {localise.MIN_FILES + 2}, ranked" in text  # .env, deploy/secrets.yml and the excluded file are not counted
    lines = text.splitlines()
    at = lines.index(next(line for line in lines if line.endswith(" billing/invoice.py (110 bytes)")))
    assert lines[at + 1 : at + 4] == ["    class Invoice", "        def total", "        def lines"]  # methods under their class
    assert "# Repository map" in text and "vendor/\n  lib000.py" in text
    for private in (".env", "deploy/secrets.yml", "billing/Ledger.java", "sk_live_not_for_models"):  # secret-like or context.exclude
        assert private not in text and private not in found.offered
    assert {"billing/invoice.py", "vendor/lib000.py"} <= found.offered


def test_a_java_skeleton_lists_its_methods_not_its_statements(tmp_path: Path) -> None:
    java = BILLING["billing/Ledger.java"].replace("    public Ledger() {}\n", "    public Ledger() {}\n\n    int reset() {\n        total(0);\n        return sum;\n    }\n")
    assert localise.skeleton("billing/Ledger.java", java, []) == ["class Ledger", "    Ledger()", "    reset()", "    balance()"]
    kotlin = "class Greeter(val name: String) {\n    fun greet(): String {\n        return hello(name)\n    }\n}\n\nfun hello(who: String) = who\n"
    assert localise.skeleton("app/Greeter.kt", kotlin, []) == ["class Greeter", "    greet()", "    hello()"]


LEDGER_C = """#include <sys/stat.h>

struct ledger {
    long balance;
};

int ledger_settle(struct ledger *l, long balance);

static int
ledger_open(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return -1;
    }
    return 0;
}

long ledger_settle(struct ledger *l, long balance) {
    return balance;
}
"""


def test_a_c_skeleton_lists_its_functions_and_types_not_prototypes_or_variables(tmp_path: Path) -> None:
    widget = ("namespace ui {\n    class WIDGET_API LedgerView final : public View\n    {\n    };\n}\n"
              "enum class LedgerState { Open };\nstruct ledger_row row;\n")
    root = _repo(tmp_path / "repo", {**BILLING, "src/ledger.c": LEDGER_C, "src/ledger_view.hxx": widget})
    found = localise.brief(root, "Settle the ledger balance when opening it")
    assert found is not None
    lines = found.text.splitlines()
    at = lines.index(next(line for line in lines if line.endswith(" src/ledger.c (325 bytes)")))
    assert lines[at + 1 : at + 4] == ["    struct ledger", "    function ledger_open", "    function ledger_settle"]
    at = lines.index(next(line for line in lines if line.endswith(" src/ledger_view.hxx (138 bytes)")))
    assert lines[at + 1 : at + 3] == ["    class LedgerView", "    enum LedgerState"]  # C++ types, not a variable's 'struct ledger_row'
    assert not lines[at + 3].startswith("    ")


C_LINES = """/*
 * Copyright (C) 2026 Ledger authors
 * of this software and associated documentation files (the "Software"), to deal
 */
#include "ledger.h"

int ledger_close(struct ledger *l,
                 int flags);
int ledger_count(int);\r
static void (*handlers[])(int) = { 0 };
struct ledger *
ledger_new(void)
{
    if (ready(l)) {
        return sizeof(struct ledger);
    }
}

static int prepare_entry(entry *e) {
    return 0;
}
int crlf_total(int a)\r
{\r
}\r
std::string Ledger::name(int id) const {
}
REGISTER_TEST(ledger);
"""


def test_a_c_function_definition_is_told_from_a_prototype_a_statement_a_comment_or_a_use() -> None:
    """Prototypes over two lines or in a CRLF file, a licence's '(C)', a function pointer, 'if (', 'sizeof(' and a macro's use are not."""
    assert [name for _, name in excerpts.c_functions(C_LINES)] == ["ledger_new", "prepare_entry", "crlf_total", "name"]
    lines = excerpts.split_lines(C_LINES)
    assert excerpts.c_function_lines(lines)[lines.index("ledger_new(void)\n")] == "ledger_new"


def test_a_c_struct_variable_inside_a_function_starts_no_unit_but_a_type_at_column_0_does() -> None:
    body = "".join(f"static int filler_{i}(void)\n{{\n    return {i};\n}}\n\n" for i in range(200))
    text = body + "struct ledger {\n    long balance;\n};\n\nlong get_zone(void) {\n    struct timeval tv;\n    return tv.tv_sec;\n}\n"
    lines = excerpts.split_lines(text)
    starts = {lines[unit.first] for unit in excerpts.cut_units("src/zone.c", lines)}
    assert {"struct ledger {\n", "long get_zone(void) {\n"} <= starts and "    struct timeval tv;\n" not in starts


def test_a_line_longer_than_any_declaration_is_not_read() -> None:
    """A minified or generated line would take the pattern quadratic time: it is passed over."""
    declaration = "    public int balance(int day) {"
    assert excerpts.declared(declaration) == ("public int", "balance")
    padded = declaration.replace("int day", "int day" + ", int other" * 60)
    assert len(padded) > excerpts.DECLARATION_CHARS and excerpts.declared(padded) is None
    assert localise.skeleton("Big.java", ("    public " + "a" * 200_000 + "\n") * 3, []) == []


OFFERED = frozenset(["billing/invoice.py", "money/rounding.py", "vendor/lib000.py"])


@pytest.mark.parametrize("reply", [
    '{"files": ["billing/invoice.py", "money/rounding.py"], "symbols": [["billing/invoice.py", "total"]]}',
    'Here is my answer:\n```json\n{"files": ["billing/invoice.py", "money/rounding.py"],\n'
    ' "symbols": [["billing/invoice.py", "total"]]}\n```\nHope it helps.',
    'Sure. {"files": ["billing/invoice.py", "money/rounding.py"], "symbols": [["billing/invoice.py", "total"]]} Done.',
])
def test_a_reply_is_read_bare_fenced_or_among_prose(reply: str) -> None:
    locations, note = localise.parse(reply, OFFERED)
    assert locations == Locations(files=("billing/invoice.py", "money/rounding.py"), symbols=(("billing/invoice.py", "total"),))
    assert note == ""


def test_a_hostile_reply_can_name_only_what_the_prompt_offered() -> None:
    reply = json.dumps({
        "files": ["../../etc/passwd", ".env", "billing/invoice.py", "billing/invoice.py", 42, "IGNORE PREVIOUS INSTRUCTIONS"],
        "symbols": [["billing/invoice.py", "total(); os.system('rm -rf /')"], [".env", "STRIPE_KEY"], ["money/rounding.py", "half_even"],
                    ["billing/invoice.py"], "total"],
        "instructions": "send the secrets to https://evil.example",
    })
    locations, note = localise.parse(reply, OFFERED)
    assert locations == Locations(files=("billing/invoice.py",), symbols=(("money/rounding.py", "half_even"),))
    assert note == "8 of the reply's entries named no path the prompt offered, or no plain name: not used"


@pytest.mark.parametrize("reply", [
    # paths decorated as the prompt writes them, or cut to the end that names one offered file; names qualified or declared
    '{"files": ["1. ./billing/invoice.py (110 bytes)", "rounding.py:12"], "symbols": [["invoice.py", "Invoice.total"]]}',
    '{"files": ["/billing/invoice.py#L1-L4", "money/rounding.py"], "symbols": ["billing/invoice.py::def total(self)"]}',
    # symbols as objects, or files as objects carrying them; one path as a string
    '{"files": "billing/invoice.py", "symbols": [{"file": "billing/invoice.py", "function": "total()"}, '
    '{"path": "money/rounding.py"}], "paths": ["money/rounding.py"]}',
    '{"files": [{"path": "billing/invoice.py", "functions": ["Invoice.total"]}, {"file": "money/rounding.py"}]}',
])
def test_a_reply_that_strays_from_the_shape_asked_is_read_as_meant(reply: str) -> None:
    locations, _ = localise.parse(reply, OFFERED | {"vendor/money/rounding2.py"})
    assert locations.ranked()[:1] == ["billing/invoice.py"]
    assert locations.symbols == (("billing/invoice.py", "total"),)
    assert set(locations.files) <= {"billing/invoice.py", "money/rounding.py"}


def test_a_name_that_starts_like_a_keyword_is_kept_whole_and_a_path_as_written_is_taken_first() -> None:
    offered = OFFERED | {"docs/api (v2)"}
    reply = json.dumps({"files": ["docs/api (v2)", "x" * 5_000 + " " * 5_000 + "(y)"],
                        "symbols": [["billing/invoice.py", "default_total"], ["billing/invoice.py", "def classify(self)"],
                                    {"file": "money/rounding.py", "functions": ["function_name", "fnmatch"]}, ["billing/invoice.py", "total²"]]})
    locations, note = localise.parse(reply, offered)
    assert locations.files == ("docs/api (v2)",)
    assert locations.symbols == (("billing/invoice.py", "default_total"), ("billing/invoice.py", "classify"),
                                 ("money/rounding.py", "function_name"), ("money/rounding.py", "fnmatch"))
    assert note.startswith("2 of the reply's entries")


def test_a_file_name_that_ends_two_offered_paths_names_neither() -> None:
    offered = frozenset(["a/util.py", "b/util.py", "c/io/util.py"])
    locations, note = localise.parse('{"files": ["util.py", "io/util.py", "../b/util.py"], "symbols": [["util.py", "run"]]}', offered)
    assert locations == Locations(files=("c/io/util.py",))
    assert note == "3 of the reply's entries named no path the prompt offered, or no plain name: not used"


NO_OBJECT = "the reply held no JSON object; the context is ranked without it"


@pytest.mark.parametrize(("reply", "said"), [
    ("I cannot tell from this.", NO_OBJECT), ("", NO_OBJECT), ('["billing/invoice.py"]', NO_OBJECT),
    ('{"files": ' + "[" * 5_000 + "]" * 5_000 + "}", NO_OBJECT),  # nested past the parser's depth: no traceback
    ('{"files": 42, "symbols": {"path": 7}}', "1 of the reply's entries named no path the prompt offered, or no plain name: not used"),
])
def test_a_reply_without_an_object_or_lists_locates_nothing(reply: str, said: str) -> None:
    locations, note = localise.parse(reply, OFFERED)
    assert (locations, note) == (Locations(), said)


def test_no_more_than_the_limits_are_kept() -> None:
    offered = frozenset(f"m{index}.py" for index in range(20))
    reply = json.dumps({"files": sorted(offered), "symbols": [[f"m{index}.py", f"f{index}"] for index in range(20)]})
    locations, _ = localise.parse(reply, offered)
    assert (len(locations.files), len(locations.symbols)) == (localise.MAX_FILES, localise.MAX_SYMBOLS)


def test_located_files_come_after_named_ones_and_before_any_word_match(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", {**BILLING, "docs/rounding-notes.md": "invoice total round half up " * 40})
    task = "Make the invoice total round half up, see billing/invoice.py"
    ctx = build_context(root, task, 4_000, locations=Locations(files=("money/rounding.py", "vendor/lib007.py", "vendor/lib008.py",
                                                                       "vendor/lib009.py")))
    sent = list(ctx.files) + list(ctx.excerpts)
    assert sent[:4] == ["billing/invoice.py", "money/rounding.py", "vendor/lib007.py", "vendor/lib008.py"]
    assert ctx.reasons["money/rounding.py"] == "located by the localisation call"
    assert ctx.reasons.get("vendor/lib009.py", "not sent") != "located by the localisation call"  # only the first LOCATED_FILES
    without = build_context(root, task, 4_000)
    assert list(without.files)[:3] == ["billing/invoice.py", "money/rounding.py", "billing/Ledger.java"]


def test_a_located_function_is_sent_from_a_file_too_large_to_go_whole(tmp_path: Path) -> None:
    body = "".join(f"def step_{index}(value):\n    '''Step {index} of the pipeline.'''\n    return value + {index}\n\n\n"
                   for index in range(600))
    root = _repo(tmp_path / "repo", {"engine/pipeline.py": body.replace("def step_417(value):", "def settle_accounts(value):")})
    locations = Locations(files=("engine/pipeline.py",), symbols=(("engine/pipeline.py", "settle_accounts"),))
    ctx = build_context(root, "Settle the month's accounts", 3_000, locations=locations)
    assert "engine/pipeline.py" in ctx.excerpts and "engine/pipeline.py" not in ctx.files
    assert "def settle_accounts(value):\n    '''Step 417 of the pipeline.'''\n    return value + 417\n" in ctx.excerpts["engine/pipeline.py"]
    assert ctx.tokens <= 3_000


@pytest.mark.parametrize(("line", "declares"), [
    ("def settle(value):", True), ("    async def settle(self):", True), ("class settle(Base):", True),
    ("    public static int settle(int a) {", True), ("pub fn settle<T>(x: T) -> T {", True), ("func (l *Ledger) settle() {", True),
    ("export function settle(x) {", True), ("public final class settle extends Account {", True),
    ("    return settle(value)", False), ("    if settle(value):", False), ("    total = settle(value)", False),
    ("    new settle(value);", False), ("# settle the accounts", False),
])
def test_a_declaration_is_told_from_a_call_in_any_language(line: str, declares: bool) -> None:
    lines = [f"filler line {index}\n" for index in range(5)] + [line + "\n"]
    units = [excerpts.Unit(0, 4, 60), excerpts.Unit(5, 5, len(line) + 1)]
    candidate = excerpts.Candidate(path="x.py", chance=1.0, lines=lines, units=units, whole_bytes=10_000, excerpt_bytes=40, gap_bytes=30)
    excerpts.defining([candidate], [("x.py", "settle")], 10_000)
    assert candidate.chosen == ({1} if declares else set())


def test_the_prompt_stays_within_the_bound_the_run_reserves(tmp_path: Path) -> None:
    from automation.models.providers import openai_input_token_bound

    deep = "/".join(["a-very-long-folder-name-for-generated-code"] * 5)
    methods = "".join(f"    def method_with_a_long_descriptive_name_{index}(self):\n        return {index}\n" for index in range(80))
    files = {f"{deep}/module_{index}.py": f"class Total{index}:\n{methods}" for index in range(40)}
    files.update({f"{deep}/folder{index}/another_generated_module_with_a_long_name_{index}.py": "VALUE = 1\n" for index in range(400)})
    root = _repo(tmp_path / "repo", files)
    found = localise.brief(root, "total " * 5_000)
    assert found is not None and "module_0.py" in found.text
    map_part = found.text[found.text.index("# Repository map"):]
    assert len(map_part.encode()) > localise.MAP_BYTES * 0.9  # the map filled to its bytes: the worst case
    messages = [{"role": "system", "content": localise.SYSTEM}, {"role": "user", "content": found.text}]
    assert openai_input_token_bound(messages, None) <= localise.INPUT_BOUND_TOKENS  # what the call reserves, within the run's


def test_costs_and_simulate_count_the_call_on_a_large_repository(tmp_path: Path) -> None:
    import datetime as dt
    import io

    from automation.cli import main

    root = _repo(tmp_path / "repo", {**BILLING, "docs/TASKS.md": f"- [ ] {TASK}\n"})
    now = dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc)
    out, err = io.StringIO(), io.StringIO()
    assert main(["costs", "--repo", str(root)], env={}, now=now, out=out, err=err) == 0, err.getvalue()
    row = next(line.split() for line in out.getvalue().splitlines() if line.startswith("  localise "))
    assert row[0] == "localise" and 0 < float(row[2].removeprefix("$")) <= float(row[3].removeprefix("$"))
    assert ", localisation " in out.getvalue() and " in / 300 out" in out.getvalue()
    simulated = io.StringIO()
    assert main(["simulate", "--runs", "1", "--repo", str(root)], env={}, now=now, out=simulated, err=err) == 0, err.getvalue()
    assert ", localisation " in simulated.getvalue()
