"""The logplex service: ingest, channels, drains, tails, control rods
(docs/platform.md, "Logplex").

    POST /logs                      application/logplex-1, Basic auth token:t.<app>
    GET  /tail?app=APP[&n=N]        display-format lines, replaying the last N first
    GET  /admin/rods                POST /admin/rods/{rod}      {"enabled": bool}
    GET  /admin/drains[/{name}]     POST /admin/drains/{name}   {"enabled": bool}
    GET  /admin/channels

Ingest is one parse per body and, per channel, one ``extend`` into the history ring
and into each drain's and tail's buffer: no await per message, no per-message task.
Drains buffer output frames, encoded once per body for all of them.
"""

from __future__ import annotations

import base64
import json
import random
from collections import deque
from collections.abc import Iterable
from itertools import islice
from operator import attrgetter
from typing import Any, NoReturn

from aiohttp import web

from simctl.platform import logframe
from simctl.platform.guard import ANY, accepts
from simctl.platform.logframe import FrameError, LogMessage
from simctl.platform.logplex.config import APP, DrainSpec, parse_drains
from simctl.platform.logplex.http_drain import HttpDrain, output_frames
from simctl.platform.logplex.metrics import LogplexMetrics
from simctl.platform.logplex.rods import (
    DENY_DRAIN_FORWARDING,
    DENY_LOGS_INGRESS,
    DENY_TAIL_SESSIONS,
    RODS,
    ControlRods,
)
from simctl.platform.logplex.tail import TailSession, render
from simctl.platform.service import Service, kv
from simctl.platform.timing import HEROKU, Timing

HISTORY = 1500  # lines of history per channel, replayed by tail ?n=
HISTORY_BYTES = 2 * 1024 * 1024  # ... and at most this much text (1,500 full lines is 15 MB)
MESSAGE_COST = 100  # what a message weighs beside its text, for the history's byte bound
_TEXT = attrgetter("text")
MAX_CHANNELS = 1000  # channels are made on first use; this bounds a flood of tokens
MAX_TAILS = 100
INPUT_TYPES = frozenset({logframe.CONTENT_TYPE, "application/x-logplex-1"})
TEXT = "text/plain; charset=utf-8"


class Channel:
    """An app's log stream: history ring, drains and tail sessions."""

    __slots__ = ("app", "drains", "history", "history_bytes", "tails")

    def __init__(self, app: str) -> None:
        self.app = app
        self.history: deque[LogMessage] = deque(maxlen=HISTORY)
        self.history_bytes = 0  # text lengths plus MESSAGE_COST each (characters, not bytes)
        self.drains: list[HttpDrain] = []
        self.tails: set[TailSession] = set()

    def publish(self, messages: list[LogMessage]) -> None:
        history = self.history
        if len(messages) >= HISTORY:
            history.clear()
            self.history_bytes = 0
            kept = messages[-HISTORY:]
        else:
            kept = messages
            displaced = len(history) + len(kept) - HISTORY  # what maxlen is about to drop
            if displaced > 0:
                self.history_bytes -= _weight(islice(history, displaced), displaced)
        history.extend(kept)
        self.history_bytes += _weight(kept, len(kept))
        while self.history_bytes > HISTORY_BYTES:
            self.history_bytes -= len(history.popleft().text) + MESSAGE_COST
        if any(drain.enabled for drain in self.drains):
            frames = output_frames(messages)  # encoded once for every drain
            for drain in self.drains:
                drain.push(frames)
        for tail in self.tails:
            tail.push(messages)


def _weight(messages: Iterable[LogMessage], count: int) -> int:
    """What ``count`` messages weigh against HISTORY_BYTES (map/len: no Python loop)."""
    return sum(map(len, map(_TEXT, messages))) + MESSAGE_COST * count


