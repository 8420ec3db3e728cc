"""Logplex to a real drain service: delivery, L10, retry rules, rods, disable, shrink, masking."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simctl.platform import logframe
from simctl.platform.drain import DrainService
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex import LogplexService
from simctl.platform.timing import FAST

AUTH = "Basic " + base64.b64encode(b"token:t.web").decode()
L10 = re.compile(r"Error L10 \(output buffer overflow\): (\d+) messages dropped since (\S+)\.")


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.01)


class Client:
    def __init__(self, http: aiohttp.ClientSession, logplex: LogplexService,
                 drain: DrainService | None = None) -> None:
        self.http, self.logplex, self.drain = http, logplex, drain

    async def send(self, *texts: str, app: str = "web") -> None:
        auth = "Basic " + base64.b64encode(f"token:t.{app}".encode()).decode()
        body = logframe.encode_many(
            [LogMessage("app", "web.1", t, logframe.now_rfc5424()) for t in texts])
        async with self.http.post(self.logplex.url + "/logs", data=body, headers={
                "Authorization": auth, "Content-Type": logframe.CONTENT_TYPE}) as resp:
            assert resp.status == 204, await resp.text()

    async def json(self, url: str) -> Any:
        async with self.http.get(url) as resp:
            assert resp.status == 200
            return await resp.json()

    async def post_json(self, url: str, body: Any) -> Any:
        async with self.http.post(url, json=body) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def received(self, **query: Any) -> list[dict[str, Any]]:
        assert self.drain is not None
        params = {"limit": "10000", **{k: str(v) for k, v in query.items()}}
        async with self.http.get(self.drain.url + "/messages", params=params) as resp:
            return await resp.json()  # type: ignore[no-any-return]

    async def texts(self) -> list[str]:
        return [m["text"] for m in await self.received()]

    async def drain_info(self, name: str = "main") -> dict[str, Any]:
        return await self.json(f"{self.logplex.url}/admin/drains/{name}")  # type: ignore[no-any-return]

    async def control(self, **control: Any) -> None:
        assert self.drain is not None
        await self.post_json(self.drain.url + "/control", control)

    async def metric(self, name: str, **labels: str) -> float:
        async with self.http.get(self.logplex.url + "/metrics") as resp:
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    return sample.value
        return 0.0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def drain() -> AsyncIterator[DrainService]:
    async with DrainService(FAST, seed=5) as service:
        yield service  # type: ignore[misc]


@pytest.fixture
async def stack(http: aiohttp.ClientSession, drain: DrainService) -> AsyncIterator[Client]:
    async with LogplexService(FAST, [f"main=http://127.0.0.1:{drain.port}/"], seed=1) as lp:
        yield Client(http, lp, drain)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_delivery_end_to_end(stack: Client) -> None:
    await stack.send("one", "two", "three")
    received = await until(lambda: stack.received())
    assert [m["text"] for m in received] == ["one", "two", "three"]
    assert len({m["frame_id"] for m in received}) == 1
    posts = await stack.json(stack.drain.url + "/posts")  # type: ignore[union-attr]
    assert posts[0]["msg_count"] == "3"
    assert posts[0]["user_agent"] == "Logplex/v72"
    assert re.fullmatch(r"d\.[0-9a-f-]{36}", posts[0]["drain_token"])
    assert await stack.metric("logplex_drain_delivered_total", drain="main") == 3
    info = await stack.drain_info()
    assert (info["delivered"], info["frames_sent"], info["state"]) == (3, 1, "idle")


async def test_other_apps_do_not_reach_the_drain(stack: Client) -> None:
    await stack.send("not for main", app="billing")
    await stack.send("for main")
    await until(lambda: stack.received())
    assert await stack.texts() == ["for main"]


async def test_large_volume_is_split_into_frames(stack: Client) -> None:
    line = "x" * 500
    for batch in range(4):  # 4 x 200 lines of ~580 bytes: over 100 KB, several frames
        await stack.send(*(f"{batch}-{i} {line}" for i in range(200)))
        await until(lambda b=batch: stack.received(grep=f"{b}-199 "))
    received = await stack.received()
    assert len(received) == 800
    posts = await stack.json(stack.drain.url + "/posts")  # type: ignore[union-attr]
    assert len(posts) >= 5
    assert all(p["bytes"] <= FAST.drain_batch_bytes for p in posts)
    assert sum(p["messages"] for p in posts) == 800


async def test_slow_drain_gets_l10_and_the_newest_messages(http: aiohttp.ClientSession) -> None:
    timing = dataclasses.replace(FAST, drain_request_timeout=5.0)
    async with DrainService(timing) as drain, LogplexService(
            timing, [f"main=http://127.0.0.1:{drain.port}/"]) as logplex:
        client = Client(http, logplex, drain)
        await client.control(delay_ms=600)
        await client.send("first")
        await until(lambda: _in_flight(client))
        burst = [f"burst-{i}" for i in range(3000)]
        for start in range(0, len(burst), 500):  # well within the 600 ms the drain takes
            await client.send(*burst[start:start + 500])
        assert (await client.drain_info())["state"] == "sending"
        received = await until(lambda: _has(client, "burst-2999"), timeout=10)
        texts = [m["text"] for m in received]
        dropped = len(burst) - timing.drain_buffer
        assert texts[0] == "first"
        match = L10.fullmatch(texts[1])
        assert match, texts[1]
        assert int(match.group(1)) == dropped
        assert (received[1]["app"], received[1]["proc"]) == ("heroku", "logplex")
        assert texts[2:] == burst[dropped:]  # the newest 1024, in order
        assert await client.metric("logplex_drain_dropped_total", drain="main") == dropped
        assert (await client.drain_info())["dropped"] == dropped


async def _in_flight(client: Client) -> bool:
    return bool((await client.drain_info())["in_flight"])


async def _has(client: Client, text: str) -> list[dict[str, Any]] | None:
    received = await client.received()
    return received if any(m["text"] == text for m in received) else None


async def test_4xx_is_a_permanent_failure(stack: Client) -> None:
    await stack.control(status=403)
    await stack.send("a", "b")
    await until(lambda: _failed_frames(stack, 1))
    await asyncio.sleep(0.05)
    posts = await stack.json(stack.drain.url + "/posts")  # type: ignore[union-attr]
    assert [p["status"] for p in posts] == [403]  # no retry
    assert await stack.metric("logplex_drain_failed_frames_total", drain="main") == 1
    health = await stack.json(stack.logplex.url + "/health")
    assert health["status"] == "degraded"
    assert "status_403" in health["reason"]
    await stack.control(status=200)
    await stack.send("c")
    received = await until(lambda: _has(stack, "c"))
    assert [m["text"] for m in received][1:] == ["c"]
    match = L10.fullmatch(received[0]["text"])
    assert match
    assert match.group(1) == "2"
    assert await stack.metric("logplex_drain_dropped_total", drain="main") == 2
    assert (await stack.json(stack.logplex.url + "/health"))["status"] == "ok"


async def _failed_frames(client: Client, n: int) -> bool:
    return (await client.drain_info())["failed_frames"] >= n


@pytest.mark.parametrize("status", [500, 429])
async def test_retryable_failure_retries_with_the_same_frame_id(
        stack: Client, status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "simctl.logplex")
    await stack.control(status=status)
    await stack.send("a", "b")
    await until(lambda: _failed_frames(stack, 1))
    posts = await stack.json(stack.drain.url + "/posts")  # type: ignore[union-attr]
    assert [p["status"] for p in posts] == [status] * (1 + FAST.drain_frame_retries)
    assert len({p["frame_id"] for p in posts}) == 1
    assert "at=reconnect_delay attempt=1 delay=0" in caplog.text
    assert "at=reconnect_delay attempt=3 " in caplog.text
    assert "at=drop_frame" in caplog.text
    assert "reason=tries_exceeded" in caplog.text


async def test_retry_succeeds_and_keeps_the_frame_id(stack: Client) -> None:
    await stack.control(status=503, fail_ratio=0.5)
    for i in range(10):
        await stack.send(f"m{i}")
        await until(lambda: _settled(stack))
    posts = await stack.json(stack.drain.url + "/posts")  # type: ignore[union-attr]
    by_frame: dict[str, list[int]] = {}
    for p in posts:
        by_frame.setdefault(p["frame_id"], []).append(p["status"])
    retried = [s for s in by_frame.values() if len(s) > 1]
    assert retried  # with p=0.5 over 10 frames, some frame needed a retry
    assert all(s[:-1] == [503] * (len(s) - 1) for s in by_frame.values())
    stats = await stack.json(stack.drain.url + "/stats")  # type: ignore[union-attr]
    assert stats["duplicate_frames"] == 0


async def _settled(client: Client) -> bool:
    info = await client.drain_info()
    return info["state"] == "idle" and not info["buffer"]["messages"]


async def test_timeouts_retry_and_duplicates_are_visible(
        http: aiohttp.ClientSession, drain: DrainService) -> None:
    timing = dataclasses.replace(FAST, drain_request_timeout=0.2, drain_frame_retries=1)
    async with LogplexService(timing, [f"main=http://127.0.0.1:{drain.port}/"]) as logplex:
        client = Client(http, logplex, drain)
        await client.control(delay_ms=300)
        await client.send("slow")
        await until(lambda: _failed_frames(client, 1))
        stats = await until(lambda: _stats_with(client, "messages", 2))
        assert stats["duplicate_frames"] == 1  # the drain kept both tries of one frame
        received = await client.received()
        assert [m["duplicate"] for m in received] == [False, True]
        assert received[0]["frame_id"] == received[1]["frame_id"]
        assert (await client.drain_info())["last_error"] == "timeout"


async def _stats_with(client: Client, key: str, value: int) -> dict[str, Any] | None:
    stats = await client.json(client.drain.url + "/stats")  # type: ignore[union-attr]
    return stats if stats[key] >= value else None


async def test_deny_drain_forwarding_buffers_and_counts_loss(stack: Client) -> None:
    await stack.post_json(stack.logplex.url + "/admin/rods/deny_drain_forwarding",
                          {"enabled": True})
    await stack.send(*(f"m{i}" for i in range(1500)))
    await asyncio.sleep(0.1)
    assert await stack.received() == []
    info = await stack.drain_info()
    assert (info["state"], info["buffer"]["messages"], info["dropped"]) == ("held", 1024, 476)
    assert await stack.metric("logplex_drain_buffer_messages", drain="main") == 1024
    assert await stack.metric("logplex_control_rod_active", rod="deny_drain_forwarding") == 1
    await stack.post_json(stack.logplex.url + "/admin/rods/deny_drain_forwarding",
                          {"enabled": False})
    received = await until(lambda: _has(stack, "m1499"))
    assert L10.fullmatch(received[0]["text"]).group(1) == "476"  # type: ignore[union-attr]
    assert [m["text"] for m in received[1:]] == [f"m{i}" for i in range(476, 1500)]


async def test_disabled_drain_buffers_and_sends_nothing(stack: Client) -> None:
    info = await stack.post_json(stack.logplex.url + "/admin/drains/main", {"enabled": False})
    assert (info["enabled"], info["state"]) == (False, "disabled")
    await stack.send(*(f"m{i}" for i in range(2000)))
    await asyncio.sleep(0.1)
    info = await stack.drain_info()
    assert (info["buffer"]["messages"], info["dropped"]) == (0, 0)
    assert await stack.received() == []
    await stack.post_json(stack.logplex.url + "/admin/drains/main", {"enabled": True})
    await stack.send("back")
    received = await until(lambda: stack.received())
    assert [m["text"] for m in received] == ["back"]  # no L10: nothing was lost, only off


async def test_unreachable_drain_shrinks_then_regrows(
        http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "simctl.logplex")
    timing = dataclasses.replace(FAST, drain_shrink_after=0.2)
    port = free_port()
    async with LogplexService(timing, [f"main=http://127.0.0.1:{port}/"], seed=3) as logplex:
        client = Client(http, logplex)
        for i in range(30):  # keep it failing for longer than drain_shrink_after
            await client.send(f"early{i}")
            await asyncio.sleep(0.02)
        info = await until(lambda: _degraded(client))
        assert info["buffer"]["capacity"] == timing.drain_degraded_buffer
        health = await client.json(logplex.url + "/health")
        assert health["status"] == "degraded"
        assert "drain main" in health["reason"]
        assert "at=maybe_shrink service=degraded buf_size=10" in caplog.text
        drain = DrainService(timing)
        await drain.listen("127.0.0.1", port)
        try:
            client.drain = drain
            await client.send("late")
            received = await until(lambda: _has(client, "late"), timeout=10)
            info = await client.drain_info()
            assert (info["service"], info["buffer"]["capacity"]) == ("normal", 1024)
            assert "at=maybe_resize service=normal buf_size=1024" in caplog.text
            assert L10.fullmatch(received[0]["text"])
            # Losses may be reported by more than one L10 line (one per loss period).
            reported = sum(int(m.group(1)) for r in received if (m := L10.fullmatch(r["text"])))
            delivered = [r["text"] for r in received if not L10.fullmatch(r["text"])]
            assert reported + len(delivered) == 31  # every message accounted for
            assert reported == info["dropped"]
            assert delivered[-1] == "late"
        finally:
            await drain.close()


async def _degraded(client: Client) -> dict[str, Any] | None:
    info = await client.drain_info()
    return info if info["service"] == "degraded" else None


async def test_credentials_are_used_but_never_shown(
        http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with DrainService(FAST, auth="user:s3cret") as drain, LogplexService(FAST, [
            f"main=http://user:s3cret@127.0.0.1:{drain.port}/",
            f"wrong=http://user:n0tit@127.0.0.1:{drain.port}/"]) as logplex:
        client = Client(http, logplex, drain)
        await client.send("private")
        await until(lambda: _has(client, "private"))
        wrong = await until(lambda: _failed("wrong", client))
        assert wrong["last_error"] == "status_401"
        shown = [
            await (await http.get(logplex.url + path)).text()
            for path in ("/admin/drains", "/admin/drains/main", "/health", "/metrics")
        ]
        for text in [*shown, caplog.text]:
            assert "s3cret" not in text
            assert "n0tit" not in text
        assert f"http://***@127.0.0.1:{drain.port}/" in shown[1]


async def _failed(name: str, client: Client) -> dict[str, Any] | None:
    info = await client.drain_info(name)
    return info if info["failed_frames"] else None
