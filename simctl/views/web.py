"""`simctl web`: the dashboard's panels as a page with live Plotly charts (docs/dashboards.md).

The page (static/) polls `GET /api/snapshot` every `interval` seconds (1 by default);
Plotly comes from the installed `plotly` package, so nothing is fetched from a CDN. On
loopback (the default) only requests whose Host is loopback are served, so a rebound DNS
name cannot read the page. Bound beyond loopback, every request needs the token printed at
start: as the `simctl_web_token` cookie (a `?token=` link sets it) or the `X-Simctl-Token`
header.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web

from simctl.platform.guard import browser_guard_middleware, is_loopback_host
from simctl.views.snapshot import Collector, Snapshot

COOKIE = "simctl_web_token"
HEADER = "X-Simctl-Token"
STATIC = ("index.html", "app.js", "style.css", "drill.js")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def plotly_js() -> Path:
    """plotly.min.js as the `plotly` package installs it (package_data)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


def access_middleware(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Loopback Host only without a token; with one, the cookie or header must carry it."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None:
            if not is_loopback_host(request.host):
                return _refuse(403, f"Host {request.host[:100]!r} is not loopback")
            return await handler(request)
        given = request.query.get("token")
        if given is not None and request.method == "GET":
            if not hmac.compare_digest(given, token):
                return _refuse(401, "wrong token")
            # Move the token from the URL (history, Referer) into a cookie.
            query = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPSeeOther(request.rel_url.with_query(query))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            raise response
        presented = request.cookies.get(COOKIE) or request.headers.get(HEADER) or ""
        if not hmac.compare_digest(presented, token):
            return _refuse(401, "token required: open the URL `simctl web` printed")
        return await handler(request)

    return access


class SnapshotCache:
    """One collection serves every open page polling within `max_age` seconds."""

    def __init__(self, collector: Collector, max_age: float = 0.5) -> None:
        self.collector = collector
        self.max_age = max_age
        self._snapshot: Snapshot | None = None
        self._taken = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Snapshot:
        async with self._lock:
            if self._snapshot is None or time.monotonic() - self._taken > self.max_age:
                self._snapshot = await self.collector.collect()
                self._taken = time.monotonic()
            return self._snapshot


def build_app(collector: Collector, token: str | None = None, title: str = "",
              interval: float = 1.0, project: str | None = None) -> web.Application:
    app = web.Application(middlewares=[access_middleware(token), browser_guard_middleware()])
    cache = SnapshotCache(collector, max_age=min(0.5, interval / 2))
    static = resources.files("simctl.views") / "static"

    async def page(request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in STATIC:
            raise web.HTTPNotFound()
        kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
        return web.Response(text=(static / name).read_text(),
                            content_type=kind[name.rsplit(".", 1)[1]],
                            headers={"Cache-Control": "no-cache"})

    async def plotly(request: web.Request) -> web.FileResponse:
        return web.FileResponse(plotly_js(), headers={
            "Content-Type": "text/javascript", "Cache-Control": "max-age=86400"})

    async def snapshot(request: web.Request) -> web.Response:
        snap = await cache.get()
        body = snap.to_json() | {"title": title, "interval": interval}
        return web.Response(text=json.dumps(body, allow_nan=False), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def close(app: web.Application) -> None:
        await collector.close()

    app.router.add_get("/", page)
    app.router.add_get("/static/plotly.min.js", plotly)
    app.router.add_get("/static/{name}", page)
    app.router.add_get("/api/snapshot", snapshot)
    if project:  # the drill page (simctl/views/drill_page.py)
        from simctl.views.drill_page import add_routes

        add_routes(app, project)
    app.on_cleanup.append(close)
    return app
