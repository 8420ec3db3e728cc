"""POST /logs against a real logplex: auth, content type, malformed bodies, counters, rods."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex import LogplexService
from simctl.platform.timing import FAST

AUTH = "Basic " + base64.b64encode(b"token:t.web").decode()


def body_of(*texts: str, app: str = "app", proc: str = "web.1") -> bytes:
    return logframe.encode_many(
        [LogMessage(app, proc, t, logframe.now_rfc5424()) for t in texts])


async def metric(http: aiohttp.ClientSession, url: str, name: str, **labels: str) -> float:
    text = await (await http.get(url + "/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
async def logplex() -> AsyncIterator[LogplexService]:
    async with LogplexService(FAST) as service:
        yield service  # type: ignore[misc]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: bytes | io.BytesIO,
               **headers: str) -> int:
    headers = {"Authorization": AUTH, "Content-Type": logframe.CONTENT_TYPE, **headers}
    async with http.post(url + "/logs", data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def test_good_body_is_accepted(logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    assert await post(http, logplex.url, body_of("one", "two"), **{"Logplex-Msg-Count": "2"}) == 204
    assert await metric(http, logplex.url, "logplex_messages_received_total") == 2
    channels = await (await http.get(logplex.url + "/admin/channels")).json()
    assert channels == {"channels": [
        {"app": "web", "history": 2, "drains": [], "tail_sessions": 0}]}
    history = logplex.channels["web"].history
    assert [m.text for m in history] == ["one", "two"]


async def test_legacy_content_type_is_accepted(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    status = await post(http, logplex.url, body_of("x"),
                        **{"Content-Type": "application/x-logplex-1"})
    assert status == 204


@pytest.mark.parametrize(("headers", "status", "reason"), [
    ({"Authorization": ""}, 401, "auth"),
    ({"Authorization": "Basic " + base64.b64encode(b"token:nope").decode()}, 401, "auth"),
    ({"Content-Type": "text/plain"}, 415, "content_type"),
    ({"Logplex-Msg-Count": "3"}, 400, "msg_count"),
    ({"Logplex-Msg-Count": "two"}, 400, "msg_count"),
])
async def test_refused_requests_are_counted(
        logplex: LogplexService, http: aiohttp.ClientSession,
        headers: dict[str, str], status: int, reason: str) -> None:
    assert await post(http, logplex.url, body_of("a", "b"), **headers) == status
    assert await metric(http, logplex.url, "logplex_ingest_rejected_total", reason=reason) == 1
    assert await metric(http, logplex.url, "logplex_messages_received_total") == 0


async def test_missing_auth_asks_for_basic(
        logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    async with http.post(logplex.url + "/logs", data=body_of("a")) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("body", [b"", b"garbage", b"10 <134>1 x", body_of("ok") + b"7 broken"])
async def test_malformed_body_is_400_and_counted(
        logplex: LogplexService, http: aiohttp.ClientSession, body: bytes) -> None:
    async with http.post(logplex.url + "/logs", data=body, headers={
            "Authorization": AUTH, "Content-Type": logframe.CONTENT_TYPE}) as resp:
        assert resp.status == 400
        assert "Malformed log messages" in await resp.text()
    assert await metric(http, logplex.url, "logplex_ingest_rejected_total", reason="malformed") == 1
    assert not logplex.channels  # nothing of a rejected body gets through


async def test_oversized_body_is_413(logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    big = io.BytesIO(body_of(*(["x" * 9000] * 1000)))  # 9 MB, over the 8 MB limit
    assert await post(http, logplex.url, big) == 413
    assert await metric(http, logplex.url, "logplex_ingest_rejected_total", reason="too_large") == 1


async def test_deny_logs_ingress_rod(logplex: LogplexService, http: aiohttp.ClientSession) -> None:
    async with http.post(logplex.url + "/admin/rods/deny_logs_ingress",
                         json={"enabled": True}) as resp:
        assert resp.status == 200
    assert await post(http, logplex.url, body_of("a")) == 503
    health = await (await http.get(logplex.url + "/health")).json()
    assert health["status"] == "degraded"
    assert "deny_logs_ingress" in health["reason"]
    assert await metric(http, logplex.url, "logplex_control_rod_active",
                        rod="deny_logs_ingress") == 1
    await http.post(logplex.url + "/admin/rods/deny_logs_ingress", json={"enabled": False})
    assert await post(http, logplex.url, body_of("a")) == 204
    assert (await (await http.get(logplex.url + "/health")).json())["status"] == "ok"


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/admin/rods/deny_everything", {"enabled": True}, 404),
    ("/admin/rods/deny_tail_sessions", {"enabled": "yes"}, 400),
    ("/admin/rods/deny_tail_sessions", {"enabled": True, "extra": 1}, 400),
    ("/admin/rods/deny_tail_sessions", [True], 400),
    ("/admin/drains/nope", {"enabled": False}, 404),
])
async def test_bad_admin_calls(logplex: LogplexService, http: aiohttp.ClientSession,
                               path: str, body: object, status: int) -> None:
    async with http.post(logplex.url + path, json=body) as resp:
        assert resp.status == status
        assert "error" in await resp.json()
    async with http.post(logplex.url + "/admin/rods/deny_tail_sessions", data=b"{",
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
    rods = await (await http.get(logplex.url + "/admin/rods")).json()
    assert rods == {"rods": {"deny_drain_forwarding": False, "deny_tail_sessions": False,
                             "deny_logs_ingress": False}}


garbage = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([b"12 ", b"<134>1 ", b"ts host app web.1 - - ", b"\x00", b"99999 ",
                              b"<999>1 ", body_of("fine")]), max_size=12).map(b"".join),
    st.tuples(st.binary(max_size=40), st.integers(0, 60)).map(
        lambda t: body_of("a", "b")[:t[1]] + t[0]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=garbage, headers=st.fixed_dictionaries({}, optional={
    "Logplex-Msg-Count": st.text(max_size=5), "Content-Type": st.sampled_from(
        [logframe.CONTENT_TYPE, "text/plain", ""])}))
async def test_garbage_flood_never_breaks_the_service(
        logplex: LogplexService, http: aiohttp.ClientSession,
        body: bytes, headers: dict[str, str]) -> None:
    # One service takes every example: after the flood it must still answer properly.
    headers = {k: v for k, v in headers.items() if v.isprintable()}
    status = await post(http, logplex.url, body, **headers)
    assert status in (204, 400, 415)
    assert await post(http, logplex.url, body_of("still fine")) == 204
    assert (await http.get(logplex.url + "/health")).status == 200
