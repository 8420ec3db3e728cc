"""The open-loop load generator against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import socket
import sys
import time

import aiohttp
import pytest
from aiohttp import web

from simctl.errors import InvalidInput
from simctl.load import HttpTraffic, LoadGenerator, LogTraffic
from simctl.platform import logframe
from simctl.platform.dyno import DynoService


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def router_like():
    """Answers in a fixed cycle: 200, 200, 500, 503 with X-Router-Code: H12."""
    seen = {"n": 0, "hosts": set()}

    async def handle(request: web.Request) -> web.Response:
        n = seen["n"]
        seen["n"] += 1
        seen["hosts"].add(request.host)
        if n % 4 == 2:
            return web.Response(status=500, text="app error")
        if n % 4 == 3:
            return web.Response(status=503, text="timeout", headers={"X-Router-Code": "H12"})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, url = await serve(app)
    yield url, seen
    await runner.cleanup()


@pytest.fixture
async def dyno():
    service = DynoService()
    await service.listen("127.0.0.1", 0)
    yield service
    await service.close()


async def set_behaviour(dyno: DynoService, **body) -> None:
    async with aiohttp.ClientSession() as http, \
            http.post(f"{dyno.url}/control", json=body) as resp:
        assert resp.status == 200, await resp.text()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_rate_is_held_by_the_clock(dyno):
    started = time.perf_counter()
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=200), duration=2.0).run()
    took = time.perf_counter() - started
    h = result.http
    assert h is not None
    assert h.scheduled == 400
    assert 360 <= h.sent <= 440
    assert 360 <= h.completed <= 440
    assert h.by_status == {200: h.completed}
    assert h.success_ratio == 1.0
    assert 180 <= h.achieved_rate <= 220
    assert 1.9 <= took < 4
    assert len(result.series) in (2, 3)
    assert sum(w.completed for w in result.series) == h.completed
    assert 160 <= result.series[0].completed <= 240


@pytest.mark.parametrize("client", ["raw", "aiohttp"])
async def test_counts_by_status_and_router_code(router_like, client):
    url, seen = router_like
    traffic = HttpTraffic(f"{url}/x?y=1", rate=200, host="shop.example", client=client,
                          max_in_flight=1)
    result = await LoadGenerator(traffic, max_requests=40, duration=5).run()
    h = result.http
    assert h is not None
    assert h.scheduled == 40
    assert h.completed + h.unsent == 40
    assert sum(h.by_status.values()) == h.completed
    assert h.by_code.get("H12", 0) == h.by_status.get(503, 0)
    assert set(h.by_status) <= {200, 500, 503}
    assert h.ok == h.by_status.get(200, 0)
    assert h.success_ratio == pytest.approx(h.ok / 40)
    assert seen["hosts"] == {"shop.example"}
    assert h.bytes > 0


async def test_statuses_exactly_when_nothing_overlaps(router_like):
    url, _ = router_like
    result = await LoadGenerator(HttpTraffic(f"{url}/", rate=100), max_requests=20).run()
    h = result.http
    assert h is not None
    assert h.by_status == {200: 10, 500: 5, 503: 5}
    assert h.by_code == {"H12": 5}
    assert h.success_ratio == 0.5


async def test_percentiles_are_sane(dyno):
    await set_behaviour(dyno, behaviour="latency", ms=50)
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=50), max_requests=25).run()
    lat = result.http.latency
    assert lat.count == 25
    assert 50 <= lat.p50 <= lat.p90 <= lat.p99 <= lat.max < 1000
    assert 50 <= lat.mean < 1000
    assert result.http.service_time.p50 >= 50


async def test_bounded_by_max_requests_and_by_duration(dyno):
    started = time.perf_counter()
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=1000), max_requests=30,
                                 duration=10).run()
    assert result.http.scheduled == 30
    assert time.perf_counter() - started < 2
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=40), duration=0.5).run()
    assert result.http.scheduled == 20


async def test_open_loop_counts_what_the_cap_kept_back(dyno):
    await set_behaviour(dyno, behaviour="hang")
    started = time.perf_counter()
    traffic = HttpTraffic(f"{dyno.url}/", rate=100, max_in_flight=5)
    result = await LoadGenerator(traffic, duration=1.0, grace=0.2).run()
    took = time.perf_counter() - started
    h = result.http
    assert h.scheduled == 100  # the clock went on: nothing waited for a response
    assert h.sent == 5
    assert h.unsent == 95
    assert h.cancelled == 5
    assert h.completed == 0
    assert h.success_ratio == 0.0
    assert sum(w.unsent for w in result.series) == 95
    assert took < 3


async def test_slow_responses_do_not_slow_the_arrivals(dyno):
    await set_behaviour(dyno, behaviour="latency", ms=300)
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=50), duration=1.0).run()
    h = result.http
    assert h.scheduled == 50
    assert h.unsent == 0
    assert h.completed == 50
    assert h.send_lag_max_ms < 500  # sent on schedule, about 15 in flight at a time
    assert h.latency.p50 >= 300


async def test_timeouts_and_connection_errors_are_counted_apart(dyno):
    await set_behaviour(dyno, behaviour="hang")
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=20, timeout=0.3),
                                 duration=0.5).run()
    assert result.http.timeouts == 10
    assert result.http.connection_errors == 0
    assert result.http.success_ratio == 0.0

    result = await LoadGenerator(HttpTraffic(f"http://127.0.0.1:{closed_port()}/", rate=50),
                                 max_requests=5).run()
    assert result.http.connection_errors == 5
    assert result.http.errors == {"connect": 5}
    assert result.http.timeouts == 0

    await set_behaviour(dyno, behaviour="close")
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=50), max_requests=5).run()
    assert result.http.errors == {"disconnected": 5}


async def test_live_snapshot_and_early_stop(dyno):
    gen = LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=100), duration=30, window=0.25)
    before = gen.snapshot()
    assert not before.running
    assert before.http.scheduled == 0
    await gen.start()
    await asyncio.sleep(0.6)
    live = gen.snapshot()
    assert live.running
    assert live.elapsed >= 0.5
    assert abs(live.http.scheduled - live.elapsed * 100) <= 5  # the clock decides arrivals
    assert live.window is not None
    assert live.window.end - live.window.start == pytest.approx(0.25)
    started = time.perf_counter()
    result = await gen.stop()
    assert time.perf_counter() - started < 1
    assert not gen.running
    assert result.summary.elapsed < 2
    assert result.http.scheduled >= live.http.scheduled
    assert [w.start for w in result.series[:3]] == [0.0, 0.25, 0.5]


async def test_stop_cuts_the_grace_period_short(dyno):
    await set_behaviour(dyno, behaviour="hang")
    gen = LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=50), duration=0.2, grace=30)
    await gen.start()
    await asyncio.sleep(0.5)  # arrivals are over; the run waits for hung requests
    assert gen.running
    assert gen.snapshot().http.in_flight == 10
    started = time.perf_counter()
    result = await gen.stop(grace=0.3)
    assert 0.25 <= time.perf_counter() - started < 2
    assert result.http.cancelled == 10
    assert result.http.in_flight == 0


async def test_context_manager_stops_the_run(dyno):
    async with LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=50)) as gen:
        await asyncio.sleep(0.2)
    assert not gen.running
    assert gen.result().http.completed > 0


async def test_generator_against_a_dyno_process():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simctl.platform", "dyno", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.strip().split("url=", 1)[1]
        result = await LoadGenerator(HttpTraffic(f"{url}/", rate=300), duration=1.0).run()
        assert result.http.scheduled == 300
        assert result.http.completed >= 270
        assert result.http.success_ratio >= 0.9
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 10)


# log-line traffic ------------------------------------------------------------------


@pytest.fixture
async def logplex():
    received: list[tuple[str, logframe.LogMessage]] = []
    state = {"delay": 0.0}

    async def logs(request: web.Request) -> web.Response:
        body = await request.read()
        if state["delay"]:
            await asyncio.sleep(state["delay"])
        user = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
        assert request.headers["Logplex-Msg-Count"] == str(len(logframe.parse(body)))
        received.extend((user.split(":", 1)[1], m) for m in logframe.parse(body))
        return web.Response(status=204)

    app = web.Application(client_max_size=16 * 1024**2)
    app.router.add_post("/logs", logs)
    runner, url = await serve(app)
    yield url, received, state
    await runner.cleanup()


async def test_log_lines_at_a_fixed_rate(logplex):
    url, received, _ = logplex
    traffic = LogTraffic(url, rate=400, app="shop", run_id="r1")
    assert traffic.url == f"{url}/logs"
    result = await LoadGenerator(logs=traffic, duration=1.0).run()
    stats = result.logs
    assert stats is not None
    assert stats.scheduled == 400
    assert stats.sent == len(received) == 400
    assert stats.rejected == stats.failed == stats.unsent == 0
    assert {token for token, _ in received} == {"t.shop"}
    seqs = sorted(int(m.text.rsplit("seq=", 1)[1]) for _, m in received)
    assert seqs == list(range(400))
    assert all(m.text.startswith("at=info msg=load run=r1 ") for _, m in received)
    assert stats.batches >= 5  # about one batch per 0.1 s
    assert sum(w.log_lines_sent for w in result.series) == 400
    assert result.http is None


async def test_http_and_logs_together(dyno, logplex):
    url, received, _ = logplex
    result = await LoadGenerator(HttpTraffic(f"{dyno.url}/", rate=100),
                                 LogTraffic(url, rate=200, line_bytes=100), duration=1.0).run()
    assert result.http.scheduled == 100
    assert result.logs.sent == 200 == len(received)
    assert all(len(m.text) > 100 for _, m in received)


async def test_log_losses_are_counted(logplex):
    url, _, state = logplex
    state["delay"] = 1.0
    traffic = LogTraffic(url, rate=200, max_in_flight=1, timeout=0.5)
    result = await LoadGenerator(logs=traffic, duration=1.0, grace=0.1).run()
    s = result.logs
    assert s.unsent > 0
    assert s.failed > 0  # posts that hit the 0.5 s timeout
    assert s.sent == 0
    assert s.scheduled == s.unsent + s.failed + s.cancelled + s.sent + s.rejected
    assert sum(w.log_lines_lost for w in result.series) == s.unsent + s.failed

    unreachable = LogTraffic(f"http://127.0.0.1:{closed_port()}", rate=100)
    result = await LoadGenerator(logs=unreachable, duration=0.3).run()
    assert result.logs.failed == result.logs.scheduled == 30


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: HttpTraffic("ftp://x/", rate=1), "not an http(s) URL"),
        (lambda: HttpTraffic("http://x/", rate=0), "http rate must be a number above 0"),
        (lambda: HttpTraffic("http://x/", rate=1, max_in_flight=0), "max_in_flight"),
        (lambda: HttpTraffic("http://x/", rate=1, client="curl"), "client must be one of"),
        (lambda: HttpTraffic("http://x/", rate=1, headers={"A": "b\r\nc"}), "bad header"),
        (lambda: LogTraffic("http://x", rate=-5), "logs rate"),
        (lambda: LogTraffic("http://x", rate=5, app="my app"), "logs app"),
        (lambda: LoadGenerator(), "give HTTP traffic, log traffic, or both"),
        (lambda: LoadGenerator(HttpTraffic("http://x/", rate=1), duration=-1), "duration"),
        (lambda: LoadGenerator(HttpTraffic("http://x/", rate=1), max_requests=1.5),
         "max_requests"),
    ],
)
def test_bad_settings_are_rejected_in_one_line(make, message):
    with pytest.raises(InvalidInput) as info:
        make()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("client", ["raw", "aiohttp"])
async def test_https_with_a_pinned_certificate(client):
    tls = pytest.importorskip("simctl.platform.router.tls")
    certificate = tls.self_signed()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.host}")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(certificate))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"https://127.0.0.1:{port}/"
    try:
        pinned = HttpTraffic(url, rate=100, host="shop.simctl.test", client=client,
                             ca_pem=certificate.cert_pem.decode())
        result = await LoadGenerator(pinned, max_requests=5).run()
        assert result.http.by_status == {200: 5}
        unchecked = HttpTraffic(url, rate=100, client=client, verify_tls=False)
        result = await LoadGenerator(unchecked, max_requests=5).run()
        assert result.http.by_status == {200: 5}
        untrusted = HttpTraffic(url, rate=100, client=client)
        result = await LoadGenerator(untrusted, max_requests=3).run()
        assert result.http.errors == {"connect": 3}
    finally:
        await runner.cleanup()
