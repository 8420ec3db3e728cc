"""Test doubles for exercising a router on 127.0.0.1: misbehaving dynos and a log receiver.

- ``FakeDyno``: a real HTTP/1.1 server whose behaviour is chosen by the request path:
  ``/slow?ms=N``, ``/close`` (close without answering), ``/partial`` (head and part of the
  body, then close), ``/partial-idle`` (head and part of the body, then silence),
  ``/hang`` (read the request, never answer), ``/bad`` (a malformed status line),
  ``/echo`` (the request as JSON), ``/chunked``, ``/big?kb=N``; anything else is 200 "ok".
- ``closed_port()``: an address where nothing listens (connections are refused).
- ``Blackhole``: a listener whose accept queue is full, so connects time out (H19).
- ``LogCapture``: a logplex-1 receiver (``POST /logs``) that keeps every line by token.
- ``fetch``: one request with h11 over a fresh connection, that also reports cut responses.
- ``RouterStack``: log capture + sync + router in this process, for integration tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import h11
from aiohttp import web

from simctl.platform import logframe
from simctl.platform.router.records import parse_apps
from simctl.platform.router.service import RouterService
from simctl.platform.sync import SyncService
from simctl.platform.timing import FAST, Timing

__all__ = ["Blackhole", "FakeDyno", "LogCapture", "Reply", "RouterStack", "closed_port", "fetch",
           "raw_request"]


class FakeDyno:
    def __init__(self, name: str = "web.1") -> None:
        self.name = name
        self.port = 0
        self.requests: list[dict[str, object]] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeDyno:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeDyno:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    return
                keep = await self._answer(conn, writer, request, body)
                if not keep or conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.transport.abort()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader
                            ) -> tuple[h11.Request | None, bytes]:
        request = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, body
            else:
                return None, b""

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter,
                      request: h11.Request, body: bytes) -> bool:
        url = urlsplit(request.target.decode())
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        headers = [(n.decode(), v.decode("latin-1")) for n, v in request.headers]
        self.requests.append({"method": request.method.decode(), "target": url.geturl(),
                              "headers": headers, "body": len(body)})
        path = url.path

        def send(*events: h11.Response | h11.Data | h11.EndOfMessage) -> None:
            for event in events:
                data = conn.send(event)
                if data:
                    writer.write(data)

        def response(status: int, payload: bytes, extra: Sequence[tuple[str, str]] = ()) -> None:
            send(h11.Response(status_code=status, headers=[
                ("content-type", "text/plain"), ("content-length", str(len(payload))),
                ("x-dyno", self.name), *extra]))
            if payload:
                send(h11.Data(data=payload))
            send(h11.EndOfMessage())

        if path == "/slow":
            await asyncio.sleep(int(query.get("ms", "1000")) / 1000)
        if path == "/close":
            return False
        if path == "/hang":
            await asyncio.sleep(3600)
        if path in ("/partial", "/partial-idle"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain"
                         b"\r\n\r\n" + b"x" * 10)
            await writer.drain()
            if path == "/partial-idle":
                await asyncio.sleep(3600)
            return False
        if path == "/bad":
            writer.write(b"HTTP/1.1 two hundred\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            return False
        if path == "/echo":
            payload = json.dumps(self.requests[-1]).encode()
            response(200, payload, [("content-type", "application/json")])
        elif path == "/chunked":
            send(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked"),
                                                        ("x-dyno", self.name)]))
            for part in (b"one ", b"two ", b"three"):
                send(h11.Data(data=part))
            send(h11.EndOfMessage())
        elif path == "/big":
            response(200, b"b" * (int(query.get("kb", "64")) * 1024))
        elif path == "/status":
            response(int(query.get("code", "200")), b"status\n")
        else:
            response(200, b"ok\n", [("connection", "keep-alive"), ("keep-alive", "timeout=5")])
        await writer.drain()
        return True


def closed_port() -> str:
    """An address on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


class Blackhole:
    """A listener with listen(0) whose accept queue is full: new connects hang (H19)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self._fillers.append(filler)
        time.sleep(0.02)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self.sock.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogCapture:
    """Receives logplex-1 posts the way logplex does and keeps every line."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, logframe.LogMessage]] = []
        self.posts = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()

    async def start(self) -> LogCapture:
        app = web.Application()
        app.router.add_post("/logs", self._logs)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        # The type: ignore below: set once started.
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/logs"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> LogCapture:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _logs(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        token = ""
        if auth.startswith("Basic "):
            token = base64.b64decode(auth[6:]).decode().partition(":")[2]
        try:
            messages = logframe.parse(await request.read())
        except logframe.FrameError as exc:
            return web.Response(status=400, text=str(exc))
        self.posts += 1
        self.messages.extend((token, m) for m in messages)
        self._arrived.set()
        return web.Response(status=204)

    def lines(self, token: str | None = None, proc: str = "router") -> list[str]:
        return [m.text for t, m in self.messages
                if (token is None or t == token) and m.proc == proc]

    async def wait_for(self, pattern: str, token: str | None = None, timeout: float = 5.0,
                       count: int = 1) -> list[str]:
        """Wait until ``count`` router lines match ``pattern`` (re.search); return them."""
        regex = re.compile(pattern)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [line for line in self.lines(token) if regex.search(line)]
            if len(found) >= count:
                return found
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = "\n".join(self.lines(token)[-10:])
                raise AssertionError(f"no router line matching {pattern!r} in {timeout}s; "
                                     f"last lines:\n{seen}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                pass


class Reply:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
                 complete: bool) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.complete = complete  # False when the connection closed mid-response

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for n, v in self.headers:
            if n == key:
                return v.decode("latin-1")
        return None

    def __repr__(self) -> str:
        return f"Reply({self.status}, complete={self.complete}, body={self.body[:60]!r})"


