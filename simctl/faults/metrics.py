"""The server's Prometheus metrics, named and labelled like Toxiproxy's
(docs/toxiproxy.md, "Metrics").

Bytes are added when a connection's link ends, not while data streams, as Toxiproxy does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

if TYPE_CHECKING:
    from simctl.faults.proxy import Proxy


class ProxyMetrics:
    def __init__(self, proxy_metrics: bool, runtime_metrics: bool) -> None:
        self.enabled = proxy_metrics or runtime_metrics
        self.proxy_metrics = proxy_metrics
        self.registry = CollectorRegistry()
        labels = ["direction", "listener", "proxy", "upstream"]
        self.received = Counter(
            "toxiproxy_proxy_received_bytes_total",
            "The number of bytes received from the client",
            labels,
            registry=self.registry,
        )
        self.sent = Counter(
            "toxiproxy_proxy_sent_bytes_total",
            "The number of bytes sent to the client",
            labels,
            registry=self.registry,
        )
        if runtime_metrics:
            process_collector.ProcessCollector(registry=self.registry)
            platform_collector.PlatformCollector(registry=self.registry)
            gc_collector.GCCollector(registry=self.registry)

    def add(self, proxy: Proxy, direction: str, received: int, sent: int) -> None:
        if not self.proxy_metrics:
            return
        labels = (direction, proxy.listen, proxy.name, proxy.upstream)
        self.received.labels(*labels).inc(received)
        self.sent.labels(*labels).inc(sent)

    def render(self) -> bytes:
        return generate_latest(self.registry)
