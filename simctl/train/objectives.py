"""Which of a lesson's objectives are met, read from its drill's timeline
(docs/training.md, "How objectives are checked").

- ``step``: a ``command`` entry whose ``matched_step`` is the step, exit code 0;
- ``command`` / ``command_regex``: a ``command`` entry, exit code 0, whose command line
  (``simctl`` and its words, global options left out) matches the glob / regex;
- ``probe``: a ``probe`` entry with ``ok: true`` for that probe after one with
  ``ok: false`` (it *became* true); a symptom probe counts on its first ``ok: true``;
- ``ask``: an ``answer`` entry to that question with ``correct: true``.

Ticks already recorded as ``objective`` entries stand; new ones are appended with the
time of the entry that met them, so the timeline says when each was met.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from simctl.drill.recorder import normalise

Entry = dict[str, Any]


@dataclass
class Tick:
    index: int
    text: str
    met_by: str
    t: float


def command_line(argv: list[str]) -> str:
    """``simctl`` and the command's own words, as a pattern is written."""
    return " ".join(["simctl", *normalise(argv)])


def _own_command(entry: Entry) -> bool:
    """Training's and drills' own commands never meet an objective (an answer's text
    is in the argv of `train answer`)."""
    words = normalise(entry.get("argv") or [])
    return entry.get("exit_code") == 0 and words[:1] not in (["train"], ["drill"])


def answer_ok(objective: Any, text: str) -> bool:
    given = " ".join(text.split())
    if any(given.casefold() == a.strip().casefold() for a in objective.answers):
        return True
    pattern = objective.answer_regex
    return bool(pattern) and re.fullmatch(pattern, given, re.IGNORECASE) is not None


def _met(objective: Any, entries: list[Entry], symptoms: set[str]) -> tuple[str, float] | None:
    check = objective.check
    if check == "step":
        for e in entries:
            if e.get("kind") == "command" and e.get("matched_step") == objective.step \
                    and e.get("exit_code") == 0:
                return f"step {objective.step}: {command_line(e['argv'])}", e["t"]
    elif check in ("command", "command_regex"):
        for e in entries:
            if e.get("kind") != "command" or not _own_command(e):
                continue
            line = command_line(e.get("argv") or [])
            if (check == "command" and fnmatch.fnmatchcase(line, objective.command)) or (
                    check == "command_regex" and re.search(objective.command_regex, line)):
                return f"command: {line}", e["t"]
    elif check == "probe":
        text = " ".join(str(objective.probe).split())
        seen_false = text in symptoms
        for e in entries:
            if e.get("kind") != "probe" or " ".join(str(e.get("probe")).split()) != text:
                continue
            if e.get("ok") and seen_false:
                return f"probe became true: {text}", e["t"]
            seen_false = seen_false or not e.get("ok")
    elif check == "ask":
        for e in entries:
            if e.get("kind") == "answer" and e.get("question") == objective.ask \
                    and e.get("correct"):
                return f"answered: {e.get('text')}", e["t"]
    return None


def symptom_probes(scenario: Any) -> set[str]:
    return {" ".join(p.text.split()) for s in scenario.symptoms for p in s.expect}


def evaluate(scenario: Any, entries: list[Entry]) -> dict[int, Tick]:
    """Every met objective by index: recorded ticks first, then what the timeline shows."""
    ticks: dict[int, Tick] = {}
    for e in entries:
        if e.get("kind") == "objective" and isinstance(e.get("index"), int):
            ticks.setdefault(e["index"], Tick(e["index"], e.get("text", ""),
                                              e.get("met_by", ""), e["t"]))
    symptoms = symptom_probes(scenario)
    for i, objective in enumerate(scenario.objectives):
        if i in ticks or objective.check is None:
            continue
        found = _met(objective, entries, symptoms)
        if found:
            ticks[i] = Tick(i, objective.text, found[0], found[1])
    return ticks


def record_new(timeline: Any, entries: list[Entry], ticks: dict[int, Tick]) -> list[Tick]:
    """Append an ``objective`` entry for each tick the timeline does not hold yet."""
    recorded = {e.get("index") for e in entries if e.get("kind") == "objective"}
    new = sorted((tick for i, tick in ticks.items() if i not in recorded), key=lambda k: k.t)
    for tick in new:
        timeline.append("objective", t=tick.t, index=tick.index, text=tick.text,
                        met_by=tick.met_by)
    return new


def checkable(scenario: Any) -> list[int]:
    return [i for i, o in enumerate(scenario.objectives) if o.check is not None]


def open_question(scenario: Any, ticks: dict[int, Tick]) -> tuple[int, Any] | None:
    """The first question not answered right yet."""
    for i, objective in enumerate(scenario.objectives):
        if objective.check == "ask" and i not in ticks:
            return i, objective
    return None
