"""The router service: app traffic on --port (and --tls-port), operators on --admin-port."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

from aiohttp import web

from simctl.platform.router import tls
from simctl.platform.router.core import RouterCore
from simctl.platform.router.follower import SyncError, SyncFollower, cancel_and_wait
from simctl.platform.router.http import ClientConnection
from simctl.platform.router.logs import RouterLogs, logs_url
from simctl.platform.router.metrics import RouterMetrics
from simctl.platform.service import Service, kv
from simctl.platform.shipper import ShipperCollector
from simctl.platform.timing import HEROKU, Timing


class RouterService(Service):
    name = "router"

    def __init__(
        self,
        timing: Timing = HEROKU,
        *,
        sync_url: str | None = None,
        logplex_url: str | None = None,
        tls_port: int = -1,
        admin_port: int = 0,
        routes: dict[str, Any] | None = None,
        instance: str = "router",
        backend_keepalive: bool = False,
    ) -> None:
        super().__init__(timing)
        if logplex_url:
            logs_url(logplex_url)  # a bad URL is the caller's error, before anything starts
        self.sync_url = sync_url
        self.logplex_url = logplex_url
        self.tls_port = tls_port
        self.admin_port = admin_port
        self.routes = routes
        self.instance = instance
        self.backend_keepalive = backend_keepalive
        self.core: RouterCore | None = None
        self.follower: SyncFollower | None = None
        self.metrics: RouterMetrics | None = None
        self.certificate: tls.Certificate | None = None
        self.http_port = 0
        self.tls_url = ""
        self.admin_url = ""
        self._servers: list[asyncio.Server] = []

    # lifecycle -------------------------------------------------------------------------------

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> None:
        logs = RouterLogs(self.logplex_url, self.timing, host=self.instance)
        core = self.core = RouterCore(self.timing, logs, self.backend_keepalive)
        self.metrics = core.metrics = RouterMetrics(self.registry, core.state)
        self.registry.register(ShipperCollector(lambda: list(logs.shippers.values())))
        try:
            await self._listen(host, port, core)
        except BaseException:
            await self.close()
            raise
        await self.start()
        self.log.info(kv(at="listening", service=self.name, url=self.url, tls=self.tls_url or None,
                         admin=self.admin_url))

    async def _listen(self, host: str, port: int, core: RouterCore) -> None:
        loop = asyncio.get_running_loop()
        shown = f"[{host}]" if ":" in host else host
        server = await loop.create_server(
            lambda: ClientConnection(core, "http", self.http_port), host, port,
            reuse_address=True, backlog=1024)
        self._servers.append(server)
        self.http_port = _port(server)
        self.port = self.http_port
        self.url = f"http://{shown}:{self.http_port}"
        if self.tls_port >= 0:
            self.certificate = tls.self_signed()
            context = tls.server_context(self.certificate)
            holder: dict[str, int] = {}
            server = await loop.create_server(
                lambda: ClientConnection(core, "https", holder["port"]), host, self.tls_port,
                ssl=context, reuse_address=True, backlog=1024,
                ssl_handshake_timeout=self.timing.connect_timeout * 2)
            self._servers.append(server)
            holder["port"] = _port(server)
            self.tls_url = f"https://{shown}:{holder['port']}"
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, host, self.admin_port, reuse_address=True)
        await site.start()
        self.admin_url = f"http://{shown}:{_port(site._server)}"

    async def start(self) -> None:
        core = self.core
        assert core is not None
        if self.routes is not None:
            core.table.load(self.routes)
        if self.sync_url:
            self.follower = SyncFollower(self.sync_url, core.table, self.timing, self.metrics)
            await self.follower.start()
        self.health.set(*self._health_state())

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        if self.follower is not None:
            await self.follower.stop()
        core = self.core
        if core is not None:
            tasks = [c.task for c in list(core.connections) if c.task is not None]
            await asyncio.gather(*(cancel_and_wait(t) for t in tasks))
            core.pool.close()
            await core.logs.stop()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def ready_line(self) -> str:
        line = f"ready service={self.name} url={self.url}"
        if self.tls_url:
            line += f" tls={self.tls_url}"
        return f"{line} admin={self.admin_url}"

    # health ----------------------------------------------------------------------------------

    def _health_state(self) -> tuple[str, str]:
        if self.follower is not None:
            return self.follower.health()
        if self.core is not None and self.core.table.loaded:
            return "ok", "static route table"
        return "degraded", "no route table (no --sync-url)"

    async def _health(self, request: web.Request) -> web.Response:
        if self.core is not None:
            self.health.set(*self._health_state())
        return await super()._health(request)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.follower is not None and self.metrics is not None:
            self.metrics.sync_lag.set(self.follower.lag)
        return await super()._metrics(request)

    def health_details(self) -> dict[str, Any]:
        core = self.core
        if core is None:
            return {}
        now = core.loop.time()
        details: dict[str, Any] = {
            "url": self.url, "tls": self.tls_url or None, "admin": self.admin_url,
            "table_version": core.table.version,
            "quarantined": core.quarantine.active(now),
            "connections": len(core.connections),
            "inflight": core.dispatch.inflight(),
            "log_dropped": core.logs.dropped,
        }
        if self.follower is not None:
            details["sync"] = self.follower.details()
        return details

    # admin -----------------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.router.add_post("/admin/flush", self._flush)
        app.router.add_post("/admin/resync", self._resync)
        app.router.add_get("/admin/routes", self._routes)
        app.router.add_get("/admin/logs", self._logs)
        app.router.add_get("/admin/keepalive", self._keepalive)
        app.router.add_post("/admin/keepalive", self._keepalive)

    async def _keepalive(self, request: web.Request) -> web.Response:
        """Keep-alive to dynos (Vegur's opt-in): GET reads it, POST {"enabled": bool} sets it."""
        pool = self.core.pool if self.core is not None else None
        assert pool is not None
        closed = 0
        if request.method == "POST":
            try:
                body = await request.json()
            except (ValueError, RecursionError):  # deep nesting too
                body = None
            enabled = body.get("enabled") if isinstance(body, dict) else None
            if not isinstance(enabled, bool):
                return web.json_response({"error": 'body must be {"enabled": true|false}'},
                                         status=400)
            closed = pool.switch(enabled)
            self.log.info(kv(at="admin_keepalive", enabled=enabled, closed=closed))
        return web.json_response({"enabled": pool.enabled, "parked": len(pool),
                                  "closed": closed})

    async def _resync(self, request: web.Request) -> web.Response:
        return await self._reload(flush=False)

    async def _flush(self, request: web.Request) -> web.Response:
        return await self._reload(flush=True)

    async def _reload(self, flush: bool) -> web.Response:
        core = self.core
        assert core is not None
        body: dict[str, Any] = {}
        if flush:
            body["quarantine_cleared"] = core.quarantine.clear()
            core.dispatch.wake_all()
        if self.follower is None:
            body.update(version=core.table.version, note="no --sync-url: static table kept")
            return web.json_response(body)
        try:
            body["version"] = await self.follower.resync()
        except SyncError as exc:
            body.update(error=str(exc), version=core.table.version)
            self.log.warning(kv(at="admin_resync_failed", error=str(exc)))
            return web.json_response(body, status=502)
        self.log.info(kv(at="admin_flush" if flush else "admin_resync", version=body["version"]))
        return web.json_response(body)

    async def _routes(self, request: web.Request) -> web.Response:
        assert self.core is not None
        return web.json_response(self.core.table.to_json())

    async def _logs(self, request: web.Request) -> web.Response:
        assert self.core is not None
        try:
            count = max(1, min(int(request.query.get("n", "100")), 1000))
        except ValueError:
            return web.json_response({"error": "n must be an integer"}, status=400)
        lines = list(self.core.logs.recent)[-count:]
        return web.json_response([{"app": app or None, "line": line} for app, line in lines])


def _port(server: Any) -> int:
    for sock in server.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return int(sock.getsockname()[1])
    raise OSError("server has no TCP socket")


def load_routes_file(path: str) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict) and "apps" not in data:
        data = {"apps": data}
    data.setdefault("version", 0)
    return data
