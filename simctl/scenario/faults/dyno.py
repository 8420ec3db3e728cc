"""`dyno:` switch a dyno's behaviour (POST /control); undone by switching back to normal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from simctl.backends.http import call
from simctl.backends.project import base_url
from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, dyno_ref, short
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context

DynoBehaviour = Literal["normal", "latency", "error", "hang", "close", "partial", "crash",
                        "slow_boot", "memory", "chatty"]
RESTARTS = ("crash", "memory")  # behaviours that end the process: undo restarts it


class DynoAction(Model):
    """Switch a dyno's behaviour (POST /control). Undone by switching back to normal."""

    dyno: Name
    behaviour: DynoBehaviour
    params: dict[str, Any] = {}


class DynoFault(FaultBase):
    kind: ClassVar[str] = "dyno"
    dyno: DynoAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    """The dyno, and the behaviour's parameters as the dyno itself parses them."""
    dyno_ref(ctx, (*path, "dyno"), action.get("dyno"), None, dynos)
    behaviour, params = action.get("behaviour"), action.get("params", {})
    if not isinstance(behaviour, str) or not isinstance(params, dict):
        return
    from simctl.platform.dyno.behaviour import NAMES, BehaviourError, parse

    if behaviour not in NAMES:
        return  # the schema reports it
    try:
        parse({**params, "behaviour": behaviour})
    except BehaviourError as exc:
        message = str(exc)
        where: tuple[Any, ...] = (*path, "params")
        for key in params:
            if f"'{key}'" in message:
                where = (*path, "params", key)
                break
        ctx.add(where, message, at_key=where[-1] != "params")


def plan(actions: Actions, a: DynoAction) -> Plan:
    proc = actions.dyno_service(a.dyno)
    url = f"{base_url(proc)}/control"
    restart = a.behaviour in RESTARTS

    def do() -> str:
        shown = call("POST", url, {"behaviour": a.behaviour, **a.params})
        return f"{a.dyno}: {short(shown)}"

    def undo() -> str:
        notes = []
        try:
            call("DELETE", url, timeout=3.0)
            notes.append(f"{a.dyno} behaviour normal")
        except Exception as exc:  # a crashed dyno does not answer: the restart fixes it
            if not restart:
                raise
            notes.append(f"{a.dyno} did not answer ({exc})")
        if restart:
            actions.backend.restart(proc.name)
            notes.append(f"restarted {proc.name}")
        return "; ".join(notes)

    return Plan(do, undo)


def describe(a: DynoAction) -> str:
    params = " ".join(f"{k}={v}" for k, v in a.params.items())
    return f"dyno {a.dyno} behaviour {a.behaviour} {params}".rstrip()


def undo(a: DynoAction) -> str:
    if a.behaviour in RESTARTS:
        return f"behaviour normal, restart {a.dyno}"
    return "behaviour normal"


KIND = FaultKind("dyno", 40, DynoFault, plan, describe, undo, check)
