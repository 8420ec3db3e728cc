"""One name per thing (docs/cli.md#names): every alias of a router or a dyno finds its
process, and output names it one way.

    router   router-1 (canonical), router.1 (its instance), edge.1 and edge-tls.1 (the
             fault-plane proxies in front of it)
    dyno     web.1 (canonical: the name sync, the routers and the logs use), dyno-1
    others   their service name (sync, logplex, drain-main, ...)

Edge proxies are matched to their router by address: the proxy whose listen address is
one of the router's published endpoints.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from simctl.backends.state import ProcessState, ProjectState
from simctl.errors import InvalidInput

if TYPE_CHECKING:
    from simctl.backends.base import Backend


def _address(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def aliases(proc: ProcessState, state: ProjectState | None = None) -> list[str]:
    """Every name of ``proc``, its canonical name first."""
    names = [proc.name]
    if proc.role == "dyno" and proc.labels.get("dyno"):
        names.insert(0, str(proc.labels["dyno"]))
    elif proc.role == "router":
        if proc.labels.get("instance"):
            names.append(str(proc.labels["instance"]))
        endpoints = proc.labels.get("endpoints")
        if state is not None and isinstance(endpoints, dict):
            mine = {_address(str(url)) for url in endpoints.values()}
            names.extend(key.removeprefix("proxy ") for key, address in state.endpoints.items()
                         if key.startswith("proxy ") and _address(str(address)) in mine)
    return list(dict.fromkeys(names))


def canonical(proc: ProcessState) -> str:
    return aliases(proc)[0]


def resolve(state: ProjectState, name: str,
            candidates: Iterable[ProcessState] | None = None) -> ProcessState | None:
    """The process ``name`` (any alias) stands for, among ``candidates`` (default: all)."""
    pool = list(state.processes.values() if candidates is None else candidates)
    exact = next((p for p in pool if p.name == name), None)
    if exact is not None:
        return exact
    return next((p for p in pool if name in aliases(p, state)), None)


def suggestion(state: ProjectState, name: str,
               candidates: Iterable[ProcessState] | None = None) -> str:
    """"; did you mean 'x'?" over every alias, or ""."""
    pool = list(state.processes.values() if candidates is None else candidates)
    every = [alias for p in pool for alias in aliases(p, state)]
    close = difflib.get_close_matches(name, every, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def service(backend: Backend, name: str) -> ProcessState:
    """The process a service name or alias stands for; InvalidInput naming the nearest."""
    state = backend.require_state()
    proc = resolve(state, name)
    if proc is None:
        raise InvalidInput(f"no service {name!r} in project {backend.project!r}"
                           f"{suggestion(state, name)}")
    return proc


def dyno(state: ProjectState, name: str) -> str:
    """The canonical name of the dyno ``name`` stands for (web.1 for dyno-1), or ``name``
    unchanged when no process is that dyno (sync may still know it, or say it does not)."""
    proc = resolve(state, name, (p for p in state.processes.values() if p.role == "dyno"))
    return canonical(proc) if proc is not None else name
