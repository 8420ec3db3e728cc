"""A router's copy of the route table: apps by name and by domain, at one version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simctl.platform.router import records
from simctl.platform.router.records import App, RecordError


def host_of(value: bytes) -> str:
    """Host header -> lookup key: lower case, no port, no trailing dot."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        end = text.find("]")
        text = text[: end + 1] if end > 0 else text
    elif ":" in text:
        text = text.rsplit(":", 1)[0]
    return text.rstrip(".")


class RouteTable:
    """The last good table. ``version`` is None until a snapshot was loaded."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.version: int | None = None
        self.epoch = ""
        self.apps: dict[str, App] = {}
        self.hosts: dict[str, App] = {}
        self._on_change = on_change

    @property
    def loaded(self) -> bool:
        return self.version is not None

    def lookup(self, host: str) -> App | None:
        return self.hosts.get(host)

    def load(self, snapshot: Any) -> None:
        """Replace the whole table from a ``GET /routes`` body (RecordError if malformed)."""
        if not isinstance(snapshot, dict):
            raise RecordError("snapshot must be an object")
        version = snapshot.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise RecordError("snapshot: field 'version' must be a non-negative int")
        epoch = snapshot.get("epoch", "")
        if not isinstance(epoch, str):
            raise RecordError("snapshot: field 'epoch' must be str")
        apps = records.parse_apps(snapshot.get("apps", {}), "snapshot: ")
        self.apps, self.version, self.epoch = apps, version, epoch
        self._reindex()

    def apply(self, record: Any) -> int:
        """Apply the next record (its seq must follow the version); returns the new version."""
        seq = records.check_seq(record)
        apps = dict(self.apps)
        records.apply(apps, record)
        self.apps, self.version = apps, seq
        self._reindex()
        return seq

    def _reindex(self) -> None:
        hosts: dict[str, App] = {}
        for app in self.apps.values():
            for domain in app.domains:
                hosts[domain] = app
        self.hosts = hosts
        if self._on_change is not None:
            self._on_change()

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "epoch": self.epoch,
                "apps": {name: app.to_json() for name, app in self.apps.items()}}
