"""The pieces a toxic chain is built from: Channel hand-off and Stub.send_at."""

from __future__ import annotations

import asyncio
import random
import time
from types import SimpleNamespace

from simctl.faults.channel import Channel
from simctl.faults.toxics import Chunk, Stub


async def test_take_now_is_offered_only_while_the_consumer_waits_on_an_empty_channel() -> None:
    channel = Channel(4)
    taken: list[object] = []
    channel.take_now = lambda item: taken.append(item) or True
    channel.put_nowait("queued")  # nobody waiting: it queues
    assert (taken, len(channel)) == ([], 1)
    assert await channel.get() == "queued"
    consumer = asyncio.ensure_future(channel.get())
    await asyncio.sleep(0)  # the consumer now waits on an empty channel
    channel.put_nowait("direct")
    channel.put_nowait("second")  # taken in place too: still waiting, still empty
    assert taken == ["direct", "second"]
    channel.take_now = lambda item: False  # refused: queued, and the consumer wakes
    channel.put_nowait("refused")
    assert await consumer == "refused"


def _stub() -> Stub:
    spec = SimpleNamespace(attributes={})
    return Stub(spec, Channel(4), Channel(4), random.Random(1))


async def test_send_at_delivers_at_the_deadline_stamped_with_it() -> None:
    stub = _stub()
    chunk = Chunk(b"x", time.monotonic())
    stub.pending = chunk
    due = time.monotonic() + 0.05
    await stub.send_at(due, chunk)
    assert time.monotonic() >= due - 0.002
    assert (stub.pending, chunk.ts, stub.output.get_nowait()) == (None, due, chunk)


async def test_send_at_interrupted_leaves_the_chunk_pending_and_unstamped() -> None:
    stub = _stub()
    read_at = time.monotonic()
    chunk = Chunk(b"x", read_at)
    stub.pending = chunk
    task = asyncio.ensure_future(stub.send_at(read_at + 0.05, chunk))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.06)  # past the deadline: the cancelled timer must not fire
    assert (stub.pending, chunk.ts, len(stub.output)) == (chunk, read_at, 0)


async def test_send_at_waits_for_room_when_the_output_is_full() -> None:
    stub = _stub()
    stub.output = Channel(1)
    stub.output.put_nowait("ahead")
    chunk = Chunk(b"x", time.monotonic())
    stub.pending = chunk
    task = asyncio.ensure_future(stub.send_at(time.monotonic() + 0.01, chunk))
    await asyncio.sleep(0.05)
    assert not task.done()
    assert stub.output.get_nowait() == "ahead"
    await asyncio.wait_for(task, 1)
    assert stub.output.get_nowait() is chunk
