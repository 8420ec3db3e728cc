"""Residue checks and the baseline reset that keeps scenarios independent.

*Residue* is what docs/scenarios.md says a run must never leave behind: a toxic on any
proxy, a disabled proxy, a paused service, or a service that is not running (killed by a
fault, crashed by a dyno behaviour). ``find_residue`` lists it; ``clean_residue``
removes it (restarting what is down), so the next run starts clean even after a failure.

``reset_stack`` goes further, back to the stack's baseline between scenarios: every
proxy healed (and re-created from the link map if deleted), every service running,
dynos scaled back to the stack's count with their routes re-published (addresses and
states), every dyno's behaviour normal, control rods off, drains enabled with their
control reset, maintenance off, and every router flushed (fresh snapshot, no quarantine).
Proxies deleted from the fault plane are re-created from the link map (with the running
project's port offset); existing ones are left as they are, only healed.
"""

from __future__ import annotations

from typing import Any

from simctl.backends.base import Backend
from simctl.backends.http import call
from simctl.backends.project import base_url
from simctl.faults.client import ToxiproxyClient

RODS = ("deny_drain_forwarding", "deny_tail_sessions", "deny_logs_ingress")


def client_for(backend: Backend) -> ToxiproxyClient:
    return ToxiproxyClient(backend.require_state().toxiproxy_url, timeout=5)


def find_residue(backend: Backend, client: ToxiproxyClient | None = None) -> list[str]:
    """Every toxic, disabled proxy, paused or stopped service, one line each."""
    client = client or client_for(backend)
    found = []
    for name, proxy in sorted(client.proxies().items()):
        for toxic in proxy.toxics:
            found.append(f"toxic {toxic.name} ({toxic.type}) on proxy {name}")
        if not proxy.enabled:
            found.append(f"proxy {name} is disabled")
    state = backend.state()
    paused = {p.name for p in state.processes.values() if p.paused} if state else set()
    for name in backend.paused_or_down():
        found.append(f"service {name} is {'paused' if name in paused else 'not running'}")
    return found


def clean_residue(backend: Backend, client: ToxiproxyClient | None = None) -> list[str]:
    """Remove every toxic, enable every proxy, resume or restart every service."""
    client = client or client_for(backend)
    done = []
    for proxy in client.proxies().values():
        if proxy.toxics or not proxy.enabled:
            client.reset()
            done.append("reset the fault plane (toxics removed, proxies enabled)")
            break
    state = backend.state()
    paused = {p.name for p in state.processes.values() if p.paused} if state else set()
    for name in backend.paused_or_down():
        if name in paused:
            backend.resume(name)
            done.append(f"resumed {name}")
        if name not in paused or name in backend.paused_or_down():
            backend.restart(name)
            done.append(f"restarted {name}")
    return done


def definition(backend: Backend) -> Any:
    """The stack definition as the running project was started (its own port offset, not
    the one this backend object was made with)."""
    state = backend.require_state()
    if getattr(backend, "port_offset", state.port_offset) != state.port_offset:
        from simctl.stack.definition import load

        return load(getattr(backend, "stack_dir", None), port_offset=state.port_offset)
    return backend.definition()


def _missing_proxies(client: ToxiproxyClient, backend: Backend) -> list[str]:
    """Re-create the proxies of the link map that were deleted (never touch the others)."""
    present = client.proxies()
    missing = [p for p in definition(backend).proxies if p["name"] not in present]
    if missing:
        client.populate(missing)
    return [f"re-created proxy {p['name']}" for p in missing]


def baseline_dynos(backend: Backend) -> dict[str, int]:
    """Dynos per app as the stack definition has them (e.g. {"web": 3})."""
    counts: dict[str, int] = {}
    for spec in definition(backend).by_role("dyno"):
        app = str(spec.labels.get("app", "web"))
        counts[app] = counts.get(app, 0) + 1
    return counts


def reset_stack(backend: Backend, client: ToxiproxyClient | None = None) -> list[str]:
    """Bring a running stack back to its baseline; returns what was done, one line each.

    Every part is attempted even when one fails; the first failure is raised at the end.
    """
    client = client or client_for(backend)
    done: list[str] = []
    errors: list[Exception] = []

    def attempt(what: str, func: Any, *args: Any) -> None:
        try:
            result = func(*args)
            if isinstance(result, list):
                done.extend(result)
            else:
                done.append(what)
        except Exception as exc:
            errors.append(exc)
            done.append(f"{what}: failed ({exc})")

    attempt("proxies of the link map present", _missing_proxies, client, backend)
    attempt("fault plane reset", client.reset)
    attempt("services running", clean_residue, backend, client)
    for app, count in baseline_dynos(backend).items():
        attempt(f"{app} scaled to {count} dynos, routes re-published",
                lambda a=app, n=count: backend.scale(a, n) and None)
        attempt(f"{app} maintenance off", lambda a=app: call(
            "POST", f"{backend.url_of('sync')}/apps/{a}/maintenance", {"enabled": False}))
    for proc in backend.find("dyno"):
        attempt(f"{proc.labels.get('dyno')} behaviour normal",
                lambda p=proc: call("DELETE", f"{base_url(p)}/control"))
    for proc in backend.find("drain"):
        attempt(f"drain {proc.labels.get('drain')} control reset",
                lambda p=proc: call("DELETE", f"{base_url(p)}/control"))
    logplex = backend.find("logplex")
    if logplex:
        url = base_url(logplex[0])
        for rod in RODS:
            attempt(f"control rod {rod} off",
                    lambda r=rod: call("POST", f"{url}/admin/rods/{r}", {"enabled": False}))
        attempt("drains enabled", lambda: _enable_drains(url))
    for proc in backend.find("router"):
        attempt(f"{proc.name} flushed",
                lambda p=proc: call("POST", f"{base_url(p)}/admin/flush", {}))
    if errors:
        raise errors[0]
    return done


def _enable_drains(logplex_url: str) -> None:
    drains = call("GET", f"{logplex_url}/admin/drains").get("drains", [])
    for drain in drains:
        if not drain.get("enabled", True):
            call("POST", f"{logplex_url}/admin/drains/{drain['name']}", {"enabled": True})
