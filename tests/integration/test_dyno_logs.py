"""What the dyno ships to logplex (L12, L13 included), and the dyno as a process."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import socket
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web

from simctl.platform import logframe
from simctl.platform.dyno import DynoService
from simctl.platform.timing import FAST


class Receiver:
    """A tiny logplex-1 endpoint: keeps (token, message) pairs; can be slowed down."""

    def __init__(self) -> None:
        self.received: list[tuple[str, logframe.LogMessage]] = []
        self.delay = 0.0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/logs", self._logs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}/logs"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _logs(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        user = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
        token = user.split(":", 1)[1]
        for message in logframe.parse(body):
            self.received.append((token, message))
        return web.Response(status=204)

    def texts(self, app: str | None = None) -> list[str]:
        return [m.text for _, m in self.received if app is None or m.app == app]

    async def wait_for(self, pattern: str, timeout: float = 5.0) -> logframe.LogMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, message in self.received:
                if re.search(pattern, message.text):
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} in {self.texts()}")


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def start_dyno():
    services: list[DynoService] = []

    async def start(**options) -> DynoService:
        service = DynoService(**options)
        await service.listen("127.0.0.1", 0)
        services.append(service)
        return service

    yield start
    for service in services:
        await service.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_request_and_boot_lines_are_shipped(receiver, start_dyno):
    dyno = await start_dyno(dyno="web.2", app_name="shop", logplex_url=receiver.url,
                            timing=FAST)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{dyno.url}/hello?q=1", headers={"X-Request-Id": "abc123"}) as r:
            assert r.status == 200
        await http.post(f"{dyno.url}/control", json={"behaviour": "error", "status": 503})
        async with http.get(f"{dyno.url}/") as r:
            assert r.status == 503
    line = await receiver.wait_for(r'^at=info method=GET path="/hello\?q=1"')
    assert re.fullmatch(r'at=info method=GET path="/hello\?q=1" status=200 duration=\d+ms '
                        r"request_id=abc123", line.text)
    assert (line.app, line.proc) == ("app", "web.2")
    error = await receiver.wait_for(r"status=503")
    assert error.text.startswith("at=error method=GET")
    up = await receiver.wait_for("State changed from starting to up")
    assert (up.app, up.proc) == ("heroku", "web.2")
    assert {token for token, _ in receiver.received} == {"t.shop"}


async def test_l12_when_the_back_buffer_overflows(receiver, start_dyno):
    # One line per batch, one batch of back-buffer, and a slow logplex: lines pile up.
    timing = dataclasses.replace(FAST, shuttle_batch=1, shuttle_back_buffer=1)
    receiver.delay = 0.3
    dyno = await start_dyno(logplex_url=receiver.url, timing=timing)
    async with aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(f"{dyno.url}/") as r:
                assert r.status == 200
        assert dyno.shipper is not None
        assert dyno.shipper.stats.dropped > 0
        receiver.delay = 0.0
        async with http.get(f"{dyno.url}/metrics") as r:
            metrics = await r.text()
        dropped = float(re.search(r"^dyno_log_dropped_total (\S+)$", metrics, re.M).group(1))
        assert dropped == dyno.shipper.stats.dropped
        await asyncio.sleep(0.5)
        async with http.get(f"{dyno.url}/after"):
            pass
    report = await receiver.wait_for(r"^Error L12: \d+ messages dropped since ")
    assert (report.app, report.proc) == ("heroku", "log-shuttle")
    assert int(report.text.split()[2]) > 0


async def test_l13_when_logplex_is_unreachable(start_dyno):
    port = free_port()
    url = f"http://127.0.0.1:{port}/logs"
    dyno = await start_dyno(logplex_url=url, timing=FAST)
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"{dyno.url}/") as r:
                assert r.status == 200
        assert dyno.shipper is not None
        for _ in range(100):
            if dyno.shipper.stats.lost:
                break
            await asyncio.sleep(0.05)
        lost = dyno.shipper.stats.lost
        assert lost > 0
        # Logplex comes back on the same address: the next batch reports the loss.
        receiver = await Receiver().start(port)
        try:
            async with http.get(f"{dyno.url}/later") as r:
                assert r.status == 200
            report = await receiver.wait_for(r"^Error L13: \d+ messages lost since ")
            assert (report.app, report.proc) == ("heroku", "log-shuttle")
            assert int(report.text.split()[2]) >= 1
            await receiver.wait_for(r'path="/later"')
            async with http.get(f"{dyno.url}/metrics") as r:
                assert re.search(r"^dyno_log_lost_total [1-9]", await r.text(), re.M)
        finally:
            await receiver.stop()


async def test_r14_lines_over_the_memory_quota(receiver, start_dyno):
    dyno = await start_dyno(logplex_url=receiver.url, timing=FAST, memory_quota_mb=1)
    async with aiohttp.ClientSession() as http:
        await http.post(f"{dyno.url}/control", json={"behaviour": "memory", "mb": 1,
                                                      "cap_mb": 2})
        async with http.get(f"{dyno.url}/") as r:
            assert r.status == 200
    r14 = await receiver.wait_for(r"^Error R14 \(Memory quota exceeded\)$")
    assert (r14.app, r14.proc) == ("heroku", "web.1")
    await receiver.wait_for(r"^Process running mem=\d+M\(\d+\.\d%\)$")


async def run_dyno(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simctl.platform", "dyno", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if not line.startswith("ready service=dyno url="):
        proc.kill()
        await proc.wait()
        raise AssertionError(f"no ready line: {line!r}")
    return proc, line.strip().split("url=", 1)[1]


async def finish(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.communicate()


async def test_crash_exits_the_process_with_status_1(receiver):
    proc, url = await run_dyno("--logplex-url", receiver.url, "--timing", "fast",
                               "--name", "web.4")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/") as r:
                assert r.status == 200
            async with http.post(f"{url}/control", json={"behaviour": "crash"}) as r:
                assert r.status == 200
                assert await r.json() == {"behaviour": "crash"}
        assert await asyncio.wait_for(proc.wait(), 10) == 1
        crash = await receiver.wait_for("simulated crash")
        assert (crash.app, crash.proc) == ("app", "web.4")
    finally:
        await finish(proc)


async def test_process_stops_on_sigterm():
    proc, url = await run_dyno("--boot-delay", "0.3")
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as r:
            assert r.status == 503
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        await finish(proc)


def test_process_reports_bad_options_in_one_line():
    bad = subprocess.run([sys.executable, "-m", "simctl.platform", "dyno", "--port", "x"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("Error: dyno: Invalid value for '--port'")
