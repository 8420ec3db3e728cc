"""The load generator's raw HTTP/1.1 client against a server sending canned bytes."""

from __future__ import annotations

import asyncio

import pytest

from simctl.load.rawhttp import (
    ConnectFailed,
    Disconnected,
    ProtocolFailure,
    RawClient,
    RequestTimeout,
)


class Canned:
    """A TCP server answering each request head with the next canned response.

    A response is (bytes, then) where then is "keep" (wait for the next request),
    "close" (close after writing) or "drip" (write one byte at a time, then keep).
    """

    def __init__(self, responses: list[tuple[bytes, str]]) -> None:
        self.responses = responses
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Canned:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/path?q=1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not self.responses:  # never answer; wait for the client to leave
                    await reader.read()
                    break
                self.requests.append(head)
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length:
                    self.requests.append(await reader.readexactly(length[0]))
                data, then = self.responses.pop(0)
                if then == "drip":
                    for i in range(len(data)):
                        writer.write(data[i:i + 1])
                        await writer.drain()
                        await asyncio.sleep(0)
                else:
                    writer.write(data)
                    await writer.drain()
                if then == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()
        self._writers.discard(writer)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


async def test_keep_alive_reuses_one_connection_and_sends_the_request_once_built():
    async with Canned([(OK, "keep"), (OK, "keep"), (OK, "keep")]) as server:
        client = RawClient(server.url, host="shop.example", headers={"X-Test": "1"})
        for _ in range(3):
            reply = await client.request()
            assert (reply.status, reply.nbytes, reply.router_code) == (200, 5, None)
        await client.close()
    assert server.connections == 1
    head = server.requests[0]
    assert head.startswith(b"GET /path?q=1 HTTP/1.1\r\n")
    assert b"\r\nHost: shop.example\r\n" in head
    assert b"\r\nX-Test: 1\r\n" in head


async def test_chunked_body_dripped_byte_by_byte():
    chunked = (b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
               b"X-Router-Code: H12\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
    async with Canned([(chunked, "drip"), (OK, "keep")]) as server:
        client = RawClient(server.url)
        reply = await client.request()
        assert (reply.status, reply.nbytes, reply.router_code) == (503, 11, "H12")
        assert (await client.request()).status == 200
        await client.close()
    assert server.connections == 1


async def test_body_until_close_and_http10():
    async with Canned([(b"HTTP/1.1 200 OK\r\n\r\n" + b"z" * 5000, "close"),
                       (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", "keep"),
                       (OK, "keep")]) as server:
        client = RawClient(server.url)
        assert (await client.request()).nbytes == 5000
        assert (await client.request()).nbytes == 2
        assert (await client.request()).nbytes == 5
        await client.close()
    assert server.connections == 3  # neither a close-delimited nor an HTTP/1.0 reply is reused


async def test_interim_100_and_bodiless_responses():
    async with Canned([(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, "keep"),
                       (b"HTTP/1.1 204 No Content\r\n\r\n", "keep"),
                       (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", "keep")]
                      ) as server:
        client = RawClient(server.url, method="POST", body=b"data")
        assert (await client.request()).status == 200
        assert (await client.request()).status == 204
        assert (await client.request()).status == 304
        await client.close()
    assert server.requests[1] == b"data"
    assert b"\r\nContent-Length: 4\r\n" in server.requests[0]
    assert server.connections == 1


async def test_head_has_no_body():
    async with Canned([(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", "keep"),
                       (OK, "keep")]) as server:
        client = RawClient(server.url, method="HEAD")
        assert (await client.request()).nbytes == 0
        await client.close()


async def test_connection_close_header_and_a_stale_kept_alive_connection():
    # The server closes without saying so; the reused connection fails before any
    # byte, and the client retries once on a new connection.
    async with Canned([(OK, "close"), (OK, "keep")]) as server:
        client = RawClient(server.url)
        assert (await client.request()).status == 200
        await asyncio.sleep(0.05)
        assert (await client.request()).status == 200
        await client.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", ProtocolFailure),
        (b"HTTP/1.1 abc OK\r\n\r\n", ProtocolFailure),
        (b"HTTP/1.1 200 OK\r\nno-colon-here\r\n\r\n", ProtocolFailure),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ProtocolFailure),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", Disconnected),
        (b"", Disconnected),
    ],
)
async def test_bad_responses_are_classified(response, error):
    async with Canned([(response, "close")]) as server:
        client = RawClient(server.url)
        with pytest.raises(error):
            await client.request()
        await client.close()


async def test_timeout_and_refused():
    async with Canned([]) as server:  # accepts, reads, never answers
        client = RawClient(server.url, timeout=0.2)
        with pytest.raises(RequestTimeout):
            await client.request()
        await client.close()
    client = RawClient(server.url)
    with pytest.raises(ConnectFailed):
        await client.request()
    await client.close()


def test_bad_url():
    with pytest.raises(ValueError, match="not an http"):
        RawClient("ftp://x/")
