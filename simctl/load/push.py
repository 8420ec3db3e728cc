"""Push a load run's SLIs to the stack's monitor, so they are series beside the platform's.

The monitor scrapes services, but a load run is short-lived and has no port, so it
pushes instead: every second it PUTs its counters in Prometheus's text format to
``PUT /metrics/job/load/instance/RUN`` (Pushgateway's path shape; docs/alerts.md). The
monitor adds them to each scrape round until the run stops pushing, then lets them go
stale. Series (``job="load"``, ``instance`` = the run):

- ``simctl_load_requests_total{outcome}``: ok, error (a response that is not 2xx/3xx),
  timeout, connection_error, unsent (the in-flight cap), cancelled
- ``simctl_load_router_codes_total{code}``: responses by X-Router-Code (H12, ...)
- ``simctl_load_in_flight``, ``simctl_load_latency_seconds{quantile}`` (0.5, 0.9, 0.99
  of the whole run so far)
- ``simctl_load_log_lines_total{outcome}``: sent, rejected, failed, unsent
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import aiohttp

from simctl.load.results import LoadSnapshot

log = logging.getLogger("simctl.load")
_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def render(snap: LoadSnapshot) -> str:
    """A snapshot as Prometheus text exposition."""
    lines: list[str] = []

    def family(name: str, kind: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    http = snap.http
    if http is not None:
        errors = http.completed - http.ok
        family("simctl_load_requests_total", "counter", [
            ('{outcome="ok"}', http.ok), ('{outcome="error"}', errors),
            ('{outcome="timeout"}', http.timeouts),
            ('{outcome="connection_error"}', http.connection_errors),
            ('{outcome="unsent"}', http.unsent), ('{outcome="cancelled"}', http.cancelled)])
        family("simctl_load_router_codes_total", "counter",
               [(f'{{code="{_SAFE.sub("_", code)}"}}', n) for code, n in
                sorted(http.by_code.items())])
        family("simctl_load_in_flight", "gauge", [("", http.in_flight)])
        latency = http.latency
        family("simctl_load_latency_seconds", "gauge", [
            ('{quantile="0.5"}', latency.p50 / 1000), ('{quantile="0.9"}', latency.p90 / 1000),
            ('{quantile="0.99"}', latency.p99 / 1000)])
    logs = snap.logs
    if logs is not None:
        family("simctl_load_log_lines_total", "counter", [
            ('{outcome="sent"}', logs.sent), ('{outcome="rejected"}', logs.rejected),
            ('{outcome="failed"}', logs.failed), ('{outcome="unsent"}', logs.unsent)])
    return "\n".join(lines) + "\n"


class SliPusher:
    """Pushes `snapshot()` every `interval` seconds until stopped (then once more)."""

    def __init__(self, monitor_url: str, instance: str,
                 snapshot: Callable[[], LoadSnapshot | None], interval: float = 1.0) -> None:
        instance = _SAFE.sub("_", instance)[:100] or "run"
        self.url = f"{monitor_url.rstrip('/')}/metrics/job/load/instance/{instance}"
        self.snapshot = snapshot
        self.interval = interval
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.push()
            await asyncio.sleep(self.interval)

    async def push(self) -> None:
        snap = self.snapshot()
        if snap is None or self._session is None:
            return
        try:
            async with self._session.put(self.url, data=render(snap),
                                         headers={"Content-Type": "text/plain"}) as response:
                if response.status >= 300:
                    self.failures += 1
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.failures += 1  # the monitor may be down: load must go on regardless

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
            await self.push()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.failures:
            log.info("at=sli_push failures=%d url=%s", self.failures, self.url)
