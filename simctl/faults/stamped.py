"""Reading a toxic link's source with the kernel's receive timestamps (Linux).

A latency toxic counts its delay from when a chunk was read. Read through a transport,
that is when the event loop got round to the socket: a process woken from idle takes
0.1 ms at the median, and up to a millisecond on a virtual machine, so every chunk left
that much late. With SO_TIMESTAMPNS the kernel stamps each packet as it arrives, and a
link that has toxics reads its source here instead, with recvmsg(), so a chunk is
stamped with the moment it reached the proxy's socket, or the moment the proxy started
reading again after pausing the source (backpressure), whichever is later: data that
waited in the socket while the proxy would not read counts from when it could be read,
as in Toxiproxy.

Only the happy path is handled here, as in splice.py. End of stream hands the socket back
to its transport, which reads the EOF itself; an error is reported to the owner. The
socket is used through a dup()ed descriptor (the event loop refuses a reader on a
descriptor a transport owns), so the owner closes this reader before its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
AVAILABLE = sys.platform.startswith("linux") and hasattr(socket.socket, "recvmsg_into")
READ_SIZE = 256 * 1024  # as much as a transport reads at once
_ANCILLARY = socket.CMSG_SPACE(16) if AVAILABLE else 0  # one struct timespec
_TIMESPEC = struct.Struct("qq")


class _Buffer(threading.local):
    """One read buffer per thread, shared by its readers: a read is copied out before the
    callback returns, and a thousand links must not hold 256 KiB each."""

    def __init__(self) -> None:
        self.data = bytearray(READ_SIZE)
        self.view = memoryview(self.data)


_BUFFER = _Buffer()


class StampedReader:
    """Reads one socket, handing on (data, monotonic arrival time) for every read."""

    __slots__ = ("loop", "sock", "reading", "resumed", "on_data", "on_end")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        on_data: Callable[[bytes, float], None],
        on_end: Callable[[OSError | None], None],
    ) -> None:
        dup = os.dup(fd)
        try:
            self.sock = socket.socket(fileno=dup)
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            os.close(dup)
            raise
        self.loop = loop
        self.reading = False
        self.resumed = 0.0  # monotonic time reading last (re)started
        self.on_data = on_data  # (data, monotonic time it arrived)
        self.on_end = on_end  # (None at end of stream, or the error)

    # The transport's names, so that its owner can pause and resume either alike.

    def resume_reading(self) -> None:
        if not self.reading and self.sock.fileno() >= 0:
            self.reading = True
            self.resumed = time.monotonic()
            self.loop.add_reader(self.sock.fileno(), self._readable)

    def pause_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.sock.fileno())

    def _readable(self) -> None:
        buffer = _BUFFER
        try:
            n, ancillary, _, _ = self.sock.recvmsg_into([buffer.data], _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.pause_reading()
            self.on_end(exc)
            return
        if n == 0:
            self.pause_reading()
            self.on_end(None)
            return
        now = time.monotonic()
        arrived = now
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = _TIMESPEC.unpack_from(raw)
                # Wall-clock stamp to monotonic time: subtract its age from now.
                age = time.time() - (sec + nsec / 1e9)
                arrived = now - min(max(age, 0.0), now - self.resumed)
        self.on_data(buffer.view[:n].tobytes(), arrived)

    def close(self) -> None:
        """Stop reading and give the duplicate descriptor back (the socket stays open)."""
        with contextlib.suppress(Exception):  # the loop may already be closed
            self.pause_reading()
        self.reading = False
        self.sock.close()
