"""The dyno's Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from simctl.platform.dyno.behaviour import NAMES
from simctl.platform.shipper import LogShipper, ShipperCollector, ShipperStats


class _ShipperCollector(Collector):
    """dyno_log_*_total from the shipper's own counters, read at scrape time."""

    def __init__(self, stats: Callable[[], ShipperStats | None]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        for name, doc, attr in (
            ("dyno_log_emitted", "Log lines the app printed", "emitted"),
            ("dyno_log_sent", "Log lines delivered to logplex", "sent"),
            ("dyno_log_dropped", "Log lines dropped, back-buffer full (L12)", "dropped"),
            ("dyno_log_lost", "Log lines lost, delivery failed (L13)", "lost"),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], getattr(stats, attr) if stats else 0)
            yield family


class DynoMetrics:
    def __init__(self, registry: CollectorRegistry, *,
                 shipper_stats: Callable[[], ShipperStats | None],
                 shippers: Callable[[], list[LogShipper]] = list,
                 memory_held: Callable[[], float], in_flight: Callable[[], float]) -> None:
        self._requests = Counter("dyno_requests", "Requests by outcome: an HTTP status, or "
                                 "closed, hung, partial", ["status"], registry=registry)
        # read at scrape time: two locked gauge updates per request cost more than a request
        Gauge("dyno_in_flight", "Requests being handled",
              registry=registry).set_function(in_flight)
        self._behaviour = Gauge("dyno_behaviour", "1 for the active behaviour", ["behaviour"],
                                registry=registry)
        for name in NAMES:
            self._behaviour.labels(name).set(1 if name == "normal" else 0)
        self.up = Gauge("dyno_up", "1 once the app is up (booted)", registry=registry)
        Gauge("dyno_memory_held_bytes", "Memory held by the memory behaviour",
              registry=registry).set_function(memory_held)
        registry.register(_ShipperCollector(shipper_stats))
        registry.register(ShipperCollector(shippers))
        self._by_status: dict[str, Any] = {}

    def count(self, status: int | str) -> None:
        key = str(status)
        child = self._by_status.get(key)
        if child is None:
            child = self._by_status[key] = self._requests.labels(key)
        child.inc()

    def behaviour(self, old: str, new: str) -> None:
        self._behaviour.labels(old).set(0)
        self._behaviour.labels(new).set(1)
