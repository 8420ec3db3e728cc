"""`process:` kill, pause, resume or restart a service through the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, known_name
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context


class ProcessAction(Model):
    """Act on a service's process through the backend."""

    service: Name
    action: Literal["kill", "pause", "resume", "restart"]


class ProcessFault(FaultBase):
    kind: ClassVar[str] = "process"
    process: ProcessAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    assert ctx.stack is not None
    service = action.get("service")
    if known_name(ctx, (*path, "service"), service, ctx.stack.services, "service") \
            and service in ctx.stack.roles.get("toxiproxy", ()):
        ctx.add((*path, "service"), f"'{service}' is the fault plane: it cannot be a "
                                    "process fault target (rollback needs it)")


def plan(actions: Actions, a: ProcessAction) -> Plan:
    backend = actions.backend
    act = {"kill": backend.kill, "pause": backend.pause, "resume": backend.resume,
           "restart": backend.restart}[a.action]

    def do() -> str:
        act(a.service)
        return f"{a.action} {a.service}"

    def restart() -> str:
        backend.restart(a.service)
        return f"restarted {a.service}"

    def resume() -> str:
        backend.resume(a.service)
        return f"resumed {a.service}"

    return Plan(do, {"kill": restart, "pause": resume}.get(a.action))


def describe(a: ProcessAction) -> str:
    return f"{a.action} {a.service}"


def undo(a: ProcessAction) -> str:
    return {"kill": f"restart {a.service}", "pause": f"resume {a.service}"}.get(
        a.action, "nothing")


KIND = FaultKind("process", 30, ProcessFault, plan, describe, undo, check)
