"""An interrupted `simctl verify` on a stack it reused leaves it at the baseline it found:
the runbook's own change (web.1 taken out of rotation in sync) is undone too, not only
the faults; and Ctrl-C twice still exits 130, never "Aborted!" with 1 (docs/ci.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simctl.backends.http import call
from simctl.pytest_plugin import free_port_offset

FIXTURES = Path(__file__).parents[1] / "fixtures" / "engine"


def web_1_state(env: dict[str, str], project: str) -> str | None:
    state = json.loads((Path(env["SIMCTL_STATE_DIR"]) / project / "state.json").read_text())
    base = state["processes"]["sync"]["health_url"].rsplit("/health", 1)[0]
    routes: Any = call("GET", f"{base}/routes")
    return next((d["state"] for d in routes["apps"]["web"]["dynos"] if d["name"] == "web.1"),
                None)


@pytest.mark.slow
def test_ctrl_c_twice_after_mitigation_resets_a_reused_stack_and_exits_130(
        tmp_path: Path) -> None:
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"),
           "SIMCTL_RUNBOOKS_DIR": str(FIXTURES / "runbooks"), "NO_COLOR": "1",
           "COLUMNS": "200"}
    project = f"vint{os.getpid()}"
    sim = [sys.executable, "-m", "simctl"]
    up = subprocess.run([*sim, "up", "--timing", "fast", "--project", project, "--port-offset",
                         str(free_port_offset((11000, 6500, 5000, 3500)))], env=env, text=True,
                        capture_output=True, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        proc = subprocess.Popen(
            [*sim, "verify", str(FIXTURES / "interrupt" / "web-1-out.yaml"), "--project",
             project], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while web_1_state(env, project) != "down":  # the runbook step ran
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the runbook step never ran"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # impatient: the clean-up must still finish
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 130, out + err
        assert "Aborted!" not in out + err
        assert "reset to baseline" in out
        assert web_1_state(env, project) == "up"
    finally:
        subprocess.run([*sim, "down", "--project", project], env=env, capture_output=True,
                       timeout=60)
