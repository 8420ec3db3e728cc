"""Hostile input to every service's operator endpoints: never a 5xx, never a dead service.

The five platform services run in this process on 127.0.0.1 (one set per test, shared
by its examples). Hypothesis sends each endpoint JSON of every shape (wrong types, huge
and non-finite numbers, unknown fields, deep nesting), bytes that are not JSON, and
path parameters and query strings of any text. Every answer must be below 500, an
error must say why on one line, and the service must answer its /health afterwards.
The router's own traffic port has its fuzzing in test_router_fuzz.py.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yarl import URL

from tests.integration.platform_services import Stack, platform_services

HOSTILE = settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])

# (method, path with {} for the fuzzed segment, or None) per service; GETs with queries too
ENDPOINTS: dict[str, list[tuple[str, str]]] = {
    "sync": [("POST", "/apps/{}"), ("DELETE", "/apps/{}"), ("POST", "/apps/{}/dynos"),
             ("POST", "/apps/web/dynos/{}"), ("POST", "/apps/{}/maintenance"),
             ("POST", "/poison"), ("GET", "/routes/stream?since={}")],
    "dyno": [("POST", "/control"), ("DELETE", "/control"), ("GET", "/control")],
    "logplex": [("POST", "/admin/rods/{}"), ("POST", "/admin/drains/{}"),
                ("GET", "/admin/drains/{}"), ("GET", "/tail?follow=0&app=web&n={}"),
                ("GET", "/tail?follow=0&app={}")],
    "router": [("POST", "/admin/flush"), ("POST", "/admin/resync"),
               ("POST", "/admin/keepalive"), ("GET", "/admin/logs?n={}")],
    "drain": [("POST", "/control"), ("DELETE", "/control"), ("DELETE", "/messages"),
              ("GET", "/messages?since={}&limit={}&grep={}"), ("GET", "/posts?since={}")],
}
# The names the endpoints look for, so that wrong types reach the checks behind them.
FIELDS = ["enabled", "state", "address", "dynos", "domains", "maintenance", "kind", "name",
          "behaviour", "status", "rate", "ms", "jitter", "length", "sent", "then", "path",
          "fraction", "seconds", "restart", "lines", "delay_ms", "fail_ratio"]
# Values that would hold the service or its host rather than test its checks
HEAVY = {"memory", "crash", "slow_boot", "hang"}

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(["up", "down", "crashed", "error", "close", "partial", "latency",
                              "json", "127.0.0.1:1", "web.1", "web", ""])
           | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5), max_leaves=12)
segments = st.sampled_from(["web", "web.1", "main", "deny_logs_ingress", "0", "-1",
                            "99999999999999999999", "%00", "..", ""]) | st.text(max_size=24)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),  # NaN and Infinity included
    st.binary(max_size=64),
    st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),  # nesting past recursion
    st.just(b'{"enabled": true, "enabled": false}'),
    st.just(b'"\\ud800"'),  # a lone surrogate
)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with platform_services() as services:
        yield services


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def base_of(stack: Stack, service: str) -> str:
    return stack.router.admin_url if service == "router" else getattr(stack, service).url


def heavy(body: bytes) -> bool:
    try:
        value: Any = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and (str(value.get("behaviour")) in HEAVY or any(
        isinstance(v, int | float) and v > 1000 for k, v in value.items()
        if k in ("delay_ms", "ms", "seconds", "length")))


async def hostile_request(http: aiohttp.ClientSession, stack: Stack, service: str,
                          endpoint: tuple[str, str], parts: list[str], body: bytes) -> None:
    method, template = endpoint
    quoted = [urllib.parse.quote(p, safe="") for p in parts]
    path = template.format(*quoted[:template.count("{}")])
    url = URL(base_of(stack, service) + path, encoded=True)
    data = body if method != "GET" else None
    async with http.request(method, url, data=data,
                            headers={"Content-Type": "application/json"}) as resp:
        # a good answer's body is not read: /routes/stream's goes on for ever
        text = await resp.text(errors="replace") if resp.status >= 400 else ""
        assert resp.status < 500, (method, path, body[:200], resp.status, text[:300])
        if resp.status >= 400 and resp.content_type == "application/json":
            error = json.loads(text)["error"]
            assert isinstance(error, str)
            assert error
            assert "\n" not in error
    async with http.get(base_of(stack, service) + "/health") as resp:
        assert resp.status in (200, 503)
        assert (await resp.json())["service"]
    # what an example may have set must not hold the next one up
    if service in ("dyno", "drain"):
        async with http.delete(base_of(stack, service) + "/control", json={}) as resp:
            assert resp.status == 200


def hostile_test(service: str):  # noqa: ANN201 - a decorated test
    @HOSTILE
    @given(endpoint=st.sampled_from(ENDPOINTS[service]),
           parts=st.lists(segments, min_size=3, max_size=3), body=bodies)
    async def test(stack: Stack, http: aiohttp.ClientSession, endpoint: tuple[str, str],
                   parts: list[str], body: bytes) -> None:
        assume(not heavy(body))
        await hostile_request(http, stack, service, endpoint, parts, body)

    return test


test_sync_admin_takes_hostile_input = hostile_test("sync")
test_dyno_control_takes_hostile_input = hostile_test("dyno")
test_logplex_admin_takes_hostile_input = hostile_test("logplex")
test_router_admin_takes_hostile_input = hostile_test("router")
test_drain_admin_takes_hostile_input = hostile_test("drain")


@pytest.mark.parametrize(("service", "path"), [
    ("sync", "/apps/web/maintenance"), ("dyno", "/control"),
    ("logplex", "/admin/rods/deny_tail_sessions"), ("router", "/admin/keepalive"),
    ("drain", "/control"),
])
async def test_deeply_nested_json_is_a_400(stack: Stack, http: aiohttp.ClientSession,
                                           service: str, path: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    async with http.post(base_of(stack, service) + path, data=body,
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        assert "\n" not in (await resp.json())["error"]
