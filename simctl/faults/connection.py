"""A proxied TCP connection: two sockets (client and upstream) and two links between them.

Closing follows Toxiproxy: when a link's source ends (EOF or error) its writer fully
closes the destination socket; the other link then sees its source end and closes the
first socket. Half-close is therefore not propagated (docs/toxiproxy.md, "Chunks and closing").
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING

from simctl.faults import stamped
from simctl.faults.link import Link

if TYPE_CHECKING:
    from simctl.faults.proxy import Proxy

DIAL_TIMEOUT = 10.0
WRITE_BUFFER_HIGH = 512 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)


class Side(asyncio.Protocol):
    """One socket of a proxied connection, as an asyncio protocol."""

    __slots__ = (
        "conn",
        "name",
        "transport",
        "out_link",
        "in_link",
        "write_paused",
        "_pause_reasons",
        "_writable",
        "lost",
        "closing",
        "early",
        "early_eof",
        "stamped",
    )

    def __init__(self, conn: ProxyConnection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.out_link: Link | None = None  # the link reading from this socket
        self.in_link: Link | None = None  # the link writing to this socket
        self.write_paused = False
        self._pause_reasons: set[str] = set()
        self._writable: asyncio.Future[None] | None = None
        self.lost = False
        self.closing = False
        # Data and EOF that arrive before the links exist (uvloop may deliver data even
        # though reading was paused in connection_made).
        self.early: list[bytes] = []
        self.early_eof = False
        # Reads this socket instead of the transport while its link has toxics.
        self.stamped: stamped.StampedReader | None = None

    # -- protocol callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        # Bulk transfers pause and resume the source far less with a larger write buffer.
        # The type: ignore below: a stream transport has it.
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)  # type: ignore[attr-defined]
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        link = self.out_link
        if link is not None:
            link.feed(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        if self.out_link is not None:
            self.out_link.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket until the other link closes it

    def flush_early(self) -> None:
        link = self.out_link
        assert link is not None
        for data in self.early:
            link.feed(data)
        self.early.clear()
        if self.early_eof or self.lost:
            link.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.closing = True
        self._drop_duplicates()
        self._wake_writer()
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.in_link is not None:
            self.in_link.src.pause_reading("dest")

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()
        if self.in_link is not None:
            self.in_link.src.resume_reading("dest")

    # -- used by links -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closing and data:
            self.transport.write(data)  # type: ignore[union-attr]  # see __init__

    def close(self) -> None:
        if not self.closing and self.transport is not None:
            self._drop_duplicates()  # first, so that what a pipe holds for this socket goes out
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.closing = True
            self._drop_duplicates()
            self.transport.close()

    def _drop_duplicates(self) -> None:
        """Drop the kernel relays and the stamped reader using this socket: their dup()ed
        descriptors would keep it open."""
        for link in (self.out_link, self.in_link):
            if link is not None and link.splice is not None:
                link.unsplice()
        self.stop_stamped()

    def pause_reading(self, reason: str) -> None:
        if not self._pause_reasons:
            self._reading(False)
        self._pause_reasons.add(reason)

    def resume_reading(self, reason: str) -> None:
        self._pause_reasons.discard(reason)
        if not self._pause_reasons:
            self._reading(True)

    def _reading(self, on: bool) -> None:
        """Start or stop whichever reads this socket: the stamped reader, else the transport."""
        reader = self.stamped or (None if self.closing else self.transport)
        if reader is None:
            return
        if on:
            reader.resume_reading()
        else:
            reader.pause_reading()

    # -- reading with kernel receive times (while the out link has toxics) -------------

    def start_stamped(self) -> None:
        if self.stamped is not None or not stamped.AVAILABLE:
            return
        if self.closing or self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return
        try:
            reader = stamped.StampedReader(
                asyncio.get_running_loop(), sock.fileno(), self._stamped_data, self._stamped_end
            )
        except OSError:  # out of descriptors: the transport keeps reading, stamped on read
            return
        if not self._pause_reasons:
            self.transport.pause_reading()
            reader.resume_reading()
        self.stamped = reader

    def stop_stamped(self) -> None:
        """Hand reading back to the transport."""
        reader = self.stamped
        if reader is None:
            return
        self.stamped = None
        reader.close()
        if not self._pause_reasons:
            self._reading(True)

    def _stamped_data(self, data: bytes, arrived: float) -> None:
        if self.out_link is not None:
            self.out_link.feed(data, arrived)

    def _stamped_end(self, error: OSError | None) -> None:
        # End of stream: the transport, reading again, sees the EOF itself. An error was
        # consumed by recvmsg(), so the socket is dropped as the transport would have.
        self.stop_stamped()
        if error is not None:
            self.abort()

    async def wait_writable(self) -> None:
        if not self.write_paused or self.lost:
            return
        self._writable = asyncio.get_running_loop().create_future()
        await self._writable

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def release(self) -> None:
        """Drop references to the connection and its links once both sockets are gone, so
        that refcounting frees them (a garbage-collector pass over thousands of closed
        connections would stall every other connection for milliseconds)."""
        self.out_link = self.in_link = None
        self.transport = None
        self._writable = None
        self.conn = None  # type: ignore[assignment]  # dropped for the collector; never used again

    def set_linger_rst(self) -> None:
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            except OSError:
                pass


class ProxyConnection:
    """Accepted client socket, its upstream dial, and the two links once connected."""

    __slots__ = ("proxy", "seq", "client", "upstream", "up", "down", "dial_task", "dialing", "done")

    def __init__(self, proxy: Proxy, seq: int) -> None:
        self.proxy = proxy
        self.seq = seq
        self.client = Side(self, "client")
        self.upstream: Side | None = None
        self.up: Link | None = None
        self.down: Link | None = None
        self.dial_task: asyncio.Task[None] | None = None
        self.dialing = False
        self.done = False

    def side_made(self, side: Side) -> None:
        if side is self.client:
            self.proxy.connections.add(self)
            side.pause_reading("dial")
            self.dialing = True
            self.dial_task = asyncio.get_running_loop().create_task(self._dial())
        else:
            # The upstream may speak first (a banner, or data then close). Its bytes can be
            # delivered before _connect_upstream resumes and links the sockets, and would
            # be dropped (out_link is None): hold its reads until _link() has run.
            side.pause_reading("link")

    async def _dial(self) -> None:
        try:
            await self._connect_upstream()
        finally:
            self.dialing = False
            self._maybe_finish()

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = Side(self, "upstream")
        try:
            host, port = self.proxy.upstream_address()
            await asyncio.wait_for(
                loop.create_connection(lambda: upstream, host, port), DIAL_TIMEOUT
            )
        except (OSError, TimeoutError, ValueError):
            # Toxiproxy accepts, fails to dial, and closes the client: it reads EOF.
            self.client.close()
            return
        self.upstream = upstream
        if self.client.closing:
            upstream.close()
            return
        self._link()

    def _link(self) -> None:
        client, upstream = self.client, self.upstream
        assert upstream is not None
        toxics = self.proxy.toxics
        self.up = Link("upstream", client, upstream, self._rng_for("upstream"), self._fail)
        self.down = Link("downstream", upstream, client, self._rng_for("downstream"), self._fail)
        client.out_link = upstream.in_link = self.up
        upstream.out_link = client.in_link = self.down
        if toxics.has_resetting_toxic():
            client.set_linger_rst()
            upstream.set_linger_rst()
        self.up.build(toxics.chain("upstream"))
        self.down.build(toxics.chain("downstream"))
        client.flush_early()
        # uvloop starts reading even when connection_made paused the transport, so an
        # upstream that speaks first (a banner, or data then close) may already have
        # delivered into upstream.early: flush it too, or it is lost.
        upstream.flush_early()
        client.resume_reading("dial")
        upstream.resume_reading("link")

    def _rng_for(self, direction: str):
        def make(spec):
            return self.proxy.rng_for(self.seq, direction, spec.name)

        return make

    def _fail(self, exc: BaseException) -> None:
        self.close()

    def side_lost(self, side: Side) -> None:
        if side.out_link is not None:
            side.out_link.feed_eof()
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        upstream_gone = self.upstream is None or self.upstream.lost
        if self.client.lost and upstream_gone and not self.dialing:
            self._finish()

    def close(self) -> None:
        """Close both sockets now (proxy disabled or deleted)."""
        if self.dial_task is not None and not self.dial_task.done():
            self.dial_task.cancel()
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        for link in (self.up, self.down):
            if link is not None:
                link.end()
        self.proxy.connection_finished(self)
        self.client.release()
        if self.upstream is not None:
            self.upstream.release()
        self.up = self.down = None
        self.dial_task = None
