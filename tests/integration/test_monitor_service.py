"""The monitor service over real HTTP: scrapes a real /metrics endpoint, answers
Prometheus's API, fires and resolves an alert, and posts Alertmanager webhooks to a real
receiver on 127.0.0.1 (docs/alerts.md)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from simctl.monitor.promql import parse
from simctl.monitor.rules import load_rules
from simctl.monitor.scrape import Target
from simctl.monitor.service import MonitorService, command

RULES = """\
groups:
  - name: app
    rules:
      - alert: AppErrors
        expr: sum by (job) (rate(app_errors_total[1s])) > 0
        for: 300ms
        labels: {severity: page}
        annotations: {summary: "errors at {{ $value }}/s", runbook: h12-request-timeouts}
"""


async def _until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def app_target():
    """A real HTTP service with an error counter the test moves."""
    state = {"errors": 0}

    async def metrics(request: web.Request) -> web.Response:
        text = ("# TYPE app_errors_total counter\n"
                f"app_errors_total {state['errors']}\n")
        return web.Response(text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield state, f"http://127.0.0.1:{port}/metrics"
    await runner.cleanup()


@pytest.fixture
async def receiver():
    """A real Alertmanager webhook receiver: keeps every payload."""
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield received, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_scrape_query_alert_and_webhook(tmp_path: Path, app_target, receiver) -> None:
    state, target_url = app_target
    received, hook_url = receiver
    rules_path = tmp_path / "alerts.yaml"
    rules_path.write_text(RULES)
    targets = [Target("app", "app.1", target_url),
               Target("gone", "gone.1", "http://127.0.0.1:9/metrics")]  # nothing listens
    monitor = MonitorService(targets, load_rules(rules_path), interval=0.1,
                             webhook_url=hook_url)
    await monitor.listen("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(base_url=monitor.url) as http:
            async def get(path: str, **params: str) -> dict:
                async with http.get(path, params=params) as response:
                    return await response.json()

            await _until(lambda: monitor.rounds >= 3)
            up = await get("/api/v1/query", query="up")
            assert up["status"] == "success"
            assert up["data"]["resultType"] == "vector"
            assert {(r["metric"]["job"], r["value"][1]) for r in up["data"]["result"]} == {
                ("app", "1"), ("gone", "0")}
            assert (await get("/api/v1/alerts"))["data"]["alerts"] == []

            async def errors() -> None:  # 50 errors a second for 2 s
                for _ in range(40):
                    state["errors"] += 5
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(errors())
            await _until(lambda: any(a["state"] == "firing" for a in monitor.alert_list()))
            firing = (await get("/api/v1/alerts"))["data"]["alerts"]
            assert firing[0]["labels"] == {"alertname": "AppErrors", "job": "app",
                                           "severity": "page"}
            assert firing[0]["annotations"]["runbook"] == "h12-request-timeouts"
            assert float(firing[0]["value"]) > 0
            await task
            await _until(lambda: not monitor.alert_list())
            await _until(lambda: len(received) >= 2)
            assert [p["status"] for p in received] == ["firing", "resolved"]
            assert {p["version"] for p in received} == {"4"}
            assert received[0]["groupLabels"] == {"alertname": "AppErrors"}
            assert received[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"

            now = time.time()
            series = await get("/api/v1/query_range", query="app_errors_total",
                               start=str(now - 2), end=str(now), step="0.5")
            values = [float(v) for _, v in series["data"]["result"][0]["values"]]
            assert values == sorted(values)
            assert values[-1] == 200
            bad = await get("/api/v1/query", query="rate(up[5m:1m])")
            assert bad["status"] == "error"
            assert "subqueries" in bad["error"]
            rules = (await get("/api/v1/rules"))["data"]["groups"][0]["rules"][0]
            assert (rules["name"], rules["health"], rules["type"]) == ("AppErrors", "ok",
                                                                       "alerting")
            targets_data = (await get("/api/v1/targets"))["data"]["activeTargets"]
            assert {t["health"] for t in targets_data} == {"up", "down"}

            # Load runners push their SLIs as text; a cross-site page may not.
            body = "simctl_load_requests_total{outcome=\"ok\"} 7\n"
            async with http.put("/metrics/job/load/instance/run1", data=body,
                                headers={"Content-Type": "text/plain"}) as response:
                assert response.status == 200
            async with http.put("/metrics/job/load/instance/run1", data=body,
                                headers={"Content-Type": "text/plain",
                                         "Origin": "http://evil.example"}) as response:
                assert response.status == 403
            pushed = parse("simctl_load_requests_total")
            await _until(lambda: bool(monitor.evaluator.instant(pushed, time.time())))
    finally:
        await monitor.close()


def test_a_bad_rule_file_stops_the_service_before_it_listens(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: nosuch(x)\n"
                    "        for: soon\n")
    result = CliRunner().invoke(command, ["--rules", str(path), "--port", "0"])
    assert result.exit_code == 2
    assert "bad.yaml:5: rule A: invalid expression" in result.output
    assert "bad.yaml:6: rule A: 'for': not a duration" in result.output
