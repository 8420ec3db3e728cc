"""A scenario's load (LoadRunner): connection reuse follows `load.keepalive`."""

from __future__ import annotations

import asyncio
import time

import pytest

from simctl.scenario.looper import BackgroundLoop
from simctl.scenario.traffic import LoadRunner, LoadSpec

OK_KEEP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class CountingServer:
    """Answers every request 200; honours `Connection: close`; counts connections."""

    def __init__(self, loop: BackgroundLoop) -> None:
        self.loop = loop
        self.connections = 0
        self.requests = 0
        self.most_on_one = 0  # the most requests one connection carried
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        carried = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                carried += 1
                self.most_on_one = max(self.most_on_one, carried)
                close = b"\r\nconnection: close" in head.lower()
                writer.write(OK_CLOSE if close else OK_KEEP)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize("keepalive", [True, False])
def test_keepalive_false_opens_a_connection_per_request(keepalive: bool) -> None:
    loop = BackgroundLoop("test-load")
    server = CountingServer(loop)
    try:
        url = loop.run(server.start())
        spec = LoadSpec(url, "web.localhost", 20.0, None, 0.0, "unit", keepalive=keepalive)
        runner = LoadRunner(loop, spec)
        runner.start()
        time.sleep(1.0)
        runner.stop()
        loop.run(server.stop())
        assert server.requests >= 10
        # (A connection the runner opened just before it stopped may carry no request.)
        if keepalive:
            assert server.connections <= 3  # one, or a few while requests overlap
            assert server.most_on_one >= 5
        else:
            assert server.most_on_one == 1
            assert server.connections >= server.requests
        assert runner.summary()["http"]["ok"] == server.requests
    finally:
        loop.close()


def test_load_over_two_routers_splits_the_rate_and_tags_each_outcome() -> None:
    """`load.routers`: the rate is spread evenly; `http.* {router="..."}` sees only its own."""
    from simctl.scenario.expressions import parse
    from simctl.scenario.probes import Window, http_value

    loop = BackgroundLoop("test-load-two")
    first, second = CountingServer(loop), CountingServer(loop)
    try:
        urls = [loop.run(first.start()), loop.run(second.start())]
        targets = (("router.1", urls[0]), ("router.2", urls[1]))
        spec = LoadSpec(urls[0], "web.localhost", 40.0, None, 0.0, "unit", targets=targets,
                        keepalive=False)  # a closed listener then refuses every request
        runner = LoadRunner(loop, spec)
        runner.start()
        time.sleep(1.5)
        loop.run(second.stop())  # router.2's edge goes away: only its SLI drops
        time.sleep(1.5)
        now = time.monotonic()
        runner.stop()
        loop.run(first.stop())
        assert 40 <= first.requests <= 80
        assert 15 <= second.requests <= 45
        window = Window.at(now, now - 1.2, width=1.2)
        outcomes = runner.tap.since(0)
        assert {o.router for o in outcomes} == {"router.1", "router.2"}
        ok1, _ = http_value(parse('http.success_ratio{router="router.1"} > 0.9'), outcomes, window)
        ok2, _ = http_value(parse('http.success_ratio{router="router.2"} > 0.9'), outcomes, window)
        assert ok1 == 1.0
        assert ok2 is not None
        assert ok2 < 0.5
    finally:
        loop.close()
