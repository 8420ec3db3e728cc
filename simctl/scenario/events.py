"""What a scenario run reports as it goes: one ``Event`` per phase, fault, undo and step.

The engine never prints. Front ends (the ``verify`` progress display, the journal, the
pytest plugin) pass a *listener*, a callable that receives every event twice: once when
it begins (``status == "running"``, ``end is None``) and once when it ends (``ok``,
``failed``, ``skipped`` or ``error``). Instant events (a symptom seen) arrive once,
already finished. A listener that raises an ``Exception`` is ignored (a broken display
must not break a run); ``KeyboardInterrupt`` still goes through.

    kind       name                              when
    scenario   the scenario id                   the whole run
    phase      preflight, steady_state, faults,  each phase of docs/scenarios.md
               symptoms, mitigation, recovery,
               rollback, residue
    fault      what the fault does               a fault of the timeline is applied
    undo       what undoes it                    a ``for`` ran out, or rollback
    step       the runbook step id               a mitigation step
    symptom    the probe                         a symptom probe was first seen holding
    load       what changed                      the load started, changed or stopped
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

RUNNING = "running"
OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
ERROR = "error"
STATUSES = (OK, FAILED, SKIPPED, ERROR)

PHASES = ("preflight", "steady_state", "faults", "symptoms", "mitigation", "recovery",
          "rollback", "residue")

MAX_OUTPUT = 4000


@dataclass(frozen=True)
class Event:
    """One thing that happened. Times are Unix seconds; ``offset`` is from the run start."""

    name: str
    kind: str
    start: float
    end: float | None = None
    status: str = RUNNING
    output: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    offset: float = 0.0  # seconds from the start of the run
    seq: int = 0  # order in which events began

    @property
    def duration(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - self.start)

    @property
    def finished(self) -> bool:
        return self.end is not None

    def as_dict(self) -> dict[str, Any]:
        duration = self.duration
        return {
            "seq": self.seq,
            "kind": self.kind,
            "name": self.name,
            "start": round(self.start, 6),
            "end": None if self.end is None else round(self.end, 6),
            "offset": round(self.offset, 3),
            "duration": None if duration is None else round(duration, 3),
            "status": self.status,
            "output": self.output,
            "detail": self.detail,
        }


Listener = Callable[[Event], None]


def clip(text: str, limit: int = MAX_OUTPUT) -> str:
    """Output kept in events and journals: at most ``limit`` characters (the end kept)."""
    text = text.rstrip()
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters cut]\n" + text[-limit:]


class EventLog:
    """Records the events of one run, in the order they began, and tells the listener."""

    def __init__(self, listener: Listener | None = None, *, clock: Callable[[], float] = time.time
                 ) -> None:
        self.listener = listener
        self.clock = clock
        self.origin = clock()
        self._events: list[Event] = []

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def _notify(self, event: Event) -> None:
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:  # a display that breaks must not break the run
            pass

    def begin(self, name: str, kind: str, **detail: Any) -> Event:
        now = self.clock()
        event = Event(name, kind, now, detail=dict(detail), offset=now - self.origin,
                      seq=len(self._events))
        self._events.append(event)
        self._notify(event)
        return event

    def finish(self, event: Event, status: str, output: str = "", **detail: Any) -> Event:
        if status not in STATUSES:
            raise ValueError(f"unknown event status {status!r}")
        done = replace(event, end=self.clock(), status=status, output=clip(output),
                       detail={**event.detail, **detail})
        self._events[event.seq] = done
        self._notify(done)
        return done

    def instant(self, name: str, kind: str, status: str = OK, output: str = "",
                **detail: Any) -> Event:
        """An event that begins and ends at once (reported once, finished)."""
        now = self.clock()
        event = Event(name, kind, now, now, status, clip(output), dict(detail),
                      now - self.origin, len(self._events))
        self._events.append(event)
        self._notify(event)
        return event

    def current(self, event: Event) -> Event:
        """The latest version of an event (after ``finish``)."""
        return self._events[event.seq]

    def close_open(self, status: str = ERROR, output: str = "") -> None:
        """Finish whatever is still running (an interrupted run)."""
        for event in list(self._events):
            if event.end is None:
                self.finish(event, status, output)
