"""One HTTP drain: a bounded buffer and a sender task with Logplex's rules
(docs/platform.md, "Drain rules").

Messages are pushed into the buffer by ingest (never blocking, newest kept), as their
output frames, encoded once per body for all drains. The sender takes frames of up to
``drain_batch_bytes`` from it and POSTs them:

- One frame at a time while the drain is new, slow or failing: until a first frame is
  delivered, while a frame is being retried or the last one failed, and while the last
  answer (or a frame still waiting for one) took longer than ``QUICK_ANSWER`` of the
  request timeout (100 ms with Heroku's timing), the next frame leaves only when the one
  in flight is answered, and a retried frame stays at the front of the queue.
- Up to ``MAX_IN_FLIGHT`` frames at once while the drain answers quickly, the way a
  drain receives frames from every node of a Logplex mesh at once: a fast drain is then
  fed at its own pace, not at one round trip per frame, and a pause of a few tens of
  milliseconds no longer overflows a buffer that holds 50 ms of a 20,000 lines/s app.
  Frames are taken from the buffer in order, each with its own ``Logplex-Frame-Id``;
  concurrent frames may reach the drain in either order (frame ids and timestamps tell).

- 2xx: delivered. 4xx except 429: permanent failure, the frame is dropped. Anything
  else (5xx, 429, timeout, connection error): the frame is retried, with the same
  ``Logplex-Frame-Id``, up to ``drain_frame_retries`` more times, then dropped.
- After every retryable failure the sender waits ``drain_reconnect_base`` times
  ``trunc((2^rand(1..min(attempt, 10)) - 1) / 2)`` and logs ``at=reconnect_delay``.
  ``attempt`` counts consecutive failures; any answer other than a retryable one
  resets it.
- Losses (messages displaced from the buffer, and messages of dropped frames) are
  reported by one L10 line at the head of the next frame that is sent, and counted in
  ``logplex_drain_dropped_total`` when they happen.
- After ``drain_shrink_after`` seconds of retryable failures the buffer shrinks to
  ``drain_degraded_buffer`` (``service=degraded``); the next delivery regrows it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex.buffer import LossyBuffer
from simctl.platform.logplex.config import DrainSpec
from simctl.platform.logplex.metrics import LogplexMetrics
from simctl.platform.logplex.rods import DENY_DRAIN_FORWARDING, ControlRods
from simctl.platform.service import kv
from simctl.platform.timing import Timing

USER_AGENT = "Logplex/v72"
MAX_BACKOFF_SLOT = 10  # http_max_retries
MAX_IN_FLIGHT = 4  # frames at once to a drain that answers quickly
# A drain is quick while it answers within this share of drain_request_timeout: 100 ms
# with Heroku's timing (10 ms fast). A consumer that takes 200 ms or more per POST (the
# slow-drain incident) is slow, and gets Logplex's one frame at a time.
QUICK_ANSWER = 0.02
L10 = "Error L10 (output buffer overflow): {n} messages dropped since {since}."


def output_frame(m: LogMessage) -> bytes:
    """``logframe.encode(m, structured=False)`` for messages that came through the parser
    (or are Logplex's own): their header fields are already single tokens, so the hot
    path skips the field checks."""
    raw = f"<{m.priority}>1 {m.timestamp} {m.host} {m.app} {m.proc} - {m.text}"
    if raw.isascii():  # characters are bytes: count the string, encode once
        return f"{len(raw)} {raw}".encode("ascii")
    data = raw.encode(errors="replace")
    return b"%d %s" % (len(data), data)


def output_frames(messages: Iterable[LogMessage]) -> list[bytes]:
    """The output frame of each message, made once per ingested body and shared by every
    drain of the channel (drains buffer these bytes, not the messages)."""
    return [output_frame(m) for m in messages]


def overflow_message(count: int, since: str) -> LogMessage:
    """The L10 line, as Logplex puts it into the drain stream (local5.warning)."""
    return LogMessage("heroku", "logplex", L10.format(n=count, since=since),
                      logframe.now_rfc5424(), "logplex", 172)


@dataclass
class Frame:
    id: str
    body: bytes
    count: int  # log messages in the frame, not counting the L10 line
    loss: int  # messages the L10 line reports (0: no L10 line)
    loss_since: str
    sent_at: float = 0.0  # loop time the frame was taken from the buffer

    @property
    def msg_count(self) -> int:
        return self.count + (1 if self.loss else 0)


class HttpDrain:
    def __init__(
        self,
        spec: DrainSpec,
        timing: Timing,
        metrics: LogplexMetrics,
        rods: ControlRods,
        *,
        log: logging.Logger,
        rng: random.Random | None = None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.app = spec.app
        self.token = f"d.{uuid.uuid4()}"
        self.timing = timing
        self.rods = rods
        self.log = log
        self.rng = rng or random.Random()
        self.on_change = on_change
        self.buffer: LossyBuffer[bytes] = LossyBuffer(timing.drain_buffer)
        self.enabled = True
        self.state = "idle"  # idle | sending | backoff | held | disabled
        self.service = "normal"  # degraded while the buffer is shrunk
        self.delivered = self.dropped = self.failed_frames = self.frames_sent = 0
        self.discarded = 0  # thrown away by an operator disabling the drain
        self.attempt = 0
        self.last_error = ""
        self.failing_since: float | None = None  # first retryable failure of a streak
        self._frame_loss = 0  # messages of dropped frames, not yet reported by L10
        self._frame_loss_since = ""
        self._frames: dict[asyncio.Task[None], Frame] = {}  # in flight
        self._answered_in: float | None = None  # the last delivered frame's round trip
        self._retrying = 0  # frames in flight that failed once: nothing may overtake them
        self._want = 1  # wake the sender once the buffer holds this many
        self._wake = asyncio.Event()
        self._rods_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._headers = {
            "Content-Type": logframe.CONTENT_TYPE,
            "Logplex-Drain-Token": self.token,
            "User-Agent": USER_AGENT,
        }
        if spec.user is not None or spec.password is not None:  # basic auth from userinfo
            credentials = f"{spec.user or ''}:{spec.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        self._m_delivered = metrics.delivered.labels(self.name)
        self._m_dropped = metrics.dropped.labels(self.name)
        self._m_failed = metrics.failed_frames.labels(self.name)
        metrics.buffered.labels(self.name).set_function(lambda: len(self.buffer))

    # ingest side (synchronous, never blocks) -------------------------------------------

    def push(self, frames: Sequence[bytes]) -> None:
        """Buffer messages, as their output frames (:func:`output_frames`)."""
        if not self.enabled:
            return
        buffer = self.buffer
        if len(buffer) + len(frames) > buffer.capacity and self._task is not None:
            # Bodies that arrive together are ingested back to back, before the sender
            # task runs again: rather than displace what the drain may take now, cut
            # those frames here.
            while (len(buffer) and len(self._frames) < self._window()
                   and not self.rods.active(DENY_DRAIN_FORWARDING)):
                self._launch(self._next_frame())
        displaced = buffer.push(frames)
        if displaced:
            self.dropped += displaced
            self._m_dropped.inc(displaced)
        if len(self.buffer) >= self._want:
            self._wake.set()

    def kick(self) -> None:
        """Something changed (a rod): let the sender and the frames in flight look again."""
        self._wake.set()
        self._rods_changed.set()

    @property
    def failing(self) -> bool:
        return bool(self.last_error)

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=self.timing.drain_request_timeout,
                sock_connect=self.timing.drain_connect_timeout)
            self._session = aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT))
        self._log("spawn", name=self.name)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"drain-{self.name}")

    async def stop(self) -> None:
        await self._cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def set_enabled(self, enabled: bool) -> None:
        if enabled == self.enabled:
            return
        if enabled:
            self.enabled = True
            self.state = "idle"
            self._log("enabled")
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"drain-{self.name}")
        else:
            self.enabled = False
            in_flight = sum(frame.count for frame in self._frames.values())
            await self._cancel()
            discarded = self.buffer.clear() + in_flight
            self.discarded += discarded
            self.buffer.take_loss()
            self._frame_loss, self._frame_loss_since = 0, ""
            self._answered_in, self._retrying = None, 0
            self.attempt, self.last_error, self.failing_since = 0, "", None
            self.state = "disabled"
            self._log("disabled", discarded=discarded)
        self.on_change()

    async def _cancel(self) -> None:
        tasks = [t for t in (self._task, *self._frames) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._frames.clear()

    # sender -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._wait_for_data()
                frame = self._next_frame()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must neither stop the drain nor spin
                self.log.exception(kv(**self._ids(), at="sender_error"))
                await asyncio.sleep(1.0)
                continue
            self._launch(frame)

    def _launch(self, frame: Frame) -> None:
        task = asyncio.get_running_loop().create_task(
            self._send_guarded(frame), name=f"drain-{self.name}-frame")
        self._frames[task] = frame
        task.add_done_callback(self._sent)

    async def _send_guarded(self, frame: Frame) -> None:
        try:
            await self._send(frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: log it, and keep the slot a while rather than spin
            self.log.exception(kv(**self._ids(), at="sender_error"))
            await asyncio.sleep(1.0)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._frames.pop(task, None)
        self._wake.set()

    def _window(self) -> int:
        """Frames that may be in flight: several only while the drain answers quickly,
        that is while it is not failing, its last frame was answered within
        ``QUICK_ANSWER`` of the request timeout, and no frame has been waiting longer."""
        quick = QUICK_ANSWER * self.timing.drain_request_timeout
        answered_in = self._answered_in
        if (self.last_error or self._retrying or answered_in is None or answered_in > quick
                or (self._frames and asyncio.get_running_loop().time()
                    - min(f.sent_at for f in self._frames.values()) > quick)):
            return 1
        return MAX_IN_FLIGHT

    async def _wait(self, timeout: float | None) -> None:
        self._wake.clear()
        if timeout is None:
            await self._wake.wait()
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        # that lands as the event fires, and stop() would wait on the task forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _wait_for_data(self) -> None:
        """Until the buffer has something to send, forwarding is allowed, and the drain
        may take one more frame. A short linger (``drain_batch_wait``) lets a small
        frame fill up; a quarter of the buffer ends it at once, so a burst never waits."""
        lingered = False
        while True:
            busy = bool(self._frames)
            if self.rods.active(DENY_DRAIN_FORWARDING):
                if not busy:
                    self.state = "held"
                self._want = 1
                await self._wait(None)
                continue
            if len(self._frames) >= self._window():
                self._want = self.buffer.capacity + 1  # woken by an answer, not by ingest
                await self._wait(None)
                continue
            if not len(self.buffer):
                if not busy:
                    self.state = "idle"
                self._want = 1
                await self._wait(None)
                continue
            threshold = max(1, self.buffer.capacity // 4)
            if not lingered and self.timing.drain_batch_wait > 0 and len(self.buffer) < threshold:
                lingered = True
                self._want = threshold
                await self._wait(self.timing.drain_batch_wait)
                continue
            self._want = 1
            return

    def _next_frame(self) -> Frame:
        buffer = self.buffer
        loss, since = buffer.take_loss()
        if self._frame_loss:
            since = min(since, self._frame_loss_since) if loss else self._frame_loss_since
            loss += self._frame_loss
            self._frame_loss, self._frame_loss_since = 0, ""
        parts: list[bytes] = []
        size = count = 0
        if loss:
            parts.append(output_frame(overflow_message(loss, since)))
            size = len(parts[0])
        target = self.timing.drain_batch_bytes
        popleft, append = buffer.popleft, parts.append
        for _ in range(len(buffer)):
            raw = popleft()
            if count and size + len(raw) > target:
                buffer.appendleft(raw)
                break
            append(raw)
            size += len(raw)
            count += 1
        return Frame(uuid.uuid4().hex, b"".join(parts), count, loss, since,
                     asyncio.get_running_loop().time())

    async def _send(self, frame: Frame) -> None:
        tries = 1 + self.timing.drain_frame_retries
        loop = asyncio.get_running_loop()
        retrying = False
        try:
            while True:
                while self.rods.active(DENY_DRAIN_FORWARDING):
                    self.state = "held"  # the frame waits; nothing is sent
                    await self._held()
                self.state = "sending"
                started = loop.time()
                outcome, detail = await self._post(frame)
                if outcome == "ok":
                    self._answered_in = loop.time() - started
                    self._delivered(frame)
                    return
                if outcome == "permanent":
                    self._drop(frame, detail)
                    self._failed(detail, retryable=False)
                    return
                tries -= 1
                if not retrying:
                    retrying = True
                    self._retrying += 1
                self._failed(detail, retryable=True)
                if tries == 0:
                    self._drop(frame, "tries_exceeded")
                self.state = "backoff"
                await asyncio.sleep(self._backoff())
                if tries == 0:
                    return
        finally:
            if retrying:
                self._retrying -= 1
            if len(self._frames) <= 1:  # the last frame in flight: the drain is settled
                self.state = "held" if self.rods.active(DENY_DRAIN_FORWARDING) else "idle"

    async def _held(self) -> None:
        """Until a rod changes (frames in flight have their own event: ``_wake`` is the
        sender loop's, which clears it)."""
        self._rods_changed.clear()
        await self._rods_changed.wait()

    async def _post(self, frame: Frame) -> tuple[str, str]:
        assert self._session is not None
        headers = dict(self._headers)
        headers["Logplex-Msg-Count"] = str(frame.msg_count)
        headers["Logplex-Frame-Id"] = frame.id
        try:
            async with self._session.post(
                self.spec.url, data=frame.body, headers=headers, allow_redirects=False,
            ) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            return "retry", "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            return "retry", type(exc).__name__
        if 200 <= status < 300:
            return "ok", str(status)
        if 400 <= status < 500 and status != 429:
            return "permanent", f"status_{status}"
        return "retry", f"status_{status}"

    def _backoff(self) -> float:
        self.attempt += 1
        slot = self.rng.randint(1, min(self.attempt, MAX_BACKOFF_SLOT))
        delay = self.timing.drain_reconnect_base * ((2 ** slot - 1) // 2)
        self._log("reconnect_delay", attempt=self.attempt, delay=round(delay * 1000))
        return delay

    # outcomes ---------------------------------------------------------------------------

    def _delivered(self, frame: Frame) -> None:
        self.frames_sent += 1
        self.delivered += frame.count
        self._m_delivered.inc(frame.count)
        was_failing = self.failing
        self.attempt, self.last_error, self.failing_since = 0, "", None
        if self.service == "degraded":
            self.service = "normal"
            self.buffer.resize(self.timing.drain_buffer)
            self._log("maybe_resize", service="normal", buf_size=self.timing.drain_buffer)
        if was_failing:
            self.on_change()

    def _drop(self, frame: Frame, reason: str) -> None:
        """The frame is lost; its messages (and the loss its L10 line carried) go into
        the next L10 line."""
        self.failed_frames += 1
        self._m_failed.inc()
        self.dropped += frame.count
        self._m_dropped.inc(frame.count)
        lost = frame.count + frame.loss
        if lost:
            since = frame.loss_since if frame.loss else logframe.now_rfc5424()
            if not self._frame_loss or since < self._frame_loss_since:
                self._frame_loss_since = since
            self._frame_loss += lost
        self._log("drop_frame", frame_id=frame.id, reason=reason, dropped_msgs=frame.count)

    def _failed(self, detail: str, *, retryable: bool) -> None:
        was_failing = self.failing
        self.last_error = detail
        if not retryable:  # the drain answered: it is reachable, just refusing
            self.attempt, self.failing_since = 0, None
        else:
            now = asyncio.get_running_loop().time()
            if self.failing_since is None:
                self.failing_since = now
            if (self.service == "normal"
                    and now - self.failing_since >= self.timing.drain_shrink_after):
                self.service = "degraded"
                displaced = self.buffer.resize(self.timing.drain_degraded_buffer)
                if displaced:
                    self.dropped += displaced
                    self._m_dropped.inc(displaced)
                self._log("maybe_shrink", service="degraded",
                          buf_size=self.timing.drain_degraded_buffer)
                self.on_change()
        if not was_failing:
            self.on_change()

    # reporting --------------------------------------------------------------------------

    def _ids(self) -> dict[str, Any]:
        return {"drain_id": self.token, "channel_id": self.app, "dest": self.spec.dest}

    def _log(self, at: str, **fields: Any) -> None:
        self.log.info(kv(**self._ids(), at=at, **fields))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app": self.app,
            "url": self.spec.dest,
            "token": self.token,
            "enabled": self.enabled,
            "state": self.state,
            "service": self.service,
            "buffer": {"messages": len(self.buffer), "capacity": self.buffer.capacity},
            "in_flight": sum(frame.msg_count for frame in self._frames.values()),
            "frames_in_flight": len(self._frames),
            "delivered": self.delivered,
            "dropped": self.dropped,
            "failed_frames": self.failed_frames,
            "frames_sent": self.frames_sent,
            "discarded": self.discarded,
            "attempt": self.attempt,
            "last_error": self.last_error,
        }
