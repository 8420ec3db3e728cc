"""`simctl drill start` that cannot start its drill leaves nothing half-started: the stack it
brought up for the drill is stopped again (docs/drills.md); bad input starts nothing."""

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

SIM = [sys.executable, "-m", "simctl"]
REPO = Path(__file__).resolve().parents[2]


def _run(env: dict[str, str], *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([*SIM, *args], env=env, text=True, capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"),
               "SIMCTL_PROJECT": f"dstart{os.getpid()}", "NO_COLOR": "1"}
    environ.pop("SIMCTL_DRILL_TOKEN", None)
    return environ


def test_a_drill_that_cannot_start_stops_the_stack_it_started(env: dict[str, str]) -> None:
    # interrupted while the conductor waits for the steady state: the drill is aborted,
    # and the stack `drill start` brought up for it must not stay up
    offset = free_port_offset()
    proc = subprocess.Popen([*SIM, "drill", "start", "slow-dyno", "--port-offset", str(offset)],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    drills = Path(env["SIMCTL_STATE_DIR"]) / env["SIMCTL_PROJECT"] / "drills"
    try:
        deadline = time.monotonic() + 90
        while not _phase_is(drills, "steady"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the conductor never reached its steady state"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            _run(env, "down", timeout=60)
    assert proc.returncode == 130, out + err
    assert "could not start" in err or "interrupted before it started" in err, err
    assert "stopped the stack" in err, err
    status = _run(env, "status", "--json", timeout=30)
    assert status.returncode != 0, status.stdout  # nothing runs any more
    assert "is not up" in status.stderr
    listed = _run(env, "drill", "list", "--json", timeout=30)
    assert [d["status"] for d in json.loads(listed.stdout)["drills"]] != ["running"], listed.stdout


def _phase_is(drills: Path, phase: str) -> bool:
    for path in drills.glob("*/drill.json"):
        try:
            return json.loads(path.read_text()).get("phase") == phase
        except ValueError:  # being written
            return False
    return False


@pytest.mark.parametrize("args", [
    ["no-such-scenario"],
    ["slow-dyno", "--delay", "soon"],
    ["slow-dyno", "--delay", "2m-30s"],
    ["--random", "--difficulty", "9"],  # click's usage error: its own format, exit 2
])
def test_bad_drill_start_input_is_exit_2_and_starts_nothing(
        env: dict[str, str], args: list[str]) -> None:
    done = _run(env, "drill", "start", *args, timeout=30)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") or "--difficulty" in lines[-1], (
        done.stderr)
    assert not (Path(env["SIMCTL_STATE_DIR"]) / env["SIMCTL_PROJECT"]).exists()
