"""`python -m simctl.platform sync|router` as processes: ready lines, traffic, clean exit."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest

from simctl.platform.router.testing import FakeDyno, fetch

READY_ROUTER = re.compile(
    r"ready service=router url=http://127\.0\.0\.1:(\d+) tls=https://127\.0\.0\.1:(\d+) "
    r"admin=http://127\.0\.0\.1:(\d+)")


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simctl.platform", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    except TimeoutError:
        proc.kill()
        raise
    return proc, line


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


async def test_sync_and_router_processes() -> None:
    async with FakeDyno("web.1") as dyno:
        sync, sync_ready = await _start("sync", "--timing", "fast", "--app", "web",
                                        "--dyno", f"web.1={dyno.address}")
        router = None
        try:
            match = re.fullmatch(r"ready service=sync url=(http://127\.0\.0\.1:\d+)", sync_ready)
            assert match, sync_ready
            router, router_ready = await _start("router", "--timing", "fast", "--sync-url",
                                                match.group(1), "--tls-port", "0")
            ready = READY_ROUTER.fullmatch(router_ready)
            assert ready, router_ready
            port = int(ready.group(1))
            for _ in range(50):  # the first snapshot may still be on its way
                reply = await fetch(port)
                if reply is not None and reply.status == 200:
                    break
                await asyncio.sleep(0.1)
            assert reply is not None
            assert reply.status == 200
            assert reply.header("x-dyno") == "web.1"
        finally:
            codes = [await _stop(p) for p in (router, sync) if p is not None]
        assert codes == [0, 0]


@pytest.mark.parametrize(("args", "message"), [
    (["router", "--sync-url", "notaurl"], "is not an http(s)://host:port URL"),
    (["router", "--tls-port", "-2"], "--tls-port"),
    (["sync", "--dyno", "web.1=127.0.0.1:1"], "APP/"),
    (["sync", "--app", "web", "--dyno", "web.1=nowhere"], "bad address"),
    (["sync", "--routes-file", "/nonexistent/routes.json"], "--routes-file"),
])
async def test_bad_options_exit_2(args: list[str], message: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simctl.platform", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert message in err.decode()
    assert "Traceback" not in err.decode()
