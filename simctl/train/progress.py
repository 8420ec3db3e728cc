"""Each person's progress through the course, one file per person (docs/training.md,
"Progress").

``$XDG_STATE_HOME/simctl/training/<person>.json`` (else ``~/.local/state/simctl/...``;
SIMCTL_STATE_DIR moves the whole state folder), 0600 in a 0700 folder, written atomically.
The format is versioned: a file from an older simctl is upgraded when read, one from a
newer simctl is refused rather than overwritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simctl.backends.state import private_folder, state_root, write_private
from simctl.errors import InvalidInput

FORMAT = "simctl-training"
VERSION = 1
_PERSON = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,63}")

NEW, STARTED, PASSED = "new", "started", "passed"


def training_dir() -> Path:
    return state_root() / "training"


def check_person(name: str) -> str:
    if not _PERSON.fullmatch(name or ""):
        raise InvalidInput(f"invalid person name {name!r}: use 1-64 letters, digits, '.', "
                           "'_', '@' or '-' (not starting with '.' or '-')")
    return name


@dataclass
class LessonRecord:
    status: str = STARTED  # started | passed (a lesson without a record is new)
    attempts: int = 0
    best_score: int | None = None
    best_time_s: float | None = None
    last_score: int | None = None
    last_drill: str | None = None
    passed_at: float | None = None


@dataclass
class Current:
    """The lesson under way: its drill, and the project (stack) it runs on."""

    lesson: str
    drill: str
    project: str
    started_at: float
    finished: bool = False  # its result is recorded; `train status` shows the debrief
    passed: bool = False


@dataclass
class Progress:
    person: str
    lessons: dict[str, LessonRecord] = field(default_factory=dict)
    current: Current | None = None

    @property
    def path(self) -> Path:
        return training_dir() / f"{self.person}.json"

    def status(self, lesson_id: str) -> str:
        record = self.lessons.get(lesson_id)
        return record.status if record else NEW

    def save(self) -> None:
        private_folder(training_dir())
        data = {"format": FORMAT, "version": VERSION, "person": self.person,
                "lessons": {k: asdict(v) for k, v in self.lessons.items()},
                "current": asdict(self.current) if self.current else None}
        write_private(self.path, json.dumps(data, indent=2) + "\n")


def _known(cls: Any, raw: Any) -> Any:
    """A dataclass from a dict, ignoring keys this version does not know."""
    raw = raw if isinstance(raw, dict) else {}
    return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file to the current format (version 0: no version, a list of
    passed lesson ids under ``passed``)."""
    if "version" not in raw:
        lessons = {lesson: {"status": PASSED, "attempts": 1}
                   for lesson in raw.get("passed", []) if isinstance(lesson, str)}
        raw = {"format": FORMAT, "version": 1, "person": raw.get("person"),
               "lessons": lessons, "current": None}
    return raw


def load(person: str) -> Progress:
    check_person(person)
    path = training_dir() / f"{person}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Progress(person)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: unreadable training progress ({exc})") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: not a training progress file")
    version = raw.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise InvalidInput(f"{path}: format version {version} is newer than this simctl "
                           f"reads ({VERSION}); upgrade simctl")
    raw = upgrade(raw)
    lessons = {k: _known(LessonRecord, v) for k, v in (raw.get("lessons") or {}).items()}
    current = _known(Current, raw["current"]) if raw.get("current") else None
    return Progress(person, lessons, current)


def everyone() -> list[Progress]:
    folder = training_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append(load(path.stem))
        except InvalidInput:
            continue
    return found
