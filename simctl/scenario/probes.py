"""Evaluating probes: pure functions from what was observed to "holds" or "does not hold".

Nothing here does I/O: ``simctl.scenario.observe`` gathers an ``Observation`` (HTTP
outcomes from the load tap, drain and tail lines, metric samples, health and route
table versions), and ``evaluate(probe, observation, window)`` reads it. That keeps the
semantics of docs/scenarios.md ("When a probe holds") in one place, testable without
sockets:

- ratios, rates and percentiles: over the requests that *finished* in the window;
- counts (``http.count``, ``log ... count``): within the window;
- counters (metric names ending in ``_total``): the increase within the window, counter
  resets (a restarted service) counted as starting from zero; other metrics: the
  current value, summed over the services that expose it;
- ``health``, ``router.version_lag``: current values.

The window is the last ``width`` seconds (5 s), clamped to the start of the current
phase so that what happened before a phase is not counted in it ("counted since the
phase began"; the engine passes the load start for the steady state, t = 0 for the
symptoms, the first fault for abort, the start of mitigation for recovery). Ratios,
rates and percentiles look back at least ``min_span`` (1 s) even at the very start of a
phase, so that they are never computed from a handful of requests; counts and counter
increases never look before the phase start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simctl.scenario.expressions import (
    HealthProbe,
    HttpProbe,
    LogProbe,
    LogsProbe,
    MetricProbe,
    Probe,
    RouterProbe,
)
from simctl.scenario.traffic import RESPONSE, LogGeneration, Outcome

WINDOW = 5.0
MIN_SPAN = 1.0
DELIVERY_DELAY = 1.0  # log lines due in the last second may still be on their way


@dataclass(frozen=True)
class Window:
    """Where windowed measures look: ``[start, now]`` for counts and counter increases,
    ``[ratio_start, now]`` for ratios, rates and percentiles."""

    now: float
    start: float
    ratio_start: float

    @classmethod
    def at(cls, now: float, phase_start: float, width: float = WINDOW,
           min_span: float = MIN_SPAN) -> Window:
        start = max(now - width, phase_start)
        ratio_start = max(now - width, min(phase_start, now - min_span))
        return cls(now, min(start, now), ratio_start)

    @property
    def ratio_span(self) -> float:
        return self.now - self.ratio_start


@dataclass(frozen=True)
class Reading:
    """One evaluation of one probe."""

    probe: Probe
    holds: bool
    value: float | str | None
    note: str = ""  # why there is no value, e.g. "no requests finished in the window"

    def describe(self) -> str:
        if self.value is None:
            return f"{self.probe.text}: {self.note or 'no value'}"
        return f"{self.probe.text}: value {format_value(self.value)}"


def format_value(value: float | str | None) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return f"{value:.4g}"


@dataclass
class Observation:
    """Everything probes read, as seen at monotonic time ``now``.

    - ``outcomes``: HTTP requests of the load, most recent ones (``HttpTap.since``);
    - ``generations`` / ``delivered``: log lines of the load, and per drain the
      ``(run_id, seq)`` of those that arrived;
    - ``log_rows``: per log key (``log_key(probe)``), ``(time, line)`` of matching lines;
    - ``metrics``: per metric key (``metric_key(probe)``), per service, the history of
      ``(time, value or None)`` where None means the service exposes no such sample;
    - ``health``: per service, ``ok``, ``degraded`` or ``down``;
    - ``sync_version`` and ``routers`` (per router: applied table version, and the lag it
      reports itself, used when sync cannot be reached);
    - ``targets``: per probe target, the services it names.
    """

    now: float
    outcomes: Sequence[Outcome] = ()
    generations: Sequence[LogGeneration] = ()
    drains: Sequence[str] = ()
    delivered: Mapping[str, Mapping[str, set[int]]] = field(default_factory=dict)
    log_rows: Mapping[tuple[str, str | None], Sequence[tuple[float, str]]] = field(
        default_factory=dict)
    metrics: Mapping[str, Mapping[str, Sequence[tuple[float, float | None]]]] = field(
        default_factory=dict)
    health: Mapping[str, str] = field(default_factory=dict)
    sync_version: int | None = None
    routers: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)
    targets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)  # what could not be observed


# -- keys shared with observe ---------------------------------------------------------------


def log_key(probe: LogProbe) -> tuple[str, str | None]:
    """(source, server-side grep): ``("*", ...)`` is any drain, ``("tail", None)`` the tail."""
    source = probe.source or "*"
    if source == "tail":
        return (source, None)
    return (source, None if probe.regex else probe.pattern)


def metric_key(probe: MetricProbe) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(probe.labels))
    return f"{probe.name}{{{labels}}}@{probe.target or '*'}"


def is_counter(name: str) -> bool:
    return name.endswith("_total")


# -- evaluation -----------------------------------------------------------------------------


def evaluate(probe: Probe, obs: Observation, window: Window) -> Reading:
    if isinstance(probe, HttpProbe):
        value, note = http_value(probe, obs.outcomes, window)
        return _compare(probe, probe.compare.test, value, note)
    if isinstance(probe, LogsProbe):
        value, note = delivery_ratio(probe, obs, window)
        return _compare(probe, probe.compare.test, value, note)
    if isinstance(probe, MetricProbe):
        value, note = metric_value(probe, obs.metrics.get(metric_key(probe), {}), window)
        if value is None and obs.errors.get(metric_key(probe)):
            note = obs.errors[metric_key(probe)]
        return _compare(probe, probe.compare.test, value, note)
    if isinstance(probe, LogProbe):
        count = log_count(probe, obs.log_rows.get(log_key(probe), ()), window)
        return _compare(probe, probe.count.test, float(count), "")
    if isinstance(probe, HealthProbe):
        return health_reading(probe, obs)
    if isinstance(probe, RouterProbe):
        value, note = version_lag(probe, obs)
        return _compare(probe, probe.compare.test, value, note)
    raise TypeError(f"unknown probe {probe!r}")  # pragma: no cover


def _compare(probe: Probe, test: Any, value: float | None, note: str) -> Reading:
    if value is None:
        return Reading(probe, False, None, note)
    return Reading(probe, bool(test(value)), value, note)


def http_value(probe: HttpProbe, outcomes: Iterable[Outcome], window: Window
               ) -> tuple[float | None, str]:
    q = probe.quantity
    labels = probe.label_map
    if "router" in labels:  # one of the load's routers (docs/scenarios.md, "Load")
        outcomes = [o for o in outcomes if o.router == labels["router"]]
    if q == "count":
        status = labels.get("status")
        code = labels.get("code")
        count = 0
        for o in outcomes:
            if o.kind != RESPONSE or not window.start <= o.t <= window.now:
                continue
            if status is not None and str(o.status) != status:
                continue
            if code is not None and o.code != code:
                continue
            count += 1
        return float(count), ""
    finished = [o for o in outcomes if window.ratio_start <= o.t <= window.now]
    if q == "rate":
        span = window.ratio_span
        responses = sum(1 for o in finished if o.kind == RESPONSE)
        return (responses / span if span > 0 else None), "" if span > 0 else "empty window"
    if not finished:
        return None, "no requests finished in the window"
    if q in ("success_ratio", "error_ratio"):
        ok = sum(1 for o in finished if o.ok) / len(finished)
        return (ok if q == "success_ratio" else 1.0 - ok), ""
    latencies = sorted(o.latency_ms for o in finished
                       if o.kind == RESPONSE and o.latency_ms is not None)
    if not latencies:
        return None, "no responses in the window"
    if q == "max_ms":
        return latencies[-1], ""
    if q == "mean_ms":
        return sum(latencies) / len(latencies), ""
    percent = {"p50_ms": 50, "p90_ms": 90, "p99_ms": 99}[q]
    return percentile(latencies, percent), ""


def percentile(ordered: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list (as HdrHistogram reports them)."""
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def delivery_ratio(probe: LogsProbe, obs: Observation, window: Window
                   ) -> tuple[float | None, str]:
    """Lines of the load due in the window (shifted back by DELIVERY_DELAY) that reached
    the drain(s): one drain with ``{drain="x"}``, else every drain of the app."""
    wanted = probe.label_map.get("drain")
    drains = [wanted] if wanted else list(obs.drains)
    if not drains:
        return None, "no drains"
    start = window.ratio_start - DELIVERY_DELAY
    stop = window.now - DELIVERY_DELAY
    expected = delivered = 0
    for gen in obs.generations:
        seqs = gen.due_range(start, stop)
        if not len(seqs):
            continue
        for drain in drains:
            got = obs.delivered.get(drain, {}).get(gen.run_id, set())
            expected += len(seqs)
            delivered += len(got.intersection(seqs))
    if not expected:
        return None, "no log lines of the load were due in the window"
    return delivered / expected, ""


