"""The backend interface: what the local and compose backends share (docs/architecture.md).

A backend runs one project's stack and acts on its services by name. The scenario engine,
its fault actions, the observer, the baseline reset and the CLI take a ``Backend``, never
a concrete class, so a new backend (or the checked fake in ``simctl.backends.fake``) is one
class that satisfies this protocol plus a line in ``simctl.backends.factory``.

Both real backends answer the project queries (``state``, ``find``, ``url_of``...) from
the project's saved state through ``simctl.backends.project.ProjectQueries``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from simctl.backends.health import HealthReport
from simctl.backends.state import ProcessState, ProjectState
from simctl.stack.definition import StackDefinition


@dataclass
class ServiceStatus:
    """One service as `simctl status` shows it."""

    name: str
    role: str
    pid: int
    running: bool
    paused: bool
    health: HealthReport


@runtime_checkable
class Backend(Protocol):
    """What every backend offers; each method acts on the service named by its state key."""

    name: str  # "local", "compose": recorded in the project's state
    project: str
    up_hint: str  # the command that starts this project, for "is not up" errors
    prometheus: bool  # `up --prometheus`: a real Prometheus runs too
    notices: list[str]  # said to the user once `up` returns
    port_offset: int
    timing: str

    # -- the project's saved state ------------------------------------------------------

    def state(self) -> ProjectState | None: ...

    def require_state(self) -> ProjectState: ...

    def find(self, role: str, **labels: str) -> list[ProcessState]: ...

    def url_of(self, role: str, **labels: str) -> str: ...

    def blackhole_address(self) -> str: ...

    def definition(self) -> StackDefinition: ...

    # -- the whole stack ----------------------------------------------------------------

    def up(self) -> ProjectState: ...

    def down(self) -> list[str]: ...

    def status(self) -> list[ServiceStatus]: ...

    def paused_or_down(self) -> list[str]: ...

    # -- one service --------------------------------------------------------------------

    def kill(self, name: str) -> None: ...

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def restart(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def limit_cpu(self, name: str, cpus: float | None) -> None: ...

    def partition(self, name: str, connected: bool = False) -> None: ...

    # -- dynos ----------------------------------------------------------------------------

    def scale(self, app: str, count: int) -> list[str]: ...

    def dyno_address(self, dyno: str, address: str) -> str: ...
