"""Kept-alive dyno connections, parked between requests, by dyno key.

Vegur closes a back-end connection after each request by default; keep-alive to back
ends is opt-in (docs/platform.md, "Routing behaviour"; since Vegur 2.0.0), and so it is
here: ``enabled`` is off unless the router runs with ``--backend-keepalive on`` or an
operator switches it (``POST /admin/keepalive``, ``simctl router keepalive``). A new
connection per request costs a connect, an accept and a close in every process on the
path (router, the link's proxy, the dyno), and on a real router a TIME_WAIT port
(incident A2), which is why it is a mitigation. Connect failures, quarantine and H19/H21
still come from new connections: a dyno only has parked connections after it answered,
and a failed connect drops them.

A connection is reused only while it is quiet: a peer that closed it (or a proxy that
was disabled) has shown EOF by then, and anything else arriving while parked closes it.
Parked connections are closed after ``IDLE`` seconds, well below the keep-alive timeouts
of app servers (aiohttp 75 s), so a dyno rarely closes one just as it is reused.
"""

from __future__ import annotations

import asyncio

from simctl.platform.router.dispatch import Waker
from simctl.platform.router.proxying import BackendConnection

IDLE = 4.0


class DynoPool:
    def __init__(self, loop: asyncio.AbstractEventLoop, idle: float = IDLE,
                 enabled: bool = False) -> None:
        self.loop = loop
        self.idle = idle
        self.enabled = enabled
        self._parked: dict[str, list[tuple[BackendConnection, float]]] = {}
        self._waker = Waker(loop)  # parked connections signal nobody
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return sum(len(c) for c in self._parked.values())

    def take(self, key: str) -> BackendConnection | None:
        """The most recently parked live connection to ``key``, or None."""
        if not self.enabled:
            return None
        parked = self._parked.get(key)
        if not parked:
            return None
        limit = self.loop.time() - self.idle
        while parked:
            conn, since = parked.pop()
            if not conn.eof and since > limit:
                return conn
            conn.close()
        return None

    def put(self, key: str, conn: BackendConnection) -> None:
        """Park ``conn`` after a complete response, or close it if it cannot be reused."""
        if not self.enabled or not conn.park(self._waker):
            conn.close()
            return
        self._parked.setdefault(key, []).append((conn, self.loop.time()))
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.idle, self._expire)

    def drop(self, key: str) -> None:
        for conn, _ in self._parked.pop(key, ()):
            conn.close()

    def switch(self, enabled: bool) -> int:
        """Turn keep-alive on or off; off closes the parked connections (returns how many)."""
        parked = len(self)
        self.enabled = enabled
        if not enabled:
            self.close()
        return parked if not enabled else 0

    def close(self) -> None:
        for key in list(self._parked):
            self.drop(key)
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def _expire(self) -> None:
        self._sweep = None
        limit = self.loop.time() - self.idle
        for key, parked in list(self._parked.items()):
            live = []
            for conn, since in parked:
                if since > limit and not conn.eof:
                    live.append((conn, since))
                else:
                    conn.close()
            if live:
                self._parked[key] = live
            else:
                del self._parked[key]
        if self._parked:
            self._sweep = self.loop.call_later(self.idle, self._expire)
