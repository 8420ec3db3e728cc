"""The dyno on 127.0.0.1, each behaviour observed by a real HTTP client."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from simctl.platform.dyno import DynoService
from simctl.platform.dyno.memory import MB


@pytest.fixture
async def start_dyno():
    services: list[DynoService] = []

    async def start(**options) -> DynoService:
        service = DynoService(**options)
        await service.listen("127.0.0.1", 0)
        services.append(service)
        return service

    yield start
    for service in services:
        await service.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def control(http, dyno, **body) -> dict:
    async with http.post(f"{dyno.url}/control", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def timed_get(http, url, **kw) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    async with http.get(url, **kw) as resp:
        body = await resp.read()
        return resp.status, body, time.perf_counter() - started


async def raw_exchange(url: str, request: bytes, read_for: float = 2.0) -> tuple[bytes, bool]:
    """Send raw bytes; return what came back and whether the server closed the connection."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    data = b""
    closed = False
    try:
        async with asyncio.timeout(read_for):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
    except TimeoutError:
        pass
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    return data, closed


GET = b"GET / HTTP/1.1\r\nHost: web.example\r\n\r\n"


async def metric(http, dyno, line_start: str) -> float:
    async with http.get(f"{dyno.url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {line_start}")


async def test_normal_app_answers_any_path(start_dyno, http):
    dyno = await start_dyno(dyno="web.3", app_name="shop")
    status, body, _ = await timed_get(http, f"{dyno.url}/")
    assert status == 200
    assert b"web.3" in body
    assert b"shop" in body
    async with http.get(f"{dyno.url}/any/path?x=1") as resp:
        assert resp.status == 200
        assert resp.headers["X-Dyno"] == "web.3"
    for size in (0, 10, 65536, 300_000):
        async with http.get(f"{dyno.url}/bytes/{size}") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Length"] == str(size)
            assert len(await resp.read()) == size
    async with http.get(f"{dyno.url}/bytes/lots") as resp:
        assert resp.status == 400
    async with http.post(f"{dyno.url}/echo", data=b"ping " * 1000,
                         headers={"Content-Type": "text/x-test"}) as resp:
        assert resp.status == 200
        assert await resp.read() == b"ping " * 1000
        assert resp.headers["Content-Type"].startswith("text/x-test")


