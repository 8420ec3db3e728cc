"""The router's HTTP/1.1 hygiene: what Vegur refuses, refused at once, and answered.

Real router, sync, log capture and dyno on 127.0.0.1 (fast timing); raw bytes on the
wire, since the point is what well-behaved clients never send.
"""

from __future__ import annotations

import asyncio
import re
import socket

import aiohttp
import pytest

from simctl.faults.server import ToxiproxyServer
from simctl.platform.router.testing import FakeDyno, RouterStack, raw_request

HOST = b"Host: web.simctl.test\r\n"
CODE = re.compile(rb"(?i)x-router-code: H26\r\n")


def logged(stack: RouterStack, pattern: str) -> list[str]:
    """Router lines matching ``pattern``, as /admin/logs shows them (a head too bad to
    name its app has its line there, not in an app's log stream)."""
    assert stack.router is not None
    assert stack.router.core is not None
    return [line for _, line in stack.router.core.logs.recent if re.search(pattern, line)]


@pytest.fixture
async def dyno():
    async with FakeDyno("web.1") as d:
        yield d


@pytest.fixture
async def stack(dyno: FakeDyno):
    async with RouterStack({"web.1": dyno.address}) as s:
        yield s


async def test_content_length_with_chunked_answers_then_closes(stack: RouterStack,
                                                               dyno: FakeDyno) -> None:
    # A front end that trusted Content-Length would see "0\r\n\r\n" as the body and the
    # GET as a second request of the client's: the router must not serve it.
    smuggled = (b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 4\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n")
    data = await raw_request(stack.port, smuggled, timeout=10)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.count(b"HTTP/1.1 ") == 1
    assert re.search(rb"(?i)\r\nconnection: close\r\n", data)
    assert [r["target"] for r in dyno.requests] == ["/echo"]


@pytest.mark.parametrize(("head", "status", "cause"), [
    (b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 5, 5\r\n\r\nhello", 400,
     "bad header"),
    (b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 5,5\r\n\r\nhello", 400, "bad header"),
    (b"GET / HTTP/1.1\n" + b"Host: web.simctl.test\n\n", 400, "bad header"),
    (b"GET / HTTP/1.1\r\n" + b"Host: web.simctl.test\n\r\n", 400, "bad header"),
    (b"GET / HTTP/1.1\r\nX-A: 1\n" + HOST + b"\r\n", 400, "bad header"),
    (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505, "unsupported http version"),
    (b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", 505, "unsupported http version"),
    # 80 KiB of headers, written at once: over the 64 KiB head limit all the same
    (b"GET / HTTP/1.1\r\n" + HOST
     + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(80)) + b"\r\n",
     400, "bad header"),
])
async def test_heads_vegur_refuses(stack: RouterStack, dyno: FakeDyno, head: bytes,
                                   status: int, cause: str) -> None:
    data = await raw_request(stack.port, head, timeout=10)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:100]
    assert CODE.search(data)
    assert dyno.requests == []
    assert logged(stack, f'code=H26 .*cause="{cause}".* status={status} ')
    reply = await stack.get()  # the router goes on as before
    assert reply is not None
    assert reply.status == 200


@pytest.mark.parametrize("body", [
    b"5\nhello\n0\n\n",  # LF-only chunk lines
    b"ffffffffffffffffffff\r\nhello\r\n",  # a chunk size past 64 bits
    b"5" * 5000,  # a chunk-size line that never ends
])
async def test_bad_chunks_are_refused_at_once(stack: RouterStack, body: bytes) -> None:
    # Before: the router waited for a CRLF (or the 2^80-byte chunk) until the client-idle
    # timeout, then closed with H28 and no answer.
    head = b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    data = await raw_request(stack.port, head + body, timeout=stack.timing.idle_timeout * 0.8)
    assert data.startswith(b"HTTP/1.1 400 "), data[:100]
    assert CODE.search(data)
    assert await stack.line('code=H26 desc="Request Error" cause="bad chunk"')


def _send_whole_then_read(port: int, data: bytes) -> bytes:
    """A blocking client the way curl is one: write everything, then read the answer."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for at in range(0, len(data), 16384):
                sock.sendall(data[at:at + 16384])
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received


async def test_megabyte_head_through_the_edge_proxy_gets_its_400(stack: RouterStack) -> None:
    # Closing on unread input resets the connection; a proxy in front then passed on
    # nothing but the close. The router now sends its 400, then reads and drops the rest.
    head = b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"b" * 1024 * 1024 + b"\r\n\r\n"
    async with ToxiproxyServer(port=0) as toxiproxy:
        async with aiohttp.ClientSession() as http, http.post(
                f"{toxiproxy.url}/proxies", json={
                    "name": "edge.1", "listen": "127.0.0.1:0",
                    "upstream": f"127.0.0.1:{stack.port}"}) as resp:
            edge = int((await resp.json())["listen"].rsplit(":", 1)[1])
        for port in (stack.port, edge):
            data = await asyncio.to_thread(_send_whole_then_read, port, head)
            assert data.startswith(b"HTTP/1.1 400 "), (port, data[:100])
            assert CODE.search(data)
    assert len(logged(stack, 'code=H26 .*cause="bad header".* status=400 ')) == 2
