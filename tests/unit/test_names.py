"""One name per thing: the aliases of routers and dynos, canonical name first."""

from __future__ import annotations

from simctl.backends import names
from simctl.backends.state import ProcessState, ProjectState


def proc(name: str, role: str, **labels: object) -> ProcessState:
    return ProcessState(name, 1, 1, 0.0, ["true"], role, None, dict(labels))


STATE = ProjectState(
    "p", "local", "fast", 0, "http://127.0.0.1:8474", True,
    processes={p.name: p for p in (
        proc("router-1", "router", instance="router.1",
             endpoints={"router.1 (http)": "http://127.0.0.1:21201",
                        "router.1 (https)": "https://127.0.0.1:21211"}),
        proc("router-2", "router", instance="router.2",
             endpoints={"router.2 (http)": "http://127.0.0.1:21202"}),
        proc("dyno-1", "dyno", app="web", dyno="web.1"),
        proc("sync", "sync"),
    )},
    endpoints={"proxy edge.1": "127.0.0.1:21201", "proxy edge-tls.1": "127.0.0.1:21211",
               "proxy edge.2": "127.0.0.1:21202", "proxy web.1": "127.0.0.1:21401"},
)


def test_aliases() -> None:
    processes = STATE.processes
    assert names.aliases(processes["router-1"], STATE) == [
        "router-1", "router.1", "edge.1", "edge-tls.1"]
    assert names.aliases(processes["dyno-1"], STATE) == ["web.1", "dyno-1"]
    assert names.aliases(processes["sync"], STATE) == ["sync"]


def test_resolve_and_suggest() -> None:
    for alias in ("router-1", "router.1", "edge.1", "edge-tls.1"):
        assert names.resolve(STATE, alias).name == "router-1"
    assert names.resolve(STATE, "edge.2").name == "router-2"
    assert names.resolve(STATE, "web.1").name == "dyno-1"
    assert names.resolve(STATE, "web.9") is None
    assert names.suggestion(STATE, "roter.2") == "; did you mean 'router.2'?"
    assert names.dyno(STATE, "dyno-1") == "web.1"
    assert names.dyno(STATE, "web.9") == "web.9"  # sync says whether it knows it


def test_backend_errors_name_the_canonical_dyno(tmp_path, monkeypatch) -> None:
    """`simctl start dyno-2` on a running dyno says web.2, the name sync and the logs use."""
    import subprocess
    import sys

    import pytest

    from simctl.backends import procs
    from simctl.backends.local import LocalBackend
    from simctl.errors import InvalidInput

    monkeypatch.setenv("SIMCTL_STATE_DIR", str(tmp_path))
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                               start_new_session=True)
    ended = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    ended.wait()
    try:
        state = ProjectState("names", "local", "fast", 0, "http://127.0.0.1:8474", True)
        for name, dyno, child in (("dyno-2", "web.2", running), ("dyno-3", "web.3", ended)):
            state.processes[name] = ProcessState(
                name, child.pid, child.pid, procs.started_at(child.pid) if child is running
                else 0.0, ["true"], "dyno", None, {"app": "web", "dyno": dyno})
        state.save()
        backend = LocalBackend("names")
        with pytest.raises(InvalidInput, match=r"^web\.2 is already running$"):
            backend.start("dyno-2")
        with pytest.raises(InvalidInput, match=r"^web\.3 is not running$"):
            backend.pause("dyno-3")
    finally:
        running.kill()
        running.wait()
