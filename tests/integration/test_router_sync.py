"""The router following sync: poison records, lost streams, stale routes, resync and flush."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from simctl.faults.server import ToxiproxyServer
from simctl.platform.router import RouterService
from simctl.platform.router.records import parse_apps
from simctl.platform.router.testing import FakeDyno, LogCapture, RouterStack, closed_port, fetch
from simctl.platform.sync import SyncService
from simctl.platform.timing import FAST


async def _get_json(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return await resp.json()


async def _post_json(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(url, json={}) as resp:
        return resp.status, await resp.json()


async def _metric(router: RouterService, name: str) -> float:
    async with aiohttp.ClientSession() as http, \
            http.get(f"{router.admin_url}/metrics") as resp:
        text = await resp.text()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def _eventually(check, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def dyno():
    async with FakeDyno("web.1") as d:
        yield d


@pytest.mark.parametrize("kind", ["json", "fields", "types", "op"])
async def test_poison_record_is_tolerated_and_resync_recovers(
        dyno: FakeDyno, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="simctl.router.sync")
    async with RouterStack({"web.1": dyno.address}) as stack:
        router, sync = stack.router, stack.sync
        assert router is not None
        assert sync is not None
        seq = sync.poison(kind)
        sync.append({"op": "maintenance", "app": "web", "enabled": True})

        async def halted() -> bool:
            health = await _get_json(f"{router.admin_url}/health")
            return health["status"] == "degraded" and health["sync"]["lag"] >= 2

        await _eventually(halted)
        health = await _get_json(f"{router.admin_url}/health")
        assert f"sync halted at seq {seq}" in health["reason"]
        assert health["sync"]["halted_seq"] == seq
        assert health["table_version"] == seq - 1
        assert [r.message for r in caplog.records if "at=sync_halted" in r.message][0].startswith(
            f"at=sync_halted seq={seq} ")
        assert await _metric(router, "router_sync_errors_total") == 1
        assert await _metric(router, "router_route_table_version") == seq - 1
        assert await _metric(router, "router_sync_lag") == 2
        # still routing on the last good table: maintenance (after the poison) not applied
        reply = await stack.get()
        assert reply is not None
        assert reply.status == 200
        await asyncio.sleep(3 * FAST.sync_reconnect)
        assert await _metric(router, "router_sync_errors_total") == 1  # no crash loop

        status, body = await _post_json(f"{router.admin_url}/admin/resync")
        assert (status, body) == (200, {"version": sync.version})
        health = await _get_json(f"{router.admin_url}/health")
        assert (health["status"], health["sync"]["lag"]) == ("ok", 0)
        reply = await stack.get()
        assert reply is not None
        assert reply.header("x-router-code") == "H80"
        # the stream goes on after the resync
        sync.append({"op": "maintenance", "app": "web", "enabled": False})
        await stack.synced()
        reply = await stack.get()
        assert reply is not None
        assert reply.status == 200


async def test_stale_routes_while_sync_is_down_then_recovery() -> None:
    async with FakeDyno("web.1") as old, FakeDyno("web.2") as new, LogCapture() as capture:
        sync = SyncService(FAST, parse_apps({"web": {"domains": ["web.simctl.test"],
                                                     "dynos": [{"name": "web.1",
                                                                "address": old.address}]}}))
        await sync.listen()
        sync_port = sync.port
        router = RouterService(FAST, sync_url=sync.url, logplex_url=capture.url)
        await router.listen()
        try:
            await _eventually(lambda: _true(router.core.table.version == 1))  # type: ignore
            reply = await fetch(router.http_port)
            assert reply is not None
            assert reply.header("x-dyno") == "web.1"

            await sync.close()  # the sync service goes away ...
            await old.stop()  # ... and meanwhile web.1 stops

            async def lost() -> bool:
                health = await _get_json(f"{router.admin_url}/health")
                return "sync stream lost" in health["reason"]

            await _eventually(lost)
            health = await _get_json(f"{router.admin_url}/health")
            assert health["status"] == "degraded"
            assert "last-known-good table version 1" in health["reason"]
            assert await _metric(router, "router_sync_connected") == 0
            # stale: the router still sends traffic to the dyno it last heard of
            reply = await fetch(router.http_port)
            assert reply is not None
            assert reply.header("x-router-code") == "H21"

            # sync comes back (a new process: new epoch) with web.2 in place of web.1
            sync = SyncService(FAST, parse_apps({"web": {"domains": ["web.simctl.test"],
                                                         "dynos": [{"name": "web.2",
                                                                    "address": new.address}]}}))
            await sync.listen(port=sync_port)

            async def recovered() -> bool:
                health = await _get_json(f"{router.admin_url}/health")
                return health["status"] == "ok"

            await _eventually(recovered)
            reply = await fetch(router.http_port)
            assert reply is not None
            assert reply.header("x-dyno") == "web.2"
        finally:
            await router.close()
            await sync.close()


async def _true(value: bool) -> bool:
    return value


async def test_cut_sync_link_is_detected_and_healed(dyno: FakeDyno) -> None:
    """A `timeout` toxic on the router's sync link: no bytes, no close; heartbeats stop."""
    async with FakeDyno("web.2") as other, ToxiproxyServer(port=0) as toxiproxy, \
            aiohttp.ClientSession() as http:
        sync = SyncService(FAST, parse_apps({"web": {"domains": ["web.simctl.test"],
                                                     "dynos": [{"name": "web.1",
                                                                "address": dyno.address}]}}))
        await sync.listen()
        async with http.post(f"{toxiproxy.url}/proxies", json={
                "name": "sync.1", "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{sync.port}"}) as resp:
            assert resp.status == 201, await resp.text()
            listen = (await resp.json())["listen"]
        router = RouterService(FAST, sync_url=f"http://{listen}")
        await router.listen()
        try:
            await _eventually(lambda: _true(router.core.table.version == 1))  # type: ignore
            async with http.post(f"{toxiproxy.url}/proxies/sync.1/toxics", json={
                    "name": "cut", "type": "timeout", "attributes": {"timeout": 0}}) as resp:
                assert resp.status == 200, await resp.text()
            sync.append({"op": "dynos", "app": "web", "dynos": [
                {"name": "web.2", "address": other.address}]})

            async def lost() -> bool:
                health = await _get_json(f"{router.admin_url}/health")
                return "no heartbeat" in health["reason"]

            await _eventually(lost, timeout=router.follower.dead_after + 5)  # type: ignore
            reply = await fetch(router.http_port)
            assert reply is not None
            assert reply.header("x-dyno") == "web.1"  # stale, but serving

            async with http.delete(f"{toxiproxy.url}/proxies/sync.1/toxics/cut") as resp:
                assert resp.status == 204

            async def caught_up() -> bool:
                return router.core.table.version == 2  # type: ignore[union-attr]

            await _eventually(caught_up)
            reply = await fetch(router.http_port)
            assert reply is not None
            assert reply.header("x-dyno") == "web.2"
        finally:
            await router.close()
            await sync.close()


