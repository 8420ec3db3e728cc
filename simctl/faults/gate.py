"""A cap on the API's open connections (docs/toxics.md, "Hostile input").

Proxies and API share one process and one descriptor limit. Without a cap, a client
holding thousands of idle API connections uses up the descriptors every proxied
connection needs. Connections over the cap are reset as soon as they are accepted, so
they never hold a descriptor; those under it are served by aiohttp as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

log = logging.getLogger("simctl.faults.api")


class ConnectionGate:
    """Wraps an HTTP protocol factory; counts the connections it lets through."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], limit: int) -> None:
        self.factory = factory
        self.limit = limit
        self.open = 0
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limit:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("at=api_connection_refused open=%d refused=%d", self.open,
                            self.refused)
            return _Refused()
        self.open += 1  # counted from accept, not connection_made: a burst is one callback
        return _Counted(self, self.factory())


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).abort()  # RST, descriptor freed at once


class _Counted(asyncio.Protocol):
    """Forwards every callback to the real protocol; gives the slot back when it ends."""

    __slots__ = ("gate", "inner")

    def __init__(self, gate: ConnectionGate, inner: asyncio.Protocol) -> None:
        self.gate = gate
        self.inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.open -= 1
        self.inner.connection_lost(exc)
