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
from simctl.platform.logplex.http_drain import output_frames
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


# several frames in flight --------------------------------------------------------------


async def _watch_frames(client: Client, seen: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        seen.append((await client.drain_info())["frames_in_flight"])
        await asyncio.sleep(0.005)


async def _burst_with_watch(client: Client, lines: list[str]) -> list[int]:
    """Send ``lines`` in bodies of 500 while recording ``frames_in_flight``."""
    seen: list[int] = []
    stop = asyncio.Event()
    watcher = asyncio.get_running_loop().create_task(_watch_frames(client, seen, stop))
    try:
        for start in range(0, len(lines), 500):
            await client.send(*lines[start:start + 500])
        await until(lambda: _has(client, lines[-1]), timeout=10)
    finally:
        stop.set()
        await watcher
    return seen


async def test_a_quick_drain_takes_several_frames_at_once(http: aiohttp.ClientSession) -> None:
    """A drain that answers quickly gets up to MAX_IN_FLIGHT frames at once: a burst
    three times the buffer arrives whole, every frame with its own id, once."""
    timing = dataclasses.replace(FAST, drain_request_timeout=25.0)  # quick: under 0.5 s
    async with DrainService(timing) as drain, LogplexService(
            timing, [f"main=http://127.0.0.1:{drain.port}/"]) as logplex:
        client = Client(http, logplex, drain)
        await client.send("warm")  # one frame answered: the drain is known to be quick
        await until(lambda: _has(client, "warm"))
        await client.control(delay_ms=100)  # each frame now takes 100 ms, still quick
        burst = [f"burst-{i}" for i in range(3000)]
        seen = await _burst_with_watch(client, burst)
        received = await until(lambda: _count(client, len(burst) + 1))
        assert max(seen) > 1
        assert sorted(m["text"] for m in received) == sorted(["warm", *burst])
        assert not any(L10.fullmatch(m["text"]) for m in received)
        posts = await client.json(drain.url + "/posts")
        assert len({p["frame_id"] for p in posts}) == len(posts)  # one id per frame
        assert all(p["status"] == 200 for p in posts)
        assert sum(p["messages"] for p in posts) == len(burst) + 1
        stats = await client.json(drain.url + "/stats")
        assert (stats["duplicate_frames"], stats["msg_count_mismatches"]) == (0, 0)
        info = await client.drain_info()
        assert (info["dropped"], info["delivered"], info["frames_in_flight"]) == (
            0, len(burst) + 1, 0)
        # Frames leave the buffer in order: within each frame, lines keep their order.
        by_frame: dict[str, list[int]] = {}
        for m in received[1:]:
            by_frame.setdefault(m["frame_id"], []).append(int(m["text"].split("-")[1]))
        assert all(seq == sorted(seq) for seq in by_frame.values())


async def _count(client: Client, n: int) -> list[dict[str, Any]] | None:
    received = await client.received()
    return received if len(received) >= n else None


async def test_a_slow_drain_gets_one_frame_at_a_time(http: aiohttp.ClientSession) -> None:
    """Once a drain has answered slowly (over QUICK_ANSWER of the request timeout), the
    next frame waits for the answer to the one in flight: the buffer overflows (L10)."""
    timing = dataclasses.replace(FAST, drain_request_timeout=5.0)  # quick: under 0.1 s
    async with DrainService(timing) as drain, LogplexService(
            timing, [f"main=http://127.0.0.1:{drain.port}/"]) as logplex:
        client = Client(http, logplex, drain)
        await client.control(delay_ms=300)
        await client.send("slow")
        await until(lambda: _has(client, "slow"))
        burst = [f"burst-{i}" for i in range(3000)]
        seen = await _burst_with_watch(client, burst)
        assert max(seen) == 1
        info = await client.drain_info()
        assert info["dropped"] >= len(burst) - 2 * timing.drain_buffer
        received = await until(lambda: _has(client, "burst-2999"))
        reported = sum(int(m.group(1)) for r in received if (m := L10.fullmatch(r["text"])))
        assert reported == info["dropped"]


async def test_a_failing_frame_is_retried_before_any_new_frame(
        http: aiohttp.ClientSession) -> None:
    """While a frame is being retried nothing overtakes it, even at a quick drain: one
    frame in flight, and every try of it comes before the next frame."""
    timing = dataclasses.replace(FAST, drain_request_timeout=25.0)  # quick: under 0.5 s
    async with DrainService(timing) as drain, LogplexService(
            timing, [f"main=http://127.0.0.1:{drain.port}/"], seed=2) as logplex:
        client = Client(http, logplex, drain)
        await client.send("warm")
        await until(lambda: _has(client, "warm"))
        await client.control(status=503, delay_ms=100)
        await client.send(*(f"a{i}" for i in range(500)))
        await until(lambda: _failing(client))
        await client.send(*(f"b{i}" for i in range(500)))
        assert (await client.drain_info())["frames_in_flight"] == 1
        await until(lambda: _failed_frames(client, 1))  # a's frame: tries exhausted
        await client.control(status=200, delay_ms=0)
        received = await until(lambda: _has(client, "b499"))
        posts = await client.json(drain.url + "/posts")
        tries = 1 + timing.drain_frame_retries
        a_id = posts[1]["frame_id"]
        assert [p["frame_id"] for p in posts[1:1 + tries]] == [a_id] * tries
        assert [p["status"] for p in posts[1:1 + tries]] == [503] * tries
        later = posts[1 + tries:]
        assert len({p["frame_id"] for p in later}) == 1
        assert later[-1]["status"] == 200
        assert a_id not in {p["frame_id"] for p in later}
        assert L10.fullmatch(received[1]["text"]).group(1) == "500"  # type: ignore[union-attr]
        assert [m["text"] for m in received[2:]] == [f"b{i}" for i in range(500)]


async def _failing(client: Client) -> bool:
    return bool((await client.drain_info())["last_error"])


async def test_bodies_ingested_back_to_back_are_cut_into_frames_not_dropped(
        http: aiohttp.ClientSession) -> None:
    """Four bodies of 500 ingested in one go (before the sender task runs again) do not
    overflow a quick drain's buffer: frames are cut as the buffer would overflow."""
    timing = dataclasses.replace(FAST, drain_request_timeout=25.0)  # quick: under 0.5 s
    async with DrainService(timing) as drain, LogplexService(
            timing, [f"main=http://127.0.0.1:{drain.port}/"]) as logplex:
        client = Client(http, logplex, drain)
        await client.send("warm")
        await until(lambda: _has(client, "warm"))
        await client.control(delay_ms=50)
        main = logplex.drains["main"]
        now, pad = logframe.now_rfc5424(), "x" * 200  # about 400 lines per 100 KB frame
        for body in range(4):  # no await in between: as ingest does for queued bodies
            main.push(output_frames(
                [LogMessage("app", "web.1", f"{body}-{i} {pad}", now) for i in range(500)]))
        assert main.describe()["frames_in_flight"] > 1
        assert main.dropped == 0
        received = await until(lambda: _count(client, 2001))
        assert sorted(m["text"] for m in received[1:]) == sorted(
            f"{b}-{i} {pad}" for b in range(4) for i in range(500))


async def test_a_new_drain_gets_one_frame_at_a_time_until_it_answers(
        http: aiohttp.ClientSession) -> None:
    async with DrainService(FAST) as drain, LogplexService(
            FAST, [f"main=http://127.0.0.1:{drain.port}/"]) as logplex:
        main = logplex.drains["main"]
        now = logframe.now_rfc5424()
        for body in range(6):
            main.push(output_frames(
                [LogMessage("app", "web.1", f"{body}-{i}", now) for i in range(500)]))
        assert main.describe()["frames_in_flight"] <= 1
        assert main.dropped == 3000 - FAST.drain_buffer - main.describe()["in_flight"] > 0
