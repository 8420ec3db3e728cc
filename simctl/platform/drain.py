"""The drain: a log sink for Logplex's HTTP drains that can be told to be slow or to fail.

    POST /  (or /logs)   logplex-1 (Logplex's output variant); every message is stored
                         with its Logplex-Frame-Id and a sequence number
    GET  /messages       ?since=SEQ&grep=TEXT&regex=RE&limit=N: JSON list, oldest first;
                         &last=1: the last N that match instead of the first N
    DELETE /messages     forget what was stored (counters keep counting)
    GET  /posts          ?since=N: the last posts (frame id, status given, headers seen),
                         failed ones included, so a retry's frame id can be compared
    GET  /stats          counts, store bounds and the current control
    GET|POST /control    {"delay_ms": int, "status": int, "fail_ratio": float}
    DELETE /control      back to a fast, healthy sink

Control: every post waits ``delay_ms`` and is then answered with ``status`` (2xx:
stored); with ``fail_ratio`` > 0 only that share of posts fails, with ``status`` when
it is an error status, else 500. A frame id accepted twice counts as a duplicate.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hmac
import itertools
import json
import random
import re
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

import click
from aiohttp import web
from prometheus_client import Counter, Gauge

from simctl.platform import logframe
from simctl.platform.guard import ANY, accepts
from simctl.platform.logframe import FrameError
from simctl.platform.service import Service, kv, run_service
from simctl.platform.timing import HEROKU, PROFILES, Timing, profile

STORE = 100_000
POSTS = 1_000
MAX_LIMIT = 10_000
MAX_DELAY_MS = 600_000
MAX_REGEX = 1000
ROW_FIELDS = ("seq", "frame_id", "duplicate", "received_at", "priority", "timestamp", "host",
              "app", "proc", "text")
Row = tuple[int, str, bool, float, int, str, str, str, str, str]


@dataclass
class Control:
    delay_ms: int = 0
    status: int = 200
    fail_ratio: float = 0.0

    def update(self, body: Any) -> None:
        """Apply a partial update; ValueError with a readable message on bad input."""
        if not isinstance(body, dict) or not body:
            raise ValueError('expected a JSON object with "delay_ms", "status" or "fail_ratio"')
        unknown = set(body) - {"delay_ms", "status", "fail_ratio"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        delay, status, ratio = (body.get(k, getattr(self, k))
                                for k in ("delay_ms", "status", "fail_ratio"))
        if isinstance(delay, bool) or not isinstance(delay, int) or not (
                0 <= delay <= MAX_DELAY_MS):
            raise ValueError(f"delay_ms must be an integer from 0 to {MAX_DELAY_MS}")
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError("status must be an integer from 200 to 599")
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not (
                0.0 <= ratio <= 1.0):
            raise ValueError("fail_ratio must be a number from 0 to 1")
        self.delay_ms, self.status, self.fail_ratio = delay, status, float(ratio)


def _bad_request(message: str) -> NoReturn:
    raise web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _int_query(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) > high:
        _bad_request(f"{name} must be an integer from 0 to {high}")
    return int(raw)


def _regex_query(request: web.Request) -> re.Pattern[str] | None:
    raw = request.query.get("regex")
    if not raw:
        return None
    if len(raw) > MAX_REGEX:
        _bad_request(f"regex is longer than {MAX_REGEX} characters")
    try:
        return re.compile(raw)
    except re.error as exc:
        _bad_request(f"regex {raw!r} is not a regular expression: {exc}")


class DrainService(Service):
    name = "drain"

    def __init__(
        self,
        timing: Timing = HEROKU,
        *,
        store: int = STORE,
        seed: int | None = None,
        auth: str | None = None,
        control: Control | None = None,
    ) -> None:
        super().__init__(timing)
        self.control = control or Control()
        self.rng = random.Random(seed)
        # One flat tuple of plain values per message, oldest first: the garbage collector
        # untracks such tuples, so a full store costs no GC pauses (which would stall
        # posts long enough to overflow Logplex's drain buffer at high rates).
        self.store: deque[Row] = deque(maxlen=store)
        self.posts: deque[dict[str, Any]] = deque(maxlen=POSTS)
        self._seen: OrderedDict[str, None] = OrderedDict()  # accepted frame ids
        self._seen_max = store
        self._seq = 0
        self._post_seq = 0
        self._auth = ("Basic " + base64.b64encode(auth.encode()).decode()) if auth else None
        self.counts = dict.fromkeys(
            ("posts", "accepted", "failed", "rejected", "messages", "duplicate_frames",
             "msg_count_mismatches"), 0)
        r = self.registry
        self.m_posts = Counter("drain_posts", "Posts received", registry=r)
        self.m_messages = Counter("drain_messages", "Messages stored", registry=r)
        self.m_duplicates = Counter(
            "drain_duplicate_frames", "Posts whose frame id was already accepted", registry=r)
        self.m_failed = Counter(
            "drain_failed_posts", "Posts answered with an error by /control", registry=r)
        self.m_rejected = Counter(
            "drain_rejected_posts", "Posts refused, by reason", ["reason"], registry=r)
        Gauge("drain_stored_messages", "Messages held in the store",
              registry=r).set_function(lambda: len(self.store))

    def setup(self, app: web.Application) -> None:
        app.router.add_post("/", self._post)
        app.router.add_post("/logs", self._post)
        app.router.add_get("/messages", self._messages)
        app.router.add_delete("/messages", self._clear)
        app.router.add_get("/posts", self._posts)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/control", self._get_control)
        app.router.add_post("/control", self._set_control)
        app.router.add_delete("/control", self._reset_control)

    # posts -------------------------------------------------------------------------------

    def _reject(self, reason: str, status: int, text: str, **headers: str) -> web.Response:
        self.counts["rejected"] += 1
        self.m_rejected.labels(reason).inc()
        return web.Response(status=status, text=text + "\n", headers=headers or None)

    def _answer(self) -> int:
        control = self.control
        if control.fail_ratio <= 0.0:
            return control.status
        if self.rng.random() < control.fail_ratio:
            return control.status if control.status >= 300 else 500
        return 200

    @accepts(ANY)  # a drain takes what logplex sends, like a user's endpoint would
    async def _post(self, request: web.Request) -> web.Response:
        self.counts["posts"] += 1
        self.m_posts.inc()
        headers = request.headers
        authorized = "Authorization" in headers
        if self._auth is not None and not hmac.compare_digest(
                headers.get("Authorization", ""), self._auth):
            return self._reject("auth", 401, "Unauthorized",
                                **{"WWW-Authenticate": 'Basic realm="drain"'})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject("too_large", 413, "Request body too large")
        if self.control.delay_ms:
            await asyncio.sleep(self.control.delay_ms / 1000)
        status = self._answer()
        frame_id = headers.get("Logplex-Frame-Id", "")
        self._post_seq += 1
        record = {
            "n": self._post_seq, "at": time.time(), "frame_id": frame_id, "status": status,
            "bytes": len(body),
            "msg_count": headers.get("Logplex-Msg-Count"), "messages": None,
            "drain_token": headers.get("Logplex-Drain-Token"),
            "user_agent": headers.get("User-Agent"), "authorized": authorized,
        }
        self.posts.append(record)
        if status >= 300:
            self.counts["failed"] += 1
            self.m_failed.inc()
            return web.Response(status=status, text=f"failing on purpose ({status})\n")
        try:
            messages = logframe.parse_fields(body, structured=False)
        except FrameError as exc:
            record["status"] = 400
            return self._reject("malformed", 400, f"Malformed log messages: {exc}")
        record["messages"] = len(messages)
        if record["msg_count"] is not None and record["msg_count"] != str(len(messages)):
            self.counts["msg_count_mismatches"] += 1
        duplicate = False
        if frame_id:
            duplicate = frame_id in self._seen
            if duplicate:
                self.counts["duplicate_frames"] += 1
                self.m_duplicates.inc()
                self.log.info(kv(at="duplicate_frame", frame_id=frame_id))
            else:
                self._seen[frame_id] = None
                if len(self._seen) > self._seen_max:
                    self._seen.popitem(last=False)
        now = time.time()
        first = self._seq + 1
        self._seq += len(messages)
        head = (frame_id, duplicate, now)
        # (priority, timestamp, host, app, proc, text) behind (seq, frame_id, duplicate, now)
        self.store.extend([(seq,) + head + m for seq, m in zip(
            range(first, self._seq + 1), messages, strict=True)])
        self.counts["accepted"] += 1
        self.counts["messages"] += len(messages)
        self.m_messages.inc(len(messages))
        return web.Response(status=status)

    # reading -----------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        since = _int_query(request, "since", 0, 2**62)
        limit = _int_query(request, "limit", 1000, MAX_LIMIT)
        grep = request.query.get("grep", "")
        pattern = _regex_query(request)
        last = request.query.get("last", "0") == "1"
        store = self.store
        start = max(0, since - store[0][0] + 1) if store else 0
        rows: Any = itertools.islice(store, start, None)
        if grep:  # on the display line, so "heroku[router]" or "Error L10" both match
            rows = (r for r in rows if grep in f"{r[5]} {r[7]}[{r[8]}]: {r[9]}")
        if pattern is not None:
            rows = (r for r in rows if pattern.search(f"{r[5]} {r[7]}[{r[8]}]: {r[9]}"))
        # last=1 (simctl drain logs -n): the filter runs over the whole store, then the last N
        picked = deque(rows, maxlen=limit) if last else itertools.islice(rows, limit)
        out = [dict(zip(ROW_FIELDS, row, strict=True)) for row in picked]
        return web.json_response(out)

    async def _clear(self, request: web.Request) -> web.Response:
        cleared = len(self.store)
        self.store.clear()
        self.posts.clear()
        self._seen.clear()
        self.log.info(kv(at="cleared", messages=cleared))
        return web.json_response({"cleared": cleared})

    async def _posts(self, request: web.Request) -> web.Response:
        since = _int_query(request, "since", 0, 2**62)
        return web.json_response([p for p in self.posts if p["n"] > since])

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            **self.counts,
            "stored": len(self.store),
            "first_seq": self.store[0][0] if self.store else None,
            "last_seq": self._seq,
            "control": asdict(self.control),
        })

    # control -----------------------------------------------------------------------------

    async def _get_control(self, request: web.Request) -> web.Response:
        return web.json_response(asdict(self.control))

    async def _set_control(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting too
            _bad_request("body is not JSON")
        try:
            self.control.update(body)
        except ValueError as exc:
            _bad_request(str(exc))
        self._control_changed()
        return web.json_response(asdict(self.control))

    async def _reset_control(self, request: web.Request) -> web.Response:
        self.control = Control()
        self._control_changed()
        return web.json_response(asdict(self.control))

    def _control_changed(self) -> None:
        c = self.control
        self.log.info(kv(at="control", delay_ms=c.delay_ms, status=c.status,
                         fail_ratio=c.fail_ratio))
        if c == Control():
            self.health.set("ok")
        else:
            self.health.set("degraded", f"control: delay_ms={c.delay_ms} status={c.status} "
                                        f"fail_ratio={c.fail_ratio}")

    async def start(self) -> None:
        if self.control != Control():
            self._control_changed()


def _auth_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and ":" not in value:
        raise click.BadParameter("expected USER:PASSWORD")
    return value


@click.command("drain", context_settings={"auto_envvar_prefix": "SIMCTL"})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku",
              show_default=True, help="Timing profile.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"],
                                               case_sensitive=False),
              default="info", show_default=True)
@click.option("--store", type=click.IntRange(1, 10_000_000), default=STORE, show_default=True,
              help="Messages kept (oldest forgotten first).")
@click.option("--auth", metavar="USER:PASSWORD", callback=_auth_option, default=None,
              help="Require this Basic auth on posts (401 otherwise).")
@click.option("--delay-ms", type=click.IntRange(0, MAX_DELAY_MS), default=0, show_default=True,
              help="Initial delay before answering each post.")
@click.option("--status", type=click.IntRange(200, 599), default=200, show_default=True,
              help="Initial status for posts (non-2xx: nothing stored).")
@click.option("--fail-ratio", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Initial share of posts that fail.")
@click.option("--seed", type=int, default=None, help="Seed for fail_ratio.")
def command(host: str, port: int, timing: str, log_level: str, store: int, auth: str | None,
            delay_ms: int, status: int, fail_ratio: float, seed: int | None) -> None:
    """A log drain: stores what Logplex posts; can be made slow or failing."""
    control = Control(delay_ms, status, fail_ratio)
    service = DrainService(profile(timing), store=store, seed=seed, auth=auth, control=control)
    gc.freeze()  # long-lived startup objects out of full GC passes (see logplex's command)
    run_service(service, host, port, log_level)
