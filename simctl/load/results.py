"""What a load run measured: immutable snapshots, and the recorder that makes them.

Latency is kept in HdrHistograms in microseconds (1 us to 1 h, 3 significant digits)
and reported in milliseconds. ``latency`` runs from the time a request was *scheduled*
to its last response byte, so a server (or a generator) that falls behind shows up in
the numbers instead of being hidden by coordinated omission; ``service_time`` runs from
the moment the request was actually written.

A request counts in the window in which it finished (a response, a timeout, a
connection error) or, when it could not be sent because the in-flight cap was
reached, in the window it was scheduled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


def record(histogram: HdrHistogram, seconds: float) -> None:
    us = int(seconds * 1_000_000)
    histogram.record_value(_LOWEST_US if us < _LOWEST_US else min(us, _HIGHEST_US))


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds over ``count`` responses (all 0 when there were none)."""

    count: int = 0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    mean: float = 0.0

    @classmethod
    def of(cls, histogram: HdrHistogram, total_seconds: float) -> Latency:
        count = histogram.get_total_count()
        if not count:
            return cls()
        p50, p90, p99 = percentiles(histogram, (50, 90, 99))
        return cls(
            count=count,
            p50=p50 / 1000,
            p90=p90 / 1000,
            p99=p99 / 1000,
            max=histogram.get_max_value() / 1000,
            mean=round(total_seconds / count * 1000, 3),
        )


def percentiles(histogram: HdrHistogram, wanted: tuple[float, ...]) -> list[int]:
    """Values at ascending percentiles, as HdrHistogram's get_value_at_percentile gives them.

    One pass over the counts that stops at the last percentile: the library's own
    iterators cost about 0.1 s per call on a wide histogram, too slow for a live display.
    """
    total = histogram.get_total_count()
    targets = [max(1, int(p * total / 100 + 0.5)) for p in wanted]
    values: list[int] = []
    seen = 0
    for index, count in enumerate(histogram.counts):
        if count:
            seen += count
            while len(values) < len(targets) and seen >= targets[len(values)]:
                values.append(histogram.get_highest_equivalent_value(
                    histogram.get_value_from_index(index)))
            if len(values) == len(targets):
                break
    return values


@dataclass(frozen=True)
class HttpStats:
    """HTTP traffic so far. ``success_ratio`` is ok (2xx, 3xx) over everything that
    finished: responses, timeouts, connection errors, and requests not sent because of
    the in-flight cap (None while nothing has finished)."""

    scheduled: int = 0  # arrivals the clock called for
    sent: int = 0
    unsent: int = 0  # not sent on time: the in-flight cap was reached
    in_flight: int = 0
    completed: int = 0  # responses, any status
    ok: int = 0  # 2xx and 3xx
    by_status: dict[int, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)  # X-Router-Code
    timeouts: int = 0
    connection_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # connect, disconnected, protocol
    cancelled: int = 0  # still in flight when the run ended
    bytes: int = 0
    success_ratio: float | None = None
    latency: Latency = field(default_factory=Latency)
    service_time: Latency = field(default_factory=Latency)
    achieved_rate: float = 0.0  # sent per second
    throughput: float = 0.0  # responses per second
    send_lag_max_ms: float = 0.0  # worst delay of an actual send behind its schedule


@dataclass(frozen=True)
class LogStats:
    """Log-line traffic so far (lines, not batches, unless named so)."""

    run_id: str = ""
    scheduled: int = 0
    sent: int = 0  # accepted by logplex (2xx)
    rejected: int = 0  # logplex answered an error status
    failed: int = 0  # connection error or timeout
    unsent: int = 0  # the cap on concurrent posts was reached
    cancelled: int = 0  # in posts still in flight when the run ended
    in_flight: int = 0
    batches: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    achieved_rate: float = 0.0  # lines accepted per second


