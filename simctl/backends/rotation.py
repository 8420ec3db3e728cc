"""Taking a dyno out of the routers' rotation while it restarts, as Heroku's dyno manager
does (docs/architecture.md, "Restarting a dyno").

A restart that only killed and re-ran the process would leave the dyno `up` in the
route table: requests the routers sent it meanwhile would reach its fault-plane proxy,
which accepts the connection and closes it when the dyno refuses (as Toxiproxy does), and
the client would get an H13. So the dyno is marked `starting` in sync first, the restart
waits (boundedly) until every router has applied that, and the dyno is `up` again once
its new process is healthy. A dyno that was not `up` is restarted as it is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from simctl.backends.http import call
from simctl.errors import SimctlError

APPLY_WAIT = 2.0  # at most this long for the routers to follow; then restart anyway


@contextmanager
def out_of_rotation(state: Any, proc: Any) -> Iterator[None]:
    """Around a dyno's restart: `starting` in sync while the body runs, `up` after it
    succeeded (`crashed` if it raised)."""
    app, dyno = proc.labels.get("app"), proc.labels.get("dyno")
    sync = next((p for p in state.processes.values() if p.role == "sync"), None)
    if proc.role != "dyno" or not app or not dyno or sync is None or not sync.health_url:
        yield
        return
    sync_url = sync.health_url.rsplit("/", 1)[0]
    target = f"{sync_url}/apps/{app}/dynos/{dyno}"
    try:
        routes = call("GET", f"{sync_url}/routes", timeout=2)
        dynos = routes.get("apps", {}).get(app, {}).get("dynos", [])
        up = any(d.get("name") == dyno and d.get("state") == "up" for d in dynos)
        version = call("POST", target, {"state": "starting"}, timeout=2).get("version") \
            if up else None
    except (SimctlError, AttributeError, OSError):
        up, version = False, None  # sync does not answer: nothing to take out of rotation
    if up and isinstance(version, int):
        _wait_routers(state, version)
    ok = False
    try:
        yield
        ok = True
    finally:
        if up:
            try:
                call("POST", target, {"state": "up" if ok else "crashed"}, timeout=2)
            except (SimctlError, OSError):
                pass  # sync went away meanwhile: its next start reloads the dynos


def _wait_routers(state: Any, version: int) -> None:
    """Until every running router applied route table ``version`` (or APPLY_WAIT)."""
    routers = [p.health_url for p in state.processes.values()
               if p.role == "router" and p.health_url and not p.stopped]
    deadline = time.monotonic() + APPLY_WAIT
    while routers and time.monotonic() < deadline:
        behind = []
        for url in routers:
            try:
                applied = call("GET", url, timeout=0.5).get("table_version")
            except (SimctlError, AttributeError, OSError):
                continue  # a router that does not answer gets no requests to fail either
            if not isinstance(applied, int) or applied < version:
                behind.append(url)
        routers = behind
        if routers:
            time.sleep(0.02)
