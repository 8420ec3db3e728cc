"""The panels both views show, each a title, a unit and its PromQL, defined once here.

Queries use only metrics the services document in docs/architecture.md, so they work on the
stack's monitor and on a real Prometheus scraping the same targets. `{w}` is the rate
window (a few scrape intervals: 10s on `--timing fast`, 30s on `heroku`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    name: str  # legend, prefixed to the labels left after aggregation
    expr: str


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    unit: str  # "", "req/s", "%", "ms", "/min", "msg/s", "s"
    queries: tuple[Query, ...]
    scale: float = 1.0  # applied to every value (ratio -> %, seconds -> ms)

    def exprs(self, window: str) -> list[tuple[str, str]]:
        return [(q.name, q.expr.replace("{w}", window)) for q in self.queries]


HEALTH = Panel("health", "Service health (up)", "", (Query("up", "up"),))

CHARTS: tuple[Panel, ...] = (
    Panel("requests", "Request rate", "req/s", (
        Query("requests", "sum(rate(router_requests_total[{w}]))"),
    )),
    Panel("success", "Success ratio (not 5xx)", "%", (
        Query("success", 'sum(rate(router_requests_total{status!~"5.."}[{w}]))'
                         " / sum(rate(router_requests_total[{w}]))"),
    ), scale=100.0),
    Panel("latency", "Router latency", "ms", (
        Query("p50", "histogram_quantile(0.5, sum by (le) "
                     "(rate(router_request_duration_seconds_bucket[{w}])))"),
        Query("p99", "histogram_quantile(0.99, sum by (le) "
                     "(rate(router_request_duration_seconds_bucket[{w}])))"),
    ), scale=1000.0),
    Panel("hcodes", "H-codes per minute", "/min", (
        Query("", 'sum by (code) (rate(router_requests_total{code!="none"}[{w}])) * 60'),
    )),
    Panel("drains", "Drain delivery and drops", "msg/s", (
        Query("delivered", "sum by (drain) (rate(logplex_drain_delivered_total[{w}]))"),
        Query("dropped", "sum by (drain) (rate(logplex_drain_dropped_total[{w}]))"),
    )),
    Panel("sync", "Sync lag and stream state", "", (
        Query("lag", "max by (instance) (router_sync_lag)"),
        Query("connected", "max by (instance) (router_sync_connected)"),
    )),
)

PANELS: dict[str, Panel] = {p.key: p for p in (HEALTH, *CHARTS)}


def window_for(timing: str | None) -> str:
    """The rate window for a stack's timing profile (monitor scrapes 1 s fast, 5 s heroku)."""
    return "10s" if timing == "fast" else "30s"


def legend(name: str, labels: dict[str, str]) -> str:
    """`p99`, `delivered main`, `H12`: the query's name, then what is left of the labels."""
    rest = [v for k, v in sorted(labels.items()) if k != "__name__"]
    return " ".join([name, *rest]).strip() or "value"
