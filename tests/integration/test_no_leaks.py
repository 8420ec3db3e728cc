"""10,000 connections through one proxy leave no file descriptors, tasks or connection
objects behind, including connections the client resets in the middle of the stream.

Everything runs in this process (server, echo upstream, clients), so the process's open
file descriptors and the loop's tasks are the server's plus the test's, and both must
return to their baseline once the load is over.
"""

from __future__ import annotations

import asyncio
import os
import time

import psutil
import pytest

from tests.integration.toxiproxy_helpers import (
    LOCALHOST,
    harness,
    poll,
    set_linger_rst,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

TOTAL = 10_000
BATCH = 100  # connections open at once
LOAD_DEADLINE = 240.0  # seconds for the whole load, a bound rather than a speed claim
FD_SLACK = 8
TASK_SLACK = 3
PAYLOAD = os.urandom(16 * 1024)


async def one_connection(port: int, reset: bool) -> bool:
    """Echo a payload; when `reset`, abort with an RST after the first kilobyte came back."""
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        if reset:
            writer.write(PAYLOAD)
            got = await reader.readexactly(1024)
            set_linger_rst(writer)  # SO_LINGER(1, 0): close() sends RST, mid-stream
            return got == PAYLOAD[:1024]
        writer.write(PAYLOAD[:1024])
        return await reader.readexactly(1024) == PAYLOAD[:1024]
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def run_load(port: int, first: int, count: int, started: float) -> None:
    for batch_start in range(first, first + count, BATCH):
        assert time.monotonic() - started < LOAD_DEADLINE, f"too slow at {batch_start}"
        results = await asyncio.wait_for(
            asyncio.gather(*(one_connection(port, i % 2 == 1)
                             for i in range(batch_start, batch_start + BATCH))),
            timeout=60,
        )
        assert all(results), f"bad echo in batch {batch_start}"


async def test_ten_thousand_connections_return_to_baseline() -> None:
    process = psutil.Process()
    async with harness() as h:
        port = await h.proxy("load")
        proxy = h.server.collection.proxies["load"]
        await run_load(port, 0, BATCH, time.monotonic())  # warm-up, not counted

        assert await poll(lambda: not proxy.connections and not h.echo.active, 10)
        base_fds = process.num_fds()
        base_tasks = len(asyncio.all_tasks())

        started = time.monotonic()
        # First half direct relay, second half through a toxic chain (stub and writer
        # tasks per connection), half of all connections reset mid-stream.
        await run_load(port, 0, TOTAL // 2, started)
        await h.api.add_toxic("load", "noop")
        await h.api.add_toxic("load", "latency", {"latency": 1}, stream="upstream")
        await run_load(port, TOTAL // 2, TOTAL // 2, started)
        await h.api.reset()  # back to no toxics, as at the baseline

        def back_to_baseline() -> bool:
            return (
                not proxy.connections
                and not h.echo.active
                and process.num_fds() <= base_fds + FD_SLACK
                and len(asyncio.all_tasks()) <= base_tasks + TASK_SLACK
            )

        ok = await poll(back_to_baseline, 20, 0.1)
        assert ok, (
            f"after {TOTAL} connections: fds {process.num_fds()} (baseline {base_fds}), "
            f"tasks {len(asyncio.all_tasks())} (baseline {base_tasks}), "
            f"open proxy connections {len(proxy.connections)}"
        )
        assert h.echo.accepted == TOTAL + BATCH
