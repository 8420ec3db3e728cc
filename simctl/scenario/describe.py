"""What each fault does and what undoes it, in one line each (`scenario show`, journals).

The undo column is the contract docs/scenarios.md documents for rollback and ``for``.
"""

from __future__ import annotations

from simctl.scenario.model import (
    DrainAction,
    DynoAction,
    FaultBase,
    LoadAction,
    ProcessAction,
    ProxyAction,
    RodAction,
    RouterAction,
    SyncAddress,
    SyncMaintenance,
    SyncPoison,
    SyncScale,
    SyncState,
    TailAction,
    ToxicAction,
    format_rate,
)


def describe(fault: FaultBase) -> str:
    """One line: what the fault does."""
    a = fault.action
    if isinstance(a, ToxicAction):
        attrs = " ".join(f"{k}={v}" for k, v in a.attributes.items())
        extra = f" (toxicity {a.toxicity:g})" if a.toxicity != 1.0 else ""
        named = f" as {a.name}" if a.name else ""
        return f"toxic {a.type} {a.stream} {attrs}".rstrip() + f" on {a.proxy}{named}{extra}"
    if isinstance(a, ProxyAction):
        return f"{'enable' if a.enabled else 'disable'} proxy {a.name}"
    if isinstance(a, ProcessAction):
        return f"{a.action} {a.service}"
    if isinstance(a, DynoAction):
        params = " ".join(f"{k}={v}" for k, v in a.params.items())
        return f"dyno {a.dyno} behaviour {a.behaviour} {params}".rstrip()
    if isinstance(a, SyncScale):
        return f"sync: scale {a.app} to {a.dynos} dynos"
    if isinstance(a, SyncState):
        return f"sync: {a.app} {a.dyno} state {a.state}"
    if isinstance(a, SyncMaintenance):
        return f"sync: maintenance {'on' if a.enabled else 'off'} for {a.app}"
    if isinstance(a, SyncPoison):
        return "sync: append a poison record to the stream"
    if isinstance(a, SyncAddress):
        return f"sync: {a.app} {a.dyno} address {a.address}"
    if isinstance(a, LoadAction):
        parts = [f"{k} {format_rate(v)}" for k, v in (("http", a.http), ("logs", a.logs))
                 if v is not None]
        return "load: " + ", ".join(parts)
    if isinstance(a, RodAction):
        return f"control rod {a.name} {'on' if a.enabled else 'off'}"
    if isinstance(a, DrainAction):
        return f"{'enable' if a.enabled else 'disable'} drain {a.name}"
    if isinstance(a, RouterAction):
        return f"{a.action} {a.router}"
    if isinstance(a, TailAction):
        return f"tail {a.app}'s logs, reading {a.rate} KB/s"
    return fault.kind  # pragma: no cover


def undo(fault: FaultBase) -> str:
    """One line: what rollback (or the end of ``for``) does about it."""
    a = fault.action
    if isinstance(a, ToxicAction):
        return f"remove toxic {a.toxic_name} from {a.proxy}"
    if isinstance(a, ProxyAction | DrainAction | RodAction | SyncMaintenance):
        return "restore the previous state"
    if isinstance(a, ProcessAction):
        return {"kill": f"restart {a.service}", "pause": f"resume {a.service}"}.get(
            a.action, "nothing")
    if isinstance(a, DynoAction):
        if a.behaviour in ("crash", "memory"):
            return f"behaviour normal, restart {a.dyno}"
        return "behaviour normal"
    if isinstance(a, SyncScale):
        return "restore the previous dyno list"
    if isinstance(a, SyncState):
        return "restore the previous state"
    if isinstance(a, SyncAddress):
        return "restore the previous address"
    if isinstance(a, SyncPoison):
        return "flush every router (fresh snapshot)"
    if isinstance(a, LoadAction):
        return "back to the scenario's load"
    if isinstance(a, TailAction):
        return "close the tail session"
    return "nothing"
