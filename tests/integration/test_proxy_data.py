"""Data integrity through the proxy: big random payloads both ways, many concurrent
connections, and upstreams or clients that speak first and close.

Every scenario runs twice: on the default asyncio loop and on uvloop (the optional "fast"
extra that ``simctl toxiproxy serve`` installs), whose transports differ in the details
(uvloop reads even when connection_made paused the transport). Each test therefore is a
plain function that runs its scenario in a fresh loop of the chosen kind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
import pytest

from tests.integration.toxiproxy_helpers import (
    Handler,
    Harness,
    harness,
    poll,
    read_all,
    read_exactly,
    send_then_close,
)

MB = 1024 * 1024

CHAINS: dict[str, tuple[dict[str, Any], ...]] = {
    "direct": (),
    "latency": (
        {"type": "latency", "stream": "upstream", "attributes": {"latency": 10}},
        {"type": "latency", "stream": "downstream", "attributes": {"latency": 10}},
    ),
    "mixed": (
        {"type": "latency", "attributes": {"latency": 5, "jitter": 5}},
        {"type": "slicer", "attributes": {"average_size": 16384, "size_variation": 4096}},
        {"type": "noop"},
        {"type": "bandwidth", "attributes": {"rate": 1_000_000}},
        {"type": "limit_data", "attributes": {"bytes": 1 << 40}},
        {"type": "slow_close", "stream": "upstream", "attributes": {"delay": 1}},
        {"type": "noop", "stream": "upstream"},
    ),
}


LOOPS = ["asyncio", "uvloop"]


def run(loop: str, scenario: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run scenario(harness, *args) to completion in a new event loop of the given kind."""
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop

    async def main() -> None:
        async with harness() as h:
            await asyncio.wait_for(scenario(h, *args), 90)

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def digest(data: bytes) -> str:
    """Compare big payloads by length and hash, so a failure prints a short message."""
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()[:16]}"


