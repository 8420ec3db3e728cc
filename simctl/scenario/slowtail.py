"""A slow ``logs --tail`` client: the ``tail`` fault (docs/scenarios.md#faults).

``SlowTail`` opens ``GET /tail?app=APP`` on logplex, like ``simctl logs --tail`` or
``heroku logs --tail``, and reads the stream at ``rate`` KB/s, like a client on a slow
link. When the app logs faster than that, the session's buffer in Logplex (1,024 lines)
overflows: Logplex counts the drops (``logplex_tail_dropped_total``) and writes an L11
line into this stream each time the client catches up with a write. The client does not
reconnect when Logplex ends the session (a control rod, a restart): like ``heroku logs
--tail``, it is then over, so only an operator action (or the fault's undo) ends it.

The socket asks for a small receive buffer and a small segment size (a slow link's
MSS): on the loopback interface the kernel would otherwise size Logplex's send buffer
for 64 KB segments (megabytes), and a slow reader would need minutes of log volume
before Logplex itself had to hold anything back.

The client runs on the engine's background loop; ``close()`` (the fault's undo) ends it,
and closing the loop cancels it too, so the session never outlives the run.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

L11 = b"Error L11 (Tail buffer overflow)"
TICK = 0.05  # seconds between two reads
RCVBUF = 4096  # bytes: the kernel doubles it
MSS = 536  # bytes: the smallest segment size every IPv4 host must accept
CONNECT_TIMEOUT = 5.0


class TailRefused(Exception):
    """Logplex did not open the session (an HTTP error, e.g. 503 L20 while tails are denied)."""


@dataclass
class TailReading:
    """What the client read: bytes, complete lines, and the L11 reports among them."""

    bytes: int = 0
    lines: int = 0
    l11: int = 0
    last_l11: str = ""
    # builtins.bytes: inside this class `bytes` names the counter above.
    _partial: builtins.bytes = b""

    def feed(self, data: builtins.bytes) -> None:
        self.bytes += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        self._partial = self._partial[-4096:]  # a line is never this long; bound the memory
        for line in complete:
            if not line.strip() or _is_chunk_size(line):
                continue
            self.lines += 1
            if L11 in line:
                self.l11 += 1
                self.last_l11 = line.decode(errors="replace").strip()[-200:]


def _is_chunk_size(line: bytes) -> bool:
    """The chunked encoding's size lines (``1a2f\\r``) are not log lines."""
    text = line.strip()
    return 0 < len(text) <= 8 and all(c in b"0123456789abcdefABCDEF" for c in text)


class SlowTail:
    """One tail session whose client reads ``rate`` KB/s (1 KB = 1,024 bytes)."""

    def __init__(self, logplex_url: str, app: str, rate_kb: int) -> None:
        parts = urlsplit(logplex_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.app = app
        self.rate = rate_kb * 1024
        self.reading = TailReading()
        self.started: float | None = None
        self.ended: float | None = None  # when Logplex ended the stream
        self.closed = False
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect and read the response head; raises TailRefused or OSError."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            with contextlib.suppress(OSError):  # not every platform lets a client set it
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
            sock.setblocking(False)
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
                reader, writer = await asyncio.open_connection(sock=sock, limit=RCVBUF)
        except BaseException:
            sock.close()
            raise
        self._writer = writer
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                writer.write(f"GET /tail?app={quote(self.app, safe='')} HTTP/1.1\r\n"
                             "Host: logplex\r\nUser-Agent: simctl-slow-tail\r\n"
                             "Connection: close\r\n\r\n".encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise TailRefused(f"no HTTP response head ({type(exc).__name__})") from None
        except BaseException:
            writer.close()
            raise
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if not status.startswith("HTTP/1.1 200"):
            body = b""
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    body = await reader.read(500)
            writer.close()
            raise TailRefused(f"{status} {body.decode(errors='replace').strip()}".strip())
        self.started = time.monotonic()
        self._task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        budget = 0.0
        last = time.monotonic()
        try:
            while True:
                await asyncio.sleep(TICK)
                now = time.monotonic()
                budget = min(budget + (now - last) * self.rate, self.rate * TICK * 4)
                last = now
                if budget < 1:
                    continue
                data = await reader.read(int(budget))
                if not data:
                    self.ended = time.monotonic()
                    return
                budget -= len(data)
                self.reading.feed(data)
        except (ConnectionError, OSError):
            self.ended = time.monotonic()
        finally:
            if self._writer is not None:
                self._writer.close()

    @property
    def open_now(self) -> bool:
        return self._task is not None and not self._task.done()

    async def close(self) -> str:
        """End the session (idempotent); returns what the client saw, in one line."""
        was_open = self.open_now
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        if self.started is None:
            return "no tail session was open"
        if was_open:
            return f"closed the tail session: {self.summary()}"
        after = (self.ended or time.monotonic()) - self.started
        return f"logplex had ended the tail session after {after:.1f}s: {self.summary()}"

    def summary(self) -> str:
        r = self.reading
        text = f"read {r.bytes} bytes, {r.lines} lines, {r.l11} L11 report(s)"
        return text + (f" (last: {r.last_l11})" if r.last_l11 else "")
