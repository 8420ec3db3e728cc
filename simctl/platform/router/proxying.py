"""The dyno side of a request: a connection to the dyno, new or kept alive (pool.py).

The protocol only buffers and signals (through the request's ``Waker``); the request's
coroutine writes the request and pulls response events (response.py), and decides what
a silence, a close or a malformed byte means. Between requests a kept-alive connection
is parked: bytes arriving then mean the dyno is confused, so the connection is closed.
"""

from __future__ import annotations

import asyncio
import errno

from simctl.platform.router.dispatch import Waker
from simctl.platform.router.records import Dyno
from simctl.platform.router.response import NEED_DATA, ResponseParser

READ_LIMIT = 1024 * 1024  # response bytes buffered before reading from the dyno pauses
_TIMEOUT_ERRNOS = {errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}


class ConnectFailed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code  # H19 (timed out, unreachable) or H21 (refused)


class BackendConnection(asyncio.Protocol):
    def __init__(self, waker: Waker, loop: asyncio.AbstractEventLoop, head_request: bool) -> None:
        self.waker = waker
        self.loop = loop
        self.parser = ResponseParser(head_request)
        self.transport: asyncio.Transport | None = None
        self.rx_bytes = 0
        self.rx_at = 0.0
        self.eof = False
        self.closed = False
        self.write_paused = False
        self.parked = False
        self._reading_paused = False

    def begin(self, waker: Waker, head_request: bool) -> None:
        """Take a parked connection for a new request."""
        self.waker = waker
        self.parser = ResponseParser(head_request)
        self.rx_bytes = 0
        self.parked = False

    def park(self, waker: Waker) -> bool:
        """After a complete response: True if the connection can wait for another request."""
        if self.closed or self.write_paused or self._reading_paused or not self.parser.reusable:
            return False
        self.waker = waker
        self.parked = True
        return True

    # asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        if self.parked:  # nobody asked: whatever this is, the connection is not reusable
            self.abort()
            return
        self.parser.feed(data)
        self.rx_bytes += len(data)
        self.rx_at = self.loop.time()
        if len(self.parser._buf) > READ_LIMIT and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]  # see __init__
        self.waker.wake()

    def eof_received(self) -> bool:
        self.eof = True
        self.parser.feed_eof()
        self.waker.wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.eof:
            self.eof = True
            self.parser.feed_eof()
        self.closed = True
        self.write_paused = False
        self.waker.wake()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.waker.wake()

    # used by the request --------------------------------------------------------------------

    def next_event(self) -> object:
        """A Head, body bytes, END or NEED_DATA; raises ResponseError or Truncated."""
        event = self.parser.next_event()
        if (event is NEED_DATA and self._reading_paused and not self.closed
                and len(self.parser._buf) < READ_LIMIT):
            self._reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]  # see __init__
        return event

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)  # type: ignore[union-attr]  # see __init__

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


async def connect(dyno: Dyno, waker: Waker, timeout: float,
                  head_request: bool = False) -> BackendConnection:
    """A new connection to ``dyno`` within ``timeout`` seconds, or ConnectFailed."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await loop.create_connection(
                lambda: BackendConnection(waker, loop, head_request), dyno.host, dyno.port)
    except TimeoutError:
        raise ConnectFailed("H19", "connect timed out") from None
    except ConnectionRefusedError:
        raise ConnectFailed("H21", "connection refused") from None
    except OSError as exc:
        code = "H19" if exc.errno in _TIMEOUT_ERRNOS else "H21"
        raise ConnectFailed(code, exc.strerror or str(exc)) from None
    return protocol
