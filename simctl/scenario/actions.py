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

A ``tail`` fault is a client, not a change to the stack: a slow tail session
(``simctl.scenario.slowtail``) that runs on the engine's background loop (``loop``);
its undo closes it, and closing the loop cancels it as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simctl.backends.base import Backend
from simctl.backends.http import call
from simctl.backends.project import base_url
from simctl.errors import InvalidInput, ToxiproxyError
from simctl.faults.client import ToxiproxyClient
from simctl.scenario.looper import BackgroundLoop
from simctl.scenario.model import (
    DrainAction,
    DynoAction,
    FaultBase,
    LoadAction,
    ProcessAction,
    ProxyAction,
    RodAction,
    RouterAction,
    SyncAddress,
    SyncMaintenance,
    SyncPoison,
    SyncScale,
    SyncState,
    TailAction,
    ToxicAction,
)
from simctl.scenario.slowtail import CONNECT_TIMEOUT, SlowTail, TailRefused
from simctl.scenario.traffic import LoadRunner

Undo = Callable[[], str]


@dataclass
class Plan:
    do: Callable[[], str]
    undo: Undo | None  # None when nothing undoes the fault


@dataclass
class Applied:
    """A fault that was (or was being) applied; ``undo`` is None when nothing undoes it."""

    fault: FaultBase
    output: str
    undo: Undo | None
    undone: bool = False


