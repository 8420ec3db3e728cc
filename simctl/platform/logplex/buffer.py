"""The bounded buffer behind every drain and tail session (logplex_msg_buffer,
docs/platform.md, "Bounded buffers").

It keeps the newest messages: a push into a full buffer displaces the oldest ones and
records the loss (a count and the time of the first loss), which the owner later takes
to report as an L10 (drains) or L11 (tails) line. Pushes never block and cost one
``deque.extend`` per ingested body, not one operation per message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

from simctl.platform import logframe

T = TypeVar("T")


class LossyBuffer(Generic[T]):
    __slots__ = ("_items", "lost", "lost_since")

    def __init__(self, capacity: int) -> None:
        self._items: deque[T] = deque(maxlen=capacity)
        self.lost = 0  # displaced since the last take_loss()
        self.lost_since = ""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def capacity(self) -> int:
        return self._items.maxlen or 0

    def push(self, messages: Sequence[T]) -> int:
        """Append, displacing the oldest when full; returns how many were displaced."""
        items = self._items
        displaced = len(items) + len(messages) - self.capacity
        items.extend(messages)  # maxlen drops from the left
        if displaced > 0:
            self.record_loss(displaced)
            return displaced
        return 0

    def record_loss(self, count: int, since: str = "") -> None:
        if count <= 0:
            return
        if not self.lost:
            self.lost_since = since or logframe.now_rfc5424()
        elif since and since < self.lost_since:
            self.lost_since = since
        self.lost += count

    def take_loss(self) -> tuple[int, str]:
        """The loss recorded since the last call (count, since), then forget it."""
        loss = (self.lost, self.lost_since)
        self.lost, self.lost_since = 0, ""
        return loss

    def popleft(self) -> T:
        return self._items.popleft()

    def appendleft(self, message: T) -> None:
        """Put back a message just popped (the buffer has room for it)."""
        self._items.appendleft(message)

    def take_all(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        return items

    def clear(self) -> int:
        count = len(self._items)
        self._items.clear()
        return count

    def resize(self, capacity: int) -> int:
        """Change the capacity, keeping the newest; returns how many were displaced."""
        displaced = len(self._items) - capacity
        self._items = deque(self._items, maxlen=capacity)
        if displaced > 0:
            self.record_loss(displaced)
            return displaced
        return 0
