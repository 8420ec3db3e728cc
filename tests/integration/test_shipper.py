"""LogShipper against a real logplex: delivery, L12 (back-buffer full), L13 (unreachable)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator

import pytest

from simctl.platform.logframe import LogMessage
from simctl.platform.logplex import LogplexService
from simctl.platform.shipper import LogShipper
from simctl.platform.timing import FAST

L12 = re.compile(r"Error L12: (\d+) messages dropped since \S+")
L13 = re.compile(r"Error L13: (\d+) messages lost since \S+")


@pytest.fixture
async def logplex() -> AsyncIterator[LogplexService]:
    async with LogplexService(FAST) as service:
        yield service  # type: ignore[misc]


def history(logplex: LogplexService, app: str = "web") -> list[LogMessage]:
    channel = logplex.channels.get(app)
    return list(channel.history) if channel else []


async def until_history(logplex: LogplexService, count: int, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(history(logplex)) < count:
        assert asyncio.get_running_loop().time() < deadline, len(history(logplex))
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_delivery_in_batches(logplex: LogplexService) -> None:
    shipper = LogShipper(logplex.url + "/logs", "t.web", timing=FAST, batch_size=100)
    await shipper.start()
    try:
        for i in range(250):
            assert shipper.emit("app", "web.1", f"line {i}")
        await until_history(logplex, 250)
    finally:
        await shipper.stop()
    lines = history(logplex)
    assert [m.text for m in lines] == [f"line {i}" for i in range(250)]
    assert {(m.app, m.proc, m.priority) for m in lines} == {("app", "web.1", 190)}
    assert (shipper.stats.sent, shipper.stats.dropped, shipper.stats.lost) == (250, 0, 0)


async def test_long_lines_are_split(logplex: LogplexService) -> None:
    shipper = LogShipper(logplex.url + "/logs", "t.web", timing=FAST)
    await shipper.start()
    try:
        shipper.emit("app", "web.1", "y" * 25_000)
        await until_history(logplex, 3)
    finally:
        await shipper.stop()
    assert [len(m.text) for m in history(logplex)] == [10_000, 10_000, 5_000]


async def test_full_back_buffer_drops_and_reports_l12(logplex: LogplexService) -> None:
    shipper = LogShipper(logplex.url + "/logs", "t.web", timing=FAST, batch_size=10,
                         back_buffer=2)
    await shipper.start()
    try:
        kept = [shipper.emit("app", "web.1", f"m{i}") for i in range(100)]  # no await between
        assert kept.count(False) == 8
        assert shipper.stats.dropped == 80
        await until_history(logplex, 21)
    finally:
        await shipper.stop()
    lines = history(logplex)
    report = L12.fullmatch(lines[0].text)
    assert report
    assert report.group(1) == "80"
    assert (lines[0].app, lines[0].proc, lines[0].priority) == ("heroku", "log-shuttle", 172)
    assert [m.text for m in lines[1:]] == [f"m{i}" for i in range(20)]


async def test_unreachable_logplex_loses_and_reports_l13() -> None:
    port = free_port()
    shipper = LogShipper(f"http://127.0.0.1:{port}/logs", "t.web", timing=FAST, batch_size=5)
    await shipper.start()
    logplex = LogplexService(FAST)
    try:
        for i in range(10):
            shipper.emit("app", "web.1", f"lost{i}")
        deadline = asyncio.get_running_loop().time() + 5
        while shipper.stats.lost < 10:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert shipper.stats.batches_failed == 2
        await logplex.listen("127.0.0.1", port)
        for i in range(5):
            shipper.emit("app", "web.1", f"kept{i}")
        await until_history(logplex, 6)
        lines = history(logplex)
        report = L13.fullmatch(lines[0].text)
        assert report
        assert report.group(1) == "10"
        assert [m.text for m in lines[1:]] == [f"kept{i}" for i in range(5)]
    finally:
        await shipper.stop()
        await logplex.close()


async def test_emit_never_blocks_even_when_logplex_is_down() -> None:
    shipper = LogShipper(f"http://127.0.0.1:{free_port()}/logs", "t.web", timing=FAST)
    await shipper.start()
    try:
        started = time.perf_counter()
        for i in range(50_000):
            shipper.emit("app", "web.1", f"line {i}")
        elapsed = time.perf_counter() - started
        assert elapsed < 5  # generous: this is ~0.2 s of pure CPU; a blocking emit takes far longer
        assert shipper.stats.dropped > 0  # the back-buffer filled and the rest was dropped
        assert len(shipper._queue) <= shipper.back_buffer  # memory stays bounded
    finally:
        await shipper.stop(flush_timeout=0)


async def test_reports_are_not_lost_when_their_batch_fails(logplex: LogplexService) -> None:
    await _set_rod(logplex, True)
    shipper = LogShipper(logplex.url + "/logs", "t.web", timing=FAST, batch_size=5,
                         back_buffer=1)
    await shipper.start()
    try:
        for i in range(15):  # 5 queued, 10 dropped (L12)
            shipper.emit("app", "web.1", f"a{i}")
        deadline = asyncio.get_running_loop().time() + 5
        while shipper.stats.lost < 5:  # logplex refuses: the batch carrying L12 is lost (L13)
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        await _set_rod(logplex, False)
        shipper.emit("app", "web.1", "after")
        await until_history(logplex, 3)
    finally:
        await shipper.stop()
    texts = [m.text for m in history(logplex)]
    assert L12.fullmatch(texts[0]).group(1) == "10"  # type: ignore[union-attr]
    assert L13.fullmatch(texts[1]).group(1) == "5"  # type: ignore[union-attr]
    assert texts[2:] == ["after"]


async def _set_rod(logplex: LogplexService, enabled: bool) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.post(
            logplex.url + "/admin/rods/deny_logs_ingress", json={"enabled": enabled}) as resp:
        assert resp.status == 200
