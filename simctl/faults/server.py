"""The embedded Toxiproxy-compatible server: API plus proxies, usable as a library.

    async with ToxiproxyServer(port=0) as server:
        ...  # server.url is the API address

``simctl toxiproxy serve`` runs the same object until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from simctl.errors import AddressInUse, InvalidInput
from simctl.faults import wire
from simctl.faults.api import ToxiproxyApi
from simctl.faults.errors import ApiError
from simctl.faults.gate import ConnectionGate
from simctl.faults.metrics import ProxyMetrics
from simctl.faults.proxy_collection import ProxyCollection, parse_proxy

log = logging.getLogger("simctl.faults")

# API limits (docs/toxics.md, "Hostile input"). A request head must arrive within
# HEADER_TIMEOUT (idle keep-alive connections close then too), its body within
# BODY_TIMEOUT; connections beyond MAX_API_CONNECTIONS are reset on accept.
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 15.0
MAX_API_CONNECTIONS = 256
# How long the rest of an unread body is read and dropped after an early reply (so the
# client sees the reply, not a reset); aiohttp's 10 s default would hold a trickler.
LINGERING_TIME = 2.0


def install_uvloop() -> bool:
    """Use uvloop when it is installed (optional dependency)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def tune_gc() -> None:
    """Keep garbage collection pauses off the data path of a long-running server.

    Everything allocated at startup (aiohttp, the API, the imports: over 100,000 objects)
    lives as long as the process; frozen, the collector no longer walks it, and a full
    collection takes well under a millisecond instead of tens. Connections free
    themselves by refcounting (ProxyConnection._finish), so little garbage is cyclic and
    the young generation can be collected less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, 20, 20)


def load_config(path: str | Path) -> list[Any]:
    """Read a populate-format file; errors are the user's, reported in one line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        body = wire.decode(raw)
    except ApiError as exc:
        raise InvalidInput(f"{path}: {exc.message}") from None
    if not isinstance(body, list):
        raise InvalidInput(f"{path}: expected a JSON array of proxies")
    for index, entry in enumerate(body, start=1):
        try:
            parse_proxy(entry, f" at proxy {index}")
        except ApiError as exc:
            raise InvalidInput(f"{path}: {exc.message}") from None
    return body


class ToxiproxyServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        seed: int | None = None,
        proxy_metrics: bool = False,
        runtime_metrics: bool = False,
        config: list[Any] | None = None,
        header_timeout: float = HEADER_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        max_api_connections: int = MAX_API_CONNECTIONS,
    ) -> None:
        self.host = host
        self.port = port
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_api_connections = max_api_connections
        self.gate: ConnectionGate | None = None
        self._api_server: asyncio.AbstractServer | None = None
        self.metrics = ProxyMetrics(proxy_metrics, runtime_metrics)
        self.collection = ProxyCollection(seed=seed, metrics=self.metrics)
        self.config = config
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        api = ToxiproxyApi(self.collection, self.metrics, self.body_timeout)
        # keepalive_timeout closes a connection that has not sent a whole request head in
        # that time, whether it sent nothing, half a head, or is idle between requests.
        runner = web.AppRunner(
            api.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            keepalive_timeout=self.header_timeout,
            lingering_time=LINGERING_TIME,
        )
        await runner.setup()
        assert runner.server is not None
        self.gate = ConnectionGate(runner.server, self.max_api_connections)
        loop = asyncio.get_running_loop()
        try:
            self._api_server = await loop.create_server(
                self.gate, self.host, self.port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse(
                    f"cannot listen on {self.host}:{self.port}: address already in use"
                ) from None
            raise AddressInUse(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        self._runner = runner
        self.port = self._api_server.sockets[0].getsockname()[1]  # when 0 was asked for
        if self.config:
            try:
                proxies, error = await self.collection.populate(self.config)
            except ApiError as exc:  # a malformed entry (load_config checks files first)
                proxies, error = [], exc
            if error is not None:
                await self.stop()
                raise InvalidInput(f"config: {error.message}")
            log.info("at=populated proxies=%d", len(proxies))

    async def stop(self) -> None:
        await self.collection.close()
        api_server, self._api_server = self._api_server, None
        if api_server is not None:
            api_server.close()
        if self._runner is not None:
            await self._runner.cleanup()  # closes the API connections
            self._runner = None

    async def __aenter__(self) -> ToxiproxyServer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self, ready: Any = None) -> int:
        """Run until SIGINT or SIGTERM; returns the signal number that stopped it."""
        await self.start()
        tune_gc()
        loop = asyncio.get_running_loop()
        stopped: asyncio.Future[int] = loop.create_future()

        def stop(signum: int) -> None:
            if not stopped.done():
                stopped.set_result(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        if ready is not None:
            ready(self)
        try:
            return await stopped
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await self.stop()


def describe(server: ToxiproxyServer) -> str:
    return json.dumps({"api": server.url, "proxies": sorted(server.collection.proxies)})
