"""Tail sessions: live lines, ?n replay, L11 for a slow reader, the deny_tail_sessions rod."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex import LogplexService
from simctl.platform.timing import FAST

L11 = re.compile(r"\S+ heroku\[logplex\]: Error L11 \(Tail buffer overflow\) -> "
                 r"This tail session dropped (\d+) messages since (\S+)\.")


@pytest.fixture
async def logplex() -> AsyncIterator[LogplexService]:
    async with LogplexService(FAST) as service:
        yield service  # type: ignore[misc]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(http: aiohttp.ClientSession, logplex: LogplexService, *texts: str,
               app: str = "web") -> list[LogMessage]:
    messages = [LogMessage("app", "web.1", t, logframe.now_rfc5424()) for t in texts]
    auth = "Basic " + base64.b64encode(f"token:t.{app}".encode()).decode()
    async with http.post(logplex.url + "/logs", data=logframe.encode_many(messages), headers={
            "Authorization": auth, "Content-Type": logframe.CONTENT_TYPE}) as resp:
        assert resp.status == 204
    return messages


async def read_lines(resp: aiohttp.ClientResponse, n: int) -> list[str]:
    return [(await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
            for _ in range(n)]


async def test_tail_streams_display_lines(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    async with http.get(logplex.url + "/tail", params={"app": "web"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        sent = await send(http, logplex, "one", "two")
        await send(http, logplex, "elsewhere", app="other")
        sent += await send(http, logplex, "three")
        assert await read_lines(resp, 3) == [m.display() for m in sent]
        assert sent[0].display().endswith(" app[web.1]: one")
    for _ in range(150):  # the session ends with the connection, even when idle (<= 3 s)
        if not logplex.tails:
            break
        await asyncio.sleep(0.02)
    assert not logplex.tails


async def test_tail_replays_history_then_follows(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    history = await send(http, logplex, *(f"old{i}" for i in range(5)))
    async with http.get(logplex.url + "/tail", params={"app": "web", "n": "3"}) as resp:
        live = await send(http, logplex, "new")
        lines = await read_lines(resp, 4)
    assert lines == [m.display() for m in history[2:] + live]


async def test_replay_is_bounded_by_history(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    for start in range(0, 2000, 500):
        await send(http, logplex, *(f"m{i}" for i in range(start, start + 500)))
    async with http.get(logplex.url + "/tail", params={"app": "web", "n": "1500"}) as resp:
        lines = await read_lines(resp, 1500)
    assert lines[0].endswith(": m500")
    assert lines[-1].endswith(": m1999")


@pytest.mark.parametrize("query", [{}, {"app": "Bad App"}, {"app": "web", "n": "-1"},
                                   {"app": "web", "n": "1501"}, {"app": "web", "n": "x"}])
async def test_bad_tail_queries(logplex: LogplexService, http: aiohttp.ClientSession,
                                query: dict[str, str]) -> None:
    async with http.get(logplex.url + "/tail", params=query) as resp:
        assert resp.status == 400


async def test_deny_tail_sessions_closes_and_refuses(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    async with http.get(logplex.url + "/tail", params={"app": "web"}) as resp:
        await send(http, logplex, "before")
        assert len(await read_lines(resp, 1)) == 1
        async with http.post(logplex.url + "/admin/rods/deny_tail_sessions",
                             json={"enabled": True}) as rod:
            assert rod.status == 200
        assert await asyncio.wait_for(resp.content.read(), 5) == b""  # closed by the server
    async with http.get(logplex.url + "/tail", params={"app": "web"}) as resp:
        assert resp.status == 503
        assert "L20" in await resp.text()
    health = await (await http.get(logplex.url + "/health")).json()
    assert "deny_tail_sessions" in health["reason"]


async def test_slow_reader_gets_l11_with_the_exact_count(http: aiohttp.ClientSession) -> None:
    timing = dataclasses.replace(FAST, tail_buffer=100)
    total = 20_000

    def small_socket(addr_info: object) -> socket.socket:
        family, type_, proto, _, _ = addr_info  # type: ignore[misc]
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return sock

    async with LogplexService(timing) as logplex, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(socket_factory=small_socket),
            read_bufsize=4096) as reader, reader.get(
            logplex.url + "/tail", params={"app": "web"}) as resp:
        assert resp.status == 200
        line = "x" * 80
        for start in range(0, total, 500):  # ~2 MB while nobody reads
            await send(http, logplex, *(f"{i} {line}" for i in range(start, start + 500)))
        await send(http, logplex, "END")
        lines = []
        while not lines or not lines[-1].endswith(": END"):
            raw = await asyncio.wait_for(resp.content.readline(), 10)
            assert raw, "stream ended early"
            lines.append(raw.decode().rstrip("\n"))
    overflow = [m for m in map(L11.fullmatch, lines) if m]
    assert overflow, "a slow reader must be told what it missed"
    dropped = sum(int(m.group(1)) for m in overflow)
    shown = [x for x in lines if not L11.fullmatch(x) and not x.endswith(": END")]
    assert dropped + len(shown) == total  # every line is either shown or counted
    numbers = [int(x.split(": ", 1)[1].split(" ")[0]) for x in shown]
    assert numbers == sorted(numbers)
    assert numbers[-1] == total - 1
    assert logplex.metrics.tail_dropped._value.get() == dropped


async def test_deny_tail_sessions_cuts_off_a_slow_reader(http: aiohttp.ClientSession) -> None:
    """A session whose write waits on a client that does not read ends at once when the
    rod sheds it, instead of when that client catches up (never, here)."""
    timing = dataclasses.replace(FAST, tail_buffer=100)
    async with LogplexService(timing) as logplex:
        reader, writer = await asyncio.open_connection("127.0.0.1", logplex.port)
        writer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(b"GET /tail?app=web HTTP/1.1\r\nHost: logplex\r\n\r\n")
        await writer.drain()
        line = "x" * 200
        await send(http, logplex, "first")
        await asyncio.sleep(0.2)  # the session is open and has written its first chunk
        (session,) = logplex.tails
        transport = session.transport
        assert isinstance(transport, asyncio.WriteTransport)
        for start in range(0, 100_000, 500):  # up to 20 MB that nobody reads
            await send(http, logplex, *(f"{i} {line}" for i in range(start, start + 500)))
            if transport.get_write_buffer_size() > 0:  # the kernel's buffers are full
                break
        assert transport.get_write_buffer_size() > 0
        assert logplex.metrics.tail_dropped._value.get() > 0
        async with http.post(logplex.url + "/admin/rods/deny_tail_sessions",
                             json={"enabled": True}) as rod:
            assert rod.status == 200
        await asyncio.sleep(0.5)
        assert not logplex.tails
        dropped = logplex.metrics.tail_dropped._value.get()
        await send(http, logplex, *(f"after {i}" for i in range(2000)))
        assert logplex.metrics.tail_dropped._value.get() == dropped
        writer.close()