def token_app(authorization: str) -> str | None:
    """The app named by ``Basic base64(token:t.<app>)``, or None."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, token = decoded.partition(":")
    if user != "token" or not token.startswith("t."):
        return None
    app = token[2:]
    return app if APP.fullmatch(app) else None


def _json_error(status: type[web.HTTPException], message: str, **extra: Any) -> NoReturn:
    raise status(text=json.dumps({"error": message, **extra}), content_type="application/json")


async def _enabled_flag(request: web.Request) -> bool:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting too
        body = None
    if not isinstance(body, dict) or set(body) != {"enabled"} or not isinstance(
            body["enabled"], bool):
        _json_error(web.HTTPBadRequest, 'expected a JSON body {"enabled": true|false}')
    return body["enabled"]


class LogplexService(Service):
    name = "logplex"

    def __init__(
        self,
        timing: Timing = HEROKU,
        drains: Iterable[str | DrainSpec] = (),
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__(timing)
        self.metrics = LogplexMetrics(self.registry)
        self.rods = ControlRods(self.metrics.rod_active)
        self.channels: dict[str, Channel] = {}
        self.drains: dict[str, HttpDrain] = {}
        self.tails: set[TailSession] = set()
        rng = random.Random(seed)
        for spec in parse_drains(drains):
            drain = HttpDrain(spec, timing, self.metrics, self.rods, log=self.log,
                              rng=random.Random(rng.random()), on_change=self._refresh_health)
            self.drains[spec.name] = drain
            # The type: ignore below: force=True always gives a channel.
            self._channel(spec.app, force=True).drains.append(drain)  # type: ignore[union-attr]
        self.metrics.tail_sessions.set_function(lambda: len(self.tails))

    # lifecycle ---------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.router.add_post("/logs", self._ingest)
        app.router.add_get("/tail", self._tail)
        app.router.add_get("/admin/rods", self._get_rods)
        app.router.add_post("/admin/rods/{rod}", self._set_rod)
        app.router.add_get("/admin/drains", self._get_drains)
        app.router.add_get("/admin/drains/{name}", self._get_drain)
        app.router.add_post("/admin/drains/{name}", self._set_drain)
        app.router.add_get("/admin/channels", self._get_channels)

    async def start(self) -> None:
        for drain in self.drains.values():
            await drain.start()
        self._refresh_health()

    async def stop(self) -> None:
        self._close_tails()
        for drain in self.drains.values():
            await drain.stop()

    def _channel(self, app: str, *, force: bool = False) -> Channel | None:
        channel = self.channels.get(app)
        if channel is None and (force or len(self.channels) < MAX_CHANNELS):
            channel = self.channels[app] = Channel(app)
        return channel

    # ingest ------------------------------------------------------------------------------

    def _reject(self, reason: str, status: int, text: str, **headers: str) -> web.Response:
        self.metrics.rejected.labels(reason).inc()
        self.log.debug(kv(at="ingest_rejected", reason=reason, status=status))
        return web.Response(status=status, text=text + "\n", headers=headers or None)

    @accepts(ANY)  # answers a wrong Content-Type with its own counted 415
    async def _ingest(self, request: web.Request) -> web.Response:
        if self.rods.active(DENY_LOGS_INGRESS):
            return self._reject("denied", 503, "Logs ingress denied (control rod)")
        app = token_app(request.headers.get("Authorization", ""))
        if app is None:
            return self._reject("auth", 401, "Unauthorized: expected Basic token:t.<app>",
                                **{"WWW-Authenticate": 'Basic realm="Logplex"'})
        if request.content_type not in INPUT_TYPES:
            return self._reject("content_type", 415,
                                f"Unsupported Content-Type, expected {logframe.CONTENT_TYPE}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject("too_large", 413, "Request body too large")
        try:
            messages = logframe.parse(body)
        except FrameError as exc:
            return self._reject("malformed", 400, f"Malformed log messages: {exc}")
        declared = request.headers.get("Logplex-Msg-Count")
        if declared is not None:
            declared = declared.strip()
            if not (declared.isascii() and declared.isdigit()) or int(declared) != len(messages):
                return self._reject("msg_count", 400, "Message count mismatch")
        channel = self._channel(app)
        if channel is None:
            return self._reject("channels", 429, f"Too many channels (limit {MAX_CHANNELS})")
        self._truncate_long(messages)
        channel.publish(messages)
        self.metrics.received.inc(len(messages))
        return web.Response(status=204)

    def _truncate_long(self, messages: list[LogMessage]) -> None:
        """Cut lines over Logplex's 10,000 bytes (shippers split them before sending;
        what still comes longer is truncated, as Logplex does)."""
        quarter = logframe.MAX_LINE // 4  # shorter texts fit whatever their characters
        if max(map(len, map(_TEXT, messages)), default=0) <= quarter:
            return
        for i in [i for i, m in enumerate(messages) if len(m.text) > quarter]:
            message = messages[i]
            cut = logframe.truncate(message.text)
            if cut is not None:
                messages[i] = LogMessage(message.app, message.proc, cut, message.timestamp,
                                         message.host, message.priority)
                self.metrics.truncated.inc()

    # tail --------------------------------------------------------------------------------

    async def _tail(self, request: web.Request) -> web.StreamResponse:
        if self.rods.active(DENY_TAIL_SESSIONS):
            raise web.HTTPServiceUnavailable(text="Error L20 (Tail sessions forbidden)\n")
        app = request.query.get("app", "")
        if not APP.fullmatch(app):
            raise web.HTTPBadRequest(text="expected ?app=APP (lowercase letters, digits, ._-)\n")
        raw_n = request.query.get("n", "0")
        if not (raw_n.isascii() and raw_n.isdigit()) or int(raw_n) > HISTORY:
            raise web.HTTPBadRequest(text=f"n must be an integer from 0 to {HISTORY}\n")
        n = int(raw_n)
        # follow=0: the last n lines, then the response ends (`simctl logs` without --tail).
        follow = request.query.get("follow", "1") != "0"
        channel = self._channel(app)
        if channel is None or len(self.tails) >= MAX_TAILS:
            raise web.HTTPServiceUnavailable(text="Too many channels or tail sessions\n")
        backlog = list(channel.history)[-n:] if n else []
        if not follow:
            return web.Response(text=render(backlog), content_type="text/plain")
        session = TailSession(app, self.timing.tail_buffer, self.metrics.tail_dropped)
        channel.tails.add(session)  # before any await: nothing falls between backlog and live
        self.tails.add(session)
        response = web.StreamResponse(headers={"Content-Type": TEXT, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            await session.stream(request, response, backlog)
        except ConnectionError:
            pass  # the client went away
        finally:
            channel.tails.discard(session)
            self.tails.discard(session)
        return response

    def _close_tails(self) -> None:
        for session in list(self.tails):
            session.close()

    # admin -------------------------------------------------------------------------------

    async def _get_rods(self, request: web.Request) -> web.Response:
        return web.json_response({"rods": self.rods.snapshot()})

    async def _set_rod(self, request: web.Request) -> web.Response:
        rod = request.match_info["rod"]
        if rod not in self.rods:
            _json_error(web.HTTPNotFound, f"unknown control rod {rod!r}", rods=list(RODS))
        enabled = await _enabled_flag(request)
        if self.rods.set(rod, enabled):
            self.log.info(kv(at="control_rod", rod=rod, enabled=str(enabled).lower()))
        if rod == DENY_TAIL_SESSIONS and enabled:
            self._close_tails()
        if rod == DENY_DRAIN_FORWARDING:
            for drain in self.drains.values():
                drain.kick()
        self._refresh_health()
        return web.json_response({"rod": rod, "enabled": enabled})

    def _drain(self, request: web.Request) -> HttpDrain:
        name = request.match_info["name"]
        drain = self.drains.get(name)
        if drain is None:
            _json_error(web.HTTPNotFound, f"no drain named {name!r}", drains=sorted(self.drains))
        return drain

    async def _get_drains(self, request: web.Request) -> web.Response:
        return web.json_response({"drains": [d.describe() for d in self.drains.values()]})

    async def _get_drain(self, request: web.Request) -> web.Response:
        return web.json_response(self._drain(request).describe())

    async def _set_drain(self, request: web.Request) -> web.Response:
        drain = self._drain(request)
        await drain.set_enabled(await _enabled_flag(request))
        return web.json_response(drain.describe())

    async def _get_channels(self, request: web.Request) -> web.Response:
        return web.json_response({"channels": [
            {"app": c.app, "history": len(c.history), "drains": [d.name for d in c.drains],
             "tail_sessions": len(c.tails)}
            for c in self.channels.values()
        ]})

    # health ------------------------------------------------------------------------------

    def _refresh_health(self) -> None:
        reasons = [f"control rod {rod} enabled" for rod in self.rods.enabled()]
        for drain in self.drains.values():
            if not drain.enabled:
                continue
            if drain.failing:
                reasons.append(f"drain {drain.name} failing ({drain.last_error})")
            if drain.service == "degraded":
                reasons.append(f"drain {drain.name} degraded (buffer shrunk)")
        if reasons:
            self.health.set("degraded", "; ".join(reasons))
        else:
            self.health.set("ok")

    def health_details(self) -> dict[str, Any]:
        return {
            "rods": self.rods.enabled(),
            "drains": {
                d.name: {"state": d.state, "service": d.service, "last_error": d.last_error}
                for d in self.drains.values()
            },
            "channels": len(self.channels),
            "tail_sessions": len(self.tails),
        }
