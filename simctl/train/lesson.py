"""A lesson under way: its drill, its objectives ticked from the timeline, its score, and
the end of it (docs/training.md).

A lesson is a guided drill (``simctl drill start --guided``): nothing hidden, the
objectives shown. Training adds two kinds of timeline entries: ``answer`` (who,
question, text, correct) and ``objective`` (index, text, met_by).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from simctl.drill import state as drill_state
from simctl.drill.timeline import Timeline, read_timeline
from simctl.errors import InvalidInput
from simctl.train import objectives as objs
from simctl.train.course import Course, Lesson
from simctl.train.progress import PASSED, STARTED, Current, LessonRecord, Progress

HINT_COST = 10  # score points per hint (docs/training.md, "Score")
WRONG_ANSWER_COST = 5


@dataclass
class LessonState:
    lesson: Lesson
    drill: drill_state.Drill
    entries: list[dict[str, Any]]
    ticks: dict[int, objs.Tick]
    hints_used: int
    wrong_answers: int
    new_ticks: list[objs.Tick] = field(default_factory=list)

    @property
    def checkable(self) -> list[int]:
        return objs.checkable(self.lesson.scenario)

    @property
    def all_met(self) -> bool:
        return all(i in self.ticks for i in self.checkable)

    @property
    def score(self) -> int:
        total = len(self.checkable)
        met = sum(1 for i in self.checkable if i in self.ticks)
        base = round(100 * met / total) if total else 100
        return max(0, min(100, base - HINT_COST * self.hints_used
                          - WRONG_ANSWER_COST * self.wrong_answers))

    @property
    def elapsed_s(self) -> float:
        return round((self.drill.ended_at or time.time()) - self.drill.started_at, 1)


def read_state(lesson: Lesson, drill: drill_state.Drill, record: bool = True) -> LessonState:
    """The lesson as its timeline shows it; newly met objectives are appended to it."""
    entries = read_timeline(drill.timeline_path)
    ticks = objs.evaluate(lesson.scenario, entries)
    new: list[objs.Tick] = []
    if record:
        new = objs.record_new(Timeline(drill.timeline_path), entries, ticks)
        if new:
            entries = read_timeline(drill.timeline_path)
    hints = sum(1 for e in entries if e.get("kind") == "hint")
    wrong = sum(1 for e in entries if e.get("kind") == "answer" and not e.get("correct"))
    return LessonState(lesson, drill, entries, ticks, hints, wrong, new)


def current_drill(progress: Progress) -> drill_state.Drill | None:
    current = progress.current
    if current is None:
        return None
    try:
        return drill_state.load(drill_state.drills_root(current.project) / current.drill)
    except InvalidInput:
        return None


def begin(progress: Progress, lesson: Lesson, drill: drill_state.Drill) -> None:
    record = progress.lessons.get(lesson.id) or LessonRecord()
    record.attempts += 1
    record.last_drill = drill.id
    if record.status != PASSED:
        record.status = STARTED
    progress.lessons[lesson.id] = record
    progress.current = Current(lesson.id, drill.id, drill.project, drill.started_at)
    progress.save()


def finish(progress: Progress, course: Course, state: LessonState, gave_up: bool) -> bool:
    """Record the lesson's result once (best score, best time); True when it passed."""
    record = progress.lessons.get(state.lesson.id) or LessonRecord()
    passed = state.all_met and state.score >= course.pass_mark and not gave_up
    record.last_score = state.score
    record.last_drill = state.drill.id
    if passed:
        record.status = PASSED
        record.passed_at = record.passed_at or time.time()
        if record.best_score is None or state.score > record.best_score:
            record.best_score = state.score
        if record.best_time_s is None or state.elapsed_s < record.best_time_s:
            record.best_time_s = state.elapsed_s
    progress.lessons[state.lesson.id] = record
    if progress.current is not None:
        progress.current.finished = True
        progress.current.passed = passed
    progress.save()
    return passed


def answer(state: LessonState, who: str, text: str) -> tuple[bool, Any]:
    """Check ``text`` against the first open question; record it either way."""
    found = objs.open_question(state.lesson.scenario, state.ticks)
    if found is None:
        raise InvalidInput(f"lesson {state.lesson.id}: no question is open")
    if not text.strip() or len(text) > 200:
        raise InvalidInput("an answer is 1-200 characters")
    _, objective = found
    correct = objs.answer_ok(objective, text)
    Timeline(state.drill.timeline_path).append(
        "answer", who=who, question=objective.ask, text=" ".join(text.split()),
        correct=correct)
    return correct, objective


def next_lesson(course: Course, progress: Progress) -> Lesson | None:
    """The first lesson not passed yet whose prerequisites are passed."""
    for lesson in course.lessons:
        if progress.status(lesson.id) != PASSED and not missing(lesson, progress):
            return lesson
    return None


def missing(lesson: Lesson, progress: Progress) -> list[str]:
    return [r for r in lesson.requires if progress.status(r) != PASSED]
