"""Small synchronous JSON calls to the platform services' admin endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from simctl.errors import InvalidInput, SimctlError, StackStartError

REFUSALS = {400, 404, 409, 422}  # a service's answers to bad input


def call(method: str, url: str, body: Any = None, timeout: float = 5.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None or method != "GET":
        # the services refuse state changes without it, bodyless ones too (docs/security.md)
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        detail = " ".join(str(detail).split())[:400] or exc.reason
        # The service refused what it was sent (an unknown behaviour, drain or dyno): that
        # is bad input, exit 2, with the service's own reason first (docs/cli.md).
        error = InvalidInput if exc.code in REFUSALS else SimctlError
        raise error(f"{detail} (HTTP {exc.code} from {method} {url})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StackStartError(f"{method} {url}: {reason} (is the stack up?)") from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def text(url: str, timeout: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode(errors="replace")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StackStartError(f"GET {url}: {reason} (is the stack up?)") from None
