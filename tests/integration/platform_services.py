"""The five platform services in this process, for tests of their operator endpoints.

Test modules import from here (``from tests.integration.platform_services import ...``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from simctl.platform import logframe
from simctl.platform.drain import DrainService
from simctl.platform.dyno import DynoService
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex import LogplexService
from simctl.platform.router import RouterService
from simctl.platform.sync import SyncService
from simctl.platform.timing import FAST


@dataclass
class Stack:
    sync: SyncService
    dyno: DynoService
    logplex: LogplexService
    router: RouterService
    drain: DrainService

    def endpoints(self) -> list[tuple[str, str, dict]]:
        """Every state-changing operator endpoint, with a body that would change state."""
        sync, dyno, logplex = self.sync.url, self.dyno.url, self.logplex.url
        router, drain = self.router.admin_url, self.drain.url
        return [
            ("POST", f"{sync}/apps/api", {"domains": ["api.simctl.test"]}),
            ("DELETE", f"{sync}/apps/web", {}),
            ("POST", f"{sync}/apps/web/dynos", {"dynos": []}),
            ("POST", f"{sync}/apps/web/dynos/web.1", {"state": "down"}),
            ("POST", f"{sync}/apps/web/maintenance", {"enabled": True}),
            ("POST", f"{sync}/poison", {}),
            ("POST", f"{dyno}/control", {"behaviour": "error"}),
            ("DELETE", f"{dyno}/control", {}),
            ("POST", f"{logplex}/admin/rods/deny_logs_ingress", {"enabled": True}),
            ("POST", f"{logplex}/admin/drains/main", {"enabled": False}),
            ("POST", f"{router}/admin/flush", {}),
            ("POST", f"{router}/admin/resync", {}),
            ("POST", f"{router}/admin/keepalive", {"enabled": True}),
            ("POST", f"{drain}/control", {"status": 500}),
            ("DELETE", f"{drain}/control", {}),
            ("DELETE", f"{drain}/messages", {}),
        ]

    def state_urls(self) -> list[str]:
        return [f"{self.sync.url}/routes", f"{self.dyno.url}/control",
                f"{self.logplex.url}/admin/rods", f"{self.logplex.url}/admin/drains/main",
                f"{self.router.admin_url}/admin/keepalive", f"{self.drain.url}/control",
                f"{self.drain.url}/stats"]


@contextlib.asynccontextmanager
async def platform_services() -> AsyncIterator[Stack]:
    """sync (app ``web`` on the dyno), dyno web.1, drain (one message stored), logplex
    (drain ``main``) and a router following sync, all on 127.0.0.1 ports of their own."""
    sync = SyncService(FAST)
    dyno = DynoService(dyno="web.1", timing=FAST)
    drain = DrainService(FAST)
    started: list = []
    try:
        for service in (sync, dyno, drain):
            await service.listen()
            started.append(service)
        logplex = LogplexService(FAST, [f"main={drain.url}/logs"])
        await logplex.listen()
        started.append(logplex)
        router = RouterService(FAST, sync_url=sync.url)
        await router.listen()
        started.append(router)
        async with aiohttp.ClientSession() as http, http.post(
                f"{sync.url}/apps/web", json={"dynos": [
                    {"name": "web.1", "address": f"127.0.0.1:{dyno.port}"}]}) as resp:
            assert resp.status == 200
        async with aiohttp.ClientSession() as http, http.post(drain.url + "/logs", data=(
                logframe.encode_many([LogMessage("app", "web.1", "kept", "2026-01-01T00:00:00Z")],
                                     structured=False))) as resp:
            assert resp.status < 300
        yield Stack(sync, dyno, logplex, router, drain)
    finally:
        for service in reversed(started):
            await service.close()
