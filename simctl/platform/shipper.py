"""A log-shuttle style shipper: lines in, logplex-1 batches POSTed to Logplex
(docs/platform.md, "Log shipper").

``emit()`` never blocks and never raises: a line is put in the current batch; full
batches wait in a bounded back-buffer; when that is full the batch is dropped and
counted (L12). A batch that fails every attempt is lost and counted (L13). The next
batch that goes out is prefixed with the ``Error L12``/``Error L13`` lines, the way
log-shuttle reports its own losses inside the stream.

``ShipperCollector`` exposes what causes those losses, for the service that owns the
shippers (docs/architecture.md, "Metrics"): the back-buffer's depth and the latency of
each POST to Logplex as the shipper sees it (a slow Logplex fills the back-buffer first).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import aiohttp
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage
from simctl.platform.timing import HEROKU, Timing

log = logging.getLogger("simctl.shipper")

POST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class ShipperStats:
    emitted: int = 0
    sent: int = 0
    dropped: int = 0  # L12: back-buffer full
    lost: int = 0  # L13: delivery failed after every attempt
    batches_failed: int = 0


class LogShipper:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timing: Timing = HEROKU,
        batch_size: int | None = None,
        back_buffer: int | None = None,
        host: str = "host",
    ) -> None:
        self.url = url
        self.token = token
        self.timing = timing
        self.batch_size = batch_size or timing.shuttle_batch
        self.back_buffer = back_buffer or timing.shuttle_back_buffer
        self.host = host
        self.stats = ShipperStats()
        # every POST attempt, answered or not (registry=None: ShipperCollector exposes it)
        self.post_seconds = Histogram("post", "", buckets=POST_BUCKETS, registry=None)
        self._batch: list[LogMessage] = []
        self._queue: deque[list[LogMessage]] = deque()
        self._wake = asyncio.Event()
        self._drop_since = ""
        self._lost_since = ""
        self._pending_drops = 0
        self._pending_losses = 0
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        auth = base64.b64encode(f"token:{token}".encode()).decode()
        self._headers = {"Authorization": f"Basic {auth}", "Content-Type": logframe.CONTENT_TYPE}

    def emit(self, app: str, proc: str, text: str) -> bool:
        """Queue one line (split at 10,000 bytes). Returns False if it was dropped."""
        kept = True
        for part in logframe.split_long(text):
            self.stats.emitted += 1
            self._batch.append(
                LogMessage(app, proc, part, logframe.now_rfc5424(), self.host)
            )
            if len(self._batch) >= self.batch_size:
                kept = self._enqueue() and kept
        self._wake.set()
        return kept

    def _enqueue(self) -> bool:
        batch, self._batch = self._batch, []
        if len(self._queue) >= self.back_buffer:
            self.stats.dropped += len(batch)
            if not self._pending_drops:
                self._drop_since = logframe.now_rfc5424()
            self._pending_drops += len(batch)
            return False
        self._queue.append(batch)
        return True

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timing.shuttle_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, flush_timeout: float = 1.0) -> None:
        if self._batch:
            self._enqueue()
        deadline = asyncio.get_running_loop().time() + flush_timeout
        while self._queue and asyncio.get_running_loop().time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)
        if self._task is not None:
            # On Python 3.11 wait_for() in _run can swallow a cancellation that lands as its
            # timer fires, and the task would go on forever: cancel until it is done.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.1)
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.timing.shuttle_wait)
                except TimeoutError:
                    pass
                # A partial batch goes out after the wait, as log-shuttle's -wait does.
                if not self._queue and self._batch:
                    await asyncio.sleep(self.timing.shuttle_wait)
                    if self._batch:
                        self._enqueue()
                continue
            batch = self._queue[0]
            reports, reported = self._take_loss_reports()
            delivered = await self._deliver(reports + batch)
            self._queue.popleft()
            if delivered:
                self.stats.sent += len(batch)
            else:
                self._restore_loss_reports(*reported)
                self.stats.lost += len(batch)
                self.stats.batches_failed += 1
                if not self._pending_losses:
                    self._lost_since = logframe.now_rfc5424()
                self._pending_losses += len(batch)

    def _take_loss_reports(self) -> tuple[list[LogMessage], tuple[int, str, int, str]]:
        """The L12/L13 lines for the next batch; the counts they carry stop being pending,
        so drops that happen while the batch is in flight start a new report."""
        reported = (self._pending_drops, self._drop_since,
                    self._pending_losses, self._lost_since)
        reports = []
        if self._pending_drops:
            reports.append(self._report(
                f"Error L12: {self._pending_drops} messages dropped since {self._drop_since}"))
        if self._pending_losses:
            reports.append(self._report(
                f"Error L13: {self._pending_losses} messages lost since {self._lost_since}"))
        self._pending_drops = self._pending_losses = 0
        return reports, reported

    def _restore_loss_reports(self, drops: int, drop_since: str, losses: int,
                              lost_since: str) -> None:
        """The batch carrying these reports failed: they are pending again (oldest since)."""
        if drops:
            self._drop_since = drop_since
            self._pending_drops += drops
        if losses:
            self._lost_since = lost_since
            self._pending_losses += losses

    def _report(self, text: str) -> LogMessage:
        return LogMessage("heroku", "log-shuttle", text, logframe.now_rfc5424(), self.host, 172)

    async def _deliver(self, batch: list[LogMessage]) -> bool:
        assert self._session is not None
        body = logframe.encode_many(batch)
        headers = dict(self._headers, **{"Logplex-Msg-Count": str(len(batch))})
        for attempt in range(self.timing.shuttle_attempts):
            started = time.perf_counter()
            try:
                async with self._session.post(self.url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status < 300:
                        return True
                    log.debug("at=post_failed status=%s attempt=%d", resp.status, attempt + 1)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.debug("at=post_failed error=%r attempt=%d", exc, attempt + 1)
            except Exception as exc:  # never let the sender task die: that would drop silently
                log.warning("at=post_failed error=%r attempt=%d", exc, attempt + 1)
            finally:
                self.post_seconds.observe(time.perf_counter() - started)
            if attempt + 1 < self.timing.shuttle_attempts:
                await asyncio.sleep(min(0.05 * (attempt + 1), self.timing.shuttle_wait))
        return False


    @property
    def depth(self) -> int:
        """Full batches waiting in the back-buffer."""
        return len(self._queue)

    @property
    def app(self) -> str:
        return self.token.removeprefix("t.")


class ShipperCollector(Collector):
    """log_shuttle_* for every shipper ``shippers()`` returns, labelled by app, read at
    scrape time (a router ships one channel per app, a dyno one)."""

    def __init__(self, shippers: Callable[[], Iterable[LogShipper]]) -> None:
        self.shippers = shippers

    def collect(self) -> Iterator[Metric]:
        shippers = list(self.shippers())
        depth = GaugeMetricFamily("log_shuttle_back_buffer_batches",
                                  "Full batches waiting to be POSTed to logplex", labels=["app"])
        capacity = GaugeMetricFamily("log_shuttle_back_buffer_capacity_batches",
                                     "Batches the back-buffer holds before lines are dropped "
                                     "(L12)", labels=["app"])
        posts = HistogramMetricFamily("log_shuttle_post_duration_seconds",
                                      "Time of each POST attempt to logplex, as the shipper "
                                      "sees it", labels=["app"])
        for shipper in shippers:
            depth.add_metric([shipper.app], shipper.depth)
            capacity.add_metric([shipper.app], shipper.back_buffer)
            buckets, total = [], 0.0
            for sample in next(iter(shipper.post_seconds.collect())).samples:
                if sample.name.endswith("_bucket"):
                    buckets.append((sample.labels["le"], sample.value))
                elif sample.name.endswith("_sum"):
                    total = sample.value
            posts.add_metric([shipper.app], buckets, total)
        yield from (depth, capacity, posts)
