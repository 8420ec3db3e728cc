"""The router's state shared by every connection: table, quarantine, slots, logs, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import h11

from simctl.platform.router import http, logline
from simctl.platform.router.codes import CODES, error_page
from simctl.platform.router.dispatch import Dispatch, Waker
from simctl.platform.router.exchange import Exchange
from simctl.platform.router.fasthead import RequestHead
from simctl.platform.router.pool import DynoPool
from simctl.platform.router.quarantine import Quarantine
from simctl.platform.router.table import RouteTable
from simctl.platform.timing import Timing

if TYPE_CHECKING:
    from simctl.platform.router.http import ClientConnection
    from simctl.platform.router.logs import RouterLogs
    from simctl.platform.router.metrics import RouterMetrics

log = logging.getLogger("simctl.router")


class RouterCore:
    def __init__(self, timing: Timing, logs: RouterLogs, backend_keepalive: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.timing = timing
        self.logs = logs
        self.metrics: RouterMetrics | None = None
        self.table = RouteTable(on_change=self._table_changed)
        self.quarantine = Quarantine(timing.quarantine)
        self.dispatch = Dispatch(timing.dyno_concurrency, timing.backlog_per_dyno)
        self.pool = DynoPool(self.loop, enabled=backend_keepalive)
        self.connections: set[ClientConnection] = set()
        # Connections accepted, by scheme; on HTTPS once the TLS handshake is done.
        self.accepted: dict[str, int] = {"http": 0, "https": 0}
        # TLS handshakes begun (TCP accepted on the HTTPS port); begun minus accepted
        # ones, less those in progress, is what failed or timed out.
        self.tls_started = 0
        self.table_waiters: set[Waker] = set()

    def handle(self, conn: ClientConnection, request: h11.Request | RequestHead) -> Any:
        return Exchange(self, conn, request).run()

    def record(self, app: str | None, line: str, code: str, status: int, seconds: float) -> None:
        self.logs.emit(app, line)
        if self.metrics is not None:
            self.metrics.request(code, status, seconds)

    def bad_head(self, conn: ClientConnection, exc: h11.RemoteProtocolError) -> None:
        """A head h11 could not parse: 400 (414 for a long request line), H26, close."""
        started = time.monotonic()
        head = conn.h11.trailing_data[0]
        line = head.split(b"\n", 1)[0].rstrip(b"\r")
        parts = line.split(b" ")
        method, path = (parts[0], parts[1]) if len(parts) == 3 else (b"", b"")
        status, cause = 400, "bad header"
        if exc.error_status_hint == 431 and b"\n" not in head[:http.MAX_REQUEST_LINE]:
            status, cause = 414, "request line too long"
        request_id = http.request_id(None)
        body = error_page("H26", request_id)
        headers = [(b"Content-Type", b"text/html; charset=utf-8"),
                   (b"Content-Length", str(len(body)).encode()),
                   (b"Cache-Control", b"no-cache, no-store"), (b"X-Router-Code", b"H26"),
                   (b"Connection", b"close")]
        reason = b"URI Too Long" if status == 414 else b"Bad Request"
        conn.write(http.raw_response(status, reason, headers, body))
        conn.close_lingering()
        text = logline.format_line(
            code=CODES["H26"], cause=cause, method=method.decode("latin-1")[:32],
            path=path.decode("latin-1")[:2048], host="", request_id=request_id, fwd=conn.peer,
            dyno="", connect=None, service=None, status=status, nbytes=None,
            protocol=conn.scheme)
        self.record(None, text, "H26", status, time.monotonic() - started)

    def _table_changed(self) -> None:
        self.dispatch.wake_all()
        for waker in self.table_waiters:
            waker.wake()
        if self.metrics is not None and self.table.version is not None:
            self.metrics.table_version.set(self.table.version)

    def state(self) -> dict[str, Any]:
        now = self.loop.time()
        quarantined = {d.name: 0 for app in self.table.apps.values() for d in app.dynos}
        quarantined.update(self.quarantine.by_dyno(now))
        return {
            "backlog": self.dispatch.backlog(),
            "quarantined": quarantined,
            "log_dropped": self.logs.dropped,
            "log_lost": self.logs.lost,
            "connections": len(self.connections),
            "accepted": dict(self.accepted),
            "tls_started": self.tls_started,
            "inflight": self.dispatch.inflight(),
        }
