"""The router's Prometheus metrics.

Hot-path metrics (requests, durations) are updated per request through cached children;
the rest (backlog, quarantine, log drops, connections) are read from the router's state
when /metrics is scraped, so they cost nothing per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0)
TLS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class _StateCollector:
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        state = self._read()
        backlog = GaugeMetricFamily("router_backlog", "Requests queued for a dyno slot, by app",
                                    labels=["app"])
        for app, depth in sorted(state["backlog"].items()):
            backlog.add_metric([app], depth)
        yield backlog
        quarantined = GaugeMetricFamily(
            "router_quarantined", "Dynos quarantined by this router (1 while quarantined)",
            labels=["dyno"])
        for dyno, count in sorted(state["quarantined"].items()):
            quarantined.add_metric([dyno], count)
        yield quarantined
        yield CounterMetricFamily("router_log_dropped", "Router log lines dropped: buffer full",
                                  value=state["log_dropped"])
        yield CounterMetricFamily("router_log_lost", "Router log lines logplex never accepted",
                                  value=state["log_lost"])
        yield GaugeMetricFamily("router_connections", "Open client connections",
                                value=state["connections"])
        accepted = CounterMetricFamily(
            "router_connections_accepted",
            "Client connections accepted (HTTPS: with the TLS handshake done), by scheme",
            labels=["scheme"])
        for scheme, count in sorted(state["accepted"].items()):
            accepted.add_metric([scheme], count)
        yield accepted
        yield CounterMetricFamily(
            "router_tls_handshakes_started",
            "TLS handshakes begun (TCP connections accepted on the HTTPS port)",
            value=state["tls_started"])
        yield GaugeMetricFamily("router_inflight", "Requests holding a dyno slot",
                                value=state["inflight"])


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry, read_state: Callable[[], dict[str, Any]]):
        self.requests = Counter("router_requests", "Requests by H-code ('none' when the dyno "
                                "answered) and status", ["code", "status"], registry=registry)
        self.duration = Histogram("router_request_duration_seconds",
                                  "Time from request head to the end of the response",
                                  buckets=BUCKETS, registry=registry)
        self.tls_handshake = Histogram(
            "router_tls_handshake_seconds",
            "Time from TCP accept to a completed TLS handshake (failed ones are not observed)",
            buckets=TLS_BUCKETS, registry=registry)
        self.sync_errors = Counter("router_sync_errors", "Malformed sync records met",
                                   registry=registry)
        self.sync_lag = Gauge("router_sync_lag", "Sync version minus the applied table version",
                              registry=registry)
        self.table_version = Gauge("router_route_table_version",
                                   "Version of the route table in use (-1: none)",
                                   registry=registry)
        self.table_version.set(-1)
        self.sync_connected = Gauge("router_sync_connected", "1 while the sync stream is open",
                                    registry=registry)
        registry.register(_StateCollector(read_state))
        self._children: dict[tuple[str, int], Any] = {}
        self._observe = self.duration.observe

    def request(self, code: str, status: int, seconds: float) -> None:
        child = self._children.get((code, status))
        if child is None:
            child = self._children[(code, status)] = self.requests.labels(code, str(status))
        child.inc()
        self._observe(seconds)
