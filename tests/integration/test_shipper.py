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


async def test_back_buffer_depth_and_post_latency_are_exposed() -> None:
    """A Logplex that takes 0.2 s per POST: the back-buffer fills (the gauge shows it before
    any L12) and the POST histogram sees the 0.2 s; both reach the text a scrape reads."""
    from aiohttp import web
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from simctl.platform.shipper import ShipperCollector

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.2)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/logs", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    shipper = LogShipper(f"http://127.0.0.1:{port}/logs", "t.web", timing=FAST, batch_size=10,
                         back_buffer=20)
    registry = CollectorRegistry()
    registry.register(ShipperCollector(lambda: [shipper]))

    def scrape() -> dict[str, float]:
        text = generate_latest(registry).decode()
        return {s.name + str(sorted(s.labels.items())): s.value
                for f in text_string_to_metric_families(text) for s in f.samples}

    await shipper.start()
    try:
        for i in range(60):
            shipper.emit("app", "web.1", f"m{i}")
        await asyncio.sleep(0.05)
        busy = scrape()
        assert busy["log_shuttle_back_buffer_batches[('app', 'web')]"] >= 3
        assert busy["log_shuttle_back_buffer_capacity_batches[('app', 'web')]"] == 20
        deadline = time.monotonic() + 10
        while shipper.stats.sent < 60:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        done = scrape()
    finally:
        await shipper.stop()
        await runner.cleanup()
    assert done["log_shuttle_back_buffer_batches[('app', 'web')]"] == 0
    posts = done["log_shuttle_post_duration_seconds_count[('app', 'web')]"]
    assert posts >= 6
    assert done["log_shuttle_post_duration_seconds_sum[('app', 'web')]"] >= 0.18 * posts
    assert done["log_shuttle_post_duration_seconds_bucket[('app', 'web'), ('le', '0.1')]"] == 0
