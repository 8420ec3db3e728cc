"""StampedReader: chunks stamped with when they reached the socket, not when they were read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from simctl.faults import stamped

pytestmark = pytest.mark.skipif(not stamped.AVAILABLE, reason="kernel receive timestamps: Linux")


class _Sink:
    def __init__(self) -> None:
        self.chunks: list[tuple[bytes, float]] = []
        self.ended: list[OSError | None] = []
        self.event = asyncio.Event()

    def data(self, data: bytes, arrived: float) -> None:
        self.chunks.append((data, arrived))
        self.event.set()

    def end(self, error: OSError | None) -> None:
        self.ended.append(error)
        self.event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self.event.wait(), 5)
        self.event.clear()


@contextlib.contextmanager
def _connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair on 127.0.0.1: (the client, the accepted socket, non-blocking)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    accepted.setblocking(False)
    with client, accepted:
        yield client, accepted


@contextlib.contextmanager
def _reading() -> Iterator[tuple[socket.socket, _Sink, stamped.StampedReader]]:
    """A client, and a StampedReader (not yet reading) on the socket it talks to."""
    with _connection() as (client, accepted):
        sink = _Sink()
        loop = asyncio.get_running_loop()
        reader = stamped.StampedReader(loop, accepted.fileno(), sink.data, sink.end)
        try:
            yield client, sink, reader
        finally:
            reader.close()


async def test_a_chunk_is_stamped_with_its_arrival_when_the_loop_was_busy() -> None:
    with _reading() as (client, sink, reader):
        reader.resume_reading()
        # The kernel switches packet timestamps on for everyone a moment after the first
        # socket asks (deferred work); until then a chunk is stamped when read. So try a
        # few times: once timestamps are on, the stamp is the arrival, not the read.
        lateness = []
        for _ in range(20):
            sent = time.monotonic()
            client.sendall(b"ping")
            time.sleep(0.04)  # noqa: ASYNC251 - the loop is busy: the data waits in the socket
            await sink.next()
            data, arrived = sink.chunks.pop()
            assert data == b"ping"
            assert arrived >= sent - 0.005
            lateness.append(arrived - sent)
            if lateness[-1] < 0.02:
                break
        assert min(lateness) < 0.02, lateness  # not 40 ms later, when it was read


async def test_data_that_waited_while_paused_counts_from_the_resume() -> None:
    with _reading() as (client, sink, reader):
        client.sendall(b"held")  # reading is paused (never resumed yet): backpressure
        await asyncio.sleep(0.08)
        assert sink.chunks == []
        resumed = time.monotonic()
        reader.resume_reading()
        await sink.next()
        assert sink.chunks[0][0] == b"held"
        assert sink.chunks[0][1] >= resumed


@pytest.mark.parametrize("reset", [False, True])
async def test_end_of_stream_and_reset_are_reported(reset: bool) -> None:
    with _reading() as (client, sink, reader):
        reader.resume_reading()
        if reset:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        await sink.next()
        await asyncio.sleep(0.02)  # a reader that kept reading would report again
        assert len(sink.ended) == 1
        assert isinstance(sink.ended[0], ConnectionResetError) is reset
        assert (sink.ended[0] is None) is not reset


async def test_close_gives_back_the_duplicate_and_leaves_the_socket_open() -> None:
    with _connection() as (client, accepted):
        before = len(os.listdir("/proc/self/fd"))
        reader = stamped.StampedReader(
            asyncio.get_running_loop(), accepted.fileno(), lambda d, t: None, lambda e: None
        )
        reader.resume_reading()
        assert len(os.listdir("/proc/self/fd")) == before + 1
        reader.close()
        assert len(os.listdir("/proc/self/fd")) == before  # the duplicate is gone
        client.sendall(b"still open")
        await asyncio.sleep(0.02)
        assert accepted.recv(100) == b"still open"
