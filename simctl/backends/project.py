"""What every backend answers from a project's saved state: its processes, their URLs."""

from __future__ import annotations

import difflib

from simctl.backends.state import ProcessState, ProjectState
from simctl.errors import InvalidInput


def base_url(proc: ProcessState) -> str:
    """A service's own HTTP base URL (its admin URL for routers)."""
    admin = proc.labels.get("admin")
    if admin:
        return str(admin)
    if not proc.health_url:
        raise InvalidInput(f"{proc.name} has no HTTP endpoint")
    return proc.health_url.rsplit("/", 1)[0]


class ProjectQueries:
    """Mixin for backends: `project` names the state; `up_hint` says how to start it."""

    project: str
    up_hint = "simctl up"

    def state(self) -> ProjectState | None:
        return ProjectState.load(self.project)

    def require_state(self) -> ProjectState:
        state = self.state()
        if state is None:
            raise InvalidInput(f"project {self.project!r} is not up (run `{self.up_hint}` first)")
        return state

    def _process(self, state: ProjectState, name: str) -> ProcessState:
        proc = state.processes.get(name)
        if proc is None:
            close = difflib.get_close_matches(name, list(state.processes), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(f"no service {name!r} in project {self.project!r}{hint}")
        return proc

    def find(self, role: str, **labels: str) -> list[ProcessState]:
        """Processes of a role whose x-simctl labels match (e.g. role="dyno", dyno="web.1")."""
        state = self.require_state()
        return [
            p
            for p in state.processes.values()
            if p.role == role and all(str(p.labels.get(k)) == v for k, v in labels.items())
        ]

    def url_of(self, role: str, **labels: str) -> str:
        found = self.find(role, **labels)
        if not found:
            wanted = " ".join(f"{k}={v}" for k, v in labels.items())
            raise InvalidInput(f"no {role} {wanted} in project {self.project!r}".rstrip())
        return base_url(found[0])

    def blackhole_address(self) -> str:
        """The address of the blackhole service's hole (never answers a connect)."""
        holes = self.find("blackhole")
        if not holes:
            raise InvalidInput(f"project {self.project!r} runs no blackhole service")
        return str(holes[0].labels["hole"]).split("://", 1)[-1]
