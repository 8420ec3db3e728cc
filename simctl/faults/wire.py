"""JSON in and out with Toxiproxy's exact wire behaviour.

Decoding mimics Go's encoding/json into typed structs: unknown keys are ignored, null
keeps the default, and a value of the wrong JSON type (a string for a number, 100.5 for
an int64, a number for a bool) is a 400 "bad request body". Encoding is compact, keeps
Go's key order, and writes whole floats without a fraction (Go prints 1, not 1.0).
"""

from __future__ import annotations

import json
import re
from typing import Any

from simctl.faults.errors import BAD_REQUEST_BODY, ApiError


class _Float(float):
    """A JSON number written with a fraction or exponent (not an int64 for Go)."""

    text: str

    def __new__(cls, text: str) -> _Float:
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


# Deliberate limits (docs/toxics.md, "Hostile input"): no Toxiproxy body nests more than
# three levels, and Python's decoder would otherwise fail deep input with a RecursionError.
MAX_DEPTH = 32

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    """True if the (valid) JSON text nests arrays and objects deeper than `limit`.

    Works on the bytes at C speed: strings removed, brackets only, then each pass strips
    the innermost pairs (the depth drops by exactly one per pass); a run of n opening
    brackets left after k passes proves a depth of at least n + k.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(_SQUARE, _NOT_BRACKET)
    for stripped in range(limit + 1):
        if not brackets:
            return False
        if re.search(rb"\[{%d}" % (limit - stripped + 1), brackets):
            return True
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _check_unicode(value: Any, raw: bytes) -> None:
    """Refuse strings UTF-8 cannot carry: a lone surrogate (say "\\ud800") would be
    stored, then break every reply that shows it (GET /proxies answered 500 for good)."""
    if not _LONE_SURROGATE_ESCAPE.search(raw):
        return
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise BAD_REQUEST_BODY.join("invalid unicode: lone surrogate in a string") from None


def decode(raw: bytes) -> Any:
    if not raw.strip():
        raise BAD_REQUEST_BODY.join("EOF")
    try:
        value = json.loads(raw, parse_float=_Float, parse_constant=_reject_constant)
    except RecursionError:
        value, too_deep = None, True
    except (ValueError, UnicodeDecodeError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise BAD_REQUEST_BODY.join(message) from None
    else:
        too_deep = _nesting_exceeds(raw, MAX_DEPTH)
    if too_deep:
        raise BAD_REQUEST_BODY.join(f"JSON nested deeper than {MAX_DEPTH} levels")
    _check_unicode(value, raw)
    return value


def go_kind(value: Any, numeric_target: bool = False) -> str:
    # Go's UnmarshalTypeError quotes the literal ("number 100.5") only when the target
    # is numeric and the number does not fit it; a number for a string, bool or struct
    # is plain "number" (encoding/json decode.go, literalStore).
    if isinstance(value, bool):
        return "bool"
    if not numeric_target and isinstance(value, int | float):
        return "number"
    if isinstance(value, _Float):
        return f"number {value.text}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_error(value: Any, field: str, go_type: str) -> ApiError:
    return BAD_REQUEST_BODY.join(
        f"json: cannot unmarshal {go_kind(value, go_type in ('int64', 'float32'))} "
        f"into Go struct field {field} of type {go_type}"
    )


def expect_object(value: Any, go_type: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BAD_REQUEST_BODY.join(
            f"json: cannot unmarshal {go_kind(value)} into Go value of type {go_type}"
        )
    return value


def get_str(obj: dict[str, Any], key: str, default: str, field: str) -> str:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise type_error(value, field, "string")
    return value


def get_bool(obj: dict[str, Any], key: str, default: bool, field: str) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise type_error(value, field, "bool")
    return value


def get_int(obj: dict[str, Any], key: str, default: int, field: str) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, _Float):
        raise type_error(value, field, "int64")
    return value


def get_float(obj: dict[str, Any], key: str, default: float, field: str) -> float:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(value, field, "float32")
    return float(value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def encode(value: Any) -> bytes:
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False).encode()