def _short(data: Any, limit: int = 300) -> str:
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Actions:
    """Fault actions against one running stack."""

    def __init__(self, backend: Backend, client: ToxiproxyClient, load: LoadRunner | None,
                 loop: BackgroundLoop | None = None) -> None:
        self.backend = backend
        self.client = client
        self.load = load
        self.loop = loop  # where client-side faults (a slow tail) run

    # -- lookups -----------------------------------------------------------------------

    def _url(self, role: str, **labels: str) -> str:
        return self.backend.url_of(role, **labels)

    def _dyno_service(self, dyno: str) -> Any:
        found = self.backend.find("dyno", dyno=dyno)
        if not found:
            raise InvalidInput(f"no process runs dyno {dyno!r}")
        return found[0]

    def _router_url(self, name: str) -> str:
        for proc in self.backend.find("router"):
            if name in (proc.name, proc.labels.get("instance")):
                return base_url(proc)
        raise InvalidInput(f"no router {name!r}")

    def _routers(self) -> list[str]:
        return [base_url(p) for p in self.backend.find("router")]

    def _app(self, app: str) -> dict[str, Any]:
        routes = call("GET", f"{self._url('sync')}/routes")
        apps = routes.get("apps", {}) if isinstance(routes, dict) else {}
        if app not in apps:
            raise InvalidInput(f"sync has no app {app!r}")
        return apps[app]

    def _dyno_entry(self, app: str, dyno: str) -> dict[str, Any]:
        for entry in self._app(app).get("dynos", []):
            if entry.get("name") == dyno:
                return entry
        raise InvalidInput(f"app {app!r} has no dyno {dyno!r} in the route table")

    # -- apply -------------------------------------------------------------------------

    def apply(self, fault: FaultBase) -> Applied:
        """Plan and do at once (when nothing can interrupt in between matters)."""
        plan = self.plan(fault)
        return Applied(fault, plan.do(), plan.undo)

    def plan(self, fault: FaultBase) -> Plan:
        action = fault.action
        handler = {
            ToxicAction: self._toxic,
            ProxyAction: self._proxy,
            ProcessAction: self._process,
            DynoAction: self._dyno,
            SyncScale: self._scale,
            SyncState: self._state,
            SyncMaintenance: self._maintenance,
            SyncAddress: self._address,
            SyncPoison: self._poison,
            LoadAction: self._load,
            RodAction: self._rod,
            DrainAction: self._drain,
            RouterAction: self._router,
            TailAction: self._tail,
        }[type(action)]
        return handler(action)

    def _toxic(self, a: ToxicAction) -> Plan:
        name = a.toxic_name

        def do() -> str:
            added = self.client.add_toxic(a.proxy, a.type, stream=a.stream,
                                          toxicity=a.toxicity, attributes=dict(a.attributes),
                                          name=name)
            attrs = " ".join(f"{k}={v}" for k, v in added.attributes.items())
            return f"added {added.name} to {a.proxy}: {added.type} {added.stream} {attrs}"

        def undo() -> str:
            try:
                self.client.remove_toxic(a.proxy, name)
            except ToxiproxyError as exc:
                if exc.status == 404:
                    return f"toxic {name} was already removed from {a.proxy}"
                raise
            return f"removed toxic {name} from {a.proxy}"

        return Plan(do, undo)

    def _proxy(self, a: ProxyAction) -> Plan:
        before = self.client.proxy(a.name).enabled

        def do() -> str:
            self.client.update_proxy(a.name, enabled=a.enabled)
            return f"proxy {a.name} {'enabled' if a.enabled else 'disabled'}"

        def undo() -> str:
            self.client.update_proxy(a.name, enabled=before)
            return f"proxy {a.name} {'enabled' if before else 'disabled'} again"

        return Plan(do, undo)

    def _process(self, a: ProcessAction) -> Plan:
        def do() -> str:
            getattr(self.backend, a.action)(a.service)
            return f"{a.action} {a.service}"

        def restart() -> str:
            self.backend.restart(a.service)
            return f"restarted {a.service}"

        def resume() -> str:
            self.backend.resume(a.service)
            return f"resumed {a.service}"

        return Plan(do, {"kill": restart, "pause": resume}.get(a.action))

    def _dyno(self, a: DynoAction) -> Plan:
        proc = self._dyno_service(a.dyno)
        url = f"{base_url(proc)}/control"
        restart = a.behaviour in ("crash", "memory")

        def do() -> str:
            shown = call("POST", url, {"behaviour": a.behaviour, **a.params})
            return f"{a.dyno}: {_short(shown)}"

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
                self.backend.restart(proc.name)
                notes.append(f"restarted {proc.name}")
            return "; ".join(notes)

        return Plan(do, undo)

    def _scale(self, a: SyncScale) -> Plan:
        before = list(self._app(a.app).get("dynos", []))
        count = len(self.backend.find("dyno", app=a.app))

        def do() -> str:
            names = self.backend.scale(a.app, a.dynos)
            return f"{a.app}: {a.dynos} dyno(s) {', '.join(names)}".rstrip()

        def undo() -> str:
            self.backend.scale(a.app, count)
            call("POST", f"{self._url('sync')}/apps/{a.app}/dynos", {"dynos": before})
            return f"{a.app} back to {count} dyno process(es) and its previous dyno list"

        return Plan(do, undo)

    def _state(self, a: SyncState) -> Plan:
        before = self._dyno_entry(a.app, a.dyno).get("state", "up")
        url = f"{self._url('sync')}/apps/{a.app}/dynos/{a.dyno}"

        def do() -> str:
            answer = call("POST", url, {"state": a.state})
            return f"{a.dyno} state {a.state}: {_short(answer)}"

        def undo() -> str:
            call("POST", url, {"state": before})
            return f"{a.dyno} state {before} again"

        return Plan(do, undo)

    def _maintenance(self, a: SyncMaintenance) -> Plan:
        before = bool(self._app(a.app).get("maintenance", False))
        url = f"{self._url('sync')}/apps/{a.app}/maintenance"

        def do() -> str:
            answer = call("POST", url, {"enabled": a.enabled})
            return f"{a.app} maintenance {'on' if a.enabled else 'off'}: {_short(answer)}"

        def undo() -> str:
            call("POST", url, {"enabled": before})
            return f"{a.app} maintenance {'on' if before else 'off'} again"

        return Plan(do, undo)

    def _address(self, a: SyncAddress) -> Plan:
        before = self._dyno_entry(a.app, a.dyno).get("address")
        resolved = self.backend.dyno_address(a.dyno, a.address)
        url = f"{self._url('sync')}/apps/{a.app}/dynos/{a.dyno}"

        def do() -> str:
            call("POST", url, {"address": resolved})
            return f"{a.dyno} address {resolved}"

        def undo() -> str:
            call("POST", url, {"address": before})
            return f"{a.dyno} address {before} again"

        return Plan(do, undo)

    def _poison(self, a: SyncPoison) -> Plan:
        url = f"{self._url('sync')}/poison"

        def do() -> str:
            return f"poison record appended: {_short(call('POST', url, {}))}"

        def undo() -> str:
            for url in self._routers():
                call("POST", f"{url}/admin/flush", {})
            return "flushed every router"

        return Plan(do, undo)

    def _load(self, a: LoadAction) -> Plan:
        if self.load is None:
            raise InvalidInput("no load is running")
        load = self.load

        def do() -> str:
            load.set_rates(a.http, a.logs)
            return f"load now http {load.http_rate:g}/s, logs {load.logs_rate:g}/s"

        def undo() -> str:
            load.set_rates(load.spec.http_rate, load.spec.logs_rate)
            return (f"load back to http {load.spec.http_rate:g}/s, "
                    f"logs {load.spec.logs_rate:g}/s")

        return Plan(do, undo)

    def _rod(self, a: RodAction) -> Plan:
        url = self._url("logplex")
        rods = call("GET", f"{url}/admin/rods").get("rods", {})
        before = bool(rods.get(a.name, False))

        def do() -> str:
            call("POST", f"{url}/admin/rods/{a.name}", {"enabled": a.enabled})
            return f"control rod {a.name} {'on' if a.enabled else 'off'}"

        def undo() -> str:
            call("POST", f"{url}/admin/rods/{a.name}", {"enabled": before})
            return f"control rod {a.name} {'on' if before else 'off'} again"

        return Plan(do, undo)

    def _drain(self, a: DrainAction) -> Plan:
        url = f"{self._url('logplex')}/admin/drains/{a.name}"
        before = bool(call("GET", url).get("enabled", True))

        def do() -> str:
            call("POST", url, {"enabled": a.enabled})
            return f"drain {a.name} {'enabled' if a.enabled else 'disabled'}"

        def undo() -> str:
            call("POST", url, {"enabled": before})
            return f"drain {a.name} {'enabled' if before else 'disabled'} again"

        return Plan(do, undo)

    def _router(self, a: RouterAction) -> Plan:
        url = self._router_url(a.router)

        def do() -> str:
            return f"{a.action} {a.router}: {_short(call('POST', f'{url}/admin/{a.action}', {}))}"

        return Plan(do, None)

    def _tail(self, a: TailAction) -> Plan:
        if self.loop is None or self.loop.closed:
            raise InvalidInput("a tail fault needs the engine's background loop")
        loop = self.loop
        session = SlowTail(self._url("logplex"), a.app, a.rate)

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
