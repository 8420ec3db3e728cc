"""application/logplex-1 framing: RFC 6587 octet-counted RFC 5424 messages
(docs/platform.md, "Logplex framing").

A body is ``<len> <msg>`` repeated with no separator; ``len`` counts the bytes of
``msg``. Input messages look like ``<134>1 TS HOST APP PROC - - text``; Logplex's
output to drains omits the structured-data field: ``<134>1 TS HOST APP PROC - text``.
The two variants cannot be told apart from the text alone (a message may itself start
with ``- ``), so a reader of Logplex's output parses with ``structured=False``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

CONTENT_TYPE = "application/logplex-1"
MAX_LINE = 10_000  # Logplex's maximum message size: shippers split, logplex truncates
# Matched on the decoded message (one decode per frame, not one per field). ASCII
# classes so that \d and \S mean what they mean in the byte-oriented RFC.
_FIELDS = r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) "
_HEADER = {  # by ``structured``: optional (lenient input), required, absent (output)
    None: re.compile(_FIELDS + r"(?:- |\[.*?\] )?(.*)", re.S | re.A),
    True: re.compile(_FIELDS + r"(?:- |\[.*?\] )(.*)", re.S | re.A),
    False: re.compile(_FIELDS + r"(.*)", re.S | re.A),
}


class FrameError(ValueError):
    """A body that is not valid logplex-1."""


@dataclass(frozen=True)
class LogMessage:
    app: str  # APP-NAME: "app" for dyno output, "heroku" for platform lines
    proc: str  # PROCID: web.1, router, logplex, log-shuttle, ...
    text: str
    timestamp: str = ""
    host: str = "host"
    priority: int = 190  # local7.info, log-shuttle's default
    frame_id: str = ""  # set by drains that record the Logplex-Frame-Id

    def with_frame(self, frame_id: str) -> LogMessage:
        return LogMessage(self.app, self.proc, self.text, self.timestamp, self.host,
                          self.priority, frame_id)

    def display(self) -> str:
        """``heroku logs`` format: ``TS source[proc]: text``, on one line whatever the text
        holds (control characters escaped, see :func:`printable`)."""
        return f"{self.timestamp} {self.app}[{self.proc}]: {printable(self.text)}"


# C0 controls but tab, DEL, and C1 controls (an 8-bit CSI starts terminal sequences too)
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c != 0x09}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r"})
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with newlines and terminal control characters written as escapes.

    A log line is data from an app: an embedded newline could forge a second line
    (``heroku[router]: ...``), and an escape sequence could retitle or repaint the
    reader's terminal. Tabs and all other characters pass unchanged.
    """
    if _CONTROL.search(text) is None:  # the common case: nothing to copy
        return text
    return text.translate(_ESCAPES)


