"""Tail sessions: ``GET /tail?app=APP[&n=N]`` streams an app's lines as they arrive.

Each session has its own bounded buffer (``tail_buffer`` lines, newest kept), filled by
ingest without blocking. The session writes whatever it holds in one chunk; while a
slow reader keeps that write waiting, the buffer overflows, and the first chunk after
the reader catches up starts with the L11 line for what was dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import Counter

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex.buffer import LossyBuffer

IDLE_CHECK = 1.0  # seconds between checks that an idle tail's client is still there
L11 = "Error L11 (Tail buffer overflow) -> This tail session dropped {n} messages since {since}."


def render(messages: Sequence[LogMessage]) -> str:
    return "".join([m.display() + "\n" for m in messages])


def overflow_line(count: int, since: str) -> str:
    message = LogMessage("heroku", "logplex", L11.format(n=count, since=since),
                         logframe.now_rfc5424(), "logplex", 172)
    return message.display() + "\n"


class TailSession:
    __slots__ = ("app", "buffer", "closed", "transport", "_dropped", "_wake")

    def __init__(self, app: str, capacity: int, dropped: Counter) -> None:
        self.app = app
        self.buffer: LossyBuffer[LogMessage] = LossyBuffer(capacity)
        self.closed = False
        self.transport: asyncio.BaseTransport | None = None
        self._dropped = dropped
        self._wake = asyncio.Event()

    def push(self, messages: Sequence[LogMessage]) -> None:
        if self.closed:
            return
        displaced = self.buffer.push(messages)
        if displaced:
            self._dropped.inc(displaced)
        self._wake.set()

    def close(self) -> None:
        """End the session. One that keeps up ends its response cleanly; one whose write
        still waits on a slow client is cut off (the connection aborted), or it would go
        on holding its buffer until that client caught up."""
        self.closed = True
        self._wake.set()
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) \
                and transport.get_write_buffer_size() > 0:
            transport.abort()

    async def stream(self, request: web.Request, response: web.StreamResponse,
                     backlog: Sequence[LogMessage]) -> None:
        """Write the backlog, then follow until closed or the client goes away (noticed
        on the next write, or within ``IDLE_CHECK`` seconds when nothing arrives)."""
        self.transport = request.transport
        if backlog:
            await response.write(render(backlog).encode(errors="replace"))
        while not self.closed:
            if not len(self.buffer):
                self._wake.clear()
                try:
                    async with asyncio.timeout(IDLE_CHECK):  # not wait_for (3.11 races)
                        await self._wake.wait()
                except TimeoutError:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        return
                continue
            lost, since = self.buffer.take_loss()
            chunk = render(self.buffer.take_all())
            if lost:
                chunk = overflow_line(lost, since) + chunk
            await response.write(chunk.encode(errors="replace"))
