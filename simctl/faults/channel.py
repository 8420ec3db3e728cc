"""A FIFO between the stages of a toxic chain.

asyncio.Queue cannot take an item past its bound, but a chain being re-linked must move
every in-flight chunk somewhere without waiting. Channel has a soft capacity: put() waits
while the channel is over it, put_nowait() always succeeds. Items stay in the deque until
the consumer really takes them, so "empty" is exact at any point between awaits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any


class Channel:
    __slots__ = ("_items", "capacity", "_getter", "_putters", "on_space", "take_now")

    def __init__(self, capacity: int = 16) -> None:
        self._items: deque[Any] = deque()
        self.capacity = capacity
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        # Called when the channel drops back under capacity (used to resume a paused reader).
        self.on_space: Callable[[], None] | None = None
        # Offered an item put while the consumer waits on an empty channel; returning
        # True means it was handled in place (the consumer would only have been woken to
        # do the same one loop iteration later).
        self.take_now: Callable[[Any], bool] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.capacity

    def put_nowait(self, item: Any) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            take_now = self.take_now
            if take_now is not None and not self._items and take_now(item):
                return
            self._items.append(item)
            getter.set_result(None)
        else:
            self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)
        while len(self._items) > self.capacity:
            fut = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            finally:
                if fut in self._putters:
                    self._putters.remove(fut)

    async def get(self) -> Any:
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        item = self._items.popleft()
        self._space_freed()
        return item

    def get_nowait(self) -> Any:
        item = self._items.popleft()
        self._space_freed()
        return item

    def drain(self) -> list[Any]:
        """Take every item at once (used when a stage is removed from a chain)."""
        items = list(self._items)
        self._items.clear()
        self._space_freed()
        return items

    def _space_freed(self) -> None:
        if len(self._items) <= self.capacity:
            while self._putters:
                fut = self._putters.popleft()
                if not fut.done():
                    fut.set_result(None)
        if self.on_space is not None and len(self._items) < self.capacity:
            callback, self.on_space = self.on_space, None
            callback()
