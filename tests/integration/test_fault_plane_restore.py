"""Saving and restoring what an embedded fault plane holds across its restart
(simctl/backends/fault_plane.py), against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from simctl.backends import fault_plane
from simctl.backends.state import ProjectState
from simctl.errors import SimctlError
from simctl.faults.client import ToxiproxyClient
from simctl.faults.server import ToxiproxyServer
from tests.integration.conftest import LoopThread


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectState:
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(tmp_path))
    state = ProjectState("fp", "local", "fast", 0, "", True)
    state.save()
    return state


def test_restore_puts_back_links_toxics_and_disabled_proxies(
    state: ProjectState, toxiproxy_server_factory: Callable[..., ToxiproxyServer],
    loop_thread: LoopThread,
) -> None:
    first = toxiproxy_server_factory()
    before = ToxiproxyClient(first.url)
    before.create_proxy("web.1", "127.0.0.1:1")
    before.create_proxy("web.4", "127.0.0.1:4")  # scaled in: not in the link map
    before.create_proxy("sync.1", "127.0.0.1:2")
    before.add_toxic("web.1", "latency", attributes={"latency": 50}, name="slow")
    before.disable("sync.1")
    fault_plane.save(state, before)
    snapshot = state.folder / fault_plane.SNAPSHOT
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert {p["name"] for p in json.loads(snapshot.read_text())} == {"web.1", "web.4", "sync.1"}

    loop_thread.run(first.stop())  # its ports are free again, as after a restart
    after = ToxiproxyClient(toxiproxy_server_factory().url)  # a restarted server: empty
    link_map = [{"name": n, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}
                for n in ("web.1", "sync.1", "edge.1")]
    fault_plane.restore(state, after, link_map, {"web.1", "sync.1", "edge.1"})
    proxies = after.proxies()
    assert set(proxies) == {"web.1", "web.4", "sync.1", "edge.1"}
    assert [(t.name, t.attributes["latency"]) for t in proxies["web.1"].toxics] == [("slow", 50)]
    assert not proxies["sync.1"].enabled
    assert proxies["web.4"].upstream == "127.0.0.1:4"
    assert not snapshot.exists()  # consumed
    assert fault_plane.missing(after, {"web.1", "edge.1", "web.2"}) == ["web.2"]


def test_a_proxy_that_cannot_come_back_stops_none_of_the_others(
    state: ProjectState, toxiproxy_server: ToxiproxyServer
) -> None:
    client = ToxiproxyClient(toxiproxy_server.url)
    taken = client.create_proxy("holder", "127.0.0.1:1")  # holds the port web.4 had
    saved = [{"name": "web.4", "listen": taken.listen, "upstream": "127.0.0.1:4",
              "enabled": True, "toxics": []},
             {"name": "web.1", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1",
              "enabled": True, "toxics": [{"name": "slow", "type": "latency",
                                           "stream": "downstream", "toxicity": 1.0,
                                           "attributes": {"latency": 5, "jitter": 0}}]}]
    (state.folder / fault_plane.SNAPSHOT).write_text(json.dumps(saved))
    with pytest.raises(SimctlError, match=r"could not put back: web\.4 \(.*address already"):
        fault_plane.restore(state, client, [], set())
    assert [t.name for t in client.toxics("web.1")] == ["slow"]


def test_a_server_that_does_not_answer_leaves_no_old_save(state: ProjectState) -> None:
    snapshot = state.folder / fault_plane.SNAPSHOT
    snapshot.write_text("[]")
    fault_plane.save(state, ToxiproxyClient("http://127.0.0.1:1", timeout=1))
    assert not snapshot.exists()
