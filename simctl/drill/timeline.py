"""The drill's timeline: append-only JSON lines, one fsync per line (docs/drills.md).

Several processes append to the same file (the conductor, every simctl command run
during the drill): each entry is one ``os.write`` of a whole line on an ``O_APPEND``
descriptor, so lines never interleave, and a crash loses nothing already written.

    Timeline(path).append("note", who="ana", text="looking at web.1")
    entries = read_timeline(path)
    shown = responder_view(entries, running=True, hidden=True)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from simctl.backends.state import open_private

# Kinds that a hidden drill keeps out of responder-facing output while it runs.
SECRET_KINDS = ("fault_applied", "fault_rolled_back")


class Timeline:
    def __init__(self, path: str | Path, hidden: bool = False) -> None:
        self.path = Path(path)
        self.hidden = hidden  # the drill's: fault entries of a hidden drill are hidden

    def append(self, kind: str, *, hidden: bool | None = None, t: float | None = None,
               **fields: Any) -> dict[str, Any]:
        if hidden is None:
            hidden = self.hidden and kind in SECRET_KINDS
        entry = {"t": round(time.time() if t is None else t, 3), "kind": kind,
                 "hidden": bool(hidden), **fields}
        line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry


def read_timeline(path: str | Path) -> list[dict[str, Any]]:
    """Every entry, oldest first; a torn last line (a crash mid-write) is skipped."""
    entries = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def responder_view(entries: list[dict[str, Any]], running: bool = True,
                   hidden: bool = True) -> list[dict[str, Any]]:
    """What responders may see: ``hidden: true`` entries are dropped while a hidden drill
    runs (once it is over, or revealed, everything shows). A command's runbook and matched
    step are dropped too: they name the hidden scenario's runbook."""
    if not (running and hidden):
        return list(entries)
    return [_without(e, SECRET_COMMAND_FIELDS) if e.get("kind") == "command" else e
            for e in entries if not e.get("hidden")]


SECRET_COMMAND_FIELDS = ("runbook", "matched_step")


def _without(entry: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in fields}
