"""What every platform service shares: lifecycle, /health, /metrics, key=value logs.

A service is an aiohttp application plus hooks. ``serve()`` runs it until SIGINT or
SIGTERM and prints one ready line on stdout (``ready service=NAME url=URL``) once it
listens, so a launcher waits on a signal rather than a sleep. Configuration comes from
click options, each of which also reads ``SIMCTL_<OPTION>`` from the environment.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from simctl.platform.guard import browser_guard_middleware
from simctl.platform.timing import HEROKU, Timing


def kv(**fields: Any) -> str:
    """Format key=value pairs the way Heroku's logs do (quotes only when needed)."""
    parts = []
    for key, value in fields.items():
        text = "" if value is None else str(value)
        if text == "" or any(c in text for c in ' "='):
            text = '"' + text.replace('"', '\\"') + '"' if text else ""
        parts.append(f"{key}={text}")
    return " ".join(parts)


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(name)s %(message)s",
    )


class Health:
    """A service's readiness: ok, or not, with a reason."""

    def __init__(self) -> None:
        self.status = "starting"
        self.reason = "starting"

    def set(self, status: str, reason: str = "") -> None:
        self.status = status
        self.reason = reason

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "degraded")


class Service:
    """Base class: subclasses add routes in ``setup`` and work in ``start``/``stop``."""

    name = "service"

    def __init__(self, timing: Timing = HEROKU) -> None:
        self.timing = timing
        self.health = Health()
        self.registry = CollectorRegistry()
        self.log = logging.getLogger(f"simctl.{self.name}")
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.port = 0

    # hooks -------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        """Add this service's routes."""

    async def start(self) -> None:
        """Start background work (called once the server listens)."""

    async def stop(self) -> None:
        """Stop background work."""

    def health_details(self) -> dict[str, Any]:
        return {}

    def ready_line(self) -> str:
        """The line printed once the service listens (services with more ports extend it)."""
        return f"ready service={self.name} url={self.url}"

    # lifecycle ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024**2,
                              middlewares=[browser_guard_middleware()])
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self.setup(app)
        return app

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> None:
        runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        # The type: ignore below: set once started.
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}"
        if self.health.status == "starting":
            self.health.set("ok")
        await self.start()
        self.log.info(kv(at="listening", service=self.name, url=self.url))

    async def close(self) -> None:
        await self.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Service:
        await self.listen()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _health(self, request: web.Request) -> web.Response:
        body = {"service": self.name, "status": self.health.status, "reason": self.health.reason}
        body.update(self.health_details())
        return web.json_response(body, status=200 if self.health.ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )


async def serve(service: Service, host: str, port: int) -> int:
    """Run until SIGINT/SIGTERM; print the ready line; return the signal number."""
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[int] = loop.create_future()

    def stop(signum: int) -> None:
        if not stopped.done():
            stopped.set_result(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await service.listen(host, port)
        print(service.ready_line(), flush=True)
        return await stopped
    finally:
        await service.close()


def run_service(service: Service, host: str, port: int, log_level: str = "info") -> None:
    """Entry point for a service process; exits 0 after SIGINT/SIGTERM."""
    from simctl.faults.server import install_uvloop

    setup_logging(log_level)
    install_uvloop()
    try:
        asyncio.run(serve(service, host, port))
    except OSError as exc:
        print(f"error: {service.name}: cannot listen on {host}:{port}: {exc.strerror}",
              file=sys.stderr)
        sys.exit(6)
