"""Alertmanager-style webhook notifications (payload version "4"; docs/alerts.md).

Each evaluation round whose alerts fired or resolved POSTs one payload per alert name,
the way an Alertmanager route grouped by ``alertname`` would, with a few quick retries.
A failing receiver never delays evaluation: posts run in the background and are logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp

from simctl.monitor.rules import Alert

ZERO_TIME = "0001-01-01T00:00:00Z"
log = logging.getLogger("simctl.monitor")


def rfc3339(t: float | None) -> str:
    if t is None:
        return ZERO_TIME
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def fingerprint(labels: dict[str, str]) -> str:
    text = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def payload(name: str, alerts: list[Alert], external_url: str) -> dict[str, Any]:
    """Alertmanager's webhook body for the changed alerts of one alert name."""
    items = [{
        "status": "resolved" if a.state == "resolved" else "firing",
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.active_at),
        "endsAt": rfc3339(a.resolved_at),
        "generatorURL": f"{external_url}/api/v1/alerts",
        "fingerprint": fingerprint(a.labels),
    } for a in alerts]
    common = dict(set.intersection(*(set(a.labels.items()) for a in alerts)))
    common_annotations = dict(set.intersection(*(set(a.annotations.items()) for a in alerts)))
    firing = any(i["status"] == "firing" for i in items)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "simctl",
        "groupLabels": {"alertname": name},
        "commonLabels": common,
        "commonAnnotations": common_annotations,
        "externalURL": external_url,
        "alerts": items,
    }


class Webhook:
    def __init__(self, url: str, external_url: str, attempts: int = 3) -> None:
        self.url = url
        self.external_url = external_url
        self.attempts = attempts
        self.sent = 0
        self.failed = 0
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, changed: list[Alert]) -> None:
        by_name: dict[str, list[Alert]] = {}
        for alert in changed:
            by_name.setdefault(alert.labels["alertname"], []).append(alert)
        for name, alerts in by_name.items():
            body = payload(name, alerts, self.external_url)
            task = asyncio.get_running_loop().create_task(self._post(body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, body: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        error = ""
        for attempt in range(self.attempts):
            try:
                async with self._session.post(self.url, json=body) as response:
                    if response.status < 300:
                        self.sent += 1
                        return
                    error = f"HTTP {response.status}"
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                error = str(exc) or type(exc).__name__
            if attempt + 1 < self.attempts:
                await asyncio.sleep(0.5 * (attempt + 1))
        self.failed += 1
        log.warning("at=webhook_failed url=%s error=%r", self.url, error)

    async def close(self) -> None:
        for task in list(self._tasks):
            try:
                await asyncio.wait_for(task, 2)
            except (TimeoutError, asyncio.CancelledError):
                pass
        if self._session is not None:
            await self._session.close()
