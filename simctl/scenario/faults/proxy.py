"""`proxy:` disable (or enable) a fault-plane proxy; undone by restoring its state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, known_name
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context


class ProxyAction(Model):
    """Disable (or enable) a proxy. Undone by restoring its previous state."""

    name: Name
    enabled: bool = False


class ProxyFault(FaultBase):
    kind: ClassVar[str] = "proxy"
    proxy: ProxyAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    assert ctx.stack is not None
    known_name(ctx, (*path, "name"), action.get("name"), ctx.stack.proxies, "proxy")


def plan(actions: Actions, a: ProxyAction) -> Plan:
    client = actions.client
    before = client.proxy(a.name).enabled

    def do() -> str:
        client.update_proxy(a.name, enabled=a.enabled)
        return f"proxy {a.name} {'enabled' if a.enabled else 'disabled'}"

    def undo() -> str:
        client.update_proxy(a.name, enabled=before)
        return f"proxy {a.name} {'enabled' if before else 'disabled'} again"

    return Plan(do, undo)


def describe(a: ProxyAction) -> str:
    return f"{'enable' if a.enabled else 'disable'} proxy {a.name}"


def undo(a: ProxyAction) -> str:
    return "restore the previous state"


KIND = FaultKind("proxy", 20, ProxyFault, plan, describe, undo, check)
