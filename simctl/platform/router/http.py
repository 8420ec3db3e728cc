"""The client side of the router: one asyncio protocol per connection, h11 as the server.

The protocol buffers what arrives and wakes the connection's coroutine; the coroutine
reads request heads (keep-alive honoured, pipelining allowed) and hands each request to
the router. Plain heads are parsed by httptools (fasthead.py), the rest by h11. Requests
that cannot be parsed get a 400 (H26) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import TYPE_CHECKING, Any

import h11

from simctl.platform.router import fasthead
from simctl.platform.router.dispatch import Waker
from simctl.platform.router.fasthead import RequestHead

if TYPE_CHECKING:
    from simctl.platform.router.core import RouterCore

log = logging.getLogger("simctl.router")

MAX_HEAD = 64 * 1024  # request line + headers, parsed at once
# Vegur's listener limits (docs/platform.md, "Vegur's defaults and limits")
MAX_REQUEST_LINE = 8192
MAX_HEADER_VALUE = 8192
MAX_HEADER_NAME = 1000
MAX_HEADERS = 1000
READ_LIMIT = 256 * 1024  # unread request bytes buffered before reading pauses
WRITE_LIMIT = 1024 * 1024  # Heroku's 1 MB response buffer per connection
FLUSH_AT = 64 * 1024  # response bytes held back to write them at once
MAX_CHUNK_SIZE = 2**63 - 1  # a chunk size past what a signed 64-bit length holds is refused
MAX_CHUNK_LINE = 4096  # a chunk-size line (size, extensions) longer than this is refused
LINGER = 2.0  # seconds at most a refused client's remaining input is read and dropped
LINGER_QUIET = 0.5  # ... or until it has sent nothing for this long
LINGER_BYTES = 16 * 1024 * 1024  # ... and at most this much of it

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
    b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
_REQUEST_ID = re.compile(rb"[A-Za-z0-9+/=-]{20,200}")
_SKIP_UP = frozenset({
    b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-port",
    b"x-request-start", b"via", b"expect", b"content-length",
}) | HOP_BY_HOP
_SKIP_DOWN = frozenset({b"via", b"content-length"}) | HOP_BY_HOP
VEGUR = b"1.1 vegur"
_END = h11.EndOfMessage()


def request_id(value: bytes | None) -> str:
    """A client's X-Request-Id if it is 20-200 of [A-Za-z0-9+/=-], else a new uuid (v4)."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value.decode("ascii")
    raw = bytearray(os.urandom(16))  # what uuid.uuid4() does, without its object
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def header_list(request: h11.Request | RequestHead) -> list[tuple[bytes, bytes]]:
    """The request's headers as a list of (lower-case name, value), built once.

    (Iterating h11's Headers goes through the generic Sequence protocol, item by item.)
    """
    if isinstance(request, RequestHead):
        return request.headers
    items = getattr(request.headers, "_full_items", None)
    if items is None:  # pragma: no cover - another h11 version
        return list(request.headers)
    return [(name, value) for _, name, value in items]


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names listed in Connection: (hop-by-hop for this message only)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def upstream_headers(headers: list[tuple[bytes, bytes]], chunked: bool,
                     extra: tuple[tuple[bytes, bytes], ...],
                     keep_alive: bool = False) -> list[tuple[bytes, bytes]]:
    """The request's headers for the dyno: hop-by-hop ones out, framing redone, ``extra``
    (X-Request-Id, X-Forwarded-*, X-Request-Start) in place of the client's, Via
    appended, and ``Connection: close`` unless the dyno connection is kept alive
    (pool.py; Vegur's default is a new connection per request)."""
    tokens = connection_tokens(headers)
    out: list[tuple[bytes, bytes]] = []
    via: list[bytes] = []
    length = None
    for name, value in headers:
        if name in _SKIP_UP or name in tokens:
            if name == b"via":
                via.append(value)
            elif name == b"content-length":
                length = value
            continue
        out.append((name, value))
    if chunked:  # Transfer-Encoding beats Content-Length
        out.append((b"transfer-encoding", b"chunked"))
    elif length is not None:
        out.append((b"content-length", length))
    via.append(VEGUR)
    out += extra
    out.append((b"via", b", ".join(via)))
    if not keep_alive:
        out.append((b"connection", b"close"))
    return out


