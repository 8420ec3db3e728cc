"""``python -m simctl.platform logplex|drain`` as processes: ready line, delivery, clean exit."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage


@asynccontextmanager
async def service(*args: str, env: dict[str, str] | None = None
                  ) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simctl.platform", *args, "--timing", "fast",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("ready service="), line
        yield line.split("url=", 1)[1].strip(), proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)


async def test_processes_deliver_and_exit_cleanly() -> None:
    async with service("drain", "--auth", "u:s3cretpw") as (drain_url, drain_proc):
        port = drain_url.rsplit(":", 1)[1]
        env = {"SIMCTL_DRAIN": f"main=http://u:s3cretpw@127.0.0.1:{port}/"}
        async with service("logplex", env=env) as (url, proc), aiohttp.ClientSession() as http:
            body = logframe.encode(LogMessage("app", "web.1", "over the wire", "ts"))
            auth = "Basic " + base64.b64encode(b"token:t.web").decode()
            async with http.post(url + "/logs", data=body, headers={
                    "Authorization": auth, "Content-Type": logframe.CONTENT_TYPE}) as resp:
                assert resp.status == 204
            for _ in range(200):
                async with http.get(drain_url + "/messages") as resp:
                    messages = await resp.json()
                if messages:
                    break
                await asyncio.sleep(0.02)
            assert [m["text"] for m in messages] == ["over the wire"]
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
            assert proc.stderr is not None
            stderr = (await proc.stderr.read()).decode()
            assert "at=spawn" in stderr
            assert f"dest=http://***@127.0.0.1:{port}/" in stderr
            assert "s3cretpw" not in stderr
            assert "Traceback" not in stderr
        drain_proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(drain_proc.wait(), 20) == 0


async def test_taken_port_is_a_one_line_error() -> None:
    async with service("drain") as (url, _):
        port = url.rsplit(":", 1)[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simctl.platform", "logplex", "--port", port,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 6
        assert stderr.decode().strip().splitlines()[-1].startswith("error: logplex: cannot listen")
        assert b"Traceback" not in stderr
