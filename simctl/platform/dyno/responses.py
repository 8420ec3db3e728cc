"""Response helpers for the dyno app: byte bodies, dropped connections, errors."""

from __future__ import annotations

from aiohttp import web

from simctl.platform.dyno.memory import MB

MAX_BYTES = 100 * MB  # largest /bytes/N
CHUNK = b"x" * 65536


async def write_bytes(resp: web.StreamResponse, size: int) -> None:
    """Write ``size`` filler bytes to a prepared response."""
    while size > 0:
        chunk = CHUNK if size >= len(CHUNK) else CHUNK[:size]
        await resp.write(chunk)
        size -= len(chunk)


async def filler(request: web.Request, size: int, headers: dict[str, str]) -> web.StreamResponse:
    """``size`` bytes with a Content-Length; streamed when over one chunk."""
    if size <= len(CHUNK):
        return web.Response(body=CHUNK[:size], headers=headers,
                            content_type="application/octet-stream")
    resp = web.StreamResponse(headers=headers)
    resp.content_type = "application/octet-stream"
    resp.content_length = size
    await resp.prepare(request)
    try:
        await write_bytes(resp, size)
    except ConnectionError:
        pass
    return resp


def bytes_size(path: str) -> int | None:
    """N from ``/bytes/N``, or None if it is not a number in range."""
    try:
        size = int(path[len("/bytes/"):])
    except ValueError:
        return None
    return size if 0 <= size <= MAX_BYTES else None


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without (more) response; aiohttp then writes nothing.

    aiohttp finds the transport closing when it tries to send the returned response,
    treats that as a client that went away, and moves on.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response()


def error_json(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
