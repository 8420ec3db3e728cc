"""`simctl up` killed with SIGKILL while a wave of services is being forked: `down` must
still end every process of the project, and the next `up` (after `down`, or at once) must
find its ports free.

The kill lands in the window that used to orphan services: a service's log file exists
(it was forked) but state.json does not list it yet.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset

pytestmark = pytest.mark.slow


def holders(folder: Path) -> list[int]:
    """Pids of processes with a file open under `folder` (every service holds its log)."""
    found = []
    prefix = str(folder)
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}").startswith(prefix):
                    found.append(int(name))
                    break
            except OSError:
                continue
    return found


def wait_no_holders(folder: Path, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := holders(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.parametrize("then", ["down", "up"])
def test_up_killed_mid_wave_leaves_nothing_behind(tmp_path: Path, then: str) -> None:
    """Then `down` ends everything (the orphan included), or `up` clears what the killed
    one left and starts the stack on the same ports."""
    project = f"crash{os.getpid()}"
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
           "SIMCTL_PROJECT": project}
    folder = tmp_path / project
    offset = str(free_port_offset())

    def sim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "simctl", *args, "--port-offset", offset]
                              if args[0] == "up" else [sys.executable, "-m", "simctl", *args],
                              env=env, text=True, capture_output=True, timeout=120)

    up = subprocess.Popen([sys.executable, "-m", "simctl", "up", "--timing", "fast",
                           "--port-offset", offset], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        unrecorded: set[str] = set()
        deadline = time.monotonic() + 60
        while not unrecorded and up.poll() is None and time.monotonic() < deadline:
            try:
                recorded = set(json.loads((folder / "state.json").read_text())["processes"])
                logs = {p.stem for p in (folder / "logs").glob("*.log")}
            except (OSError, ValueError, KeyError):
                continue
            unrecorded = logs - recorded
            if not unrecorded:
                time.sleep(0.002)  # a wave takes tens of ms to fork: leave the cores to it
        assert unrecorded, f"never saw a service forked before it was recorded (up: {up.poll()})"
        up.send_signal(signal.SIGKILL)
        up.wait(10)
        time.sleep(0.5)  # the rest of the wave: the launcher forks what it was sent
        assert holders(folder)

        if then == "down":
            down = sim("down")
            assert down.returncode == 0, down.stderr
            assert wait_no_holders(folder) == []

        again = sim("up", "--timing", "fast")
        assert again.returncode == 0, again.stderr
    finally:
        if up.poll() is None:
            up.kill()
        sim("down")
        left = wait_no_holders(folder)
        for pid in left:  # only ours hold files in this test's folder
            os.kill(pid, signal.SIGKILL)
    assert left == []
