"""Applying the faults of a scenario's timeline, and undoing them (docs/scenarios.md#faults).

``plan(fault)`` reads what the fault will change (a proxy's state, a dyno's route, a
rod...) and returns a ``Plan``: ``do()`` acts on the stack through the backend, the
Toxiproxy client and the services' own APIs; ``undo()`` restores what it changed, as the
fault table says (remove the toxic, restore the previous state, resume, restart, flush
the routers, ...). Planning first lets the engine record the undo *before* acting, so a
signal that arrives in the middle of an action still gets it rolled back. The engine
calls each undo once: when a ``for`` runs out, or in rollback, in reverse order.

Every undo tolerates what a runbook may already have done (a toxic removed by
``simctl heal`` is "already removed", not an error).

Each kind's plan lives in its own module (simctl/scenario/faults/<kind>.py); a ``tail``
fault is a client, not a change to the stack, and runs on the engine's background loop
(``loop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simctl.backends.base import Backend
from simctl.backends.http import call
from simctl.backends.project import base_url
from simctl.backends.state import ProcessState
from simctl.errors import InvalidInput
from simctl.faults.client import ToxiproxyClient
from simctl.scenario.faults import KINDS
from simctl.scenario.faults.base import Plan, Undo, short
from simctl.scenario.looper import BackgroundLoop
from simctl.scenario.model import FaultBase
from simctl.scenario.traffic import LoadRunner

__all__ = ["Actions", "Applied", "Plan", "Undo"]

_short = short  # its old name here


@dataclass
class Applied:
    """A fault that was (or was being) applied; ``undo`` is None when nothing undoes it."""

    fault: FaultBase
    output: str
    undo: Undo | None
    undone: bool = False


class Actions:
    """Fault actions against one running stack: what each kind's ``plan`` acts through."""

    def __init__(self, backend: Backend, client: ToxiproxyClient, load: LoadRunner | None,
                 loop: BackgroundLoop | None = None) -> None:
        self.backend = backend
        self.client = client
        self.load = load
        self.loop = loop  # where client-side faults (a slow tail) run

    # -- lookups, for the kinds' plans ---------------------------------------------------

    def url(self, role: str, **labels: str) -> str:
        return self.backend.url_of(role, **labels)

    def dyno_service(self, dyno: str) -> ProcessState:
        found = self.backend.find("dyno", dyno=dyno)
        if not found:
            raise InvalidInput(f"no process runs dyno {dyno!r}")
        return found[0]

    def router_url(self, name: str) -> str:
        for proc in self.backend.find("router"):
            if name in (proc.name, proc.labels.get("instance")):
                return base_url(proc)
        raise InvalidInput(f"no router {name!r}")

    def router_urls(self) -> list[str]:
        return [base_url(p) for p in self.backend.find("router")]

    def app(self, app: str) -> dict[str, Any]:
        routes = call("GET", f"{self.url('sync')}/routes")
        apps = routes.get("apps", {}) if isinstance(routes, dict) else {}
        if app not in apps:
            raise InvalidInput(f"sync has no app {app!r}")
        return apps[app]

    def dyno_entry(self, app: str, dyno: str) -> dict[str, Any]:
        for entry in self.app(app).get("dynos", []):
            if entry.get("name") == dyno:
                return entry
        raise InvalidInput(f"app {app!r} has no dyno {dyno!r} in the route table")

    # -- apply -------------------------------------------------------------------------

    def apply(self, fault: FaultBase) -> Applied:
        """Plan and do at once (when nothing can interrupt in between matters)."""
        plan = self.plan(fault)
        return Applied(fault, plan.do(), plan.undo)

    def plan(self, fault: FaultBase) -> Plan:
        return KINDS[fault.kind].plan(self, fault.action)
