"""Router log lines in Heroku's format (docs/platform.md, "Router log format").

    at=info method=GET path="/" host=h request_id=ID fwd="1.2.3.4" dyno=web.1 connect=1ms
        service=5ms status=200 bytes=123 protocol=http
    sock=backend at=error code=H18 desc="Server Request Interrupted" method=... status=503 ...
    at=error code=H26 desc="Request Error" cause="bad chunk" method=... status=400 ...

Fields that do not apply are left empty (``dyno= connect= service=``); ``path``, ``fwd``,
``desc`` and ``cause`` are always quoted, other values only when they need it, except
``request_id``, which is printed as it is (20-200 of [A-Za-z0-9+/=-] or a uuid).
"""

from __future__ import annotations

import re

from simctl.platform.router.codes import Code

_NEEDS_QUOTES = re.compile(r'[ "=\\]')


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bare(text: str) -> str:
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return quote(text) if text else ""


def _ms(value: float | None) -> str:
    return "" if value is None else f"{int(value * 1000)}ms"


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


def format_line(
    *,
    code: Code | None,
    method: str,
    path: str,
    host: str,
    request_id: str,
    fwd: str,
    dyno: str,
    connect: float | None,
    service: float | None,
    status: int | None,
    nbytes: int | None,
    protocol: str,
    cause: str = "",
) -> str:
    """One line; ``connect`` and ``service`` in seconds, shown in whole milliseconds."""
    if code is None:
        head = "at=info "
    else:
        head = f"at={code.at} code={code.code} desc={quote(code.desc)} "
        if code.sock:
            head = f"sock={code.sock} {head}"
        if cause:
            head += f"cause={quote(cause)} "
    return (
        f"{head}method={bare(method)} path={quote(path)} host={bare(host)} "
        f"request_id={request_id} fwd={quote(fwd)} dyno={bare(dyno)} "
        f"connect={_ms(connect)} service={_ms(service)} status={_opt(status)} "
        f"bytes={_opt(nbytes)} protocol={protocol}"
    )
