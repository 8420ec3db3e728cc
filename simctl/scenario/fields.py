"""The scalar types every part of a scenario file shares (docs/scenarios.md).

Durations, rates, probes and names, and ``Model``, the base of every scenario model, so
that ``simctl.scenario.model`` and each fault kind (``simctl.scenario.faults``) build on
the same pieces without importing each other.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from simctl.scenario import expressions

# --- scalar types -------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(s|m)")


def parse_duration(value: Any) -> float:
    """'500ms', '5s', '1.5m', '1m30s', '2h' -> seconds."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _DURATION.fullmatch(text):
        shown = repr(value) if not isinstance(value, str) else f"'{value}'"
        raise PydanticCustomError(
            "duration",
            "invalid duration {value}: expected a number and a unit (ms, s, m, h), "
            "e.g. '500ms', '5s', '2m' or '1m30s'",
            {"value": shown},
        )
    return round(sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text)), 6)


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def parse_rate(value: Any) -> float:
    """'50/s', '600/m' -> per second."""
    found = _RATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        shown = repr(value) if not isinstance(value, str) else f"'{value}'"
        raise PydanticCustomError(
            "rate", "invalid rate {value}: expected a number per second or minute, "
            "e.g. '50/s' or '600/m'", {"value": shown})
    per_second = float(found.group(1)) / (60.0 if found.group(2) == "m" else 1.0)
    if per_second > 100_000:
        raise PydanticCustomError("rate", "rate {value} is above the limit of 100000/s",
                                  {"value": f"'{value}'"})
    return per_second


def format_rate(per_second: float) -> str:
    return f"{per_second:g}/s"


def parse_probe(value: Any) -> expressions.Probe:
    if not isinstance(value, str):
        raise PydanticCustomError("probe_type", "a probe must be a string, e.g. "
                                  "'http.success_ratio >= 0.99'")
    try:
        if "${" in value:  # valid under every timing profile (it runs under either)
            expressions.parse(value, timing="heroku")
        return expressions.parse(value)
    except expressions.ExpressionError as exc:
        raise PydanticCustomError("probe", "{message}",
                                  {"message": exc.message, "column": exc.column}) from None


Duration = Annotated[
    float,
    PlainValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$",
                    "description": "a duration: 500ms, 5s, 2m, 1m30s", "examples": ["5s"]}),
]
Rate = Annotated[
    float,
    PlainValidator(parse_rate),
    PlainSerializer(format_rate, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?\s*/\s*(s|m)$",
                    "description": "a rate: 50/s or 600/m", "examples": ["50/s"]}),
]
Probe = Annotated[
    expressions.Probe,
    PlainValidator(parse_probe),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "a probe expression, see "
                    "docs/scenarios.md", "examples": ["http.success_ratio >= 0.99"]}),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              populate_by_name=True, arbitrary_types_allowed=True)


# --- a fault's common keys -----------------------------------------------------------------


class FaultBase(Model):
    at: Duration = Field(description="when, from the start of the fault phase")
    for_: Duration | None = Field(None, alias="for", description="undo it after this long")
    name: Name | None = Field(None, description="names the fault for a symptom's 'after' "
                                                "or 'while'")
    kind: ClassVar[str]

    @property
    def action(self) -> Any:
        return getattr(self, self.kind)
