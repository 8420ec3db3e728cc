"""What a scenario fault kind is: one module under simctl/scenario/faults/ (docs/architecture.md).

Each kind module defines its action model and its fault model (the scenario key, e.g.
``toxic:``), and a ``KIND`` that says how the kind is checked against the stack
(``check``, run by ``simctl.scenario.references`` on the raw YAML), applied (``plan``,
run by ``simctl.scenario.actions.Actions``) and shown (``describe`` and ``undo``, one
line each, for `scenario show` and journals). The package finds every module that has a
``KIND``; ``order`` fixes where the kind comes in the schema and the docs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simctl.scenario.errors import did_you_mean
from simctl.scenario.fields import FaultBase

if TYPE_CHECKING:
    from simctl.scenario.actions import Actions
    from simctl.scenario.references import Context

Undo = Callable[[], str]
Path = tuple[Any, ...]
Dynos = dict[str, set[str]]  # app -> the dyno names a scenario may use


@dataclass
class Plan:
    do: Callable[[], str]
    undo: Undo | None  # None when nothing undoes the fault


def check_nothing(path: Path, action: dict[str, Any], ctx: Context, dynos: Dynos) -> None:
    """For kinds whose names the schema checks in full."""


@dataclass(frozen=True)
class FaultKind:
    key: str  # the scenario key, and FaultBase.kind
    order: int
    model: type[FaultBase]
    plan: Callable[[Actions, Any], Plan]  # (actions, the fault's action) -> Plan
    describe: Callable[[Any], str]  # the action -> what it does
    undo: Callable[[Any], str]  # the action -> what rollback does about it
    check: Callable[[Path, dict[str, Any], Context, Dynos], None] = check_nothing


def short(data: Any, limit: int = 300) -> str:
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def known_name(ctx: Context, path: Path, value: Any, choices: Any, what: str) -> bool:
    """Report a name that is not among ``choices``; true when it is a known string."""
    if isinstance(value, str) and value not in choices:
        ctx.add(path, f"unknown {what} '{value}'{did_you_mean(value, choices)}")
        return False
    return isinstance(value, str)


def dyno_ref(ctx: Context, path: Path, value: Any, app: Any, dynos: Dynos) -> None:
    """Report a dyno the stack does not run (nor a scale fault of the scenario adds)."""
    if not isinstance(value, str):
        return
    names = dynos.get(app, set()) if isinstance(app, str) else set().union(*dynos.values())
    if value not in names:
        hint = did_you_mean(value, names)
        ctx.add(path, f"unknown dyno '{value}'{hint} (more dynos need a "
                      f"'sync: {{op: scale}}' fault first)")
