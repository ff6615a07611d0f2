"""git itself: commits built with plumbing, pushes, and the ledger commit with merge-and-retry.

Nothing here touches the user's working tree, index or current branch: commits are built
in a temporary index (``GIT_INDEX_FILE``) on top of a ref and pushed as ``<sha>:refs/heads/<b>``.
Pushing uses whatever credentials the checkout already has (origin URL, git config); this
module never adds a token. Every error message is one line with credentials scrubbed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..core.errors import GitError, ProtectedBranchError, PushRefusedError
from ..core.redact import redact, secret_values

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
REMOTE = "origin"

# Substrings of git's (C-locale) push output that mean "someone else pushed first".
_STALE = ("non-fast-forward", "fetch first", "cannot lock ref", "incorrect old value", "stale info")
# GH006: classic branch protection; GH013: repository rulesets.
_PROTECTED = ("GH006: Protected branch update failed", "GH013: Repository rule violations")
_WORKFLOW_SCOPE = "without `workflows` permission"
_DENIED = ("returned error: 403", "Permission to ", "Write access to repository not granted")


def _environment(env: Mapping[str, str] | None, **extra: str) -> dict[str, str]:
    """The child environment: ``env`` (or, when None, the inherited one) plus fixed git settings.

    ``LC_ALL=C`` keeps git's messages in English so rejections can be recognised;
    ``GIT_TERMINAL_PROMPT=0`` makes a missing credential fail instead of hanging a CI job.
    """
    base = dict(os.environ if env is None else env)
    base.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", **extra)
    return base


def _scrub(text: str, env: Mapping[str, str] | None) -> str:
    """Remove ``user:token@`` from URLs and the values of known secret variables."""
    return redact(text, secret_values(os.environ if env is None else env))


def _summary(stderr: str, env: Mapping[str, str] | None) -> str:
    """The one line of git's stderr worth showing: the last fatal/error line, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no output from git"
    chosen = next(
        (line for line in reversed(lines) if line.startswith(("fatal:", "error:", "remote: error:"))),
        lines[-1],
    )
    return _scrub(chosen, env)[:300]


