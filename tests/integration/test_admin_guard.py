"""Browsers cannot drive the services' state-changing endpoints (docs/security.md).

All five services run on 127.0.0.1; every operator endpoint is sent what a hostile page
can send, and the state read back afterwards must not have moved.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from simctl.platform import logframe
from simctl.platform.guard import is_loopback_host
from simctl.platform.logframe import LogMessage
from tests.integration.platform_services import Stack, platform_services

JSON = {"Content-Type": "application/json"}
EVIL = "http://evil.example"


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with platform_services() as services:
        yield services


async def snapshot(http: aiohttp.ClientSession, stack: Stack) -> list[object]:
    states = []
    for url in stack.state_urls():
        async with http.get(url) as resp:
            body = await resp.json()
        if isinstance(body, dict):
            body.pop("at", None)
        states.append(body)
    return states


async def send_all(http: aiohttp.ClientSession, stack: Stack, want: int, *, json_body: bool,
                   **headers: str) -> None:
    for method, url, body in stack.endpoints():
        sent = dict(headers)
        if json_body:
            sent.update(JSON)
        else:
            sent["Content-Type"] = "text/plain"
        data = json.dumps(body)
        async with http.request(method, url, data=data, headers=sent) as resp:
            answer = await resp.json()
            assert resp.status == want, (method, url, answer)
            assert answer["status"] == want
            assert "\n" not in answer["error"]


async def test_nothing_a_browser_page_sends_changes_state(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        before = await snapshot(http, stack)
        # a <form> or no-cors fetch from another site: text/plain, foreign Origin
        await send_all(http, stack, 403, json_body=False, Origin=EVIL)
        # a JSON fetch the browser marks cross-site or same-site (a sibling subdomain)
        await send_all(http, stack, 403, json_body=True, **{"Sec-Fetch-Site": "cross-site"})
        await send_all(http, stack, 403, json_body=True, **{"Sec-Fetch-Site": "same-site"})
        await send_all(http, stack, 403, json_body=True, Origin="null")
        # text/plain with no Origin at all (an older browser, or a simple request)
        await send_all(http, stack, 415, json_body=False)
        assert await snapshot(http, stack) == before


async def test_dns_rebinding_origin_is_refused(stack: Stack) -> None:
    # The page's own (rebound) name is "same origin" to the browser; the host is not loopback.
    async with aiohttp.ClientSession() as http:
        port = stack.dyno.port
        async with http.post(f"{stack.dyno.url}/control", json={"behaviour": "error"}, headers={
                "Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}",
                "Sec-Fetch-Site": "same-origin"}) as resp:
            assert resp.status == 403
        async with http.get(f"{stack.dyno.url}/control") as resp:
            assert (await resp.json())["behaviour"] == "normal"


async def test_bodyless_post_needs_json_content_type(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.router.admin_url}/admin/flush") as resp:
            assert resp.status == 415
            assert "application/json" in (await resp.json())["error"]
        async with http.post(f"{stack.router.admin_url}/admin/flush", headers=JSON) as resp:
            assert resp.status == 200


async def test_own_origin_and_plain_clients_still_work(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        url = URL(stack.dyno.url)
        own = {"Origin": f"http://{url.host}:{url.port}", "Sec-Fetch-Site": "same-origin"}
        async with http.post(f"{stack.dyno.url}/control", json={"behaviour": "error"},
                             headers=own) as resp:
            assert resp.status == 200
        async with http.delete(f"{stack.dyno.url}/control", headers={**own, **JSON}) as resp:
            assert resp.status == 200
        port = stack.sync.port
        local = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}
        async with http.post(f"{stack.sync.url}/apps/web/maintenance", json={"enabled": True},
                             headers=local) as resp:
            assert resp.status == 200


async def test_app_traffic_and_reads_are_not_guarded(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        # a dyno's app answers any method and body: it is the user's app, not an admin port
        async with http.post(f"{stack.dyno.url}/submit", data=b"a=1", headers={
                "Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"}) as resp:
            assert resp.status == 200
        async with http.get(f"{stack.sync.url}/routes", headers={"Origin": EVIL}) as resp:
            assert resp.status == 200
        # log ingest takes its own body type, but not from another site
        auth = "Basic " + base64.b64encode(b"token:t.web").decode()
        body = logframe.encode_many([LogMessage("app", "web.1", "x", "2026-01-01T00:00:00Z")],
                                    structured=False)
        ingest = {"Authorization": auth, "Content-Type": logframe.CONTENT_TYPE}
        async with http.post(f"{stack.logplex.url}/logs", data=body,
                             headers={**ingest, "Origin": EVIL}) as resp:
            assert resp.status == 403
        async with http.post(f"{stack.logplex.url}/logs", data=body, headers=ingest) as resp:
            assert resp.status == 204


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.1:8080", True), ("127.9.9.9", True), ("[::1]:80", True),
    ("localhost:3", True), ("web.localhost", True), ("LOCALHOST", True),
    ("evil.example:80", False), ("localhost.evil.example", False), ("10.0.0.1", False),
    ("", False), ("[::2]", False), ("0.0.0.0", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


async def test_no_preflight_is_granted(stack: Stack) -> None:
    # A JSON POST from another origin needs the browser's preflight to pass first.
    async with aiohttp.ClientSession() as http:
        for method, url, _ in stack.endpoints():
            async with http.options(url, headers={
                    "Origin": EVIL, "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "content-type"}) as resp:
                granted = [h for h in resp.headers if h.lower().startswith("access-control-")]
                assert granted == [], (url, resp.status, granted)
