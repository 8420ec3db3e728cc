"""A proxy: one listener, its upstream, its toxics and its open connections."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
from typing import TYPE_CHECKING, Any

from simctl.faults import address
from simctl.faults.connection import ProxyConnection
from simctl.faults.errors import ApiError
from simctl.faults.toxic_collection import ToxicCollection

if TYPE_CHECKING:
    from simctl.faults.link import Link
    from simctl.faults.metrics import ProxyMetrics

log = logging.getLogger("simctl.faults")


class Proxy:
    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        seed: int | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.seed = seed
        self.metrics = metrics
        self.connections: set[ProxyConnection] = set()
        self.toxics = ToxicCollection(self._links)
        self._server: asyncio.Server | None = None
        self._seq = 0
        # start() and stop() await between checking and setting self._server; concurrent
        # API calls (two PATCH enabled:true, PATCH racing /reset) could each bind a
        # listener and orphan one. Toxiproxy holds the proxy's mutex for the same reason.
        self._lifecycle = asyncio.Lock()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},  # Toxiproxy >= 2.5 leaks this key; clients ignore it
            "toxics": self.toxics.to_json(),
        }

    def upstream_address(self) -> tuple[str, int]:
        host, port = address.split(self.upstream)
        return host, port

    def rng_for(self, seq: int, direction: str, toxic: str) -> random.Random:
        if self.seed is None:
            return random.Random()
        # Keyed by proxy, connection number, direction and toxic so that a seeded run draws
        # the same toxicity and jitter whatever the interleaving of other connections.
        return random.Random(f"{self.seed}/{self.name}/{seq}/{direction}/{toxic}")

    def _links(self, direction: str) -> list[Link]:
        attr = "up" if direction == "upstream" else "down"
        return [link for c in self.connections if (link := getattr(c, attr)) is not None]

    def _new_connection(self) -> Any:
        self._seq += 1
        return ProxyConnection(self, self._seq).client

    async def start(self) -> None:
        async with self._lifecycle:
            await self._start()

    async def _start(self) -> None:
        if self.enabled:
            return
        try:
            host, port = address.split(self.listen)
        except ValueError as exc:
            raise ApiError(f"listen tcp: {exc}", 500) from None
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._new_connection, host, port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            reason = (
                "address already in use"
                if exc.errno == errno.EADDRINUSE
                else (exc.strerror or str(exc))
            )
            raise ApiError(f"listen tcp {address.join(host, port)}: bind: {reason}", 500) from None
        except (ValueError, UnicodeError) as exc:  # a host getaddrinfo cannot take (NUL, IDNA)
            raise ApiError(f"listen tcp: lookup {host!r}: {exc}", 500) from None
        sockname = self._server.sockets[0].getsockname()
        self.listen = address.join(sockname[0], sockname[1])
        self.enabled = True
        log.info("proxy=%s at=started listen=%s upstream=%s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Close the listener and every open connection (clients read EOF)."""
        async with self._lifecycle:
            await self._stop()

    async def _stop(self) -> None:
        server, self._server = self._server, None
        self.enabled = False
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.close()
        if server is not None:
            await server.wait_closed()
        log.info("proxy=%s at=stopped", self.name)

    def differs(self, listen: str, upstream: str) -> bool:
        return not address.same(listen, self.listen) or upstream != self.upstream

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply a PATCH (docs/toxiproxy.md, "Proxy lifecycle"): restart on a new address."""
        if self.differs(listen, upstream):
            try:
                address.resolve(listen)
            except (OSError, ValueError) as exc:
                raise ApiError(f"listen tcp: {exc}", 500) from None
            await self.stop()
            self.listen = listen
            self.upstream = upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled and self.enabled:
            await self.stop()

    def connection_finished(self, conn: ProxyConnection) -> None:
        self.connections.discard(conn)
        if self.metrics is not None:
            for link in (conn.up, conn.down):
                if link is not None:
                    self.metrics.add(self, link.direction, link.bytes, link.sent)
