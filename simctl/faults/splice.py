"""Zero-copy relay for the direct path of a bulk link (Linux): socket > pipe > socket.

With no toxics, a link relays through its asyncio transports: every read is copied into a
bytes object, handed to Python and copied again into the destination socket. For a bulk
stream that is most of the proxy's CPU. Once a link sees a large read (a bulk transfer)
and its destination has nothing buffered, it switches to splice(2): the source
transport stops reading, and the kernel moves pages from the source socket into a pipe
and from the pipe into the destination socket, with two system calls per round and no
copy through user space. Small request/response traffic never switches.

Only the happy path is handled here. End of stream, a socket error, a toxic being added,
or either socket closing all hand the link back to its transports (Link.unsplice): what
the pipe still holds is written through the destination transport (so order is kept),
the source transport resumes reading and sees the EOF or error itself.

The sockets are used through dup()ed descriptors, since the event loop refuses a
reader on a descriptor that a transport owns. A dup keeps the socket open, so every
path that closes a transport unsplices first (Side.close, Side.abort, connection_lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sys
from collections.abc import Callable

AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "splice")
MIN_READ = 64 * 1024  # a read at least this large marks a bulk transfer
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032
_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if AVAILABLE else 0


class Splice:
    """One direction of a connection relayed by the kernel."""

    __slots__ = (
        "loop",
        "rfd",
        "wfd",
        "pr",
        "pw",
        "size",
        "inpipe",
        "moved",
        "waiting",
        "reads_paused",
        "on_moved",
        "on_fail",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        src_fd: int,
        dst_fd: int,
        on_moved: Callable[[int, int], None],
        on_fail: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.rfd = self.wfd = self.pr = self.pw = -1
        try:
            self.rfd = os.dup(src_fd)
            self.wfd = os.dup(dst_fd)
            self.pr, self.pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            with contextlib.suppress(OSError):  # over the per-user pipe quota: keep default
                fcntl.fcntl(self.pw, _F_SETPIPE_SZ, PIPE_SIZE)
            self.size = fcntl.fcntl(self.pw, _F_GETPIPE_SZ)
        except OSError:
            self._close_fds()
            raise
        self.inpipe = 0  # bytes read into the pipe, not yet written out
        self.moved = 0  # bytes read in all
        self.waiting = False  # True while the destination is full (writer registered)
        self.reads_paused = False  # True while the pipe is full too (reader removed)
        self.on_moved = on_moved  # (bytes read, bytes written)
        self.on_fail = on_fail  # hand the link back to the transports
        loop.add_reader(self.rfd, self._readable)

    def _readable(self) -> None:
        try:
            n = os.splice(self.rfd, self.pw, self.size - self.inpipe, flags=_FLAGS)
        except BlockingIOError:
            # Nothing to read, or (while the destination is full) no free slot in the pipe,
            # which can hold fewer bytes than its size: wait for the destination.
            if self.waiting:
                self._pause_reads()
            return
        except OSError:
            n = 0
        if n == 0:  # end of stream or error: the source transport takes over and sees it
            self.on_fail()
            return
        self.inpipe += n
        self.moved += n
        self.on_moved(n, 0)
        if not self.waiting:
            self._flush()
        elif self.inpipe >= self.size:
            # Destination and pipe both full: the source socket's own buffer holds what
            # arrives until the destination drains.
            self._pause_reads()

    def _pause_reads(self) -> None:
        self.reads_paused = True
        self.loop.remove_reader(self.rfd)

    def _flush(self) -> None:
        written = 0
        while self.inpipe:
            try:
                m = os.splice(self.pr, self.wfd, self.inpipe, flags=_FLAGS)
            except BlockingIOError:
                break
            except OSError:
                if written:
                    self.on_moved(0, written)
                self.on_fail()  # the destination transport will report the error
                return
            self.inpipe -= m
            written += m
        if written:
            self.on_moved(0, written)
        # While the destination is full, keep reading into the pipe until it fills too.
        if self.inpipe and not self.waiting:
            self.waiting = True
            self.loop.add_writer(self.wfd, self._writable)
        elif not self.inpipe and self.waiting:
            self.waiting = False
            self.loop.remove_writer(self.wfd)
        if self.reads_paused and self.inpipe < self.size:
            self.reads_paused = False
            self.loop.add_reader(self.rfd, self._readable)

    def _writable(self) -> None:
        self._flush()

    def close(self) -> bytes:
        """Stop relaying; returns what the pipe still held (not yet written out)."""
        with contextlib.suppress(Exception):  # the loop may already be closed
            self.loop.remove_reader(self.rfd)
            self.loop.remove_writer(self.wfd)
        parts = []
        while self.inpipe > 0:
            try:
                part = os.read(self.pr, self.inpipe)
            except OSError:
                break
            if not part:
                break
            parts.append(part)
            self.inpipe -= len(part)
        self.inpipe = 0
        self._close_fds()
        return b"".join(parts)

    def _close_fds(self) -> None:
        for fd in (self.rfd, self.wfd, self.pr, self.pw):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.rfd = self.wfd = self.pr = self.pw = -1
