"""The first process inside the checks' sandbox: it seals the view, then runs one command.

``sandbox.py`` starts it as ``python -I -S sandbox_init.py SPEC`` under ``unshare``, in new
user (or, through sudo, root-made), network, PID, mount, IPC and UTS namespaces with a fresh
/proc, so the check sees none of the job's processes. Before the command it

1. makes every mount read-only, so nothing the job runs later (the bot's own code, its
   Python, the actions' code, the checkout) can be changed by a check;
2. covers with an empty tmpfs the directories in ``hide`` (/tmp, /run, the checkout's
   ``.git``, RUNNER_TEMP, credential folders in HOME) and with /dev/null the files in it;
3. shows the folders in ``show`` (the checks' tools inside a hidden folder, such as a virtual
   environment under /tmp) again read-only, and ``keep`` (the scratch directory holding the copy
   of the tree) again writable, each at its own path;
4. brings up the loopback interface (the namespace has no other: no network);
5. gives up every privilege: back to the job's user when sudo made it root, all capabilities
   dropped, ``no_new_privs`` set (setuid programs like sudo stay powerless);
6. runs the command with ``sh -c`` in ``cwd`` with exactly ``env``, waits for it and reaps
   whatever it leaves; when this process ends the kernel ends every process in the namespace.

SPEC is JSON: ``command``, ``cwd``, ``env``, ``hide`` (paths), ``keep`` (a directory), ``show``
(directories, optional), ``user``
(``[uid, gid]`` to become, or null) and ``probe`` (true: set up, run nothing). Standard library
only, imports nothing of the bot. Exit status: the command's (128 + N when signal N ended it),
or 125 with one line on stderr naming what could not be set up.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import socket
import struct
import sys

SETUP_FAILED = 125
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
# statvfs flags a remount in a user namespace must keep (the kernel locks them; atime ones are kept by default).
_LOCKED_FLAGS = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC}
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """One step of sealing the sandbox failed: the message says which."""


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(error)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None, what: str) -> None:
    _check(_libc.mount(_bytes(source), _bytes(target), _bytes(kind), ctypes.c_ulong(flags), _bytes(data)), what)


def _mount_points() -> list[str]:
    """Every mount point this namespace sees, from /proc/self/mountinfo (octal escapes decoded)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        points = [line.split()[4] for line in table if line.strip()]
    return [point.encode().decode("unicode_escape").encode("latin-1").decode() for point in points]


def _remount(point: str, flags: int, what: str) -> None:
    """Change a mount's own flags, keeping those the kernel locks."""
    kept = os.statvfs(point).f_flag
    flags |= sum(flag for stat_flag, flag in _LOCKED_FLAGS.items() if kept & stat_flag)
    _mount(None, point, None, MS_REMOUNT | MS_BIND | flags, None, what)


def _under(path: str, folders: list[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def read_only_everywhere(hidden: list[str]) -> None:
    """Make every mount of this (private) namespace read-only. Skipped: mounts already read-only,
    mounts this user cannot even reach (their contents are out of reach anyway), and mounts
    under a folder about to be hidden; any other that refuses stops the set-up."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None, "cannot make the mounts private")  # never the job's own
    for point in sorted(set(_mount_points()), key=len):
        try:
            if os.statvfs(point).f_flag & os.ST_RDONLY:
                continue
        except OSError:
            continue  # gone, or not reachable by this user
        try:
            _remount(point, MS_RDONLY, f"cannot make {point} read-only")
        except SetupError:
            if not _under(point, hidden):
                raise


def hide(paths: list[str]) -> None:
    """An empty writable tmpfs over each directory, /dev/null over each other file; missing ones are skipped."""
    for path in sorted(paths, key=len):
        try:
            is_dir = os.path.isdir(path)
            exists = os.path.lexists(path) and os.path.exists(path)
        except OSError:
            continue
        if not exists:
            continue
        if is_dir:
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", f"cannot hide {path}")
        else:
            _mount("/dev/null", path, None, MS_BIND, None, f"cannot hide {path}")


def show_again(path: str, handle: int, *, writable: bool) -> None:
    """``path`` (opened as ``handle`` before anything was hidden) at its own path again: the
    scratch directory writable, a tool folder read-only."""
    os.makedirs(path, exist_ok=True)
    _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC, None, f"cannot show {path} again")
    flags = MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
    _remount(path, flags, f"cannot make {path} {'writable' if writable else 'read-only'}")


def loopback_up() -> None:
    """The namespace's only interface, up, so a check can serve and connect on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        try:
            flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
        except OSError as error:
            raise SetupError(f"cannot bring up the loopback interface: {error.strerror}") from None


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges(user: list[int] | None) -> None:
    """No capability left in any set, the job's own user when sudo made this root, and no way back."""
    for capability in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if user is not None and os.getuid() == 0 and user[0] != 0:
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(CAPABILITY_VERSION_3, 0)), data), "cannot drop capabilities")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "cannot set no_new_privs")


def run(command: str, cwd: str, env: dict[str, str]) -> int:
    """The command's exit status (128 + N for signal N); every other child is reaped meanwhile."""
    child = os.fork()
    if child == 0:
        try:
            os.chdir(cwd)
            os.execve("/bin/sh", ["sh", "-c", command], env)
        except OSError as error:
            os.write(2, f"ai-orchestration sandbox: cannot run the command: {error}\n".encode())
        os._exit(127)
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            return SETUP_FAILED
        if done == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    try:
        handle = os.open(spec["keep"], os.O_PATH | os.O_DIRECTORY)
        tools = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in spec.get("show", []) if os.path.isdir(path)}
        read_only_everywhere(spec["hide"])
        hide(spec["hide"])
        for path, tool in tools.items():
            show_again(path, tool, writable=False)
            os.close(tool)
        show_again(spec["keep"], handle, writable=True)
        os.close(handle)
        loopback_up()
        drop_privileges(spec["user"])
    except (SetupError, OSError) as error:
        os.write(2, f"ai-orchestration sandbox: {error}\n".encode())
        return SETUP_FAILED
    if spec.get("probe"):
        return 0
    return run(spec["command"], spec["cwd"], spec["env"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
