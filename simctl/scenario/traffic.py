"""A scenario's traffic: open-loop load generators, and a tap that keeps every outcome.

The load generator (simctl.load) reports per-second windows and whole-run totals;
probes need any window ending *now* (the last 5 s, clamped to the start of a phase), so
``HttpTap`` hooks the generator's recorder and keeps each finished request with its
time. A rate change (a ``load`` fault) replaces the generator: the old one gets a
grace period for its requests in flight, and both feed the same tap.

Log lines are numbered by the generator (``msg=load run=ID seq=N``, line N due at
``t0 + N / rate``), so ``LogGeneration`` can say which lines were due in a window and
``observe`` can look for exactly those in the drains.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simctl.load import HttpTraffic, LoadGenerator, LogTraffic
from simctl.load.push import SliPusher
from simctl.load.results import LoadSnapshot
from simctl.scenario.looper import BackgroundLoop

RESPONSE, TIMEOUT, ERROR, UNSENT = "response", "timeout", "error", "unsent"
RETIRE_GRACE = 3.0


@dataclass(frozen=True)
class Outcome:
    """One HTTP request that finished (or could not be sent), at monotonic time ``t``."""

    t: float
    kind: str  # response, timeout, error, unsent
    status: int | None = None
    code: str | None = None  # X-Router-Code
    latency_ms: float | None = None  # from the scheduled send time
    router: str | None = None  # which of the load's routers it went through, as written

    @property
    def ok(self) -> bool:
        return self.kind == RESPONSE and self.status is not None and 200 <= self.status < 400


class HttpTap:
    """Keeps the outcomes of the last ``keep`` seconds, plus whole-run totals."""

    def __init__(self, keep: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self.clock = clock
        self._lock = threading.Lock()
        self._recent: deque[Outcome] = deque()
        self.totals: dict[str, int] = {RESPONSE: 0, TIMEOUT: 0, ERROR: 0, UNSENT: 0, "ok": 0}
        self.by_status: dict[int, int] = {}
        self.by_code: dict[str, int] = {}

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            self._recent.append(outcome)
            self.totals[outcome.kind] += 1
            if outcome.ok:
                self.totals["ok"] += 1
            if outcome.status is not None:
                self.by_status[outcome.status] = self.by_status.get(outcome.status, 0) + 1
            if outcome.code:
                self.by_code[outcome.code] = self.by_code.get(outcome.code, 0) + 1
            horizon = outcome.t - self.keep
            while self._recent and self._recent[0].t < horizon:
                self._recent.popleft()

    def since(self, start: float) -> list[Outcome]:
        with self._lock:
            return [o for o in self._recent if o.t >= start]

    def attach(self, recorder: Any, router: str | None = None) -> None:
        """Hook a ``simctl.load.results.Recorder``: every outcome it records also lands here,
        tagged with ``router``."""
        response, failure, unsent = recorder.response, recorder.failure, recorder.unsent
        clock = self.clock

        def on_response(status: int, code: str | None, nbytes: int, latency: float,
                        service: float) -> None:
            response(status, code, nbytes, latency, service)
            self.add(Outcome(clock(), RESPONSE, status, code, latency * 1000.0, router))

        def on_failure(kind: str) -> None:
            failure(kind)
            self.add(Outcome(clock(), TIMEOUT if kind == "timeout" else ERROR, router=router))

        def on_unsent() -> None:
            unsent()
            self.add(Outcome(clock(), UNSENT, router=router))

        recorder.response = on_response
        recorder.failure = on_failure
        recorder.unsent = on_unsent

    def summary(self) -> dict[str, Any]:
        with self._lock:
            finished = sum(self.totals[k] for k in (RESPONSE, TIMEOUT, ERROR, UNSENT))
            return {
                "finished": finished,
                "responses": self.totals[RESPONSE],
                "ok": self.totals["ok"],
                "timeouts": self.totals[TIMEOUT],
                "errors": self.totals[ERROR],
                "unsent": self.totals[UNSENT],
                "success_ratio": round(self.totals["ok"] / finished, 6) if finished else None,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_code": dict(sorted(self.by_code.items())),
            }


@dataclass
class LogGeneration:
    """One log generator's lines: line ``i`` of ``run_id`` is due at ``t0 + i / rate``."""

    run_id: str
    rate: float
    t0: float  # monotonic
    end: float | None = None  # when it was stopped

    def due_range(self, start: float, stop: float) -> range:
        """Sequence numbers of the lines due in [start, stop]."""
        if self.end is not None:
            stop = min(stop, self.end)
        if stop < self.t0 or stop < start:
            return range(0)
        first = max(0, math.ceil((start - self.t0) * self.rate - 1e-9))
        last = math.floor((stop - self.t0) * self.rate + 1e-9)
        return range(first, max(first, last + 1))


