"""Where the views read from: a Prometheus API URL and the routers' admin URLs.

`--prometheus-url` wins; otherwise the project's `monitor` service (its state on disk,
docs/cli.md). Router lines come from each router's `GET /admin/logs` when the project is up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simctl.backends.project import base_url
from simctl.backends.state import ProjectState
from simctl.errors import InvalidInput
from simctl.views.prom_client import check_url


@dataclass
class ViewSource:
    prometheus_url: str
    routers: dict[str, str] = field(default_factory=dict)  # instance -> admin base URL
    timing: str | None = None
    project: str | None = None


def resolve(project: str, prometheus_url: str | None) -> ViewSource:
    """The URLs to read, or InvalidInput (exit 2) naming what to start or pass."""
    state = ProjectState.load(project)
    routers: dict[str, str] = {}
    timing = None
    if state is not None:
        timing = state.timing
        for proc in state.processes.values():
            if proc.role == "router":
                routers[str(proc.labels.get("instance", proc.name))] = base_url(proc)
    if prometheus_url:
        return ViewSource(check_url(prometheus_url), routers, timing,
                          project if state else None)
    if state is None:
        raise InvalidInput(f"project {project!r} is not up: start it with `simctl up`, "
                           "or give --prometheus-url URL")
    monitors = [p for p in state.processes.values() if p.role == "monitor"]
    if not monitors:
        raise InvalidInput(f"project {project!r} runs no monitor service: "
                           "give --prometheus-url URL")
    return ViewSource(check_url(base_url(monitors[0])), routers, timing, project)
