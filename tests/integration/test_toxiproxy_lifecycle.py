"""Proxy lifecycle on real sockets: disable, enable, delete, refused upstream, reset
(docs/toxiproxy.md, "Proxy lifecycle")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.integration.toxiproxy_helpers import (
    LOCALHOST,
    Harness,
    blackhole_port,
    expect_eof,
    expect_refused,
    harness,
    is_reset,
    port_of,
    read_all,
    refusing_port,
    round_trip,
    still_open,
)


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


async def test_disable_closes_open_connections_and_refuses_new_ones(h: Harness) -> None:
    port = await h.proxy("p")
    conns = [await h.clients.open(port) for _ in range(3)]
    for reader, writer in conns:
        await round_trip(reader, writer)
    # One connection has data in flight towards the client when the proxy goes down.
    await h.api.add_toxic("p", "latency", {"latency": 2000})
    conns[0][1].write(b"in flight")
    started = time.monotonic()
    data = await h.api.update_proxy("p", {"enabled": False})
    assert data["enabled"] is False
    assert data["listen"] == f"{LOCALHOST}:{port}"
    for reader, _ in conns:
        assert await read_all(reader, 2.0) == b""  # a plain EOF (FIN), not a reset
    assert time.monotonic() - started < 1.0  # at once, not after the latency
    await expect_refused(port)
    # Toxics are kept while disabled.
    assert [t["name"] for t in data["toxics"]] == ["latency_downstream"]


async def test_enable_binds_the_same_port_again(h: Harness) -> None:
    port = await h.proxy("p")
    await h.api.update_proxy("p", {"enabled": False})
    await expect_refused(port)
    data = await h.api.update_proxy("p", {"enabled": True})
    assert data["listen"] == f"{LOCALHOST}:{port}"
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    # Enabling an enabled proxy is a no-op that keeps connections.
    await h.api.update_proxy("p", {"enabled": True})
    await round_trip(reader, writer)


async def test_disable_enable_cycles_keep_serving(h: Harness) -> None:
    port = await h.proxy("p")
    for _ in range(5):
        await h.api.update_proxy("p", {"enabled": False})
        await expect_refused(port)
        await h.api.update_proxy("p", {"enabled": True})
        reader, writer = await h.clients.open(port)
        await round_trip(reader, writer)


async def test_delete_closes_connections_with_eof(h: Harness) -> None:
    port = await h.proxy("p", toxics=({"type": "latency", "attributes": {"latency": 1}},))
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    reader2, writer2 = await h.clients.open(port)
    await round_trip(reader2, writer2)
    await h.api.delete_proxy("p")
    await expect_eof(reader)
    await expect_eof(reader2)
    await expect_refused(port)
    # The name and the port can be used again, without the old toxics.
    data = await h.api.create_proxy("p", h.echo.address, listen=f"{LOCALHOST}:{port}")
    assert data["toxics"] == []
    reader3, writer3 = await h.clients.open(port)
    await round_trip(reader3, writer3)


async def test_refused_upstream_accepts_then_closes(h: Harness) -> None:
    with refusing_port() as dead:
        port = await h.proxy("p", upstream=f"{LOCALHOST}:{dead}")
        for _ in range(3):
            reader, writer = await h.clients.open(port)  # the accept succeeds
            started = time.monotonic()
            assert await read_all(reader, 2.0) == b""  # then EOF
            assert time.monotonic() - started < 1.0
        await h.api.assert_serving()
        # The proxy keeps accepting: point it at a live upstream and it works.
        await h.api.update_proxy("p", {"upstream": h.echo.address})
        reader, writer = await h.clients.open(port)
        await round_trip(reader, writer)


async def test_unresolvable_upstream_accepts_then_closes(h: Harness) -> None:
    port = await h.proxy("p", upstream="no-such-host.invalid:80")
    reader, _ = await h.clients.open(port)
    assert await read_all(reader, 5.0) == b""


async def test_upstream_closing_closes_the_client(h: Harness) -> None:
    port = await h.proxy("p")
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    h.echo.close_connections()
    await expect_eof(reader)


async def test_reset_reenables_clears_toxics_and_keeps_ports(h: Harness) -> None:
    slow = await h.proxy("slow", toxics=({"type": "latency", "attributes": {"latency": 300}},))
    down = await h.proxy("down", toxics=({"type": "timeout", "stream": "upstream"},))
    await h.api.update_proxy("down", {"enabled": False})
    await expect_refused(down)
    reader, writer = await h.clients.open(slow)
    assert await round_trip(reader, writer) >= 0.29
    await h.api.reset()
    index = await h.api.expect(200, "GET", "/proxies")
    assert {name: (p["enabled"], p["toxics"], port_of(p["listen"]))
            for name, p in index.items()} == {
        "down": (True, [], down),
        "slow": (True, [], slow),
    }
    # The open connection survives the reset and is fast now.
    assert await round_trip(reader, writer) < 0.1
    reader2, writer2 = await h.clients.open(down)
    assert await round_trip(reader2, writer2) < 0.1
    # Reset is idempotent.
    await h.api.reset()
    assert await round_trip(reader, writer) < 0.1


async def test_reset_does_not_close_open_connections(h: Harness) -> None:
    port = await h.proxy("p", toxics=({"type": "noop"},))
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    await h.api.reset()
    assert await still_open(reader, 0.2)
    await round_trip(reader, writer)


async def test_disable_resets_connections_accepted_with_reset_peer(h: Harness) -> None:
    # "EOF at once (a normal FIN, unless a reset_peer toxic was present when it connected)"
    toxic = {"type": "reset_peer", "toxicity": 0, "attributes": {"timeout": 0}}
    port = await h.proxy("p", toxics=(toxic,))
    rec = await h.clients.record(port)
    rec.write(b"ping")
    assert await rec.wait_bytes(4, 2.0)  # toxicity 0: the toxic itself does nothing
    await h.api.update_proxy("p", {"enabled": False})
    assert is_reset(await rec.wait_closed(2.0))


async def test_blackholed_upstream_stalls_nothing_else(h: Harness) -> None:
    # Deliberate fix (section 7.11): dials run concurrently, not inside the accept loop.
    with blackhole_port() as hole:
        stuck_port = await h.proxy("stuck", upstream=f"{LOCALHOST}:{hole}")
        stuck = [await h.clients.open(stuck_port) for _ in range(3)]
        good_port = await h.proxy("good")
        reader, writer = await h.clients.open(good_port)
        await round_trip(reader, writer)
        await h.api.assert_serving()
        assert await still_open(stuck[0][0], 0.2)  # the dial is still pending
        started = time.monotonic()
        await h.api.delete_proxy("stuck")  # cancels the pending dials
        for stuck_reader, _ in stuck:
            assert await read_all(stuck_reader, 2.0) == b""
        assert time.monotonic() - started < 1.0
        await round_trip(reader, writer)
