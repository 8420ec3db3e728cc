"""Precise deadlines for toxics: one timerfd per event loop (Linux), microsecond accuracy.

Event-loop timers are coarse: uvloop (libuv) counts time in whole milliseconds and fires
a timer on the first tick at or after its deadline, 0-1 ms late, and a loaded loop adds
more. A latency toxic that must deliver within a millisecond of its deadline needs
better. Here every deadline of a loop goes into one heap, and a single CLOCK_MONOTONIC
timerfd, armed in absolute nanoseconds for the earliest one, wakes the loop through an
ordinary reader callback. time.monotonic() is the same clock, so a Chunk's read stamp can
be used as is. Entries that fall due together run in the same wake-up.

Without timerfd (not Linux, no libc), ``call_at`` falls back to the loop's own timers,
asking half a millisecond early to centre uvloop's tick error on zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

TICK_CORRECTION = 0.0005  # fallback only: loop timers fire on millisecond ticks, 0-1 ms late
_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1
# Waking a sleeping process takes time (timer slack, 50 us by default, and the scheduler;
# 150-300 us on a virtual machine). The queue tracks the median of its own wake-up delay
# and arms that much early, so that deliveries centre on their deadlines.
_LAG_INITIAL = 100e-6
_LAG_STEP = 4e-6
_LAG_MAX = 1e-3
_EARLY = 20e-6  # entries due this close to now run in this wake-up, not another one


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _load_libc() -> tuple[Any, Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    create.argtypes = [ctypes.c_int, ctypes.c_int]
    create.restype = ctypes.c_int
    settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
    settime.restype = ctypes.c_int
    return create, settime


_LIBC = _load_libc()


class Entry:
    """A scheduled callback; cancel() makes it a no-op (it leaves the heap when due)."""

    __slots__ = ("when", "seq", "callback")

    def __init__(self, when: float, seq: int, callback: Callable[[], None] | None) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback

    def __lt__(self, other: Entry) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.callback = None


class _LoopHandle:
    """Fallback entry wrapping a loop TimerHandle."""

    __slots__ = ("handle",)

    def __init__(self, handle: asyncio.TimerHandle) -> None:
        self.handle = handle

    def cancel(self) -> None:
        self.handle.cancel()


class TimerQueue:
    """The deadlines of one event loop, served by one timerfd (closed whenever idle)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[Entry] = []
        self.fd = -1
        self.armed = float("inf")  # the deadline the timerfd is armed for
        self.lag = _LAG_INITIAL  # running median of the wake-up delay, armed that early
        self.seq = itertools.count()
        self.spec = _Itimerspec()

    def call_at(self, when: float, callback: Callable[[], None]) -> Entry:
        entry = Entry(when, next(self.seq), callback)
        heapq.heappush(self.heap, entry)
        if when < self.armed:
            try:
                self._arm(when)
            except OSError:
                entry.cancel()
                raise
        return entry

    def _arm(self, when: float) -> None:
        assert _LIBC is not None
        if self.fd < 0:
            fd = _LIBC[0](_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "timerfd_create failed")
            self.fd = fd
            self.loop.add_reader(fd, self._fire)
        self.armed = when
        when = max(when - self.lag, 1e-9)  # zero would disarm the timer
        sec = int(when)
        self.spec.it_value.tv_sec = sec
        self.spec.it_value.tv_nsec = int((when - sec) * 1e9)
        if _LIBC[1](self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(self.spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def _fire(self) -> None:
        with contextlib.suppress(OSError):
            os.read(self.fd, 8)
        now = time.monotonic()
        if self.armed != float("inf"):
            # Stochastic median: step towards the observed delay of this wake-up.
            woke_after = now - (self.armed - self.lag)
            if woke_after > self.lag:
                self.lag = min(self.lag + _LAG_STEP, _LAG_MAX)
            elif self.lag > _LAG_STEP:
                self.lag -= _LAG_STEP
        self.armed = float("inf")
        heap = self.heap
        now += self.lag + _EARLY
        while heap and heap[0].when <= now:
            callback = heapq.heappop(heap).callback
            if callback is not None:
                try:
                    callback()
                except Exception as exc:  # a callback bug must not stop the other timers
                    self.loop.call_exception_handler(
                        {"message": "timer callback failed", "exception": exc}
                    )
        while heap and heap[0].callback is None:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0].when)
        else:
            self.close()

    def close(self) -> None:
        """Give the descriptor back (reopened by the next call_at)."""
        if self.fd >= 0:
            with contextlib.suppress(Exception):  # the loop may already be closed
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        self.armed = float("inf")


_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TimerQueue] = (
    weakref.WeakKeyDictionary()
)


def call_at(when: float, callback: Callable[[], None]) -> Entry | _LoopHandle:
    """Run callback at time.monotonic() == when (or just after), in the running loop."""
    loop = asyncio.get_running_loop()
    if _LIBC is not None:
        queue = _QUEUES.get(loop)
        if queue is None:
            queue = _QUEUES[loop] = TimerQueue(loop)
        try:
            return queue.call_at(when, callback)
        except OSError:
            pass
    delay = when - time.monotonic() - TICK_CORRECTION
    return _LoopHandle(loop.call_later(max(delay, 0.0), callback))
