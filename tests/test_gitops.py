"""gitops against real repositories: a bare repository in tmp_path plays origin."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from automation.core.errors import GitError
from automation.repo import gitops
from tests.faked_clock import faked_clock_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A hermetic git environment: own global config, no system config, fixed identity."""
    home = tmp_path / "home"
    home.mkdir()
    config = home / "gitconfig"
    config.write_text("[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n")
    return {
        "PATH": os.environ["PATH"],
        **faked_clock_env(),
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path, env: dict[str, str]) -> Path:
    bare = tmp_path / "origin.git"
    git(tmp_path, env, "init", "--bare", "--quiet", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, env, "init", "--quiet", str(seed))
    (seed / "README.md").write_text("hello\n")
    (seed / "run.sh").write_text("#!/bin/sh\n")
    (seed / "run.sh").chmod(0o755)
    git(seed, env, "add", ".")
    git(seed, env, "commit", "--quiet", "-m", "initial")
    git(seed, env, "push", "--quiet", str(bare), "main")
    return bare


def clone(origin: Path, dest: Path, env: dict[str, str]) -> Path:
    git(dest.parent, env, "clone", "--quiet", str(origin), str(dest))
    return dest


@pytest.fixture
def work(tmp_path: Path, origin: Path, env: dict[str, str]) -> Path:
    return clone(origin, tmp_path / "work", env)


def remote_show(origin: Path, env: dict[str, str], spec: str) -> str:
    return git(origin, env, "show", spec)


def test_commit_and_push_new_branch_leaves_working_tree_alone(work: Path, origin: Path, env: dict[str, str]) -> None:
    (work / "scratch.txt").write_text("user's uncommitted work\n")
    head = git(work, env, "rev-parse", "HEAD")
    status = git(work, env, "status", "--porcelain")

    sha = gitops.commit_changes(
        work, "origin/main", {"src/new.py": b"print(1)\n", "README.md": b"changed\n"}, "Add new.py", "Bot", "bot@example.com", env
    )
    gitops.push(work, sha, "ai/add-new", env)

    assert git(work, env, "rev-parse", "HEAD") == head
    assert git(work, env, "status", "--porcelain") == status
    assert git(work, env, "symbolic-ref", "--short", "HEAD") == "main"
    assert (work / "README.md").read_text() == "hello\n"
    assert remote_show(origin, env, "ai/add-new:src/new.py") == "print(1)"
    assert remote_show(origin, env, "ai/add-new:README.md") == "changed"
    assert git(origin, env, "log", "-1", "--format=%an <%ae>|%s", "ai/add-new") == "Bot <bot@example.com>|Add new.py"
    assert git(origin, env, "rev-parse", "ai/add-new^") == head
    assert gitops.remote_branch_exists(work, "ai/add-new", env)
    assert not gitops.remote_branch_exists(work, "ai/other", env)


def test_free_branch_name_skips_taken_ones(work: Path, env: dict[str, str]) -> None:
    head = git(work, env, "rev-parse", "HEAD")
    assert gitops.free_branch_name(work, "ai/task", env) == "ai/task"
    for name in ("ai/task", "ai/task-2", "ai/task-list"):
        gitops.push(work, head, name, env)
    assert gitops.free_branch_name(work, "ai/task", env) == "ai/task-3"


def test_default_identity_is_the_actions_bot(work: Path, origin: Path, env: dict[str, str]) -> None:
    sha = gitops.commit_changes(work, "HEAD", {"a.txt": b"a"}, "a", env=env)
    gitops.push(work, sha, "ai/a", env)
    assert git(origin, env, "log", "-1", "--format=%an <%ae>", "ai/a") == f"{gitops.BOT_NAME} <{gitops.BOT_EMAIL}>"


