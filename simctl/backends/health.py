"""Waiting for services to become healthy, with the reason when they do not."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class HealthReport:
    ok: bool
    status: str  # ok, degraded, starting, down, unreachable
    reason: str = ""


def probe(url: str, timeout: float = 1.0) -> HealthReport:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read()
            code = resp.status
    except urllib.error.HTTPError as exc:
        body, code = exc.read(), exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HealthReport(False, "unreachable", str(reason))
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if set(data) == {"version"} and code == 200:  # the Toxiproxy API's /version
        return HealthReport(True, "ok", f"toxiproxy {data['version']}")
    status = str(data.get("status", "ok" if code == 200 else "down"))
    return HealthReport(code == 200, status, str(data.get("reason", "")))


def wait_healthy(urls: dict[str, str], timeout: float, alive=None) -> dict[str, HealthReport]:
    """Poll every URL until all answer 200; returns the last report of those that did not.

    `alive(name)` may say a process has exited, which ends its wait at once.
    """
    pending = dict(urls)
    last: dict[str, HealthReport] = {}
    deadline = time.monotonic() + timeout
    delay = 0.01
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            if alive is not None and not alive(name):
                last[name] = HealthReport(False, "exited", "the process exited")
                del pending[name]
                continue
            report = probe(url, timeout=0.5)
            if report.ok:
                del pending[name]
                last.pop(name, None)
            else:
                last[name] = report
        if pending:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
    return {name: last.get(name, HealthReport(False, "timeout")) for name in pending} | {
        name: r for name, r in last.items() if r.status == "exited"
    }