@dataclass
class LoadSpec:
    url: str
    host: str
    http_rate: float
    logs_url: str | None
    logs_rate: float
    run_id: str
    verify_tls: bool = False
    keepalive: bool = True  # False: every request on a new connection (Connection: close)
    # several routers: (name as written, url); the rate is split evenly. Empty: just ``url``.
    targets: tuple[tuple[str, str], ...] = ()

    @property
    def routes(self) -> tuple[tuple[str | None, str], ...]:
        return self.targets or ((None, self.url),)


@dataclass
class LoadRunner:
    """The scenario's traffic, started and changed from the engine's thread."""

    loop: BackgroundLoop
    spec: LoadSpec
    tap: HttpTap = field(default_factory=HttpTap)
    generations: list[LogGeneration] = field(default_factory=list)
    http_rate: float = 0.0
    logs_rate: float = 0.0
    _http: list[LoadGenerator] = field(default_factory=list)  # one per route
    _logs: LoadGenerator | None = None
    _retiring: list[Any] = field(default_factory=list)
    _count: int = 0
    started: float | None = None
    push_url: str | None = None  # the stack's monitor: the run pushes its SLIs there
    _pushers: list[SliPusher] = field(default_factory=list)

    def start(self) -> None:
        self.set_rates(self.spec.http_rate, self.spec.logs_rate)
        self.started = time.monotonic()
        if self.push_url:
            routes = self.spec.routes
            for i, (name, _) in enumerate(routes):
                instance = self.spec.run_id if len(routes) == 1 else f"{self.spec.run_id}@{name}"
                pusher = SliPusher(self.push_url, instance, functools.partial(self._snapshot, i))
                self.loop.run(pusher.start(), timeout=30)
                self._pushers.append(pusher)

    def _snapshot(self, route: int = 0) -> LoadSnapshot | None:
        """The current HTTP generator's counters (a rate change starts them again, which
        the monitor's rate() reads as a counter reset)."""
        return self._http[route].snapshot() if len(self._http) > route else None

    def set_rates(self, http: float | None = None, logs: float | None = None) -> None:
        self.loop.run(self._set(http, logs), timeout=30)

    async def _set(self, http: float | None, logs: float | None) -> None:
        if http is not None and http != self.http_rate:
            retired, self._http = self._http, []
            for gen in retired:
                self._retire(gen, grace=RETIRE_GRACE)
            self.http_rate = http
            routes = self.spec.routes
            for name, url in routes if http > 0 else ():
                headers = {} if self.spec.keepalive else {"Connection": "close"}
                traffic = HttpTraffic(url, rate=http / len(routes), host=self.spec.host,
                                      headers=headers, verify_tls=self.spec.verify_tls,
                                      timeout=120.0)
                # A replaced generator lets its requests in flight finish (RETIRE_GRACE),
                # so a rate change during an incident does not hide slow requests.
                gen = LoadGenerator(traffic, grace=RETIRE_GRACE)
                self.tap.attach(gen.recorder, name)
                await gen.start()
                self._http.append(gen)
        if logs is not None and logs != self.logs_rate:
            old, self._logs = self._logs, None
            if old is not None and self.generations:
                self.generations[-1].end = time.monotonic()
            self._retire(old, grace=RETIRE_GRACE)
            self.logs_rate = logs
            if logs > 0 and self.spec.logs_url:
                self._count += 1
                run_id = f"{self.spec.run_id}.{self._count}"
                gen = LoadGenerator(logs=LogTraffic(self.spec.logs_url, rate=logs, run_id=run_id),
                                    grace=RETIRE_GRACE)
                await gen.start()
                self.generations.append(LogGeneration(run_id, logs, time.monotonic()))
                self._logs = gen

    def _retire(self, gen: LoadGenerator | None, grace: float) -> None:
        if gen is not None:
            self._retiring.append(asyncio.ensure_future(gen.stop(grace=grace)))

    def stop(self) -> None:
        if self.generations and self.generations[-1].end is None:
            self.generations[-1].end = time.monotonic()
        self.loop.run(self._stop(), timeout=30)

    async def _stop(self) -> None:
        for pusher in self._pushers:
            await pusher.stop()
        self._pushers = []
        for gen in [*self._http, self._logs]:
            if gen is not None:
                self._retiring.append(asyncio.ensure_future(gen.stop(grace=0.0)))
        self._http, self._logs = [], None
        self.http_rate = self.logs_rate = 0.0
        pending, self._retiring = self._retiring, []
        if pending:  # replaced generators finish within their grace
            done, late = await asyncio.wait(pending, timeout=RETIRE_GRACE + 2.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def running(self) -> bool:
        return bool(self._http) or self._logs is not None

    def summary(self) -> dict[str, Any]:
        return {
            "http": self.tap.summary(),
            "logs": [{"run_id": g.run_id, "rate": g.rate} for g in self.generations],
        }
