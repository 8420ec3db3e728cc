"""The local backend as a user drives it: up, status, logs, down; Ctrl-C and SIGTERM
during up; simctl killed mid-up and `down` still cleaning up; a taken port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

OFFSET = 6400
EDGE = 21201 + OFFSET
ROUTER_LINE = re.compile(
    r'heroku\[router\]: at=info method=GET path="/" host=web\.localhost(:\d+)? '
    r'request_id=[0-9a-f-]{36} fwd="127\.0\.0\.1" dyno=web\.[123] connect=\d+ms '
    r"service=\d+ms status=200 bytes=\d+ protocol=http"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
            "SIMCTL_PROJECT": f"life{os.getpid()}"}


def sim(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def state_pids(env: dict[str, str]) -> list[int]:
    path = Path(env["SIMCTL_STATE_DIR"]) / env["SIMCTL_PROJECT"] / "state.json"
    if not path.exists():
        return []
    return [p["pid"] for p in json.loads(path.read_text())["processes"].values()]


def running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running(pids)


def _filters_run_before_num(env) -> None:
    """`logs -n 1 --grep` is the last matching line, not the last line if it matches; the
    boot lines are long followed by router and app lines, so only the former finds them."""
    booted = sim(env, "logs", "-n", "1", "--grep", r"heroku\[web\.\d\]: Starting process")
    assert booted.returncode == 0, booted.stderr
    assert len(booted.stdout.splitlines()) == 1, booted.stdout
    deadline = time.monotonic() + 10
    received = sim(env, "drain", "logs", "main", "-n", "1", "--grep", "Starting process")
    while not received.stdout and time.monotonic() < deadline:  # delivery is asynchronous
        time.sleep(0.2)
        received = sim(env, "drain", "logs", "main", "-n", "1", "--grep", "Starting process")
    assert len(received.stdout.splitlines()) == 1, received
    assert "heroku[web." in received.stdout
    bad = sim(env, "drain", "logs", "nosuch")
    assert (bad.returncode, bad.stderr.splitlines()[0]) == (
        2, "error: no drain 'nosuch' (drains: audit, main)")


def test_up_curl_logs_status_down(env):
    up = sim(env, "up", "--timing", "fast", "--port-offset", str(OFFSET))
    pids = state_pids(env)
    try:
        assert up.returncode == 0, up.stderr
        assert f"http://127.0.0.1:{EDGE}" in up.stdout
        assert len(pids) >= 10
        req = urllib.request.Request(f"http://127.0.0.1:{EDGE}/", headers={"Host": "web.localhost"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["X-Dyno"].startswith("web.")
        deadline = time.monotonic() + 10
        logs = ""
        while not ROUTER_LINE.search(logs) and time.monotonic() < deadline:
            logs = sim(env, "logs", "-n", "50").stdout
            time.sleep(0.2)
        assert ROUTER_LINE.search(logs), logs
        _filters_run_before_num(env)
        status = sim(env, "status")
        assert status.returncode == 0
        assert "router-1" in status.stdout
        # HTTPS traffic: one TLS connection per request with --no-keepalive, reused without
        assert _https_accepted(env, "--no-keepalive") == 20
        assert _https_accepted(env) <= 3
        # stop/start: the service goes away and comes back as a new process
        assert sim(env, "stop", "dyno-2").returncode == 0
        assert "stopped" in _row(sim(env, "status").stdout, "web.2")
        assert sim(env, "start", "dyno-2").returncode == 0
        assert " ok " in _row(sim(env, "status").stdout, "web.2")
        started_twice = sim(env, "start", "dyno-2")
        assert (started_twice.returncode, started_twice.stderr) == (
            2, "error: web.2 is already running\n")
        for container_only in (("cpu", "router-1", "0.1"), ("disconnect", "router-1")):
            refused = sim(env, *container_only)
            assert refused.returncode == 2
            assert "needs the compose backend" in refused.stderr
        pids = state_pids(env)
    finally:
        down = sim(env, "down")
    assert down.returncode == 0
    assert wait_gone(pids) == []
    again = sim(env, "down")
    assert again.returncode == 0
    assert "not running" in again.stdout


def _https_accepted(env: dict[str, str], *flags: str) -> int:
    """Send 20 HTTPS requests with `simctl traffic`; how many connections router-1 took."""

    def accepted() -> int:
        out = sim(env, "metrics", "router-1", "--grep", "router_connections_accepted").stdout
        https = 'router_connections_accepted_total{scheme="https"}'
        line = next(x for x in out.splitlines() if x.startswith(https))
        return int(float(line.split()[-1]))

    before = accepted()
    run = sim(env, "traffic", "--router", "edge-tls.1", "-r", "20", "-d", "1", "--json", *flags)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["http"]["ok"] == 20
    return accepted() - before


def _row(table: str, service: str) -> str:
    return next(line for line in table.splitlines() if f" {service} " in line)


def test_second_up_reuses_the_same_stack_and_refuses_another(env):
    assert sim(env, "up", "--timing", "fast", "--port-offset", str(OFFSET)).returncode == 0
    pids = state_pids(env)
    try:
        # As asked (README: `up` after the quick start): nothing new starts, exit 0.
        same = sim(env, "up", "--timing", "fast", "--port-offset", str(OFFSET))
        assert same.returncode == 0, same.stderr
        assert "already up" in same.stdout
        assert "router.1 (http)" in same.stdout
        assert state_pids(env) == pids
        second = sim(env, "up", "--timing", "heroku", "--port-offset", str(OFFSET))
        assert second.returncode == 3
        assert "already up" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        sim(env, "down")
    assert wait_gone(pids) == []


def test_taken_port_is_a_clear_error(env):
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", EDGE))
        blocker.listen()
        result = sim(env, "up", "--timing", "fast", "--port-offset", str(OFFSET))
    assert result.returncode == 6
    assert f"port {EDGE} (proxy edge.1) is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert state_pids(env) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_up_stops_everything(env, signum, code):
    proc = subprocess.Popen([sys.executable, "-m", "simctl", "up", "--timing", "fast",
                             "--port-offset", str(OFFSET)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while len(state_pids(env)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = state_pids(env)
    assert started, "up never started a process"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert wait_gone(started) == []
    assert state_pids(env) == []


def test_killed_up_is_cleaned_by_down(env):
    proc = subprocess.Popen([sys.executable, "-m", "simctl", "up", "--timing", "fast",
                             "--port-offset", str(OFFSET)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while len(state_pids(env)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    pids = state_pids(env)
    assert pids
    down = sim(env, "down")
    assert down.returncode == 0
    assert wait_gone(pids) == []
    assert sim(env, "up", "--timing", "fast", "--port-offset", str(OFFSET)).returncode == 0
    sim(env, "down")
