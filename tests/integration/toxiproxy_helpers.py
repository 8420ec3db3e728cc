"""Shared helpers for the Toxiproxy conformance suite (real sockets on 127.0.0.1 only).

Test modules import from here (``from tests.integration.toxiproxy_helpers import ...``,
which works with ``--import-mode=importlib``) and wrap what they need in small fixtures.

* ``harness()``: an embedded ToxiproxyServer, an API client, a TCP echo server and a
  client-socket tracker in one async context manager, all in the test's event loop.
* ``tcp_server(handler)`` plus ready-made handlers: echo, send-N-then-close,
  reply-after-EOF, record-what-arrives.
* ``Recorder``: a client protocol that timestamps every recv, the EOF and the close.

The synchronous toxiproxy-python tests use conftest's threaded ``toxiproxy_server`` and
``echo_server`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from simctl.faults.server import ToxiproxyServer

LOCALHOST = "127.0.0.1"
TOXIPROXY_VERSION = "2.12.0"
_NO_BODY = object()
LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a TCP RST


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


# -- the HTTP API ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Any  # CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def error(self) -> tuple[str, int]:
        """The (message, status) of an error reply, checking Toxiproxy's exact error shape."""
        data = self.json()
        assert list(data)[:2] == ["error", "status"], self.body
        assert data["status"] == self.status, self.body
        return data["error"], data["status"]


class Api:
    """A thin aiohttp client for the Toxiproxy API that returns raw replies."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        body: Any = _NO_BODY,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = raw if raw is not None else (
            None if body is _NO_BODY else json.dumps(body).encode()
        )
        url = URL(self.base_url + path, encoded=True)
        async with self.session.request(method, url, data=data, headers=headers) as response:
            return Reply(response.status, response.headers, await response.read())

    async def expect(self, status: int, method: str, path: str, body: Any = _NO_BODY) -> Any:
        reply = await self.call(method, path, body)
        assert reply.status == status, (method, path, reply.status, reply.body)
        return reply.json() if reply.body else None

    @staticmethod
    def path(*names: str) -> str:
        return "".join("/" + quote(name, safe="") for name in names)

    async def create_proxy(
        self, name: str, upstream: str, listen: str = f"{LOCALHOST}:0", **fields: Any
    ) -> dict[str, Any]:
        body = {"name": name, "upstream": upstream, "listen": listen, **fields}
        return await self.expect(201, "POST", "/proxies", body)

    async def get_proxy(self, name: str) -> dict[str, Any]:
        return await self.expect(200, "GET", self.path("proxies", name))

    async def update_proxy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.expect(200, "PATCH", self.path("proxies", name), body)

    async def delete_proxy(self, name: str) -> None:
        await self.expect(204, "DELETE", self.path("proxies", name))

    async def add_toxic(
        self, proxy: str, type: str, attributes: dict[str, Any] | None = None, **fields: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": type, **fields}
        if attributes is not None:
            body["attributes"] = attributes
        return await self.expect(200, "POST", self.path("proxies", proxy, "toxics"), body)

    async def update_toxic(self, proxy: str, toxic: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.expect(200, "PATCH", self.path("proxies", proxy, "toxics", toxic), body)

    async def remove_toxic(self, proxy: str, toxic: str) -> None:
        await self.expect(204, "DELETE", self.path("proxies", proxy, "toxics", toxic))

    async def reset(self) -> None:
        await self.expect(204, "POST", "/reset")

    async def assert_serving(self) -> None:
        """The server still answers after whatever the test just threw at it."""
        reply = await self.call("GET", "/version")
        assert reply.status == 200
        assert reply.body == f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()
        assert (await self.call("GET", "/proxies")).status == 200


@contextlib.asynccontextmanager
async def api_client(base_url: str) -> AsyncIterator[Api]:
    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(force_close=True)  # no keep-alive sockets left behind
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        yield Api(session, base_url)


# -- upstream TCP servers ----------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(eq=False)
class TcpServer:
    """A real asyncio TCP server on 127.0.0.1, ephemeral port, that tracks its connections."""

    handler: Handler
    port: int = 0
    accepted: int = 0
    received: list[bytearray] = field(default_factory=list)  # used by recording handlers
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                await self.handler(reader, writer)
            finally:
                writer.close()
                await writer.wait_closed()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels; end normally, or asyncio 3.11's start_server callback
            # logs "Exception in callback" when it inspects a cancelled task.
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)

    @property
    def active(self) -> int:
        """Connections whose handler is still running."""
        return len(self._tasks)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, LOCALHOST, 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def close_connections(self) -> None:
        """Close every accepted connection from the server side (FIN to the peer)."""
        for writer in list(self._writers):
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[TcpServer]:
    server = TcpServer(handler)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything; close when the peer does."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def send_then_close(payload: bytes, delay: float = 0.0) -> Handler:
    """On connect, (wait delay s,) send payload, then close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if delay:
            await asyncio.sleep(delay)
        writer.write(payload)
        await writer.drain()

    return handler