async def fetch(port: int, path: str = "/", *, host: str = "web.simctl.test",
                method: str = "GET", headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", ssl: object = None, timeout: float = 10.0) -> Reply | None:
    """One request on a new connection; None if it closed before any response."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl)
    conn = h11.Connection(h11.CLIENT)
    all_headers = [("host", host), *(headers or [])]
    if body and not any(n.lower() in ("content-length", "transfer-encoding")
                        for n, _ in all_headers):
        all_headers.append(("content-length", str(len(body))))
    try:
        writer.write(conn.send(h11.Request(method=method, target=path, headers=all_headers)))
        if body:
            writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        status, resp_headers, data = 0, [], b""
        async with asyncio.timeout(timeout):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status, resp_headers = event.status_code, list(event.headers)
                elif isinstance(event, h11.Data):
                    data += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return Reply(status, resp_headers, data, True)
                elif isinstance(event, h11.ConnectionClosed):
                    break
    except h11.RemoteProtocolError:
        pass
    finally:
        writer.transport.abort()
    return Reply(status, resp_headers, data, False) if status else None


async def raw_request(port: int, data: bytes, *, timeout: float = 5.0, close: bool = False,
                      ssl: object = None) -> bytes:
    """Send raw bytes, return what comes back until the router closes (or ``timeout``).

    With ``close`` the client closes its side right after sending.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl)
    received = b""
    try:
        writer.write(data)
        if close:
            writer.transport.abort()
            return b""
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                received += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.transport.abort()
    return received


def _task_dump() -> str:
    lines = []
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=8)
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
        lines.append(f"  {task.get_name()}: {where}")
    return "\n".join(lines)


class RouterStack:
    """A log capture, a sync service and a router in this process (fast timing)."""

    def __init__(self, dynos: dict[str, str] | None = None, *, timing: Timing = FAST,
                 app: str = "web", domain: str = "web.simctl.test", tls: bool = False) -> None:
        self.timing = timing
        self.app = app
        self.domain = domain
        self.tls = tls
        self.dynos = dynos or {}
        self.capture = LogCapture()
        self.sync: SyncService | None = None
        self.router: RouterService | None = None

    async def __aenter__(self) -> RouterStack:
        try:
            await self.capture.start()
            apps = parse_apps({self.app: {"domains": [self.domain], "dynos": [
                {"name": n, "address": a} for n, a in self.dynos.items()]}})
            self.sync = SyncService(self.timing, apps)
            await self.sync.listen()
            self.router = RouterService(self.timing, sync_url=self.sync.url,
                                        logplex_url=self.capture.url,
                                        tls_port=0 if self.tls else -1)
            await self.router.listen()
            await self.synced()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        steps = [("router", self.router), ("sync", self.sync)]
        for name, service in steps:
            if service is not None:
                try:
                    async with asyncio.timeout(15):
                        await service.close()
                except TimeoutError:
                    raise AssertionError(f"{name} did not close within 15s; tasks:\n"
                                         + _task_dump()) from None
        await self.capture.stop()

    @property
    def port(self) -> int:
        assert self.router is not None
        return self.router.http_port

    async def synced(self, timeout: float = 5.0) -> None:
        """Wait until the router applied everything the sync service has."""
        assert self.router is not None
        assert self.router.core is not None
        assert self.sync is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.router.core.table.version != self.sync.version:
            if loop.time() > deadline:
                raise AssertionError(f"router at version {self.router.core.table.version}, "
                                     f"sync at {self.sync.version}")
            await asyncio.sleep(0.01)

    async def get(self, path: str = "/", **kwargs: object) -> Reply | None:
        kwargs.setdefault("host", self.domain)
        # The type: ignore below: kwargs are fetch()'s keywords.
        return await fetch(self.port, path, **kwargs)  # type: ignore[arg-type]

    async def line(self, pattern: str, timeout: float = 5.0) -> str:
        """The last router line (shipped to logplex as t.APP) that matches ``pattern``."""
        return (await self.capture.wait_for(pattern, f"t.{self.app}", timeout))[-1]

    async def set_dynos(self, dynos: dict[str, str], state: str = "up") -> None:
        assert self.sync is not None
        self.sync.append({"op": "dynos", "app": self.app, "dynos": [
            {"name": n, "address": a, "state": state} for n, a in dynos.items()]})
        await self.synced()
