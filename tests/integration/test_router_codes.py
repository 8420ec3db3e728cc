"""Every H-code the router makes, checked on the exact log line it ships to logplex.

Real services on 127.0.0.1 (log capture, sync, router, misbehaving dynos), fast timing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from simctl.platform.router import RouterService
from simctl.platform.router.testing import (
    Blackhole,
    FakeDyno,
    RouterStack,
    closed_port,
    fetch,
    raw_request,
)
from simctl.platform.timing import FAST

RID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MS = r"\d+ms"


def line_re(head: str, path: str = "/", *, method: str = "GET", dyno: str = "",
            connect: str = "", service: str = "", status: str = "503", nbytes: str = "",
            protocol: str = "http") -> str:
    return (
        rf'{head} method={method} path="{re.escape(path)}" host=web\.simctl\.test '
        rf'request_id={RID} fwd="127\.0\.0\.1" dyno={re.escape(dyno)} connect={connect} '
        rf"service={service} status={status} bytes={nbytes} protocol={protocol}"
    )


def assert_line(line: str, pattern: str) -> None:
    assert re.fullmatch(pattern, line), f"\n  line: {line}\n  want: {pattern}"


@pytest.fixture
async def dyno():
    async with FakeDyno("web.1") as d:
        yield d


async def test_success_line(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get("/?q=1")
        assert reply is not None
        assert reply.status == 200
        assert reply.body == b"ok\n"
        assert reply.header("x-router-code") is None
        line = await stack.line(r"^at=info ")
        assert_line(line, line_re("at=info", "/?q=1", dyno="web.1", connect=MS, service=MS,
                                  status="200", nbytes="3"))


async def test_h10_app_crashed(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        await stack.set_dynos({"web.1": dyno.address}, state="crashed")
        reply = await stack.get()
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H10")
        assert b"Application Error" in reply.body
        assert_line(await stack.line("code=H10"),
                    line_re('at=error code=H10 desc="App crashed"'))


async def test_h11_backlog_too_deep(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        assert stack.router is not None
        slots = stack.router.core.dispatch.slots("web")  # type: ignore[union-attr]
        key = f"web/web.1@{dyno.address}"

        async def until(check: Callable[[], bool]) -> None:
            for _ in range(500):
                if check():
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"backlog {len(slots.queue)}, slots {slots.inflight}")

        # 50 slow requests take the dyno's 50 slots, 50 more fill the backlog (50 x 1 dyno)
        busy = [asyncio.create_task(stack.get("/slow?ms=2000")) for _ in range(50)]
        await until(lambda: slots.count(key) == 50)
        queued = [asyncio.create_task(stack.get("/queued")) for _ in range(50)]
        await until(lambda: len(slots.queue) == 50)
        reply = await stack.get("/over")
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H11")
        assert_line(await stack.line("code=H11"),
                    line_re('at=error code=H11 desc="Backlog too deep"', "/over"))
        replies = await asyncio.gather(*busy, *queued)
        assert [r.status for r in replies if r is not None] == [200] * 100


async def test_h12_request_timeout(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get("/hang")
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H12")
        line = await stack.line("code=H12")
        assert_line(line, line_re('at=error code=H12 desc="Request timeout"', "/hang",
                                  dyno="web.1", connect=MS, service=MS, nbytes="0"))
        service = int(re.search(r"service=(\d+)ms", line).group(1))  # type: ignore[union-attr]
        assert FAST.first_byte_timeout * 1000 <= service < FAST.first_byte_timeout * 1000 + 2000


async def test_h13_closed_without_response(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get("/close")
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H13")
        assert_line(await stack.line("code=H13"),
                    line_re('at=error code=H13 desc="Connection closed without response"',
                            "/close", dyno="web.1", connect=MS, service=MS, nbytes="0"))


async def test_h14_no_web_dynos(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        await stack.set_dynos({})
        reply = await stack.get()
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H14")
        assert_line(await stack.line("code=H14"),
                    line_re('at=error code=H14 desc="No web dynos running"'))


async def test_requests_wait_for_starting_dynos(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        await stack.set_dynos({"web.1": dyno.address}, state="starting")
        pending = asyncio.create_task(stack.get("/booting"))
        await asyncio.sleep(0.3)
        assert not pending.done()
        await stack.set_dynos({"web.1": dyno.address}, state="up")
        reply = await pending
        assert reply is not None
        assert reply.status == 200


@pytest.mark.slow
async def test_h20_app_boot_timeout(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        await stack.set_dynos({"web.1": dyno.address}, state="starting")
        reply = await stack.get(timeout=FAST.boot_wait + 5)
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H20")
        assert_line(await stack.line("code=H20"),
                    line_re('at=error code=H20 desc="App boot timeout"'))


@pytest.mark.slow
async def test_h15_idle_connection(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get("/partial-idle", timeout=15)
        assert reply is not None
        assert reply.status == 200  # the dyno's head went out before it fell silent
        assert not reply.complete
        line = await stack.line("code=H15")
        assert_line(line, line_re('at=error code=H15 desc="Idle connection"', "/partial-idle",
                                  dyno="web.1", connect=MS, service=MS, nbytes="10"))
        service = int(re.search(r"service=(\d+)ms", line).group(1))  # type: ignore[union-attr]
        assert service >= FAST.idle_timeout * 1000


async def test_h17_malformed_response(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get("/bad")
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H17")
        assert_line(await stack.line("code=H17"),
                    line_re('at=error code=H17 desc="Poorly formatted HTTP response"', "/bad",
                            dyno="web.1", connect=MS, service=MS, nbytes="0"))


async def test_h18_server_request_interrupted(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get("/partial")
        assert reply is not None
        assert reply.status == 200
        assert not reply.complete
        assert reply.body == b"x" * 10
        assert_line(await stack.line("code=H18"),
                    line_re('sock=backend at=error code=H18 desc="Server Request Interrupted"',
                            "/partial", dyno="web.1", connect=MS, service=MS, nbytes="10"))


async def test_h19_backend_connection_timeout() -> None:
    with Blackhole() as hole:
        async with RouterStack({"web.1": hole.address}) as stack:
            reply = await stack.get()
            assert reply is not None
            assert (reply.status, reply.header("x-router-code")) == (503, "H19")
            line = await stack.line("code=H19")
            assert_line(line, line_re('at=error code=H19 desc="Backend connection timeout"',
                                      dyno="web.1", connect=MS))
            connect = int(re.search(r"connect=(\d+)ms", line).group(1))  # type: ignore[union-attr]
            assert FAST.connect_timeout * 1000 <= connect < FAST.connect_timeout * 1000 + 1500


async def test_h21_backend_connection_refused() -> None:
    async with RouterStack({"web.1": closed_port()}) as stack:
        reply = await stack.get()
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H21")
        assert_line(await stack.line("code=H21"),
                    line_re('at=error code=H21 desc="Backend connection refused"',
                            dyno="web.1", connect=MS))


async def test_h26_unsupported_expect(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        reply = await stack.get(headers=[("expect", "teapot")])
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (417, "H26")
        assert_line(await stack.line("code=H26"), line_re(
            'at=error code=H26 desc="Request Error" cause="unsupported expect header value"',
            status="417"))
        assert dyno.requests == []


async def test_h26_bad_chunk(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        data = await raw_request(stack.port, (
            b"POST /upload HTTP/1.1\r\nHost: web.simctl.test\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n"))
        assert data.startswith(b"HTTP/1.1 400 ")
        assert b"X-Router-Code: H26" in data.replace(b"x-router-code", b"X-Router-Code")
        assert_line(await stack.line("code=H26"), line_re(
            'at=error code=H26 desc="Request Error" cause="bad chunk"', "/upload",
            method="POST", dyno="web.1", connect=MS, service=MS, status="400", nbytes="0"))


async def test_h27_client_closed_before_response(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        await raw_request(stack.port, b"GET /slow?ms=500 HTTP/1.1\r\nHost: web.simctl.test\r\n\r\n",
                          timeout=0.2)
        assert_line(await stack.line("code=H27"), line_re(
            'sock=client at=warning code=H27 desc="Client Request Interrupted"',
            "/slow?ms=500", dyno="web.1", connect=MS, service=MS, status="499", nbytes="0"))


@pytest.mark.slow
async def test_h28_client_connection_idle(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        data = await raw_request(stack.port, (
            b"POST /upload HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 10\r\n\r\nabc"),
            timeout=FAST.idle_timeout + 3)
        assert data == b""  # the router closes: nobody is there to read an answer
        line = await stack.line("code=H28")
        assert_line(line, line_re('at=warning code=H28 desc="Client Connection Idle"',
                                  "/upload", method="POST", dyno="web.1", connect=MS,
                                  service=MS, status="499", nbytes="0"))


async def test_h80_maintenance(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        assert stack.sync is not None
        stack.sync.append({"op": "maintenance", "app": "web", "enabled": True})
        await stack.synced()
        reply = await stack.get()
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H80")
        assert b"Maintenance" in reply.body
        assert_line(await stack.line("code=H80"),
                    line_re('at=info code=H80 desc="Maintenance mode"'))
        assert dyno.requests == []


async def test_h99_no_route_table() -> None:
    router = RouterService(FAST, sync_url=f"http://{closed_port()}")
    await router.listen()
    try:
        reply = await fetch(router.http_port)
        assert reply is not None
        assert (reply.status, reply.header("x-router-code")) == (503, "H99")
        # no table, no app: the line goes to the router's own log, not to an app channel
        app, line = router.core.logs.recent[-1]  # type: ignore[union-attr]
        assert app == ""
        assert_line(line, line_re('at=error code=H99 desc="Platform error"'))
    finally:
        await router.close()


@pytest.mark.slow
async def test_h99_all_dynos_quarantined() -> None:
    async with RouterStack({"web.1": closed_port()}) as stack:
        first = await stack.get()
        assert first is not None
        assert first.header("x-router-code") == "H21"  # and web.1 is now quarantined
        # While web.1 stays quarantined, one waiting request probes it per quarantine
        # period (and gets H21); the others wait all_quarantined_retry, then get H99.
        replies = await asyncio.gather(*(stack.get(timeout=20) for _ in range(20)))
        codes = [r.header("x-router-code") for r in replies if r is not None]
        assert len(codes) == 20
        assert set(codes) == {"H21", "H99"}
        assert codes.count("H99") >= 5
        assert_line(await stack.line("code=H99"),
                    line_re('at=error code=H99 desc="Platform error"'))


async def test_quarantine_and_retry_on_another_dyno(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": closed_port(), "web.2": dyno.address}) as stack:
        for _ in range(8):
            reply = await stack.get("/retry")
            assert reply is not None
            assert reply.status == 200
        lines = await stack.capture.wait_for(r'path="/retry"', "t.web", count=8)
        assert all(" dyno=web.2 " in line and " status=200 " in line for line in lines)
        assert stack.router is not None
        quarantined = stack.router.core.quarantine.active(  # type: ignore[union-attr]
            asyncio.get_running_loop().time())
        assert [k.split("@")[0] for k in quarantined] == ["web/web.1"]


async def test_at_most_max_retries_attempts() -> None:
    dead = {f"web.{i}": closed_port() for i in range(1, FAST.max_retries + 3)}
    async with RouterStack(dead) as stack:
        reply = await stack.get()
        assert reply is not None
        assert reply.header("x-router-code") == "H21"
        assert stack.router is not None
        assert len(stack.router.core.quarantine) == FAST.max_retries  # type: ignore[union-attr]
