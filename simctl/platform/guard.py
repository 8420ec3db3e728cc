"""Keep web browsers from driving state-changing endpoints (docs/security.md).

Every service binds 127.0.0.1, but any page a browser opens can still send requests
there: a ``<form>`` or ``fetch(..., {mode: "no-cors"})`` POST with ``text/plain`` goes
out without a CORS preflight. ``browser_guard_middleware()`` refuses, on POST, PUT,
PATCH and DELETE:

- 403 when the request says it comes from another site: an ``Origin`` that is not the
  service's own loopback origin, or ``Sec-Fetch-Site: cross-site|same-site``;
- 415 when the body is not declared ``application/json`` (bodyless requests too), so a
  browser can only send one after a preflight, which no service answers.

Handlers that take another body type say so with ``@accepts(...)``; handlers that serve
app traffic (a dyno's catch-all) opt out with ``@unguarded``. Refusals are JSON
``{"error", "status"}``, the shape every service answers errors in.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
ANY = "*/*"
_ACCEPTS = "_guard_accepts"
_UNGUARDED = "_guard_unguarded"


def accepts(*content_types: str) -> Callable[[H], H]:
    """Let a handler take these body types instead of JSON (``*/*``: it checks them itself)."""

    def mark(handler: H) -> H:
        setattr(handler, _ACCEPTS, frozenset(t.lower() for t in content_types))
        return handler

    return mark


def unguarded(handler: H) -> H:
    """Serve this handler to anyone: it is app traffic, not an operator action."""
    setattr(handler, _UNGUARDED, True)
    return handler


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``*.localhost`` and loopback addresses (port optional)."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:port
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def refusal(request: web.Request) -> tuple[int, str] | None:
    """Why this request must be refused, as (status, message); None to let it through."""
    if request.method not in STATE_CHANGING:
        return None
    if request.match_info.http_exception is not None:
        return None  # no such route or method: the router's own 404/405 says so
    handler = request.match_info.handler
    if getattr(handler, _UNGUARDED, False):
        return None
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site in ("cross-site", "same-site"):
        return 403, f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = request.headers.get("Origin")
    # A rebound DNS name is "same origin" to the browser: the host must be loopback too.
    if origin is not None and (origin.lower() != own_origin(request)
                               or not is_loopback_host(request.host)):
        return 403, f"cross-origin request refused (Origin: {origin[:100]})"
    allowed = getattr(handler, _ACCEPTS, frozenset({JSON}))
    if ANY in allowed:
        return None  # the handler checks its body type itself
    if request.content_type.lower() not in allowed or "Content-Type" not in request.headers:
        wanted = " or ".join(sorted(allowed))
        return 415, f"Content-Type must be {wanted}"
    return None


def browser_guard_middleware() -> Middleware:
    """The aiohttp middleware: ``web.Application(middlewares=[browser_guard_middleware()])``."""

    @web.middleware
    async def browser_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(request)
        if refused is None:
            return await handler(request)
        status, message = refused
        return web.Response(status=status, content_type=JSON,
                            text=json.dumps({"error": message, "status": status}))

    return browser_guard
