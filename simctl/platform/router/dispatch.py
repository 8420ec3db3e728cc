"""Per-router, per-app request slots: the dyno concurrency limit and the backlog.

Each dyno takes ``timing.dyno_concurrency`` requests at a time from this router. When
every usable dyno is full, requests wait in the app's queue, first come first served, up
to ``timing.backlog_per_dyno`` x the number of up dynos; past that a request gets H11 at
once (docs/platform.md, "Routing behaviour"). A finished request hands its slot straight
to the first waiter, so new arrivals cannot overtake the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Waker:
    """One future at a time that any callback can resolve; the waiter re-checks its state."""

    __slots__ = ("_fut", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._fut: asyncio.Future[None] | None = None

    def wake(self) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait(self, deadline: float | None = None) -> None:
        fut = self._fut = self._loop.create_future()
        handle = self._loop.call_at(deadline, self.wake) if deadline is not None else None
        try:
            await fut
        finally:
            self._fut = None
            if handle is not None:
                handle.cancel()


class Waiter:
    __slots__ = ("waker", "granted")

    def __init__(self, waker: Waker) -> None:
        self.waker = waker
        self.granted: str | None = None


class AppSlots:
    __slots__ = ("inflight", "queue")

    def __init__(self) -> None:
        self.inflight: dict[str, int] = {}
        self.queue: deque[Waiter] = deque()

    def count(self, key: str) -> int:
        return self.inflight.get(key, 0)

    def take(self, key: str) -> None:
        self.inflight[key] = self.inflight.get(key, 0) + 1

    def release(self, key: str) -> None:
        if self.queue:  # hand the slot over: the count stays
            waiter = self.queue.popleft()
            waiter.granted = key
            waiter.waker.wake()
            return
        left = self.inflight.get(key, 0) - 1
        if left > 0:
            self.inflight[key] = left
        else:
            self.inflight.pop(key, None)

    def leave(self, waiter: Waiter) -> None:
        """A waiter gives up: out of the queue, and any slot it was handed goes on."""
        try:
            self.queue.remove(waiter)
        except ValueError:
            pass
        if waiter.granted is not None:
            key, waiter.granted = waiter.granted, None
            self.release(key)

    def wake_all(self) -> None:
        for waiter in self.queue:
            waiter.waker.wake()


class Dispatch:
    def __init__(self, concurrency: int, backlog_per_dyno: int) -> None:
        self.concurrency = concurrency
        self.backlog_per_dyno = backlog_per_dyno
        self.apps: dict[str, AppSlots] = {}

    def slots(self, app: str) -> AppSlots:
        slots = self.apps.get(app)
        if slots is None:
            slots = self.apps[app] = AppSlots()
        return slots

    def backlog(self) -> dict[str, int]:
        return {app: len(s.queue) for app, s in self.apps.items()}

    def inflight(self) -> int:
        return sum(sum(s.inflight.values()) for s in self.apps.values())

    def wake_all(self) -> None:
        for slots in self.apps.values():
            slots.wake_all()