def exchange(down: bytes, up_len: int, received: list[bytes]) -> Handler:
    """Upstream that sends `down` while reading `up_len` bytes, at the same time."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send() -> None:
            writer.write(down)
            await writer.drain()

        sender = asyncio.create_task(send())
        try:
            received.append(await reader.readexactly(up_len))
            await sender
            await reader.read()  # until the client closes
        finally:
            sender.cancel()

    return handler


@pytest.mark.parametrize("chain", list(CHAINS))
@pytest.mark.parametrize("loop", LOOPS)
def test_five_megabytes_each_way_arrive_intact(loop: str, chain: str) -> None:
    run(loop, five_megabytes_each_way, chain)


async def five_megabytes_each_way(h: Harness, chain: str) -> None:
    up, down = os.urandom(5 * MB), os.urandom(5 * MB)
    received: list[bytes] = []
    upstream = await h.serve(exchange(down, len(up), received))
    port = await h.proxy(upstream=upstream.address, toxics=CHAINS[chain])
    reader, writer = await h.clients.open(port)

    async def send() -> None:
        writer.write(up)
        await writer.drain()

    got, _ = await asyncio.gather(reader.readexactly(len(down)), send())
    assert digest(got) == digest(down)
    assert await poll(lambda: bool(received), 10)
    assert digest(received[0]) == digest(up)


@pytest.mark.parametrize("chain", ["direct", "latency"])
@pytest.mark.parametrize("loop", LOOPS)
def test_five_megabytes_echo(loop: str, chain: str) -> None:
    run(loop, five_megabytes_echo, chain)


async def five_megabytes_echo(h: Harness, chain: str) -> None:
    port = await h.proxy(toxics=CHAINS[chain])
    reader, writer = await h.clients.open(port)
    payload = os.urandom(5 * MB)

    async def send() -> None:
        writer.write(payload)
        await writer.drain()

    got, _ = await asyncio.gather(reader.readexactly(len(payload)), send())
    assert digest(got) == digest(payload)


@pytest.mark.parametrize("chain", ["direct", "latency"])
@pytest.mark.parametrize("loop", LOOPS)
def test_two_hundred_concurrent_connections_echo(loop: str, chain: str) -> None:
    run(loop, two_hundred_concurrent, chain)


async def two_hundred_concurrent(h: Harness, chain: str) -> None:
    port = await h.proxy(toxics=CHAINS[chain])

    async def one(i: int) -> bool:
        reader, writer = await h.clients.open(port)
        payload = i.to_bytes(4, "big") + os.urandom(16 * 1024)
        writer.write(payload)
        got = await read_exactly(reader, len(payload), timeout=30)
        writer.close()
        return got == payload

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert all(results), results.count(False)
    assert h.echo.accepted == 200
    proxy = h.server.collection.proxies["p"]
    assert await poll(lambda: not proxy.connections, 5)  # all of them finished


@pytest.mark.parametrize("chain", ["direct", "latency", "mixed"])
@pytest.mark.parametrize("loop", LOOPS)
def test_upstream_that_speaks_first_and_closes(loop: str, chain: str) -> None:
    # Regression: the banner was dropped when it arrived before the proxy had linked the
    # two sockets (SMTP, MySQL... speak first); on uvloop even after pausing the reads.
    run(loop, upstream_speaks_first, chain)


async def upstream_speaks_first(h: Harness, chain: str) -> None:
    for payload in (b"220 ready\r\n", os.urandom(MB)):
        upstream = await h.serve(send_then_close(payload))
        name = f"banner{len(payload)}"
        port = await h.proxy(name, upstream=upstream.address, toxics=CHAINS[chain])
        for _ in range(5):
            reader, _ = await h.clients.open(port)
            assert digest(await read_all(reader, 10.0)) == digest(payload)


@pytest.mark.parametrize("loop", LOOPS)
def test_client_that_sends_and_closes_delivers_everything(loop: str) -> None:
    run(loop, client_sends_and_closes)


async def client_sends_and_closes(h: Harness) -> None:
    upstream = await h.recording()
    port = await h.proxy(upstream=upstream.address)
    payload = os.urandom(MB)
    _, writer = await h.clients.open(port)
    writer.write(payload)
    await writer.drain()
    writer.close()
    assert await poll(lambda: sum(map(len, upstream.received)) >= len(payload), 10)
    assert digest(bytes(upstream.received[0])) == digest(payload)


@pytest.mark.parametrize("loop", LOOPS)
def test_bulk_echo_survives_toxic_churn(loop: str) -> None:
    # A direct bulk stream is relayed by the kernel (splice); toxics added and removed
    # mid-stream move it onto the toxic chain and back, in both directions, without
    # losing or reordering a byte.
    run(loop, bulk_echo_with_churn)


async def bulk_echo_with_churn(h: Harness) -> None:
    port = await h.proxy()
    process = psutil.Process()
    base_fds = process.num_fds()
    payload = os.urandom(24 * MB)
    streams = [await h.clients.open(port) for _ in range(3)]
    done = asyncio.Event()

    async def send(writer: asyncio.StreamWriter) -> None:
        for start in range(0, len(payload), 256 * 1024):
            writer.write(payload[start : start + 256 * 1024])
            await writer.drain()

    async def churn() -> None:
        toxics: tuple[dict[str, Any], ...] = (
            {"type": "noop", "name": "n_down"},
            {"type": "latency", "name": "l_up", "stream": "upstream", "attributes": {"latency": 2}},
            {"type": "bandwidth", "name": "b_down", "attributes": {"rate": 50_000}},
        )
        while not done.is_set():
            for spec in toxics:
                await h.api.add_toxic("p", **spec)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.03)
            for spec in toxics:
                await h.api.remove_toxic("p", spec["name"])
                await asyncio.sleep(0.02)

    async def transfer() -> list[bytes]:
        try:
            results = await asyncio.gather(
                *(reader.readexactly(len(payload)) for reader, _ in streams),
                *(send(writer) for _, writer in streams),
            )
        finally:
            done.set()
        return results[: len(streams)]

    got, _ = await asyncio.gather(transfer(), churn())
    for data in got:
        assert digest(data) == digest(payload)
    # The kernel relays' pipes and dup()ed sockets are all given back.
    for _, writer in streams:
        writer.close()
    proxy = h.server.collection.proxies["p"]
    assert await poll(lambda: not proxy.connections and not h.echo.active, 10)
    assert await poll(lambda: process.num_fds() <= base_fds, 5), (process.num_fds(), base_fds)


@pytest.mark.parametrize("loop", LOOPS)
def test_bulk_to_a_slow_reader_then_close(loop: str) -> None:
    # The kernel relay waits on a full destination (and a full pipe), then the upstream's
    # close arrives behind the data: everything is delivered, then EOF.
    run(loop, bulk_to_slow_reader)


async def bulk_to_slow_reader(h: Harness) -> None:
    payload = os.urandom(12 * MB)
    upstream = await h.serve(send_then_close(payload))
    port = await h.proxy(upstream=upstream.address)
    reader, _ = await h.clients.open(port)
    got = bytearray()
    while True:
        part = await asyncio.wait_for(reader.read(256 * 1024), 10)
        if not part:
            break
        got += part
        await asyncio.sleep(0.002)
    assert digest(bytes(got)) == digest(payload)
