"""verify's alert watch reading a real HTTP API (docs/alerts.md, "Scenarios: alerts must
fire"): fired and resolved times, and an alert active before the run is not the run's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from simctl.monitor.webhook import rfc3339
from simctl.scenario.alert_watch import AlertCheck, AlertWatch


@pytest.fixture
def api() -> Iterator[tuple[list[dict], str]]:
    """A stand-in monitor answering GET /api/v1/alerts with whatever the test sets."""
    alerts: list[dict] = []

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps({"status": "success", "data": {"alerts": list(alerts)}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield alerts, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def alert(name: str, state: str, active_at: float) -> dict:
    return {"labels": {"alertname": name}, "annotations": {}, "state": state,
            "activeAt": rfc3339(active_at), "value": "1"}


def test_fired_then_resolved_and_earlier_alerts_ignored(api) -> None:
    alerts, url = api
    alerts.append(alert("Old", "firing", time.time() - 60))  # from a previous run
    watch = AlertWatch(url, [AlertCheck("New", 5.0), AlertCheck("Old", 5.0)], time.monotonic())
    try:
        time.sleep(0.6)
        alerts.append(alert("New", "pending", time.time()))
        time.sleep(0.6)
        alerts[1] = alert("New", "firing", time.time())
        assert watch.wait(lambda cs: cs[0].fired_at is not None, time.monotonic() + 5)
        alerts.clear()
        assert watch.wait(lambda cs: cs[0].resolved_at is not None, time.monotonic() + 5)
    finally:
        checks = watch.stop()
    new, old = checks
    assert new.pending_seen
    assert 0.5 < new.fired_at < new.resolved_at < 10
    assert old.fired_at is None  # firing all along, but active before the run
    assert not old.pending_seen
