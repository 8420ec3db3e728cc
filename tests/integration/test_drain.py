"""The drain service: store, queries, duplicates, control, auth, metrics, CLI errors."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from simctl.platform import logframe
from simctl.platform.__main__ import main
from simctl.platform.drain import DrainService
from simctl.platform.logframe import LogMessage
from simctl.platform.timing import FAST


@pytest.fixture
async def drain() -> AsyncIterator[DrainService]:
    async with DrainService(FAST, seed=7) as service:
        yield service  # type: ignore[misc]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def frame(*texts: str, proc: str = "web.1") -> bytes:
    return logframe.encode_many(
        [LogMessage("app", proc, t, "2026-01-01T00:00:00+00:00") for t in texts],
        structured=False)


async def post(http: aiohttp.ClientSession, drain: DrainService, body: bytes,
               frame_id: str = "f1", path: str = "/", **headers: str) -> int:
    headers = {"Content-Type": logframe.CONTENT_TYPE, "Logplex-Frame-Id": frame_id, **headers}
    async with http.post(drain.url + path, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> Any:
    async with http.get(url, params={k: str(v) for k, v in params.items()}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_messages_are_stored_with_frame_ids(
        drain: DrainService, http: aiohttp.ClientSession) -> None:
    assert await post(http, drain, frame("a", "b"), "f1", **{"Logplex-Msg-Count": "2"}) == 200
    assert await post(http, drain, frame("c"), "f2", path="/logs") == 200
    messages = await get(http, drain.url + "/messages")
    assert [(m["seq"], m["frame_id"], m["text"]) for m in messages] == [
        (1, "f1", "a"), (2, "f1", "b"), (3, "f2", "c")]
    assert messages[0]["app"] == "app"
    assert messages[0]["proc"] == "web.1"
    stats = await get(http, drain.url + "/stats")
    assert (stats["posts"], stats["messages"], stats["stored"], stats["last_seq"]) == (2, 3, 3, 3)
    assert stats["msg_count_mismatches"] == 0


async def test_output_variant_text_is_kept_whole(
        drain: DrainService, http: aiohttp.ClientSession) -> None:
    await post(http, drain, frame("- looks like sd", "[x] too"))
    assert [m["text"] for m in await get(http, drain.url + "/messages")] == [
        "- looks like sd", "[x] too"]


async def test_since_grep_and_limit(drain: DrainService, http: aiohttp.ClientSession) -> None:
    await post(http, drain, frame(*(f"line {i}" for i in range(20))), "f1")
    await post(http, drain, frame("Error L10 (output buffer overflow): 3 messages dropped "
                                  "since x.", proc="logplex"), "f2")
    assert [m["seq"] for m in await get(http, drain.url + "/messages", since=17)] == [18, 19, 20,
                                                                                      21]
    assert len(await get(http, drain.url + "/messages", limit=5)) == 5
    grep = await get(http, drain.url + "/messages", grep="Error L10")
    assert [m["seq"] for m in grep] == [21]
    assert [m["seq"] for m in await get(http, drain.url + "/messages", grep="app[logplex]")] == [
        21]  # grep matches the display line
    assert await get(http, drain.url + "/messages", since=21) == []
    for bad in ({"since": "-1"}, {"limit": "10001"}, {"limit": "x"}):
        async with http.get(drain.url + "/messages", params=bad) as resp:
            assert resp.status == 400
            assert "error" in await resp.json()


async def test_store_is_bounded(http: aiohttp.ClientSession) -> None:
    async with DrainService(FAST, store=10) as drain:
        for i in range(3):
            await post(http, drain, frame(*(f"{i}-{j}" for j in range(6))), f"f{i}")
        messages = await get(http, drain.url + "/messages")
        assert [m["seq"] for m in messages] == list(range(9, 19))
        assert [m["seq"] for m in await get(http, drain.url + "/messages", since=3)] == list(
            range(9, 19))
        assert [m["seq"] for m in await get(http, drain.url + "/messages", since=15)] == [16, 17,
                                                                                        18]


async def test_duplicate_frame_ids_are_counted(
        drain: DrainService, http: aiohttp.ClientSession) -> None:
    await post(http, drain, frame("a"), "same")
    await post(http, drain, frame("a"), "same")
    await post(http, drain, frame("b"), "other")
    messages = await get(http, drain.url + "/messages")
    assert [m["duplicate"] for m in messages] == [False, True, False]
    assert (await get(http, drain.url + "/stats"))["duplicate_frames"] == 1
    metrics = await (await http.get(drain.url + "/metrics")).text()
    assert "drain_duplicate_frames_total 1.0" in metrics
    assert "drain_posts_total 3.0" in metrics
    assert "drain_messages_total 3.0" in metrics


async def test_clear(drain: DrainService, http: aiohttp.ClientSession) -> None:
    await post(http, drain, frame("a", "b"))
    async with http.delete(drain.url + "/messages", json={}) as resp:
        assert await resp.json() == {"cleared": 2}
    assert await get(http, drain.url + "/messages") == []
    await post(http, drain, frame("c"))  # same frame id: not a duplicate after a clear
    messages = await get(http, drain.url + "/messages")
    assert [(m["seq"], m["duplicate"]) for m in messages] == [(3, False)]


async def test_malformed_post_is_400(drain: DrainService, http: aiohttp.ClientSession) -> None:
    assert await post(http, drain, b"nonsense") == 400
    assert await get(http, drain.url + "/messages") == []
    assert (await get(http, drain.url + "/stats"))["rejected"] == 1


async def test_control_status_fails_posts(drain: DrainService, http: aiohttp.ClientSession) -> None:
    async with http.post(drain.url + "/control", json={"status": 503}) as resp:
        assert await resp.json() == {"delay_ms": 0, "status": 503, "fail_ratio": 0.0}
    assert await post(http, drain, frame("a"), "f1") == 503
    assert await get(http, drain.url + "/messages") == []
    posts = await get(http, drain.url + "/posts")
    assert [(p["frame_id"], p["status"]) for p in posts] == [("f1", 503)]
    health = await get(http, drain.url + "/health")
    assert health["status"] == "degraded"
    assert "status=503" in health["reason"]
    async with http.delete(drain.url + "/control", json={}) as resp:
        assert (await resp.json())["status"] == 200
    assert await post(http, drain, frame("a"), "f1") == 200
    assert (await get(http, drain.url + "/health"))["status"] == "ok"


async def test_control_fail_ratio(drain: DrainService, http: aiohttp.ClientSession) -> None:
    async with http.post(drain.url + "/control", json={"fail_ratio": 0.5, "status": 403}):
        pass
    statuses = [await post(http, drain, frame("a"), f"f{i}") for i in range(40)]
    assert set(statuses) == {200, 403}
    stats = await get(http, drain.url + "/stats")
    assert stats["failed"] == statuses.count(403)
    assert stats["messages"] == statuses.count(200)


async def test_control_delay(drain: DrainService, http: aiohttp.ClientSession) -> None:
    async with http.post(drain.url + "/control", json={"delay_ms": 200}):
        pass
    started = time.perf_counter()
    assert await post(http, drain, frame("a")) == 200
    assert time.perf_counter() - started >= 0.18


@pytest.mark.parametrize("body", [
    {"delay_ms": -1}, {"delay_ms": 1.5}, {"delay_ms": True}, {"status": 100}, {"status": 600},
    {"status": "500"}, {"fail_ratio": 2}, {"fail_ratio": None}, {"speed": 1}, {}, [1],
])
async def test_bad_control_is_400(drain: DrainService, http: aiohttp.ClientSession,
                                  body: Any) -> None:
    async with http.post(drain.url + "/control", json=body) as resp:
        assert resp.status == 400
        assert "error" in await resp.json()
    async with http.post(drain.url + "/control", data=b"{not json",
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
    assert await get(http, drain.url + "/control") == {"delay_ms": 0, "status": 200,
                                                       "fail_ratio": 0.0}


async def test_auth(http: aiohttp.ClientSession) -> None:
    async with DrainService(FAST, auth="user:pw") as drain:
        assert await post(http, drain, frame("a")) == 401
        good = "Basic " + base64.b64encode(b"user:pw").decode()
        assert await post(http, drain, frame("a"), Authorization=good) == 200
        posts = await get(http, drain.url + "/posts")
        assert [p["authorized"] for p in posts] == [True]


async def test_concurrent_posts_get_distinct_sequences(
        drain: DrainService, http: aiohttp.ClientSession) -> None:
    await asyncio.gather(*(post(http, drain, frame(*(f"{i}-{j}" for j in range(50))), f"f{i}")
                           for i in range(10)))
    seqs = [m["seq"] for m in await get(http, drain.url + "/messages")]
    assert seqs == list(range(1, 501))


@pytest.mark.parametrize("args", [
    ["--status", "700"], ["--fail-ratio", "2"], ["--delay-ms", "-5"], ["--auth", "nocolon"],
    ["--store", "0"], ["--port", "x"],
])
def test_bad_cli_options(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["drain", *args])
    assert result.exit_code == 2
    assert "Error: Invalid value for" in result.output
    assert "Traceback" not in result.output


async def test_messages_regex_and_the_last_n_that_match(
        drain: DrainService, http: aiohttp.ClientSession) -> None:
    """`simctl drain logs -n N --grep RE`: the filter runs over the whole store, then the
    last N of what matched (not the last N lines, then the filter)."""
    texts = [f"status={500 if i % 10 == 0 else 200} n={i}" for i in range(100)]
    assert await post(http, drain, frame(*texts), "f1") == 200
    last = await get(http, drain.url + "/messages", regex=r"status=5\d\d", limit=3, last=1)
    assert [m["text"] for m in last] == ["status=500 n=70", "status=500 n=80", "status=500 n=90"]
    first = await get(http, drain.url + "/messages", regex=r"app\[web\.1\]: status=5", limit=2)
    assert [m["text"] for m in first] == ["status=500 n=0", "status=500 n=10"]
    async with http.get(drain.url + "/messages", params={"regex": "("}) as resp:
        assert resp.status == 400
        assert "not a regular expression" in (await resp.json())["error"]
