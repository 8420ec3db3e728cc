"""One request through the router: validate, route, pick a dyno, proxy, log.

Every way a request can end maps to one outcome: the dyno's response (``at=info``) or an
H-code (codes.py). The outcome makes exactly one log line and one metric sample.

    validate ---- H26 (bad header, Expect, limits)
    route ------- H99 (no table) / 404 (no such app) / H80 (maintenance)
    dispatch ---- H14 (no dynos) / H10 (crashed) / H20 (starting too long) /
                  H11 (backlog full) / H12 (queued too long) / H99 (all quarantined too long)
    connect ----- H21 (refused) / H19 (timed out), after retries on other dynos
    request body  H26 (bad chunk) / H27 (client closed) / H28 (client idle)
    response ---- H12 (no first byte) / H13 (closed, nothing sent) / H15 (idle) /
                  H17 (malformed) / H18 (closed mid-response) / H27 (client closed)
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

import h11

from simctl.platform.router import http, logline, proxying
from simctl.platform.router.codes import CODES, error_page, no_such_app_page
from simctl.platform.router.dispatch import AppSlots, Waiter
from simctl.platform.router.fasthead import RequestHead
from simctl.platform.router.response import END, NEED_DATA, Head, ResponseError, Truncated
from simctl.platform.router.table import host_of

if TYPE_CHECKING:
    from simctl.platform.router.core import RouterCore
    from simctl.platform.router.http import ClientConnection
    from simctl.platform.router.records import App, Dyno

_HTML = b"text/html; charset=utf-8"
_REASONS = {400: b"Bad Request", 404: b"Not Found", 414: b"URI Too Long",
            417: b"Expectation Failed", 502: b"Bad Gateway", 503: b"Service Unavailable",
            505: b"HTTP Version Not Supported"}
_NO_CACHE = b"no-cache, no-store"
_PROBE_POLL = 0.01  # how often a request waiting on a probing dyno looks again


class Failure(Exception):
    def __init__(self, code: str, cause: str = "", status: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.cause = cause
        self.status = status


class Exchange:
    __slots__ = (
        "core", "conn", "req", "loop", "t0", "start_ms", "method", "path", "host", "app",
        "request_id", "fwd", "dyno", "connect_time", "connected_at", "status", "nbytes",
        "backend", "slots", "slot_key", "head_sent", "code", "cause", "chunked",
    )

    def __init__(self, core: RouterCore, conn: ClientConnection,
                 req: h11.Request | RequestHead) -> None:
        self.core = core
        self.conn = conn
        self.req = req
        self.loop = core.loop
        self.t0 = core.loop.time()
        self.start_ms = int(time.time() * 1000)
        self.method = req.method.decode("ascii", "replace")
        self.path = req.target.decode("latin-1")
        self.host = ""
        self.app: App | None = None
        self.request_id = ""
        self.fwd = ""
        self.dyno: Dyno | None = None
        self.connect_time: float | None = None
        self.connected_at = 0.0
        self.status: int | None = None
        self.nbytes: int | None = None
        self.backend: proxying.BackendConnection | None = None
        self.slots: AppSlots | None = None
        self.slot_key = ""
        self.head_sent = False
        self.code = ""
        self.cause = ""
        self.chunked = False

    # the whole request ----------------------------------------------------------------------

    async def run(self) -> bool:
        """Serve the request; True when the client connection can take another one."""
        keep = False
        try:
            keep = await self._run()
        except Failure as failure:
            keep = self._fail(failure)
        except asyncio.CancelledError:  # the router is shutting down
            self.code, self.status = "H24", None
            raise
        finally:
            if self.backend is not None:
                if self.code:
                    self.backend.abort()
                else:
                    self.core.pool.put(self.slot_key, self.backend)
            if self.slots is not None:
                self.slots.release(self.slot_key)
            self._log()
        return keep

    async def _run(self) -> bool:
        req, conn, core = self.req, self.conn, self.core
        hosts: list[bytes] = []
        rid = expect = None
        xff: list[bytes] = []
        length = False  # Content-Length lists were refused with the raw head (http.py)
        headers = conn.headers
        for name, value in headers:
            if name == b"host":
                hosts.append(value)
            elif name == b"x-request-id":
                rid = value
            elif name == b"x-forwarded-for":
                xff.append(value)
            elif name == b"expect":
                expect = value
            elif name == b"transfer-encoding":
                self.chunked = True
            elif name == b"content-length":
                length = True
        self.request_id = http.request_id(rid)
        xff.append(conn.peer.encode())
        self.fwd = b", ".join(xff).decode("latin-1")
        table = core.table
        if len(hosts) == 1:
            self.host = hosts[0].decode("latin-1")
            if table.loaded:
                self.app = table.lookup(host_of(hosts[0]))
        if len(hosts) != 1 or not hosts[0].strip():
            raise Failure("H26", "bad header")
        if req.http_version not in (b"1.1", b"1.0"):
            raise Failure("H26", "unsupported http version", 505)
        if length and self.chunked:
            # RFC 9112 6.1: answer, then close; what follows the body may be a smuggled request
            conn.want_keep = False
        problem = http.head_problem(req, headers)
        if problem is not None:
            raise Failure("H26", problem[0], problem[1])
        if expect is not None and expect.strip().lower() not in (b"", b"100-continue"):
            raise Failure("H26", "unsupported expect header value", 417)
        if not table.loaded:
            raise Failure("H99", "no route table")
        if self.app is None:
            return self._no_such_app()
        if self.app.maintenance:
            raise Failure("H80")
        await self._connect(self.app)
        await self._send_request()
        await self._relay_response()
        return True

    # dispatch and connect ---------------------------------------------------------------------

    async def _connect(self, routed: App) -> None:
        app_name = routed.name
        core, conn, loop = self.core, self.conn, self.loop
        timing = core.timing
        quarantine = core.quarantine
        slots = core.dispatch.slots(app_name)
        concurrency = core.dispatch.concurrency
        tried: set[str] = set()
        last = ""
        attempts = 0
        waiter: Waiter | None = None
        q_deadline = boot_deadline = None
        try:
            while True:
                app = core.table.apps.get(app_name) or routed
                up = app.up
                now = loop.time()
                chosen: Dyno | None = None
                if waiter is not None and waiter.granted is not None:
                    key, waiter.granted = waiter.granted, None
                    waiter = None  # release() took it out of the queue
                    for dyno in up:
                        if dyno.key == key and key not in tried and not quarantine.blocked(
                                key, now):
                            chosen = dyno
                            break
                    else:
                        slots.release(key)
                        continue
                if chosen is None:
                    if not up:
                        if last:
                            raise Failure(last)
                        states = {d.state for d in app.dynos}
                        if "starting" not in states:
                            raise Failure("H10" if "crashed" in states else "H14")
                        boot_deadline = boot_deadline or now + timing.boot_wait
                        if now >= boot_deadline:
                            raise Failure("H20")
                        await self._wait(boot_deadline, table=True)
                        continue
                    candidates = []
                    full = False
                    for dyno in up:
                        key = dyno.key
                        if key in tried or quarantine.blocked(key, now):
                            continue
                        if slots.count(key) >= concurrency:
                            full = True
                        else:
                            candidates.append(dyno)
                    if candidates:
                        chosen = random.choice(candidates) if len(candidates) > 1 else (
                            candidates[0])
                        slots.take(chosen.key)
                    elif full:  # usable dynos, all busy: wait in the backlog
                        if waiter is None:
                            if len(slots.queue) >= core.dispatch.backlog_per_dyno * len(up):
                                raise Failure("H11")
                            waiter = Waiter(conn.waker)
                            slots.queue.append(waiter)
                        deadline = self.t0 + timing.first_byte_timeout
                        if now >= deadline:
                            raise Failure("H12", "backlog timeout")
                        await self._wait(deadline)
                        continue
                    else:  # every dyno left is quarantined
                        if last:
                            raise Failure(last)
                        q_deadline = q_deadline or now + timing.all_quarantined_retry
                        if now >= q_deadline:
                            raise Failure("H99", "all dynos quarantined")
                        expiry = quarantine.next_expiry(d.key for d in up) or now + _PROBE_POLL
                        await self._wait(min(max(expiry, now + 0.001), q_deadline))
                        continue
                if waiter is not None:
                    slots.leave(waiter)
                    waiter = None
                key = chosen.key
                tried.add(key)
                attempts += 1
                backend = core.pool.take(key)
                if backend is not None:  # kept alive: no connect, connect=0ms
                    backend.begin(conn.waker, self.req.method == b"HEAD")
                    self._connected(chosen, backend, slots, 0.0)
                    return
                quarantine.begin(key)
                started = loop.time()
                try:
                    backend = await proxying.connect(chosen, conn.waker, timing.connect_timeout,
                                                     self.req.method == b"HEAD")
                except proxying.ConnectFailed as exc:
                    self.dyno, self.connect_time = chosen, loop.time() - started
                    quarantine.failed(key, loop.time())
                    core.pool.drop(key)
                    slots.release(key)
                    last = exc.code
                    if attempts >= timing.max_retries:
                        raise Failure(last) from None
                    continue
                except BaseException:
                    quarantine.abandon(key)
                    slots.release(key)
                    raise
                quarantine.succeeded(key)
                self._connected(chosen, backend, slots, loop.time() - started)
                return
        finally:
            if waiter is not None:
                slots.leave(waiter)

    def _connected(self, dyno: Dyno, backend: proxying.BackendConnection, slots: AppSlots,
                   connect_time: float) -> None:
        self.connected_at = self.loop.time()
        self.dyno, self.connect_time = dyno, connect_time
        self.backend, self.slots, self.slot_key = backend, slots, dyno.key
        self.nbytes = 0
        if self.conn.gone:
            raise Failure("H27")

    async def _wait(self, deadline: float, table: bool = False) -> None:
        """Sleep until ``deadline`` or a wake-up; a client that left ends the request."""
        conn = self.conn
        if conn.gone:
            raise Failure("H27")
        waiters = self.core.table_waiters
        if table:
            waiters.add(conn.waker)
        try:
            await conn.waker.wait(deadline)
        finally:
            waiters.discard(conn.waker)
        if conn.gone:
            raise Failure("H27")

    # proxying ----------------------------------------------------------------------------------

    async def _send_request(self) -> None:
        backend, conn, req = self.backend, self.conn, self.req
        assert backend is not None
        idle = self.core.timing.idle_timeout
        # the head was validated on the way in, and our own headers are well formed
        head = [req.method, b" ", req.target, b" HTTP/1.1\r\n"]
        extra = (
            (b"x-request-id", self.request_id.encode()),
            (b"x-forwarded-for", self.fwd.encode("latin-1")),
            (b"x-forwarded-proto", conn.scheme.encode()),
            (b"x-forwarded-port", str(conn.port).encode()),
            (b"x-request-start", str(self.start_ms).encode()),
        )
        for name, value in http.upstream_headers(conn.headers, self.chunked, extra,
                                                  self.core.pool.enabled):
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        backend.write(b"".join(head))
        if conn.expects_continue:
            conn.interim_continue()
        chunked = self.chunked
        last = self.loop.time()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError:
                if conn.gone:
                    raise Failure("H27") from None
                raise Failure("H26", "bad chunk" if chunked else "bad request body") from None
            if event is h11.NEED_DATA:
                if chunked and http.chunk_problem(conn.h11):
                    raise Failure("H26", "bad chunk")
                if conn.gone:
                    raise Failure("H27")
                last = max(last, conn.rx_at)
                if self.loop.time() >= last + idle:
                    raise Failure("H28")
                await conn.waker.wait(last + idle)
                continue
            kind = type(event)
            if kind is h11.EndOfMessage:
                if chunked:
                    backend.write(b"0\r\n\r\n")
                return
            if kind is h11.Data and not backend.closed:
                data = event.data  # type: ignore[attr-defined]  # kind is h11.Data, checked above
                if chunked:
                    if data:
                        backend.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    backend.write(data)
                while backend.write_paused and not backend.closed:
                    if conn.gone:
                        raise Failure("H27")
                    await conn.waker.wait(self.loop.time() + idle)

    async def _relay_response(self) -> None:
        backend, conn, loop = self.backend, self.conn, self.loop
        assert backend is not None
        timing = self.core.timing
        first_deadline = loop.time() + timing.first_byte_timeout
        idle = timing.idle_timeout
        while True:
            try:
                event = backend.next_event()
            except Truncated:
                raise Failure("H18" if backend.rx_bytes else "H13") from None
            except ResponseError as exc:
                raise Failure("H18" if self.head_sent else exc.code, str(exc)) from None
            if event is NEED_DATA:
                if conn.gone:
                    raise Failure("H27")
                if backend.rx_bytes:
                    code, deadline = "H15", max(backend.rx_at, conn.rx_at) + idle
                else:
                    code, deadline = "H12", first_deadline
                if loop.time() >= deadline:
                    raise Failure(code)
                conn.flush()
                await conn.waker.wait(deadline)
                continue
            kind = type(event)
            if kind is bytes:
                conn.send_data(event)  # type: ignore[arg-type]  # kind is bytes, checked above
                # The type: ignore below: kind is bytes, checked above.
                self.nbytes += len(event)  # type: ignore[operator, arg-type]
                if conn.write_paused:
                    await self._drain_client()
            elif event is END:
                conn.end_response()
                return
            else:
                self._send_head(event)  # type: ignore[arg-type]  # else: a response head

    def _send_head(self, resp: Head) -> None:
        self.status = resp.status
        self.conn.start_response(resp.status, resp.reason, http.downstream_headers(resp.headers))
        self.head_sent = True

    async def _drain_client(self) -> None:
        conn, idle = self.conn, self.core.timing.idle_timeout
        conn.flush()
        deadline = self.loop.time() + idle
        while conn.write_paused and not conn.closed:
            if self.loop.time() >= deadline:
                raise Failure("H28", "client not reading")
            await conn.waker.wait(deadline)
        if conn.closed:
            raise Failure("H27")

    # outcomes -------------------------------------------------------------------------------

    def _fail(self, failure: Failure) -> bool:
        code = CODES[failure.code]
        self.code, self.cause = code.code, failure.cause
        status = failure.status or code.status
        self.status = status
        conn = self.conn
        if code.code in ("H27", "H28") or conn.closed:
            conn.abort() if code.code == "H27" else conn.close()
            return False
        if self.head_sent:  # the dyno's status line is out: all we can do is cut the response
            conn.abort()
            return False
        # a bad request says nothing good about what follows on its connection: close it
        return self._respond(status, error_page(code.code, self.request_id), code.code,
                             close=code.code == "H26")

    def _no_such_app(self) -> bool:
        self.status = 404
        return self._respond(404, no_such_app_page(self.host), "")

    def _respond(self, status: int, body: bytes, code: str, close: bool = False) -> bool:
        """A page of the router's own; True if the connection stays usable."""
        conn = self.conn
        complete = self._discard_body() and not close
        headers = [(b"content-type", _HTML), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", _NO_CACHE), (b"via", http.VEGUR)]
        if code:
            headers.append((b"x-router-code", code.encode()))
        conn.start_response(status, _REASONS.get(status, b"Error"), headers, close=not complete)
        conn.send_data(body)
        conn.end_response()
        if not complete:
            conn.close_lingering()
        return complete

    def _discard_body(self) -> bool:
        """Consume what is left of the request if it is already here; True if complete."""
        conn = self.conn
        if conn.their_state is h11.DONE:
            return True
        if conn.their_state is not h11.SEND_BODY:
            return False
        try:
            while True:
                event = conn.next_event()
                if type(event) is h11.EndOfMessage:
                    return True
                if event is h11.NEED_DATA or type(event) is not h11.Data:
                    return False
        except h11.RemoteProtocolError:
            return False

    def _log(self) -> None:
        code = CODES.get(self.code) if self.code else None
        connected = self.backend is not None
        end = self.loop.time()
        status = self.status
        line = logline.format_line(
            code=code,
            cause=self.cause if self.code in ("H25", "H26") else "",
            method=self.method,
            path=self.path,
            host=self.host,
            request_id=self.request_id,
            fwd=self.fwd,
            dyno=self.dyno.name if self.dyno is not None else "",
            connect=self.connect_time,
            service=end - self.connected_at if connected else None,
            status=status,
            nbytes=self.nbytes,
            protocol=self.conn.scheme,
        )
        app = self.app.name if self.app is not None else None
        self.core.record(app, line, self.code or "none", status or 0, end - self.t0)