def test_delete_and_executable_bit_kept(work: Path, origin: Path, env: dict[str, str]) -> None:
    sha = gitops.commit_changes(
        work, "HEAD", {"README.md": None, "run.sh": b"#!/bin/sh\necho hi\n", "gone.txt": None}, "Tidy", "Bot", "b@x", env
    )
    gitops.push(work, sha, "ai/tidy", env)

    assert git(origin, env, "ls-tree", "--name-only", "ai/tidy") == "run.sh"
    assert git(origin, env, "ls-tree", "ai/tidy", "run.sh").startswith("100755 ")
    assert (work / "README.md").exists()


def test_remote_file_and_default_branch(work: Path, env: dict[str, str]) -> None:
    assert gitops.fetch(work, "main", env) == git(work, env, "rev-parse", "HEAD")
    assert gitops.fetch(work, "no-such-branch", env, missing_ok=True) is None
    with pytest.raises(GitError, match="origin has no branch no-such-branch"):
        gitops.fetch(work, "no-such-branch", env)
    assert gitops.remote_file(work, "origin/main", "README.md", env) == b"hello\n"
    assert gitops.remote_file(work, "origin/main", "missing/file.json", env) is None
    assert gitops.remote_default_branch(work, env) == "main"
    git(work, env, "remote", "set-head", "origin", "--delete")
    assert gitops.remote_default_branch(work, env) == "main"  # via ls-remote --symref
    with pytest.raises(GitError, match="no commit named origin/nope"):
        gitops.remote_file(work, "origin/nope", "README.md", env)


def _merge_ledger(extra: str):
    """A render function that adds one run to whatever ledger is on the remote, recording what it saw."""
    seen: list[bytes | None] = []

    def render(current: bytes | None) -> bytes:
        seen.append(current)
        runs = json.loads(current)["runs"] if current else []
        return json.dumps({"runs": sorted(runs + [extra])}).encode()

    return render, seen


def test_ledger_retry_merges_what_another_clone_pushed(tmp_path: Path, work: Path, origin: Path, env: dict[str, str]) -> None:
    other = clone(origin, tmp_path / "other", env)
    render, seen = _merge_ledger("run-a")
    calls = 0

    def racing_render(current: bytes | None) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:  # another run commits its ledger while we are rendering
            (other / "token_budget.json").write_text(json.dumps({"runs": ["run-b"]}))
            git(other, env, "add", "token_budget.json")
            git(other, env, "commit", "--quiet", "-m", "other ledger")
            git(other, env, "push", "--quiet", "origin", "main")
        return render(current)

    sha = gitops.commit_file_with_retry(work, "main", "token_budget.json", racing_render, "Update ledger", env=env)

    assert seen == [None, json.dumps({"runs": ["run-b"]}).encode()]
    assert json.loads(remote_show(origin, env, "main:token_budget.json")) == {"runs": ["run-a", "run-b"]}
    assert git(origin, env, "rev-parse", "main") == sha
    assert git(work, env, "status", "--porcelain") == ""


def test_ledger_attempts_exhausted(tmp_path: Path, work: Path, origin: Path, env: dict[str, str]) -> None:
    other = clone(origin, tmp_path / "other", env)
    calls = 0

    def always_loses(current: bytes | None) -> bytes:
        nonlocal calls
        calls += 1
        git(other, env, "commit", "--quiet", "--allow-empty", "-m", f"other {calls}")
        git(other, env, "push", "--quiet", "origin", "main")
        return b"{}\n"

    with pytest.raises(GitError, match="moved on every one of 2 attempts"):
        gitops.commit_file_with_retry(work, "main", "token_budget.json", always_loses, "ledger", attempts=2, env=env)
    assert calls == 2


def test_unchanged_ledger_is_not_committed(work: Path, origin: Path, env: dict[str, str]) -> None:
    before = git(origin, env, "rev-parse", "main")
    sha = gitops.commit_file_with_retry(work, "main", "README.md", lambda current: current or b"", "noop", env=env)
    assert sha == before == git(origin, env, "rev-parse", "main")


