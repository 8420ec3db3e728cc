"""The contract every toxic implements, and the stub it runs against.

A toxic is a small class with a type name, a table of integer attributes (name, unit,
range) and one coroutine, ``pipe(stub)``, that reads chunks from ``stub.recv()`` and
forwards them with ``stub.send()``, exactly like a Toxiproxy ``Pipe(*ToxicStub)``.
Interruption (a toxic added, updated or removed on a live connection) cancels the
coroutine; whatever it left in ``stub.pending`` is forwarded, so no data is lost.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from simctl.faults import timer

if TYPE_CHECKING:
    from simctl.faults.channel import Channel

EOF = None  # the end-of-stream marker travelling down a chain


class Chunk:
    """One read from a socket, stamped with the monotonic time it arrived (or was read)."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes, ts: float) -> None:
        self.data = data
        self.ts = ts


@dataclass(frozen=True)
class Attribute:
    name: str
    unit: str
    doc: str
    minimum: int = 0
    maximum: int = 3_600_000


class Toxic:
    """Base class of every toxic type. Subclasses are registered by type name."""

    type_name: ClassVar[str]
    summary: ClassVar[str] = ""
    attributes: ClassVar[tuple[Attribute, ...]] = ()
    # Capacity of the channel feeding this toxic (Toxiproxy buffers 1024 chunks for latency).
    buffer_size: ClassVar[int] = 1
    # True when removing the toxic closes the stream instead of flushing it (timeout).
    closes_on_removal: ClassVar[bool] = False
    # True when the toxic's presence at accept time makes every close a TCP RST (reset_peer).
    resets_connections: ClassVar[bool] = False

    @classmethod
    def check(cls, attrs: dict[str, int]) -> str | None:
        """Cross-attribute validation; returns an error message or None."""
        return None

    @staticmethod
    async def pipe(stub: Stub) -> None:
        raise NotImplementedError


class Stub:
    """One toxic running on one direction of one connection."""

    __slots__ = ("toxic", "input", "output", "rng", "state", "pending", "closed", "task")

    def __init__(self, toxic: Any, input: Channel, output: Channel, rng: random.Random) -> None:
        self.toxic = toxic  # the configured toxic (type, attributes, toxicity), shared
        self.input = input
        self.output = output
        self.rng = rng
        self.state: dict[str, Any] = {}  # per-connection state that survives updates
        self.pending: Any = None  # a chunk taken from input but not yet forwarded
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    @property
    def attrs(self) -> dict[str, int]:
        return self.toxic.attributes

    async def recv(self) -> Chunk | None:
        chunk = await self.input.get()
        self.pending = chunk if chunk is not EOF else _PendingEOF
        return chunk

    async def send(self, chunk: Chunk) -> None:
        if chunk is self.pending:
            self.pending = None
        await self.output.put(chunk)

    def drop(self) -> None:
        """Forget the chunk in hand (toxics that swallow data)."""
        self.pending = None

    def close(self) -> None:
        """End the stream in this direction: the writer closes its socket."""
        self.pending = None
        self.closed = True
        self.output.put_nowait(EOF)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def send_at(self, when: float, chunk: Chunk) -> None:
        """send(chunk) at time.monotonic() == when, from the timer's own callback.

        The chunk leaves stamped ``when``, so a later latency toxic counts from there and
        two add up; an interrupted wait leaves it pending with its stamp unchanged.

        The chunk goes downstream inside the wake-up that meets its deadline (and, when
        the writer is idle, onto the socket: Link writes in place) rather than a task
        switch or two later: on a loop that just woke from idle every switch costs tens
        of microseconds, and behind a burst of other events, milliseconds. A full output
        channel falls back to send(), which waits for room.
        """
        if when <= time.monotonic():
            chunk.ts = when
            await self.send(chunk)
            return
        waiter = asyncio.get_running_loop().create_future()

        def deliver() -> None:
            if self.pending is chunk and not self.output.full():
                chunk.ts = when
                self.pending = None
                self.output.put_nowait(chunk)
            if not waiter.done():
                waiter.set_result(None)

        entry = timer.call_at(when, deliver)
        try:
            await waiter
        finally:
            entry.cancel()
        if self.pending is chunk:
            chunk.ts = when
            await self.send(chunk)


class _PendingEOFType:
    """Marks an end-of-stream taken by a toxic but not yet passed on."""


_PendingEOF = _PendingEOFType()


def pending_to_item(pending: Any) -> Any:
    return EOF if pending is _PendingEOF else pending
