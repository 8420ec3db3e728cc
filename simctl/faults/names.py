"""Proxy and toxic names: what the API accepts (docs/toxics.md, "Hostile input").

Toxiproxy accepts any non-empty name. These are deliberate fixes: a name must be reachable
in a URL path (no '/'), fit in one log line (no control characters), be representable in
UTF-8 (no lone surrogates), and stay short.
"""

from __future__ import annotations

import unicodedata

from simctl.faults.errors import invalid_value

MAX_NAME = 256


def check_name(name: str, what: str = "proxy") -> None:
    if "/" in name:
        # Toxiproxy creates such a proxy and can never reach it again.
        raise invalid_value(f"invalid {what} name: must not contain '/'")
    if len(name) > MAX_NAME:
        raise invalid_value(f"invalid {what} name: longer than {MAX_NAME} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise invalid_value(f"invalid {what} name: must not contain control characters")
