"""Control rods: the operator's load-shedding switches (docs/platform.md, "Control rods")."""

from __future__ import annotations

from prometheus_client import Gauge

DENY_DRAIN_FORWARDING = "deny_drain_forwarding"  # drains keep buffering, send nothing
DENY_TAIL_SESSIONS = "deny_tail_sessions"  # new tails get 503, open ones are closed
DENY_LOGS_INGRESS = "deny_logs_ingress"  # POST /logs gets 503
RODS = (DENY_DRAIN_FORWARDING, DENY_TAIL_SESSIONS, DENY_LOGS_INGRESS)


class ControlRods:
    def __init__(self, gauge: Gauge) -> None:
        self._state = dict.fromkeys(RODS, False)
        self._gauge = gauge
        for rod in RODS:
            gauge.labels(rod).set(0)

    def __contains__(self, rod: str) -> bool:
        return rod in self._state

    def active(self, rod: str) -> bool:
        return self._state[rod]

    def set(self, rod: str, enabled: bool) -> bool:
        """Switch a rod; returns whether anything changed."""
        changed = self._state[rod] != enabled
        self._state[rod] = enabled
        self._gauge.labels(rod).set(int(enabled))
        return changed

    def snapshot(self) -> dict[str, bool]:
        return dict(self._state)

    def enabled(self) -> list[str]:
        return [rod for rod, on in self._state.items() if on]