def counter_increase(points: Sequence[tuple[float, float | None]], start: float, now: float
                     ) -> float | None:
    """Increase of one service's counter over [start, now]; a drop is a reset to 0."""
    usable = [(t, v) for t, v in points if t <= now and v is not None]
    if not usable:
        return None
    base = 0
    for i, (t, _) in enumerate(usable):
        if t <= start:
            base = i
        else:
            break
    total = 0.0
    prev = usable[base][1]
    assert prev is not None
    for _, value in usable[base + 1:]:
        assert value is not None
        total += value - prev if value >= prev else value
        prev = value
    return total


def metric_value(probe: MetricProbe, per_service: Mapping[str, Sequence[tuple[float,
                 float | None]]], window: Window) -> tuple[float | None, str]:
    if not per_service:
        return None, "no service answered with this metric"
    if is_counter(probe.name):
        values = [counter_increase(points, window.start, window.now)
                  for points in per_service.values()]
        found = [v for v in values if v is not None]
        if not found:
            return None, "no service exposes this metric"
        return sum(found), ""
    current = []
    for points in per_service.values():
        if points and points[-1][1] is not None:
            current.append(points[-1][1])
    if not current:
        return None, "no service exposes this metric"
    return float(sum(current)), ""


def log_count(probe: LogProbe, rows: Iterable[tuple[float, str]], window: Window) -> int:
    return sum(1 for t, line in rows if window.start <= t <= window.now and probe.matches(line))


def health_reading(probe: HealthProbe, obs: Observation) -> Reading:
    services = list(obs.targets.get(probe.target, ()))
    if not services:
        return Reading(probe, False, None, f"no service runs {probe.target}")
    states = {name: obs.health.get(name, "down") for name in services}
    shown = ", ".join(f"{name}={state}" for name, state in sorted(states.items()))
    return Reading(probe, all(s == probe.status for s in states.values()), shown)


def version_lag(probe: RouterProbe, obs: Observation) -> tuple[float | None, str]:
    names = list(obs.targets.get(probe.target, ())) if probe.target else list(obs.routers)
    lags = []
    for name in names:
        applied, own = obs.routers.get(name, (None, None))
        if obs.sync_version is not None and applied is not None:
            lags.append(max(0, obs.sync_version - applied))
        elif own is not None:
            lags.append(own)
    if not lags:
        return None, "no router reported its table version"
    return float(max(lags)), ""