@dataclass(frozen=True)
class Window:
    """One interval of the time series (``start``/``end`` in seconds from the run start)."""

    start: float
    end: float
    completed: int = 0
    ok: int = 0
    unsent: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    success_ratio: float | None = None
    latency: Latency = field(default_factory=Latency)
    log_lines_sent: int = 0
    log_lines_lost: int = 0  # rejected, failed or unsent

    @property
    def rate(self) -> float:
        span = self.end - self.start
        finished = self.completed + self.timeouts + self.connection_errors
        return finished / span if span > 0 else 0.0


@dataclass(frozen=True)
class LoadSnapshot:
    """The state of a run at one moment; the final summary is the last one."""

    elapsed: float
    running: bool
    http: HttpStats | None
    logs: LogStats | None
    window: Window | None  # the last completed window

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class LoadResult:
    """A finished run: the final snapshot plus the per-window time series."""

    summary: LoadSnapshot
    series: tuple[Window, ...]

    @property
    def http(self) -> HttpStats | None:
        return self.summary.http

    @property
    def logs(self) -> LogStats | None:
        return self.summary.logs


def ratio(ok: int, finished: int) -> float | None:
    return ok / finished if finished else None


class _Counts:
    """Mutable counters for a span of time (the whole run, or one window)."""

    __slots__ = ("completed", "ok", "unsent", "timeouts", "connection_errors", "by_status",
                 "by_code", "errors", "bytes", "latency", "latency_sum", "service", "service_sum",
                 "log_sent", "log_lost")

    def __init__(self) -> None:
        self.completed = self.ok = self.unsent = self.timeouts = self.connection_errors = 0
        self.bytes = self.log_sent = self.log_lost = 0
        self.latency_sum = self.service_sum = 0.0
        self.by_status: dict[int, int] = {}
        self.by_code: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = new_histogram()
        self.service = new_histogram()

    def latency_stats(self) -> Latency:
        return Latency.of(self.latency, self.latency_sum)

    def service_stats(self) -> Latency:
        return Latency.of(self.service, self.service_sum)

    def finished(self) -> int:
        return self.completed + self.timeouts + self.connection_errors + self.unsent


class Recorder:
    """Counts outcomes for the whole run and for the current window."""

    def __init__(self) -> None:
        self.total = _Counts()
        self.current = _Counts()
        self.windows: list[Window] = []
        self.window_start = 0.0

    def response(self, status: int, code: str | None, nbytes: int, latency: float,
                 service: float) -> None:
        ok = 200 <= status < 400
        for c in (self.total, self.current):
            c.completed += 1
            if ok:
                c.ok += 1
            c.by_status[status] = c.by_status.get(status, 0) + 1
            if code:
                c.by_code[code] = c.by_code.get(code, 0) + 1
            record(c.latency, latency)
            c.latency_sum += latency
        t = self.total
        t.bytes += nbytes
        record(t.service, service)
        t.service_sum += service

    def failure(self, kind: str) -> None:
        for c in (self.total, self.current):
            if kind == "timeout":
                c.timeouts += 1
            else:
                c.connection_errors += 1
                c.errors[kind] = c.errors.get(kind, 0) + 1

    def unsent(self) -> None:
        self.total.unsent += 1
        self.current.unsent += 1

    def log_lines(self, sent: int, lost: int) -> None:
        self.current.log_sent += sent
        self.current.log_lost += lost

    def close_window(self, start: float, end: float) -> Window:
        c = self.current
        window = Window(
            start=round(start, 6), end=round(end, 6), completed=c.completed, ok=c.ok,
            unsent=c.unsent, timeouts=c.timeouts, connection_errors=c.connection_errors,
            by_status=dict(c.by_status), by_code=dict(c.by_code),
            success_ratio=ratio(c.ok, c.finished()), latency=c.latency_stats(),
            log_lines_sent=c.log_sent, log_lines_lost=c.log_lost,
        )
        self.windows.append(window)
        self.current = _Counts()
        return window
