"""`simctl restart toxiproxy` on the local backend: the fault plane comes back with every
link of the stack and the toxics it held; `status` calls a fault plane that lacks one of
the stack's proxies degraded (it used to come back empty, and `status` said ok)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simctl.faults.client import ToxiproxyClient
from simctl.pytest_plugin import free_port_offset

pytestmark = pytest.mark.slow


def test_restart_toxiproxy_reloads_links_and_toxics(tmp_path: Path) -> None:
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
           "SIMCTL_PROJECT": f"fprestart{os.getpid()}"}
    offset = free_port_offset()

    def sim(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                              capture_output=True, timeout=120)

    def toxiproxy_row() -> dict:
        status = sim("status", "--json")
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)["services"]
        return next(r for r in rows if r["role"] == "toxiproxy")

    up = sim("up", "--timing", "fast", "--port-offset", str(offset))
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((tmp_path / env["SIMCTL_PROJECT"] / "state.json").read_text())
        client = ToxiproxyClient(state["toxiproxy_url"])
        before = {name: (p.listen, p.upstream) for name, p in client.proxies().items()}
        assert {"edge.1", "web.1", "router-logs"} <= set(before)
        assert toxiproxy_row()["state"] == "ok"
        injected = sim("inject", "web.1", "latency", "--attr", "latency=50")
        assert injected.returncode == 0, injected.stderr
        toxics = [t.name for t in client.toxics("web.1")]
        assert toxics

        restarted = sim("restart", "toxiproxy")
        assert restarted.returncode == 0, restarted.stderr
        after = client.proxies()
        assert {name: (p.listen, p.upstream) for name, p in after.items()} == before
        assert [t.name for t in after["web.1"].toxics] == toxics
        assert toxiproxy_row()["state"] == "ok"
        # Traffic flows again once the routers have reconnected through the restored links
        # (a dyno refused while the fault plane was down stays quarantined a moment).
        edge = f"http://127.0.0.1:{before['edge.1'][0].rsplit(':', 1)[1]}/"
        request = urllib.request.Request(edge, headers={"Host": "web.localhost"})
        codes = []
        deadline = time.monotonic() + 20
        while 200 not in codes and time.monotonic() < deadline and len(codes) < 100:
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    codes.append(reply.status)
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
                time.sleep(0.2)
        assert 200 in codes, codes

        client.delete_proxy("sync.2")
        row = toxiproxy_row()
        assert row["state"] == "degraded"
        assert row["reason"] == "missing proxies: sync.2"
    finally:
        sim("down")
