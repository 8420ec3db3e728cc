"""Hostile input never takes the router down: it always answers the next good request.

The router runs in a background thread (its own event loop) so hypothesis can drive it
with plain blocking sockets, one connection per example.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simctl.platform.router.testing import FakeDyno, RouterStack

HOST = b"web.simctl.test"
GOOD = b"GET / HTTP/1.1\r\nHost: web.simctl.test\r\nConnection: close\r\n\r\n"
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Background:
    """A dyno and a router stack on an event loop in another thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.dyno = FakeDyno("web.1")
        self.stack: RouterStack | None = None

    def run(self, coro: object, timeout: float = 30) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore

    def start(self) -> None:
        self.thread.start()
        self.run(self.dyno.start())
        self.stack = RouterStack({"web.1": self.dyno.address})
        self.run(self.stack.__aenter__())

    def stop(self) -> None:
        if self.stack is not None:
            self.run(self.stack.__aexit__())
        self.run(self.dyno.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        assert self.stack is not None
        return self.stack.port

    def state(self) -> dict[str, object]:
        async def read() -> dict[str, object]:
            assert self.stack is not None
            assert self.stack.router is not None
            return self.stack.router.core.state()  # type: ignore[union-attr]
        return self.run(read())  # type: ignore[return-value]


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    errors = _Errors()
    logging.getLogger("simctl").addHandler(errors)
    bg = Background()
    bg.start()
    try:
        yield bg
    finally:
        bg.stop()
        logging.getLogger("simctl").removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


def exchange(port: int, data: bytes, *, half_close: bool = True, timeout: float = 3.0) -> bytes:
    """Send ``data``, close our sending side, read until the router closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the router already gave up on us (that is allowed)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
        return received


def assert_alive(port: int) -> None:
    answer = exchange(port, GOOD, half_close=False)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def assert_http_or_nothing(answer: bytes) -> None:
    assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:200]


token = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCXYZ",
                min_size=1, max_size=12).map(str.encode)
junk = st.binary(max_size=300)
header_value = st.one_of(
    st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from([b"", b" ", b"chunked", b"5", b"-1", b"5, 6", b"100-continue", b"x" * 9000,
                     b"\x00", b"gzip, chunked", b"0x10", b"99999999999999999999999"]),
)
header_name = st.one_of(token, st.sampled_from([
    b"Host", b"Content-Length", b"Transfer-Encoding", b"Expect", b"Connection", b"X-Request-Id",
    b"Upgrade", b"Te", b"X-Forwarded-For", b"Bad Name", b"", b"Host:"]))


@FUZZ
@given(method=st.one_of(token, st.sampled_from([b"GET", b"POST", b"CONNECT", b"get", b""])),
       target=st.one_of(st.binary(max_size=60), st.sampled_from([b"/", b"*", b"http://x/y",
                                                                 b"/" + b"a" * 9000])),
       version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1",
                                b"", b"HTTP/1.1 extra"]),
       ending=st.sampled_from([b"\r\n", b"\n", b"\r", b""]))
def test_fuzzed_request_lines(background: Background, method: bytes, target: bytes,
                              version: bytes, ending: bytes) -> None:
    line = b" ".join(p for p in (method, target, version) if p)
    answer = exchange(background.port, line + ending + b"Host: web.simctl.test" + ending * 2)
    assert_http_or_nothing(answer)
    assert_alive(background.port)


@FUZZ
@given(headers=st.lists(st.tuples(header_name, header_value), max_size=8),
       body=st.binary(max_size=64), host=st.sampled_from([True, False]))
def test_fuzzed_headers(background: Background, headers: list[tuple[bytes, bytes]],
                        body: bytes, host: bool) -> None:
    head = b"POST /fuzz HTTP/1.1\r\n" + (b"Host: web.simctl.test\r\n" if host else b"")
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    answer = exchange(background.port, head + b"\r\n" + body)
    assert_http_or_nothing(answer)
    assert_alive(background.port)


@FUZZ
@given(chunks=st.lists(st.one_of(
    st.binary(min_size=1, max_size=20).map(lambda b: b"%x\r\n%s\r\n" % (len(b), b)),
    st.sampled_from([b"zz\r\nab\r\n", b"5\r\nab\r\n", b"-1\r\n", b"5;ext=1\r\nhello\r\n",
                     b"ffffffffffffffffffff\r\n", b"3\r\nabcdef\r\n", b"\r\n", b"0\r\n\r\n",
                     b"0\r\nTrailer: x\r\n\r\n", b"2\nab\n"])), max_size=6),
    content_length=st.sampled_from([None, b"3", b"100"]))
def test_fuzzed_chunked_bodies(background: Background, chunks: list[bytes],
                               content_length: bytes | None) -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: web.simctl.test\r\nTransfer-Encoding: chunked\r\n"
    if content_length is not None:
        head += b"Content-Length: " + content_length + b"\r\n"
    answer = exchange(background.port, head + b"\r\n" + b"".join(chunks))
    assert_http_or_nothing(answer)
    assert_alive(background.port)


@FUZZ
@given(data=junk)
def test_fuzzed_garbage(background: Background, data: bytes) -> None:
    assert_http_or_nothing(exchange(background.port, data))
    assert_alive(background.port)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=200), abort=st.booleans())
def test_clients_vanishing_mid_request(background: Background, cut: int, abort: bool) -> None:
    request = (b"POST /slow?ms=50 HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 60\r\n"
               b"X-Request-Id: fuzz-fuzz-fuzz-fuzz-fuzz\r\n\r\n" + b"b" * 60)
    with socket.create_connection(("127.0.0.1", background.port), timeout=3) as sock:
        sock.sendall(request[:cut])
        if abort:  # RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert_alive(background.port)


def storm(port: int) -> int:
    """A bounded burst of the hostile clients above: vanishing mid-request (FIN and RST),
    a bad chunk, a request line cut short, garbage. Returns how many connections it made."""
    request = (b"POST /slow?ms=50 HTTP/1.1\r\nHost: web.simctl.test\r\nContent-Length: 60\r\n"
               b"\r\n" + b"b" * 60)
    for i, cut in enumerate(range(0, len(request), 12)):
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(request[:cut])
            if i % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    chunked = b"POST /echo HTTP/1.1\r\nHost: web.simctl.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    bad = (chunked + b"zz\r\nab\r\n", chunked + b"5\r\nab", b"GET / HTT", b"\x00\xff" * 50)
    for data in bad:
        assert_http_or_nothing(exchange(port, data))
    return i + 1 + len(bad)


def test_nothing_leaks_after_the_storm(background: Background) -> None:
    """After a storm of its own (whatever ran before), no connection, slot or backlog
    entry is left behind."""
    def accepted() -> int:
        counts = background.state()["accepted"]
        assert isinstance(counts, dict)
        return sum(counts.values())

    before = accepted()
    made = storm(background.port)
    assert accepted() >= before + made  # the router saw the whole storm
    for _ in range(40):  # the storm's clients (and earlier tests') may still be closing
        state = background.state()
        if state["connections"] == 0 and state["inflight"] == 0:
            break
        threading.Event().wait(0.1)
    state = background.state()
    assert state["connections"] == 0
    assert state["inflight"] == 0
    assert state["backlog"] in ({}, {"web": 0})
    assert_alive(background.port)
