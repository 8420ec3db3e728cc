"""StampedReader: chunks stamped with when they reached the socket, not when they were read."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

import pytest

from simctl.faults import stamped

pytestmark = pytest.mark.skipif(not stamped.AVAILABLE, reason="kernel receive timestamps: Linux")


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    accepted.setblocking(False)
    return client, accepted


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


async def test_a_chunk_is_stamped_with_its_arrival_when_the_loop_was_busy() -> None:
    client, accepted = _pair()
    sink = _Sink()
    reader = stamped.StampedReader(
        asyncio.get_running_loop(), accepted.fileno(), sink.data, sink.end
    )
    try:
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
    finally:
        reader.close()
        client.close()
        accepted.close()


async def test_data_that_waited_while_paused_counts_from_the_resume() -> None:
    client, accepted = _pair()
    sink = _Sink()
    reader = stamped.StampedReader(
        asyncio.get_running_loop(), accepted.fileno(), sink.data, sink.end
    )
    try:
        client.sendall(b"held")  # reading is paused (never resumed yet): backpressure
        await asyncio.sleep(0.08)
        assert sink.chunks == []
        resumed = time.monotonic()
        reader.resume_reading()
        await sink.next()
        assert sink.chunks[0][0] == b"held"
        assert sink.chunks[0][1] >= resumed
    finally:
        reader.close()
        client.close()
        accepted.close()


async def test_end_of_stream_and_reset_are_reported() -> None:
    for reset in (False, True):
        client, accepted = _pair()
        sink = _Sink()
        reader = stamped.StampedReader(
            asyncio.get_running_loop(), accepted.fileno(), sink.data, sink.end
        )
        try:
            reader.resume_reading()
            if reset:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            await sink.next()
            assert len(sink.ended) == 1
            assert isinstance(sink.ended[0], ConnectionResetError) is reset
            assert (sink.ended[0] is None) is not reset
        finally:
            reader.close()
            accepted.close()


async def test_close_gives_back_the_duplicate_and_leaves_the_socket_open() -> None:
    client, accepted = _pair()
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
    client.close()
    accepted.close()
