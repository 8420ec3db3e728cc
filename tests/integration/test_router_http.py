"""What the router does to requests and responses: headers, framing, keep-alive, TLS."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import replace

import aiohttp
import pytest

from simctl.platform.router import RouterService, tls
from simctl.platform.router.testing import Blackhole, FakeDyno, RouterStack, fetch, raw_request
from simctl.platform.timing import FAST

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
async def dyno():
    async with FakeDyno("web.1") as d:
        yield d


@pytest.fixture
async def stack(dyno: FakeDyno):
    async with RouterStack({"web.1": dyno.address}) as s:
        yield s


def seen(dyno: FakeDyno, index: int = -1) -> dict[str, list[str]]:
    """Headers the dyno received in a request, by name."""
    out: dict[str, list[str]] = {}
    for name, value in dyno.requests[index]["headers"]:  # type: ignore[union-attr]
        out.setdefault(name, []).append(value)
    return out


@pytest.mark.parametrize(("given", "kept"), [
    ("a" * 20, True),
    ("A1+/=-" * 33 + "xy", True),  # 200 characters
    ("a" * 19, False),
    ("a" * 201, False),
    ("abc_defghijklmnopqrstuvwxyz", False),
    ("abc defghijklmnopqrstuvwxyz", False),
])
async def test_request_id_rules(stack: RouterStack, dyno: FakeDyno, given: str,
                                kept: bool) -> None:
    reply = await stack.get("/rid", headers=[("x-request-id", given)])
    assert reply is not None
    assert reply.status == 200
    sent = seen(dyno)["x-request-id"]
    assert len(sent) == 1
    if kept:
        assert sent == [given]
    else:
        assert UUID.fullmatch(sent[0])
    line = await stack.line('path="/rid"')
    assert f"request_id={sent[0]} " in line


async def test_forwarding_headers(stack: RouterStack, dyno: FakeDyno) -> None:
    before = int(time.time() * 1000)
    reply = await stack.get("/fwd", headers=[("x-forwarded-for", "10.0.0.1"),
                                             ("x-forwarded-proto", "gopher"),
                                             ("x-forwarded-port", "1"),
                                             ("x-request-start", "0"),
                                             ("via", "1.0 corp-proxy")])
    after = int(time.time() * 1000)
    assert reply is not None
    assert reply.status == 200
    headers = seen(dyno)
    assert headers["x-forwarded-for"] == ["10.0.0.1, 127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-port"] == [str(stack.port)]
    assert len(headers["x-request-start"]) == 1
    assert before <= int(headers["x-request-start"][0]) <= after
    assert headers["via"] == ["1.0 corp-proxy, 1.1 vegur"]
    assert headers["host"] == ["web.simctl.test"]
    assert reply.header("via") == "1.1 vegur"
    line = await stack.line('path="/fwd"')
    assert ' fwd="10.0.0.1, 127.0.0.1" ' in line


async def test_hop_by_hop_headers_are_stripped_both_ways(stack: RouterStack,
                                                        dyno: FakeDyno) -> None:
    reply = await stack.get("/", headers=[
        ("connection", "keep-alive, x-secret"), ("keep-alive", "timeout=5"),
        ("x-secret", "s3cret"), ("te", "trailers"), ("upgrade", "websocket"),
        ("proxy-authorization", "Basic Zm9v"), ("x-kept", "yes")])
    assert reply is not None
    headers = seen(dyno)
    for name in ("keep-alive", "x-secret", "te", "upgrade", "proxy-authorization"):
        assert name not in headers
    assert headers["connection"] == ["close"]  # Vegur's default: a new connection per request
    assert headers["x-kept"] == ["yes"]
    # the dyno answered with Connection: keep-alive and Keep-Alive: timeout=5
    assert reply.header("keep-alive") is None
    assert reply.header("connection") is None


async def test_client_keep_alive_and_pipelining(stack: RouterStack, dyno: FakeDyno) -> None:
    request = b"GET /%d HTTP/1.1\r\nHost: web.simctl.test\r\n\r\n"
    data = await raw_request(stack.port, request % 1 + request % 2 + request % 3 +
                             b"GET /4 HTTP/1.1\r\nHost: web.simctl.test\r\nConnection: close"
                             b"\r\n\r\n", timeout=5)
    assert data.count(b"HTTP/1.1 200 ") == 4
    assert [r["target"] for r in dyno.requests] == ["/1", "/2", "/3", "/4"]
    assert dyno.connections == 4  # one client connection, a new dyno connection each time


async def test_dyno_connections_are_kept_alive_when_switched_on(stack: RouterStack,
                                                               dyno: FakeDyno) -> None:
    assert stack.router is not None
    admin = f"{stack.router.admin_url}/admin/keepalive"
    async with aiohttp.ClientSession() as http:
        async with http.post(admin, json={"enabled": "yes"}) as resp:
            assert resp.status == 400
        async with http.post(admin, json={"enabled": True}) as resp:
            assert await resp.json() == {"enabled": True, "parked": 0, "closed": 0}
    for path in ("/first", "/second"):
        reply = await stack.get(path)  # a new client connection each time
        assert reply is not None
        assert reply.status == 200
    assert dyno.connections == 1
    assert "connect=0ms " in await stack.line('path="/second"')
    # a reused connection the dyno closes without answering is still H13
    reply = await stack.get("/close")
    assert reply is not None
    assert reply.header("x-router-code") == "H13"
    # a parked connection the dyno closes is not reused
    reply = await stack.get("/third")
    assert reply is not None
    assert reply.status == 200
    assert dyno.connections == 2
    for writer in list(dyno._writers):
        writer.transport.abort()
    await asyncio.sleep(0.1)
    reply = await stack.get("/fourth")
    assert reply is not None
    assert reply.status == 200
    assert dyno.connections == 3
    assert "connection" not in seen(dyno)  # kept alive: no Connection: close
    # switched off again: the parked connection is closed, each request gets a new one
    async with aiohttp.ClientSession() as http, \
            http.post(admin, json={"enabled": False}) as resp:
        assert await resp.json() == {"enabled": False, "parked": 0, "closed": 1}
    for path in ("/fifth", "/sixth"):
        reply = await stack.get(path)
        assert reply is not None
        assert reply.status == 200
    assert dyno.connections == 5


async def test_request_bodies(stack: RouterStack, dyno: FakeDyno) -> None:
    reply = await stack.get("/echo", method="POST", body=b"x" * 100_000)
    assert reply is not None
    assert json.loads(reply.body)["body"] == 100_000
    assert seen(dyno)["content-length"] == ["100000"]
    # chunked wins over Content-Length when both are present
    data = await raw_request(stack.port, (
        b"POST /echo HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
    assert data.startswith(b"HTTP/1.1 200 ")
    assert dyno.requests[-1]["body"] == 11
    assert "content-length" not in seen(dyno)
    assert seen(dyno)["transfer-encoding"] == ["chunked"]


async def test_identical_content_lengths_merge(stack: RouterStack, dyno: FakeDyno) -> None:
    data = await raw_request(stack.port, (
        b"POST /echo HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 5\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"))
    assert data.startswith(b"HTTP/1.1 200 ")
    assert dyno.requests[-1]["body"] == 5


async def test_expect_100_continue_is_answered_by_the_router(stack: RouterStack,
                                                             dyno: FakeDyno) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 4\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim.startswith(b"HTTP/1.1 100 ")
    writer.write(b"body")
    final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert final.startswith(b"HTTP/1.1 200 ")
    writer.close()
    assert "expect" not in seen(dyno)
    assert dyno.requests[-1]["body"] == 4


@pytest.mark.parametrize(("head", "status"), [
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET / HTTP/1.1\r\nHost: web.simctl.test\r\nHost: other.simctl.test\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 5\r\n"
     b"Content-Length: 6\r\n\r\nhello!", 400),
    (b"POST / HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
    (b"POST / HTTP/1.1\r\nHost: web.simctl.test\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: web.simctl.test\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: web.simctl.test\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: web.simctl.test\r\nX-Huge: " + b"h" * 70000 + b"\r\n\r\n", 400),
    (b"BLAH\r\n\r\n", 400),
])
async def test_bad_requests_get_h26(stack: RouterStack, dyno: FakeDyno, head: bytes,
                                    status: int) -> None:
    data = await raw_request(stack.port, head)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert re.search(rb"(?i)x-router-code: H26\r\n", data)
    assert dyno.requests == []
    # and the router takes the next request as if nothing happened
    reply = await stack.get()
    assert reply is not None
    assert reply.status == 200


async def test_unknown_host_gets_no_such_app(stack: RouterStack, dyno: FakeDyno) -> None:
    reply = await fetch(stack.port, host="nope.simctl.test")
    assert reply is not None
    assert reply.status == 404
    assert b"No such app" in reply.body
    assert reply.header("x-router-code") is None
    assert dyno.requests == []
    reply = await fetch(stack.port, host="WEB.simctl.test:443")  # case and port do not matter
    assert reply is not None
    assert reply.status == 200


async def test_responses_are_relayed_whole(stack: RouterStack) -> None:
    reply = await stack.get("/big?kb=3000")
    assert reply is not None
    assert (reply.status, len(reply.body)) == (200, 3000 * 1024)
    reply = await stack.get("/chunked")
    assert reply is not None
    assert (reply.body, reply.header("transfer-encoding")) == (b"one two three", "chunked")
    reply = await stack.get("/status?code=404")
    assert reply is not None
    assert (reply.status, reply.header("x-router-code")) == (404, None)
    reply = await stack.get("/big?kb=10", method="HEAD")
    assert reply is not None
    assert (reply.status, reply.body, reply.header("content-length")) == (200, b"", "10240")
    line = await stack.line(r'method=HEAD path="/big\?kb=10"')
    assert "status=200 bytes=0 " in line


async def test_http_1_0_client(stack: RouterStack) -> None:
    data = await raw_request(stack.port, b"GET /chunked HTTP/1.0\r\nHost: web.simctl.test\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"chunked" not in head.lower()
    assert body == b"one two three"


async def test_tls_port(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}, tls=True) as stack:
        router = stack.router
        assert router is not None
        assert router.certificate is not None
        assert router.tls_url.startswith("https://127.0.0.1:")
        tls_port = int(router.tls_url.rsplit(":", 1)[1])
        context = tls.client_context(router.certificate)
        reply = await fetch(tls_port, "/tls", ssl=context, host="web.simctl.test")
        assert reply is not None
        assert reply.status == 200
        assert seen(dyno)["x-forwarded-proto"] == ["https"]
        assert seen(dyno)["x-forwarded-port"] == [str(tls_port)]
        line = await stack.line('path="/tls"')
        assert line.endswith(" protocol=https")
        assert "ready service=router url=http://127.0.0.1:" in router.ready_line()
        assert f" tls={router.tls_url} admin={router.admin_url}" in router.ready_line()


async def _metrics_text(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        return await resp.text()


async def test_request_metrics(stack: RouterStack) -> None:
    for path in ("/", "/", "/close"):
        await stack.get(path)
    assert stack.router is not None
    text = await _metrics_text(stack.router.admin_url)
    assert 'router_requests_total{code="none",status="200"} 2.0' in text
    assert 'router_requests_total{code="H13",status="503"} 1.0' in text
    assert "router_request_duration_seconds_count 3.0" in text
    assert 'router_backlog{app="web"} 0.0' in text
    assert 'router_quarantined{dyno="web.1"} 0.0' in text
    assert "router_log_dropped_total 0.0" in text
    assert "router_route_table_version 1.0" in text
    assert "router_sync_lag 0.0" in text


async def test_log_buffer_full_drops_lines_never_requests(dyno: FakeDyno) -> None:
    """Logplex that never answers: lines pile up, then are dropped and counted."""
    timing = replace(FAST, router_log_buffer=20, shuttle_batch=10)
    with Blackhole() as logplex:
        routes = {"version": 1, "apps": {"web": {"domains": ["web.simctl.test"], "dynos": [
            {"name": "web.1", "address": dyno.address}]}}}
        router = RouterService(timing, routes=routes, logplex_url=f"http://{logplex.address}")
        await router.listen()
        try:
            replies = await asyncio.gather(*(fetch(router.http_port) for _ in range(60)))
            assert [r.status for r in replies if r is not None] == [200] * 60
            text = await _metrics_text(router.admin_url)
            dropped = float(re.search(r"^router_log_dropped_total (\S+)$", text,
                                      re.M).group(1))  # type: ignore[union-attr]
            assert dropped >= 20
        finally:
            await router.close()
