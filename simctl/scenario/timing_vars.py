"""Timing-profile values in probes: ``${timeouts.first_byte_ms}`` and friends.

A probe written for one profile breaks under the other: the router logs
``service=3000ms`` for an H12 with the ``fast`` profile and ``service=30000ms`` with
``heroku``. A probe may name the profile's timers instead of their numbers; the
engine substitutes the values of the timing the run uses, and the loader checks the
probe under both profiles (docs/scenarios.md, "Timing-profile values").

Names: ``timeouts.NAME_ms`` and ``timeouts.NAME_s`` for every timer of
simctl.platform.timing.Timing, NAME being the field without its ``_timeout`` suffix
(``first_byte``, ``connect``, ``idle``, ``quarantine``, ``boot_wait``, ...). Values are
plain numbers (``3000``, ``0.5``), so they fit thresholds and regular expressions alike.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import fields

from simctl.platform.timing import PROFILES, Timing

PATTERN = re.compile(r"\$\{([^}]*)\}")


def _number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def variables(profile: str) -> dict[str, str]:
    timing = PROFILES[profile]
    out: dict[str, str] = {}
    for f in fields(Timing):
        if f.type not in ("float", float):
            continue
        base = f.name.removesuffix("_timeout")
        seconds = float(getattr(timing, f.name))
        out[f"timeouts.{base}_ms"] = _number(seconds * 1000)
        out[f"timeouts.{base}_s"] = _number(seconds)
    return out


class UnknownVariable(ValueError):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column  # 1-based, in the original text


def substitute(text: str, profile: str) -> str:
    """``text`` with every ``${NAME}`` replaced by the profile's value."""
    if "${" not in text:
        return text
    known = variables(profile)

    def value(found: re.Match[str]) -> str:
        name = found.group(1).strip()
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else (
                " (names: timeouts.NAME_ms or timeouts.NAME_s, e.g. timeouts.first_byte_ms)")
            raise UnknownVariable(f"unknown timing value '${{{name}}}'{hint}",
                                  found.start() + 1)
        return known[name]

    return PATTERN.sub(value, text)
