"""The alerting path as a user drives it (docs/alerts.md): a fast stack, a hung dyno under
traffic, `simctl alerts` showing RouterRequestTimeouts firing within 15 s, and resolving
once the dyno is taken out of rotation; `simctl query` against the same history; a bad
rule file keeps `simctl up` from starting anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
            "SIMCTL_PROJECT": f"alerts{os.getpid()}"}


def sim(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def alerts(env: dict[str, str]) -> list[dict]:
    done = sim(env, "alerts", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def alert_states(env: dict[str, str]) -> dict[str, str]:
    return {a["labels"]["alertname"]: a["state"] for a in alerts(env)}


def wait_for(env: dict[str, str], check, timeout: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check(alert_states(env)):
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout}s: {alert_states(env)}")


def unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def load_started(env: dict[str, str]) -> float:
    """When the monitor first saw the traffic's pushed SLIs (the CLI's own start-up time,
    seconds on a busy machine, is not the platform's business)."""
    done = sim(env, "query", "sum(simctl_load_requests_total)", "--range", "2m",
               "--step", "500ms", "--json")
    assert done.returncode == 0, done.stderr
    return float(json.loads(done.stdout)["result"][0]["values"][0][0])


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that keeps every payload posted to it."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_hung_dyno_fires_and_resolves_router_request_timeouts(env, receiver):
    received, hook = receiver
    up = sim(env, "up", "--timing", "fast", "--port-offset", str(free_port_offset()),
             "--alert-webhook", hook, timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    traffic = None
    try:
        assert alert_states(env) == {}
        assert sim(env, "dyno", "set", "web.1", "hang").returncode == 0
        traffic = subprocess.Popen([sys.executable, "-m", "simctl", "traffic", "--rate", "50",
                                    "-d", "40", "--json"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        # Generous: the CLI polls slowly on a loaded machine; the monitor's own times count.
        wait_for(env, lambda s: s.get("RouterRequestTimeouts") == "firing", 60)
        fired = next(a for a in alerts(env) if a["labels"]["alertname"] ==
                     "RouterRequestTimeouts")
        assert unix(fired["firedAt"]) - load_started(env) <= 15
        table = sim(env, "alerts")
        assert "RouterRequestTimeouts" in table.stdout
        assert "h12-request-timeouts" in table.stdout  # the runbook id
        h12 = sim(env, "query", 'sum(router_requests_total{code="H12"})')
        assert h12.returncode == 0
        assert float(h12.stdout.split()[-1]) > 0
        pushed = sim(env, "query", "sum(simctl_load_requests_total)", "--json")
        assert float(json.loads(pushed.stdout)["result"][0]["value"][1]) > 0
        assert sim(env, "sync", "state", "web.1", "down").returncode == 0
        wait_for(env, lambda s: "RouterRequestTimeouts" not in s, 25)
        deadline = time.monotonic() + 10
        timeouts: list[str] = []
        while time.monotonic() < deadline and "resolved" not in timeouts:
            timeouts = [p["status"] for p in received
                        if p["groupLabels"] == {"alertname": "RouterRequestTimeouts"}]
            time.sleep(0.2)
        assert timeouts[0] == "firing"
        assert "resolved" in timeouts
        assert {p["version"] for p in received} == {"4"}
    finally:
        if traffic is not None:
            traffic.kill()
            traffic.wait(10)
        down = sim(env, "down", timeout=120)
        assert down.returncode == 0, down.stderr


def test_a_bad_rule_file_keeps_up_from_starting(env, tmp_path):
    rules = tmp_path / "bad.yaml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n"
                     "      - alert: B\n        expr: up\n        for: later\n")
    done = sim({**env, "SIMCTL_RULES": str(rules)}, "up", "--timing", "fast",
               "--port-offset", str(free_port_offset()))
    assert done.returncode == 2
    assert "bad.yaml:5: rule A: invalid expression" in done.stderr
    assert "bad.yaml:8: rule B: 'for': not a duration" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / env["SIMCTL_PROJECT"]).exists()
    check = sim(env, "alerts", "check", str(rules))
    assert check.returncode == 2
    assert check.stderr.count("error: ") == 2
