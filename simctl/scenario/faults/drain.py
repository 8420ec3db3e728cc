"""`drain:` disable (or enable) a logplex drain; undone by restoring its previous state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from simctl.backends.http import call
from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, known_name
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context


class DrainAction(Model):
    """Disable (or enable) a logplex drain. Undone by restoring its previous state."""

    name: Name
    enabled: bool = False


class DrainFault(FaultBase):
    kind: ClassVar[str] = "drain"
    drain: DrainAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    assert ctx.stack is not None
    name = action.get("name")
    if isinstance(name, str) and name.startswith("drain.") and name[6:] in ctx.stack.drains:
        ctx.add((*path, "name"), f"'{name}' is the proxy; the drain is called '{name[6:]}'")
        return
    known_name(ctx, (*path, "name"), name, ctx.stack.drains, "drain")


def plan(actions: Actions, a: DrainAction) -> Plan:
    url = f"{actions.url('logplex')}/admin/drains/{a.name}"
    before = bool(call("GET", url).get("enabled", True))

    def do() -> str:
        call("POST", url, {"enabled": a.enabled})
        return f"drain {a.name} {'enabled' if a.enabled else 'disabled'}"

    def undo() -> str:
        call("POST", url, {"enabled": before})
        return f"drain {a.name} {'enabled' if before else 'disabled'} again"

    return Plan(do, undo)


def describe(a: DrainAction) -> str:
    return f"{'enable' if a.enabled else 'disable'} drain {a.name}"


def undo(a: DrainAction) -> str:
    return "restore the previous state"


KIND = FaultKind("drain", 80, DrainFault, plan, describe, undo, check)
