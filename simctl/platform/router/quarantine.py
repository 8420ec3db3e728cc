"""Per-router dyno quarantine (docs/platform.md, "Routing behaviour").

A dyno that refused a connection, or did not accept one within ``timing.connect_timeout``,
is left alone by this router for ``timing.quarantine`` seconds. When that time is up one
request probes it: until the probe ends the dyno still counts as quarantined for the
others, so a dead app is not hit by every waiting request at once. A failed probe starts
a new quarantine; a good connection ends it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class Quarantine:
    def __init__(self, duration: float) -> None:
        self.duration = duration
        self._until: dict[str, float] = {}
        self._probing: set[str] = set()

    def __len__(self) -> int:
        return len(self._until)

    def blocked(self, key: str, now: float) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        return now < until or key in self._probing

    def begin(self, key: str) -> None:
        """The caller is about to connect to ``key``: if its quarantine ended, it probes."""
        if key in self._until:
            self._probing.add(key)

    def failed(self, key: str, now: float) -> None:
        self._until[key] = now + self.duration
        self._probing.discard(key)

    def succeeded(self, key: str) -> None:
        if key in self._until:
            del self._until[key]
            self._probing.discard(key)

    def abandon(self, key: str) -> None:
        """A probe that ended without a verdict (the request went away)."""
        self._probing.discard(key)

    def next_expiry(self, keys: Iterable[str]) -> float | None:
        times = [self._until[k] for k in keys if k in self._until and k not in self._probing]
        return min(times) if times else None

    def clear(self) -> int:
        count = len(self._until)
        self._until.clear()
        self._probing.clear()
        return count

    def active(self, now: float) -> list[str]:
        return sorted(k for k, until in self._until.items() if now < until or k in self._probing)

    def by_dyno(self, now: float) -> Counter[str]:
        """Quarantined dynos by name (the key is ``app/name@address``)."""
        return Counter(k.partition("/")[2].partition("@")[0] or k for k in self.active(now))
