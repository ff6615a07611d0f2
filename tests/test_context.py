"""What the analysis model is shown of a repository: relevant, within the cap, and never private."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from automation.core.errors import GitError
from automation.repo.context import (
    MAP_SHARE,
    RepoContext,
    build_context,
    describe,
    estimate_tokens,
    is_sendable,
    render_context,
)

from tests.secret_samples import assignment, samples

SECRET = "sk-live-DO-NOT-LEAK-4242"


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")


def _git_repo(root: Path, files: dict[str, str | bytes]) -> Path:
    """A git checkout whose files are all tracked (ignored ones stay out, as ``git add`` leaves them)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _write(root, files)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


BASIC = {
    "README.md": "# Shop\nA small web shop.\n",
    "docs/TASKS.md": "- [ ] Add a discount code to checkout\n",
    "shop/checkout.py": "def checkout(cart):\n    return sum(cart)\n\n\nclass Basket:\n    pass\n",
    "shop/inventory.py": "def stock_level(item):\n    return 3\n",
    "shop/pricing.py": "def apply_discount_code(total, code):\n    return total\n",
    "web/app.js": "export function render(root) {}\nclass Widget {}\n",
    "tests/test_inventory.py": "from shop.inventory import stock_level\n",
}


def test_estimate_tokens_is_a_conservative_ceiling() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 2
    assert estimate_tokens("é") == 1  # two UTF-8 bytes
    assert estimate_tokens("日本語") == 3  # nine UTF-8 bytes


def test_map_lists_files_with_sizes_and_outlines_of_files_not_sent(tmp_path: Path) -> None:
    big = "def checkout(cart):\n    return sum(cart)\n\n\nclass Basket:\n    def add(self):\n        pass\n" + "# padding\n" * 4_000
    js = "export function render(root) {}\nclass Widget {}\n" + "// padding\n" * 4_000
    ctx = build_context(_git_repo(tmp_path, {**BASIC, "shop/checkout.py": big, "web/app.js": js}), "tidy up", 10_000)
    assert ctx.map_text.startswith("## Repository map (7 files)\nREADME.md (25 B)\ndocs/\n  TASKS.md (38 B)\nshop/\n  checkout.py (39.1 KB)")
    assert "shop/checkout.py" not in ctx.files and "shop/checkout.py" not in ctx.excerpts  # no word of the task: no part of it
    assert "  checkout.py (39.1 KB): def checkout, class Basket\n" in ctx.map_text  # top-level definitions only
    assert "web/\n  app.js (43.0 KB): function render, class Widget\n" in ctx.map_text
    assert "  inventory.py (36 B)\n" in ctx.map_text and "shop/inventory.py" in ctx.files  # sent whole: no outline
    assert "… " not in ctx.map_text


def test_file_named_in_the_task_is_chosen(tmp_path: Path) -> None:
    ctx = build_context(_git_repo(tmp_path, BASIC), "Speed up shop/inventory.py", 10_000)
    assert next(iter(ctx.files)) == "shop/inventory.py"
    assert ctx.files["shop/inventory.py"] == BASIC["shop/inventory.py"]
    assert ctx.reasons["shop/inventory.py"] == "named in the task"


