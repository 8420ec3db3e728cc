"""The sync service on 127.0.0.1: snapshot, operations, the stream, poison, metrics."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from simctl.platform.router.records import parse_apps
from simctl.platform.sync import SyncService
from simctl.platform.timing import FAST


@pytest.fixture
async def sync():
    apps = parse_apps({"web": {"domains": ["web.simctl.test"], "dynos": [
        {"name": "web.1", "address": "127.0.0.1:5001"},
        {"name": "web.2", "address": "127.0.0.1:5002", "state": "crashed"}]}})
    service = SyncService(FAST, apps)
    await service.listen()
    yield service
    await service.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_snapshot(sync: SyncService, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sync.url}/routes") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {"version": 1, "epoch": sync.epoch, "apps": {"web": {
        "domains": ["web.simctl.test"], "maintenance": False, "dynos": [
            {"name": "web.1", "address": "127.0.0.1:5001", "state": "up"},
            {"name": "web.2", "address": "127.0.0.1:5002", "state": "crashed"}]}}}


async def test_operations_append_records(sync: SyncService, http: aiohttp.ClientSession) -> None:
    calls = [
        ("/apps/web/dynos", {"dynos": [{"name": "web.1", "address": "127.0.0.1:6001"}]}),
        ("/apps/web/dynos/web.1", {"state": "crashed"}),
        ("/apps/web/dynos/web.1", {"address": "127.0.0.1:6002"}),
        ("/apps/web/maintenance", {"enabled": True}),
        ("/apps/api", {"domains": ["api.simctl.test"], "dynos": []}),
    ]
    for version, (path, body) in enumerate(calls, start=2):
        async with http.post(sync.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json() == {"version": version}
    async with http.delete(f"{sync.url}/apps/api", json={}) as resp:
        assert resp.status == 200
    snap = sync.snapshot()
    assert snap["version"] == 7
    assert snap["apps"] == {"web": {"domains": ["web.simctl.test"], "maintenance": True,
                                    "dynos": [{"name": "web.1", "address": "127.0.0.1:6002",
                                               "state": "crashed"}]}}


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), [
    ("post", "/apps/nope/dynos", {"dynos": []}, 404, "unknown app"),
    ("post", "/apps/web/dynos/web.9", {"state": "up"}, 404, "unknown dyno"),
    ("post", "/apps/web/dynos/web.1", {"state": "sleeping"}, 400, "bad state"),
    ("post", "/apps/web/dynos/web.1", {"colour": "red"}, 400, "'state' and/or 'address'"),
    ("post", "/apps/web/dynos", {"dynos": "web.1"}, 400, "must be list"),
    ("post", "/apps/web/dynos", {"dynos": [{"name": "web.1", "address": "nowhere"}]}, 400,
     "bad address"),
    ("post", "/apps/web/maintenance", {"enabled": "yes"}, 400, "must be bool"),
    ("post", "/apps/api", {"domains": ["web.simctl.test"]}, 409, "already belongs"),
    ("post", "/poison", {"kind": "nonsense"}, 400, "kind must be one of"),
    ("delete", "/apps/nope", None, 404, "unknown app"),
])
async def test_bad_operations(sync: SyncService, http: aiohttp.ClientSession, method: str,
                              path: str, body: object, status: int, message: str) -> None:
    async with http.request(method, sync.url + path, json=body,
                            headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == status
        answer = await resp.json()
    assert message in answer["error"]
    assert sync.version == 1


async def test_body_must_be_json(sync: SyncService, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sync.url}/apps/web/maintenance", data=b"{nope",
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "body must be JSON"


async def _lines(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, object]]:
    out = []
    async with asyncio.timeout(5):
        while len(out) < count:
            out.append(json.loads(await resp.content.readline()))
    return out


async def test_stream_replays_then_follows(sync: SyncService,
                                           http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sync.url}/routes/stream", params={"since": "0"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        first, beat = await _lines(resp, 2)
        assert first["seq"] == 1
        assert first["op"] == "app"
        assert beat == {"op": "heartbeat", "version": 1, "epoch": sync.epoch}
        assert sync.subscribers == 1
        sync.append({"op": "maintenance", "app": "web", "enabled": True})
        (record,) = await _lines(resp, 1)
        assert record == {"seq": 2, "op": "maintenance", "app": "web", "enabled": True}
        # a quiet stream still says it is alive
        (beat,) = await _lines(resp, 1)
        assert beat["op"] == "heartbeat"
        assert beat["version"] == 2
    await asyncio.sleep(0.2)
    assert sync.subscribers == 0


@pytest.mark.parametrize(("params", "status"), [
    ({"since": "-1"}, 400), ({"since": "x"}, 400), ({"since": "5"}, 409),
    ({"since": "0", "epoch": "other"}, 409),
])
async def test_stream_refuses_what_it_cannot_serve(sync: SyncService,
                                                   http: aiohttp.ClientSession,
                                                   params: dict[str, str], status: int) -> None:
    async with http.get(f"{sync.url}/routes/stream", params=params) as resp:
        assert resp.status == status


@pytest.mark.parametrize("kind", ["json", "fields", "types", "op"])
async def test_poison_goes_in_the_stream_not_the_snapshot(
        sync: SyncService, http: aiohttp.ClientSession, kind: str) -> None:
    before = sync.snapshot()["apps"]
    async with http.post(f"{sync.url}/poison", json={"kind": kind}) as resp:
        assert resp.status == 200
        assert await resp.json() == {"version": 2, "kind": kind}
    async with http.get(f"{sync.url}/routes") as resp:
        snap = await resp.json()
    assert snap["version"] == 2
    assert snap["apps"] == before
    async with http.get(f"{sync.url}/routes/stream", params={"since": "1"}) as resp:
        raw = await resp.content.readline()
    assert raw.endswith(b"\n")
    if kind == "json":
        with pytest.raises(ValueError, match="Expecting"):
            json.loads(raw)
    else:
        record = json.loads(raw)
        assert record["seq"] == 2


async def test_poison_without_body(sync: SyncService, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sync.url}/poison", json={}) as resp:
        assert resp.status == 200
        assert (await resp.json())["kind"] == "json"


async def test_metrics_and_health(sync: SyncService, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sync.url}/routes/stream") as stream:
        await _lines(stream, 2)
        async with http.get(f"{sync.url}/metrics") as resp:
            text = await resp.text()
        assert "sync_version 1.0" in text
        assert "sync_stream_subscribers 1.0" in text
    async with http.get(f"{sync.url}/health") as resp:
        health = await resp.json()
    assert health["status"] == "ok"
    assert health["version"] == 1


async def test_close_ends_open_streams() -> None:
    service = SyncService(FAST)
    await service.listen()
    async with aiohttp.ClientSession() as http, \
            http.get(f"{service.url}/routes/stream") as resp:
        await resp.content.readline()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await service.close()
        assert loop.time() - started < 2
        rest = await resp.content.read()
        assert rest == b"" or rest.endswith(b"\n")


async def test_records_appended_during_a_slow_write_are_sent(sync: SyncService) -> None:
    """A follower that reads slowly still gets every record without waiting for another.

    The stream handler blocks in its write while the follower is not reading; records
    appended meanwhile must go out as soon as the write completes, not with the next append.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", sync.port)
    writer.write(b"GET /routes/stream?since=1 HTTP/1.1\r\nHost: sync\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    domains = [f"d{i:05}.big.simctl.test" for i in range(1500)]
    for _ in range(300):  # ~11 MB: more than the socket buffers hold, so the write blocks
        sync.append({"op": "app", "app": "big", "domains": domains, "dynos": [],
                     "maintenance": False})
        await asyncio.sleep(0)
    last = sync.append({"op": "maintenance", "app": "web", "enabled": True})
    wanted = f'"seq": {last}, "op": "maintenance"'.encode()
    seen = b""
    try:
        async with asyncio.timeout(0.9 * sync.timing.sync_reconnect + 5):
            while wanted not in seen:
                chunk = await reader.read(2**20)
                assert chunk, "the stream ended"
                seen = seen[-200:] + chunk
    finally:
        writer.close()