def reply_after_eof(reply: bytes) -> Handler:
    """Read the request until EOF (a half-close), then answer: HTTP/1.0-style clients."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.write(reply)
        await writer.drain()

    return handler


@contextlib.asynccontextmanager
async def recording_server() -> AsyncIterator[TcpServer]:
    """Keeps every byte each connection receives in server.received[i]; never replies."""
    received: list[bytearray] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = bytearray()
        received.append(buf)
        while data := await reader.read(65536):
            buf += data

    async with tcp_server(handler) as server:
        server.received = received
        yield server


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port that is bound but not listening: connects get ECONNREFUSED, nobody steals it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOCALHOST, 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def listening_port(port: int = 0) -> Iterator[int]:
    """A port held by a listening socket (for address-in-use cases)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOCALHOST, port))
        sock.listen(1)
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def blackhole_port() -> Iterator[int]:
    """A port whose connects hang: a listener with a full accept queue (SYNs dropped)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((LOCALHOST, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect((LOCALHOST, port))  # takes the only slot; never accepted
        yield port
    finally:
        filler.close()
        listener.close()


# -- clients -----------------------------------------------------------------------------


class Recorder(asyncio.Protocol):
    """A client socket that timestamps every recv, the EOF and the close."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.connected_at = 0.0
        self.chunks: list[tuple[float, bytes]] = []
        self.eof_at: float | None = None
        self.closed: asyncio.Future[BaseException | None] = loop.create_future()
        self._changed = asyncio.Event()

    # protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connected_at = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.chunks.append((time.monotonic(), data))
        self._changed.set()

    def eof_received(self) -> bool:
        self.eof_at = time.monotonic()
        self._changed.set()
        return False  # close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.eof_at is None and exc is None:
            self.eof_at = time.monotonic()
        if not self.closed.done():
            self.closed.set_result(exc)
        self._changed.set()

    # helpers
    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    @property
    def sizes(self) -> list[int]:
        return [len(chunk) for _, chunk in self.chunks]

    def write(self, data: bytes) -> float:
        assert self.transport is not None
        self.transport.write(data)
        return time.monotonic()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until predicate() holds; False on timeout (never raises)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return predicate()
        return True

    async def wait_bytes(self, n: int, timeout: float) -> bool:
        return await self.wait_for(lambda: len(self.data) >= n, timeout)

    async def wait_closed(self, timeout: float) -> BaseException | None:
        """Wait for the connection to end; returns the error (None for a clean EOF)."""
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    @property
    def is_closed(self) -> bool:
        return self.closed.done()


class Clients:
    """Opens client connections and closes every one of them at the end of a test."""

    def __init__(self) -> None:
        self._transports: list[asyncio.BaseTransport] = []
        self._writers: list[asyncio.StreamWriter] = []

    async def open(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        self._writers.append(writer)
        return reader, writer

    async def record(self, port: int) -> Recorder:
        loop = asyncio.get_running_loop()
        transport, recorder = await loop.create_connection(Recorder, LOCALHOST, port)
        self._transports.append(transport)
        return recorder

    async def close(self) -> None:
        for transport in self._transports:
            transport.abort()
        for writer in self._writers:
            writer.transport.abort()
        for writer in self._writers:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._transports.clear()
        self._writers.clear()
        await asyncio.sleep(0)  # let connection_lost callbacks run


async def read_all(reader: asyncio.StreamReader, timeout: float) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


async def read_exactly(reader: asyncio.StreamReader, n: int, timeout: float = 2.0) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), timeout)


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes = b"ping",
    timeout: float = 3.0,
) -> float:
    """Send data to an echo, read it back; return the elapsed seconds."""
    start = time.monotonic()
    writer.write(data)
    got = await read_exactly(reader, len(data), timeout)
    assert got == data
    return time.monotonic() - start


async def expect_eof(reader: asyncio.StreamReader, timeout: float = 2.0) -> float:
    """Wait for a clean EOF with no data; return when it came (monotonic seconds)."""
    data = await asyncio.wait_for(reader.read(65536), timeout)
    assert data == b"", f"expected EOF, got {data[:40]!r}"
    return time.monotonic()


async def still_open(reader: asyncio.StreamReader, wait: float) -> bool:
    """True when nothing (neither data nor EOF) arrives for `wait` seconds."""
    try:
        await asyncio.wait_for(reader.read(1), wait)
    except TimeoutError:
        return True
    return False


async def expect_refused(port: int) -> None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(LOCALHOST, port), 2.0)
    except ConnectionRefusedError:
        return
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    raise AssertionError(f"connect to {port} succeeded, expected ECONNREFUSED")


async def poll(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Check predicate() until it holds or the deadline passes; never raises."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


def set_linger_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)


def is_reset(exc: BaseException | None) -> bool:
    return isinstance(exc, ConnectionResetError) or (
        isinstance(exc, OSError) and exc.errno == errno.ECONNRESET
    )


# -- everything a test needs, in one context ---------------------------------------------


@dataclass(eq=False)
class Harness:
    server: ToxiproxyServer
    api: Api
    echo: TcpServer
    clients: Clients
    stack: contextlib.AsyncExitStack

    async def serve(self, handler: Handler) -> TcpServer:
        """Another upstream server, stopped with the harness."""
        return await self.stack.enter_async_context(tcp_server(handler))

    async def recording(self) -> TcpServer:
        """An upstream that records what it receives, stopped with the harness."""
        return await self.stack.enter_async_context(recording_server())

    async def proxy(
        self,
        name: str = "p",
        upstream: str | None = None,
        toxics: tuple[dict[str, Any], ...] = (),
        **fields: Any,
    ) -> int:
        """Create a proxy (to the echo server by default) with toxics; return its port."""
        created = await self.api.create_proxy(name, upstream or self.echo.address, **fields)
        for toxic in toxics:
            await self.api.add_toxic(name, **toxic)
        return port_of(created["listen"])


@contextlib.asynccontextmanager
async def harness(seed: int | None = None, **options: Any) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        server = ToxiproxyServer(host=LOCALHOST, port=0, seed=seed, **options)
        await stack.enter_async_context(server)
        echo_srv = await stack.enter_async_context(tcp_server(echo))
        api = await stack.enter_async_context(api_client(server.url))
        clients = Clients()
        stack.push_async_callback(clients.close)  # clients close first
        yield Harness(server, api, echo_srv, clients, stack)