def test_a_dotted_name_in_the_task_names_the_longest_module_it_is_written_from(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {**BASIC, "shop/__init__.py": "from shop.pricing import apply_discount_code\n", "shop/coupons.py": "class Coupon:\n    pass\n"}
    root = _git_repo(tmp_path, files)
    exported = build_context(root, "Export `shop.Coupon` at the top level", 10_000)
    assert exported.reasons["shop/__init__.py"] == "named in the task"  # an attribute of the package: its __init__
    qualified = build_context(root, "Round shop.pricing.apply_discount_code to cents", 10_000)
    assert qualified.reasons["shop/pricing.py"] == "named in the task"
    assert qualified.reasons.get("shop/__init__.py") != "named in the task"  # the longest module that exists, not its package too
    assert build_context(root, "Update the notes.txt of shop.pricing", 10_000).reasons["shop/pricing.py"] == "named in the task"


def test_a_snake_case_name_that_is_one_source_file_s_name_names_that_file(tmp_path: Path) -> None:
    """'Fix tsan problem in env_test': the test the task names comes first, whatever it holds; a name two files share,
    one only a test's data file has (a setting), or a test's input not named as a test, names none."""
    padding = "// a long comment about the environment\n" * 200
    files = {
        "util/env_test.cc": "TEST(EnvTest, RunMany) {\n  Env::Default()->Schedule(&run, &state);\n}\n",
        "util/env.cc": "// tsan: the problem the env_test found\nvoid Env::Schedule(void (*f)(void*), void* arg) {}\n" + padding,
        "util/env_posix.cc": "// tsan problem: fixed in env_posix\nvoid PosixEnv::Schedule() {}\n" + padding,
        "features/table_dir.feature": "Feature: table_dir\n  Scenario: a tsan problem in table_dir\n",
        "table/table_dir.rb": "# tsan problem\n", "lib/table_dir.rb": "# tsan problem\n",
    }
    root = _git_repo(tmp_path, {**BASIC, **files})
    ctx = build_context(root, "Fix tsan problem in env_test", 3_000)
    assert next(iter(ctx.files)) == "util/env_test.cc" and ctx.reasons["util/env_test.cc"] == "named in the task"
    other = build_context(root, "Fix tsan problem in table_dir", 3_000)
    assert not [path for path, reason in other.reasons.items() if reason == "named in the task"]
    _write(root, {"tests/roots/target/type_aliases.py": "Alias = int  # a tsan problem\n"})
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    test_data = build_context(root, "Fix tsan problem with type_aliases", 3_000)  # a test's input, and the task is not about tests
    assert not [path for path, reason in test_data.reasons.items() if reason == "named in the task"]


def test_a_file_name_many_test_folders_share_names_none_of_them_but_the_whole_path(tmp_path: Path) -> None:
    fixture = "import pytest\n\n\n@pytest.fixture\ndef app():\n    return 1\n" + "# a fixture's long comment\n" * 40
    files: dict[str, str | bytes] = {f"tests/case{number}/conftest.py": fixture for number in range(6)}
    files["shop/config.py"] = "def check_ini_keys(keys, known):\n    return [key for key in keys if key not in known]  # invalid ini keys\n"
    root = _git_repo(tmp_path, {**BASIC, **files})
    task = "Don't treat ini keys defined in conftest.py as invalid"
    ctx = build_context(root, task, 2_000)
    assert not [path for path, reason in ctx.reasons.items() if reason == "named in the task"]
    assert next(iter(ctx.files)) == "shop/config.py"
    _write(root, {"conftest.py": "pytest_plugins = [\"shop\"]\n"})
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    assert build_context(root, task, 2_000).reasons["conftest.py"] == "named in the task"  # the whole path says which


def test_every_part_of_a_dotted_name_is_a_name_the_task_gives(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        **BASIC,
        "pkg/python.py": "class Metafunc:\n    def parametrize(self, argnames, argvalues, indirect=False):\n        return argnames\n",
        "pkg/options.py": "def keyword_only(indirect):\n    # Keyword only options, indirect ones from here onwards.\n    return indirect\n",
    }
    ctx = build_context(_git_repo(tmp_path, files), "Make Metafunc.parametrize keyword-only from indirect onwards", 10_000)
    assert next(iter(ctx.files)) == "pkg/python.py"
    assert ctx.reasons["pkg/python.py"] == "defines Metafunc"


def test_identifier_named_in_the_task_finds_its_definition(tmp_path: Path) -> None:
    ctx = build_context(_git_repo(tmp_path, BASIC), "Validate codes in apply_discount_code", 10_000)
    assert next(iter(ctx.files)) == "shop/pricing.py"


def test_rendered_text_has_the_map_then_fenced_files(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {"notes.md": "Use ```python fences``` carefully\n```\ninside\n```\n"})
    ctx = build_context(root, "update notes.md", 10_000)
    text = render_context(ctx)
    assert text.startswith(ctx.map_text)
    assert "\n### notes.md\n````markdown\n" in text
    assert text.endswith("\n````\n")
    assert ctx.tokens == estimate_tokens(text)


def test_gitignored_and_secret_files_never_reach_the_prompt(tmp_path: Path) -> None:
    root = _git_repo(
        tmp_path,
        {
            **BASIC,
            ".gitignore": "build/\n*.log\n",
            "build/output.py": f"KEY = '{SECRET}'\n",
            "debug.log": SECRET,
            ".env": f"OPENAI_API_KEY={SECRET}\n",
            ".env.production": SECRET,
            "deploy/server.pem": SECRET,
            "deploy/server.key": SECRET,
            "home/id_rsa": SECRET,
            "home/id_rsa.pub": SECRET,
            "certs/client.p12": SECRET,
            "certs/client.pfx": SECRET,
            "gcp/credentials-prod.json": SECRET,
            ".npmrc": SECRET,
            ".pypirc": SECRET,
            "vault.kdbx": SECRET,
            "token_budget.json": f'{{"secret": "{SECRET}"}}',
        },
    )
    (root / ".git" / "secret_note").write_text(SECRET)
    ctx = build_context(root, f"Read .env, id_rsa, server.pem, build/output.py, debug.log and {SECRET}", 50_000)
    text = render_context(ctx)
    assert SECRET not in text
    for hidden in ("build/output.py", "debug.log", ".git/", ".env", "id_rsa", "server.pem", "token_budget.json"):
        assert hidden not in text
    assert ".env" in ctx.skipped and "deploy/server.pem" in ctx.skipped and "token_budget.json" in ctx.skipped
    assert "build/output.py" not in ctx.skipped  # ignored files are not part of the repository at all
    assert SECRET not in "".join(ctx.skipped)


def test_cap_is_respected_with_a_tiny_cap_and_huge_files(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {f"pkg/module_{i}.py": f"def f{i}():\n    pass\n" * 50 for i in range(300)}
    files["pkg/huge.py"] = "x = 1\n" * 30_000  # 180 KB: under the size limit, far over the cap
    root = _git_repo(tmp_path, files)
    for cap in (0, 1, 5, 20, 100, 1_000, 5_000):
        ctx = build_context(root, "Refactor pkg/huge.py and module_1", cap)
        assert ctx.tokens <= cap
        assert estimate_tokens(render_context(ctx)) == ctx.tokens
        assert "pkg/huge.py" not in ctx.files
    ctx = build_context(root, "Refactor pkg/huge.py", 5_000)
    assert ctx.map_text.rstrip().splitlines()[-1].startswith("… ")
    assert ctx.map_text.rstrip().endswith("more files")
    listing = [line for line in ctx.map_text.splitlines()[1:-1] if ": " not in line]
    assert estimate_tokens("".join(line + "\n" for line in listing)) <= 5_000 * MAP_SHARE  # outlines only fill room left over


def test_file_over_the_size_limit_is_skipped(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {"data/big.py": "# " + "y" * 1_100_000 + "\n"})
    ctx = build_context(root, "Look at data/big.py", 1_000_000)
    assert ctx.files == {} and ctx.excerpts == {}
    assert ctx.skipped == ["data/big.py"]
    assert "data/\n  big.py (1074.2 KB)\n" in ctx.map_text  # still on the map, so the model knows it exists
    assert describe(ctx).endswith("not sent (secret-like, excluded, binary or over 200 KB): data/big.py\n")


def test_a_file_too_large_to_send_whole_gives_the_parts_the_task_is_about(tmp_path: Path) -> None:
    """A 100,000-token module never goes whole, however large the cap, but the function the task names does."""
    rules = [f"def parse_rule_{i}(tokens):\n    return tokens[{i}:]\n\n\n" for i in range(6_000)]
    core = "".join(rules[:3_000]) + "def parse_union(tokens):\n    return tokens.union\n\n\n" + "".join(rules[3_000:])
    root = _git_repo(tmp_path, {**BASIC, "lang/cpp.py": core})
    ctx = build_context(root, "Allow a template prefix in parse_union", 50_000)
    assert len(core) > 200_000 and "lang/cpp.py" not in ctx.files and "lang/cpp.py" not in ctx.skipped
    assert "def parse_union(tokens):\n    return tokens.union\n" in ctx.excerpts["lang/cpp.py"]
    assert _carried(ctx.excerpts["lang/cpp.py"], core)
    assert "  lang/cpp.py (" in describe(ctx) and ": defines parse_union; excerpt\n" in describe(ctx)


def test_binary_files_are_skipped(tmp_path: Path) -> None:
    root = _git_repo(
        tmp_path,
        {
            "assets/blob.dat": b"header\x00\x01\x02binary",
            "assets/latin1.txt": "caf\xe9".encode("latin-1"),
            "assets/logo.png": b"\x89PNG\r\n",
            "assets/readme.txt": "assets: blob, latin1, logo\n",
        },
    )
    ctx = build_context(root, "Explain assets/blob.dat, assets/latin1.txt and assets/logo.png", 10_000)
    assert set(ctx.files) == {"assets/readme.txt"}
    assert ctx.skipped == ["assets/blob.dat", "assets/latin1.txt", "assets/logo.png"]


@pytest.mark.parametrize("exclude", [["shop/pricing.py"], ["shop/pric*"], ["shop"], ["shop/"], ["*.py"], ["pricing.py"]])
def test_exclude_is_honoured(tmp_path: Path, exclude: list[str]) -> None:
    ctx = build_context(_git_repo(tmp_path, BASIC), "Fix apply_discount_code in shop/pricing.py", 10_000, exclude)
    text = render_context(ctx)
    assert "pricing" not in text
    assert "shop/pricing.py" in ctx.skipped


def test_custom_ledger_path_is_excluded_by_the_caller(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {**BASIC, "state/spend.json": '{"runs": []}'})
    ctx = build_context(root, "Summarise state/spend.json", 10_000, exclude=("state/spend.json",))
    assert "spend.json" not in render_context(ctx)


def test_without_git_the_tree_is_walked(tmp_path: Path) -> None:
    _write(tmp_path, {**BASIC, ".env": SECRET})
    ctx = build_context(tmp_path, "Speed up shop/inventory.py", 10_000)
    assert "shop/inventory.py" in ctx.files
    assert SECRET not in render_context(ctx)
    assert ctx.skipped == [".env"]


def test_a_checkout_git_cannot_read_is_an_error_not_a_walk(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, BASIC)
    _write(root, {"gha-creds-1a2b.json": SECRET, ".git/index": b"DIRC broken"})
    with pytest.raises(GitError, match="git ls-files failed in"):
        build_context(tmp_path, "Speed up shop/inventory.py", 10_000)


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET)
    root = _git_repo(tmp_path / "repo", BASIC)
    (root / "link.txt").symlink_to(outside)
    ctx = build_context(root, "Read link.txt", 10_000)
    assert SECRET not in render_context(ctx)
    assert not is_sendable(root, "link.txt")


@pytest.mark.parametrize("tracked", [True, False])
def test_a_file_name_that_is_not_utf8_or_holds_a_newline_is_left_out_not_a_crash(tmp_path: Path, tracked: bool) -> None:
    """A Latin-1 name ('caf\\xe9.py', as old repositories hold) cannot be written into a prompt, and
    a newline in a name would start a line of its own in the map: both are left out, the rest is sent."""
    root = tmp_path / "repo"
    _write(root, BASIC)
    (root / "shop").joinpath(os.fsdecode(b"caf\xe9.py")).write_bytes(b"def settle_bill():\n    return 1\n")
    (root / "shop" / "bill\n## Repository map (0 files)\nsettle.py").write_text("def settle_bill():\n    return 2\n")
    (root / "shop" / "bill\u2028settle.py").write_text("def settle_bill():\n    return 3\n")
    if tracked:
        _git_repo(root, {})
    ctx = build_context(root, "Make settle_bill round up in shop/checkout.py", 10_000)
    text = render_context(ctx)
    text.encode("utf-8")  # what the provider's SDK does with it
    assert "settle_bill" not in text and "bill\n" not in ctx.map_text and "return 2" not in text and "\u2028" not in text
    assert "  checkout.py (" in ctx.map_text and "shop/checkout.py" in ctx.files
    assert not is_sendable(root, "shop/bill\n## Repository map (0 files)\nsettle.py")


def test_is_sendable_applies_the_same_rules(tmp_path: Path) -> None:
    root = _git_repo(
        tmp_path,
        {**BASIC, ".gitignore": "*.log\n", "app.log": "x", ".env": SECRET, "blob.dat": b"\x00", "token_budget.json": "{}"},
    )
    assert is_sendable(root, "shop/pricing.py")
    assert not is_sendable(root, "shop/pricing.py", exclude=("shop/*",))
    for path in ("app.log", ".env", "blob.dat", "token_budget.json", "missing.py", "../x", "/etc/passwd", ".git/config", "shop"):
        assert not is_sendable(root, path), path


def test_empty_context_is_valid(tmp_path: Path) -> None:
    ctx = build_context(_git_repo(tmp_path, {}), "anything", 100)
    assert ctx == RepoContext(map_text="## Repository map (0 files)\n", files={}, tokens=10, skipped=[])


SECRET_FILES = [
    "prod.env", "deploy/.env.local", ".envrc", ".netrc", "home/.git-credentials", ".aws/credentials",
    "ops/.aws/config", "keys/id_rsa", "keys/id_ed25519", "keys/id_ecdsa", "keys/id_ecdsa.pub", "tls/server.pem",
    "tls/server.key", "gha-creds-1f2e3d4c5b6a7980.json", "gcp/my-service-account.json", ".npmrc", ".pypirc",
    ".docker/config.json", "infra/prod.tfvars", "config/secrets.yml", "firebase/serviceAccountKey.json",
    "app/.envrc", "config/.env.production",
    # the credential files of tools, by their default names (issue 20)
    "etc/ssh/ssh_host_ed25519_key", "keys/private.asc", "keys/service.pkcs8", "gcp/my-project-1a2b3c4d5e6f.json",
    "infra/prod.tfvars.json", "infra/prod.auto.tfvars.json", "k8s/admin.kubeconfig", "k8s/kubeconfig.yaml", ".s3cfg",
    ".boto", ".vault-token", ".config/gh/hosts.yml", ".cargo/credentials.toml", "rclone.conf", ".m2/settings.xml",
    "nuget.config", "NuGet.Config", "auth.json", "sftp-config.json", "secrets/.dockerconfigjson", ".git-credentials.bak",
    ".env_prod", ".bash_history", "wp-config.php", "config/database.yml", "certs/client.p12",
]
NOT_SECRET_FILES = [
    "config/settings.json", "docs/auth.md", "app/auth.py", "app/key_utils.py", "composer.json", "src/history.py",
    "config/database.py", "kube/deployment.yaml", "app/tokens.py", "infra/main.tf", "public/asc.md",
]


@pytest.mark.parametrize("path", NOT_SECRET_FILES)
def test_files_named_like_code_about_credentials_are_still_sent(tmp_path: Path, path: str) -> None:
    root = _git_repo(tmp_path, {**BASIC, path: "value = 1\n"})
    assert path in build_context(root, f"Tidy {path}", 50_000).files and is_sendable(root, path)


def test_credentials_inside_a_file_are_masked_and_the_dry_run_says_so(tmp_path: Path) -> None:
    found = samples()
    body = "".join(f"{assignment(rule, secret)}\n" for rule, secret in found.items())
    root = _git_repo(tmp_path, {**BASIC, "shop/settings.py": f"DEBUG = False\n{body}TIMEOUT = 30\n"})
    ctx = build_context(root, "Raise the TIMEOUT in shop/settings.py", 50_000)
    sent, text = ctx.files["shop/settings.py"], render_context(ctx)
    assert "TIMEOUT = 30" in sent and len(sent) == len((root / "shop/settings.py").read_text())
    for rule, secret in found.items():
        assert all(line not in text for line in secret.splitlines() if len(line) > 16), rule
    assert ctx.tokens == estimate_tokens(text) and ctx.tokens <= 50_000
    said = describe(ctx)
    assert "secrets masked in shop/settings.py (they look like: line 2: private-key, " in said
    assert not is_sendable(root, "shop/settings.py")  # named later whole, it is withheld


def test_a_credential_in_a_large_files_excerpt_is_masked(tmp_path: Path) -> None:
    token = samples()["github-pat"]
    filler = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n" for i in range(1500))
    big = f"{filler}def checkout_discount(total):\n    GITHUB = '{token}'\n    return total\n{filler}"
    root = _git_repo(tmp_path, {**BASIC, "shop/big.py": big})
    ctx = build_context(root, "Change checkout_discount in shop/big.py", 20_000)
    assert "shop/big.py" in ctx.excerpts and "checkout_discount" in ctx.excerpts["shop/big.py"]
    assert token not in render_context(ctx) and "*" * len(token) in ctx.excerpts["shop/big.py"]
    assert ctx.masked == {"shop/big.py": "line 4502: github-pat"}


@pytest.mark.parametrize("path", SECRET_FILES)
def test_tracked_files_that_usually_hold_secrets_are_never_sent(tmp_path: Path, path: str) -> None:
    root = _git_repo(tmp_path, {**BASIC, path: f"token={SECRET}\n"})
    ctx = build_context(root, f"Rotate the credentials in {path}", 50_000)
    assert SECRET not in render_context(ctx)
    assert path in ctx.skipped and path not in ctx.files
    assert not is_sendable(root, path)


def test_untracked_files_are_not_the_repository_s_own(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, BASIC)
    _write(root, {"shop/scratch.py": f"KEY = '{SECRET}'\n", "gha-creds-abc.json": SECRET})
    ctx = build_context(root, "Clean up shop/scratch.py", 50_000)
    text = render_context(ctx)
    assert SECRET not in text and "scratch.py" not in text and "gha-creds" not in text
    assert "shop/scratch.py" not in ctx.skipped  # not part of the repository at all
    assert not is_sendable(root, "shop/scratch.py")


def test_a_100_kb_task_still_finds_the_file_it_names(tmp_path: Path) -> None:
    """Runs of text with no separators made the old path regex quadratic (minutes at 100 KB);
    benchmarks/bench_context.py times 10 KB against 100 KB."""
    noise = "a" * 40_000 + " " + "x.y/" * 5_000 + " " + "fooBar_baz" * 2_000 + " " + "AAAAa" * 4_000
    task = f"{noise} then speed up shop/inventory.py"
    assert len(task) > 100_000
    ctx = build_context(_git_repo(tmp_path, BASIC), task, 10_000)
    assert next(iter(ctx.files)) == "shop/inventory.py"


def test_source_comes_before_tests_and_docs_unless_the_task_is_about_them(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "shop/cart.py": "def total(cart):\n    return sum(item.price for item in cart)  # discount later\n",
        "tests/test_cart.py": "def test_discount():\n    assert discount(10) == 9  # discount discount discount\n",
        "docs/discount.md": "# Discount\nHow the discount works: discount codes, discount rules.\n",
        "filler/data.py": "X = 1\n" * 400,
    }
    root = _git_repo(tmp_path, files)
    cap = 120  # room for the map and about one small file
    assert next(iter(build_context(root, "Apply the discount at checkout", cap).files)) == "shop/cart.py"
    assert next(iter(build_context(root, "Add a test for the discount", cap).files)) == "tests/test_cart.py"
    assert next(iter(build_context(root, "Document the discount rules", cap).files)) == "docs/discount.md"
    # a test or the docs said later describe the change, which is to source
    assert next(iter(build_context(root, "Fix the crash when a discount is used as a boolean test", cap).files)) == "shop/cart.py"
    assert next(iter(build_context(root, "Correct how the discount rounds, as the docs say", cap).files)) == "shop/cart.py"


@pytest.mark.parametrize("folder", ["playground/discount-app", "e2e", "fixtures", "internal/testdata"])
def test_test_apps_and_fixtures_come_after_the_source_they_exercise(tmp_path: Path, folder: str) -> None:
    files: dict[str, str | bytes] = {
        "shop/cart.js": "export function total(cart) {\n  return cart.reduce((sum, item) => sum + item.price, 0) // discount later\n}\n",
        f"{folder}/vite.config.js": "export default { discount: true, discountCodes: ['discount'] } // discount\n",
        "filler/data.js": "export const x = 1\n" * 400,
    }
    cap = 120  # room for the map and about one small file
    assert next(iter(build_context(_git_repo(tmp_path, files), "Apply the discount at checkout", cap).files)) == "shop/cart.js"


@pytest.mark.parametrize("source", ["shop/history.py", "cmd/license_discount.go", "shop/changes.js"])
def test_source_named_like_a_doc_file_is_still_source(tmp_path: Path, source: str) -> None:
    files: dict[str, str | bytes] = {
        source: "// the discount applied at checkout, once per discount code\n",
        "docs/discount.md": "# Discount\nHow the discount works: discount codes, discount rules, discount checkout.\n",
        "filler/data.py": "X = 1\n" * 400,
    }
    cap = 120  # room for the map and about one small file
    assert next(iter(build_context(_git_repo(tmp_path, files), "Apply the discount at checkout", cap).files)) == source


def test_identifiers_match_across_camel_and_snake_case(tmp_path: Path) -> None:
    root = _git_repo(
        tmp_path,
        {
            "orders/client.py": "def fetch_orders(session):\n    return session.get('/orders')\n",
            "orders/models.py": "class Order:\n    pass\n",
            "web/view.js": "export function showPage() { return 1; }\n",
        },
    )
    ctx = build_context(root, "Retry fetchOrders when the server times out", 10_000)
    assert next(iter(ctx.files)) == "orders/client.py"
    assert ctx.reasons["orders/client.py"].startswith("score ")


def test_every_file_is_scored_however_large_the_repository(tmp_path: Path) -> None:
    """No read budget: the one file that matches is found even behind megabytes of others."""
    files: dict[str, str | bytes] = {f"big/module_{i:03}.py": f"# module {i}\n" + "value = 1\n" * 5_000 for i in range(120)}
    files["zzz/last/refunds.py"] = "def issue_refund(order):\n    return order\n"
    ctx = build_context(_git_repo(tmp_path, files), "Log every refund issued", 2_000)
    assert next(iter(ctx.files)) == "zzz/last/refunds.py"


def test_describe_lists_files_sent_with_their_reason_and_names_what_was_held_back(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {**BASIC, ".env": SECRET})
    ctx = build_context(root, "Speed up shop/inventory.py", 10_000)
    lines = describe(ctx).splitlines()
    assert lines[0] == "  shop/inventory.py (25 tokens): named in the task"
    assert lines[-1] == "  not sent (secret-like, excluded, binary or over 200 KB): .env"
    assert SECRET not in describe(ctx)


def test_a_relevant_file_too_large_for_the_room_is_sent_as_an_excerpt(tmp_path: Path) -> None:
    body = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n\n" for i in range(2_000))
    core = body[: len(body) // 2] + "def apply_refund(order):\n    return order.total * -1\n\n\n" + body[len(body) // 2 :]
    root = _git_repo(tmp_path, {**BASIC, "shop/core.py": core})
    ctx = build_context(root, "Round apply_refund to cents in shop/core.py", 8_000)
    assert "shop/core.py" not in ctx.files
    excerpt = ctx.excerpts["shop/core.py"]
    assert "def apply_refund(order):\n    return order.total * -1\n" in excerpt
    assert "left out\n" in excerpt and len(excerpt) < len(core) // 2
    assert _carried(excerpt, core)  # every line shown is the file's line at the number the gap marks give
    assert ctx.reasons["shop/core.py"] == "named in the task; excerpt"
    text = render_context(ctx)
    assert "\n### shop/core.py (excerpt: " in text and ctx.tokens == estimate_tokens(text) <= 8_000
    assert "  shop/core.py (" in describe(ctx)


def _carried(excerpt: str, text: str) -> bool:
    """Whether each line of ``excerpt`` is the line of ``text`` its gap marks say it is (1-based numbers)."""
    lines = text.split("\n")
    number = 1
    for line in excerpt.splitlines():
        gap = re.fullmatch(r"… lines (\d+)-(\d+) left out", line)
        if gap:
            if int(gap.group(1)) != number:
                return False
            number = int(gap.group(2)) + 1
        elif lines[number - 1] != line:
            return False
        else:
            number += 1
    return number == len(lines) + (0 if text.endswith("\n") else 1)


LEDGER_CLASS = (
    '"""Money kept per account."""\n\nimport decimal\n\n\nclass Ledger:\n    """Accounts and their entries."""\n\n'
    + "".join(f"    def report_{i}(self, account):\n        total = sum(self.entries[account])\n        return total * {i}\n\n" for i in range(600))
    + '    @staticmethod\n    def apply_late_fee(balance, days_late):\n        """A fee for paying late.\n\n'
    + '        class Fee: not a definition, a docstring\n        """\n'
    + "        return balance * decimal.Decimal('0.01') * days_late\n\n"
    + "".join(f"    def audit_{i}(self, account):\n        return self.entries[account][-{i + 1}]\n\n" for i in range(600))
    + "\nDEFAULT_LEDGER = Ledger()\n"
)


def test_a_large_file_gives_the_function_the_task_is_about_with_the_class_it_is_in(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {**BASIC, "bank/ledger.py": LEDGER_CLASS})
    ctx = build_context(root, "Cap the late fee at ten days", 4_000)
    excerpt = ctx.excerpts["bank/ledger.py"]
    method = LEDGER_CLASS[LEDGER_CLASS.index("    @staticmethod") : LEDGER_CLASS.index("    def audit_0")]
    assert method.rstrip("\n") in excerpt  # the whole method, its decorator and docstring
    assert "\nclass Ledger:\n" in excerpt and excerpt.index("class Ledger:") < excerpt.index("def apply_late_fee")
    assert "left out\n" in excerpt and len(excerpt) < len(LEDGER_CLASS) // 4 and _carried(excerpt, LEDGER_CLASS)
    assert ctx.reasons["bank/ledger.py"].endswith("; excerpt") and ctx.tokens == estimate_tokens(render_context(ctx)) <= 4_000


LEDGER_C = (
    '#include "ledger.h"\n\n'
    + "".join(f"static int report_{i}(struct ledger *l)\n{{\n    int total = sum(l);\n\n    return total * {i};\n}}\n\n" for i in range(300))
    + "int\nledger_settle(struct ledger *l, long balance, int n)\n{\n    int i;\n\n#ifdef LEDGER_AUDIT\n"
    + "".join(f"    l->audit[{i}] = {i};\n    l->count += {i};\n\n" for i in range(150))
    + "#endif\nsettle:\n" + "".join(f"    l->pending[{i}] = {i};\n    l->count *= {i};\n\n" for i in range(80))
    + "    long fee = balance / 100 * days_since_due(l);  /* the late fee */\n\n"
    + "".join(f"    l->trail[{i}] = {i};\n    l->count -= {i};\n\n" for i in range(150))
    + "    return 0;\n}\n"
)


def test_a_c_function_is_a_unit_and_its_signature_comes_with_the_part_of_it_that_matches(tmp_path: Path) -> None:
    """C defines functions with no keyword: a line at column 0 opening a parameter list starts one (a prototype does not);
    a directive or a label at column 0 inside it does not end it."""
    ledger = LEDGER_C.replace('#include "ledger.h"\n', '#include "ledger.h"\n\nint ledger_settle(struct ledger *l, long balance, int n);\n')
    root = _git_repo(tmp_path, {**BASIC, "src/ledger.c": ledger})
    ctx = build_context(root, "Cap the late fee at ten days", 2_000)
    excerpt = ctx.excerpts["src/ledger.c"]
    assert "\nledger_settle(struct ledger *l, long balance, int n)\n{\n" in excerpt  # the signature, far above the match
    assert "    long fee = balance / 100 * days_since_due(l);  /* the late fee */\n" in excerpt
    assert "left out\n" in excerpt and len(excerpt) < len(ledger) // 4
    assert _carried(excerpt, ledger) and ctx.tokens == estimate_tokens(render_context(ctx)) <= 2_000


def test_a_c_function_the_task_names_puts_the_file_defining_it_first_not_its_prototype_or_callers(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {
        **BASIC,
        "src/main.c": '#include "ledger.h"\n\nint main(void)\n{\n' + "    ledger_open(\"a\");\n" * 5 + "    return 0;\n}\n",
        "src/ledger.h": "struct ledger;\n\nint ledger_open(const char *path);\n",
        "src/ledger.c": '#include "ledger.h"\n\nstatic int\nledger_open(const char *path)\n{\n    return path != 0;\n}\n',
    })
    ctx = build_context(root, "Make ledger_open fail on an empty path", 200)
    assert next(iter(ctx.files)) == "src/ledger.c" and ctx.reasons["src/ledger.c"] == "defines ledger_open"


@pytest.mark.parametrize(("suffix", "definition", "call"), [
    (".go", "func (l *Ledger) settleBalance(days int) int {\n\treturn days\n}\n", "\tl.settleBalance(1)\n"),
    (".kt", "class Ledger {\n    private suspend fun settleBalance(days: Int): Int {\n        return days\n    }\n}\n", "    ledger.settleBalance(1)\n"),
    (".kt", "internal fun <T> List<T>.settleBalance(): Int = size\n", "    rows.settleBalance()\n"),
    (".kt", "internal fun <K : Comparable<K>> Headers.Builder.settleBalance(): Int = size\n", "    builder.settleBalance()\n"),
    (".kt", "class Ledger {\n    @Synchronized @JvmName(\"settle\") override fun settleBalance(): Int = 0\n}\n", "    ledger.settleBalance()\n"),
    (".kt", "internal actual fun settleBalance(days: Int): Int = days\n", "    settleBalance(1)\n"),
    (".rb", "class Ledger\n  def self.settleBalance(days)\n    days\n  end\nend\n", "  Ledger.settleBalance(1)\n"),
    (".ts", "export const settleBalance = async (days: number): Promise<number> => {\n  return days\n}\n", "  await settleBalance(1)\n"),
    (".js", "const settleBalance = (\n  days,\n) => days\n", "  settleBalance(1)\n"),
    (".rs", "impl Ledger {\n    pub(crate) unsafe fn settleBalance(&self, days: u32) -> u32 {\n        days\n    }\n}\n", "    ledger.settleBalance(1);\n"),
    (".swift", "extension Ledger {\n    public mutating func settleBalance(days: Int) -> Int {\n        days\n    }\n}\n", "    ledger.settleBalance(days: 1)\n"),
    (".swift", "final class Ledger {\n    class var shared: Ledger { Ledger() }\n    fileprivate class func settleBalance() {}\n}\n", "    Ledger.settleBalance()\n"),
])
def test_a_function_or_method_the_task_names_puts_the_file_defining_it_first_in_other_languages(
    tmp_path: Path, suffix: str, definition: str, call: str
) -> None:
    """A Go method's receiver, Kotlin's modifiers (Multiplatform's `actual`) and receiver type, Ruby's `self.`, an arrow function kept in a const, Rust's `unsafe`,
    Swift's `mutating` and `class func`."""
    root = _git_repo(tmp_path, {**BASIC, f"app/main{suffix}": call * 5, f"app/ledger{suffix}": definition})
    ctx = build_context(root, "Make settleBalance round the days up", 300)
    assert next(iter(ctx.files)) == f"app/ledger{suffix}" and ctx.reasons[f"app/ledger{suffix}"] == "defines settleBalance"


@pytest.mark.parametrize(("path", "definition"), [
    ("src/Ledger.Balance.cs", "namespace Shop;\n\ninternal sealed partial class SettleBalance<TDays> : IDisposable\n{\n}\n"),
    ("src/Ledger.cs", "namespace Shop;\n\npublic readonly record struct SettleBalance(int Days);\n"),
    ("Sources/Ledger+Settle.swift", "public extension SettleBalance where Days == Int {\n    func round() -> Int { 0 }\n}\n"),
    ("Sources/Ledger.swift", "@MainActor\npublic protocol SettleBalance: Sendable {\n    var days: Int { get }\n}\n"),
    ("Sources/Store.swift", "public actor SettleBalance {\n}\n"),
])
def test_a_type_the_task_names_puts_the_file_declaring_it_first_in_c_sharp_and_swift(tmp_path: Path, path: str, definition: str) -> None:
    """C#'s `partial` classes (one type over several files), `readonly`, `record`; Swift's extensions, protocols and actors."""
    use = "    let balance = SettleBalance(days: 1)\n" if path.endswith(".swift") else "        var balance = new SettleBalance(1);\n"
    suffix = path[path.rfind("."):]
    root = _git_repo(tmp_path, {**BASIC, f"app/Main{suffix}": use * 5, path: definition})
    ctx = build_context(root, "Make SettleBalance round the days up", 300)
    assert next(iter(ctx.files)) == path and ctx.reasons[path] == "defines SettleBalance"


def test_the_map_outlines_go_methods_kotlin_and_swift_functions_and_arrow_functions_by_name(tmp_path: Path) -> None:
    padding = "\n" + "// padding\n" * 4_000
    files = {
        "server/serve.go": "type Server struct{}\n\nfunc (s *Server) Serve(l net.Listener) error {\n\treturn nil\n}\n" + padding,
        "client/Client.kt": (
            "data class Client(val url: String) {\n    override fun toString(): String = url\n}\nobject Registry {\n}\nfun interface Listener {\n}\n"
            + padding
        ),
        "web/handlers.ts": (
            "export const handle = async (req: Request) => {\n  const play = () => 1\n}\n"
            "const total = (a + b) * c\nconst ids = (rows || []).map((r) => r.id)\n" + padding
        ),
        "Sources/Ledger.swift": "extension Ledger {\n    class var shared: Ledger { Ledger() }\n    mutating func settle() {}\n}\n" + padding,
    }
    ctx = build_context(_git_repo(tmp_path, {**BASIC, **files}), "tidy up", 10_000)
    assert "  serve.go (43.1 KB): type Server, func Serve\n" in ctx.map_text  # a method by its name, not its receiver
    assert "  Client.kt (43.1 KB): class Client, fun toString, object Registry, interface Listener\n" in ctx.map_text
    # an arrow function; not a const holding a value, nor a local closure
    assert "  handlers.ts (43.1 KB): const handle\n" in ctx.map_text
    assert "  Ledger.swift (43.1 KB): extension Ledger, func settle\n" in ctx.map_text  # a `class var` is no class


def test_a_c_type_or_function_on_a_file_s_first_line_is_in_the_map_s_outline(tmp_path: Path) -> None:
    padding = "\n" + "/* padding */\n" * 4_000
    files = {"src/ledger.h": "struct ledger {\n    long balance;\n};\n" + padding, "src/open.c": "int ledger_open(void) {\n    return 0;\n}\n" + padding}
    ctx = build_context(_git_repo(tmp_path, {**BASIC, **files}), "tidy up", 10_000)
    assert "  ledger.h (54.7 KB): struct ledger\n" in ctx.map_text and "  open.c (54.7 KB): function ledger_open\n" in ctx.map_text


def test_a_rarely_named_helper_the_matching_method_calls_comes_with_it(tmp_path: Path) -> None:
    """The helper shares no word with the task and lies far away; its rare name links it to the method that matches."""
    helper = "    def _compound_penalty(self, balance):\n        return balance * decimal.Decimal('1.015')\n"
    ledger = (
        LEDGER_CLASS.replace("return balance * decimal.Decimal('0.01') * days_late", "return Ledger._compound_penalty(None, balance) * days_late")
        .replace("\nDEFAULT_LEDGER", helper + "\nDEFAULT_LEDGER")
    )
    root = _git_repo(tmp_path, {**BASIC, "bank/ledger.py": ledger})
    ctx = build_context(root, "Cap the late fee at ten days", 4_000)
    excerpt = ctx.excerpts["bank/ledger.py"]
    assert "def apply_late_fee(" in excerpt and helper.rstrip("\n") in excerpt and _carried(excerpt, ledger)
    assert ctx.tokens == estimate_tokens(render_context(ctx)) <= 4_000


def test_a_rarely_named_go_method_the_matching_function_calls_comes_with_it(tmp_path: Path) -> None:
    """As in Python: a method is linked by its name, not by its receiver's."""
    helper = "func (l *Ledger) compoundPenalty(balance int) int {\n\treturn balance * 3 / 2\n}\n"
    ledger = (
        "package bank\n\n"
        + "".join(f"func (l *Ledger) Report{i}(account string) int {{\n\ttotal := l.sum(account)\n\treturn total * {i}\n}}\n\n" for i in range(600))
        + "func ApplyLateFee(l *Ledger, balance int, daysLate int) int {\n\treturn l.compoundPenalty(balance) * daysLate\n}\n\n"
        + "".join(f"func (l *Ledger) Audit{i}(account string) int {{\n\treturn {i}\n}}\n\n" for i in range(300))
        + helper
    )
    ctx = build_context(_git_repo(tmp_path, {**BASIC, "bank/ledger.go": ledger}), "Cap the late fee at ten days", 3_000)
    excerpt = ctx.excerpts["bank/ledger.go"]
    assert "func ApplyLateFee(" in excerpt and helper.rstrip("\n") in excerpt and _carried(excerpt, ledger)


def test_the_room_goes_to_the_best_parts_of_several_files_not_one_file_whole(tmp_path: Path) -> None:
    """Two large files share the task's words: each gives its relevant function, rather than the first filling the room."""
    other = LEDGER_CLASS.replace("apply_late_fee", "schedule_late_fee_reminder").replace("class Ledger", "class Reminders")
    root = _git_repo(tmp_path, {**BASIC, "bank/ledger.py": LEDGER_CLASS, "bank/reminders.py": other})
    ctx = build_context(root, "Cap the late fee at ten days", 8_000)
    assert "def apply_late_fee(" in ctx.excerpts["bank/ledger.py"]
    assert "def schedule_late_fee_reminder(" in ctx.excerpts["bank/reminders.py"]


def test_a_linter_message_named_in_the_task_finds_the_checker_that_emits_it(tmp_path: Path) -> None:
    checker = "MSGS = {'W0601': ('Using variable before assignment', 'used-before-assignment', 'Emitted when...')}\n"
    root = _git_repo(tmp_path, {
        **BASIC,
        "lint/checkers/variables.py": checker + "def visit_name(node):\n    return node\n",
        "lint/checkers/assignment.py": "def check_assignment(node):\n    # assignment before use, assignment after use\n    return node\n",
        "lint/utils/before.py": "def before(node, assignment):\n    return node.used\n",
    })
    ctx = build_context(root, "Fix `used-before-assignment` false negative for nonlocals", 200)
    assert next(iter(ctx.files)) == "lint/checkers/variables.py"


def test_translation_catalogs_and_lock_files_come_after_source(tmp_path: Path) -> None:
    catalog = 'msgid "coverage"\nmsgstr "Abdeckung"\nmsgid "module contents not found"\nmsgstr ""\n' * 30
    files: dict[str, str | bytes] = {f"app/locale/{lang}/LC_MESSAGES/app.po": catalog for lang in ("de", "fr", "it")}
    files["app/locale/de/LC_MESSAGES/app.js"] = 'Documentation.addTranslations({"module contents not found": "coverage"});\n' * 20
    files["poetry.lock"] = '[[package]]\nname = "coverage"\ncontents = "module not found"\n' * 20
    files["app/ext/coverage.py"] = "def report(module):\n    contents = module.contents\n    return contents\n"
    root = _git_repo(tmp_path, files)
    ctx = build_context(root, "Fix a crash in the coverage extension when module contents are not found", 10_000)
    assert next(iter(ctx.files)) == "app/ext/coverage.py"
    ctx = build_context(root, "Update the German translation of the coverage messages", 10_000)
    assert next(iter(ctx.files)).startswith("app/locale/")


def _first_sent(ctx: RepoContext) -> str:
    """The first line of the dry run's list: the file the context ranks first, its tokens and why."""
    return describe(ctx).splitlines()[0]


def test_a_word_mixing_letters_and_digits_is_one_word(tmp_path: Path) -> None:
    """'i18n' is not 'i', '18' and 'n': the module named after it comes first."""
    root = _git_repo(tmp_path, {
        **BASIC,
        "site/transforms/i18n.py": "def translate(node):\n    return node\n",
        "site/report.py": "def report(node):\n    # a crash\n    return node\n",
    })
    ctx = build_context(root, "Fix #10579: i18n: crash in a raw directive", 10_000)
    assert _first_sent(ctx).startswith("  site/transforms/i18n.py (")


@pytest.mark.parametrize(
    ("task", "name"),
    [
        ("Do not crash if next() is called without arguments", "next"),
        ("Allow subclassing checkers instead of using ``__implements__``", "__implements__"),
        ("Fix a crash on invalid strings in `.format` calls", "format"),
    ],
)
def test_a_name_written_as_code_in_the_task_finds_its_definition(tmp_path: Path, task: str, name: str) -> None:
    """Calls (``next()``), dunders and names in backticks are names, like snake_case ones."""
    root = _git_repo(tmp_path, {
        **BASIC,
        "lint/builtins.py": f"def {name}(*args):\n    return args\n",
        "lint/crash.py": "def report_crash(arguments, strings, calls):\n    return 'crash: invalid arguments'\n",
    })
    ctx = build_context(root, task, 10_000)
    assert re.fullmatch(rf"  lint/builtins\.py \(\d+ tokens\): defines {name}", _first_sent(ctx))


def test_a_name_every_plugin_defines_points_at_none_of_them(tmp_path: Path) -> None:
    """``format`` defined by five reporters puts none of them first: the file about the task's words does."""
    files: dict[str, str | bytes] = {f"lint/reporters/r{i}.py": "def format(message):\n    return str(message)\n" for i in range(5)}
    files["lint/checkers/strings.py"] = "def check_format_strings(node):\n    # invalid format strings crash\n    return node\n"
    ctx = build_context(_git_repo(tmp_path, {**BASIC, **files}), "Fix a crash on invalid strings in `.format` calls", 10_000)
    assert _first_sent(ctx).startswith("  lint/checkers/strings.py (")
    assert "defines format" not in describe(ctx)


def test_a_module_shares_the_score_of_the_test_named_after_it(tmp_path: Path) -> None:
    """The test holds the symptom's words, its module may not: the dry run names the module first and the test as why."""
    root = _git_repo(tmp_path, {
        **BASIC,
        "shop/coupons.py": "def apply(order, coupon):\n    return order\n",
        "shop/orders.py": "def total(order):\n    # rejected orders count zero\n    return 0\n",
        "tests/test_coupons.py": "def test_stacked_vouchers_are_rejected():\n    # two vouchers stacked: rejected\n    assert True\n",
    })
    ctx = build_context(root, "Stacked vouchers are rejected", 10_000)
    assert re.fullmatch(r"  shop/coupons\.py \(\d+ tokens\): score [\d.]+, with its test tests/test_coupons\.py", _first_sent(ctx))


def test_a_test_named_after_a_module_in_full_lends_more_than_one_whose_name_only_ends_with_it(tmp_path: Path) -> None:
    """tests/test_coupons.py is about shop/coupons.py; tests/test_checkout_errors.py may not be about shop/errors.py."""
    root = _git_repo(tmp_path, {
        **BASIC,
        "shop/coupons.py": "def apply(order, coupon):\n    return order\n",
        "shop/errors.py": "class CheckoutError(Exception):\n    pass\n",
        "tests/test_coupons.py": "def test_stacked_vouchers():\n    # two vouchers stacked\n    assert True\n",
        "tests/test_checkout_errors.py": (
            "def test_stacked_vouchers_are_rejected():\n    # two vouchers stacked: rejected, stacked vouchers rejected, vouchers stacked\n"
            "    assert True\n"
        ),
    })
    ctx = build_context(root, "Stacked vouchers are rejected", 10_000)
    assert [line.split(" (")[0].strip() for line in describe(ctx).splitlines()[:2]] == ["shop/coupons.py", "shop/errors.py"]
    assert ctx.reasons["shop/errors.py"].endswith("with its test tests/test_checkout_errors.py")


def test_a_task_sharing_no_word_with_the_code_gets_source_before_configuration(tmp_path: Path) -> None:
    root = _git_repo(tmp_path, {
        ".travis.yml": "language: python\n",
        "setup.cfg": "[metadata]\nname = shop\n",
        "shop/core.py": "def checkout(cart):\n    return cart\n",
    })
    ctx = build_context(root, "Addressed a few review concerns", 10_000)
    assert list(ctx.files) == ["shop/core.py", ".travis.yml", "setup.cfg"]


def test_a_message_name_the_task_gives_puts_the_few_source_files_holding_it_first(tmp_path: Path) -> None:
    """``no-self-argument`` is defined by no def or class: the checker spelling it out comes first, not the file with more
    of the task's words, nor its test inputs."""
    root = _git_repo(tmp_path, {
        **BASIC,
        "lint/config/arguments.py": "def parse_arguments(method, arguments):\n    # variadic arguments of a method\n    return arguments\n" * 3,
        "lint/checkers/classes.py": "MESSAGES = {'E0211': 'no-self-argument'}\n",
        "tests/functional/no_self_argument.py": "class Shape:\n    def area():  # [no-self-argument]\n        pass\n",
    })
    ctx = build_context(root, "Report `no-self-argument` for a method with variadic arguments", 10_000)
    assert re.fullmatch(r"  lint/checkers/classes\.py \(\d+ tokens\): holds no-self-argument", _first_sent(ctx))


@pytest.mark.parametrize(("test", "module"), [("tests/test_domain_c.py", "site/domains/c.py"), ("tests/test_build_check.py", "site/builders/check.py")])
def test_a_test_named_after_a_module_in_the_singular_or_in_short_still_pairs(tmp_path: Path, test: str, module: str) -> None:
    """tests/test_domain_c.py is about site/domains/c.py; tests/test_build_check.py about site/builders/check.py."""
    root = _git_repo(tmp_path, {
        **BASIC,
        module: "def parse_declaration(text):\n    return text\n",
        "site/util/typing.py": "def stringify(annotation):\n    return str(annotation)\n",
        test: "def test_gnu_fundamental_types():\n    # fundamental GNU types such as __int128\n    assert True\n",
    })
    ctx = build_context(root, "Update fundamental types, including GNU exts", 10_000)
    assert re.fullmatch(rf"  {re.escape(module)} \(\d+ tokens\): score [\d.]+, with its test {re.escape(test)}", _first_sent(ctx))


@pytest.mark.parametrize(
    "test", ["src/test/java/shop/CouponsTest.java", "src/test/java/shop/CouponsTests.java", "src/test/java/shop/TestCoupons.java"]
)
def test_a_java_test_class_named_after_its_class_pairs_with_it(tmp_path: Path, test: str) -> None:
    """JUnit's naming (CouponsTest, CouponsTests, TestCoupons) says which class a test is about, as test_coupons.py does."""
    root = _git_repo(tmp_path, {
        "src/main/java/shop/Coupons.java": "public class Coupons {\n  Order apply(Order order, Coupon coupon) { return order; }\n}\n",
        "src/main/java/shop/Orders.java": "public class Orders {\n  // rejected orders count zero\n  int total(Order order) { return 0; }\n}\n",
        test: "class T {\n  @Test void stackedVouchersAreRejected() {\n    // two vouchers stacked: rejected\n  }\n}\n",
    })
    ctx = build_context(root, "Stacked vouchers are rejected", 10_000)
    module = "src/main/java/shop/Coupons.java"
    assert re.fullmatch(rf"  {re.escape(module)} \(\d+ tokens\): score [\d.]+, with its test {re.escape(test)}", _first_sent(ctx))


def test_the_function_matching_the_task_best_comes_even_from_a_file_ranked_below_others_that_fill_the_room(tmp_path: Path) -> None:
    """Files ranked above share the task's words all over and could fill the room; its best match lies in a long file ranked below them."""
    uploads = "".join(
        f"def upload_part_{i}(storage, part):\n    \"\"\"Upload one part to the storage.\"\"\"\n    return storage.put(part, {i})\n\n\n"
        for i in range(400)
    )
    steps = "".join(f"    wait_{i} = upload.backoff({i})\n" for i in range(30))
    filler = "".join(f"def invoice_line_{i}(order):\n{steps.replace('upload', 'order')}    return order.lines[{i}]\n\n\n" for i in range(150))
    quota = f"def retry_when_quota_exceeded(upload, storage):\n    \"\"\"Retry an upload the storage refused over quota.\"\"\"\n{steps}    return upload.retry()\n\n\n"
    billing = filler[: len(filler) // 2] + quota + filler[len(filler) // 2 :]
    backends = {f"storage/backend_{k}.py": f"# retry under a quota\n{uploads[: len(uploads) // 4]}" for k in range(4)}
    root = _git_repo(tmp_path, {**BASIC, **backends, "storage/uploads.py": uploads, "billing/invoices.py": billing})
    ctx = build_context(root, "Retry the upload to storage when the quota is exceeded", 8_000)
    assert ctx.reasons["billing/invoices.py"].endswith("; excerpt") and list(ctx.excerpts)[-1] == "billing/invoices.py"  # ranked below
    assert quota.rstrip("\n") in ctx.excerpts["billing/invoices.py"] and _carried(ctx.excerpts["billing/invoices.py"], billing)
    assert ctx.tokens == estimate_tokens(render_context(ctx)) <= 8_000


def test_a_long_table_with_no_blank_line_gives_the_entry_the_task_names_not_the_whole_table(tmp_path: Path) -> None:
    """A linter's table of messages is one statement, no blank line in it: cut at its entries, the one named goes alone."""
    entries = "".join(
        f'    "W{i:04}": (\n        "Message number {i} of the checker",\n        "message-number-{i}",\n'
        f'        "Emitted when rule {i} of the checker is broken.",\n    ),\n'
        for i in range(300)
    )
    checker = f"MSGS = {{\n{entries}}}\n\n\n" + "".join(f"def visit_node_{i}(node):\n    return node.kind == {i}\n\n\n" for i in range(400))
    root = _git_repo(tmp_path, {**BASIC, "lint/checker.py": checker})
    ctx = build_context(root, "Reword `message-number-217` to say which rule", 6_000)
    excerpt = ctx.excerpts["lint/checker.py"]
    wanted = entries[entries.index('    "W0217"') : entries.index('    "W0218"')]
    assert wanted in excerpt and _carried(excerpt, checker)
    assert '    "W0100": (\n' not in excerpt  # not the whole table: it is larger than the room
    assert ctx.tokens == estimate_tokens(render_context(ctx)) <= 6_000



AREA_FILES: dict[str, str | bytes] = {
    "crates/printer/src/sink.rs": "// spill the searcher's lines: each searcher spills, a searcher per line, searcher by searcher\npub fn spill() {}\n",
    "crates/searcher/src/reader.rs": "// spill what was read\npub fn read() {}\n",
    "crates/ignore/src/default_types.rs": "// spill file types\npub const TYPES: &[&str] = &[];\n",
    "crates/ignore/src/walk.rs": "pub fn walk() {}\n",
    "perf/bench.rs": "// spill\n",
}


@pytest.mark.parametrize(
    ("task", "first", "area"),
    [
        ("searcher: spill once", "crates/searcher/src/reader.rs", "searcher"),  # a file saying 'searcher' more is not in it
        ("fix(searcher): spill once", "crates/searcher/src/reader.rs", "searcher"),  # a conventional commit's scope
        ("Spill once", "crates/printer/src/sink.rs", ""),
        ("ignore/types: spill once", "crates/ignore/src/default_types.rs", "ignore/types"),  # a word of the file's name
        ("ignore/doc: spill once", "crates/ignore/src/default_types.rs", "ignore"),  # no file in ignore/doc: ignore
        ("perf: spill once", "perf/bench.rs", ""),  # a conventional-commit type, not an area
    ],
)
def test_the_area_a_subject_starts_with_favours_its_files(tmp_path: Path, task: str, first: str, area: str) -> None:
    """'searcher: ...' (Go, Rust, git, the kernel), 'fix(searcher): ...': the files of that crate, package or folder come first when close."""
    ctx = build_context(_git_repo(tmp_path, AREA_FILES), task, 10_000)
    assert next(iter(ctx.files)) == first
    assert ctx.reasons[first].endswith(f", in the task's area {area!r}") == bool(area)
