"""The training course: which lessons, in which order, what each needs first, and the pass
mark (docs/training.md, "The course file").

A lesson is a catalogue scenario. ``scenarios/course.yaml`` may set::

    pass_mark: 70                 # 0-100, the score a lesson needs to count as passed
    lessons:                      # these first, in this order
      - slow-dyno
      - id: app-crashed
        requires: [slow-dyno]     # passed before this lesson starts

Catalogue scenarios the file does not list follow, by difficulty, then tags, then id.
Without the file every lesson is in that order and the pass mark is 70.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simctl.errors import InvalidInput, SimctlError
from simctl.scenario import catalog
from simctl.scenario.errors import did_you_mean

DEFAULT_PASS_MARK = 70


@dataclass
class Lesson:
    id: str
    title: str
    difficulty: int
    tags: list[str]
    scenario: Any
    requires: list[str] = field(default_factory=list)


@dataclass
class Course:
    lessons: list[Lesson]
    pass_mark: int = DEFAULT_PASS_MARK
    path: Path | None = None

    def lesson(self, lesson_id: str) -> Lesson:
        for lesson in self.lessons:
            if lesson.id == lesson_id:
                return lesson
        hint = did_you_mean(lesson_id, [x.id for x in self.lessons], listing=False)
        raise InvalidInput(f"no lesson '{lesson_id}' in the course{hint}")

    def ids(self) -> list[str]:
        return [x.id for x in self.lessons]


@dataclass
class CourseProblem:
    line: int
    column: int
    message: str


def course_path() -> Path:
    return catalog.scenarios_dir() / catalog.COURSE_FILE


def _catalogue() -> dict[str, Any]:
    from simctl.scenario.loader import load_scenario

    found: dict[str, Any] = {}
    for path in catalog.scenario_files():
        try:
            scenario = load_scenario(path)
        except SimctlError:
            continue  # `simctl scenario lint` reports it; the course skips it
        found[scenario.id] = scenario
    return found


def _entries(raw: Any) -> list[tuple[int, Any, list[Any]]]:
    """(index, id, requires) of each item of ``lessons``."""
    items = raw.get("lessons", []) if isinstance(raw, dict) else []
    out = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            requires = item.get("requires", [])
            out.append((i, item.get("id"), requires if isinstance(requires, list) else []))
        else:
            out.append((i, item, []))
    return out


def lint_course(path: Path, known: list[str] | None = None) -> list[CourseProblem]:
    """Every problem of a course file, with its line and column."""
    from simctl.scenario.yaml_positions import YamlSyntaxError, load_with_positions

    try:
        raw, positions = load_with_positions(path.read_text())
    except OSError as exc:
        return [CourseProblem(1, 1, f"cannot read: {exc.strerror or exc}")]
    except YamlSyntaxError as exc:
        return [CourseProblem(exc.pos.line, exc.pos.col, exc.message)]
    known = list(_catalogue()) if known is None else known
    problems: list[CourseProblem] = []

    def add(where: tuple[Any, ...], message: str) -> None:
        pos = positions.nearest(where)
        problems.append(CourseProblem(pos.line, pos.col, message))

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        add((), "a course file is a mapping with 'pass_mark' and 'lessons'")
        return problems
    for key in raw:
        if key not in ("pass_mark", "lessons"):
            add((key,), f"unknown key '{key}'{did_you_mean(str(key), ['pass_mark', 'lessons'])}")
    mark = raw.get("pass_mark", DEFAULT_PASS_MARK)
    if isinstance(mark, bool) or not isinstance(mark, int) or not 0 <= mark <= 100:
        add(("pass_mark",), f"pass_mark must be a whole number from 0 to 100, not {mark!r}")
    if "lessons" in raw and not isinstance(raw["lessons"], list):
        add(("lessons",), "lessons must be a list of lesson ids")
    seen: set[str] = set()
    graph: dict[str, list[str]] = {}
    for i, lesson_id, requires in _entries(raw):
        if not isinstance(lesson_id, str):
            add(("lessons", i), "a lesson is a scenario id, or a mapping with 'id' and "
                                "'requires'")
            continue
        item = raw["lessons"][i]
        if isinstance(item, dict):
            if "requires" in item and not isinstance(item["requires"], list):
                add(("lessons", i, "requires"), "requires must be a list of lesson ids")
            for key in item:
                if key not in ("id", "requires"):
                    add(("lessons", i, key), f"unknown key '{key}' (a lesson has 'id' and "
                                             "'requires')")
        where = ("lessons", i, "id") if isinstance(item, dict) else ("lessons", i)
        if lesson_id not in known:
            add(where, f"unknown lesson '{lesson_id}'{did_you_mean(lesson_id, known)}")
        if lesson_id in seen:
            add(where, f"lesson '{lesson_id}' is listed twice")
        seen.add(lesson_id)
        graph[lesson_id] = []
        for j, required in enumerate(requires):
            if not isinstance(required, str) or required not in known:
                add(("lessons", i, "requires", j), f"unknown lesson '{required}'"
                    f"{did_you_mean(str(required), known)}")
                continue
            if required == lesson_id:
                add(("lessons", i, "requires", j), f"lesson '{lesson_id}' requires itself")
                continue
            graph[lesson_id].append(required)
    cycle = _cycle(graph)
    if cycle:
        first = next(i for i, lesson_id, _ in _entries(raw) if lesson_id == cycle[0])
        add(("lessons", first), "prerequisites form a cycle: " + " -> ".join(cycle))
    return problems


def _cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle of the prerequisite graph (its lessons, the first repeated), or []."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if state.get(nxt) is None:
                found = visit(nxt, path + [node])
                if found:
                    return found
        state[node] = 2
        return []

    for node in graph:
        if state.get(node) is None:
            found = visit(node, [])
            if found:
                return found
    return []


def load_course(path: Path | None = None) -> Course:
    """The course: the file's lessons first, then the rest of the catalogue. A file with
    problems is refused (exit 2) with the first one as ``file:line:col``."""
    path = path or course_path()
    every = _catalogue()
    raw: Any = {}
    if path.is_file():
        problems = lint_course(path, list(every))
        if problems:
            p = problems[0]
            more = f" (and {len(problems) - 1} more: `simctl train lint`)" \
                if len(problems) > 1 else ""
            raise InvalidInput(f"{catalog.display(path)}:{p.line}:{p.column}: {p.message}{more}")
        import yaml

        raw = yaml.safe_load(path.read_text()) or {}
    listed = [(lesson_id, list(requires)) for _, lesson_id, requires in _entries(raw)]
    rest = sorted((s for s in every.values() if s.id not in dict(listed)),
                  key=lambda s: (s.difficulty, sorted(s.tags), s.id))
    lessons = [Lesson(i, every[i].title, every[i].difficulty, list(every[i].tags), every[i],
                      requires) for i, requires in listed]
    lessons += [Lesson(s.id, s.title, s.difficulty, list(s.tags), s) for s in rest]
    return Course(lessons, int(raw.get("pass_mark", DEFAULT_PASS_MARK)),
                  path if path.is_file() else None)