async def test_control_shows_sets_and_resets(start_dyno, http):
    dyno = await start_dyno()
    async with http.get(f"{dyno.url}/control") as resp:
        assert await resp.json() == {"behaviour": "normal"}
    shown = await control(http, dyno, behaviour="error", rate=0.5)
    async with http.get(f"{dyno.url}/control") as resp:
        assert await resp.json() == shown
    assert await metric(http, dyno, 'dyno_behaviour{behaviour="error"}') == 1
    async with http.delete(f"{dyno.url}/control", json={}) as resp:
        assert await resp.json() == {"behaviour": "normal"}
    assert await metric(http, dyno, 'dyno_behaviour{behaviour="error"}') == 0
    assert await metric(http, dyno, 'dyno_behaviour{behaviour="normal"}') == 1
    for data in (b"{nope", b'{"behaviour": "explode"}', b""):
        async with http.post(f"{dyno.url}/control", data=data,
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
            assert error
            assert "\n" not in error


async def test_latency_with_jitter_and_path_scope(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="latency", ms=300, jitter=50, path="/slow")
    _, _, fast = await timed_get(http, f"{dyno.url}/")
    status, _, slow = await timed_get(http, f"{dyno.url}/slow/page")
    assert status == 200
    assert 0.24 <= slow < 2.0
    assert fast < 0.2


async def test_fraction_and_error_rate(start_dyno, http):
    dyno = await start_dyno(seed=7)
    await control(http, dyno, behaviour="error", status=503)
    statuses = [(await timed_get(http, f"{dyno.url}/"))[0] for _ in range(5)]
    assert statuses == [503] * 5
    await control(http, dyno, behaviour="error", status=500, fraction=0.5)
    statuses = [(await timed_get(http, f"{dyno.url}/"))[0] for _ in range(60)]
    assert 10 <= statuses.count(500) <= 50
    assert statuses.count(500) + statuses.count(200) == 60
    await control(http, dyno, behaviour="error", rate=0.0)
    assert (await timed_get(http, f"{dyno.url}/"))[0] == 200
    assert await metric(http, dyno, 'dyno_requests_total{status="500"}') >= 10


async def test_hang_never_answers_and_frees_when_the_client_leaves(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="hang", path="/h")
    with pytest.raises(asyncio.TimeoutError):
        await timed_get(http, f"{dyno.url}/h", timeout=aiohttp.ClientTimeout(total=0.5))
    # Control and health still answer while a request hangs.
    async with http.get(f"{dyno.url}/health") as resp:
        assert (await resp.json())["behaviour"] == "hang"
    assert (await timed_get(http, f"{dyno.url}/"))[0] == 200
    for _ in range(40):
        if dyno.in_flight == 0:
            break
        await asyncio.sleep(0.05)
    assert dyno.in_flight == 0
    assert await metric(http, dyno, 'dyno_requests_total{status="hung"}') == 1


async def test_close_without_response(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="close")
    data, closed = await raw_exchange(dyno.url, GET)
    assert data == b""
    assert closed
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await timed_get(http, f"{dyno.url}/")


async def test_partial_then_close(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="partial", length=1000, sent=10, then="close")
    data, closed = await raw_exchange(dyno.url, GET)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 1000" in head
    assert body == b"x" * 10
    assert closed
    with pytest.raises(aiohttp.ClientPayloadError):
        await timed_get(http, f"{dyno.url}/")


async def test_partial_then_idle(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="partial", length=1000, sent=100, then="idle")
    data, closed = await raw_exchange(dyno.url, GET, read_for=0.6)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000" in head
    assert len(body) == 100
    assert not closed  # still open, silent: the router's idle timer (H15) would fire
    for _ in range(40):
        if dyno.in_flight == 0:
            break
        await asyncio.sleep(0.05)
    assert dyno.in_flight == 0


async def test_memory_grows_to_the_cap_and_is_released(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="memory", mb=8, cap_mb=20)
    for _ in range(4):
        assert (await timed_get(http, f"{dyno.url}/"))[0] == 200
    assert dyno.memory.held == 20 * MB
    assert await metric(http, dyno, "dyno_memory_held_bytes") == 20 * MB
    async with http.delete(f"{dyno.url}/control", json={}):
        pass
    assert dyno.memory.held == 0


async def test_slow_boot_health_and_held_requests(start_dyno, http):
    dyno = await start_dyno(boot_delay=0.8)
    async with http.get(f"{dyno.url}/health") as resp:
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "starting"
        assert 0 < body["boot_remaining_s"] <= 0.8
    # A request that arrives during boot waits for the app, as in an accept queue.
    status, _, took = await timed_get(http, f"{dyno.url}/")
    assert status == 200
    assert took >= 0.5
    async with http.get(f"{dyno.url}/health") as resp:
        assert resp.status == 200
    assert await metric(http, dyno, "dyno_up") == 1


async def test_slow_boot_restart_in_process(start_dyno, http):
    dyno = await start_dyno()
    shown = await control(http, dyno, behaviour="slow_boot", seconds=0.6, restart=True)
    assert shown["behaviour"] == "slow_boot"
    async with http.get(f"{dyno.url}/health") as resp:
        assert resp.status == 503
    await asyncio.sleep(0.9)
    async with http.get(f"{dyno.url}/health") as resp:
        assert resp.status == 200


async def test_slow_boot_applies_to_the_next_start_through_the_state_file(
        start_dyno, http, tmp_path):
    state = tmp_path / "web.1.json"
    first = await start_dyno(state_file=state)
    shown = await control(http, first, behaviour="slow_boot", seconds=30)
    assert "note" not in shown
    assert json.loads(state.read_text())["seconds"] == 30
    await first.close()
    second = await start_dyno(state_file=state)
    async with http.get(f"{second.url}/health") as resp:
        assert resp.status == 503
    async with http.get(f"{second.url}/control") as resp:
        assert (await resp.json())["behaviour"] == "slow_boot"
    async with http.delete(f"{second.url}/control", json={}):
        pass
    assert not state.exists()
    # Closing while requests wait (boot hold, latency) is prompt.
    pending = asyncio.ensure_future(timed_get(http, f"{second.url}/"))
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    await second.close()
    assert time.perf_counter() - started < 3
    with pytest.raises(aiohttp.ClientError):
        await pending


async def test_slow_boot_without_state_file_says_so(start_dyno, http):
    dyno = await start_dyno()
    shown = await control(http, dyno, behaviour="slow_boot", seconds=5)
    assert "state-file" in shown["note"]


async def test_crash_in_process_stops_serving(start_dyno, http):
    dyno = await start_dyno()
    url = dyno.url
    assert (await control(http, dyno, behaviour="crash")) == {"behaviour": "crash"}
    await asyncio.wait_for(dyno.exited.wait(), 5)
    assert dyno.exit_code == 1
    with pytest.raises(aiohttp.ClientConnectorError):
        await timed_get(http, f"{url}/")


async def test_close_is_prompt_with_hung_requests(start_dyno, http):
    dyno = await start_dyno()
    await control(http, dyno, behaviour="hang")
    pending = [asyncio.ensure_future(timed_get(http, f"{dyno.url}/")) for _ in range(3)]
    await asyncio.sleep(0.3)
    assert dyno.in_flight == 3
    assert await metric(http, dyno, "dyno_in_flight") == 3
    started = time.perf_counter()
    await dyno.close()
    assert time.perf_counter() - started < 3
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(isinstance(r, aiohttp.ClientError) for r in results)


async def test_metrics_include_log_counters_without_logplex(start_dyno, http):
    dyno = await start_dyno()
    await timed_get(http, f"{dyno.url}/")
    assert await metric(http, dyno, 'dyno_requests_total{status="200"}') == 1
    assert await metric(http, dyno, "dyno_log_dropped_total") == 0
    assert await metric(http, dyno, "dyno_log_lost_total") == 0