def test_dedicated_ledger_branch_created_from_default(work: Path, origin: Path, env: dict[str, str]) -> None:
    main = git(origin, env, "rev-parse", "main")
    render, seen = _merge_ledger("run-a")
    gitops.commit_file_with_retry(
        work, "ai-ledger", "token_budget.json", render, "ledger", env=env, create_branch_from="main"
    )
    assert seen == [None]
    assert git(origin, env, "rev-parse", "ai-ledger^") == main
    assert git(origin, env, "rev-parse", "main") == main
    assert json.loads(remote_show(origin, env, "ai-ledger:token_budget.json")) == {"runs": ["run-a"]}

    with pytest.raises(GitError, match="branch ledger-x does not exist"):
        gitops.commit_file_with_retry(work, "ledger-x", "token_budget.json", render, "ledger", env=env)


def test_protected_default_branch_points_to_ledger_branch(work: Path, origin: Path, env: dict[str, str]) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'GH006: Protected branch update failed for refs/heads/main.' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(GitError) as caught:
        gitops.commit_file_with_retry(work, "main", "token_budget.json", lambda _: b"{}\n", "ledger", env=env)
    message = str(caught.value)
    assert "the default branch is protected" in message
    assert "`ledger.branch` in .github/ai-orchestration.yml" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("remote_says", "expected"),
    [
        ("nope", "could not push ai/x to origin: remote: nope"),
        ("Permission to owner/repo.git denied to github-actions[bot].", "contents: write"),
        ("refusing to allow a GitHub App to create or update workflow `.github/workflows/x.yml` without `workflows` permission", "workflows permission"),
    ],
)
def test_other_push_rejections_name_branch(work: Path, origin: Path, env: dict[str, str], remote_says: str, expected: str) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{remote_says}' >&2\nexit 1\n")
    hook.chmod(0o755)
    sha = gitops.commit_changes(work, "HEAD", {"a.txt": b"a"}, "a", "Bot", "b@x", env)
    with pytest.raises(GitError, match="ai/x") as caught:
        gitops.push(work, sha, "ai/x", env)
    assert expected in str(caught.value)


def test_credentials_scrubbed_from_errors(work: Path, env: dict[str, str]) -> None:
    git(work, env, "remote", "set-url", "origin", "https://x-access-token:SECRET@127.0.0.1:9/owner/repo.git")
    sha = gitops.commit_changes(work, "HEAD", {"a.txt": b"a"}, "a", "Bot", "b@x", env)
    for call in (
        lambda: gitops.push(work, sha, "ai/x", env),
        lambda: gitops.fetch(work, "main", env),
        lambda: gitops.remote_branch_exists(work, "main", env),
    ):
        with pytest.raises(GitError) as caught:
            call()
        assert "SECRET" not in str(caught.value)
        assert "origin" in str(caught.value)


def test_token_value_from_env_scrubbed(work: Path, env: dict[str, str]) -> None:
    env = {**env, "GITHUB_TOKEN": "ghs_abcdefghijklmnop"}
    git(work, env, "remote", "set-url", "origin", "/nonexistent/ghs_abcdefghijklmnop/repo.git")
    with pytest.raises(GitError) as caught:
        gitops.fetch(work, "main", env)
    assert "ghs_abcdefghijklmnop" not in str(caught.value)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", ".git/config", "a/../../b", ""])
def test_unsafe_paths_refused(work: Path, env: dict[str, str], path: str) -> None:
    with pytest.raises(GitError, match="invalid repository path"):
        gitops.commit_changes(work, "HEAD", {path: b"x"}, "m", "Bot", "b@x", env)


@pytest.mark.parametrize("path", ["./token_budget.json", "state//budget.json", "state/budget.json/", "a/./b"])
def test_a_path_git_would_silently_drop_is_refused_before_committing(work: Path, env: dict[str, str], path: str) -> None:
    with pytest.raises(GitError, match="invalid repository path"):
        gitops.commit_changes(work, "HEAD", {path: b"{}"}, "ledger", env=env)