def _run(
    root: Path,
    args: Sequence[str],
    env: Mapping[str, str] | None,
    *,
    input: bytes | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``root``; the caller decides what a non-zero exit means."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            env=_environment(env, **(extra_env or {})),
            input=input,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH; install git 2.30 or newer") from None
    except NotADirectoryError:
        raise GitError(f"{root} is not a directory; pass the repository checkout") from None


def _git(
    root: Path,
    args: Sequence[str],
    env: Mapping[str, str] | None,
    doing: str,
    *,
    input: bytes | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> bytes:
    """Run git and return stdout, or raise GitError saying what failed."""
    result = _run(root, args, env, input=input, extra_env=extra_env)
    if result.returncode != 0:
        detail = _summary(result.stderr.decode("utf-8", "replace"), env)
        raise GitError(f"git could not {doing}: {detail}")
    return result.stdout


def _check_branch(branch: str) -> None:
    if not branch or branch.startswith(("-", "refs/")) or any(c in branch for c in " ~^:?*[\\") or ".." in branch:
        raise GitError(f"invalid branch name {branch!r}; use a plain name such as ai/my-task")


def _check_path(path: str) -> None:
    """Only the canonical spelling: git silently drops ``./x``, ``a//x`` or ``x/`` from an index,
    which would make a commit that does not hold the file (split by hand: PurePosixPath hides them)."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", "..", ".", ".git") for p in parts):
        raise GitError(f"invalid repository path {path!r}; use a normalised relative path such as docs/TASKS.md")


def resolve(root: Path, ref: str, env: Mapping[str, str] | None) -> str:
    """The commit sha ``ref`` points to."""
    if ref.startswith("-"):
        raise GitError(f"invalid ref {ref!r}")
    result = _run(root, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], env)
    if result.returncode != 0:
        raise GitError(f"no commit named {ref} in {root}; fetch it first or check the name")
    return result.stdout.decode().strip()


def require_remote(root: Path, env: Mapping[str, str] | None) -> None:
    """GitError saying what to do when the checkout has no ``origin``: everything a run fetches
    and pushes (the default branch, its work branches, the ledger) goes through it."""
    if _run(root, ["remote", "get-url", REMOTE], env).returncode != 0:
        raise GitError(
            f"{root} has no '{REMOTE}' remote: the bot reads the ledger from it and pushes its branches and pull "
            f"requests to it; add it with `git remote add {REMOTE} <your repository's URL>` (Actions' checkout sets it)"
        )


def fetch(root: Path, branch: str, env: Mapping[str, str] | None, *, missing_ok: bool = False) -> str | None:
    """Fetch ``branch`` from origin into ``refs/remotes/origin/<branch>`` and return its tip.

    A branch origin does not have is an error, or None with ``missing_ok``.
    """
    _check_branch(branch)
    refspec = f"+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}"
    result = _run(root, ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", REMOTE, refspec], env)
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        if "couldn't find remote ref" not in stderr:
            raise GitError(f"git could not fetch {branch} from {REMOTE}: {_summary(stderr, env)}")
        if missing_ok:
            return None
        raise GitError(f"{REMOTE} has no branch {branch}; check the branch name or push it first")
    return resolve(root, f"refs/remotes/{REMOTE}/{branch}", env)


def remote_branch_exists(root: Path, branch: str, env: Mapping[str, str] | None) -> bool:
    """Whether origin has ``branch`` (asks the remote, not the local tracking refs)."""
    _check_branch(branch)
    result = _run(root, ["ls-remote", "--exit-code", REMOTE, f"refs/heads/{branch}"], env)
    if result.returncode == 2:
        return False
    if result.returncode != 0:
        detail = _summary(result.stderr.decode("utf-8", "replace"), env)
        raise GitError(f"git could not list branches of {REMOTE}: {detail}")
    return True


def local_default_branch(root: Path, env: Mapping[str, str] | None) -> str | None:
    """Origin's default branch as the checkout knows it (``origin/HEAD``), with no network; None when unset."""
    local = _run(root, ["symbolic-ref", "--quiet", f"refs/remotes/{REMOTE}/HEAD"], env)
    prefix = f"refs/remotes/{REMOTE}/"
    if local.returncode == 0 and local.stdout.decode().strip().startswith(prefix):
        return local.stdout.decode().strip()[len(prefix):]
    return None


def known_remote_tip(root: Path, branch: str, env: Mapping[str, str] | None) -> str | None:
    """The tip of origin's ``branch`` as the last fetch or push left it here (no network), or None."""
    _check_branch(branch)
    result = _run(root, ["rev-parse", "--verify", "--quiet", f"refs/remotes/{REMOTE}/{branch}^{{commit}}"], env)
    return result.stdout.decode().strip() if result.returncode == 0 else None


def remote_default_branch(root: Path, env: Mapping[str, str] | None) -> str:
    """The default branch of origin: ``origin/HEAD`` if set locally, else asked from the remote."""
    local = local_default_branch(root, env)
    if local is not None:
        return local
    out = _git(root, ["ls-remote", "--symref", REMOTE, "HEAD"], env, f"ask {REMOTE} for its default branch").decode()
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/"):-len("\tHEAD")]
    raise GitError(f"{REMOTE} does not report a default branch; push one or set origin/HEAD with `git remote set-head origin -a`")


def free_branch_name(root: Path, name: str, env: Mapping[str, str] | None) -> str:
    """``name`` if origin has no such branch, else the first free ``name-2``, ``name-3``, ...

    A rerun of a task whose earlier branch still exists gets a fresh branch instead of a
    rejected push.
    """
    taken = set(remote_branches(root, name, env))
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def remote_branches(root: Path, prefix: str, env: Mapping[str, str] | None) -> list[str]:
    """Origin's branches whose names start with ``prefix``, sorted."""
    _check_branch(prefix)
    out = _git(root, ["ls-remote", "--heads", REMOTE, f"refs/heads/{prefix}*"], env, f"list branches of {REMOTE}").decode()
    return sorted(line.split("\t", 1)[1][len("refs/heads/"):] for line in out.splitlines() if "\t" in line)


def changed_files(root: Path, sha: str, env: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """(path, "create" | "update" | "delete") for each file commit ``sha`` changed against its parent.

    One commit against its parent, not a branch against a merge base: a shallow checkout
    (``fetch-depth: 1``) has no merge base to find.
    """
    out = _git(root, ["diff", "--name-status", "--no-renames", "-z", f"{sha}^", sha], env,
               f"list the files {sha[:12]} changed").decode("utf-8", "replace")
    fields = [field for field in out.split("\0") if field]
    actions = {"A": "create", "D": "delete"}
    return [(path, actions.get(status[:1], "update")) for status, path in zip(fields[::2], fields[1::2])]


def commit_message(root: Path, sha: str, env: Mapping[str, str] | None) -> tuple[str, str]:
    """(author email, full message) of commit ``sha``."""
    out = _git(root, ["log", "-1", "--format=%ae%x00%B", sha], env, f"read commit {sha[:12]}").decode("utf-8", "replace")
    email, _, message = out.partition("\0")
    return email, message.rstrip("\n")


@contextmanager
def worktree(root: Path, sha: str, env: Mapping[str, str] | None) -> Iterator[Path]:
    """A temporary detached checkout of ``sha`` (``git worktree``), removed afterwards; the
    user's own working tree, index and HEAD are untouched."""
    with tempfile.TemporaryDirectory(prefix="ai-orchestration-tree-") as scratch:
        path = Path(scratch) / "tree"
        _git(root, ["worktree", "add", "--quiet", "--detach", str(path), sha], env, f"check out {sha[:12]}")
        try:
            yield path
        finally:
            _run(root, ["worktree", "remove", "--force", str(path)], env)
            _run(root, ["worktree", "prune"], env)


def export(root: Path, commit: str, dest: Path, env: Mapping[str, str] | None) -> None:
    """A new repository at ``dest`` holding ``commit`` alone (fetched at depth 1 from ``root``),
    checked out detached. Nothing of ``root``'s config comes along: no remote, no credential
    (actions/checkout keeps its token in ``root``'s config), no hooks; LFS files stay pointers."""
    _git(dest.parent, ["init", "--quiet", str(dest)], env, f"create {dest.name} for the checks")
    _git(dest, ["-c", "protocol.version=2", "fetch", "--quiet", "--depth", "1", "--no-tags", "--no-write-fetch-head",
                str(root.resolve()), commit], env, f"copy {commit[:12]} for the checks")
    _git(dest, ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], env,
         f"check out {commit[:12]} for the checks", extra_env={"GIT_LFS_SKIP_SMUDGE": "1"})


def content_id(root: Path, commit: str, env: Mapping[str, str] | None, *, leaving_out: str) -> str:
    """Sixteen hex digits naming ``commit``'s files (paths, modes, contents) but ``leaving_out``:
    two commits with the same id hold the same files but that one (the ledger, which moves the
    default branch after every run). Needs only ``commit`` itself, so it works in a shallow clone."""
    listing = _git(root, ["ls-tree", "-r", "--full-tree", "-z", commit], env, f"list the files of {commit[:12]}")
    kept = [entry for entry in listing.split(b"\0") if entry and entry.split(b"\t", 1)[-1] != leaving_out.encode()]
    return hashlib.sha256(b"\0".join(kept)).hexdigest()[:16]


def remote_file(root: Path, ref: str, path: str, env: Mapping[str, str] | None) -> bytes | None:
    """The bytes of ``path`` at ``ref`` (e.g. ``origin/main`` after :func:`fetch`), or None if it is not there."""
    _check_path(path)
    sha = resolve(root, ref, env)
    out = _git(root, ["cat-file", "--batch"], env, f"read {path} at {ref}", input=f"{sha}:{path}\n".encode())
    header, _, rest = out.partition(b"\n")
    fields = header.split()
    if len(fields) == 2 and fields[1] == b"missing":
        return None
    if len(fields) != 3 or fields[1] != b"blob":
        raise GitError(f"{path} at {ref} is not a file; choose a file path")
    return rest[: int(fields[2])]


def restore_to_head(root: Path, path: str, env: Mapping[str, str] | None) -> bool:
    """Make the working tree's ``path`` what the checked-out commit has (delete it when that
    commit has none), so a later ``git pull`` that brings the file is not refused for an
    untracked or modified copy. True when the file was changed; nothing happens without a HEAD."""
    if _run(root, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], env).returncode != 0:
        return False
    wanted = remote_file(root, "HEAD", path, env)
    target = root / path
    current = target.read_bytes() if target.is_file() and not target.is_symlink() else None
    if current == wanted:
        return False
    if wanted is None:
        target.unlink()
    else:
        target.write_bytes(wanted)
    return True


def verify_file(root: Path, commit: str, path: str, expected: bytes, env: Mapping[str, str] | None) -> None:
    """Read ``path`` back from ``commit`` (a regular file, these exact bytes) or raise GitError:
    a commit that does not hold what was written must never be reported as recorded."""
    stored = remote_file(root, commit, path, env)
    if stored != expected:
        found = "no such file" if stored is None else f"{len(stored)} other bytes"
        raise GitError(f"the commit {commit[:12]} does not hold {path} as written ({found}); nothing was recorded there")


def symlink_on_path(root: Path, ref: str, path: str, env: Mapping[str, str] | None) -> str | None:
    """The first of ``path`` and its folders that is a symbolic link (mode 120000) at ``ref``, or None.

    git stores a link as a blob holding the target's name, so reading it would read the name,
    and a path through a linked folder reads as missing.
    """
    _check_path(path)
    sha = resolve(root, ref, env)
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        prefix = "/".join(parts[:end])
        out = _git(root, ["ls-tree", "-z", sha, "--", prefix], env, f"list {prefix} at {ref}")
        entry = next((item for item in out.split(b"\0") if item.endswith(b"\t" + prefix.encode())), b"")
        if entry.startswith(b"120000 "):
            return prefix
        if not entry:
            return None
    return None


def last_version(root: Path, ref: str, path: str, env: Mapping[str, str] | None) -> str | None:
    """The newest commit reachable from ``ref`` that added or changed ``path`` (its last written
    version, even after a later commit deleted it), or None when the history never held it.

    A shallow clone (actions/checkout's default) is deepened first: history it lacks would
    otherwise read as "never held".
    """
    _check_path(path)
    if _git(root, ["rev-parse", "--is-shallow-repository"], env, "inspect the clone").strip() == b"true":
        _git(root, ["fetch", "--quiet", "--no-tags", "--unshallow", REMOTE], env, f"fetch the history of {path}")
    out = _git(
        root, ["log", "-n1", "--full-history", "--diff-filter=AMT", "--format=%H", ref, "--", path], env,
        f"search the history of {path} on {ref}",
    )
    return out.decode().strip() or None


def commit_changes(
    root: Path,
    base_ref: str,
    changes: Mapping[str, bytes | None],
    message: str,
    author_name: str = BOT_NAME,
    author_email: str = BOT_EMAIL,
    env: Mapping[str, str] | None = None,
) -> str:
    """Commit ``changes`` (path -> new bytes, None = delete) on top of ``base_ref``; the new commit's sha.

    Uses a throwaway index so the user's index, working tree and HEAD stay exactly as they were.
    Executable bits of existing files are kept.
    """
    for path in changes:
        _check_path(path)
    base = resolve(root, base_ref, env)
    with tempfile.TemporaryDirectory(prefix="ai-orchestration-index-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git(root, ["read-tree", base], env, f"read the tree of {base_ref}", extra_env=index)
        modes = _modes(root, list(changes), env, index)
        lines = []
        for path, content in changes.items():
            if content is None:
                lines.append(f"0 {'0' * 40}\t{path}")
                continue
            blob = _git(root, ["hash-object", "-w", "--stdin"], env, f"store {path}", input=content).decode().strip()
            lines.append(f"{modes.get(path, '100644')} {blob}\t{path}")
        if lines:
            info = ("\n".join(lines) + "\n").encode()
            _git(root, ["update-index", "--index-info"], env, "stage the changes", input=info, extra_env=index)
        tree = _git(root, ["write-tree"], env, "write the tree", extra_env=index).decode().strip()
    identity = {
        "GIT_AUTHOR_NAME": author_name,
        "GIT_AUTHOR_EMAIL": author_email,
        "GIT_COMMITTER_NAME": author_name,
        "GIT_COMMITTER_EMAIL": author_email,
    }
    args = ["commit-tree", tree, "-p", base, "-F", "-"]
    return _git(root, args, env, "create the commit", input=message.encode(), extra_env=identity).decode().strip()


def _modes(root: Path, paths: list[str], env: Mapping[str, str] | None, index: Mapping[str, str]) -> dict[str, str]:
    """Modes of the given paths in the temporary index, so an executable stays executable."""
    if not paths:
        return {}
    out = _git(root, ["ls-files", "-s", "-z", "--", *paths], env, "list the staged files", extra_env=index)
    modes = {}
    for entry in out.split(b"\0"):
        if entry:
            meta, _, name = entry.decode("utf-8", "replace").partition("\t")
            if meta.startswith(("100644", "100755")):
                modes[name] = meta.split()[0]
    return modes


def _push(root: Path, sha: str, branch: str, env: Mapping[str, str] | None) -> subprocess.CompletedProcess[bytes]:
    _check_branch(branch)
    return _run(root, ["push", "--quiet", REMOTE, f"{sha}:refs/heads/{branch}"], env)


def _rejection(result: subprocess.CompletedProcess[bytes]) -> str:
    text = result.stdout.decode("utf-8", "replace") + "\n" + result.stderr.decode("utf-8", "replace")
    if any(marker in text for marker in _PROTECTED):
        return "protected"
    if _WORKFLOW_SCOPE in text:
        return "workflows"
    if any(marker in text for marker in _DENIED):
        return "denied"
    if any(marker in text for marker in _STALE):
        return "stale"
    return "other"


def _push_error(result: subprocess.CompletedProcess[bytes], branch: str, env: Mapping[str, str] | None) -> GitError:
    kind = _rejection(result)
    if kind == "protected":
        return GitError(f"{branch} is protected and rejected the push; push to another branch or relax its protection rules")
    if kind == "workflows":
        return GitError(
            f"the push to {branch} changes .github/workflows, which this token may not do; "
            "drop those edits or use a token with the workflows permission (AI_ORCHESTRATION_TOKEN)"
        )
    if kind == "denied":
        return GitError(
            f"the checkout's credentials may not push {branch} to {REMOTE}; give the job `permissions: contents: write` "
            "and keep persist-credentials on actions/checkout"
        )
    if kind == "stale":
        return GitError(f"{branch} on {REMOTE} has commits this run does not have; delete the branch or pick another name")
    lines = [line.strip() for line in result.stderr.decode("utf-8", "replace").splitlines()]
    reasons = [line for line in lines if line.startswith(("remote:", "! [")) and line != "remote:"]
    detail = " | ".join(reasons[:3]) if reasons else _summary("\n".join(lines), env)
    return GitError(f"git could not push {branch} to {REMOTE}: {_scrub(detail, env)[:300]}")


def push(root: Path, sha: str, branch: str, env: Mapping[str, str] | None) -> None:
    """Push commit ``sha`` to ``refs/heads/<branch>`` on origin (fast-forward only)."""
    result = _push(root, sha, branch, env)
    if result.returncode != 0:
        raise _push_error(result, branch, env)


def commit_file_with_retry(
    root: Path,
    branch: str,
    path: str,
    render: Callable[[bytes | None], bytes],
    message: str,
    *,
    attempts: int = 5,
    env: Mapping[str, str] | None,
    create_branch_from: str | None = None,
    author_name: str = BOT_NAME,
    author_email: str = BOT_EMAIL,
    pause: Callable[[int], None] | None = None,
) -> str:
    """Commit ``render(remote content)`` as ``path`` on origin's ``branch``; the sha now at the branch tip.

    ``render`` gets what is on the remote right now (None if absent, the branch included) so the
    caller can merge into it; when another run pushed in between, this fetches and renders again, up to
    ``attempts`` times, after ``pause(attempt)`` (from 0) when given: racing writers that back off
    apart stop colliding. If the branch is missing and ``create_branch_from`` (a branch on
    origin) is given, the branch is created from that branch's tip. Unchanged content is
    not committed.

    Raises PushRefusedError (ProtectedBranchError for GH006/GH013) when origin refuses the push
    for any reason but the branch having moved, and GitError when it moved on every attempt.
    """
    if attempts < 1:
        raise GitError("attempts must be at least 1")
    for attempt in range(attempts):
        if attempt and pause is not None:
            pause(attempt - 1)
        tip = fetch(root, branch, env, missing_ok=True)
        base = tip
        if base is None:
            if create_branch_from is None:
                raise GitError(f"branch {branch} does not exist on {REMOTE}; create it or choose an existing branch")
            base = fetch(root, create_branch_from, env, missing_ok=True)
            if base is None:
                raise GitError(f"cannot create {branch} from {create_branch_from}: {REMOTE} has no such branch")
        current = None if tip is None else remote_file(root, base, path, env)  # a new branch holds nothing yet
        content = render(current)
        if tip is not None and content == current:
            return tip
        sha = commit_changes(root, base, {path: content}, message, author_name, author_email, env)
        result = _push(root, sha, branch, env)
        if result.returncode == 0:
            verify_file(root, sha, path, content, env)
            return sha
        kind = _rejection(result)
        if kind == "protected":
            raise ProtectedBranchError(
                f"cannot push {path} to {branch}: the default branch is protected; set `ledger.branch` in "
                f".github/ai-orchestration.yml to keep {PurePosixPath(path).name} on a dedicated branch"
            )
        if kind != "stale":  # a hook, push protection, a ruleset with its own words, missing rights
            raise PushRefusedError(_push_error(result, branch, env).message)
    raise GitError(
        f"could not commit {path} to {branch}: the branch moved on every one of {attempts} attempts "
        "(other runs pushing at the same time); run again, or serialise runs with a workflow concurrency group"
    )


def remote_clone_dir(root: Path, name: str, url: str, env: Mapping[str, str] | None) -> Path:
    """A git directory inside ``root``'s own git directory (never in its work tree, never
    committed) whose ``origin`` is ``url``: where the bot fetches and pushes a ledger kept in
    another repository. Created on first use; its ``origin`` follows ``url``."""
    common = _git(root, ["rev-parse", "--path-format=absolute", "--git-common-dir"], env, "find the git directory").decode().strip()
    path = Path(common) / "ai-orchestration" / name
    if not (path / ".git").is_dir():
        path.mkdir(parents=True, exist_ok=True)
        _git(path, ["init", "--quiet"], env, f"create {path}")
    if _run(path, ["remote", "get-url", REMOTE], env).returncode == 0:
        _git(path, ["remote", "set-url", REMOTE, url], env, f"point {path} at the shared ledger")
    else:
        _git(path, ["remote", "add", REMOTE, url], env, f"point {path} at the shared ledger")
    return path


def push_refusal(root: Path, branch: str, env: Mapping[str, str] | None) -> str | None:
    """Whether origin lets these credentials push ``branch``: a dry-run push of its fetched tip
    to itself (git asks for the push service, so a read-only or missing credential is refused,
    and nothing is sent). None when allowed (a branch that moved since the fetch was reached, so
    the credentials passed), else git's one-line reason."""
    _check_branch(branch)
    tip = known_remote_tip(root, branch, env)
    if tip is None:
        raise GitError(f"{branch} was not fetched from {REMOTE}; fetch it first")
    result = _run(root, ["push", "--dry-run", "--quiet", REMOTE, f"{tip}:refs/heads/{branch}"], env)
    if result.returncode == 0 or _rejection(result) == "stale":
        return None
    return _summary(result.stderr.decode("utf-8", "replace"), env)
