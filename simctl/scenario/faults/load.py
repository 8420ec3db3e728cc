"""`load:` change the scenario's traffic rates; undone by going back to the scenario's load."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from simctl.errors import InvalidInput
from simctl.scenario.faults.base import FaultKind, Plan
from simctl.scenario.fields import FaultBase, Model, Rate, format_rate

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions


class LoadAction(Model):
    """Change the traffic rate(s). Undone by going back to the scenario's load."""

    http: Rate | None = None
    logs: Rate | None = None

    @model_validator(mode="after")
    def _one(self) -> LoadAction:
        if self.http is None and self.logs is None:
            raise PydanticCustomError("load_action", "give 'http', 'logs' or both")
        return self


class LoadFault(FaultBase):
    kind: ClassVar[str] = "load"
    load: LoadAction


def plan(actions: Actions, a: LoadAction) -> Plan:
    if actions.load is None:
        raise InvalidInput("no load is running")
    load = actions.load

    def do() -> str:
        load.set_rates(a.http, a.logs)
        return f"load now http {load.http_rate:g}/s, logs {load.logs_rate:g}/s"

    def undo() -> str:
        load.set_rates(load.spec.http_rate, load.spec.logs_rate)
        return (f"load back to http {load.spec.http_rate:g}/s, "
                f"logs {load.spec.logs_rate:g}/s")

    return Plan(do, undo)


def describe(a: LoadAction) -> str:
    parts = [f"{k} {format_rate(v)}" for k, v in (("http", a.http), ("logs", a.logs))
             if v is not None]
    return "load: " + ", ".join(parts)


def undo(a: LoadAction) -> str:
    return "back to the scenario's load"


KIND = FaultKind("load", 60, LoadFault, plan, describe, undo)
