"""A real Prometheus on the compose backend agrees with the embedded evaluator: the
slow-dyno incident by hand (web.1 hangs under traffic, then the runbook's mitigation takes
it out of the routes) makes both fire RouterRequestTimeouts, and both resolve it.

Needs a Docker engine and simctl:latest built with Prometheus inside (`simctl stack build`
on a host with Debian's prometheus package; .ci/run does both). Skipped without them,
unless SIMCTL_REQUIRE_DOCKER=1 makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(600)]

PROMETHEUS = "http://127.0.0.1:7900"
MONITOR = "http://127.0.0.1:7700"
ALERT = "RouterRequestTimeouts"


def _ready() -> str | None:
    if not shutil.which("docker"):
        return "docker CLI not installed (scripts/docker-setup.sh)"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "`docker info` failed: no Docker engine (scripts/docker-setup.sh starts one)"
    labels = subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}",
                             "simctl:latest"], capture_output=True, text=True, check=False)
    if labels.returncode != 0:
        return "image simctl:latest missing (run `simctl stack build`)"
    if "org.simctl.prometheus" not in labels.stdout:
        return "simctl:latest has no Prometheus (install prometheus, `simctl stack build`)"
    return None


@pytest.fixture(scope="module", autouse=True)
def docker_with_prometheus() -> None:
    reason = _ready()
    if reason is None:
        return
    if os.environ.get("SIMCTL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SIMCTL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def sim(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def firing(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5) as resp:
            alerts = json.loads(resp.read())["data"]["alerts"]
    except OSError:
        return False
    return any(a["labels"]["alertname"] == ALERT and a["state"] == "firing" for a in alerts)


def wait_for(condition, timeout: float) -> float | None:
    """Seconds until condition() held, or None when it did not within timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def test_real_prometheus_fires_and_resolves_with_the_evaluator(tmp_path: Path) -> None:
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
           "SIMCTL_PROJECT": f"cprom{os.getpid()}"}
    load: subprocess.Popen[bytes] | None = None
    up = sim(env, "up", "--backend", "compose", "--timing", "fast", "--prometheus")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert PROMETHEUS in up.stdout
        status = sim(env, "status").stdout
        assert " ok " in next(ln for ln in status.splitlines() if " prometheus " in ln), status
        has_monitor = " monitor " in status
        assert not firing(PROMETHEUS)
        assert sim(env, "dyno", "set", "web.1", "hang").returncode == 0
        # Load for the whole drill (at most 90 s at 30 requests/s), so that only the
        # mitigation can resolve the alert; stopped as soon as it has.
        load = subprocess.Popen([sys.executable, "-m", "simctl", "traffic", "--rate", "30",
                                 "-d", "90"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        fired = wait_for(lambda: firing(PROMETHEUS), 30)
        assert fired is not None, f"Prometheus did not fire {ALERT} within 30 s"
        if has_monitor:  # parity: the embedded evaluator fires the same alert
            assert wait_for(lambda: firing(MONITOR), 10) is not None
        # The runbook's mitigation: take the hanging dyno out of the routes.
        assert sim(env, "sync", "state", "web.1", "down").returncode == 0
        resolved = wait_for(lambda: not firing(PROMETHEUS), 30)
        assert resolved is not None, f"Prometheus still fires {ALERT} 30 s after mitigation"
        if has_monitor:
            assert wait_for(lambda: not firing(MONITOR), 15) is not None
    finally:
        if load is not None:
            load.terminate()
            load.wait(timeout=30)
        down = sim(env, "down")
    assert down.returncode == 0, down.stderr
    left = subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=com.docker.compose.project={env['SIMCTL_PROJECT']}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == []
