"""Running the repository's own checks, which run model-written code, where they cannot reach
the job's secrets, its network or anything the job runs later.

The bot's job holds the model keys and a token that can push. A check runs

* on a **copy** of the tree (``scratch``): ``commit`` fetched into a new repository whose git
  config names no remote and holds no credential, plus the edit's files;
* with an **environment built from an allow-list** (``environment``): the toolchain's variables,
  never one whose name or value is secret; temporary files, caches and git's global config
  point into the scratch directory;
* in a **sandbox** (``find``): new user, network, PID, mount, IPC and UTS namespaces made by
  ``unshare`` (util-linux), unprivileged where user namespaces are allowed, else through
  ``sudo -n`` (GitHub's hosted runners), then sealed by ``sandbox_init.py``: every mount
  read-only but the scratch directory, /tmp, /run and /dev/shm private and empty, the
  checkout's ``.git``, RUNNER_TEMP and credential files in HOME covered, loopback only, no
  capability, ``no_new_privs``. The job's processes (and their ``/proc/*/environ``) are not
  in the check's PID namespace;
* with a **timeout**: the whole process group (and with it the PID namespace) is killed;
* with **bounded output**: the head and the tail are kept, the middle is dropped.

Without a sandbox (``verify.sandbox: best_effort`` on a machine with neither) a check still
gets the copy, the allow-listed environment, the timeout and the bounds, but it can use the
network, read what the job's user can read (the parent's ``/proc/<pid>/environ`` included)
and write where that user can. docs: automation/README.md, "Checks before the pull request".
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.errors import SandboxUnavailableError, UnusableReplyError
from ..core.redact import looks_secret, secret_values
from . import gitops

INIT = Path(__file__).with_name("sandbox_init.py")
SETUP_FAILED = 125  # sandbox_init's exit status when it could not seal the sandbox
SETUP_PREFIX = "ai-orchestration sandbox: "
# Variables a check gets from the job (when set): the shell's and the toolchains' own, never a secret.
PASSED_VARIABLES = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "CI",
    "GITHUB_ACTIONS", "RUNNER_OS", "RUNNER_ARCH", "VIRTUAL_ENV", "CONDA_PREFIX", "pythonLocation", "Python_ROOT_DIR",
    "Python2_ROOT_DIR", "Python3_ROOT_DIR", "PKG_CONFIG_PATH", "LD_LIBRARY_PATH", "JAVA_HOME", "GOROOT", "GOPATH",
    "GOMODCACHE", "GOFLAGS", "GOTOOLCHAIN", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "DOTNET_ROOT",
    "NVM_DIR", "NODE_PATH",
)
# The PATH the checks get when set: the action saves the job's PATH in it before it sets up its
# own Python, so the checks find the project's interpreter and tools, not the bot's.
CHECKS_PATH = "AI_ORCHESTRATION_CHECKS_PATH"
# Where tools keep credentials in a home directory: covered inside the sandbox.
HOME_CREDENTIALS = (
    ".git-credentials", ".gitconfig", ".config/git", ".netrc", ".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc",
    ".docker", ".aws", ".azure", ".config/gcloud", ".kube", ".ssh", ".gnupg", ".config/gh", ".config/hub",
    ".cargo/credentials", ".cargo/credentials.toml", ".m2/settings.xml", ".gradle/gradle.properties", ".terraform.d",
)
# Private and empty inside the sandbox: other processes' sockets (docker's, ssh-agent's) and files live here.
SYSTEM_HIDDEN = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")
# Dependencies a set-up step installs into the checkout without tracking them: linked into the copy.
DEPENDENCY_DIRS = ("node_modules", ".venv", "venv")
OUTPUT_HEAD_BYTES = 64 * 1024
OUTPUT_TAIL_BYTES = 192 * 1024
KILL_GRACE_SECONDS = 3.0
PROBE_SECONDS = 30.0
MIN_COMMAND_SECONDS = 1.0  # a command with less time than this left is not started


@dataclass(frozen=True)
class Sandbox:
    """How checks are isolated here. ``prefix`` starts ``sandbox_init.py`` in new namespaces;
    ``name`` says how ("user namespaces", "sudo unshare", or "none"); ``missing`` says why a
    sandbox could not be had (empty when one was)."""

    name: str
    prefix: tuple[str, ...] = ()
    user: tuple[int, int] | None = None  # the job's uid and gid, when sudo makes the sandbox as root
    missing: str = ""

    @property
    def isolated(self) -> bool:
        return bool(self.prefix)


@dataclass(frozen=True)
class Outcome:
    """One command on one tree: exit code (None when the timeout killed it), seconds, output (bounded)."""

    command: str
    exit_code: int | None
    seconds: float
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


@dataclass(frozen=True)
class Workdir:
    """The scratch directory the sandbox keeps writable, and the copy of the tree in it."""

    root: Path
    tree: Path


_NAMESPACES = ("--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc")


def candidates(env: Mapping[str, str], uid: int, gid: int) -> list[Sandbox]:
    """The ways to make a sandbox here, best first: unshare with a user namespace (no privilege
    needed where the kernel allows it), then ``sudo -n unshare`` (GitHub's hosted runners)."""
    path = env.get("PATH", os.defpath)
    unshare = shutil.which("unshare", path=path)
    found = []
    if unshare:
        found.append(Sandbox("user namespaces", (unshare, "--user", "--map-root-user", *_NAMESPACES)))
        sudo = shutil.which("sudo", path=path)
        if sudo and uid != 0:
            found.append(Sandbox("sudo unshare", (sudo, "-n", unshare, *_NAMESPACES), user=(uid, gid)))
    return found


def find(env: Mapping[str, str], hide: Sequence[str], *, uid: int, gid: int) -> Sandbox:
    """The first candidate that seals a sandbox on this machine (each is tried for real), or
    ``Sandbox("none", missing=...)`` saying what each attempt answered and what would help."""
    tried = []
    with tempfile.TemporaryDirectory(prefix="ai-orchestration-probe-") as scratch:
        for sandbox in candidates(env, uid, gid):
            spec = {"probe": True, "keep": scratch, "hide": list(hide), "user": sandbox.user, "command": "", "cwd": scratch,
                    "env": {}}
            outcome = _execute([*sandbox.prefix, *_init_command(spec)], cwd=Path(scratch), env=_probe_env(env),
                               timeout=PROBE_SECONDS, clock=time.monotonic, command=sandbox.name)
            if outcome.passed:
                return sandbox
            tried.append(f"{sandbox.name}: {_first_line(outcome)}")
    if not tried:
        tried.append("unshare (util-linux) is not on PATH")
    return Sandbox("none", missing=(
        "; ".join(tried) + ". A sandbox needs unshare with user namespaces allowed (sysctl "
        "kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0) or passwordless sudo"
    ))


def _probe_env(env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in ("PATH", "LANG", "LC_ALL") if name in env}


def _first_line(outcome: Outcome) -> str:
    if outcome.timed_out:
        return f"no answer within {PROBE_SECONDS:.0f}s"
    lines = [line.strip() for line in outcome.output.splitlines() if line.strip()]
    return (lines[0] if lines else f"exit code {outcome.exit_code}")[:300]


def _init_command(spec: Mapping[str, object]) -> list[str]:
    return [sys.executable, "-I", "-S", str(INIT), json.dumps(spec)]


def hidden_paths(env: Mapping[str, str], repo: Path) -> list[str]:
    """What a check must not see: other processes' temporary files and sockets, the checkout's
    ``.git`` (its config holds the push token), RUNNER_TEMP (where actions/checkout v6 keeps it,
    and the job's step files), and credential files in HOME."""
    paths = [*SYSTEM_HIDDEN, str(repo.resolve() / ".git")]
    if env.get("RUNNER_TEMP"):
        paths.append(env["RUNNER_TEMP"])
    if env.get("HOME"):
        paths += [str(Path(env["HOME"]) / name) for name in HOME_CREDENTIALS]
    return paths


def tool_folders(path: str, hide: Sequence[str], interpreter: str = sys.executable) -> list[str]:
    """The checks' tools that sit inside a hidden folder (a virtual environment under /tmp, a
    tool cache under RUNNER_TEMP), to be shown again read-only: each such entry of ``path`` (a
    PATH value) and the folder of ``interpreter`` (the Python running the bot, which checks
    often name), widened to its parent while that is still inside the hidden folder (a venv's
    ``bin`` needs its ``lib``). A hidden folder itself is never shown again."""
    hidden = [Path(folder) for folder in hide]
    shown: list[str] = []
    for entry in [*path.split(os.pathsep), str(Path(interpreter).parent)]:
        if not entry or not os.path.isabs(entry):
            continue
        folder = Path(os.path.normpath(entry))
        inside = next((h for h in hidden if h in folder.parents), None)
        if inside is None:
            continue
        if inside in folder.parent.parents:
            folder = folder.parent
        if str(folder) not in shown:
            shown.append(str(folder))
    return shown


def environment(env: Mapping[str, str], extra: Sequence[str], workdir: Workdir) -> dict[str, str]:
    """A check's whole environment: ``PASSED_VARIABLES`` and ``extra`` (``verify.env``) from
    ``env`` (never a variable whose name says secret or whose value holds a secret value), PATH
    from CHECKS_PATH when set, and temporary files, caches and git's global config inside the
    scratch directory."""
    secrets = secret_values(env)
    source = {**env, "PATH": env.get(CHECKS_PATH) or env.get("PATH", os.defpath)}
    built = {
        name: source[name] for name in (*PASSED_VARIABLES, *extra)
        if name in source and not looks_secret(name) and not any(secret in source[name] for secret in secrets)
    }
    scratch = workdir.root
    built.update(
        TMPDIR=str(scratch / "tmp"), TMP=str(scratch / "tmp"), TEMP=str(scratch / "tmp"),
        XDG_CACHE_HOME=str(scratch / "cache"), GOCACHE=str(scratch / "cache" / "go-build"),
        npm_config_cache=str(scratch / "cache" / "npm"), GIT_CONFIG_GLOBAL=str(scratch / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1", NO_COLOR="1",
    )
    return built


@contextmanager
def scratch(repo: Path, commit: str, changes: Mapping[str, bytes | None], env: Mapping[str, str]) -> Iterator[Workdir]:
    """A scratch directory holding a copy of ``commit`` with ``changes`` (path -> bytes, None
    deletes) applied, the checkout's untracked dependency folders (``DEPENDENCY_DIRS``) linked
    in; removed afterwards, whatever the checks left in it."""
    root = Path(tempfile.mkdtemp(prefix="ai-orchestration-checks-"))
    try:
        tree = root / "tree"
        gitops.export(repo, commit, tree, env)
        real_tree = tree.resolve()
        for path, content in changes.items():
            target = tree / path
            if not target.parent.resolve().is_relative_to(real_tree):
                raise UnusableReplyError(f"{path}: resolves outside the copy of the tree")
            if content is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        for name in DEPENDENCY_DIRS:
            if (repo / name).is_dir() and not os.path.lexists(tree / name):
                (tree / name).symlink_to((repo / name).resolve(), target_is_directory=True)
        for folder in ("tmp", "cache"):
            (root / folder).mkdir()
        (root / "gitconfig").write_text("[user]\n\tname = ai-orchestration checks\n\temail = checks@ai-orchestration.invalid\n")
        yield Workdir(root=root, tree=tree)
    finally:
        _remove(root)


def _remove(root: Path) -> None:
    """Delete the scratch directory, read-only folders (Go's module cache makes them) included."""
    for folder, _, _ in os.walk(root):
        try:
            os.chmod(folder, 0o700)
        except OSError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def run(
    sandbox: Sandbox, command: str, workdir: Workdir, env: Mapping[str, str], hide: Sequence[str], timeout: float,
    *, clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """``sh -c command`` at the top of the copy, in ``sandbox``, with exactly ``env``, killed
    with everything it started after ``timeout`` seconds (not started with less than
    MIN_COMMAND_SECONDS left). Paths into the copy show in the output relative to it, so two
    copies' outputs compare. Raises SandboxUnavailableError when the sandbox could not be sealed."""
    if timeout < MIN_COMMAND_SECONDS:
        return Outcome(command, None, 0.0, "(not started: no time left)")
    if not sandbox.isolated:
        argv = ["/bin/sh", "-c", command]
    else:
        spec = {"command": command, "cwd": str(workdir.tree), "env": dict(env), "hide": list(hide),
                "keep": str(workdir.root), "show": tool_folders(env.get("PATH", ""), hide), "user": sandbox.user}
        argv = [*sandbox.prefix, *_init_command(spec)]
    outcome = _execute(argv, cwd=workdir.tree, env=env, timeout=timeout, clock=clock, command=command)
    if sandbox.isolated and outcome.exit_code == SETUP_FAILED and outcome.output.startswith(SETUP_PREFIX):
        raise SandboxUnavailableError(f"the {sandbox.name} sandbox could not be set up for `{command}`: "
                                      f"{_first_line(outcome).removeprefix(SETUP_PREFIX)}")
    tree, scratch_dir = str(workdir.tree), str(workdir.root)
    output = outcome.output.replace(tree + "/", "").replace(tree, ".").replace(scratch_dir, "$SCRATCH")
    return replace(outcome, output=output)


def _execute(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float, clock: Callable[[], float], command: str,
) -> Outcome:
    """Run ``argv`` in a new session (its own process group), output bounded, killed at ``timeout``."""
    started = clock()
    try:
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    except OSError as error:
        return Outcome(command, 127, 0.0, f"cannot start {argv[0]}: {error.strerror or error}")
    assert process.stdout is not None
    output = _BoundedOutput()
    ends = started + timeout
    timed_out = not output.read(process.stdout.fileno(), lambda: ends - clock())
    if timed_out:
        _kill(process)
        output.read(process.stdout.fileno(), lambda: KILL_GRACE_SECONDS)  # what was written before the kill
    process.stdout.close()
    try:
        code = process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        _kill(process)
        code = process.wait()
    seconds = clock() - started
    if timed_out:
        return Outcome(command, None, seconds, output.text() + f"\n(killed after {timeout:.0f}s: the time allowed ran out)")
    return Outcome(command, code if code >= 0 else 128 - code, seconds, output.text())


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process group (the sandbox's first process among it, which takes its whole
    PID namespace along), and SIGTERM to the direct child, which sudo relays to unshare."""
    for send in (lambda: os.killpg(process.pid, signal.SIGKILL), lambda: process.send_signal(signal.SIGTERM)):
        try:
            send()
        except (ProcessLookupError, PermissionError):
            pass


class _BoundedOutput:
    """The first OUTPUT_HEAD_BYTES and the last OUTPUT_TAIL_BYTES of a stream, and how much was dropped."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def read(self, fd: int, left: Callable[[], float]) -> bool:
        """Read until end of file (True) or until ``left()`` seconds run out (False)."""
        while True:
            remaining = left()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return True
            self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        room = OUTPUT_HEAD_BYTES - len(self.head)
        self.head += chunk[:room]
        self.tail += chunk[room:]
        if len(self.tail) > OUTPUT_TAIL_BYTES:
            cut = len(self.tail) - OUTPUT_TAIL_BYTES
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> str:
        middle = f"\n… ({self.dropped:,} bytes of output left out) …\n".encode() if self.dropped else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")
