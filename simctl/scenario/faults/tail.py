"""`tail:` a slow tail session on an app's logs (a client, not a change to the stack).

The session (``simctl.scenario.slowtail``) runs on the engine's background loop; its undo
closes it, and closing the loop cancels it as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from simctl.errors import InvalidInput
from simctl.scenario.faults.base import Dynos, FaultKind, Path, Plan, known_name
from simctl.scenario.fields import FaultBase, Model, Name
from simctl.scenario.slowtail import CONNECT_TIMEOUT, SlowTail, TailRefused

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context


class TailAction(Model):
    """Open a tail session whose client reads slowly. Undone by closing it."""

    app: Name = Field("web", description="the app's log channel")
    rate: int = Field(description="KB/s the client reads (1 KB = 1,024 bytes)", ge=1,
                      le=100_000)


class TailFault(FaultBase):
    kind: ClassVar[str] = "tail"
    tail: TailAction


def check(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    known_name(ctx, (*path, "app"), action.get("app", "web"), dynos, "app")


def plan(actions: Actions, a: TailAction) -> Plan:
    if actions.loop is None or actions.loop.closed:
        raise InvalidInput("a tail fault needs the engine's background loop")
    loop = actions.loop
    session = SlowTail(actions.url("logplex"), a.app, a.rate)

    def do() -> str:
        try:
            loop.run(session.open(), timeout=2 * CONNECT_TIMEOUT + 1)
        except TailRefused as exc:
            raise InvalidInput(f"logplex refused the tail session: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise InvalidInput(f"cannot open a tail session on logplex: "
                               f"{exc or type(exc).__name__}") from None
        return f"tail session open on {a.app}'s logs, its client reading {a.rate} KB/s"

    def undo() -> str:
        return loop.run(session.close(), timeout=10)

    return Plan(do, undo)


def describe(a: TailAction) -> str:
    return f"tail {a.app}'s logs, reading {a.rate} KB/s"


def undo(a: TailAction) -> str:
    return "close the tail session"


KIND = FaultKind("tail", 100, TailFault, plan, describe, undo, check)
