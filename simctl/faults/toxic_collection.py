"""The toxics of one proxy: creation rules, defaults, updates, and their live effect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simctl.faults import wire
from simctl.faults.errors import (
    INVALID_STREAM,
    INVALID_TOXIC_TYPE,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    invalid_value,
)
from simctl.faults.names import check_name
from simctl.faults.toxics import REGISTRY, Toxic

if TYPE_CHECKING:
    from simctl.faults.link import Link

DIRECTIONS = ("upstream", "downstream")


@dataclass(eq=False)
class ToxicSpec:
    """A configured toxic, shared by every connection of its proxy."""

    name: str
    kind: type[Toxic]
    stream: str  # as the client sent it (Toxiproxy echoes "UPSTREAM" unchanged)
    direction: str  # "upstream" or "downstream"
    toxicity: float
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.kind.type_name,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


def _struct_name(kind: type[Toxic]) -> str:
    return "".join(part.capitalize() for part in kind.type_name.split("_")) + "Toxic"


def _decode_attributes(kind: type[Toxic], raw: Any, current: dict[str, int]) -> dict[str, int]:
    attrs = dict(current)
    if raw is None:
        return attrs
    raw = wire.expect_object(raw, f"toxics.{_struct_name(kind)}")
    for attr in kind.attributes:
        value = wire.get_int(
            raw, attr.name, attrs[attr.name], f"{_struct_name(kind)}.attributes.{attr.name}"
        )
        if not attr.minimum <= value <= attr.maximum:
            raise invalid_value(
                f"invalid attribute: {attr.name} must be between {attr.minimum} and "
                f"{attr.maximum} {attr.unit}"
            )
        attrs[attr.name] = value
    problem = kind.check(attrs)
    if problem:
        raise invalid_value(problem)
    return attrs


def _check_toxicity(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise invalid_value("invalid toxicity: must be between 0 and 1")
    return value


class ToxicCollection:
    def __init__(self, links: Any) -> None:
        self._toxics: list[ToxicSpec] = []
        self._links = links  # callable returning the live links of a direction

    def __len__(self) -> int:
        return len(self._toxics)

    def to_json(self) -> list[dict[str, Any]]:
        ordered = [t for t in self._toxics if t.direction == "upstream"]
        ordered += [t for t in self._toxics if t.direction == "downstream"]
        return [t.to_json() for t in ordered]

    def get(self, name: str) -> ToxicSpec:
        for spec in self._toxics:
            if spec.name == name:
                return spec
        raise TOXIC_NOT_FOUND

    def chain(self, direction: str) -> list[ToxicSpec]:
        return [t for t in self._toxics if t.direction == direction]

    def has_resetting_toxic(self) -> bool:
        return any(t.kind.resets_connections for t in self._toxics)

    def parse(self, body: Any) -> ToxicSpec:
        """Validate a create request in Toxiproxy's order.

        docs/toxiproxy.md, "Toxic defaults and validation".
        """
        body = wire.expect_object(body, "toxics.ToxicWrapper")
        stream = wire.get_str(body, "stream", "downstream", "ToxicWrapper.stream")
        if stream.lower() not in DIRECTIONS:
            raise INVALID_STREAM
        type_name = wire.get_str(body, "type", "", "ToxicWrapper.type")
        name = wire.get_str(body, "name", "", "ToxicWrapper.name") or f"{type_name}_{stream}"
        toxicity = wire.get_float(body, "toxicity", 1.0, "ToxicWrapper.toxicity")
        kind = REGISTRY.get(type_name)
        if kind is None:
            raise INVALID_TOXIC_TYPE
        if any(t.name == name for t in self._toxics):
            raise TOXIC_EXISTS
        check_name(name, "toxic")
        zeros = {a.name: 0 for a in kind.attributes}
        attrs = _decode_attributes(kind, body.get("attributes"), zeros)
        return ToxicSpec(name, kind, stream, stream.lower(), _check_toxicity(toxicity), attrs)

    async def add(self, spec: ToxicSpec) -> ToxicSpec:
        if any(t.name == spec.name for t in self._toxics):
            raise TOXIC_EXISTS
        self._toxics.append(spec)
        await _each(self._links(spec.direction), lambda link: link.add(spec))
        return spec

    async def update(self, name: str, body: Any) -> ToxicSpec:
        spec = self.get(name)
        body = wire.expect_object(body, "toxics.ToxicWrapper")
        toxicity = _check_toxicity(
            wire.get_float(body, "toxicity", spec.toxicity, "ToxicWrapper.toxicity")
        )
        attrs = _decode_attributes(spec.kind, body.get("attributes"), spec.attributes)
        spec.attributes = attrs
        spec.toxicity = toxicity
        await _each(self._links(spec.direction), lambda link: link.update(spec))
        return spec

    async def remove(self, name: str) -> None:
        spec = self.get(name)
        self._toxics.remove(spec)
        await _each(self._links(spec.direction), lambda link: link.remove(spec))

    async def reset(self) -> None:
        for spec in list(self._toxics):
            await self.remove(spec.name)


async def _each(links: list[Link], action: Any) -> None:
    if links:
        await asyncio.gather(*(action(link) for link in links))