def test_verify_file_reads_back_the_committed_blob(work: Path, env: dict[str, str]) -> None:
    sha = gitops.commit_changes(work, "HEAD", {"token_budget.json": b"{}\n"}, "ledger", env=env)
    gitops.verify_file(work, sha, "token_budget.json", b"{}\n", env)
    with pytest.raises(GitError, match="does not hold token_budget.json as written"):
        gitops.verify_file(work, sha, "token_budget.json", b"{\"runs\": []}\n", env)
    head = git(work, env, "rev-parse", "HEAD")
    with pytest.raises(GitError, match=r"does not hold token_budget.json as written \(no such file\)"):
        gitops.verify_file(work, head, "token_budget.json", b"{}\n", env)


def test_last_version_finds_a_deleted_file_even_in_a_shallow_clone(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    writer = clone(origin, tmp_path / "writer", env)
    (writer / "token_budget.json").write_text('{"spent": 1}\n')
    git(writer, env, "add", "token_budget.json")
    git(writer, env, "commit", "-qm", "ledger")
    written = git(writer, env, "rev-parse", "HEAD")
    git(writer, env, "rm", "-q", "token_budget.json")
    git(writer, env, "commit", "-qm", "delete the ledger")
    git(writer, env, "push", "-q", "origin", "main")
    shallow = tmp_path / "shallow"
    git(tmp_path, env, "clone", "-q", "--depth", "1", f"file://{origin}", str(shallow))

    assert gitops.last_version(shallow, "origin/main", "token_budget.json", env) == written
    assert gitops.remote_file(shallow, written, "token_budget.json", env) == b'{"spent": 1}\n'
    assert gitops.last_version(shallow, "origin/main", "never.json", env) is None


def test_symlink_on_path_names_a_linked_file_or_folder(tmp_path: Path, origin: Path, env: dict[str, str]) -> None:
    writer = clone(origin, tmp_path / "writer", env)
    (writer / "state").symlink_to("elsewhere")
    (writer / "token_budget.json").symlink_to("/etc/hostname")
    git(writer, env, "add", "-A")
    git(writer, env, "commit", "-qm", "links")
    head = git(writer, env, "rev-parse", "HEAD")

    assert gitops.symlink_on_path(writer, head, "token_budget.json", env) == "token_budget.json"
    assert gitops.symlink_on_path(writer, head, "state/budget.json", env) == "state"
    assert gitops.symlink_on_path(writer, head, "README.md", env) is None
    assert gitops.symlink_on_path(writer, head, "missing/budget.json", env) is None


def test_a_commits_files_message_and_the_remotes_branches(work: Path, origin: Path, env: dict[str, str]) -> None:
    bot = gitops.commit_changes(work, "origin/main", {"a.py": b"a = 1\n", "README.md": None}, "Bot work\n\nsummary\n\nOpened by x.", env=env)
    gitops.push(work, bot, "ai/a", env)
    gitops.push(work, bot, "ai/a-2", env)
    tip = gitops.fetch(work, "ai/a", env)
    assert tip == bot

    assert gitops.changed_files(work, tip, env) == [("README.md", "delete"), ("a.py", "create")]
    assert gitops.commit_message(work, tip, env) == (gitops.BOT_EMAIL, "Bot work\n\nsummary\n\nOpened by x.")
    assert gitops.remote_branches(work, "ai/a", env) == ["ai/a", "ai/a-2"]
    update = gitops.commit_changes(work, tip, {"a.py": b"a = 2\n"}, "more", env=env)
    assert gitops.changed_files(work, update, env) == [("a.py", "update")]


def test_worktree_is_a_checkout_of_the_commit_and_leaves_nothing_behind(work: Path, env: dict[str, str]) -> None:
    sha = gitops.commit_changes(work, "origin/main", {"a.py": b"a = 1\n"}, "a", env=env)
    status = git(work, env, "status", "--porcelain")
    with gitops.worktree(work, sha, env) as tree:
        assert (tree / "a.py").read_text() == "a = 1\n" and (tree / "README.md").exists()
        assert git(tree, env, "rev-parse", "HEAD") == sha
    assert not tree.exists()
    assert git(work, env, "worktree", "list").count("\n") == 0  # only the main checkout
    assert git(work, env, "status", "--porcelain") == status and not (work / "a.py").exists()
