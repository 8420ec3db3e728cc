"""The JSON journal of a run: what happened, when, and why it passed or failed.

One scenario::

    {"scenario": "slow-web-1", "title": ..., "seed": 3, "timing": "fast",
     "start": "2026-01-01T12:00:00.000Z", "end": ..., "duration": 9.2,
     "status": "passed|failed|aborted|error|interrupted|skipped", "reason": "",
     "time_to_symptoms": 4.5, "time_to_recovery": 1.0,
     "phases": [{"name": "preflight", "status": "ok", "start": ..., "end": ...,
                 "duration": 0.04, "output": "..."}, ...],
     "actions": [{"kind": "fault|undo|step|load|symptom|alert|abort", "name": ...}, ...],
     "symptoms": [{"probe": ..., "within": 12, "seen_at": 4.5}, ...],
     "alerts": [{"alert": "RouterRequestTimeouts", "within": 15, "fired_at": 8.1,
                 "resolved_at": 21.7}, ...],
     "residue": [], "load": {...}, "notes": []}

A ``simctl verify`` run wraps its scenarios: ``{"simctl": VERSION, "start", "end",
"status", "seed", "timing", "project", "scenarios": [...]}``. Times are ISO 8601 in UTC
(``start``/``end``) with the Unix time alongside (``start_unix``/``end_unix``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simctl import __version__
from simctl.scenario.engine import PASSED, ScenarioResult
from simctl.scenario.events import Event


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _event(event: Event) -> dict[str, Any]:
    data = event.as_dict()
    data["start_unix"] = data["start"]
    data["end_unix"] = data["end"]
    data["start"] = iso(event.start)
    data["end"] = iso(event.end)
    return data


def scenario_journal(result: ScenarioResult) -> dict[str, Any]:
    events = [e for e in result.events if e.kind != "scenario"]
    return {
        "scenario": result.scenario_id,
        "title": result.title,
        "seed": result.seed,
        "timing": result.timing,
        "runbook": result.runbook,
        "start": iso(result.start),
        "end": iso(result.end) if result.end else None,
        "start_unix": round(result.start, 6),
        "end_unix": round(result.end, 6) if result.end else None,
        "duration": round(result.duration, 3),
        "status": result.status,
        "passed": result.passed,
        "reason": result.reason,
        "time_to_symptoms": _round(result.time_to_symptoms),
        "time_to_recovery": _round(result.time_to_recovery),
        "phases": [_event(e) for e in events if e.kind == "phase"],
        "actions": [_event(e) for e in events if e.kind != "phase"],
        "symptoms": [s.as_dict() for s in result.symptoms],
        "alerts": [a.as_dict() for a in result.alerts],
        "residue": list(result.residue),
        "load": result.load,
        "notes": list(result.notes),
    }


def skipped_journal(scenario_id: str, title: str, reason: str) -> dict[str, Any]:
    """A scenario that did not run (``--fail-fast``, or an interrupted verify)."""
    return {"scenario": scenario_id, "title": title, "status": "skipped", "passed": False,
            "reason": reason, "phases": [], "actions": []}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_journal(results: Sequence[ScenarioResult | dict[str, Any]], *, start: float,
                end: float, status: str, **meta: Any) -> dict[str, Any]:
    scenarios = [r if isinstance(r, dict) else scenario_journal(r) for r in results]
    return {
        "simctl": __version__,
        "start": iso(start),
        "end": iso(end),
        "duration": round(max(0.0, end - start), 3),
        "status": status,
        **meta,
        "summary": {
            "scenarios": len(scenarios),
            "passed": sum(1 for s in scenarios if s.get("status") == PASSED),
            "failed": sum(1 for s in scenarios if s.get("status") not in (PASSED, "skipped")),
            "skipped": sum(1 for s in scenarios if s.get("status") == "skipped"),
        },
        "scenarios": scenarios,
    }


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    """Write atomically (a temporary file renamed), so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
