"""Which proxies a running stack needs (simctl/backends/fault_plane.py): its link map, with
dyno links following `scale`; `status` calls the fault plane degraded without them."""

from __future__ import annotations

from simctl.backends.fault_plane import expected_names
from simctl.backends.state import ProcessState, ProjectState

LINK_MAP = [{"name": n} for n in ("edge.1", "sync.1", "web.1", "web.2", "web.3", "dyno-logs")]
DEFINED_DYNOS = {"web.1", "web.2", "web.3"}


def state_with_dynos(*dynos: str) -> ProjectState:
    state = ProjectState("p", "local", "fast", 0, "http://127.0.0.1:8474", True)
    for i, dyno in enumerate(dynos, start=1):
        state.processes[f"dyno-{i}"] = ProcessState(
            f"dyno-{i}", 100 + i, 100 + i, 0.0, ["python"], "dyno", labels={"dyno": dyno})
    return state


def test_as_defined() -> None:
    state = state_with_dynos("web.1", "web.2", "web.3")
    assert expected_names(state, LINK_MAP, DEFINED_DYNOS) == {n["name"] for n in LINK_MAP}


def test_scaled_down_needs_fewer_dyno_links() -> None:
    state = state_with_dynos("web.1")
    assert expected_names(state, LINK_MAP, DEFINED_DYNOS) == {"edge.1", "sync.1", "web.1",
                                                              "dyno-logs"}


def test_scaled_up_needs_the_new_dyno_links() -> None:
    state = state_with_dynos("web.1", "web.2", "web.3", "web.4")
    assert "web.4" in expected_names(state, LINK_MAP, DEFINED_DYNOS)
