"""`rod:` switch a logplex control rod; undone by restoring its previous state."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from simctl.backends.http import call
from simctl.scenario.faults.base import FaultKind, Plan
from simctl.scenario.fields import FaultBase, Model

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions


class RodAction(Model):
    """Switch a logplex control rod. Undone by restoring its previous state."""

    name: Literal["deny_drain_forwarding", "deny_tail_sessions", "deny_logs_ingress"]
    enabled: bool = True


class RodFault(FaultBase):
    kind: ClassVar[str] = "rod"
    rod: RodAction


def plan(actions: Actions, a: RodAction) -> Plan:
    url = actions.url("logplex")
    rods = call("GET", f"{url}/admin/rods").get("rods", {})
    before = bool(rods.get(a.name, False))

    def do() -> str:
        call("POST", f"{url}/admin/rods/{a.name}", {"enabled": a.enabled})
        return f"control rod {a.name} {'on' if a.enabled else 'off'}"

    def undo() -> str:
        call("POST", f"{url}/admin/rods/{a.name}", {"enabled": before})
        return f"control rod {a.name} {'on' if before else 'off'} again"

    return Plan(do, undo)


def describe(a: RodAction) -> str:
    return f"control rod {a.name} {'on' if a.enabled else 'off'}"


def undo(a: RodAction) -> str:
    return "restore the previous state"


KIND = FaultKind("rod", 70, RodFault, plan, describe, undo)
