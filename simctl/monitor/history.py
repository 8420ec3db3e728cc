"""A bounded in-memory time series store, filled one scrape round (tick) at a time.

Every round appends one timestamp; every series keeps one float per round in a ring of
the same capacity, NaN when the series was absent from that round. NaN is Prometheus's
staleness marker: a series whose latest value is NaN is not in an instant vector. One
8-byte float per series per round keeps an hour at 1 s near 30 KB per series.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterator

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs, __name__ included
NAN = math.nan


def labels_of(mapping: dict[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


class _Times:
    """The ring of tick timestamps, seen as a sorted sequence (oldest first) for bisect."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ring = array("d", [0.0]) * capacity
        self.count = 0  # ticks ever appended

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def __getitem__(self, i: int) -> float:
        return self.ring[self.slot(i)]

    def slot(self, i: int) -> int:
        """Ring slot of the i-th retained tick (0 = oldest)."""
        return (self.count - len(self) + i) % self.capacity


class History:
    def __init__(self, capacity: int = 3600) -> None:
        self.capacity = capacity
        self.times = _Times(capacity)
        self.series: dict[Labels, array] = {}
        self.by_name: dict[str, dict[Labels, array]] = {}  # __name__ -> its series
        self._last_seen: dict[Labels, int] = {}  # tick count when last present

    def append(self, timestamp: float, samples: dict[Labels, float]) -> None:
        """Add one round: `samples` holds every series present in it."""
        times = self.times
        if len(times) and timestamp <= times[len(times) - 1]:
            timestamp = times[len(times) - 1] + 1e-6  # keep ticks strictly increasing
        slot = times.count % self.capacity
        times.ring[slot] = timestamp
        times.count += 1
        tick = times.count
        for labels, value in samples.items():
            ring = self.series.get(labels)
            if ring is None:
                ring = self.series[labels] = array("d", [NAN]) * self.capacity
                self.by_name.setdefault(dict(labels).get("__name__", ""), {})[labels] = ring
            ring[slot] = value
            self._last_seen[labels] = tick
        stale = []
        for labels, ring in self.series.items():
            seen = self._last_seen[labels]
            if seen != tick:
                ring[slot] = NAN
                if tick - seen >= self.capacity:  # nothing of it is left in the window
                    stale.append(labels)
        for labels in stale:
            del self.series[labels]
            del self._last_seen[labels]
            named = self.by_name[dict(labels).get("__name__", "")]
            del named[labels]

    def index_at(self, t: float) -> int:
        """Index (0 = oldest retained) of the last tick at or before t, or -1."""
        return bisect.bisect_right(self.times, t) - 1

    def of(self, name: str | None) -> dict[Labels, array]:
        """The series of one metric name, or all of them (name None)."""
        return self.series if name is None else self.by_name.get(name, {})

    def instant(self, t: float, lookback: float,
                name: str | None = None) -> Iterator[tuple[Labels, float]]:
        """Every series' value at the last tick at or before t (not older than lookback)."""
        i = self.index_at(t)
        if i < 0 or self.times[i] < t - lookback:
            return
        slot = self.times.slot(i)
        for labels, ring in self.of(name).items():
            value = ring[slot]
            if value == value:  # not NaN
                yield labels, value

    def window(self, t: float, span: float) -> tuple[int, int]:
        """Index range [lo, hi) of the ticks in (t - span, t]."""
        hi = self.index_at(t) + 1
        lo = bisect.bisect_right(self.times, t - span)
        return lo, max(lo, hi)

    def samples(self, ring: array, lo: int, hi: int) -> list[tuple[float, float]]:
        """The non-NaN (time, value) pairs of ticks lo..hi-1 (slices: no per-item lookups)."""
        if hi <= lo:
            return []
        times = self.times
        start = times.slot(lo)
        end = start + (hi - lo)
        spans = [(start, min(end, self.capacity))]
        if end > self.capacity:  # the window wraps around the ring's end
            spans.append((0, end - self.capacity))
        out: list[tuple[float, float]] = []
        for a, b in spans:
            out.extend(pair for pair in zip(times.ring[a:b], ring[a:b], strict=True)
                       if pair[1] == pair[1])
        return out

    def last_time(self) -> float | None:
        n = len(self.times)
        return self.times[n - 1] if n else None
