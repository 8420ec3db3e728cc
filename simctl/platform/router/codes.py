"""The router's error codes and the small HTML pages it answers with.

docs/platform.md, "H-codes".
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    desc: str
    status: int
    at: str = "error"
    sock: str = ""  # "client" or "backend" when the log line blames a side


CODES: dict[str, Code] = {c.code: c for c in (
    Code("H10", "App crashed", 503),
    Code("H11", "Backlog too deep", 503),
    Code("H12", "Request timeout", 503),
    Code("H13", "Connection closed without response", 503),
    Code("H14", "No web dynos running", 503),
    Code("H15", "Idle connection", 503),
    Code("H17", "Poorly formatted HTTP response", 503),
    Code("H18", "Server Request Interrupted", 503, sock="backend"),
    Code("H19", "Backend connection timeout", 503),
    Code("H20", "App boot timeout", 503),
    Code("H21", "Backend connection refused", 503),
    Code("H24", "Forced close", 503),
    Code("H25", "HTTP Restriction", 502),
    Code("H26", "Request Error", 400),
    Code("H27", "Client Request Interrupted", 499, at="warning", sock="client"),
    Code("H28", "Client Connection Idle", 499, at="warning"),
    Code("H80", "Maintenance mode", 503, at="info"),
    Code("H99", "Platform error", 503),
)}

_TITLES = {
    "H80": "Offline for Maintenance",
    "H26": "Bad Request",
    "H99": "Platform Error",
}
_TEXT = {
    "H80": "This app is in maintenance mode. Please check back soon.",
    "H26": "Your browser sent a request this server could not understand.",
    "H99": "There was a problem with the routing platform. Please try again in a minute.",
}
_DEFAULT_TEXT = ("An error occurred in the application and your page could not be served. "
                 "If you are the application owner, check your logs for details.")

PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    '<body><h1>{title}</h1><p>{text}</p><p><small>{code} request_id={request_id}</small></p>'
    "</body></html>\n"
)


def error_page(code: str, request_id: str = "") -> bytes:
    title = _TITLES.get(code, "Application Error")
    text = _TEXT.get(code, _DEFAULT_TEXT)
    return PAGE.format(title=title, text=text, code=code, request_id=escape(request_id)).encode()


def no_such_app_page(host: str) -> bytes:
    return PAGE.format(title="No such app", text=f"There is no app configured at {escape(host)}.",
                       code="404", request_id="").encode()
