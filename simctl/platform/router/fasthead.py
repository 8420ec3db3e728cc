"""The fast path for request heads: httptools (llhttp, C) for the plain, common case.

h11 validates everything a client may send and stays the judge of anything unusual, but
it costs about 50 us of CPU per request in pure Python. Most requests are plain: a
complete head, no body, one Host. For those, llhttp parses the head in a few
microseconds. Whatever is not plainly acceptable to both parsers goes to h11 unchanged
(``SLOW``): llhttp errors, bodies and framing headers, Expect, Upgrade and CONNECT,
HTTP versions other than 1.0/1.1, a missing or repeated Host, non-ASCII bytes, bare-LF
line ends, heads over the size limit. So a request h11 would reject never gets in here,
and every error keeps its h11 answer (H26, 400 or 414).
"""

from __future__ import annotations

import httptools

SLOW = object()  # not for the fast path: let h11 parse it
_END = b"\r\n\r\n"
_SLOW_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade"})
_VERSIONS = {"1.1": b"1.1", "1.0": b"1.0"}


class RequestHead:
    """What the router reads from an h11.Request, for heads parsed here."""

    __slots__ = ("method", "target", "http_version", "headers")

    def __init__(self, method: bytes, target: bytes, http_version: bytes,
                 headers: list[tuple[bytes, bytes]]) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers  # (lower-case name, value)


class _Callbacks:
    __slots__ = ("target", "headers", "complete")

    def __init__(self) -> None:
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.strip(b" \t")))

    def on_message_complete(self) -> None:
        self.complete = True


def parse(buf: bytearray, limit: int, eof: bool) -> RequestHead | object | None:
    """Take one plain request head off the front of ``buf``.

    Returns the head (its bytes removed from ``buf``), None when the head is not complete
    yet, or SLOW (``buf`` untouched) when h11 must decide.
    """
    end = buf.find(_END)
    if end < 0:
        # h11 handles heads ended by bare LFs, oversized heads and a client that left
        if eof or len(buf) > limit or b"\n\n" in buf or b"\n\r\n" in buf:
            return SLOW
        return None
    size = end + 4
    if size > limit:
        return SLOW
    head = bytes(buf[:size])
    if not head.isascii():
        return SLOW
    callbacks = _Callbacks()
    parser = httptools.HttpRequestParser(callbacks)
    try:
        parser.feed_data(head)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):  # Upgrade, CONNECT too
        return SLOW
    version = _VERSIONS.get(parser.get_http_version())
    if not callbacks.complete or version is None:
        return SLOW
    hosts = 0
    for name, _ in callbacks.headers:
        if name in _SLOW_HEADERS:
            return SLOW
        if name == b"host":
            hosts += 1
    if hosts != 1:
        return SLOW
    del buf[:size]
    return RequestHead(parser.get_method(), callbacks.target, version, callbacks.headers)
