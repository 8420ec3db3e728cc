"""Child processes in their own process groups, and how to end them for sure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from simctl.backends.state import SERVICE_UMASK, open_private, private_folder


def spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a service detached in a new session (it survives the simctl that started it)."""
    if command and command[0] in ("python", "python3"):
        command = [sys.executable, *command[1:]]
    private_folder(log_path.parent)
    with os.fdopen(open_private(log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, **env},
            start_new_session=True,
            umask=SERVICE_UMASK,
        )


def started_at(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0


def alive(pid: int, started: float = 0.0) -> bool:
    """True if pid runs and (when `started` is known) is the process we started, not a
    recycled pid."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not started or abs(proc.create_time() - started) < 0.5
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


# Every process of a project carries SIMCTL_OWNER=<its state folder> in its environment,
# from the moment it is forked: `down` finds by it what no state file lists yet (a
# service forked just before `up` was killed, before it could record the pid).
OWNER = "SIMCTL_OWNER"


def owner_env(folder: Path) -> dict[str, str]:
    return {OWNER: str(folder)}


def owned(folder: Path) -> list[int]:
    """Pids (of this user) whose environment marks them as processes of `folder`.

    /proc/PID/environ is the environment the process was started with: a service forked
    by the launcher shows the launcher's, which is why the launcher is started marked.
    """
    mark = b"\0" + f"{OWNER}={folder}".encode() + b"\0"
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:  # gone, or another user's
            continue
        if mark in b"\0" + env + b"\0":
            found.append(int(name))
    return found


def terminate_owned(folder: Path) -> list[int]:
    """End every marked process of `folder`: whole groups they lead, else themselves."""
    pids = owned(folder)
    groups = []
    for pid in pids:
        try:
            if os.getpgid(pid) == pid:
                groups.append(pid)
        except ProcessLookupError:
            continue
    terminate_groups(groups)
    for pid in set(pids) - set(groups):  # not a group leader: the group is not ours
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


class Zygote:
    """Client of simctl.backends.zygote: forks pre-loaded service processes."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simctl.backends.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **(env or {})},  # its children show this environment
            text=True,
            umask=SERVICE_UMASK,  # its children, the services, inherit it
        )
        self._ready = False

    def can_run(self, command: list[str]) -> bool:
        return (
            len(command) >= 3
            and command[0] in ("python", "python3")
            and command[1] == "-m"
            and command[2] in ("simctl", "simctl.platform")
        )

    def spawn(self, command: list[str], env: dict[str, str], log_path: Path) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        if not self._ready:
            if self.proc.stdout.readline().strip() != "ready":
                raise OSError("the service launcher failed to start")
            self._ready = True
        private_folder(log_path.parent)
        spec = {"argv": command[1:], "env": env, "log": str(log_path)}
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            raise OSError("the service launcher stopped")
        return int(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def terminate_groups(pgids: list[int], timeout: float = 2.0) -> None:
    """SIGCONT (a paused group cannot exit), SIGTERM, then SIGKILL what is left."""
    for pgid in pgids:
        signal_group(pgid, signal.SIGCONT)
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    remaining = list(pgids)
    while remaining and time.monotonic() < deadline:
        remaining = [g for g in remaining if _group_alive(g)]
        if remaining:
            time.sleep(0.02)
    for pgid in remaining:
        signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while any(_group_alive(g) for g in remaining) and time.monotonic() < deadline:
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process in the group? Zombies count as gone: an orphan's
    zombie waits for PID 1 to reap it, which can take seconds in a container."""
    _reap()
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _reap() -> None:
    """Collect our own exited children so they do not linger as zombies."""
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
    except ChildProcessError:
        return


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
