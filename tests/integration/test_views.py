"""The views' data path and both front ends on a real stack read by a real Prometheus:
the collector's snapshot, the Textual dashboard under its test pilot, the web server's
pages, token and Host checks, and the CLI's errors (docs/dashboards.md)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from simctl.errors import MonitorUnreachable
from simctl.views.dashboard import Dashboard
from simctl.views.prom_client import PromClient
from simctl.views.snapshot import Collector
from simctl.views.source import resolve
from simctl.views.web import COOKIE, HEADER, build_app
from tests.integration.views_helpers import real_prometheus, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack_and_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_stack("views") as backend:
        state = backend.require_state()
        edge = state.endpoints["router.1 (http)"]
        for _ in range(20):  # a few requests, so the routers have lines and counters
            req = urllib.request.Request(f"{edge}/", headers={"Host": "web.localhost"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
        with real_prometheus(state, tmp_path_factory.mktemp("prom")) as url:
            yield backend.project, url


def _collector(project: str, url: str) -> Collector:
    source = resolve(project, url)
    return Collector(source.prometheus_url, source.routers, "10s", span=60)


async def _snapshot_when(collector: Collector, ready, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        snap = await collector.collect()
        if ready(snap) or time.monotonic() > deadline:
            return snap
        await asyncio.sleep(0.5)


async def test_snapshot_has_every_panel(stack_and_prom: tuple[str, str]) -> None:
    project, url = stack_and_prom
    collector = _collector(project, url)
    try:
        snap = await _snapshot_when(
            collector, lambda s: s.health and all(t.up for t in s.health)
            and s.chart("requests").series)
    finally:
        await collector.close()
    assert snap.errors == []
    assert {t.job for t in snap.health} >= {"router", "sync", "logplex", "dyno", "drain"}
    assert all(t.up for t in snap.health)
    assert [c.key for c in snap.charts] == ["requests", "success", "latency", "hcodes",
                                            "drains", "sync"]
    assert {s.name.split()[0] for s in snap.chart("drains").series} == {"delivered", "dropped"}
    assert any(s.name.startswith("connected") and s.last == 1 for s in snap.chart("sync").series)
    assert {line.router for line in snap.logs} <= {"router.1", "router.2"}
    assert any("status=200" in line.line for line in snap.logs)


async def test_unreachable_source_is_reported_and_charts_keep_their_points(
        stack_and_prom) -> None:
    project, url = stack_and_prom
    collector = _collector(project, url)
    try:
        before = await _snapshot_when(collector, lambda s: s.chart("sync").series)
        collector.prom.url = "http://127.0.0.1:9"  # the API goes away (discard port)
        collector.routers["router.9"] = "http://127.0.0.1:9"
        snap = await collector.collect()
    finally:
        await collector.close()
    assert snap.health == []
    assert [c.key for c in snap.charts] == [c.key for c in before.charts]
    assert [s.name for s in snap.chart("sync").series] == \
        [s.name for s in before.chart("sync").series]  # what was fetched is still drawn
    assert any("cannot reach the Prometheus API" in e and "connection refused" in e
               for e in snap.errors)
    assert "router.9 logs: connection refused" in snap.errors
    assert any(line.router == "router.1" for line in snap.logs)
    with pytest.raises(MonitorUnreachable):
        async with PromClient("http://127.0.0.1:9") as prom:
            await prom.probe()


async def test_dashboard_pilot_shows_data_and_switches_panels(stack_and_prom) -> None:
    project, url = stack_and_prom
    app = Dashboard(_collector(project, url), interval=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(40):
            await pilot.pause(0.25)
            if app.snapshot is not None and app.refreshes >= 2:
                break
        assert app.snapshot is not None
        assert app.refreshes >= 2
        summary = str(app.query_one("#summary").render())
        assert f"up {len(app.snapshot.health)}/{len(app.snapshot.health)}" in summary
        panes = app.query_one("#panes")
        for key, pane in (("4", "hcodes"), ("2", "traffic"), ("right", "latency"), ("8", "logs")):
            await pilot.press(key)
            assert panes.active == pane
        for _ in range(40):  # the log panel fetches the routers' lines once shown
            await pilot.pause(0.25)
            log_text = "\n".join(strip.text for strip in app.query_one("#log-lines").lines)
            if "router.1: at=info" in log_text or "router.2: at=info" in log_text:
                break
        assert "router.1: at=info" in log_text or "router.2: at=info" in log_text
        await pilot.press("q")
    assert app.return_code in (0, None)


@pytest.fixture
async def web_client(stack_and_prom):
    async def make(token: str | None = None) -> aiohttp.ClientSession:
        from aiohttp.test_utils import TestClient, TestServer

        project, url = stack_and_prom
        client = TestClient(TestServer(build_app(_collector(project, url), token=token),
                                       host="127.0.0.1"))
        await client.start_server()
        made.append(client)
        return client

    made: list = []
    yield make
    for client in made:
        await client.close()


async def test_web_serves_page_plotly_and_snapshot(web_client) -> None:
    client = await web_client()
    page = await client.get("/")
    assert page.status == 200
    assert "/static/plotly.min.js" in await page.text()
    js = await client.get("/static/plotly.min.js")
    assert js.status == 200
    assert len(await js.read()) > 1_000_000
    snap = await client.get("/api/snapshot")
    body = await snap.json()
    assert {"health", "charts", "alerts", "logs", "errors"} <= set(body)
    assert (await client.get("/static/../../pyproject.toml")).status == 404
    # DNS rebinding: a page on another name that resolves to 127.0.0.1 is refused
    rebound = await client.get("/api/snapshot", headers={"Host": "evil.example:80"})
    assert rebound.status == 403
    # nothing here changes state (POST: 405); the services' guard stands in front of
    # anything that ever does
    post = await client.post("/api/snapshot", data="x",
                             headers={"Origin": "http://evil.example"})
    assert post.status == 405
    assert "browser_guard" in [m.__name__ for m in client.server.app.middlewares]


async def test_web_token_cookie_and_header(web_client) -> None:
    client = await web_client(token="s3cret-token")
    assert (await client.get("/api/snapshot")).status == 401
    assert (await client.get("/?token=wrong")).status == 401
    link = await client.get("/?token=s3cret-token", allow_redirects=False)
    assert link.status == 303
    assert "token" not in link.headers["Location"]
    cookie = link.cookies[COOKIE]
    assert cookie.value == "s3cret-token"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert (await client.get("/api/snapshot", cookies={COOKIE: "s3cret-token"})).status == 200
    assert (await client.get("/api/snapshot", headers={HEADER: "s3cret-token"})).status == 200
    # with a token the page is meant to be reached by other names
    assert (await client.get("/", headers={"Host": "dash.example", HEADER: "s3cret-token"})
            ).status == 200


def _simctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "code", "message"), [
    (["web", "--prometheus-url", "http://127.0.0.1:9", "--port", "0"], 7,
     "cannot reach the Prometheus API at http://127.0.0.1:9"),
    (["web", "--prometheus-url", "ftp://x"], 2, "invalid Prometheus URL"),
    (["web", "--project", "no-such-project-here"], 2, "is not up"),
    (["web", "--prometheus-url", "http://127.0.0.1:9", "--span", "10s"], 2, "between 30s"),
    (["dashboard", "--prometheus-url", "http://127.0.0.1:9"], 2, "needs a terminal"),
])
def test_cli_errors_are_one_line(args: list[str], code: int, message: str) -> None:
    result = _simctl(*args)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_web_taken_port_exits_6(stack_and_prom, tmp_path: Path) -> None:
    project, url = stack_and_prom
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _simctl("web", "--prometheus-url", url, "--port", str(port))
    assert result.returncode == 6
    assert f"port {port}" in result.stderr
