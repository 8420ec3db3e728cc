"""One direction of a proxied connection: source socket -> toxic chain -> destination socket.

With no toxics a link is a direct relay: data_received writes straight into the peer
transport. With toxics, chunks travel through a chain of stubs, one task per toxic,
joined by Channels, and a writer task puts them on the wire:

    reader > [stub toxic 1] > [stub toxic 2] > writer > socket

A chunk handed to an idle writer (say, by a latency toxic's timer at its deadline) is
written in place, without waking the writer task for it.

Chain changes on a live connection follow Toxiproxy (docs/toxiproxy.md, "Live changes"): an
interrupted stub forwards what it holds, a removed stub flushes its queue downstream
(or closes the stream, for toxics that close on removal), the neighbour re-rolls its
toxicity. When the last toxic goes, the writer flushes and the link turns direct again.

While a link has toxics, its source is read with the kernel's receive timestamps
(stamped.py), so chunks count their time from when they reached the proxy.

A direct link that carries a bulk stream hands the copying to the kernel (splice.py);
anything out of the ordinary (a toxic added, end of stream, an error, a socket closing)
hands it back to the transports first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from simctl.faults import splice
from simctl.faults.channel import Channel
from simctl.faults.toxics import EOF, Chunk, Stub
from simctl.faults.toxics.base import pending_to_item
from simctl.faults.toxics.noop import Noop

if TYPE_CHECKING:
    from simctl.faults.connection import Side
    from simctl.faults.toxic_collection import ToxicSpec

log = logging.getLogger("simctl.faults")

WRITER_CAPACITY = 16


class Link:
    __slots__ = (
        "direction",
        "src",
        "dest",
        "stubs",
        "target",
        "writer_channel",
        "writer_task",
        "lock",
        "bytes",
        "sent",
        "ended",
        "rng_for",
        "on_error",
        "splice",
        "no_splice",
    )

    def __init__(
        self,
        direction: str,
        src: Side,
        dest: Side,
        rng_for: Callable[[ToxicSpec], random.Random],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.direction = direction
        self.src = src
        self.dest = dest
        self.stubs: list[Stub] = []
        self.target: Channel | None = None  # where the reader puts chunks; None = direct relay
        self.writer_channel: Channel | None = None
        self.writer_task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.bytes = 0  # read from the source
        self.sent = 0  # written to the destination
        self.ended = False
        self.rng_for = rng_for
        self.on_error = on_error
        self.splice: splice.Splice | None = None  # kernel relay of a direct bulk stream
        self.no_splice = not splice.AVAILABLE

    # -- reader side (called from the source protocol) --------------------------------

    def feed(self, data: bytes, arrived: float | None = None) -> None:
        """Data read from the source; `arrived` is its kernel receive time, if known."""
        n = len(data)
        self.bytes += n
        target = self.target
        if target is None:
            if self.splice is not None:  # not expected: the source transport is paused
                self.unsplice()
                self.no_splice = True
            self.sent += n
            self.dest.write(data)
            if n >= splice.MIN_READ and not self.no_splice:
                self._start_splice()
            return
        target.put_nowait(Chunk(data, time.monotonic() if arrived is None else arrived))
        if target.full():
            self.src.pause_reading("chain")
            target.on_space = lambda: self.src.resume_reading("chain")

    def feed_eof(self) -> None:
        self.unsplice()
        if self.target is None:
            self.dest.close()
            # Nothing can flow any more: toxics added from now on (say, while a burst of
            # connections closes) need no chain here.
            self.ended = True
        else:
            self.target.put_nowait(EOF)

    # -- kernel relay (direct path only) ----------------------------------------------

    def _start_splice(self) -> None:
        src, dest = self.src, self.dest
        if (
            self.splice is not None
            or self.ended
            or src.closing
            or dest.closing
            or src.transport is None
            or dest.transport is None
            or dest.transport.get_write_buffer_size()  # keep order: splice only when empty
        ):
            return
        src_sock = src.transport.get_extra_info("socket")
        dest_sock = dest.transport.get_extra_info("socket")
        if src_sock is None or dest_sock is None:
            self.no_splice = True
            return
        try:
            self.splice = splice.Splice(
                asyncio.get_running_loop(),
                src_sock.fileno(),
                dest_sock.fileno(),
                self._spliced,
                self.unsplice,
            )
        except OSError:  # out of descriptors, or no splice support: stay on the transports
            self.no_splice = True
            return
        src.pause_reading("splice")

    def _spliced(self, read: int, written: int) -> None:
        self.bytes += read
        self.sent += written

    def unsplice(self) -> None:
        """Hand the link back to its transports (keeps the order of the data)."""
        relay = self.splice
        if relay is None:
            return
        self.splice = None
        if not relay.moved:
            # Handed back before it moved a byte (an error or an immediate EOF): do not
            # switch this link again at its next large read.
            self.no_splice = True
        rest = relay.close()
        if rest:
            self.sent += len(rest)
            self.dest.write(rest)
        self.src.resume_reading("splice")

    # -- building and changing the chain ---------------------------------------------

    def build(self, toxics: list[ToxicSpec]) -> None:
        """Set up the chain for a new connection (no data has flowed yet)."""
        for spec in toxics:
            self._append(spec)

    def _append(self, spec: ToxicSpec) -> Stub:
        self.unsplice()
        # The type: ignore below: output is set just below.
        stub = Stub(spec, Channel(spec.kind.buffer_size), None, self.rng_for(spec))  # type: ignore[arg-type]
        if self.target is None:
            self.src.start_stamped()  # chunks now count their time from arrival
            self.writer_channel = Channel(WRITER_CAPACITY)
            self.writer_channel.take_now = self._write_now
            self.writer_task = asyncio.get_running_loop().create_task(self._write_loop())
            stub.output = self.writer_channel
            self.target = stub.input
        elif self.stubs:
            last = self.stubs[-1]
            stub.output = last.output
            last.output = stub.input
        else:
            # Retiring chain: the writer still holds older data in its channel.
            # The type: ignore below: the writer's channel takes the same items.
            stub.output = self.writer_channel  # type: ignore[assignment]
            self.target = stub.input
        self.stubs.append(stub)
        self._start(stub)
        return stub

    async def add(self, spec: ToxicSpec) -> None:
        async with self.lock:
            if self.ended:
                return
            if self.stubs:
                # Toxiproxy interrupts the last stub before appending (and it re-rolls).
                last = self.stubs[-1]
                await self._interrupt(last)
                if self.ended:  # the connection closed while we waited
                    return
                self._append(spec)
                self._start(last)
            else:
                self._append(spec)

    async def update(self, spec: ToxicSpec) -> None:
        async with self.lock:
            for stub in self.stubs:
                if stub.toxic is spec and not self.ended:
                    await self._interrupt(stub)
                    self._start(stub)

    async def remove(self, spec: ToxicSpec) -> None:
        async with self.lock:
            index = next((i for i, s in enumerate(self.stubs) if s.toxic is spec), None)
            if index is None or self.ended:
                return
            stub = self.stubs[index]
            prev = self.stubs[index - 1] if index > 0 else None
            if prev is not None:
                await self._interrupt(prev)
            await self._interrupt(stub)
            if self.ended:  # end() stopped every task while we waited
                return
            if spec.kind.closes_on_removal:
                stub.input.drain()
                stub.output.put_nowait(EOF)
            else:
                for item in stub.input.drain():
                    stub.output.put_nowait(item)
            del self.stubs[index]
            if prev is not None:
                prev.output = stub.output
                self._start(prev)
            else:
                self.target = stub.output
            if not self.stubs:
                self._retire()

    def _retire(self) -> None:
        """No toxics left: write out what the writer holds and relay directly again."""
        channel = self.writer_channel
        if self.writer_task is not None:
            self.writer_task.cancel()
        self.writer_task = None
        self.writer_channel = None
        self.target = None
        self.src.stop_stamped()
        if channel is None:
            return
        for item in channel.drain():
            if item is EOF:
                self.dest.close()
                return
            self.sent += len(item.data)
            self.dest.write(item.data)

    def _start(self, stub: Stub) -> None:
        # Once the connection has ended (end() may run while add, update or remove wait
        # for an interrupted stub), a new task would wait on a channel nobody feeds, and
        # be destroyed pending when the connection is collected.
        if self.ended:
            return
        stub.task = asyncio.get_running_loop().create_task(self._run(stub))

    async def _run(self, stub: Stub) -> None:
        spec = stub.toxic
        try:
            if not stub.closed:
                active = stub.rng.random() < spec.toxicity
                await (spec.kind.pipe if active else Noop.pipe)(stub)
            # After a toxic closed the stream, keep consuming so nothing upstream blocks.
            while (await stub.input.get()) is not EOF:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a toxic bug must not take the server down
            log.exception("toxic %s failed", spec.name)
            self.on_error(exc)

    async def _interrupt(self, stub: Stub) -> None:
        task = stub.task
        stub.task = None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if stub.pending is not None:
            stub.output.put_nowait(pending_to_item(stub.pending))
            stub.pending = None

    # -- writer -----------------------------------------------------------------------

    def _write_now(self, item: object) -> bool:
        """Write a chunk put while the writer is idle at once (a timer delivering it)."""
        if item is EOF or self.dest.write_paused:
            return False
        data = item.data  # type: ignore[attr-defined]  # anything but EOF is a chunk
        self.sent += len(data)
        self.dest.write(data)
        return True

    async def _write_loop(self) -> None:
        channel = self.writer_channel
        assert channel is not None
        dest = self.dest
        while True:
            item = await channel.get()
            if item is EOF:
                dest.close()
                return
            self.sent += len(item.data)
            dest.write(item.data)
            if dest.write_paused:
                await dest.wait_writable()

    def end(self) -> None:
        """Stop every task of this link (the connection is gone)."""
        self.ended = True
        self.unsplice()
        self.src.stop_stamped()
        # Forget the tasks once cancelled: a cancelled task keeps its traceback, whose
        # frames point back here, and that cycle would wait for the garbage collector.
        for stub in self.stubs:
            if stub.task is not None:
                stub.task.cancel()
                stub.task = None
        if self.writer_task is not None:
            self.writer_task.cancel()
            self.writer_task = None
