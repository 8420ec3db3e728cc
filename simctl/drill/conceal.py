"""Concealed drills: responders diagnose from symptoms, not from the fault plane.

``conceal_scenario`` gives every toxic of the scenario a neutral name (``t-3f9a1c``), so
that neither the name nor a scenario's wording shows through. ``refuse_inspection`` is
called by the fault-plane inspection commands (``simctl proxies``, ``simctl toxics``):
while a concealed drill runs they refuse, unless SIMCTL_DRILL_TOKEN holds the
facilitator's token (docs/drills.md, "Hidden and concealed drills").
"""

from __future__ import annotations

import os
import secrets

from simctl.drill import state
from simctl.errors import SimctlError

EXIT_CONCEALED = state.EXIT_REFUSED


class Concealed(SimctlError):
    """A fault-plane inspection refused during a concealed drill."""

    exit_code = EXIT_CONCEALED


def neutral_name() -> str:
    return f"t-{secrets.token_hex(3)}"


def conceal_scenario(scenario):
    """The scenario with each toxic renamed neutrally (names stay unique)."""
    faults = []
    for fault in scenario.faults:
        if fault.kind == "toxic":
            toxic = fault.toxic.model_copy(update={"name": neutral_name()})
            fault = fault.model_copy(update={"toxic": toxic})
        faults.append(fault)
    return scenario.model_copy(update={"faults": faults})


def refuse_inspection(project: str, command: str) -> None:
    """Raise ``Concealed`` while a concealed drill of ``project`` runs (no valid token)."""
    drill_id = state.active_id(project)
    if drill_id is None:
        return
    try:
        drill = state.load(state.drills_root(project) / drill_id)
    except SimctlError:
        return
    if not (drill.running and drill.conceal):
        return
    if drill.token_ok(os.environ.get(state.TOKEN_ENV)):
        return
    raise Concealed(f"{command} is not available during drill {drill.id}: the fault plane is "
                    f"concealed; diagnose from symptoms (the facilitator can run it with "
                    f"{state.TOKEN_ENV})")


def hides_scenarios(project: str) -> bool:
    """True while a hidden drill of ``project`` runs and the caller has no valid token: then
    responder-facing output (a runbook's ``scenarios:`` list, say) must not name scenarios."""
    drill_id = state.active_id(project)
    if drill_id is None:
        return False
    try:
        drill = state.load(state.drills_root(project) / drill_id)
    except SimctlError:
        return False
    if not (drill.running and drill.hidden):
        return False
    return not drill.token_ok(os.environ.get(state.TOKEN_ENV))
