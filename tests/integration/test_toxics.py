"""Each toxic of docs/toxics.md, measured on real sockets.

The "observed" numbers come from real Toxiproxy v2.12.0; tolerances are explicit and
generous (the machine is shared), and lower bounds are physical: a toxic never makes
data arrive early.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.toxiproxy_helpers import (
    Harness,
    expect_eof,
    harness,
    is_reset,
    poll,
    read_all,
    round_trip,
    send_then_close,
    still_open,
)

MS = 0.001


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


def toxic(type: str, stream: str = "downstream", **attributes: int) -> dict[str, Any]:
    return {"type": type, "stream": stream, "name": f"{type}_{stream}_{len(attributes)}",
            "attributes": attributes}


async def median_rtt(port: int, h: Harness, samples: int = 3) -> float:
    reader, writer = await h.clients.open(port)
    return statistics.median([await round_trip(reader, writer) for _ in range(samples)])


# -- latency ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
async def test_latency_round_trip(h: Harness, stream: str) -> None:
    port = await h.proxy(toxics=(toxic("latency", stream, latency=100),))
    rtt = await median_rtt(port, h)
    assert 95 * MS <= rtt <= 125 * MS  # observed 101.1 ms


async def test_latency_without_toxic_is_fast(h: Harness) -> None:
    port = await h.proxy()
    assert await median_rtt(port, h) < 25 * MS


@pytest.mark.parametrize(
    "streams", [("downstream", "downstream"), ("upstream", "upstream"),
                ("upstream", "downstream")]
)
async def test_two_latencies_add_up(h: Harness, streams: tuple[str, str]) -> None:
    port = await h.proxy(toxics=(
        {**toxic("latency", streams[0], latency=100), "name": "first"},
        {**toxic("latency", streams[1], latency=50), "name": "second"},
    ))
    rtt = await median_rtt(port, h)
    assert 145 * MS <= rtt <= 175 * MS  # observed 150.8 ms


async def test_latency_is_pipelined_not_cumulative(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("latency", latency=100),))
    rec = await h.clients.record(port)
    rec.write(b"w")  # warm up: the upstream dial is done and the chain runs
    assert await rec.wait_bytes(1, 2.0)
    sent = []
    for i in range(5):
        if i:
            await asyncio.sleep(20 * MS)
        sent.append(rec.write(bytes([ord("a") + i])))
    assert await rec.wait_bytes(6, 2.0)
    arrival = {}
    for at, data in rec.chunks:
        for byte in data:
            arrival.setdefault(byte, at)
    arrived = [arrival[ord("a") + i] for i in range(5)]
    for send_at, got_at in zip(sent, arrived, strict=True):
        assert 95 * MS <= got_at - send_at <= 130 * MS  # each chunk waits ~100 ms once
    relative = [(at - sent[0]) / MS for at in arrived]
    for got, observed in zip(relative, [101, 122, 142, 162, 183], strict=True):
        assert abs(got - observed) <= 25, relative
    assert rec.data == b"wabcde"


async def test_latency_jitter_stays_in_range(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("latency", latency=100, jitter=50),))
    reader, writer = await h.clients.open(port)
    rtts = [await round_trip(reader, writer) for _ in range(6)]
    # Drawn per chunk in [latency - jitter, latency + jitter).
    assert all(45 * MS <= rtt <= 175 * MS for rtt in rtts), rtts


# -- bandwidth ----------------------------------------------------------------------------


async def test_bandwidth_limits_rate_in_100ms_pieces(h: Harness) -> None:
    payload = os.urandom(200_000)
    upstream = await h.serve(send_then_close(payload))
    port = await h.proxy(upstream=upstream.address, toxics=(toxic("bandwidth", rate=100),))
    rec = await h.clients.record(port)
    assert await rec.wait_closed(6.0) is None
    assert rec.data == payload
    elapsed = rec.chunks[-1][0] - rec.connected_at
    assert 1.9 <= elapsed <= 2.6  # 200000 B at 100 KB/s: observed 2.01 s
    assert max(rec.sizes) <= 10_000  # rate * 100 bytes per piece


async def test_bandwidth_upstream_direction(h: Harness) -> None:
    upstream = await h.recording()
    port = await h.proxy(upstream=upstream.address,
                         toxics=(toxic("bandwidth", "upstream", rate=50),))
    reader, writer = await h.clients.open(port)
    payload = os.urandom(25_000)
    started = time.monotonic()
    writer.write(payload)
    await poll(lambda: sum(map(len, upstream.received)) >= len(payload), 3.0, 0.005)
    elapsed = time.monotonic() - started
    assert bytes(upstream.received[0]) == payload
    assert 0.45 <= elapsed <= 0.9  # 25000 B at 50 KB/s = 0.5 s


# -- slow_close ----------------------------------------------------------------------------


async def test_slow_close_delays_only_the_close(h: Harness) -> None:
    upstream = await h.serve(send_then_close(b"hello"))
    port = await h.proxy(upstream=upstream.address, toxics=(toxic("slow_close", delay=500),))
    rec = await h.clients.record(port)
    assert await rec.wait_closed(3.0) is None
    assert rec.data == b"hello"
    data_at = rec.chunks[0][0]
    assert rec.eof_at is not None
    assert data_at - rec.connected_at < 100 * MS  # data passes at once
    assert 480 * MS <= rec.eof_at - data_at <= 650 * MS  # observed 0.501 s


# -- timeout -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
async def test_timeout_closes_an_idle_connection(h: Harness, stream: str) -> None:
    port = await h.proxy(toxics=(toxic("timeout", stream, timeout=300),))
    rec = await h.clients.record(port)
    assert await rec.wait_closed(2.0) is None
    assert rec.eof_at is not None
    assert 290 * MS <= rec.eof_at - rec.connected_at <= 420 * MS  # observed 0.301 s
    assert rec.data == b""


async def test_timeout_restarts_with_every_chunk_and_drops_data(h: Harness) -> None:
    upstream = await h.recording()
    port = await h.proxy(upstream=upstream.address,
                         toxics=(toxic("timeout", "upstream", timeout=300),))
    rec = await h.clients.record(port)
    last = 0.0
    for _ in range(12):  # one byte every 150 ms for 1.8 s
        await asyncio.sleep(150 * MS)
        assert not rec.is_closed, "closed although data kept flowing"
        last = rec.write(b"x")
    await asyncio.sleep(50 * MS)
    assert not rec.is_closed
    assert rec.eof_at is None
    assert bytes(upstream.received[0]) == b""  # every chunk was dropped
    # Once the data stops, the idle timer runs out.
    assert await rec.wait_closed(2.0) is None
    assert rec.eof_at is not None
    assert 290 * MS <= rec.eof_at - last <= 450 * MS


async def test_timeout_zero_drops_data_forever_until_removed(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("timeout", timeout=0),))
    reader, writer = await h.clients.open(port)
    writer.write(b"hello")
    assert await still_open(reader, 0.4)  # the echo is dropped, nothing closes
    started = time.monotonic()
    await h.api.remove_toxic("p", "timeout_downstream_1")
    await expect_eof(reader, 1.0)  # removal closes the connection (Cleanup)
    assert time.monotonic() - started < 0.5


async def test_timeout_zero_upstream_drops_what_the_client_sends(h: Harness) -> None:
    upstream = await h.recording()
    port = await h.proxy(upstream=upstream.address,
                         toxics=(toxic("timeout", "upstream", timeout=0),))
    reader, writer = await h.clients.open(port)
    writer.write(b"dropped")
    assert await still_open(reader, 0.3)
    assert [bytes(r) for r in upstream.received] == [b""]


async def test_timeout_zero_still_closes_on_source_eof(h: Harness) -> None:
    upstream = await h.serve(send_then_close(b"never seen", delay=0.05))
    port = await h.proxy(upstream=upstream.address, toxics=(toxic("timeout", timeout=0),))
    reader, _ = await h.clients.open(port)
    assert await read_all(reader, 2.0) == b""


# -- reset_peer --------------------------------------------------------------------------


async def test_reset_peer_resets_new_connections_on_first_data(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("reset_peer", timeout=0),))
    rec = await h.clients.record(port)
    await asyncio.sleep(0.2)
    assert not rec.is_closed  # nothing happens until data flows
    sent = rec.write(b"x")
    exc = await rec.wait_closed(2.0)
    assert is_reset(exc), exc  # ECONNRESET, not a FIN
    assert time.monotonic() - sent < 0.2  # observed 0.5 ms
    assert rec.data == b""  # data is never forwarded


async def test_reset_peer_upstream_with_timeout(h: Harness) -> None:
    upstream = await h.recording()
    port = await h.proxy(upstream=upstream.address,
                         toxics=(toxic("reset_peer", "upstream", timeout=200),))
    rec = await h.clients.record(port)
    sent = rec.write(b"x")
    exc = await rec.wait_closed(2.0)
    closed_at = time.monotonic()
    assert is_reset(exc), exc
    assert 190 * MS <= closed_at - sent <= 320 * MS  # observed 0.201 s
    assert [bytes(r) for r in upstream.received] == [b""]


async def test_reset_peer_added_to_an_open_connection_closes_with_eof(h: Harness) -> None:
    port = await h.proxy()
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    await h.api.add_toxic("p", "reset_peer", {"timeout": 0})
    writer.write(b"x")
    assert await read_all(reader, 2.0) == b""  # a FIN: no linger was set at accept


async def test_reset_peer_present_but_inactive_still_resets_closes(h: Harness) -> None:
    # toxicity 0: the toxic does nothing, but its presence at accept time made every
    # close of the connection an RST (docs/toxics.md, "reset_peer").
    upstream = await h.serve(send_then_close(b"reply", delay=0.05))
    port = await h.proxy(upstream=upstream.address,
                         toxics=({**toxic("reset_peer", timeout=0), "toxicity": 0},))
    rec = await h.clients.record(port)
    exc = await rec.wait_closed(2.0)
    assert is_reset(exc), exc
    assert rec.data in (b"", b"reply")


# -- slicer -------------------------------------------------------------------------------


async def test_slicer_piece_sizes(h: Harness) -> None:
    payload = os.urandom(2000)
    upstream = await h.serve(send_then_close(payload))
    port = await h.proxy(upstream=upstream.address, toxics=(
        toxic("slicer", average_size=100, size_variation=20, delay=1000),
    ))
    rec = await h.clients.record(port)
    assert await rec.wait_closed(3.0) is None
    assert rec.data == payload
    sizes = rec.sizes
    # Observed 26 recvs of 47-118 B; a piece is final once len - average <= variation,
    # and a halving moves the midpoint by less than the variation.
    assert 16 <= len(sizes) <= 45, sizes
    assert max(sizes) <= 120, sizes
    assert min(sizes) >= 30, sizes


async def test_slicer_delay_is_in_microseconds(h: Harness) -> None:
    payload = os.urandom(1000)
    upstream = await h.serve(send_then_close(payload))
    port = await h.proxy(upstream=upstream.address, toxics=(
        toxic("slicer", average_size=100, size_variation=0, delay=10_000),
    ))
    rec = await h.clients.record(port)
    assert await rec.wait_closed(3.0) is None
    assert rec.data == payload
    # Zero variation halves exactly: 1000 -> 500 -> 250 -> 125 -> 62/63.
    assert rec.sizes == [62, 63] * 8
    spread = rec.chunks[-1][0] - rec.chunks[0][0]
    assert 140 * MS <= spread <= 500 * MS  # 15 gaps of 10 ms, not 10 s


# -- limit_data ----------------------------------------------------------------------------


async def test_limit_data_passes_exact_bytes_then_eof(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("limit_data", bytes=10),))
    rec = await h.clients.record(port)
    payload = os.urandom(100)
    rec.write(payload)
    assert await rec.wait_closed(2.0) is None
    assert rec.data == payload[:10]  # observed: exactly 10 B, then EOF


async def test_limit_data_counts_across_chunks(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("limit_data", bytes=25),))
    rec = await h.clients.record(port)
    sent = b""
    for i in range(5):
        if rec.is_closed:
            break
        chunk = bytes([ord("a") + i]) * 10
        sent += chunk
        rec.write(chunk)
        await asyncio.sleep(20 * MS)
    assert await rec.wait_closed(2.0) is None
    assert rec.data == sent[:25]


async def test_limit_data_upstream(h: Harness) -> None:
    upstream = await h.recording()
    port = await h.proxy(upstream=upstream.address,
                         toxics=(toxic("limit_data", "upstream", bytes=10),))
    reader, writer = await h.clients.open(port)
    writer.write(os.urandom(100))
    assert await read_all(reader, 2.0) == b""
    await asyncio.sleep(50 * MS)
    assert [len(r) for r in upstream.received] == [10]


async def test_limit_data_zero_closes_on_first_data_not_on_connect(h: Harness) -> None:
    port = await h.proxy(toxics=(toxic("limit_data", "upstream", bytes=0),))
    reader, writer = await h.clients.open(port)
    assert await still_open(reader, 0.2)
    writer.write(b"x")
    assert await read_all(reader, 2.0) == b""


# -- noop ---------------------------------------------------------------------------------


async def test_noop_is_accepted_and_passes_data(h: Harness) -> None:
    created = await h.api.create_proxy("p", h.echo.address)
    data = await h.api.add_toxic("p", "noop", stream="upstream")
    assert data == {"attributes": {}, "name": "noop_upstream", "type": "noop",
                    "stream": "upstream", "toxicity": 1}
    await h.api.add_toxic("p", "noop")
    reader, writer = await h.clients.open(int(created["listen"].rsplit(":", 1)[1]))
    payload = os.urandom(256 * 1024)
    assert await round_trip(reader, writer, payload) < 2.0
