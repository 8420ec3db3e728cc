"""`toxic:` add a toxic to a fault-plane proxy; undone by removing it (by name)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from simctl.errors import ToxiproxyError
from simctl.faults.toxics import REGISTRY
from simctl.scenario.errors import did_you_mean
from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, known_name
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context


class ToxicAction(Model):
    """Add a toxic to a proxy. Undone by removing the toxic (by name)."""

    proxy: Name
    type: Name
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0.0, le=1.0)
    attributes: dict[str, int] = {}
    name: Name | None = None

    @property
    def toxic_name(self) -> str:
        return self.name or f"{self.type}_{self.stream}"


class ToxicFault(FaultBase):
    kind: ClassVar[str] = "toxic"
    toxic: ToxicAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    """The proxy, the toxic type and its attributes (ranges, and the type's own check)."""
    assert ctx.stack is not None
    known_name(ctx, (*path, "proxy"), action.get("proxy"), ctx.stack.proxies, "proxy")
    kind_name = action.get("type")
    if not known_name(ctx, (*path, "type"), kind_name, REGISTRY, "toxic type") \
            or not isinstance(kind_name, str):
        return
    kind = REGISTRY[kind_name]
    attributes = action.get("attributes")
    if not isinstance(attributes, dict):
        return
    known = {a.name: a for a in kind.attributes}
    clean = True
    for key, value in attributes.items():
        attr = known.get(key)
        if attr is None:
            clean = False
            if not known:
                ctx.add((*path, "attributes", key), f"{kind_name} takes no attributes",
                        at_key=True)
            else:
                ctx.add((*path, "attributes", key),
                        f"unknown {kind_name} attribute '{key}'{did_you_mean(key, known)}",
                        at_key=True)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not attr.minimum <= value <= attr.maximum:
                clean = False
                ctx.add((*path, "attributes", key),
                        f"{key}={value} is out of range: {attr.minimum} to {attr.maximum} "
                        f"{attr.unit}")
        else:
            clean = False  # the schema reports the type
    if clean:
        values = {a.name: attributes.get(a.name, 0) for a in kind.attributes}
        problem = kind.check(values)
        if problem:
            ctx.add((*path, "attributes"), problem)


def plan(actions: Actions, a: ToxicAction) -> Plan:
    name = a.toxic_name
    client = actions.client

    def do() -> str:
        added = client.add_toxic(a.proxy, a.type, stream=a.stream, toxicity=a.toxicity,
                                 attributes=dict(a.attributes), name=name)
        attrs = " ".join(f"{k}={v}" for k, v in added.attributes.items())
        return f"added {added.name} to {a.proxy}: {added.type} {added.stream} {attrs}"

    def undo() -> str:
        try:
            client.remove_toxic(a.proxy, name)
        except ToxiproxyError as exc:
            if exc.status == 404:  # a runbook step (simctl heal) was first
                return f"toxic {name} was already removed from {a.proxy}"
            raise
        return f"removed toxic {name} from {a.proxy}"

    return Plan(do, undo)


def describe(a: ToxicAction) -> str:
    attrs = " ".join(f"{k}={v}" for k, v in a.attributes.items())
    extra = f" (toxicity {a.toxicity:g})" if a.toxicity != 1.0 else ""
    named = f" as {a.name}" if a.name else ""
    return f"toxic {a.type} {a.stream} {attrs}".rstrip() + f" on {a.proxy}{named}{extra}"


def undo(a: ToxicAction) -> str:
    return f"remove toxic {a.toxic_name} from {a.proxy}"


KIND = FaultKind("toxic", 10, ToxicFault, plan, describe, undo, check)
