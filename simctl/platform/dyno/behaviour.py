"""Dyno behaviours: what ``POST /control`` accepts, validated into one frozen value.

A behaviour is a JSON object ``{"behaviour": NAME, ...fields}``. ``parse()`` checks
every field (type, range, unknown names with a "did you mean") and returns a
``Behaviour`` whose ``to_dict()`` is accepted again by ``parse()``, so what
``GET /control`` shows can be posted back as is.

    normal      answer every request
    latency     wait ``ms`` (plus or minus ``jitter`` ms) before answering      -> H12 when long
    error       answer ``status`` to a ``rate`` of requests                     -> 5xx at the router
    hang        accept the request and never answer                             -> H12
    close       close the connection without writing a byte                     -> H13
    partial     headers with Content-Length ``length``, ``sent`` bytes, then
                ``then``: "close" (-> H18) or "idle" (-> H15)
    crash       the process exits with status 1 after answering the control request
                (-> H10 / H21, the backend decides about restarts)
    slow_boot   the next start waits ``seconds`` before the app is up (R10-style);
                ``restart: true`` restarts the app in the process now
    memory      every request keeps ``mb`` more megabytes, up to ``cap_mb`` (R14 drill)
    chatty      every request prints ``lines`` more app log lines (a stack trace)
                                                                    -> L10 / L12 volume

Request behaviours (all but crash and slow_boot) can be scoped with ``path`` (a path
prefix, default "/") and ``fraction`` (the share of matching requests, default 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NAMES = ("normal", "latency", "error", "hang", "close", "partial", "crash", "slow_boot", "memory",
         "chatty")
PROCESS_WIDE = ("crash", "slow_boot")
SCOPE_FIELDS = ("path", "fraction")

# Fields each behaviour accepts (besides "behaviour" and, for request behaviours, the scope).
_FIELDS: dict[str, tuple[str, ...]] = {
    "normal": (),
    "latency": ("ms", "jitter"),
    "error": ("rate", "status"),
    "hang": (),
    "close": (),
    "partial": ("length", "sent", "then"),
    "crash": (),
    "slow_boot": ("seconds", "restart"),
    "memory": ("mb", "cap_mb"),
    "chatty": ("lines",),
}

MAX_MS = 3_600_000.0
MAX_BOOT = 3600.0
MAX_PARTIAL = 64 * 1024**2
MAX_CAP_MB = 8192.0


class BehaviourError(ValueError):
    """A control request that does not describe a valid behaviour."""


@dataclass(frozen=True)
class Behaviour:
    name: str = "normal"
    path: str = "/"
    fraction: float = 1.0
    ms: float = 0.0
    jitter: float = 0.0
    rate: float = 1.0
    status: int = 500
    length: int = 1024
    sent: int = 100
    then: str = "close"
    seconds: float = 0.0
    restart: bool = False
    mb: float = 10.0
    cap_mb: float = 256.0
    lines: int = 100

    @property
    def scoped(self) -> bool:
        return self.name not in PROCESS_WIDE and self.name != "normal"

    def applies_to(self, path: str) -> bool:
        """Whether a request path is in scope (the fraction is drawn by the caller)."""
        return self.scoped and path.startswith(self.path)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"behaviour": self.name}
        for name in _FIELDS[self.name]:
            out[name] = getattr(self, name)
        if self.scoped:
            out["path"] = self.path
            out["fraction"] = self.fraction
        return out


NORMAL = Behaviour()


def parse(data: object) -> Behaviour:
    """Validate a control request body; raises BehaviourError with one clear sentence."""
    if not isinstance(data, dict):
        raise BehaviourError("the body must be a JSON object like {\"behaviour\": \"latency\"}")
    name = data.get("behaviour")
    if name is None:
        raise BehaviourError(f"missing field 'behaviour' (one of {', '.join(NAMES)})")
    if not isinstance(name, str) or name not in NAMES:
        raise BehaviourError(f"unknown behaviour {name!r}{_hint(str(name), NAMES)}"
                             f" (one of {', '.join(NAMES)})")
    allowed = set(_FIELDS[name])
    if name not in PROCESS_WIDE and name != "normal":
        allowed.update(SCOPE_FIELDS)
    for key in data:
        if key == "behaviour":
            continue
        if key not in allowed:
            if key in SCOPE_FIELDS:
                raise BehaviourError(f"{name}: '{key}' does not apply ({name} is process-wide)")
            choices = sorted(allowed)
            listing = ", ".join(choices) if choices else "no other fields"
            raise BehaviourError(f"{name}: unknown field '{key}'{_hint(key, choices)}"
                                 f" (accepted: {listing})")
    values: dict[str, Any] = {"name": name}
    for key in data:
        if key != "behaviour":
            values[key] = _check(name, key, data[key])
    result = Behaviour(**values)
    _check_combination(result, data)
    return result


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _number(name: str, key: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BehaviourError(f"{name}: '{key}' must be a number, got {value!r}")
    if not low <= value <= high:
        raise BehaviourError(f"{name}: '{key}' must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _integer(name: str, key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BehaviourError(f"{name}: '{key}' must be an integer, got {value!r}")
    if not low <= value <= high:
        raise BehaviourError(f"{name}: '{key}' must be between {low} and {high}, got {value!r}")
    return value


def _check(name: str, key: str, value: object) -> Any:
    if key == "path":
        if not isinstance(value, str) or not value.startswith("/") or len(value) > 2048:
            raise BehaviourError(f"{name}: 'path' must be a path prefix starting with '/', "
                                 f"got {value!r}")
        return value
    if key in ("fraction", "rate"):
        return _number(name, key, value, 0.0, 1.0)
    if key in ("ms", "jitter"):
        return _number(name, key, value, 0.0, MAX_MS)
    if key == "status":
        return _integer(name, key, value, 400, 599)
    if key == "length":
        return _integer(name, key, value, 1, MAX_PARTIAL)
    if key == "sent":
        return _integer(name, key, value, 0, MAX_PARTIAL)
    if key == "then":
        if value not in ("close", "idle"):
            raise BehaviourError(f"{name}: 'then' must be \"close\" (H18) or \"idle\" (H15), "
                                 f"got {value!r}")
        return value
    if key == "seconds":
        return _number(name, key, value, 0.0, MAX_BOOT)
    if key == "restart":
        if not isinstance(value, bool):
            raise BehaviourError(f"{name}: 'restart' must be true or false, got {value!r}")
        return value
    if key == "mb":
        return _number(name, key, value, 0.0, 1024.0)
    if key == "cap_mb":
        return _number(name, key, value, 0.0, MAX_CAP_MB)
    if key == "lines":
        return _integer(name, key, value, 1, 100_000)
    raise BehaviourError(f"{name}: unknown field '{key}'")  # pragma: no cover


def _check_combination(result: Behaviour, data: dict[str, Any]) -> None:
    if result.name == "partial" and result.sent >= result.length:
        raise BehaviourError(f"partial: 'sent' ({result.sent}) must be smaller than 'length' "
                             f"({result.length})")
    if result.name == "slow_boot" and "seconds" not in data:
        raise BehaviourError("slow_boot: 'seconds' is required")

