"""`router:` an operator action on a router (flush or resync); nothing undoes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from simctl.backends.http import call
from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, known_name, short
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context


class RouterAction(Model):
    """An operator action on a router: flush or resync. Nothing to undo."""

    router: Name
    action: Literal["flush", "resync"]


class RouterFault(FaultBase):
    kind: ClassVar[str] = "router"
    router: RouterAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    assert ctx.stack is not None
    known_name(ctx, (*path, "router"), action.get("router"), ctx.stack.routers, "router")


def plan(actions: Actions, a: RouterAction) -> Plan:
    url = actions.router_url(a.router)

    def do() -> str:
        return f"{a.action} {a.router}: {short(call('POST', f'{url}/admin/{a.action}', {}))}"

    return Plan(do, None)


def describe(a: RouterAction) -> str:
    return f"{a.action} {a.router}"


def undo(a: RouterAction) -> str:
    return "nothing"


KIND = FaultKind("router", 90, RouterFault, plan, describe, undo, check)
