"""The checks' sandbox, driven for real: unshare, the init process, a copy of a real git repository.

Each test runs real commands through ``sandbox.run`` and reads what they could see and do.
Paths outside /tmp (the sandbox hides all of /tmp) live in a scratch folder under the project.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from automation.repo import gitops, sandbox
from automation.repo.sandbox import Sandbox, Workdir

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-proj-sandbox-test-secret-0123456789"


def found() -> Sandbox:
    return sandbox.find(os.environ, sandbox.hidden_paths(os.environ, ROOT), uid=os.getuid(), gid=os.getgid())


needs_sandbox = pytest.mark.skipif(not found().isolated, reason="no sandbox on this machine")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def outside_tmp() -> Iterator[Path]:
    """A folder outside /tmp (under the project), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=".sandbox-test-", dir=ROOT))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def repo(outside_tmp: Path) -> Path:
    """A checkout like actions/checkout leaves one: the push token in its git config."""
    path = outside_tmp / "checkout"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("X = 1\n")
    (path / "old.py").write_text("gone = True\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "seed")
    git(path, "config", "http.https://github.com/.extraheader", f"AUTHORIZATION: basic {SECRET}")
    (path / "node_modules").mkdir()
    (path / "node_modules" / "dep.js").write_text("module.exports = 1\n")
    return path


def env_for(repo: Path, home: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "OPENAI_API_KEY": SECRET,
            "GITHUB_TOKEN": "ghs_" + SECRET, "NPM_TOKEN": "npm_" + SECRET, "EDITOR": "vi", "CI": "true"}


def run(repo: Path, command: str, env: dict[str, str], timeout: float = 30, changes: dict | None = None) -> sandbox.Outcome:
    commit = gitops.resolve(repo, "HEAD", env)
    hide = sandbox.hidden_paths(env, repo)
    with sandbox.scratch(repo, commit, changes or {}, env) as workdir:
        return sandbox.run(found(), command, workdir, sandbox.environment(env, ["EDITOR"], workdir), hide, timeout)


def test_the_environment_is_an_allow_list_without_a_secret(tmp_path: Path) -> None:
    workdir = Workdir(root=tmp_path, tree=tmp_path / "tree")
    env = {"PATH": "/usr/bin", "HOME": "/home/runner", "OPENAI_API_KEY": SECRET, "GITHUB_TOKEN": "ghs_x" * 4,
           "ACTIONS_RUNTIME_TOKEN": "eyJ" * 10, "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/abcdefgh",
           "MY_SETTING": "on", "LEAKY": f"prefix-{SECRET}", "PYTHONPATH": "/action", "GOPATH": "/home/runner/go",
           "LD_PRELOAD": "/evil.so"}

    built = sandbox.environment(env, ["MY_SETTING", "LEAKY"], workdir)

    assert built["PATH"] == "/usr/bin" and built["HOME"] == "/home/runner" and built["GOPATH"] == "/home/runner/go"
    assert built["MY_SETTING"] == "on" and "LEAKY" not in built  # its value holds a secret
    for name in ("OPENAI_API_KEY", "GITHUB_TOKEN", "ACTIONS_RUNTIME_TOKEN", "DISCORD_WEBHOOK_URL", "PYTHONPATH", "LD_PRELOAD"):
        assert name not in built
    assert built["TMPDIR"] == str(tmp_path / "tmp") and built["GIT_CONFIG_GLOBAL"] == str(tmp_path / "gitconfig")
    # the action saves the job's PATH before it sets up the bot's own Python: the checks get the project's
    assert sandbox.environment({**env, "AI_ORCHESTRATION_CHECKS_PATH": "/opt/py311/bin:/usr/bin"}, [], workdir)["PATH"] == \
        "/opt/py311/bin:/usr/bin"


def test_without_unshare_there_is_no_sandbox_and_the_reason_says_what_would_help(tmp_path: Path) -> None:
    none = sandbox.find({"PATH": str(tmp_path)}, [], uid=1000, gid=1000)

    assert not none.isolated and none.name == "none"
    assert "unshare (util-linux) is not on PATH" in none.missing and "passwordless sudo" in none.missing


def test_sudo_is_tried_after_user_namespaces_and_never_as_root(tmp_path: Path) -> None:
    for name in ("unshare", "sudo"):
        (tmp_path / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / name).chmod(0o755)

    tried = sandbox.candidates({"PATH": str(tmp_path)}, uid=1001, gid=121)

    assert [c.name for c in tried] == ["user namespaces", "sudo unshare"]
    assert tried[1].prefix[:2] == (str(tmp_path / "sudo"), "-n") and tried[1].user == (1001, 121)
    assert [c.name for c in sandbox.candidates({"PATH": str(tmp_path)}, uid=0, gid=0)] == ["user namespaces"]
    assert "user namespaces: exit code 1" in sandbox.find({"PATH": str(tmp_path)}, [], uid=1001, gid=121).missing


def test_the_copy_holds_the_edit_and_no_credential(repo: Path, outside_tmp: Path) -> None:
    env = env_for(repo, outside_tmp)
    commit = gitops.resolve(repo, "HEAD", env)
    with sandbox.scratch(repo, commit, {"app.py": b"X = 2\n", "new/mod.py": b"Y = 1\n", "old.py": None}, env) as workdir:
        tree = workdir.tree
        assert (tree / "app.py").read_text() == "X = 2\n" and (tree / "new" / "mod.py").read_text() == "Y = 1\n"
        assert not (tree / "old.py").exists()
        assert (tree / "node_modules" / "dep.js").read_text() == "module.exports = 1\n"  # installed by a set-up step
        config = (tree / ".git" / "config").read_text()
        assert "extraheader" not in config and SECRET not in config and "remote" not in config
        assert git(tree, "rev-parse", "HEAD").strip() == commit
    assert not workdir.root.exists()


@needs_sandbox
def test_a_check_sees_no_secret_no_credential_no_job_process_and_cannot_write_outside_its_copy(repo: Path, outside_tmp: Path) -> None:
    home = outside_tmp / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(SECRET)
    (home / ".git-credentials").write_text(f"https://x:{SECRET}@github.com\n")
    holder = subprocess.Popen(["sleep", "60"], env={"PATH": os.environ["PATH"], "HOLDER_SECRET": SECRET})
    try:
        outcome = run(repo, f"""
            env; echo ---
            cat .git/config {repo}/.git/config {home}/.git-credentials {home}/.docker/config.json 2>&1; echo ---
            cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo ---
            ls -d /proc/[0-9]* | wc -l; test -e /proc/{holder.pid} && echo "sees the job's process"
            grep -E 'CapEff|NoNewPrivs' /proc/self/status
            echo tampered >> {repo}/app.py 2>&1 || echo "checkout: read-only"
            echo ok > $TMPDIR/file && cat $TMPDIR/file && echo edited >> app.py && echo "copy: writable"
        """, env_for(repo, home))
    finally:
        holder.kill()

    assert outcome.passed, outcome.output
    assert SECRET not in outcome.output and "extraheader" not in outcome.output
    assert "EDITOR=vi" in outcome.output and "NPM_TOKEN" not in outcome.output
    assert "sees the job's process" not in outcome.output
    processes = int(outcome.output.split("---")[3].split()[0])
    assert processes <= 4  # its own PID namespace: the sandbox's first process, sh, ls and wc
    assert "CapEff:\t0000000000000000" in outcome.output and "NoNewPrivs:\t1" in outcome.output
    assert "checkout: read-only" in outcome.output
    assert "copy: writable" in outcome.output
    assert (repo / "app.py").read_text() == "X = 1\n"


def test_tools_inside_a_hidden_folder_are_the_ones_shown_again() -> None:
    hide = ["/tmp", "/home/runner/work/_temp", "/run"]
    path = "/tmp/ci/venv/bin:/usr/bin:/home/runner/work/_temp/tool/node/bin:/tmp/bin:relative/bin"
    assert sandbox.tool_folders(path, hide, interpreter="/opt/py/bin/python") == [
        "/tmp/ci/venv",  # a venv's bin needs its lib: the parent, still inside /tmp
        "/home/runner/work/_temp/tool/node",
        "/tmp/bin",  # its parent is /tmp itself, which stays hidden
    ]
    assert sandbox.tool_folders("/usr/bin", hide, interpreter="/tmp/x/venv/bin/python") == ["/tmp/x/venv"]
    assert sandbox.tool_folders("/usr/bin", hide, interpreter="/usr/bin/python3") == []


@needs_sandbox
def test_a_tool_under_tmp_runs_read_only_while_the_rest_of_tmp_stays_hidden(repo: Path, outside_tmp: Path) -> None:
    tools = Path(tempfile.mkdtemp(prefix="sandbox-tool-"))  # under /tmp, like a CI's fresh venv
    try:
        (tools / "bin").mkdir()
        (tools / "lib").mkdir()
        (tools / "lib" / "greeting.txt").write_text("hello from the tool\n")
        (tools / "bin" / "greet").write_text(f"#!/bin/sh\ncat {tools}/lib/greeting.txt\n")
        (tools / "bin" / "greet").chmod(0o755)
        other = tools.parent / f"{tools.name}-neighbour"
        other.mkdir()
        (other / "secret.txt").write_text(SECRET)
        env = {**env_for(repo, outside_tmp / "home"), "PATH": f"{tools / 'bin'}:{os.environ['PATH']}"}
        outcome = run(repo, f"""
            greet
            cat {other}/secret.txt 2>&1 || echo "neighbour: hidden"
            echo x > {tools}/lib/greeting.txt 2>&1 || echo "tool: read-only"
        """, env)
    finally:
        shutil.rmtree(tools, ignore_errors=True)
        shutil.rmtree(tools.parent / f"{tools.name}-neighbour", ignore_errors=True)

    assert "hello from the tool" in outcome.output, outcome.output
    assert "neighbour: hidden" in outcome.output and SECRET not in outcome.output
    assert "tool: read-only" in outcome.output


@needs_sandbox
def test_a_check_has_loopback_but_no_network(repo: Path, outside_tmp: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        outcome = run(repo, f"""{sys.executable} -c '
import socket
for target in (("127.0.0.1", {port}), ("1.1.1.1", 53)):
    try:
        socket.create_connection(target, timeout=2).close(); print("reached", target)
    except OSError as error:
        print("blocked", target, type(error).__name__)
own = socket.socket(); own.bind(("127.0.0.1", 0)); own.listen(); print("serves on loopback")
'""", env_for(repo, outside_tmp))
        with pytest.raises(TimeoutError):
            server.accept()

    assert "reached" not in outcome.output and outcome.output.count("blocked") == 2, outcome.output
    assert "serves on loopback" in outcome.output


@needs_sandbox
def test_the_timeout_kills_the_command_and_everything_it_started(repo: Path, outside_tmp: Path) -> None:
    marker = uuid.uuid4().hex
    sleeper = f"{sys.executable} -c 'import time; time.sleep(300)' {marker}"
    outcome = run(repo, f"echo started; setsid {sleeper} & {sleeper}", env_for(repo, outside_tmp), timeout=1.5)

    assert outcome.timed_out and outcome.exit_code is None
    assert 1.5 <= outcome.seconds < 10
    assert "started" in outcome.output and "killed after 2s" in outcome.output
    leftovers = [p for p in Path("/proc").glob("[0-9]*/cmdline") if marker in _read(p)]
    assert leftovers == []


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


@needs_sandbox
def test_output_keeps_its_head_and_tail_within_bounds_and_paths_relative_to_the_copy(repo: Path, outside_tmp: Path) -> None:
    outcome = run(repo, "echo FIRST; pwd; yes middle | head -c 2000000; echo; echo LAST; exit 3", env_for(repo, outside_tmp))

    assert outcome.exit_code == 3
    assert len(outcome.output) <= sandbox.OUTPUT_HEAD_BYTES + sandbox.OUTPUT_TAIL_BYTES + 100
    assert outcome.output.startswith("FIRST\n.\n") and outcome.output.rstrip().endswith("LAST")
    assert "bytes of output left out" in outcome.output
