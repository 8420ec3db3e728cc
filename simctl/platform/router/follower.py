"""Following the sync service: a snapshot, then the stream of records, applied in order.

The follower never takes the router down and never guesses
(docs/platform.md, "State sync", incident 372):

- a malformed record (bad JSON, missing field, wrong type, unknown op or app) halts
  applying. The router keeps routing on its last good table, says so in /health
  (degraded, naming the seq), in metrics (router_sync_errors_total, a growing
  router_sync_lag) and in one log line. It keeps reading the stream only to measure
  the lag; nothing more is applied until an operator asks for a resync.
- a lost stream (closed, refused, or silent past a few heartbeats) keeps the last-known-good
  table and retries every ``timing.sync_reconnect``; the stream resumes from the
  applied version, or from a fresh snapshot when the sync service's history changed.
- ``resync()`` (POST /admin/resync and /admin/flush) loads a fresh snapshot and clears a halt.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp

from simctl.platform.router import records
from simctl.platform.router.metrics import RouterMetrics
from simctl.platform.router.records import RecordError
from simctl.platform.router.table import RouteTable
from simctl.platform.service import kv
from simctl.platform.timing import Timing

log = logging.getLogger("simctl.router.sync")

MAX_LINE = 4 * 1024 * 1024


class SyncError(Exception):
    """The sync service could not be read (not a malformed record)."""


class _Reload(Exception):
    """The stream cannot resume from our version: load a snapshot first."""


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it; cancel again if it swallowed the cancellation.

    (Python 3.11's wait_for() loses a cancellation that lands as its timer fires.)
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    await asyncio.gather(task, return_exceptions=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SyncFollower:
    def __init__(self, url: str, table: RouteTable, timing: Timing,
                 metrics: RouterMetrics | None = None) -> None:
        self.url = url.rstrip("/")
        self.table = table
        self.timing = timing
        self.metrics = metrics
        self.state = "starting"  # following | lost | halted
        self.sync_version: int | None = None
        self.halted_seq: int | None = None
        self.halted_error = ""
        self.last_error = ""
        self.lost_since = ""
        self.errors = 0
        self.dead_after = max(5 * timing.sync_reconnect, 2.0)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._reload = True
        self._reloads = 0
        self._lock = asyncio.Lock()

    # lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timing.connect_timeout),
            read_bufsize=2**20, max_line_size=MAX_LINE, max_field_size=MAX_LINE)
        self._spawn()

    async def stop(self) -> None:
        await self._cancel()
        if self._session is not None:
            await self._session.close()

    def _spawn(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _cancel(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def resync(self) -> int:
        """Load a fresh snapshot now (clearing a halt); SyncError if sync cannot serve one."""
        async with self._lock:
            await self._cancel()
            try:
                await self._snapshot()
            finally:
                self._spawn()
        log.info(kv(at="sync_resync", version=self.table.version))
        return self.table.version or 0

    # health ------------------------------------------------------------------------------------

    @property
    def lag(self) -> int:
        if self.sync_version is None or self.table.version is None:
            return 0
        return max(0, self.sync_version - self.table.version)

    def health(self) -> tuple[str, str]:
        version = self.table.version
        if version is None:
            return "degraded", f"no route table yet: {self.last_error or 'waiting for sync'}"
        if self.halted_seq is not None:
            return "degraded", (
                f"sync halted at seq {self.halted_seq}: {self.halted_error}; routing on table "
                f"version {version} (lag {self.lag}); POST /admin/resync to reload")
        if self.state == "lost":
            return "degraded", (
                f"sync stream lost since {self.lost_since} ({self.last_error}); routing on "
                f"last-known-good table version {version}")
        return "ok", ""

    def details(self) -> dict[str, Any]:
        return {"state": "halted" if self.halted_seq is not None else self.state,
                "url": self.url, "table_version": self.table.version,
                "sync_version": self.sync_version, "lag": self.lag,
                "halted_seq": self.halted_seq, "halted_error": self.halted_error or None,
                "last_error": self.last_error or None, "errors": self.errors}

    def _gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.sync_lag.set(self.lag)

    # the loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if self._reload or not self.table.loaded:
                    await self._snapshot()
                await self._follow()
                error = "stream ended"
            except _Reload as exc:
                log.info(kv(at="sync_reload", reason=str(exc), version=self.table.version))
                self._reload = True
                self._reloads += 1
                if self._reloads > 1:  # a fresh snapshot did not help: do not spin
                    await asyncio.sleep(self.timing.sync_reconnect)
                continue
            except (SyncError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                error = str(exc) or type(exc).__name__
            self._lost(error)
            await asyncio.sleep(self.timing.sync_reconnect)

    def _lost(self, error: str) -> None:
        self.last_error = error
        if self.metrics is not None:
            self.metrics.sync_connected.set(0)
        if self.state != "lost":
            self.state, self.lost_since = "lost", _now()
            log.warning(kv(at="sync_lost", error=error, version=self.table.version,
                           retry_every=f"{self.timing.sync_reconnect}s"))

    async def _snapshot(self) -> None:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=max(10 * self.timing.sync_reconnect, 1.0))
        try:
            async with self._session.get(f"{self.url}/routes", timeout=timeout) as resp:
                if resp.status != 200:
                    raise SyncError(f"GET /routes answered {resp.status}")
                body = await resp.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.last_error = f"GET /routes: {exc or type(exc).__name__}"
            raise SyncError(self.last_error) from None
        try:
            self.table.load(json.loads(body))
        except (ValueError, RecordError) as exc:  # keep the table we have
            self._count_error()
            self.last_error = f"malformed snapshot: {exc}"
            log.error(kv(at="sync_bad_snapshot", error=str(exc), version=self.table.version))
            raise SyncError(self.last_error) from None
        self._reload = False
        self.halted_seq, self.halted_error = None, ""
        self.sync_version = self.table.version
        self._gauges()
        log.info(kv(at="sync_snapshot", version=self.table.version, apps=len(self.table.apps)))

    async def _follow(self) -> None:
        assert self._session is not None
        params = {"since": str(self.table.version or 0), "epoch": self.table.epoch}
        async with self._session.get(f"{self.url}/routes/stream", params=params) as resp:
            if resp.status == 409:
                raise _Reload(f"stream answered 409: {(await resp.text())[:200]}")
            if resp.status != 200:
                raise SyncError(f"GET /routes/stream answered {resp.status}")
            self._reloads = 0
            if self.state != "following":
                if self.state == "lost":
                    log.info(kv(at="sync_restored", version=self.table.version))
                self.state, self.last_error = "following", ""
            if self.metrics is not None:
                self.metrics.sync_connected.set(1)
            content = resp.content
            while True:
                try:
                    line = await asyncio.wait_for(content.readline(), self.dead_after)
                except TimeoutError:
                    raise SyncError(f"no heartbeat for {self.dead_after:g}s") from None
                if not line:
                    return
                if line.strip():
                    self._line(line)

    # one line of the stream ----------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        table = self.table
        expected = (table.version or 0) + 1
        try:
            record = json.loads(line)
        except ValueError as exc:
            record, error = None, f"invalid JSON ({exc})"
        else:
            error = ""
        if isinstance(record, dict) and record.get("op") == "heartbeat" and "seq" not in record:
            version = record.get("version")
            if isinstance(version, int) and not isinstance(version, bool):
                self.sync_version = version
                self._gauges()
            return
        if self.halted_seq is not None:  # halted: only measure how far behind we fall
            if isinstance(record, dict) and isinstance(record.get("seq"), int):
                self.sync_version = max(self.sync_version or 0, record["seq"])
                self._gauges()
            return
        if error:
            self._halt(expected, error)
            return
        try:
            seq = records.check_seq(record)
        except RecordError as exc:
            self._halt(expected, str(exc))
            return
        if seq < expected:
            return  # already applied
        if seq > expected:
            raise _Reload(f"stream jumped from version {expected - 1} to seq {seq}")
        try:
            table.apply(record)
        except RecordError as exc:
            self._halt(seq, str(exc))
            return
        self.sync_version = max(self.sync_version or 0, seq)
        self._gauges()

    def _halt(self, seq: int, error: str) -> None:
        self.halted_seq, self.halted_error = seq, error
        self.sync_version = max(self.sync_version or 0, seq)
        self._count_error()
        self._gauges()
        log.error(kv(at="sync_halted", seq=seq, error=error, version=self.table.version,
                     action="routing on last good table until POST /admin/resync"))

    def _count_error(self) -> None:
        self.errors += 1
        if self.metrics is not None:
            self.metrics.sync_errors.inc()
