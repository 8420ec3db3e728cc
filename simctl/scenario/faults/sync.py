"""`sync:` change sync's route table: scale, a dyno's state or address, maintenance, a
poison record. Each op is undone by restoring what it changed (a poison by a flush)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from simctl.backends.http import call
from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, dyno_ref, known_name, short
from simctl.scenario.fields import FaultBase, Model, Name

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context

_ADDRESS = re.compile(r"[A-Za-z0-9.\-]+:(\d{1,5})")


class SyncScale(Model):
    op: Literal["scale"]
    app: Name = "web"
    dynos: int = Field(ge=0, le=20)


class SyncState(Model):
    op: Literal["state"]
    app: Name = "web"
    dyno: Name
    state: Literal["up", "starting", "crashed", "down"]


class SyncMaintenance(Model):
    op: Literal["maintenance"]
    app: Name = "web"
    enabled: bool = True


class SyncPoison(Model):
    op: Literal["poison"]
    app: Name = "web"


class SyncAddress(Model):
    op: Literal["address"]
    app: Name = "web"
    dyno: Name
    address: Name = Field(description="HOST:PORT, or 'blackhole' (an address that never "
                                      "answers: connect timeouts, H19)")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        found = _ADDRESS.fullmatch(value)
        if value != "blackhole" and (found is None or not 0 < int(found.group(1)) < 65536):
            raise PydanticCustomError(
                "address", "invalid address '{value}': expected HOST:PORT or 'blackhole'",
                {"value": value})
        return value


SyncAction = Annotated[SyncScale | SyncState | SyncMaintenance | SyncPoison | SyncAddress,
                       Field(discriminator="op")]


class SyncFault(FaultBase):
    kind: ClassVar[str] = "sync"
    sync: SyncAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    app = action.get("app", "web")
    if not known_name(ctx, (*path, "app"), app, dynos, "app"):
        return
    if action.get("op") in ("state", "address"):
        dyno_ref(ctx, (*path, "dyno"), action.get("dyno"), app, dynos)


def plan(actions: Actions, a: Any) -> Plan:
    return _PLANS[type(a)](actions, a)


def _scale(actions: Actions, a: SyncScale) -> Plan:
    before = list(actions.app(a.app).get("dynos", []))
    count = len(actions.backend.find("dyno", app=a.app))

    def do() -> str:
        names = actions.backend.scale(a.app, a.dynos)
        return f"{a.app}: {a.dynos} dyno(s) {', '.join(names)}".rstrip()

    def undo() -> str:
        actions.backend.scale(a.app, count)
        call("POST", f"{actions.url('sync')}/apps/{a.app}/dynos", {"dynos": before})
        return f"{a.app} back to {count} dyno process(es) and its previous dyno list"

    return Plan(do, undo)


def _state(actions: Actions, a: SyncState) -> Plan:
    before = actions.dyno_entry(a.app, a.dyno).get("state", "up")
    url = f"{actions.url('sync')}/apps/{a.app}/dynos/{a.dyno}"

    def do() -> str:
        answer = call("POST", url, {"state": a.state})
        return f"{a.dyno} state {a.state}: {short(answer)}"

    def undo() -> str:
        call("POST", url, {"state": before})
        return f"{a.dyno} state {before} again"

    return Plan(do, undo)


def _maintenance(actions: Actions, a: SyncMaintenance) -> Plan:
    before = bool(actions.app(a.app).get("maintenance", False))
    url = f"{actions.url('sync')}/apps/{a.app}/maintenance"

    def do() -> str:
        answer = call("POST", url, {"enabled": a.enabled})
        return f"{a.app} maintenance {'on' if a.enabled else 'off'}: {short(answer)}"

    def undo() -> str:
        call("POST", url, {"enabled": before})
        return f"{a.app} maintenance {'on' if before else 'off'} again"

    return Plan(do, undo)


def _address(actions: Actions, a: SyncAddress) -> Plan:
    before = actions.dyno_entry(a.app, a.dyno).get("address")
    resolved = actions.backend.dyno_address(a.dyno, a.address)
    url = f"{actions.url('sync')}/apps/{a.app}/dynos/{a.dyno}"

    def do() -> str:
        call("POST", url, {"address": resolved})
        return f"{a.dyno} address {resolved}"

    def undo() -> str:
        call("POST", url, {"address": before})
        return f"{a.dyno} address {before} again"

    return Plan(do, undo)


def _poison(actions: Actions, a: SyncPoison) -> Plan:
    url = f"{actions.url('sync')}/poison"

    def do() -> str:
        return f"poison record appended: {short(call('POST', url, {}))}"

    def undo() -> str:
        for router in actions.router_urls():
            call("POST", f"{router}/admin/flush", {})
        return "flushed every router"

    return Plan(do, undo)


_PLANS: dict[type[Model], Callable[[Actions, Any], Plan]] = {
    SyncScale: _scale, SyncState: _state, SyncMaintenance: _maintenance,
    SyncAddress: _address, SyncPoison: _poison,
}


def describe(a: Any) -> str:
    if isinstance(a, SyncScale):
        return f"sync: scale {a.app} to {a.dynos} dynos"
    if isinstance(a, SyncState):
        return f"sync: {a.app} {a.dyno} state {a.state}"
    if isinstance(a, SyncMaintenance):
        return f"sync: maintenance {'on' if a.enabled else 'off'} for {a.app}"
    if isinstance(a, SyncPoison):
        return "sync: append a poison record to the stream"
    return f"sync: {a.app} {a.dyno} address {a.address}"


def undo(a: Any) -> str:
    undone: dict[type[Model], str] = {
        SyncScale: "restore the previous dyno list",
        SyncState: "restore the previous state",
        SyncMaintenance: "restore the previous state",
        SyncAddress: "restore the previous address",
        SyncPoison: "flush every router (fresh snapshot)",
    }
    return undone[type(a)]


KIND = FaultKind("sync", 50, SyncFault, plan, describe, undo, check)