async def test_flush_clears_quarantine_and_resyncs(dyno: FakeDyno) -> None:
    dead = closed_port()
    async with RouterStack({"web.1": dead, "web.2": dyno.address}) as stack:
        router = stack.router
        assert router is not None
        for _ in range(10):  # web.1 refuses: quarantined, each request retried on web.2
            reply = await stack.get()
            assert reply is not None
            assert reply.status == 200
        assert await _metric(router, 'router_quarantined{dyno="web.1"}') == 1
        assert await _metric(router, 'router_quarantined{dyno="web.2"}') == 0
        status, body = await _post_json(f"{router.admin_url}/admin/flush")
        assert status == 200
        assert body == {"quarantine_cleared": 1, "version": 1}
        assert await _metric(router, 'router_quarantined{dyno="web.1"}') == 0


async def test_resync_without_sync_is_an_error_not_a_crash(dyno: FakeDyno) -> None:
    async with RouterStack({"web.1": dyno.address}) as stack:
        router, sync = stack.router, stack.sync
        assert router is not None
        assert sync is not None
        await sync.close()
        status, body = await _post_json(f"{router.admin_url}/admin/resync")
        assert status == 502
        assert body["version"] == 1
        assert "GET /routes" in body["error"]
        reply = await stack.get()
        assert reply is not None
        assert reply.status == 200
