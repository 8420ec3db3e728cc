"""The alerts a scenario names must fire during its symptoms and resolve after recovery.

A background thread polls the stack monitor's ``GET /api/v1/alerts`` (docs/alerts.md)
from the start of the fault phase to the end of the run and notes, per alert name, when
it was first seen firing and when it was no longer firing or pending afterwards. The
engine asks two questions: after the symptoms, "did each alert fire within the symptom
window?" (it waits up to the window's end), and after recovery, "did each resolve?" (it
waits up to ``resolve_wait``). A stack without a monitor skips both, with a note.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simctl.backends.base import Backend
from simctl.backends.project import base_url

POLL = 0.5
# How long an alert may take to resolve once recovery holds: its rule's range window
# (1m, 6 s with fast timing) must slide past the last bad sample, plus `for` and scrapes.
RESOLVE_WAIT = {"fast": 20.0, "heroku": 150.0}


@dataclass
class AlertCheck:
    name: str
    within: float  # seconds from t = 0 by which it must fire
    fired_at: float | None = None  # seconds from t = 0
    resolved_at: float | None = None  # seconds from t = 0
    pending_seen: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"alert": self.name, "within": self.within,
                "fired_at": None if self.fired_at is None else round(self.fired_at, 3),
                "resolved_at": None if self.resolved_at is None else round(self.resolved_at, 3)}


class AlertWatch:
    def __init__(self, url: str, checks: list[AlertCheck], t0: float) -> None:
        self.url = url.rstrip("/") + "/api/v1/alerts"
        self.checks = {c.name: c for c in checks}
        self.t0 = t0
        self.started_wall = time.time()
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alert-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(POLL)

    def poll(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:  # noqa: S310
                alerts = json.loads(response.read())["data"]["alerts"]
        except (OSError, ValueError, KeyError) as exc:
            self.errors += 1
            self.last_error = str(exc)
            return
        now = time.monotonic() - self.t0
        states: dict[str, set[str]] = {}
        for alert in alerts:
            state = alert["state"]
            if state == "firing" and _unix(alert.get("activeAt")) < self.started_wall - 1:
                state = "earlier"  # active before this run began: not this run's doing
            states.setdefault(alert["labels"].get("alertname", ""), set()).add(state)
        with self._lock:
            for name, check in self.checks.items():
                seen = states.get(name, set())
                if "firing" in seen:
                    if check.fired_at is None:
                        check.fired_at = now
                    check.resolved_at = None
                elif "pending" in seen or "earlier" in seen:
                    check.pending_seen = check.pending_seen or "pending" in seen
                    if check.fired_at is not None:
                        check.resolved_at = None
                elif check.fired_at is not None and check.resolved_at is None:
                    check.resolved_at = now

    def wait(self, done: Any, deadline: float) -> bool:
        """Poll until done(checks) or the monotonic deadline; the last answer."""
        while True:
            with self._lock:
                if done(list(self.checks.values())):
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL / 2)

    def stop(self) -> list[AlertCheck]:
        self._stop.set()
        self._thread.join(timeout=5)
        return list(self.checks.values())


def _unix(rfc3339: Any) -> float:
    try:
        return datetime.fromisoformat(str(rfc3339).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def monitor_url(backend: Backend) -> str | None:
    state = backend.state()
    if state is None:
        return None
    monitors = [p for p in state.processes.values() if p.role == "monitor"]
    return base_url(monitors[0]) if monitors else None


def start(run: Any) -> AlertWatch | None:
    """Begin watching the scenario's alerts (called as the fault phase begins)."""
    names = list(run.scenario.alerts)
    if not names:
        return None
    url = monitor_url(run.backend)
    if url is None:
        run.result.notes.append("the stack runs no monitor: the scenario's alerts were not "
                                "checked")
        return None
    # A run right after another (a control pass leaves its incident to the rollback) can find
    # the same alert still firing from before; it would not fire anew for this run.
    _wait_quiet(url, names, RESOLVE_WAIT.get(run.timing, 150.0))
    within = max((item.within for item in run.scenario.symptoms), default=0.0)
    lag = _rule_lags(run.timing)
    return AlertWatch(url, [AlertCheck(str(n), within + lag.get(str(n), 0.0)) for n in names],
                      time.monotonic())


def _wait_quiet(url: str, names: list[str], timeout: float) -> None:
    """Wait (at most ``timeout``) until none of ``names`` is firing or pending."""
    endpoint = url.rstrip("/") + "/api/v1/alerts"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint, timeout=2) as response:  # noqa: S310
                alerts = json.loads(response.read())["data"]["alerts"]
        except (OSError, ValueError, KeyError):
            return  # the watch itself reports an unreachable monitor
        if not any(a.get("labels", {}).get("alertname") in names for a in alerts):
            return
        time.sleep(POLL)


# Scrape and evaluation interval of the monitor per timing profile (docs/alerts.md).
INTERVAL = {"fast": 1.0, "heroku": 5.0}
TIME_SCALE = {"fast": 10.0, "heroku": 1.0}


def _rule_lags(timing: str) -> dict[str, float]:
    """How long after its condition holds each alert can fire: its rule's ``for`` (scaled as
    the monitor scales it) plus two intervals (a scrape to see the change, an evaluation to
    act on it). A symptom seen at the window's end still gets its alert this long after."""
    from simctl.monitor.rules import load_rules

    try:
        rules = load_rules(scale=TIME_SCALE.get(timing, 1.0))
    except Exception:  # a broken rule file fails `up` long before this; check nothing extra
        return {}
    interval = INTERVAL.get(timing, 5.0)
    return {rule.name: rule.duration + 2 * interval for rule in rules.rules()}


def check_fired(run: Any, watch: AlertWatch | None) -> str | None:
    """After the symptoms: wait until every alert fired, up to the symptom window's end.
    The failure reason, or None."""
    if watch is None:
        return None
    checks = list(watch.checks.values())
    deadline = watch.t0 + max(c.within for c in checks)
    if watch.wait(lambda cs: all(c.fired_at is not None for c in cs), deadline):
        return None
    missing = [c for c in checks if c.fired_at is None]
    return "; ".join(
        f"alert {c.name} did not fire within {c.within:g}s"
        + (" (it was pending)" if c.pending_seen else "")
        + (f" (monitor: {watch.last_error})" if watch.errors and watch.last_error else "")
        for c in missing)


def check_resolved(run: Any, watch: AlertWatch | None) -> str | None:
    """After recovery: wait until every alert resolved. The failure reason, or None."""
    if watch is None:
        return None
    wait = max(run.scenario.recovery.within, RESOLVE_WAIT.get(run.timing, 150.0))
    deadline = time.monotonic() + wait
    if watch.wait(lambda cs: all(c.resolved_at is not None for c in cs), deadline):
        return None
    return "; ".join(f"alert {c.name} still firing {wait:g}s after recovery"
                     for c in watch.checks.values() if c.resolved_at is None)
