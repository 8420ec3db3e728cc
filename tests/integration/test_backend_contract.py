"""The backend contract: the same checks against the fake and the real local backend.

``simctl.backends.fake.FakeBackend`` stands in for a backend in unit tests; these checks
keep it honest. Both run a two-service stack (a fault plane and one dyno-role service, both
real `simctl toxiproxy serve` processes for the local backend) defined in a temporary
stack folder, so the local side takes a few seconds (docs/architecture.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from simctl.backends import factory
from simctl.backends.base import Backend
from simctl.backends.fake import FakeBackend
from simctl.backends.local import LocalBackend
from simctl.backends.procs import port_taken
from simctl.errors import InvalidInput
from simctl.pytest_plugin import SLOTS, free_port_offset

# a restart's Popen is dropped while the service runs on (it outlives simctl on purpose)
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PORTS = (8474, 7401, 21401)  # fault plane, dyno web.1, its proxy: as in the default stack


def _offset() -> int:
    """free_port_offset() over this two-port stack: a slot where a full stack still runs
    elsewhere may have these two ports free (a busy machine runs several stacks)."""
    def taken(offset: int) -> bool:
        return any(port_taken(port + offset) for port in PORTS)

    return next((o for o in SLOTS if not taken(o)), free_port_offset())


def _stack_dir(folder: Path) -> Path:
    def serve(port: int) -> list[str]:
        return ["python", "-m", "simctl", "toxiproxy", "serve", "--host", "127.0.0.1",
                "--port", str(port)]

    services = {
        "toxiproxy": {"x-simctl": {"role": "toxiproxy", "local-command": serve(PORTS[0]),
                                   "health": f"http://toxiproxy:{PORTS[0]}/version"}},
        "web-1": {"depends_on": ["toxiproxy"],
                  "x-simctl": {"role": "dyno", "app": "web", "dyno": "web.1",
                               "local-command": serve(PORTS[1]),
                               "health": f"http://web-1:{PORTS[1]}/version"}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(yaml.safe_dump({"services": services}))
    link = {"name": "web.1", "listen": f"toxiproxy:{PORTS[2]}", "upstream": f"web-1:{PORTS[1]}"}
    (folder / "toxiproxy.json").write_text(json.dumps([link]))  # a dyno is reached through it
    return folder


@pytest.fixture(scope="module", params=["fake", "local"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[Backend]:
    folder = _stack_dir(tmp_path_factory.mktemp("stack"))
    project = f"contract-{request.param}-{os.getpid()}"
    saved = os.environ.get("SIMCTL_STATE_DIR")  # its state and logs: in the test's folder
    os.environ["SIMCTL_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    made: Backend
    if request.param == "fake":
        made = FakeBackend(project, stack_dir=folder)
    else:
        made = LocalBackend(project, timing="fast", port_offset=_offset(),
                            stack_dir=folder, start_timeout=20)
    try:
        made.up()
        yield made
    finally:
        made.down()
        if saved is None:
            os.environ.pop("SIMCTL_STATE_DIR", None)
        else:
            os.environ["SIMCTL_STATE_DIR"] = saved


def _row(backend: Backend, name: str):  # noqa: ANN202 - a ServiceStatus
    return next(r for r in backend.status() if r.name == name)


def test_it_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.require_state().project == backend.project


def test_up_runs_every_service(backend: Backend) -> None:
    rows = {r.name: r for r in backend.status()}
    assert set(rows) == {"toxiproxy", "web-1"}
    assert all(r.running and not r.paused and r.health.ok for r in rows.values())
    assert backend.paused_or_down() == []


def test_find_and_url_of(backend: Backend) -> None:
    assert [p.name for p in backend.find("dyno", app="web")] == ["web-1"]
    assert backend.find("dyno", app="other") == []
    assert backend.url_of("dyno", dyno="web.1").startswith("http://127.0.0.1:")
    with pytest.raises(InvalidInput, match="no router"):
        backend.url_of("router")


def test_pause_and_resume(backend: Backend) -> None:
    backend.pause("web-1")
    assert backend.paused_or_down() == ["web-1"]
    assert _row(backend, "web-1").paused
    assert not _row(backend, "web-1").health.ok
    backend.resume("web-1")
    assert backend.paused_or_down() == []


def test_kill_then_restart(backend: Backend) -> None:
    before = _row(backend, "web-1").pid
    backend.kill("web-1")
    assert backend.paused_or_down() == ["web-1"]
    assert not _row(backend, "web-1").running
    with pytest.raises(InvalidInput, match="is not running"):
        backend.pause("web-1")
    backend.restart("web-1")
    assert backend.paused_or_down() == []
    row = _row(backend, "web-1")
    assert row.running
    assert row.health.ok
    assert row.pid != before


def test_refusals(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="already running"):
        backend.start("web-1")
    with pytest.raises(InvalidInput, match="no service 'web-9'.*did you mean 'web-1'"):
        backend.kill("web-9")
    with pytest.raises(InvalidInput, match="needs the compose backend"):
        backend.limit_cpu("web-1", 0.1)
    with pytest.raises(InvalidInput, match="needs the compose backend"):
        backend.partition("web-1")
    assert backend.paused_or_down() == []


def test_down_ends_the_project(tmp_path: Path) -> None:
    backend = FakeBackend("contract-down", stack_dir=_stack_dir(tmp_path))
    backend.up()
    assert backend.down() == ["toxiproxy", "web-1"]
    assert backend.state() is None
    assert backend.down() == []
    with pytest.raises(InvalidInput, match="is not up"):
        backend.status()


def test_the_factory_picks_by_name_and_by_saved_state() -> None:
    assert isinstance(factory.create("local", "contract-none"), LocalBackend)
    assert factory.for_project(f"contract-none-{os.getpid()}").name == "local"
    with pytest.raises(InvalidInput, match="unknown backend 'podman'"):
        factory.create("podman", "x")
