"""Reading a dyno's response: a small HTTP/1.x response parser for the proxy's hot path.

The client side of the router uses h11, which validates everything a client may send.
Dynos are trusted a little more, and the router reads their responses with this parser,
which does only what relaying needs and maps what it rejects to Heroku's codes:

- a status line that is not ``HTTP/1.x NNN REASON`` (the reason may be empty, but the
  space before it may not be missing: ``HTTP/1.1 200`` is H17), a header line without a
  colon, obsolete line folding, a bad chunk size: ``ResponseError("H17")``
- Content-Length values that disagree or are not numbers, or a head over 512 KiB:
  ``ResponseError("H25")`` (HTTP Restriction,
  docs/platform.md, "Vegur's failures and their codes")
- the connection closing before the response is complete: ``Truncated``

``next_event()`` returns a ``Head``, body bytes, ``END`` or ``NEED_DATA``. Bodies come
out de-chunked; the client side frames them again for its peer. ``reusable`` tells
whether the connection may carry another request once the response has ended.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_HEAD = 512 * 1024  # Vegur's max_client_header_length
MAX_STATUS_LINE = 8192  # Vegur's max_client_status_length
NEED_DATA = object()
END = object()
_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9]\d\d) ([^\r\n]*)")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# one pass over all header lines (each ended by \n here): checked at once, then split
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([^\r\n\0]*)\r*\n")
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\0]*\r*\n)*")
_CHUNK = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


class ResponseError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Truncated(Exception):
    """The dyno closed the connection before the end of the response."""


class Head(NamedTuple):
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]  # names in lower case
    http_version: bytes


class ResponseParser:
    def __init__(self, head_request: bool = False) -> None:
        self.head_request = head_request
        self.head: Head | None = None
        self._buf = b""
        self._eof = False
        self._mode = "head"  # head | length | chunk-size | chunk-data | chunk-end | trailers
        self._left = 0  #      | close | done
        self._scan = 0
        self._persistent = False  # HTTP/1.1, no Connection: close, not framed by the close

    @property
    def reusable(self) -> bool:
        """The response ended on its own framing, nothing follows it, keep-alive allowed."""
        return self._mode == "done" and self._persistent and not self._buf and not self._eof

    def feed(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data

    def feed_eof(self) -> None:
        self._eof = True

    def next_event(self) -> object:
        mode = self._mode
        if mode == "length":
            return self._length()
        if mode == "head":
            return self._head()
        if mode == "close":
            if self._buf:
                data, self._buf = self._buf, b""
                return data
            if self._eof:
                self._mode = "done"
                return END
            return NEED_DATA
        if mode == "done":
            return NEED_DATA
        return self._chunked()

    # head ------------------------------------------------------------------------------------

    def _head(self) -> object:
        buf = self._buf
        match = _HEAD_END.search(buf, self._scan)
        if match is None:
            if len(buf) > MAX_HEAD:
                raise ResponseError("H25", "oversized header")
            if self._eof:
                raise Truncated("closed in the response head")
            self._scan = max(0, len(buf) - 3)
            return NEED_DATA
        raw, self._buf, self._scan = buf[:match.start()], buf[match.end():], 0
        if len(raw) > MAX_HEAD:
            raise ResponseError("H25", "oversized header")
        status_line, newline, block = raw.partition(b"\n")
        status_line = status_line.rstrip(b"\r")
        if len(status_line) > MAX_STATUS_LINE:
            raise ResponseError("H25", "oversized status line")
        status = _STATUS.fullmatch(status_line)
        if status is None:
            raise ResponseError("H17", f"bad status line {status_line[:80]!r}")
        headers = _headers(block + b"\n") if newline else []
        code = int(status.group(2))
        if code < 200:
            if code == 101:
                raise ResponseError("H17", "unexpected 101 Switching Protocols")
            return self._head()  # 100 Continue and friends are not relayed
        self.head = Head(code, status.group(3), headers, b"1." + status.group(1))
        self._framing(code, headers)
        self._persistent = (status.group(1) == b"1" and self._mode != "close"
                            and not _says_close(headers))
        return self.head

    def _framing(self, code: int, headers: list[tuple[bytes, bytes]]) -> None:
        if self.head_request or code in (204, 304):
            self._mode, self._left = "length", 0
            return
        lengths: set[bytes] = set()
        chunked = close = False
        for name, value in headers:
            if name == b"transfer-encoding":
                codings = [c.strip().lower() for c in value.split(b",") if c.strip()]
                chunked, close = codings[-1:] == [b"chunked"], codings[-1:] != [b"chunked"]
            elif name == b"content-length":
                lengths.update(v.strip() for v in value.split(b","))
        if chunked or close:  # Transfer-Encoding beats Content-Length
            self._mode = "chunk-size" if chunked else "close"
            return
        if not lengths:
            self._mode = "close"
            return
        if len(lengths) > 1:
            raise ResponseError("H25", "conflicting content-length")
        (length,) = lengths
        if not length.isdigit() or len(length) > 18:
            raise ResponseError("H25", f"invalid content-length {length[:40]!r}")
        self._mode, self._left = "length", int(length)

    # bodies ----------------------------------------------------------------------------------

    def _length(self) -> object:
        left = self._left
        if left == 0:
            self._mode = "done"
            return END
        buf = self._buf
        if not buf:
            if self._eof:
                raise Truncated(f"closed with {left} body bytes to go")
            return NEED_DATA
        if len(buf) <= left:
            self._buf = b""
            self._left = left - len(buf)
            return buf
        self._buf, self._left = buf[left:], 0
        return buf[:left]

    def _chunked(self) -> object:
        while True:
            mode, buf = self._mode, self._buf
            if mode == "chunk-data":
                if not buf:
                    break
                left = self._left
                if len(buf) <= left:
                    self._buf, self._left = b"", left - len(buf)
                    if self._left == 0:
                        self._mode = "chunk-end"
                    return buf
                self._buf, self._left, self._mode = buf[left:], 0, "chunk-end"
                return buf[:left]
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > 4096:
                    raise ResponseError("H17", "bad chunk: line too long")
                break
            line, self._buf = buf[:end + 1], buf[end + 1:]
            if mode == "chunk-end":
                if line.strip(b"\r\n"):
                    raise ResponseError("H17", "bad chunk: no CRLF after the data")
                self._mode = "chunk-size"
            elif mode == "chunk-size":
                size = _CHUNK.fullmatch(line)
                if size is None:
                    raise ResponseError("H17", f"bad chunk size line {line[:40]!r}")
                self._left = int(size.group(1), 16)
                self._mode = "chunk-data" if self._left else "trailers"
            else:  # trailers: skipped up to the empty line
                if not line.strip(b"\r\n"):
                    self._mode = "done"
                    return END
        if self._eof:
            raise Truncated("closed in a chunked body")
        return NEED_DATA


def _headers(block: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value) of each ``name: value\\n`` line, or H17 naming the bad one."""
    if _HEADER_BLOCK.fullmatch(block):
        return [(name.lower(), value.strip(b" \t")) for name, value in _HEADER.findall(block)]
    for line in block[:-1].split(b"\n"):
        line = line.rstrip(b"\r")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or b"\r" in value or b"\0" in value:
            raise ResponseError("H17", f"bad header line {line[:80]!r}")
    raise AssertionError("unreachable: a block that fails the pattern has a bad line")


def _says_close(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"connection" and b"close" in value.lower() for name, value in headers)
