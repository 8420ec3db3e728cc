"""Real servers on 127.0.0.1 for synchronous tests (the Toxiproxy client, CliRunner).

- ``loop_thread``: an asyncio loop in a daemon thread; ``loop_thread.run(coro)`` runs a
  coroutine on it and returns the result. Use it to host any asyncio server (an aiohttp
  stub, the embedded Toxiproxy) that blocking code then talks to.
- ``toxiproxy_server_factory(**kwargs)``: starts a ``ToxiproxyServer`` (port 0 unless given)
  on that loop; every server it starts is stopped at teardown.
- ``toxiproxy_server``: one embedded server with default options; use ``.url``.
- ``echo_server``: a threaded TCP echo server, yields ``(host, port)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socketserver
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from simctl.faults.server import ToxiproxyServer

T = TypeVar("T")


class LoopThread:
    """An event loop running in its own thread, so blocking test code can call its servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(_finish_loop(self.loop))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            self.loop.close()


async def _finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the servers left running, so closing the loop warns about nothing."""
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def toxiproxy_server_factory(
    loop_thread: LoopThread,
) -> Iterator[Callable[..., ToxiproxyServer]]:
    started: list[ToxiproxyServer] = []

    def start(**kwargs: Any) -> ToxiproxyServer:
        kwargs.setdefault("port", 0)
        server = ToxiproxyServer(**kwargs)
        loop_thread.run(server.start())
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        loop_thread.run(server.stop())


@pytest.fixture
def toxiproxy_server(toxiproxy_server_factory: Callable[..., ToxiproxyServer]) -> ToxiproxyServer:
    return toxiproxy_server_factory()


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):  # a reset from the proxy ends the echo, quietly
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    with _EchoServer(("127.0.0.1", 0), _EchoHandler) as server:
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="echo-server", daemon=True
        )
        thread.start()
        host, port = server.server_address[:2]
        yield str(host), int(port)
        server.shutdown()
        thread.join(timeout=10)
