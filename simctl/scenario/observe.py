"""Gathering what probes read: metrics, health, route versions, drain and tail lines.

``Observer`` is built from every probe of a scenario, so it fetches only what they need,
and keeps history across phases (counter increases need a value from before the window;
log lines are kept with the time they arrived). ``sample()`` is called by the engine's
thread; the HTTP requests of one sample run concurrently on the background loop, and
metrics are parsed (with prometheus_client's text parser) in the calling thread, away
from the loop that runs the load generator.

- metrics: ``GET /metrics`` of each service of the probe's target (every service when
  none), samples named exactly as the probe, whose labels include the probe's labels,
  summed per service;
- drains: ``GET /messages?since=SEQ&grep=TEXT`` from the sequence number the drain had
  when the run began, so lines of earlier runs never count; the load's own lines
  (``msg=load run=ID seq=N``) give the delivery ratio;
- tail: one ``GET /tail?app=web`` session to logplex, reopened when it ends;
- health: ``GET /health`` (a process that is not running, paused or answering 503 is
  ``down``); route versions: sync's ``/health`` version and each router's
  ``table_version``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from simctl.backends import procs
from simctl.backends.base import Backend
from simctl.backends.project import base_url
from simctl.scenario.expressions import (
    HealthProbe,
    LogProbe,
    LogsProbe,
    MetricProbe,
    Probe,
    RouterProbe,
)
from simctl.scenario.looper import BackgroundLoop
from simctl.scenario.probes import Observation, is_counter, log_key, metric_key
from simctl.scenario.traffic import LoadRunner

LOAD_LINE = re.compile(r"msg=load run=(\S+) seq=(\d+)")
PAGE = 5000
MAX_PAGES = 4
MARGIN = 5.0  # seconds kept beyond the probes' window (a counter needs a value before it)
MAX_SEQS = 50_000  # delivered line numbers kept per drain and run before pruning


def resolve_target(processes: Sequence[Any], target: str) -> list[str]:
    """Services a probe target names: a service, a role (all its services) or a dyno."""
    return sorted(p.name for p in processes
                  if target in (p.name, p.role) or str(p.labels.get("dyno", "")) == target)


def display_line(row: dict[str, Any]) -> str:
    """A drain message as probes match it: ``app[proc]: text``."""
    return f"{row.get('app')}[{row.get('proc')}]: {row.get('text')}"


@dataclass
class DrainFeed:
    """Lines a drain received since the run began, optionally filtered by the drain."""

    drain: str
    url: str
    grep: str | None
    cursor: int = 0
    rows: deque[tuple[float, str]] = field(default_factory=deque)
    delivery: bool = False  # parse the load's own lines instead of keeping rows
    delivered: dict[str, set[int]] = field(default_factory=dict)
    error: str = ""


@dataclass
class TailFeed:
    url: str
    rows: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=50_000))
    error: str = ""


class Observer:
    def __init__(self, backend: Backend, loop: BackgroundLoop, probes: Sequence[Probe],
                 load: LoadRunner | None = None, *, app: str = "web", timeout: float = 1.5,
                 window: float = 5.0) -> None:
        self.backend = backend
        self.keep = window + MARGIN  # what is older is never read again
        self.loop = loop
        self.probes = list(dict.fromkeys(probes))
        self.load = load
        self.app = app
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._feeds: list[DrainFeed] = []
        self._tail: TailFeed | None = None
        self._tail_task: asyncio.Task[None] | None = None
        self._metrics: dict[str, dict[str, deque[tuple[float, float | None]]]] = {}
        self._metric_errors: dict[str, str] = {}
        self.drains: list[str] = []
        self._offset = time.time() - time.monotonic()

    # -- what is needed ----------------------------------------------------------------

    def _of(self, kind: type) -> list[Any]:
        return [p for p in self.probes if isinstance(p, kind)]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.loop.run(self._start(), timeout=15)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout))
        processes = self._processes()
        log_probes = self._of(LogProbe)
        needs_drains = self._of(LogsProbe) or any(p.source != "tail" for p in log_probes)
        if needs_drains:
            self.drains = await self._app_drains()
        urls = {str(p.labels.get("drain")): base_url(p) for p in processes if p.role == "drain"}
        keys: set[tuple[str, str | None]] = set()
        for probe in log_probes:
            source, grep = log_key(probe)
            if source == "tail":
                continue
            names = self.drains if source == "*" else [source.removeprefix("drain.")]
            keys.update((name, grep) for name in names)
        for name, grep in sorted(keys, key=lambda k: (k[0], k[1] or "")):
            if name in urls:
                self._feeds.append(DrainFeed(name, urls[name], grep))
        if self._of(LogsProbe) and self.load is not None:
            for name in self.drains:
                if name in urls:
                    self._feeds.append(DrainFeed(name, urls[name], f"msg=load run="
                                                 f"{self.load.spec.run_id}.", delivery=True))
        await asyncio.gather(*(self._init_cursor(feed) for feed in self._feeds))
        if any(p.source == "tail" for p in log_probes):
            logplex = [p for p in processes if p.role == "logplex"]
            if logplex:
                self._tail = TailFeed(f"{base_url(logplex[0])}/tail?app={self.app}")
                self._tail_task = asyncio.ensure_future(self._follow_tail(self._tail))

    def stop(self) -> None:
        if not self.loop.closed:
            try:
                self.loop.run(self._stop(), timeout=10)
            except Exception:
                pass

    async def _stop(self) -> None:
        if self._tail_task is not None:
            self._tail_task.cancel()
            await asyncio.gather(self._tail_task, return_exceptions=True)
            self._tail_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- HTTP helpers ------------------------------------------------------------------

    async def _get(self, url: str) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.get(url) as resp:
            body = await resp.read()
            if resp.content_type == "application/json":
                return resp.status, json.loads(body)
            return resp.status, body.decode(errors="replace")

    def _processes(self) -> list[Any]:
        state = self.backend.state()
        return list(state.processes.values()) if state is not None else []

    async def _app_drains(self) -> list[str]:
        logplex = [p for p in self._processes() if p.role == "logplex"]
        if not logplex:
            return []
        try:
            _, body = await self._get(f"{base_url(logplex[0])}/admin/drains")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return []
        drains = body.get("drains", []) if isinstance(body, dict) else []
        return [d["name"] for d in drains if isinstance(d, dict) and d.get("app") == self.app]

    async def _init_cursor(self, feed: DrainFeed) -> None:
        try:
            _, stats = await self._get(f"{feed.url}/stats")
            feed.cursor = int(stats.get("last_seq") or 0)
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
            feed.error = f"drain {feed.drain}: {exc or type(exc).__name__}"

    async def _read_feed(self, feed: DrainFeed) -> None:
        try:
            _, stats = await self._get(f"{feed.url}/stats")
            last = int(stats.get("last_seq") or 0)
            for _ in range(MAX_PAGES):
                query = f"since={feed.cursor}&limit={PAGE}"
                if feed.grep:
                    query += f"&grep={quote(feed.grep, safe='')}"
                _, rows = await self._get(f"{feed.url}/messages?{query}")
                if not isinstance(rows, list):
                    break
                for row in rows:
                    self._keep(feed, row)
                if rows:
                    feed.cursor = max(feed.cursor, int(rows[-1]["seq"]))
                if len(rows) < PAGE:
                    feed.cursor = max(feed.cursor, last)
                    break
            feed.error = ""
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, AttributeError) as exc:
            feed.error = f"drain {feed.drain}: {exc or type(exc).__name__}"

    def _keep(self, feed: DrainFeed, row: dict[str, Any]) -> None:
        if feed.delivery:
            found = LOAD_LINE.search(str(row.get("text", "")))
            if found:
                feed.delivered.setdefault(found.group(1), set()).add(int(found.group(2)))
            return
        received = float(row.get("received_at") or time.time()) - self._offset
        feed.rows.append((received, display_line(row)))
        horizon = time.monotonic() - self.keep
        while feed.rows and feed.rows[0][0] < horizon:
            feed.rows.popleft()

    async def _follow_tail(self, feed: TailFeed) -> None:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=2.0)
        while True:
            try:
                async with self._session.get(feed.url, timeout=timeout) as resp:
                    if resp.status != 200:
                        feed.error = f"tail: HTTP {resp.status}"
                    else:
                        feed.error = ""
                        async for raw in resp.content:
                            line = raw.decode(errors="replace").rstrip("\r\n")
                            _, _, rest = line.partition(" ")
                            now = time.monotonic()
                            feed.rows.append((now, rest or line))
                            while feed.rows and feed.rows[0][0] < now - self.keep:
                                feed.rows.popleft()
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                feed.error = f"tail: {exc or type(exc).__name__}"
            await asyncio.sleep(0.5)

    async def _fetch_health(self, url: str) -> tuple[int, Any] | None:
        try:
            return await self._get(url)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def _fetch_text(self, url: str) -> tuple[float, str | None]:
        try:
            status, body = await self._get(url)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return time.monotonic(), None
        return time.monotonic(), body if status == 200 and isinstance(body, str) else None

    # -- one sample --------------------------------------------------------------------

    def sample(self) -> Observation:
        processes = self._processes()
        by_name = {p.name: p for p in processes}
        targets: dict[str, list[str]] = {}
        for probe in self.probes:
            for ref in probe.refs:
                if ref.kind == "target":
                    targets[ref.name] = resolve_target(processes, ref.name)
        health_needed: set[str] = set()
        for probe in self._of(HealthProbe):
            health_needed.update(targets.get(probe.target, []))
        routers = []
        if self._of(RouterProbe):
            routers = sorted(p.name for p in processes if p.role == "router")
        scrape: dict[str, list[MetricProbe]] = {}
        for probe in self._of(MetricProbe):
            names = (targets.get(probe.target, []) if probe.target
                     else [p.name for p in processes if p.health_url])
            for name in names:
                scrape.setdefault(name, []).append(probe)
        running = {name: proc for name, proc in by_name.items()
                   if not proc.paused and procs.alive(proc.pid, proc.started)}
        result = self.loop.run(self._collect(
            {n: running[n].health_url for n in health_needed | set(routers)
             if n in running and running[n].health_url},
            {n: f"{base_url(running[n])}/metrics" for n in scrape if n in running},
            next((f"{base_url(p)}/health" for p in processes if p.role == "sync"), None),
        ), timeout=self.timeout * 4 + 5)
        health_bodies, texts, sync_body = result
        now = time.monotonic()
        health = {}
        for name in health_needed:
            answer = health_bodies.get(name)
            if answer is None or answer[0] != 200 or not isinstance(answer[1], dict):
                health[name] = "down"
            else:
                health[name] = str(answer[1].get("status", "ok"))
        router_versions: dict[str, tuple[int | None, int | None]] = {}
        for name in routers:
            answer = health_bodies.get(name)
            body = answer[1] if answer is not None and isinstance(answer[1], dict) else {}
            raw_sync = body.get("sync")
            sync = raw_sync if isinstance(raw_sync, dict) else {}
            router_versions[name] = (_int(body.get("table_version")), _int(sync.get("lag")))
        sync_version = None
        if sync_body is not None and isinstance(sync_body[1], dict):
            sync_version = _int(sync_body[1].get("version"))
        self._record_metrics(scrape, texts)
        return Observation(
            now=now,
            outcomes=self.load.tap.since(now - self.keep) if self.load is not None else (),
            generations=list(self.load.generations) if self.load is not None else (),
            drains=list(self.drains),
            delivered=self._delivered(),
            log_rows=self._log_rows(),
            metrics={k: {s: list(v) for s, v in per.items()} for k, per in self._metrics.items()},
            health=health,
            sync_version=sync_version,
            routers=router_versions,
            targets=targets,
            errors=dict(self._metric_errors),
        )

    async def _collect(self, health_urls: dict[str, str], metric_urls: dict[str, str],
                       sync_url: str | None) -> tuple[dict[str, Any], dict[str, Any], Any]:
        names = list(health_urls)
        metric_names = list(metric_urls)
        jobs: list[Any] = [self._fetch_health(health_urls[n]) for n in names]
        jobs += [self._fetch_text(metric_urls[n]) for n in metric_names]
        jobs.append(self._fetch_health(sync_url) if sync_url and self._of(RouterProbe)
                    else asyncio.sleep(0, None))
        jobs += [self._read_feed(feed) for feed in self._feeds]
        done = await asyncio.gather(*jobs)
        health = dict(zip(names, done[:len(names)], strict=True))
        texts = dict(zip(metric_names, done[len(names):len(names) + len(metric_names)],
                         strict=True))
        return health, texts, done[len(names) + len(metric_names)]

    def _record_metrics(self, scrape: dict[str, list[MetricProbe]],
                        texts: dict[str, tuple[float, str | None]]) -> None:
        horizon = time.monotonic() - self.keep
        for service, probes in scrape.items():
            t, text = texts.get(service, (time.monotonic(), None))
            if text is None:
                for probe in probes:
                    self._metric_errors[metric_key(probe)] = f"{service}: /metrics did not answer"
                continue
            try:
                samples = _samples(text)
            except ValueError as exc:
                for probe in probes:
                    self._metric_errors[metric_key(probe)] = f"{service}: {exc}"
                continue
            for probe in probes:
                key = metric_key(probe)
                self._metric_errors.pop(key, None)
                wanted = probe.label_map
                matching = [value for labels, value in samples.get(probe.name, [])
                            if all(labels.get(k) == v for k, v in wanted.items())]
                value: float | None = float(sum(matching)) if matching else (
                    0.0 if is_counter(probe.name) else None)
                history = self._metrics.setdefault(key, {}).setdefault(service, deque())
                history.append((t, value))
                while len(history) > 2 and history[1][0] < horizon:
                    history.popleft()

    def _delivered(self) -> dict[str, dict[str, set[int]]]:
        """Per drain, the line numbers that arrived (shared, not copied: the feeds only
        change inside ``sample``; old numbers are pruned when the sets grow large)."""
        out: dict[str, dict[str, set[int]]] = {}
        cutoff = {g.run_id: g.due_range(time.monotonic() - self.keep - 2.0,
                                        time.monotonic()).start
                  for g in (self.load.generations if self.load is not None else [])}
        for feed in self._feeds:
            if not feed.delivery:
                continue
            for run, seqs in feed.delivered.items():
                if len(seqs) > MAX_SEQS and run in cutoff:
                    feed.delivered[run] = {s for s in seqs if s >= cutoff[run]}
            out[feed.drain] = feed.delivered
        return out

    def _log_rows(self) -> dict[tuple[str, str | None], list[tuple[float, str]]]:
        out: dict[tuple[str, str | None], list[tuple[float, str]]] = {}
        for probe in self._of(LogProbe):
            key = log_key(probe)
            if key in out:
                continue
            source, grep = key
            if source == "tail":
                out[key] = list(self._tail.rows) if self._tail is not None else []
                continue
            names = self.drains if source == "*" else [source.removeprefix("drain.")]
            rows: list[tuple[float, str]] = []
            for feed in self._feeds:
                if not feed.delivery and feed.drain in names and feed.grep == grep:
                    rows.extend(feed.rows)
            out[key] = sorted(rows)
        return out

    def feed_errors(self) -> list[str]:
        errors = [f.error for f in self._feeds if f.error]
        if self._tail is not None and self._tail.error:
            errors.append(self._tail.error)
        return errors


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
