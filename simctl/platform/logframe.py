"""application/logplex-1 framing: RFC 6587 octet-counted RFC 5424 messages (domain.md 4.2).

A body is ``<len> <msg>`` repeated with no separator; ``len`` counts the bytes of
``msg``. Input messages look like ``<134>1 TS HOST APP PROC - - text``; Logplex's
output to drains omits the structured-data field: ``<134>1 TS HOST APP PROC - text``.
The two variants cannot be told apart from the text alone (a message may itself start
with ``- ``), so a reader of Logplex's output parses with ``structured=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

CONTENT_TYPE = "application/logplex-1"
MAX_LINE = 10_000  # Logplex's maximum message size; longer lines are split
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
        """``heroku logs`` format: ``TS source[proc]: text``."""
        return f"{self.timestamp} {self.app}[{self.proc}]: {self.text}"


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


def encode_many(messages: list[LogMessage], *, structured: bool = True) -> bytes:
    return b"".join(encode(m, structured=structured) for m in messages)


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


def parse(
    body: bytes, *, limit: int = 100_000, structured: bool | None = None
) -> list[LogMessage]:
    """Parse a whole body; any malformed frame rejects the body (FrameError).

    ``structured``: None accepts both variants (a ``- `` or ``[...] `` after MSGID is
    taken as STRUCTURED-DATA), True requires the field (input), False reads Logplex's
    output variant, where everything after MSGID is the text.
    """
    header = _HEADER[structured]
    messages: list[LogMessage] = []
    append = messages.append
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
        append(_message(match, pos))
        if len(messages) > limit:
            raise FrameError("too many messages in one body")
        pos = start + length
    if not messages:
        raise FrameError("empty body")
    return messages


_new = object.__new__
_set = object.__setattr__


def _message(match: re.Match[str], offset: int) -> LogMessage:
    pri, ts, host, app, proc, _msgid, text = match.groups()
    priority = int(pri)
    if priority > 191:
        raise FrameError(f"frame at byte {offset} has priority {priority} > 191")
    # The hot path of ingest: filling __dict__ directly is a third of the cost of the
    # frozen dataclass __init__, and builds the same object.
    message = _new(LogMessage)
    _set(message, "__dict__", {
        "app": app, "proc": proc, "text": text.rstrip("\n"), "timestamp": ts,
        "host": host, "priority": priority, "frame_id": "",
    })
    return message
