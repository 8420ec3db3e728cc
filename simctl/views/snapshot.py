"""One refresh of every panel, fetched concurrently: what both views draw.

`collect()` never raises for a failing source: each failure becomes a line in `errors`,
so a view keeps showing what it could read (a dead router, an unreachable monitor).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from simctl.errors import SimctlError
from simctl.views.panels import CHARTS, HEALTH, Panel, legend
from simctl.views.prom_client import PromClient, finite, reason_of

LOG_LINES = 100


@dataclass
class ChartSeries:
    name: str
    points: list[tuple[float, float | None]]

    @property
    def last(self) -> float | None:
        """The newest point's value (None when it is undefined, e.g. a ratio with no traffic)."""
        return self.points[-1][1] if self.points else None


@dataclass
class Chart:
    key: str
    title: str
    unit: str
    series: list[ChartSeries] = field(default_factory=list)


@dataclass
class Target:
    job: str
    instance: str
    up: bool


@dataclass
class Alert:
    name: str
    state: str  # firing | pending
    severity: str
    summary: str
    runbook: str
    since: str  # activeAt, ISO 8601
    value: str
    labels: str = ""  # the rest, e.g. "instance=web.1 job=dyno": which one of several


@dataclass
class LogLine:
    router: str
    line: str


@dataclass
class Snapshot:
    at: float
    source: str
    window: str
    span: float
    health: list[Target] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def chart(self, key: str) -> Chart:
        return next(c for c in self.charts if c.key == key)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]

    def firing_names(self) -> list[str]:
        """Each firing alert once, with how many series fire it: `LogShuttleLosing x3`."""
        counts: dict[str, int] = {}
        for alert in self.firing:
            counts[alert.name] = counts.get(alert.name, 0) + 1
        return [name if n == 1 else f"{name} x{n}" for name, n in counts.items()]


async def _health(prom: PromClient) -> list[Target]:
    series = await prom.query(HEALTH.queries[0].expr)
    targets = [Target(s.labels.get("job", ""), s.labels.get("instance", ""), s.last == 1)
               for s in series]
    return sorted(targets, key=lambda t: (t.job, t.instance))


def _alert(raw: dict[str, Any]) -> Alert:
    labels, notes = raw.get("labels", {}), raw.get("annotations", {})
    return Alert(name=labels.get("alertname", "?"), state=raw.get("state", "?"),
                 severity=labels.get("severity", ""), summary=notes.get("summary", ""),
                 runbook=notes.get("runbook", labels.get("runbook", "")),
                 since=str(raw.get("activeAt", "")), value=str(raw.get("value", "")),
                 labels=" ".join(f"{k}={v}" for k, v in sorted(labels.items())
                                 if k not in ("alertname", "severity")))


async def _alerts(prom: PromClient) -> list[Alert]:
    alerts = [_alert(a) for a in await prom.alerts() if a.get("state") != "inactive"]
    return sorted(alerts, key=lambda a: (a.state != "firing", a.name, a.labels))


async def _router_logs(session: aiohttp.ClientSession, router: str, url: str) -> list[LogLine]:
    try:
        async with session.get(f"{url}/admin/logs", params={"n": str(LOG_LINES)}) as resp:
            resp.raise_for_status()
            body = await resp.json()
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise SimctlError(f"{router} logs: {reason_of(exc)}") from None
    return [LogLine(router, str(item.get("line", ""))) for item in body if isinstance(item, dict)]


class Collector:
    """Holds the HTTP sessions and the charts' points between refreshes.

    Charts are fetched incrementally: points sit on a grid of `step` seconds, and a refresh
    asks only for the grid points since the previous one (the newest again, as it may have
    been evaluated before its last scrape landed), so a refresh costs the API a few
    evaluations per query instead of `span / step`.
    """

    def __init__(self, prometheus_url: str, routers: dict[str, str], window: str,
                 span: float = 300.0, points: int = 300, timeout: float = 3.0) -> None:
        self.prom = PromClient(prometheus_url, timeout=timeout)
        self.routers = dict(routers)
        self.window = window
        self.span = span
        self.step = max(1.0, round(span / points))
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._points: dict[str, dict[str, dict[float, float | None]]] = {}  # panel, legend
        self._fetched_to: dict[str, float] = {}

    async def _chart(self, panel: Panel, end: float) -> Chart:
        history = self._points.setdefault(panel.key, {})
        start = end - self.span
        since = self._fetched_to.get(panel.key, start)
        since = start if since < start else since
        for name, expr in panel.exprs(self.window):
            for series in await self.prom.query_range(expr, since, end, self.step):
                points = history.setdefault(legend(name, series.labels), {})
                for t, v in series.points:
                    points[t] = None if finite(v) is None else v * panel.scale
        self._fetched_to[panel.key] = end
        return self._kept(panel, end)

    def _kept(self, panel: Panel, end: float) -> Chart:
        """The panel's points within the span, as held (also when the API stopped answering)."""
        history = self._points.setdefault(panel.key, {})
        start = end - self.span
        chart = Chart(panel.key, panel.title, panel.unit)
        for key in sorted(history):
            kept = {t: v for t, v in history[key].items() if t >= start}
            if kept:
                history[key] = kept
                chart.series.append(ChartSeries(key, sorted(kept.items())))
            else:
                del history[key]
        return chart

    async def close(self) -> None:
        await self.prom.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _held(self, panel: Panel, end: float) -> Chart:
        return self._kept(panel, end)

    async def collect(self, now: float | None = None, charts: set[str] | None = None,
                      logs: bool = True) -> Snapshot:
        """Every panel; or only the `charts` named (the others as held) and no logs."""
        at = time.time() if now is None else now
        end = at // self.step * self.step  # on the grid, so refreshes reuse earlier points
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        jobs: list[Any] = [_health(self.prom), _alerts(self.prom)]
        jobs += [self._chart(p, end) if charts is None or p.key in charts else self._held(p, end)
                 for p in CHARTS]
        if logs:
            jobs += [_router_logs(self._session, r, u) for r, u in sorted(self.routers.items())]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        snap = Snapshot(at=at, source=self.prom.url, window=self.window, span=self.span)
        for index, result in enumerate(results):
            if isinstance(result, SimctlError):
                if str(result) not in snap.errors:
                    snap.errors.append(str(result))
                if 2 <= index < 2 + len(CHARTS):  # keep the panel with what it held
                    snap.charts.append(self._kept(CHARTS[index - 2], end))
                continue
            if isinstance(result, BaseException):
                raise result
            if index == 0:
                snap.health = result
            elif index == 1:
                snap.alerts = result
            elif index < 2 + len(CHARTS):
                snap.charts.append(result)
            else:
                snap.logs.extend(result)
        return snap


def since_text(iso: str, now: float) -> str:
    """'42s', '3m10s' since an activeAt timestamp ('' when it cannot be read)."""
    try:
        started = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return ""
    seconds = max(0, int(now - started))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