def downstream_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The dyno's response headers for the client: hop-by-hop ones out, Via appended.

    Framing is left to h11 (Content-Length kept unless the dyno sent chunked)."""
    tokens = connection_tokens(headers)
    out: list[tuple[bytes, bytes]] = []
    via: list[bytes] = []
    length = None
    chunked = False
    for name, value in headers:
        if name in _SKIP_DOWN or name in tokens:
            if name == b"via":
                via.append(value)
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
            continue
        out.append((name, value))
    if length is not None and not chunked:
        out.append((b"content-length", length.split(b",")[0].strip()))
    via.append(VEGUR)
    out.append((b"via", b", ".join(via)))
    return out


def head_problem(request: h11.Request | RequestHead, headers: list[tuple[bytes, bytes]]
                 ) -> tuple[str, int] | None:
    """(cause, status) when the head breaks a size limit, else None."""
    if len(request.method) + len(request.target) + 10 > MAX_REQUEST_LINE:
        return "request line too long", 414
    if len(headers) > MAX_HEADERS:
        return "too many headers", 400
    for name, value in headers:
        if len(name) > MAX_HEADER_NAME or len(value) > MAX_HEADER_VALUE:
            return "bad header", 400
    return None


def raw_head_problem(data: bytes) -> tuple[str, int] | None:
    """(message, status hint) when the bytes of a head not yet parsed must be refused.

    h11 accepts bare-LF line ends, merges ``Content-Length: 5, 5`` into one value, and
    checks the size of a head only while it is incomplete; Vegur takes none of these
    (docs/architecture.md, router protocol rules). Hints follow h11's: 431 for a head over
    the limit (core.bad_head makes it 414 for a long request line), else 400.
    """
    pos = 0
    while True:
        nl = data.find(b"\n", pos, MAX_HEAD + 1)
        if nl < 0:
            return ("request head too long", 431) if len(data) > MAX_HEAD else None
        if nl == 0 or data[nl - 1] != 13:  # 13 is CR
            return "bare LF in request head", 400
        if nl == pos + 1 and pos > 0:  # the empty line: the head is complete, and small enough
            return None
        if data[pos:pos + 15].lower() == b"content-length:" and b"," in data[pos:nl]:
            return "Content-Length list", 400
        pos = nl + 1


def chunk_problem(conn: h11.Connection) -> bool:
    """True when h11, reading a chunked body, waits for what can never come.

    h11 looks for CRLF to end a chunk-size line, so a bare LF (or a line that never ends)
    would hold the request until the client-idle timeout; and it accepts 20 hex digits
    of size, more than any body can be. Both are Vegur's "bad chunk" at once.
    """
    # h11 0.16's ChunkedReader (the version pinned in pyproject); private, so untyped.
    reader: Any = conn._reader
    if type(reader).__name__ != "ChunkedReader":
        return False
    if reader._bytes_in_chunk > MAX_CHUNK_SIZE:
        return True
    if reader._bytes_in_chunk or reader._bytes_to_discard:
        return False
    buf = conn.trailing_data[0]
    nl = buf.find(b"\n")
    if nl < 0:
        return len(buf) > MAX_CHUNK_LINE
    return nl == 0 or buf[nl - 1] != 13


def raw_response(status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                 body: bytes) -> bytes:
    """A whole response, written without h11 (for connections h11 gave up on)."""
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class ClientConnection(asyncio.Protocol):
    def __init__(self, core: RouterCore, scheme: str, port: int) -> None:
        self.core = core
        self.scheme = scheme
        self.port = port
        self.loop = core.loop
        self.waker = Waker(core.loop)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.h11_used = False  # h11 has been fed this cycle (else the head came by fasthead)
        self.fast_done = False  # the fast-path request's end was handed out
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.rx_at = 0.0
        self.eof = False
        self.closed = False
        self.write_paused = False
        self._inbuf = bytearray()
        self._eof_fed = False
        self._reading_paused = False
        self._out: list[bytes] = []
        self._out_size = 0
        self._lingering: asyncio.TimerHandle | None = None
        self._linger_until = 0.0
        self._dropped = 0
        self._framing = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_request = False
        self.http11 = True
        self.want_keep = False
        self.keep_alive = False
        self.task: asyncio.Task[None] | None = None
        if scheme == "https":  # made when TCP is accepted, before the TLS handshake
            core.tls_started += 1
            self.accepted_at = self.loop.time()

    # asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        # The type: ignore below: see __init__.
        self.transport.set_write_buffer_limits(high=WRITE_LIMIT)  # type: ignore[union-attr]
        self.core.connections.add(self)
        self.core.accepted[self.scheme] += 1
        if self.scheme == "https" and self.core.metrics is not None:
            self.core.metrics.tls_handshake.observe(self.loop.time() - self.accepted_at)
        self.task = self.loop.create_task(self.serve())

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._dropped += len(data)
            self.rx_at = self.loop.time()
            if self._dropped > LINGER_BYTES:
                self.transport.abort()  # type: ignore[union-attr]  # see __init__
            return
        if self._eof_fed:
            return
        self._inbuf += data
        self.rx_at = self.loop.time()
        if len(self._inbuf) > READ_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]  # see __init__
        self.waker.wake()

    def eof_received(self) -> bool:
        self.eof = True
        if self._lingering is not None:
            self.transport.close()  # type: ignore[union-attr]  # see __init__
            return False
        self.waker.wake()
        # keep the write side open (a response may still go out); TLS cannot half-close
        return self.scheme == "http"

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = self.closed = True
        if self._lingering is not None:
            self._lingering.cancel()
        self.write_paused = False
        self.waker.wake()
        self.core.connections.discard(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.waker.wake()

    # used by requests ---------------------------------------------------------------------

    @property
    def gone(self) -> bool:
        """The client closed (or half-closed) its side."""
        return self.eof

    @property
    def their_state(self) -> object:
        """h11's view of the client's side of the current request."""
        if not self.h11_used:
            return h11.DONE if self.fast_done else h11.SEND_BODY
        return self.h11.their_state

    @property
    def expects_continue(self) -> bool:
        return self.h11_used and self.h11.they_are_waiting_for_100_continue

    def next_event(self) -> object:
        """The next h11 event, or h11.NEED_DATA; raises h11.RemoteProtocolError."""
        if not self.h11_used:  # a fast-path request: no body, its end comes next
            if self.fast_done:
                return h11.NEED_DATA
            self.fast_done = True
            return _END
        conn = self.h11
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self._inbuf:
                data = bytes(self._inbuf)
                self._inbuf.clear()
                conn.receive_data(data)
                self._resume_reading()
                continue
            if self.eof and not self._eof_fed:
                self._eof_fed = True
                conn.receive_data(b"")
                continue
            return event

    def _resume_reading(self) -> None:
        if self._reading_paused and not self.closed and len(self._inbuf) <= READ_LIMIT:
            self._reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]  # see __init__

    def start_request(self, request: h11.Request | RequestHead) -> None:
        """Note what the response to ``request`` must look like (framing, keep-alive)."""
        self.head_request = request.method == b"HEAD"
        self.http11 = request.http_version == b"1.1"
        # h11's rule: HTTP/1.1 keeps the connection unless told to close; 1.0 never does
        self.headers = header_list(request)
        self.want_keep = self.http11 and b"close" not in connection_tokens(self.headers)
        self.keep_alive = False
        self._framing = ""

    def interim_continue(self) -> None:
        self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def start_response(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]],
                       close: bool = False) -> None:
        """Write the status line and headers; the body framing follows from them.

        Content-Length is kept when given; otherwise HTTP/1.1 clients get chunked and
        HTTP/1.0 clients a body delimited by the close (h11's rules for a server).
        """
        if self.head_request or status in (204, 304):
            framing = "none"
        elif any(name == b"content-length" for name, _ in headers):
            framing = "length"
        elif self.http11:
            framing = "chunked"
            headers = [*headers, (b"transfer-encoding", b"chunked")]
        else:
            framing, close = "close", True
        self.keep_alive = self.want_keep and not close
        if not self.keep_alive:
            headers = [*headers, (b"connection", b"close")]
        self._framing = framing
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self._queue(b"".join(parts))

    def send_data(self, data: bytes) -> None:
        framing = self._framing
        if not data or framing == "none":
            return
        if framing == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self._queue(data)

    def end_response(self) -> None:
        if self._framing == "chunked":
            self._queue(b"0\r\n\r\n")
        self._framing = "done"
        self.flush()

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= FLUSH_AT:
            self.flush()

    def next_cycle(self) -> bool:
        """After a complete exchange on a kept-alive connection: ready for the next request.

        The response went out without h11's help, so whatever the client already sent
        (pipelined requests, or its EOF) goes back to the input, for a fresh h11
        connection or the fast path.
        """
        if not self.keep_alive or self.their_state is not h11.DONE:
            return False
        if self.h11_used:
            data, _ = self.h11.trailing_data
            self._inbuf[:0] = data
            self._eof_fed = False
            self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
            self.h11_used = False
        self.fast_done = False
        return True

    def flush(self) -> None:
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            self._out_size = 0
            if not self.closed:
                self.transport.write(data)  # type: ignore[union-attr]  # see __init__

    def write(self, data: bytes) -> None:
        self.flush()
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]  # see __init__

    def close(self) -> None:
        if self.transport is not None and not self.closed and self._lingering is None:
            self.flush()
            self.transport.close()

    def close_lingering(self) -> None:
        """Close after refusing a request whose rest may still be on its way.

        Closing with unread input makes the kernel send a reset, which destroys the
        answer before the client reads it; and a proxy in front (the fault plane's, like
        Toxiproxy) closes both ways on the router's FIN while the client still sends,
        with the same result. So the answer goes out at once, and what the client still
        sends is read and dropped until it has been quiet for ``LINGER_QUIET``, closes,
        or ``LINGER`` has passed (RFC 9112 9.6); only then does the router close.
        """
        transport = self.transport
        if transport is None or self.closed or self._lingering is not None:
            return
        self.flush()
        if self.eof:
            transport.close()
            return
        self._inbuf.clear()
        now = self.loop.time()
        self.rx_at = now
        self._linger_until = now + LINGER
        self._lingering = self.loop.call_later(LINGER_QUIET, self._linger)
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()

    def _linger(self) -> None:
        now = self.loop.time()
        quiet_at = self.rx_at + LINGER_QUIET
        if now >= quiet_at or now >= self._linger_until:
            self.transport.close()  # type: ignore[union-attr]  # see __init__
        else:
            self._lingering = self.loop.call_later(
                min(quiet_at, self._linger_until) - now, self._linger)

    def abort(self) -> None:
        self._out.clear()
        if self.transport is not None and not self.closed:
            self.transport.abort()

    # the connection's life ----------------------------------------------------------------

    async def serve(self) -> None:
        core = self.core
        try:
            while not self.closed:
                try:
                    request = await self._read_head()
                except h11.RemoteProtocolError as exc:
                    if not self.eof:  # a client that vanished mid-head gets no answer
                        core.bad_head(self, exc)
                    break
                if request is None:
                    break
                self.start_request(request)
                keep = await core.handle(self, request)
                if not keep or self.closed or not self.next_cycle():
                    break
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception:  # a bug must cost one connection, never the router
            log.exception("at=connection_error peer=%s", self.peer)
            self.abort()
        finally:
            self.close()

    def _check_raw_head(self) -> None:
        """Refuse a head h11 would take but Vegur does not (raw_head_problem)."""
        problem = raw_head_problem(self.h11.trailing_data[0] + self._inbuf)
        if problem is not None:
            self.h11.receive_data(bytes(self._inbuf))  # kept for the log line's method and path
            self._inbuf.clear()
            raise h11.RemoteProtocolError(problem[0], error_status_hint=problem[1])

    async def _read_head(self) -> h11.Request | RequestHead | None:
        """The next request head; None when the client closed or stayed idle too long.

        An idle keep-alive connection is closed after ``timing.keepalive_timeout``; a
        head that started arriving must go on within ``timing.idle_timeout``.
        """
        timing = self.core.timing
        start = self.loop.time()
        while True:
            if self.h11_used:
                if self.h11.their_state is h11.IDLE:  # the head is not parsed yet
                    self._check_raw_head()
                event = self.next_event()
            else:
                event = fasthead.parse(self._inbuf, MAX_HEAD, self.eof)
                if event is fasthead.SLOW:
                    self.h11_used = True
                    continue
                if event is not None:
                    self._resume_reading()  # pipelined requests may have filled the buffer
                    return event  # type: ignore[return-value]  # fasthead stands in for h11
                event = h11.NEED_DATA
            if event is h11.NEED_DATA:
                if self.eof:
                    return None
                deadline = start + timing.keepalive_timeout
                if self.rx_at > start:
                    deadline = min(deadline, self.rx_at + timing.idle_timeout)
                if self.loop.time() >= deadline:
                    return None
                await self.waker.wait(deadline)
                continue
            if type(event) is h11.Request:
                return event
            return None  # ConnectionClosed, or nothing we can answer
