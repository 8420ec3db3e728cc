"""Logplex's Prometheus metrics, one registry per service instance.

docs/platform.md, "Logplex metrics".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class LogplexMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "logplex_messages_received", "Messages accepted on POST /logs",
            registry=registry)
        self.truncated = Counter(
            "logplex_messages_truncated",
            "Messages cut to Logplex's 10,000-byte limit on POST /logs", registry=registry)
        self.rejected = Counter(
            "logplex_ingest_rejected", "POST /logs bodies refused, by reason",
            ["reason"], registry=registry)
        self.delivered = Counter(
            "logplex_drain_delivered", "Messages a drain accepted (2xx)",
            ["drain"], registry=registry)
        self.dropped = Counter(
            "logplex_drain_dropped",
            "Messages a drain lost (buffer overflow or dropped frame), reported by L10",
            ["drain"], registry=registry)
        self.failed_frames = Counter(
            "logplex_drain_failed_frames",
            "Frames dropped: permanent failure (4xx) or retries exhausted",
            ["drain"], registry=registry)
        self.buffered = Gauge(
            "logplex_drain_buffer_messages", "Messages waiting in a drain's buffer",
            ["drain"], registry=registry)
        self.rod_active = Gauge(
            "logplex_control_rod_active", "1 while a control rod is enabled",
            ["rod"], registry=registry)
        self.tail_sessions = Gauge(
            "logplex_tail_sessions", "Open tail sessions", registry=registry)
        self.tail_dropped = Counter(
            "logplex_tail_dropped", "Messages tail sessions dropped (L11)",
            registry=registry)
