"""The dyno: a small web app whose behaviour switches at run time
(docs/architecture.md, "dyno").

Any path answers: ``GET /`` a short text naming the dyno, ``GET /bytes/N`` N bytes,
other methods echo the request body. ``/control`` switches the behaviour
(simctl/platform/dyno/behaviour.py); ``/health`` and ``/metrics`` come from Service and,
like ``/control``, are never affected by a behaviour.

What the app prints goes to logplex through a LogShipper (token ``t.<app>``): one
``at=info method=... path="..." status=... duration=...ms request_id=...`` line per
answered request (APP-NAME ``app``), plus the platform lines a dyno manager would
write about this dyno (APP-NAME ``heroku``): ``State changed from starting to up`` and,
over the memory quota, ``Error R14 (Memory quota exceeded)``.

Boot: the port listens at once (so the ready line can name it and ``/health`` answers
503 ``starting``); app requests that arrive before the app is up wait, as they would
in the kernel's accept queue, and are answered once it is.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from simctl.platform.dyno import behaviour as bhv
from simctl.platform.dyno import statefile
from simctl.platform.dyno.behaviour import NORMAL, Behaviour, BehaviourError
from simctl.platform.dyno.memory import MB, MemoryHog, rss_bytes
from simctl.platform.dyno.metrics import DynoMetrics
from simctl.platform.dyno.responses import (
    MAX_BYTES,
    bytes_size,
    drop,
    error_json,
    filler,
    write_bytes,
)
from simctl.platform.guard import unguarded
from simctl.platform.service import Service, kv
from simctl.platform.shipper import LogShipper
from simctl.platform.timing import HEROKU, Timing

HANG_POLL = 0.25  # how often a hung request checks whether its client is still there
CRASH_DELAY = 0.05  # lets the control response leave before the process exits
R14_INTERVAL = 20.0  # heroku profile; scaled like the other timers


class DynoService(Service):
    name = "dyno"

    def __init__(
        self,
        *,
        dyno: str = "web.1",
        app_name: str = "web",
        logplex_url: str | None = None,
        timing: Timing = HEROKU,
        boot_delay: float = 0.0,
        seed: int | None = None,
        state_file: str | Path | None = None,
        memory_quota_mb: float = 512.0,
        exit_process: bool = False,
        command_line: str = "python -m simctl.platform dyno",
    ) -> None:
        super().__init__(timing)
        self.dyno = dyno
        self.app_name = app_name
        self.boot_delay = boot_delay
        self.state_file = Path(state_file) if state_file else None
        self.memory_quota = memory_quota_mb * MB
        self.exit_process = exit_process
        self.command_line = command_line
        self.behaviour: Behaviour = NORMAL
        self.shipper = LogShipper(logplex_url, f"t.{app_name}", timing=timing) \
            if logplex_url else None
        self.memory = MemoryHog()
        self.exit_code: int | None = None
        self.exited = asyncio.Event()
        self.in_flight = 0
        self._rng = random.Random(seed)
        self._scale = timing.first_byte_timeout / HEROKU.first_byte_timeout
        self._up = asyncio.Event()
        self._stopping = False
        self._pauses: set[asyncio.Future[bool]] = set()
        self._boot_waiters: set[asyncio.Future[bool]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._boot_task: asyncio.Task[None] | None = None
        self._boot_until = 0.0
        self._last_r14 = -1e9
        self._text = f"Hello from {dyno} of {app_name}\n".encode()
        self.metrics = DynoMetrics(
            self.registry, memory_held=lambda: self.memory.held,
            shipper_stats=lambda: self.shipper.stats if self.shipper else None,
            shippers=lambda: [self.shipper] if self.shipper else [],
            in_flight=lambda: self.in_flight)

    # lifecycle ---------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        app.router.add_get("/control", self._get_control)
        app.router.add_post("/control", self._post_control)
        app.router.add_delete("/control", self._delete_control)
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def start(self) -> None:
        self.health.set("starting", "booting")
        if self.shipper is not None:
            await self.shipper.start()
        delay = self.boot_delay
        saved = statefile.read(self.state_file, self.log)
        if saved is not None:
            delay = saved.seconds
            self._set_behaviour(saved)
        self._heroku(f"Starting process with command `{self.command_line}`")
        self._begin_boot(delay)

    async def stop(self) -> None:
        self._stopping = True
        for fut in list(self._pauses):
            if not fut.done():
                fut.set_result(False)
        if self._boot_task is not None:
            self._boot_task.cancel()
        if self.shipper is not None:
            await self.shipper.stop(flush_timeout=1.0)

    def _begin_boot(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._up.clear()
        self.metrics.up.set(0)
        self.health.set("starting", f"booting: up in {delay:g}s" if delay else "booting")
        if self._boot_task is not None:
            self._boot_task.cancel()
        self._boot_until = loop.time() + delay
        if delay <= 0:
            self._now_up()
        else:
            self._boot_task = loop.create_task(self._boot(delay))

    async def _boot(self, delay: float) -> None:
        if await self._pause(delay):
            self._now_up()

    def _now_up(self) -> None:
        self._up.set()
        for fut in list(self._boot_waiters):
            _resolve(fut)
        self.metrics.up.set(1)
        self.health.set("ok")
        self._heroku("State changed from starting to up")
        self.log.info(kv(at="up", dyno=self.dyno))

    def health_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "dyno": self.dyno,
            "app": self.app_name,
            "behaviour": self.behaviour.name,
            "in_flight": self.in_flight,
            "memory_held_mb": round(self.memory.held / MB, 1),
        }
        if not self._up.is_set():
            left = self._boot_until - asyncio.get_running_loop().time()
            details["boot_remaining_s"] = round(max(0.0, left), 3)
        if self.shipper is not None:
            s = self.shipper.stats
            details["logs"] = {"emitted": s.emitted, "sent": s.sent, "dropped": s.dropped,
                               "lost": s.lost}
        return details

    # logging -----------------------------------------------------------------------

    def _print(self, text: str) -> None:
        """What the app prints: shipped to logplex as ``app[web.1]``."""
        if self.shipper is not None:
            self.shipper.emit("app", self.dyno, text)
        else:
            self.log.debug("app[%s]: %s", self.dyno, text)

    def _heroku(self, text: str) -> None:
        """A platform line about this dyno: ``heroku[web.1]``."""
        if self.shipper is not None:
            self.shipper.emit("heroku", self.dyno, text)
        self.log.info("heroku[%s]: %s", self.dyno, text)

    def _log_request(self, request: web.Request, status: int, started: float) -> None:
        ms = round((asyncio.get_running_loop().time() - started) * 1000)
        path = request.path_qs.replace("\\", "\\\\").replace('"', '\\"')
        at = "error" if status >= 500 else "info"
        rid = request.headers.get("X-Request-Id", "")
        self._print(f'at={at} method={request.method} path="{path}" status={status} '
                    f"duration={ms}ms request_id={rid}")

    # control -----------------------------------------------------------------------

    async def _get_control(self, request: web.Request) -> web.Response:
        return web.json_response(self.behaviour.to_dict())

    async def _delete_control(self, request: web.Request) -> web.Response:
        self._set_behaviour(NORMAL)
        return web.json_response(NORMAL.to_dict())

    async def _post_control(self, request: web.Request) -> web.StreamResponse:
        try:
            data = json.loads(await request.read() or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting too
            return error_json(f"the body is not valid JSON: {exc}")
        try:
            new = bhv.parse(data)
        except BehaviourError as exc:
            return error_json(str(exc))
        self._set_behaviour(new)
        self.log.info(kv(at="control", dyno=self.dyno, behaviour=new.name))
        body = new.to_dict()
        if new.name == "crash":
            resp = web.json_response(body)
            await resp.prepare(request)
            await resp.write_eof()
            self._spawn(self._crash())
            return resp
        if new.name == "slow_boot":
            if new.restart:
                self._heroku("State changed from up to starting")
                self._begin_boot(new.seconds)
            elif self.state_file is None:
                body = dict(body, note="no --state-file: only restart=true applies it in "
                                       "this process")
        return web.json_response(body)

    def _set_behaviour(self, new: Behaviour) -> None:
        old = self.behaviour
        self.behaviour = new
        self.metrics.behaviour(old.name, new.name)
        if old.name == "memory" and new.name != "memory":
            self.memory.release()
        if old.name == "slow_boot" and new.name != "slow_boot":
            statefile.write(self.state_file, None, self.log)
        if new.name == "slow_boot":
            statefile.write(self.state_file, new, self.log)

    async def _crash(self) -> None:
        await asyncio.sleep(CRASH_DELAY)
        self._print("Error: unhandled exception, exiting (simulated crash)")
        self.log.warning(kv(at="crash", dyno=self.dyno, exit_status=1))
        if self.exit_process:
            if self.shipper is not None:
                await self.shipper.stop(flush_timeout=0.5)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        self.exit_code = 1
        await self.close()
        self.exited.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # waiting -----------------------------------------------------------------------

    async def _pause(self, seconds: float | None) -> bool:
        """Sleep (``None``: until stopped); False if the service stopped meanwhile."""
        if self._stopping:
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._pauses.add(fut)
        handle = loop.call_later(seconds, _resolve, fut) if seconds is not None else None
        try:
            return await fut
        finally:
            self._pauses.discard(fut)
            if handle is not None:
                handle.cancel()

    async def _until_gone(self, request: web.Request) -> None:
        """Wait until the client closes the connection (or the service stops)."""
        while await self._pause(HANG_POLL):
            transport = request.transport
            if transport is None or transport.is_closing():
                return

    # the app -----------------------------------------------------------------------

    @unguarded  # app traffic: any method, any body, from anywhere the router lets in
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.in_flight += 1
        try:
            if not self._up.is_set() and not await self._wait_up():
                return drop(request)
            b = self.behaviour
            if (b.scoped and request.path.startswith(b.path)
                    and (b.fraction >= 1.0 or self._rng.random() < b.fraction)):
                return await self._misbehave(b, request, started)
            return await self._answer(request, started)
        finally:
            self.in_flight -= 1

    async def _wait_up(self) -> bool:
        """Hold a request until the app is up; False if the service stopped first."""
        if self._stopping:
            return False
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pauses.add(fut)
        self._boot_waiters.add(fut)
        try:
            return await fut
        finally:
            self._pauses.discard(fut)
            self._boot_waiters.discard(fut)

    async def _answer(self, request: web.Request, started: float,
                      status: int = 200) -> web.StreamResponse:
        headers = {"X-Dyno": self.dyno}
        path = request.path
        if status >= 400:
            body = f"{status} error from {self.dyno}\n".encode()
            resp: web.StreamResponse = web.Response(status=status, body=body, headers=headers,
                                                    content_type="text/plain")
        elif request.method not in ("GET", "HEAD"):
            data = await request.read()
            resp = web.Response(body=data, headers=headers,
                                content_type=request.content_type or "application/octet-stream")
        elif path.startswith("/bytes/"):
            size = bytes_size(path)
            if size is None:
                status = 400
                resp = web.Response(status=400, headers=headers, content_type="text/plain",
                                    text=f"/bytes/N takes 0 <= N <= {MAX_BYTES}\n")
            else:
                resp = await filler(request, size, headers)
        else:
            resp = web.Response(body=self._text, headers=headers, content_type="text/plain")
        self.metrics.count(status)
        self._log_request(request, status, started)
        return resp

    async def _misbehave(self, b: Behaviour, request: web.Request,
                         started: float) -> web.StreamResponse:
        name = b.name
        if name == "latency":
            delay = b.ms
            if b.jitter:
                delay = max(0.0, delay + self._rng.uniform(-b.jitter, b.jitter))
            if not await self._pause(delay / 1000):
                return drop(request)
            return await self._answer(request, started)
        if name == "error":
            if b.rate >= 1.0 or self._rng.random() < b.rate:
                return await self._answer(request, started, status=b.status)
            return await self._answer(request, started)
        if name == "chatty":
            # A multi-line stack trace per request: the classic cause of L10 and L12.
            for i in range(b.lines):
                self._print(f"  at app.handler(line {i + 1} of {b.lines}) in {request.path}")
            return await self._answer(request, started)
        if name == "memory":
            self.memory.grow(b.mb, b.cap_mb)
            self._check_quota()
            return await self._answer(request, started)
        if name == "hang":
            self.metrics.count("hung")
            await self._until_gone(request)
            return drop(request)
        if name == "close":
            self.metrics.count("closed")
            return drop(request)
        if name == "partial":
            return await self._partial(b, request, started)
        return await self._answer(request, started)  # pragma: no cover

    async def _partial(self, b: Behaviour, request: web.Request,
                       started: float) -> web.StreamResponse:
        self.metrics.count("partial")
        resp = web.StreamResponse(headers={"X-Dyno": self.dyno})
        resp.content_type = "application/octet-stream"
        resp.content_length = b.length
        try:
            await resp.prepare(request)
            await write_bytes(resp, b.sent)
            # The app believes it answered: it logs a 200.
            self._log_request(request, 200, started)
            if b.then == "idle":
                await self._until_gone(request)
        except ConnectionError:
            pass
        drop(request)
        return resp

    def _check_quota(self) -> None:
        rss = rss_bytes()
        if rss <= self.memory_quota:
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_r14 < R14_INTERVAL * self._scale:
            return
        self._last_r14 = now
        pct = rss / self.memory_quota * 100
        self._heroku(f"Process running mem={rss // MB}M({pct:.1f}%)")
        self._heroku("Error R14 (Memory quota exceeded)")


def _resolve(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)
