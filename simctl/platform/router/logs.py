"""Where router log lines go: logplex, one LogShipper per app (token ``t.<app>``).

``emit`` never blocks and never raises. Each shipper holds at most
``timing.router_log_buffer`` lines in batches; past that whole batches are dropped and
counted (router_log_dropped_total), and the shipper reports the loss in the stream
(L12). Lines of requests that name no known app, and every line when no logplex URL is
configured, go to the router's own log on stderr. The last lines are kept in memory for
``GET /admin/logs``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from urllib.parse import urlsplit

from simctl.platform.shipper import LogShipper
from simctl.platform.timing import Timing

log = logging.getLogger("simctl.router")


def logs_url(url: str) -> str:
    """Accept logplex's base URL or its ``/logs`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"bad logplex URL {url!r} (want http://host:port[/logs])")
    return url.rstrip("/") + "/logs" if parts.path in ("", "/") else url


class RouterLogs:
    def __init__(self, url: str | None, timing: Timing, host: str = "router",
                 keep: int = 1000) -> None:
        self.url = logs_url(url) if url else None
        self.timing = timing
        self.host = host
        self.recent: deque[tuple[str, str]] = deque(maxlen=keep)
        self.shippers: dict[str, LogShipper] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch = min(timing.shuttle_batch, timing.router_log_buffer)
        self._back = max(1, timing.router_log_buffer // self._batch)

    def emit(self, app: str | None, line: str) -> None:
        self.recent.append((app or "", line))
        if app is None or self.url is None:
            if app is None:
                log.info("%s", line)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("app=%s %s", app, line)
            return
        shipper = self.shippers.get(app)
        if shipper is None:
            shipper = self._shipper(app)
        shipper.emit("heroku", "router", line)

    def _shipper(self, app: str) -> LogShipper:
        assert self.url is not None
        shipper = LogShipper(self.url, f"t.{app}", timing=self.timing, batch_size=self._batch,
                             back_buffer=self._back, host=self.host)
        self.shippers[app] = shipper
        task = asyncio.get_running_loop().create_task(shipper.start())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return shipper

    @property
    def dropped(self) -> int:
        return sum(s.stats.dropped for s in self.shippers.values())

    @property
    def lost(self) -> int:
        return sum(s.stats.lost for s in self.shippers.values())

    async def stop(self, timeout: float = 3.0) -> None:
        """Flush (bounded) and stop every shipper; never hangs the router's shutdown."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for shipper in self.shippers.values():
            try:
                async with asyncio.timeout(timeout):
                    await shipper.stop()
            except TimeoutError:
                log.warning("at=shipper_stop_timeout token=%s", shipper.token)
                if shipper._task is not None:
                    while not shipper._task.done():
                        shipper._task.cancel()
                        await asyncio.wait({shipper._task}, timeout=0.1)
                if shipper._session is not None:
                    await shipper._session.close()