def now_rfc5424() -> str:
    """The current time as an RFC 5424 timestamp with microseconds (``...+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _field(value: str) -> str:
    """A header field is one non-empty run of printable, non-space characters."""
    if value and value.isprintable() and " " not in value:
        return value
    return "".join(c if c.isprintable() and c != " " else "_" for c in value) or "-"


def encode(message: LogMessage, *, structured: bool = True) -> bytes:
    """One octet-counted frame. Header fields that would break the frame are made safe
    (spaces and control characters become ``_``, an empty field ``-``); characters that
    UTF-8 cannot carry (lone surrogates) become ``?``."""
    sd = "- - " if structured else "- "
    ts = _field(message.timestamp or now_rfc5424())
    head = f"<{message.priority}>1 {ts} {_field(message.host)} {_field(message.app)}"
    raw = f"{head} {_field(message.proc)} {sd}{message.text}".encode(errors="replace")
    return b"%d %s" % (len(raw), raw)


def encode_many(messages: Iterable[LogMessage], *, structured: bool = True) -> bytes:
    """The frames of ``messages``, concatenated: ``b"".join(encode(m) for m in messages)``.

    The hot path of every shipper and of the load generator: a message whose header
    fields are already safe and whose line is ASCII is formatted as text, and the whole
    body is encoded once (for ASCII, characters are bytes, so the octet count is the
    length of the string)."""
    sd = "- - " if structured else "- "
    parts: list[str] = []
    append = parts.append
    slow: list[bytes] | None = None  # set once a message needs encode(): bytes from then on
    for m in messages:
        ts = m.timestamp or now_rfc5424()
        host, app, proc = m.host, m.app, m.proc
        raw = f"<{m.priority}>1 {ts} {host} {app} {proc} {sd}{m.text}"
        fast = (raw.isascii() and host and app and proc
                and raw.count(" ", 0, len(raw) - len(m.text)) == 6 + (sd == "- - ")
                and f"{ts}{host}{app}{proc}".isprintable())
        if slow is None:
            if fast:
                append(f"{len(raw)} {raw}")
                continue
            slow = [("".join(parts)).encode("ascii")]
        if fast:
            slow.append(f"{len(raw)} {raw}".encode("ascii"))
        else:
            slow.append(encode(m, structured=structured))
    if slow is None:
        return "".join(parts).encode("ascii")
    return b"".join(slow)


def truncate(text: str, limit: int = MAX_LINE) -> str | None:
    """``text`` cut to at most ``limit`` UTF-8 bytes (never inside a character), or None
    when it already fits."""
    if len(text) * 4 <= limit:  # no character takes more than 4 bytes
        return None
    raw = text.encode(errors="replace")
    if len(raw) <= limit:
        return None
    end = limit
    while end > 0 and raw[end] & 0xC0 == 0x80:
        end -= 1  # back off to the first byte of a character
    return raw[:end].decode(errors="replace")


def split_long(text: str, limit: int = MAX_LINE) -> list[str]:
    """Split a line into chunks of at most ``limit`` UTF-8 bytes, never inside a character."""
    raw = text.encode(errors="replace")
    if len(raw) <= limit:
        return [text]
    chunks, start = [], 0
    while start < len(raw):
        end = min(start + limit, len(raw))
        while end < len(raw) and end > start + 1 and raw[end] & 0xC0 == 0x80:
            end -= 1  # back off to the first byte of a character
        chunks.append(raw[start:end].decode(errors="replace"))
        start = end
    return chunks


Fields = tuple[int, str, str, str, str, str]  # priority, timestamp, host, app, proc, text


def parse(
    body: bytes, *, limit: int = 100_000, structured: bool | None = None
) -> list[LogMessage]:
    """Parse a whole body; any malformed frame rejects the body (FrameError).

    ``structured``: None accepts both variants (a ``- `` or ``[...] `` after MSGID is
    taken as STRUCTURED-DATA), True requires the field (input), False reads Logplex's
    output variant, where everything after MSGID is the text.
    """
    messages: list[LogMessage] = []
    append = messages.append
    for priority, ts, host, app, proc, text in parse_fields(
            body, limit=limit, structured=structured):
        # The hot path of ingest: filling __dict__ directly is a third of the cost of
        # the frozen dataclass __init__, and builds the same object.
        message = _new(LogMessage)
        _set(message, "__dict__", {
            "app": app, "proc": proc, "text": text, "timestamp": ts,
            "host": host, "priority": priority, "frame_id": "",
        })
        append(message)
    return messages


def parse_fields(
    body: bytes, *, limit: int = 100_000, structured: bool | None = None
) -> list[Fields]:
    """:func:`parse`, as plain tuples ``(priority, timestamp, host, app, proc, text)``:
    for a reader that stores rows rather than keeping messages (the drain)."""
    fields = _fields_ascii(body, limit, structured)
    return fields if fields is not None else _fields_any(body, limit, structured)


# The whole frame head at once, matched where a frame starts in a body decoded as one
# ASCII string: octet count, PRI, VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID.
_HEAD = re.compile(r"(\d{1,7}) <(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ", re.A)
_SD = re.compile(r"- |\[.*?\] ", re.S | re.A)


def _fields_ascii(body: bytes, limit: int, structured: bool | None) -> list[Fields] | None:
    """The fast path, for ASCII bodies (almost all of them): one decode per body, and no
    slicing before the match, since in ASCII a byte offset is a character offset. It
    returns None for anything unusual (non-ASCII, a malformed frame, the limit), and
    :func:`_fields_any` then gives the answer or the precise error. A match here is the
    match :func:`_fields_any` makes: the head's fields cannot contain a space, so a
    head that ends inside the frame is the head the frame alone would give."""
    if not body.isascii():
        return None
    text = body.decode("ascii")
    out: list[Fields] = []
    append = out.append
    head, sd = _HEAD.match, _SD.match
    optional = structured is None
    pos, end = 0, len(text)
    while pos < end:
        m = head(text, pos)
        if m is None:
            return None
        count, pri, ts, host, app, proc, _msgid = m.groups()
        stop = m.start(2) - 1 + int(count)  # the frame is text[m.start(2) - 1:stop]
        start = m.end()
        priority = int(pri)
        if start > stop or stop > end or priority > 191:
            return None
        if structured is not False:
            if text.startswith("- ", start, stop):
                start += 2
            elif (d := sd(text, start, stop)) is not None:
                start = d.end()
            elif not optional:
                return None
        line = text[start:stop]
        if line[-1:] == "\n":
            line = line.rstrip("\n")
        append((priority, ts, host, app, proc, line))
        pos = stop
    if not out or len(out) > limit:
        return None
    return out


def _fields_any(body: bytes, limit: int, structured: bool | None) -> list[Fields]:
    header = _HEADER[structured]
    fields: list[Fields] = []
    append = fields.append
    pos, end = 0, len(body)
    while pos < end:
        space = body.find(b" ", pos, pos + 8)
        if space <= pos or not body[pos:space].isdigit():
            raise FrameError(f"bad octet count at byte {pos}")
        length = int(body[pos:space])
        start = space + 1
        if length == 0 or start + length > end:
            raise FrameError(f"frame at byte {pos} claims {length} bytes, body has {end - start}")
        match = header.fullmatch(body[start:start + length].decode(errors="replace"))
        if match is None:
            raise FrameError(f"frame at byte {pos} is not an RFC 5424 message")
        pri, ts, host, app, proc, _msgid, text = match.groups()
        priority = int(pri)
        if priority > 191:
            raise FrameError(f"frame at byte {pos} has priority {priority} > 191")
        append((priority, ts, host, app, proc, text.rstrip("\n")))
        if len(fields) > limit:
            raise FrameError("too many messages in one body")
        pos = start + length
    if not fields:
        raise FrameError("empty body")
    return fields


_new = object.__new__
_set = object.__setattr__
