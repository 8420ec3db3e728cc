"""The Toxiproxy v2 HTTP API on aiohttp (routes as in api.go, docs/toxiproxy.md)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from simctl.faults import wire
from simctl.faults.errors import ApiError
from simctl.faults.metrics import ProxyMetrics
from simctl.faults.proxy_collection import ProxyCollection

log = logging.getLogger("simctl.faults.api")

TOXIPROXY_VERSION = "2.12.0"
JSON = "application/json"
# The largest legitimate body is a /populate list: 1 MiB holds about 10,000 proxies. A
# larger body would hold the event loop (and so every proxy) while it is decoded.
MAX_BODY = 1024**2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=wire.encode(data), status=status, content_type=JSON)


def _error(exc: ApiError) -> web.Response:
    # http.Error: JSON body, trailing newline, text/plain
    # (docs/toxiproxy.md, "Conventions and errors").
    body = wire.encode({"error": exc.message, "status": exc.status}) + b"\n"
    return web.Response(
        body=body,
        status=exc.status,
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


def _text(status: int, text: str) -> web.Response:
    return web.Response(
        body=text.encode(),
        status=status,
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


class ToxiproxyApi:
    def __init__(
        self, collection: ProxyCollection, metrics: ProxyMetrics, body_timeout: float = 15.0
    ) -> None:
        self.collection = collection
        self.metrics = metrics
        self.body_timeout = body_timeout  # Toxiproxy's ReadTimeout is 15 s too
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY)
        routes = [
            web.post("/reset", self.reset),
            web.get("/proxies", self.proxy_index, allow_head=False),
            web.post("/proxies", self.proxy_create),
            web.post("/populate", self.populate),
            web.get("/proxies/{proxy}", self.proxy_show, allow_head=False),
            web.post("/proxies/{proxy}", self.proxy_update),
            web.patch("/proxies/{proxy}", self.proxy_update),
            web.delete("/proxies/{proxy}", self.proxy_delete),
            web.get("/proxies/{proxy}/toxics", self.toxic_index, allow_head=False),
            web.post("/proxies/{proxy}/toxics", self.toxic_create),
            web.get("/proxies/{proxy}/toxics/{toxic}", self.toxic_show, allow_head=False),
            web.post("/proxies/{proxy}/toxics/{toxic}", self.toxic_update),
            web.patch("/proxies/{proxy}/toxics/{toxic}", self.toxic_update),
            web.delete("/proxies/{proxy}/toxics/{toxic}", self.toxic_delete),
            web.get("/version", self.version, allow_head=False),
        ]
        if self.metrics.enabled:
            routes.append(web.route("*", "/metrics", self.metrics_handler))
        app.add_routes(routes)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            response: web.StreamResponse = _text(403, "User agent not allowed\n")
        else:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = _error(exc)
            except web.HTTPNotFound:
                response = _text(404, "404 page not found\n")
            except web.HTTPMethodNotAllowed:
                response = web.Response(status=405)
            except web.HTTPException as exc:  # e.g. request body too large
                response = _error(ApiError(exc.reason, exc.status))
            except Exception as exc:  # a bug: answer in the API's shape, keep serving
                log.exception("at=error method=%s path=%s", request.method, request.path)
                response = _error(ApiError(f"internal error: {type(exc).__name__}", 500))
        if response.status == 408:
            response.force_close()  # the rest of the body may never come
        response.headers["X-Toxiproxy-Request-Id"] = f"{self._id_prefix}{next(self._ids):08x}"
        return response

    async def _body(self, request: web.Request) -> bytes:
        """The whole body, or 408 when it does not arrive in time (a trickling client
        would otherwise hold its connection and a descriptor for ever)."""
        try:
            async with asyncio.timeout(self.body_timeout):
                return await request.read()
        except TimeoutError:
            raise ApiError(
                f"request body not received within {self.body_timeout:g} s", 408
            ) from None

    # -- proxies -----------------------------------------------------------------------

    async def proxy_index(self, request: web.Request) -> web.Response:
        proxies = self.collection.proxies
        return _json({name: proxies[name].to_json() for name in sorted(proxies)})

    async def proxy_create(self, request: web.Request) -> web.Response:
        body = wire.decode(await self._body(request))
        # The reply is built inside the create, so a proxy that cannot be shown is not kept.
        _, reply = await self.collection.create(body, lambda p: _json(p.to_json(), 201))
        return reply

    async def populate(self, request: web.Request) -> web.Response:
        try:
            body = wire.decode(await self._body(request))
            proxies, error = await self.collection.populate(body)
        except ApiError as exc:
            proxies, error = None, exc
        shown = [p.to_json() for p in proxies] if proxies else None
        if error is None:
            return _json({"proxies": shown}, 201)
        return _json(
            {"error": error.message, "status": error.status, "proxies": shown}, error.status
        )

    async def proxy_show(self, request: web.Request) -> web.Response:
        return _json(self.collection.get(request.match_info["proxy"]).to_json())

    async def proxy_update(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        body = wire.expect_object(wire.decode(await self._body(request)), "toxiproxy.Proxy")
        listen = wire.get_str(body, "listen", proxy.listen, "Proxy.listen")
        upstream = wire.get_str(body, "upstream", proxy.upstream, "Proxy.upstream")
        enabled = wire.get_bool(body, "enabled", proxy.enabled, "Proxy.enabled")
        await proxy.update(listen, upstream, enabled)
        return _json(proxy.to_json())

    async def proxy_delete(self, request: web.Request) -> web.Response:
        await self.collection.remove(request.match_info["proxy"])
        return web.Response(status=204)

    # -- toxics ------------------------------------------------------------------------

    async def toxic_index(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        return _json(proxy.toxics.to_json())

    async def toxic_create(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        spec = proxy.toxics.parse(wire.decode(await self._body(request)))
        await proxy.toxics.add(spec)
        return _json(spec.to_json())  # 200, not 201, as Toxiproxy does

    async def toxic_show(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        return _json(proxy.toxics.get(request.match_info["toxic"]).to_json())

    async def toxic_update(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        name = request.match_info["toxic"]
        proxy.toxics.get(name)  # 404 before looking at the body
        spec = await proxy.toxics.update(name, wire.decode(await self._body(request)))
        return _json(spec.to_json())

    async def toxic_delete(self, request: web.Request) -> web.Response:
        proxy = self.collection.get(request.match_info["proxy"])
        await proxy.toxics.remove(request.match_info["toxic"])
        return web.Response(status=204)

    # -- misc --------------------------------------------------------------------------

    async def reset(self, request: web.Request) -> web.Response:
        await self.collection.reset()
        return web.Response(status=204)

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(
            body=f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode(),
            headers={"Content-Type": "application/json;charset=utf-8"},
        )

    async def metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
