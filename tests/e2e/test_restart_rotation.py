"""`simctl restart web.1` under traffic: no client sees an H13 while other dynos can answer
(the dyno is out of the routers' rotation while it restarts: simctl/backends/rotation.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset

pytestmark = pytest.mark.slow


def test_restarting_a_dyno_under_traffic_shows_clients_no_h13(tmp_path: Path) -> None:
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
           "SIMCTL_PROJECT": f"rot{os.getpid()}"}
    offset = free_port_offset()

    def sim(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "simctl", *args], env=env,
                              text=True, capture_output=True, timeout=timeout)

    up = sim("up", "--timing", "fast", "--port-offset", str(offset))
    try:
        assert up.returncode == 0, up.stderr
        load = subprocess.Popen(  # bounded: 40/s for 8 s
            [sys.executable, "-m", "simctl", "traffic", "-r", "40", "-d", "8", "--json"],
            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2.5)
        restarted = sim("restart", "web.1")
        out, err = load.communicate(timeout=60)
        assert restarted.returncode == 0, restarted.stderr
        assert load.returncode == 0, err
        http = json.loads(out)["http"]
        assert http["completed"] >= 250
        assert "H13" not in http["by_code"], http
        assert http["connection_errors"] == 0, http
        assert http["ok"] >= 0.99 * http["completed"], http
        # and web.1 is back in rotation, answering
        routes = json.loads(sim("router", "routes", "router-1", "--json").stdout)
        states = {d["name"]: d["state"] for d in routes["apps"]["web"]["dynos"]}
        assert states["web.1"] == "up", states
    finally:
        sim("down")
