"""The stack's links on an embedded fault plane that restarts (docs/cli.md, `simctl restart`).

A Toxiproxy server keeps its proxies in memory: restarted, it comes back empty and every
link of the stack is cut. The local backend therefore

- saves what the server holds (proxies, enabled flags, toxics) to the state folder just
  before it stops or kills the server (`fault-plane.json`, 0600);
- when the server is started again, loads the stack's link map (stack/toxiproxy.json and
  the apps' links, as `up` does) and puts back the saved proxies and toxics, so a fault
  a scenario still owns is still there for its rollback to remove;
- reports, in `status`, a fault plane that lacks any of the stack's proxies as degraded.
"""

from __future__ import annotations

import json
from typing import Any

from simctl.backends.state import ProjectState, write_private
from simctl.errors import SimctlError
from simctl.faults.client import Proxy, ToxiproxyClient

SNAPSHOT = "fault-plane.json"


def expected_names(state: ProjectState, link_map: list[dict[str, Any]],
                   defined_dynos: set[str]) -> set[str]:
    """The proxies the running stack needs: its link map, with dyno links following
    `scale` (a dyno scaled away needs none, one scaled in needs its own)."""
    running = {str(p.labels["dyno"]) for p in state.processes.values()
               if p.role == "dyno" and p.labels.get("dyno")}
    names = {str(p["name"]) for p in link_map}
    return (names - (defined_dynos - running)) | running


def missing(client: ToxiproxyClient, expected: set[str]) -> list[str]:
    return sorted(expected - set(client.proxies()))


def forget(state: ProjectState) -> None:
    (state.folder / SNAPSHOT).unlink(missing_ok=True)


def save(state: ProjectState, client: ToxiproxyClient) -> None:
    """Keep what the server holds; when it does not answer, keep nothing (an older save
    would bring back faults healed since)."""
    try:
        proxies = client.proxies()
    except SimctlError:
        forget(state)
        return
    data = [{"name": p.name, "listen": p.listen, "upstream": p.upstream,
             "enabled": p.enabled, "toxics": [t.__dict__ for t in p.toxics]}
            for p in proxies.values()]
    write_private(state.folder / SNAPSHOT, json.dumps(data, indent=1))


def restore(state: ProjectState, client: ToxiproxyClient, link_map: list[dict[str, Any]],
            expected: set[str]) -> None:
    """Load the link map, then what was saved (consumed: a later start loads it no more)."""
    path = state.folder / SNAPSHOT
    try:
        saved = [Proxy.from_json(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        saved = []
    forget(state)
    client.populate([p for p in link_map if p["name"] in expected])
    present = client.proxies()
    failed: list[str] = []
    for proxy in saved:  # one that cannot come back (its port taken) stops none of the others
        try:
            _put_back(client, proxy, present.get(proxy.name))
        except SimctlError as exc:
            failed.append(f"{proxy.name} ({exc})")
    if failed:
        raise SimctlError("the fault plane restarted, but could not put back: "
                          + "; ".join(failed))


def _put_back(client: ToxiproxyClient, proxy: Proxy, current: Proxy | None) -> None:
    if current is None:
        current = client.create_proxy(proxy.name, proxy.upstream, proxy.listen)
    have = {t.name for t in current.toxics}
    for toxic in proxy.toxics:
        if toxic.name not in have:
            client.add_toxic(proxy.name, toxic.type, toxic.stream, toxic.toxicity,
                             toxic.attributes, name=toxic.name)
    if not proxy.enabled:
        client.disable(proxy.name)
