"""The open-loop load generator.

Requests are scheduled by the clock: request ``i`` is due at ``t0 + i / rate`` whatever
happened to the earlier ones. A due request is sent at once unless ``max_in_flight``
requests are already outstanding; then it is not sent and is counted ``unsent`` (never
queued and sent late, which would hide the slowness it reveals). Latency is measured
from the due time. The run ends at ``duration`` or after ``max_requests`` arrivals,
whichever comes first, or at ``stop()``; requests still in flight then get ``grace``
seconds to finish and are otherwise cancelled and counted as such.

    gen = LoadGenerator(HttpTraffic("http://127.0.0.1:8080/", rate=200, host="web.example"),
                        duration=10)
    result = await gen.run()          # or: await gen.start(); gen.snapshot(); await gen.stop()
    result.http.success_ratio, result.http.latency.p99, result.series
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from yarl import URL

from simctl.errors import InvalidInput
from simctl.load.aiohttp_client import AiohttpClient
from simctl.load.logs import LogSender
from simctl.load.rawhttp import HttpError, RawClient, Reply
from simctl.load.results import (
    HttpStats,
    LoadResult,
    LoadSnapshot,
    LogStats,
    Recorder,
    Window,
    ratio,
)

CLIENTS = ("raw", "aiohttp")
TIMER_RESOLUTION = 0.001
_FOREVER = math.inf


def _check_url(what: str, url: str) -> URL:
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what}: {url!r} is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"{what}: {url!r} is not an http(s) URL with a host")
    return parsed


def arrivals(rate: float, duration: float | None) -> float:
    """How many arrivals, at ``t0 + i / rate``, fall before ``t0 + duration``."""
    if duration is None:
        return _FOREVER
    return math.ceil(duration * rate - 1e-9)


def _positive(what: str, value: float, high: float = _FOREVER) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
        bound = "" if high == _FOREVER else f" and at most {high:g}"
        raise InvalidInput(f"{what} must be a number above 0{bound}, got {value!r}")


@dataclass(frozen=True)
class HttpTraffic:
    """Requests to ``url`` at ``rate`` per second (Host header ``host`` if given)."""

    url: str
    rate: float
    host: str | None = None
    method: str = "GET"
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    max_in_flight: int = 256
    timeout: float = 60.0
    client: str = "raw"  # "raw" (fast, see rawhttp.py) or "aiohttp"
    verify_tls: bool = True
    ca_pem: str | None = None  # trust exactly this certificate (e.g. the router's)

    def __post_init__(self) -> None:
        _check_url("http url", self.url)
        _positive("http rate", self.rate, 100_000)
        _positive("http timeout", self.timeout, 3600)
        if isinstance(self.max_in_flight, bool) or not isinstance(self.max_in_flight, int) \
                or not 1 <= self.max_in_flight <= 100_000:
            raise InvalidInput(f"max_in_flight must be an integer from 1 to 100000, "
                               f"got {self.max_in_flight!r}")
        if self.client not in CLIENTS:
            raise InvalidInput(f"client must be one of {', '.join(CLIENTS)}, got {self.client!r}")
        if not self.method.isalpha():
            raise InvalidInput(f"method must be an HTTP method name, got {self.method!r}")
        for name, value in self.headers.items():
            if any(c in f"{name}{value}" for c in "\r\n") or not name or ":" in name:
                raise InvalidInput(f"bad header {name!r}")


@dataclass(frozen=True)
class LogTraffic:
    """Log lines at ``rate`` per second to logplex (``url``; a bare host means /logs)."""

    url: str
    rate: float
    app: str = "web"  # the channel: token t.<app>
    proc: str = "load.1"
    batch_interval: float = 0.1
    max_batch: int = 500
    max_in_flight: int = 8
    timeout: float = 5.0
    line_bytes: int = 0  # padding added to each line
    max_lines: int | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        parsed = _check_url("logs url", self.url)
        if parsed.path in ("", "/"):
            object.__setattr__(self, "url", str(parsed.with_path("/logs")))
        _positive("logs rate", self.rate, 1_000_000)
        _positive("logs batch_interval", self.batch_interval, 60)
        _positive("logs timeout", self.timeout, 3600)
        for name in ("max_batch", "max_in_flight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"logs {name} must be a positive integer, got {value!r}")
        if not isinstance(self.line_bytes, int) or not 0 <= self.line_bytes <= 9000:
            raise InvalidInput(f"logs line_bytes must be from 0 to 9000, got {self.line_bytes!r}")
        for name in ("app", "proc", "run_id"):
            value = getattr(self, name)
            if not value or any(c.isspace() for c in value):
                raise InvalidInput(f"logs {name} must be a word without spaces, got {value!r}")


class Client(Protocol):
    async def request(self) -> Reply: ...

    async def close(self) -> None: ...


class LoadGenerator:
    def __init__(
        self,
        http: HttpTraffic | None = None,
        logs: LogTraffic | None = None,
        *,
        duration: float | None = None,
        max_requests: int | None = None,
        window: float = 1.0,
        grace: float = 5.0,
    ) -> None:
        if http is None and logs is None:
            raise InvalidInput("load: give HTTP traffic, log traffic, or both")
        if duration is not None:
            _positive("duration", duration)
        if max_requests is not None and (isinstance(max_requests, bool)
                                         or not isinstance(max_requests, int)
                                         or max_requests < 0):
            raise InvalidInput(f"max_requests must be an integer >= 0, got {max_requests!r}")
        _positive("window", window, 3600)
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise InvalidInput(f"grace must be a number >= 0, got {grace!r}")
        self.http = http
        self.logs = logs
        self.duration = duration
        self.max_requests = max_requests
        self.window = window
        self.grace = grace
        self.recorder = Recorder()
        self.scheduled = self.sent = self.in_flight = self.cancelled = 0
        self.max_lag = 0.0
        self._t0 = 0.0
        self._http_done_at: float | None = None
        self._logs_done_at: float | None = None
        self._finished_at: float | None = None
        self._client: Client | None = None
        self._log_sender = LogSender(logs, self.recorder) if logs else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None

    # public API --------------------------------------------------------------------

    async def start(self) -> None:
        if self._main is not None:
            raise RuntimeError("a LoadGenerator runs once")
        self._stopped = asyncio.Event()
        if self.http is not None:
            h = self.http
            options: dict[str, Any] = dict(host=h.host, method=h.method, headers=dict(h.headers),
                                           body=h.body, timeout=h.timeout,
                                           verify_tls=h.verify_tls, ca_pem=h.ca_pem)
            if h.client == "aiohttp":
                self._client = AiohttpClient(h.url, limit=h.max_in_flight, **options)
            else:
                self._client = RawClient(h.url, **options)
        self._t0 = time.perf_counter()
        self._main = asyncio.get_running_loop().create_task(self._run())

    async def wait(self) -> LoadResult:
        """Wait until the run is over (duration, max_requests, or stop())."""
        if self._main is None:
            raise RuntimeError("start() the generator first")
        await asyncio.shield(self._main)
        return self.result()

    async def stop(self, grace: float = 0.0) -> LoadResult:
        """End the run now; requests in flight get ``grace`` seconds, then are cancelled."""
        if self._main is None:
            raise RuntimeError("start() the generator first")
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise InvalidInput(f"grace must be a number >= 0, got {grace!r}")
        assert self._stopped is not None
        if not self._stopped.is_set():
            self._stopped.set()
            if grace:
                asyncio.get_running_loop().call_later(grace, self._cancel_in_flight)
            else:
                self._cancel_in_flight()
        return await self.wait()

    def _cancel_in_flight(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._log_sender is not None:
            self._log_sender.cancel()

    async def run(self) -> LoadResult:
        await self.start()
        try:
            return await self.wait()
        except BaseException:
            if self._main is not None and not self._main.done():
                await self.stop()
            raise

    async def __aenter__(self) -> LoadGenerator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._main is not None and not self._main.done():
            await self.stop()

    @property
    def running(self) -> bool:
        return self._main is not None and not self._main.done()

    def snapshot(self) -> LoadSnapshot:
        """What the run has measured so far; cheap enough for a live display."""
        if self._main is None:
            return LoadSnapshot(0.0, False, None if self.http is None else HttpStats(),
                                None if self.logs is None else LogStats(
                                    run_id=self.logs.run_id), None)
        now = self._finished_at or time.perf_counter()
        windows = self.recorder.windows
        return LoadSnapshot(
            elapsed=round(now - self._t0, 6),
            running=self.running,
            http=self._http_stats(now) if self.http is not None else None,
            logs=self._log_stats(now) if self._log_sender is not None else None,
            window=windows[-1] if windows else None,
        )

    def result(self) -> LoadResult:
        return LoadResult(self.snapshot(), tuple(self.recorder.windows))

    @property
    def series(self) -> tuple[Window, ...]:
        return tuple(self.recorder.windows)

    # the run -----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._stopped is not None
        ticker = asyncio.get_running_loop().create_task(self._tick())
        work = []
        if self.http is not None:
            work.append(self._schedule_http())
        if self._log_sender is not None:
            work.append(self._schedule_logs())
        try:
            await asyncio.gather(*work)
            await self._drain(self.grace)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            if self._client is not None:
                await self._client.close()
            self._finished_at = time.perf_counter()
            start = len(self.recorder.windows) * self.window
            end = self._finished_at - self._t0
            if end > start:
                self.recorder.close_window(start, end)

    async def _tick(self) -> None:
        k = 1
        while True:
            await asyncio.sleep(max(0.0, self._t0 + k * self.window - time.perf_counter()))
            self.recorder.close_window((k - 1) * self.window, k * self.window)
            k += 1

    async def _schedule_http(self) -> None:
        assert self.http is not None
        assert self._stopped is not None
        interval = 1.0 / self.http.rate
        limit = arrivals(self.http.rate, self.duration)
        if self.max_requests is not None:
            limit = min(limit, self.max_requests)
        t0, stopped = self._t0, self._stopped
        i = 0
        try:
            while i < limit and not stopped.is_set():
                due = t0 + i * interval
                now = time.perf_counter()
                if due > now:
                    wait = due - now
                    if wait > 0.05:
                        try:
                            await asyncio.wait_for(stopped.wait(), wait)
                        except TimeoutError:
                            pass
                    else:
                        # Event-loop timers have millisecond resolution (uvloop rounds
                        # shorter sleeps to zero and would spin): requests due within
                        # the same millisecond go out together, each timed from its
                        # own due time.
                        await asyncio.sleep(max(wait, TIMER_RESOLUTION))
                    continue
                while i < limit and due <= now:
                    self._fire(due, now)
                    i += 1
                    due = t0 + i * interval
        finally:
            self._http_done_at = time.perf_counter()

    def _fire(self, due: float, now: float) -> None:
        assert self.http is not None
        self.scheduled += 1
        if self.in_flight >= self.http.max_in_flight:
            self.recorder.unsent()
            return
        self.in_flight += 1
        self.sent += 1
        lag = now - due
        if lag > self.max_lag:
            self.max_lag = lag
        task = asyncio.get_running_loop().create_task(self._one(due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, due: float) -> None:
        assert self._client is not None
        start = time.perf_counter()
        try:
            reply = await self._client.request()
        except HttpError as exc:
            self.recorder.failure(exc.kind)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except Exception:  # a bug in a client must not stop the run; count it
            self.recorder.failure("other")
        else:
            end = time.perf_counter()
            self.recorder.response(reply.status, reply.router_code, reply.nbytes,
                                   end - due, end - start)
        finally:
            self.in_flight -= 1

    async def _schedule_logs(self) -> None:
        assert self._log_sender is not None
        assert self._stopped is not None
        try:
            total = arrivals(self._log_sender.traffic.rate, self.duration)
            await self._log_sender.run(self._t0, total, self._stopped)
        finally:
            self._logs_done_at = time.perf_counter()

    async def _drain(self, grace: float) -> None:
        """Give requests and posts in flight ``grace`` seconds, then cancel them."""
        pending: set[asyncio.Task[None]] = set(self._tasks)
        if self._log_sender is not None:
            pending |= self._log_sender.tasks
        if pending:
            await asyncio.wait(pending, timeout=grace)
        self._cancel_in_flight()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._log_sender is not None:
            await self._log_sender.close()

    # snapshots ---------------------------------------------------------------------

    def _http_stats(self, now: float) -> HttpStats:
        t = self.recorder.total
        sending = (self._http_done_at or now) - self._t0
        elapsed = now - self._t0
        return HttpStats(
            scheduled=self.scheduled, sent=self.sent, unsent=t.unsent, in_flight=self.in_flight,
            completed=t.completed, ok=t.ok, by_status=dict(t.by_status), by_code=dict(t.by_code),
            timeouts=t.timeouts, connection_errors=t.connection_errors, errors=dict(t.errors),
            cancelled=self.cancelled, bytes=t.bytes, success_ratio=ratio(t.ok, t.finished()),
            latency=t.latency_stats(), service_time=t.service_stats(),
            achieved_rate=round(self.sent / sending, 3) if sending > 0 else 0.0,
            throughput=round(t.completed / elapsed, 3) if elapsed > 0 else 0.0,
            send_lag_max_ms=round(self.max_lag * 1000, 3),
        )

    def _log_stats(self, now: float) -> LogStats:
        s = self._log_sender
        assert s is not None
        assert self.logs is not None
        sending = (self._logs_done_at or now) - self._t0
        return LogStats(
            run_id=self.logs.run_id, scheduled=s.scheduled, sent=s.sent, rejected=s.rejected,
            failed=s.failed, unsent=s.unsent, cancelled=s.cancelled, in_flight=s.in_flight,
            batches=s.batches, by_status=dict(s.by_status),
            achieved_rate=round(s.sent / sending, 3) if sending > 0 else 0.0,
        )
