"""Which edge proxy a load goes through: ``edge.1``, ``edge-tls.2``, or a router's name.

``simctl traffic --router`` and a scenario's ``load.router`` / ``load.routers`` take the
same names (docs/scenarios.md, "Load"): an edge proxy by name, or a router (``router.1``,
``router-1``), which stands for that router's plain HTTP edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from simctl.backends import names
from simctl.errors import InvalidInput


def edge_for(name: str, proxies: Mapping[str, Any], state: Any = None,
             routers: Iterable[Any] | None = None) -> str:
    """The edge proxy ``name`` stands for; InvalidInput listing the edges otherwise."""
    if name in proxies and name.startswith("edge"):
        return name
    found = names.resolve(state, name, routers) if state is not None else None
    if found is not None:
        edge = next((a for a in names.aliases(found, state)
                     if a.startswith("edge.") and a in proxies), None)
        if edge is not None:
            return edge
    edges = ", ".join(sorted(p for p in proxies if p.startswith("edge")))
    raise InvalidInput(f"no edge proxy {name!r} (choose from {edges})")


def edges_for(wanted: Iterable[str], proxies: Mapping[str, Any], state: Any = None,
              routers: Iterable[Any] | None = None) -> list[str]:
    """Several names, resolved and de-duplicated in order; two names for one edge is an error
    (the load would silently be split unevenly)."""
    pool = list(routers) if routers is not None else None
    out: list[str] = []
    for name in wanted:
        edge = edge_for(name, proxies, state, pool)
        if edge in out:
            raise InvalidInput(f"{name!r} is {edge}, already named")
        out.append(edge)
    return out


def url_of(edge: str, proxies: Mapping[str, Any], path: str = "/") -> str:
    host, port = proxies[edge].listen.rsplit(":", 1)
    host = "127.0.0.1" if host in ("0.0.0.0", "", "[::]") else host
    scheme = "https" if edge.startswith("edge-tls") else "http"
    return f"{scheme}://{host}:{port}{path}"
