"""A backend that runs nothing: the stack's services as records in memory, for unit tests.

It satisfies ``simctl.backends.base.Backend`` and answers as the local backend does (the
same refusals for a service that is not running or already running, an unknown name, a
CPU limit or a disconnect), which tests/unit/test_backend_contract.py checks against both.
Every call that acts on a service is kept in ``calls`` so a test can say what was done.
It starts no process and opens no port: anything that talks to a service over HTTP needs
a real stack (docs/architecture.md, "Adding a backend").
"""

from __future__ import annotations

import time
from pathlib import Path

from simctl.backends.base import ServiceStatus
from simctl.backends.health import HealthReport
from simctl.backends.names import canonical
from simctl.backends.project import ProjectQueries
from simctl.backends.state import ProcessState, ProjectState, check_project
from simctl.errors import InvalidInput
from simctl.stack.definition import ServiceSpec, StackDefinition, load


class FakeBackend(ProjectQueries):
    name = "fake"
    prometheus = False

    def __init__(self, project: str = "fake", *, timing: str = "fast", port_offset: int = 0,
                 stack_dir: Path | None = None) -> None:
        self.project = check_project(project)
        self.timing = timing
        self.port_offset = port_offset
        self.stack_dir = stack_dir
        self.notices: list[str] = []
        self.calls: list[tuple[str, str]] = []  # ("kill", "dyno-1"), ("scale", "web=2")...
        self._state: ProjectState | None = None
        self._next_pid = 1

    def definition(self) -> StackDefinition:
        return load(self.stack_dir, port_offset=self.port_offset)

    def state(self) -> ProjectState | None:
        return self._state

    # -- the whole stack ----------------------------------------------------------------

    def up(self) -> ProjectState:
        if self._state is not None:
            raise InvalidInput(f"project {self.project!r} is already up")
        definition = self.definition()
        state = ProjectState(project=self.project, backend=self.name, timing=self.timing,
                             port_offset=self.port_offset, toxiproxy_url="",
                             embedded_toxiproxy=True, started_at=time.time(), complete=True)
        for spec in definition.services.values():
            self._record(state, spec)
            if spec.role == "toxiproxy" and spec.health_url:
                state.toxiproxy_url = spec.health_url.rsplit("/", 1)[0]
        self._state = state
        return state

    def down(self) -> list[str]:
        names = sorted(self._state.processes) if self._state else []
        self._state = None
        return names

    def status(self) -> list[ServiceStatus]:
        out = []
        for proc in self.require_state().processes.values():
            if proc.stopped:
                health = HealthReport(False, proc.ended_by or "killed")
            elif proc.paused:
                health = HealthReport(False, "paused", "SIGSTOP")
            else:
                health = HealthReport(True, "running")
            out.append(ServiceStatus(proc.name, proc.role, proc.pid, not proc.stopped,
                                     proc.paused, health))
        return out

    def paused_or_down(self) -> list[str]:
        if self._state is None:
            return []
        return [p.name for p in self._state.processes.values() if p.paused or p.stopped]

    # -- one service --------------------------------------------------------------------

    def _act(self, action: str, name: str) -> ProcessState:
        proc = self._process(self.require_state(), name)
        self.calls.append((action, name))
        return proc

    def kill(self, name: str) -> None:
        proc = self._act("kill", name)
        proc.stopped, proc.paused, proc.ended_by = True, False, "killed"

    def stop(self, name: str) -> None:
        proc = self._act("stop", name)
        proc.stopped, proc.paused, proc.ended_by = True, False, "stopped"

    def pause(self, name: str) -> None:
        proc = self._act("pause", name)
        if proc.stopped:
            raise InvalidInput(f"{canonical(proc)} is not running")
        proc.paused = True

    def resume(self, name: str) -> None:
        self._act("resume", name).paused = False

    def restart(self, name: str) -> None:
        proc = self._act("restart", name)
        proc.stopped, proc.paused, proc.ended_by = False, False, ""
        proc.pid = self._pid()

    def start(self, name: str) -> None:
        proc = self._act("start", name)
        if not proc.stopped:
            raise InvalidInput(f"{canonical(proc)} is already running")
        proc.stopped, proc.ended_by, proc.pid = False, "", self._pid()

    def limit_cpu(self, name: str, cpus: float | None) -> None:
        raise InvalidInput("a CPU limit needs the compose backend (a container's CPU quota)")

    def partition(self, name: str, connected: bool = False) -> None:
        raise InvalidInput("disconnecting a service needs the compose backend (a container "
                           "network)")

    # -- dynos ----------------------------------------------------------------------------

    def scale(self, app: str, count: int) -> list[str]:
        """Keep dynos 1..count of ``app`` (copies of its first one); no routes change."""
        state = self.require_state()
        current = sorted(self.find("dyno", app=app), key=lambda p: str(p.labels["dyno"]))
        if not current:
            raise InvalidInput(f"no app {app!r} in project {self.project!r}")
        self.calls.append(("scale", f"{app}={count}"))
        template = current[0]
        for proc in current[count:]:
            del state.processes[proc.name]
        for index in range(len(current) + 1, count + 1):
            labels = dict(template.labels, dyno=f"{app}.{index}")
            spec = ServiceSpec(f"dyno-{index}", template.command, {}, [], template.health_url,
                               "dyno", labels)
            self._record(state, spec)
        return [f"{app}.{i}" for i in range(1, count + 1)]

    def dyno_address(self, dyno: str, address: str) -> str:
        if address == "blackhole":
            return self.blackhole_address()
        if address == "proxy" or ":" not in address:
            raise InvalidInput(f"{address!r}: the fake backend resolves HOST:PORT and "
                               "blackhole only")
        return address

    # -- records ------------------------------------------------------------------------

    def _pid(self) -> int:
        self._next_pid += 1
        return self._next_pid

    def _record(self, state: ProjectState, spec: ServiceSpec) -> None:
        state.processes[spec.name] = ProcessState(
            name=spec.name, pid=self._pid(), pgid=0, started=0.0, command=list(spec.command),
            role=spec.role, health_url=spec.health_url, labels=dict(spec.labels))
