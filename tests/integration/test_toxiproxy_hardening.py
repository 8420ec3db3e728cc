"""The fault plane under bad input and abuse (docs/toxics.md, "Hostile input").

Each test reproduces a way the API server used to break: a name it could store but not
show, a body nested past the decoder's recursion limit, a client holding connections,
toxics changed while connections come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import random
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from simctl.faults import wire
from tests.integration.toxiproxy_helpers import (
    LOCALHOST,
    expect_eof,
    harness,
    port_of,
    round_trip,
)


def listening_ports() -> set[int]:
    """TCP ports this process listens on (a refused create must leave none behind)."""
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


async def test_lone_surrogate_name_is_400_and_binds_nothing() -> None:
    # Used to answer 500 yet keep the proxy and its listener; GET /proxies then failed
    # with 500 for good and the proxy could not be deleted.
    async with harness() as h:
        before = listening_ports()
        raw = b'{"name":"\\ud800","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}'
        reply = await h.api.call("POST", "/proxies", raw=raw)
        assert reply.status == 400, reply.body
        assert reply.error()[0].startswith("bad request body: invalid unicode")
        assert listening_ports() == before
        assert (await h.api.expect(200, "GET", "/proxies")) == {}
        await h.api.assert_serving()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("a\nb", "control characters"), ("x" * 257, "longer than 256"), ("a/b", "'/'")],
)
async def test_unreachable_or_unprintable_names_are_400(name: str, reason: str) -> None:
    async with harness() as h:
        reply = await h.api.call("POST", "/proxies", {"name": name, "upstream": "127.0.0.1:1"})
        assert reply.status == 400
        assert reason in reply.error()[0]
        await h.proxy("p")
        reply = await h.api.call("POST", "/proxies/p/toxics", {"type": "noop", "name": name})
        assert reply.status == 400
        assert reason in reply.error()[0]
        assert (await h.api.expect(200, "GET", "/proxies/p/toxics")) == []


@pytest.mark.parametrize("depth", [wire.MAX_DEPTH + 1, 5000])
async def test_deep_json_is_400(depth: int) -> None:
    # 5000 levels used to end in a RecursionError inside the handler: 500.
    async with harness() as h:
        for path in ("/proxies", "/populate", "/proxies/p/toxics"):
            if path.endswith("toxics"):
                await h.proxy("p")
            raw = b"[" * depth + b"]" * depth
            reply = await h.api.call("POST", path, raw=raw)
            assert reply.status == 400, (path, reply.body)
            assert b"nested deeper than" in reply.body
        # Brackets inside strings are not nesting.
        name = "[" * 100
        await h.api.expect(201, "POST", "/proxies", {"name": name, "upstream": "127.0.0.1:1"})
        await h.api.assert_serving()


async def test_oversized_body_is_413_and_server_keeps_serving() -> None:
    async with harness() as h:
        raw = b'{"name":"p","upstream":"' + b"x" * (2 * 1024**2) + b'"}'
        async with h.api.session.post(h.server.url + "/proxies", data=io.BytesIO(raw)) as reply:
            assert reply.status == 413
        await h.api.assert_serving()


async def open_raw(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def test_half_sent_head_and_trickled_body_are_cut_off() -> None:
    async with harness(header_timeout=0.5, body_timeout=0.5) as h:
        port = h.server.port
        for head in (b"", b"GET /version HTTP/1.1\r\nHost: x\r\n"):
            reader, writer = await open_raw(port, head)
            started = time.monotonic()
            assert await expect_eof(reader, timeout=5) - started < 4
            writer.close()
            await writer.wait_closed()
        reader, writer = await open_raw(
            port, b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na"
        )
        reply = await asyncio.wait_for(reader.read(), 5)  # 408, then the server closes
        assert reply.startswith(b"HTTP/1.1 408"), reply
        writer.close()
        await writer.wait_closed()
        await h.api.assert_serving()


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A threaded echo server on 127.0.0.1 (this test's proxy upstream)."""
    import socketserver
    import threading

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while data := self.request.recv(65536):
                self.request.sendall(data)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((LOCALHOST, 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.mark.slow
def test_held_api_connections_do_not_starve_proxies(tmp_path: Path, echo_port: int) -> None:
    """2,000 idle API connections against a server allowed 1,024 descriptors: proxies
    keep working (before the cap, the API took every descriptor and proxies failed
    to accept), and the API answers again once they are gone."""
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps(
        [{"name": "echo", "listen": f"{LOCALHOST}:0", "upstream": f"{LOCALHOST}:{echo_port}"}]
    ))
    server = subprocess.Popen(
        [sys.executable, "-m", "simctl", "toxiproxy", "serve", "--port", "0",
         "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=_limit_descriptors,
    )
    held: list[socket.socket] = []
    try:
        assert server.stdout is not None
        api = server.stdout.readline().strip().rsplit(" ", 1)[-1]
        api_port = int(api.rsplit(":", 1)[1])
        from simctl.faults.client import ToxiproxyClient

        client = ToxiproxyClient(api, timeout=5)
        proxy_port = port_of(client.proxy("echo").listen)
        for _ in range(2000):
            sock = socket.create_connection((LOCALHOST, api_port), timeout=5)
            held.append(sock)
        time.sleep(0.5)  # let the server accept (or refuse) every one of them
        ok = 0
        for i in range(50):
            payload, got = f"ping {i}\n".encode(), b""
            try:
                with socket.create_connection((LOCALHOST, proxy_port), timeout=5) as conn:
                    conn.sendall(payload)
                    while len(got) < len(payload) and (chunk := conn.recv(100)):
                        got += chunk
            except OSError:  # reset: the server could not open the upstream connection
                pass
            ok += got == payload
        assert ok == 50
        assert server.poll() is None
        for sock in held:
            sock.close()
        held.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.version().startswith("2.")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


async def _churn_clients(port: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
        except OSError:
            continue
        try:
            for _ in range(random.randint(1, 4)):
                writer.write(b"x" * 1000)
                await asyncio.wait_for(reader.read(1000), 0.05)
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def test_toxic_churn_leaves_no_pending_task_behind() -> None:
    """Toxics added, changed and removed while connections open and close: a stub task
    started on a connection that had just ended used to be destroyed pending."""
    problems: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: problems.append(str(ctx.get("message"))))
    try:
        async with harness() as h:
            port = await h.proxy("p")
            stop = asyncio.Event()
            clients = [asyncio.create_task(_churn_clients(port, stop)) for _ in range(16)]
            deadline = time.monotonic() + 20  # 15 rounds, or what a loaded machine manages
            rounds = 0
            while rounds < 15 and time.monotonic() < deadline:
                for toxic in ({"type": "latency", "name": "a", "attributes": {"latency": 5}},
                              {"type": "latency", "name": "b", "stream": "upstream"}):
                    await h.api.call("POST", "/proxies/p/toxics", toxic)
                await h.api.call("PATCH", "/proxies/p/toxics/a", {"attributes": {"latency": 7}})
                await h.api.call("DELETE", "/proxies/p/toxics/a")
                await h.api.call("DELETE", "/proxies/p/toxics/b")
                gc.collect()
                rounds += 1
            stop.set()
            await asyncio.gather(*clients)
            assert rounds > 0
            reader, writer = await asyncio.open_connection(LOCALHOST, port)
            await round_trip(reader, writer, b"ok")
            writer.close()
            await writer.wait_closed()
        gc.collect()
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(previous)
    assert problems == []


def test_config_with_a_bad_entry_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('[{"name":"x"}]')
    done = subprocess.run(
        [sys.executable, "-m", "simctl", "toxiproxy", "serve", "--port", "0",
         "--config", str(config)],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {config}: missing required field: upstream at proxy 1"
    ]

