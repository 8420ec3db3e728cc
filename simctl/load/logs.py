"""Log-line traffic: lines at a fixed rate, POSTed to logplex as logplex-1 batches.

Every ``batch_interval`` the lines the clock calls for are encoded and posted at once
(split at ``max_batch`` lines), without waiting for earlier posts: the rate holds
while logplex is slow, up to ``max_in_flight`` concurrent posts; lines that would
need more are counted ``unsent``. Each line carries the run id and a sequence
number (``at=info msg=load run=ID seq=N``) so a drain can tell exactly which of
this run's lines arrived.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import TYPE_CHECKING

import aiohttp

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage

if TYPE_CHECKING:
    from simctl.load.generator import LogTraffic
    from simctl.load.results import Recorder


class LogSender:
    def __init__(self, traffic: LogTraffic, recorder: Recorder) -> None:
        self.traffic = traffic
        self.recorder = recorder
        self.scheduled = self.sent = self.rejected = self.failed = self.unsent = 0
        self.cancelled = 0
        self.batches = 0
        self.in_flight = 0
        self.by_status: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        auth = base64.b64encode(f"token:t.{traffic.app}".encode()).decode()
        self._headers = {"Authorization": f"Basic {auth}",
                         "Content-Type": logframe.CONTENT_TYPE}
        self._pad = "x" * traffic.line_bytes
        self._session: aiohttp.ClientSession | None = None

    async def run(self, t0: float, total: float, stopped: asyncio.Event) -> None:
        """Post ``total`` lines from ``t0`` (perf_counter), or until ``stopped``.

        Line ``i`` is due at ``t0 + i / rate``, as HTTP arrivals are.
        """
        traffic = self.traffic
        timeout = aiohttp.ClientTimeout(total=traffic.timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        if traffic.max_lines is not None:
            total = min(total, traffic.max_lines)
        while not stopped.is_set() and self.scheduled < total:
            due = min(int((time.perf_counter() - t0) * traffic.rate) + 1, total)
            if due > self.scheduled:
                self._post_lines(self.scheduled, int(due))
                self.scheduled = int(due)
            if self.scheduled >= total:
                return
            try:
                await asyncio.wait_for(stopped.wait(), traffic.batch_interval)
            except TimeoutError:
                pass

    def _post_lines(self, first: int, last: int) -> None:
        step = self.traffic.max_batch
        for start in range(first, last, step):
            count = min(step, last - start)
            if self.in_flight >= self.traffic.max_in_flight:
                self.unsent += count
                self.recorder.log_lines(0, count)
                continue
            self.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._post(start, count))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _body(self, start: int, count: int) -> bytes:
        t = self.traffic
        stamp = logframe.now_rfc5424()
        pad = f" pad={self._pad}" if self._pad else ""
        messages = [
            LogMessage("app", t.proc, f"at=info msg=load run={t.run_id} seq={seq}{pad}", stamp)
            for seq in range(start, start + count)
        ]
        return logframe.encode_many(messages)

    async def _post(self, start: int, count: int) -> None:
        assert self._session is not None
        headers = dict(self._headers, **{"Logplex-Msg-Count": str(count)})
        try:
            async with self._session.post(self.traffic.url, data=self._body(start, count),
                                          headers=headers) as resp:
                await resp.read()
                status = resp.status
        except asyncio.CancelledError:
            self.cancelled += count
            raise
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.failed += count
            self.recorder.log_lines(0, count)
        else:
            self.batches += 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if 200 <= status < 300:
                self.sent += count
                self.recorder.log_lines(count, 0)
            else:
                self.rejected += count
                self.recorder.log_lines(0, count)
        finally:
            self.in_flight -= 1

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        return set(self._tasks)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Cancel what is still in flight and close the HTTP session."""
        self.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
