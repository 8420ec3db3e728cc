"""A small async client for Prometheus's HTTP API v1 (the stack's monitor or a real Prometheus).

Only the calls the views make: instant and range queries, alerts, targets. Answers keep
Prometheus's JSON shapes (docs/dashboards.md); values come back as floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from simctl.errors import InvalidInput, MonitorUnreachable, SimctlError


class PromUnreachable(MonitorUnreachable):
    """No Prometheus API answered at the URL (refused or timed out): exit 7."""


class PromQueryError(SimctlError):
    """The API answered with an error (a bad expression, a 4xx/5xx)."""


@dataclass
class Series:
    """One labelled series: [(unix time, value)] oldest first (one point for an instant query)."""

    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


def check_url(url: str) -> str:
    """The URL without a trailing slash, or InvalidInput when it is not http(s)://host[:port]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"invalid Prometheus URL {url!r}: expected http(s)://HOST[:PORT]")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput(f"invalid Prometheus URL {url!r}: bad port") from None
    return url.rstrip("/")


def _number(raw: str) -> float:
    return float(raw)  # Prometheus sends values as strings, "NaN" and "+Inf" included


def reason_of(exc: BaseException) -> str:
    """'connection refused', 'timed out', or the error's own words."""
    cause = getattr(exc, "os_error", exc)
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(cause, "strerror", None) or str(cause) or type(cause).__name__


def _series(result: list[dict[str, Any]]) -> list[Series]:
    out = []
    for item in result:
        if "values" in item:
            points = [(float(t), _number(v)) for t, v in item["values"]]
        else:
            t, v = item["value"]
            points = [(float(t), _number(v))]
        out.append(Series(labels=dict(item.get("metric", {})), points=points))
    return out


class PromClient:
    """`async with PromClient(url) as prom:` then `await prom.query(...)` and friends."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = check_url(url)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PromClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.url}{path}"
        try:
            async with self._session.get(url, params=params) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PromUnreachable(f"cannot reach the Prometheus API at {self.url}: "
                                  f"{reason_of(exc)}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else f"HTTP {resp.status}"
            raise PromQueryError(f"{path}: {detail}")
        return body.get("data")

    async def query(self, expr: str, at: float | None = None) -> list[Series]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._get("/api/v1/query", params)
        if data.get("resultType") == "scalar":
            t, v = data["result"]
            return [Series(labels={}, points=[(float(t), _number(v))])]
        return _series(data.get("result", []))

    async def query_range(self, expr: str, start: float, end: float,
                          step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                  "step": f"{step:g}"}
        data = await self._get("/api/v1/query_range", params)
        return _series(data.get("result", []))

    async def alerts(self) -> list[dict[str, Any]]:
        data = await self._get("/api/v1/alerts")
        return list(data.get("alerts", []))

    async def probe(self) -> None:
        """MonitorUnreachable unless the URL answers as a Prometheus API (checked at start)."""
        try:
            await self.query("up")
        except PromQueryError as exc:
            raise MonitorUnreachable(f"no Prometheus API at {self.url}: {exc}") from None

    async def targets(self) -> list[dict[str, Any]]:
        data = await self._get("/api/v1/targets")
        return list(data.get("activeTargets", []))


def finite(value: float | None) -> float | None:
    """None for NaN and infinities, which charts and JSON cannot show."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return value
