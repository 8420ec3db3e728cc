"""`simctl train`: a self-paced on-call course on the live stack (docs/training.md).

Each lesson is a catalogue scenario run as a guided drill (`simctl drill start --guided`):
the objectives are shown and ticked as the timeline shows them met; at the end a debrief
puts what the trainee ran beside the runbook. Progress is kept per person
(`--as NAME`, else SIMCTL_RESPONDER, else the login name).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simctl.cli import render
from simctl.cli.options import default_project
from simctl.drill import state as drill_state
from simctl.errors import InvalidInput, SimctlError
from simctl.train import lesson as lessons
from simctl.train import progress as store
from simctl.train.course import Course, load_course


class WrongAnswer(SimctlError):
    """A wrong answer: recorded, refused (exit 1, a check failed)."""


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _as_option(func: Any) -> Any:
    return click.option("--as", "who", default=None, metavar="NAME",
                        help="Whose progress (default: SIMCTL_RESPONDER, else the login "
                             "name).")(func)


def _project_option(func: Any) -> Any:
    return click.option("--project", default=default_project, show_default="simctl",
                        metavar="NAME", help="Project (stack) the lessons run on "
                                             "(env SIMCTL_PROJECT).")(func)


def _person(who: str | None) -> store.Progress:
    return store.load(store.check_person(drill_state.responder(who)))


def _lesson_running(progress: store.Progress, course: Course
                    ) -> tuple[lessons.Lesson, drill_state.Drill] | None:
    """The person's lesson whose result is not recorded yet, with its drill."""
    current = progress.current
    if current is None or current.finished:
        return None
    drill = lessons.current_drill(progress)
    if drill is None:
        progress.current = None
        progress.save()
        return None
    return course.lesson(current.lesson), drill


def _settle(progress: store.Progress, course: Course, gave_up: bool = False,
            force: bool = False) -> dict[str, Any] | None:
    """Record the result of a lesson whose drill is over (when every objective is met,
    or ``force``); the debrief's data, or None while the lesson goes on."""
    found = _lesson_running(progress, course)
    if found is None:
        return None
    lesson, drill = found
    if drill.running and drill.conductor_alive():
        return None
    if drill.running:  # its conductor is gone: `drill status` cleans up the same way
        from simctl.cli.drill import _current

        drill = _current(drill.project, drill.id)
    state = lessons.read_state(lesson, drill)
    if not (state.all_met or force or gave_up):
        return None
    passed = lessons.finish(progress, course, state, gave_up)
    from simctl.train import debrief

    report = debrief.write_report(state)
    return debrief.data(state, passed, course.pass_mark, report)


def _print_debrief(progress: store.Progress, course: Course) -> dict[str, Any]:
    from simctl.train import debrief

    current = progress.current
    assert current is not None
    drill = lessons.current_drill(progress)
    if drill is None:
        raise InvalidInput(f"the drill of lesson {current.lesson} is gone")
    state = lessons.read_state(course.lesson(current.lesson), drill, record=False)
    report = drill.folder / "report.html"
    info = debrief.data(state, current.passed, course.pass_mark,
                        report if report.is_file() else None)
    debrief.render(_console(), state, info)
    return info


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the course as JSON.")
@_as_option
@click.pass_context
def train(ctx: click.Context, as_json: bool, who: str | None) -> None:
    """The on-call course: every lesson in order, with your status, score and best time
    (docs/training.md). Subcommands start, play and end lessons."""
    if ctx.invoked_subcommand is not None:
        return
    course = load_course()
    progress = _person(who)
    rows: list[dict[str, Any]] = []
    for number, lesson in enumerate(course.lessons, 1):
        record = progress.lessons.get(lesson.id)
        status = progress.status(lesson.id)
        rows.append({"number": number, "lesson": lesson.id, "title": lesson.title,
                     "difficulty": lesson.difficulty, "tags": lesson.tags,
                     "requires": lesson.requires, "status": status,
                     "best_score": record.best_score if record else None,
                     "best_time_s": record.best_time_s if record else None,
                     "attempts": record.attempts if record else 0,
                     "objectives": len(lesson.scenario.objectives)})
    if as_json:
        render.echo_json({"person": progress.person, "pass_mark": course.pass_mark,
                          "lessons": rows})
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column, kwargs in (("#", {"justify": "right"}), ("lesson", {"no_wrap": True}),
                           ("level", {"justify": "right"}), ("tags", {"min_width": 14}),
                           ("status", {"no_wrap": True}), ("best", {"no_wrap": True}),
                           ("requires", {})):
        table.add_column(column, **kwargs)
    for row in rows:
        shown = {"new": Text("new", style="dim"), "started": Text("started", style="yellow"),
                 }.get(row["status"]) or Text(f"passed {row['best_score']}", style="green")
        table.add_row(str(row["number"]), row["lesson"], str(row["difficulty"]),
                      ", ".join(row["tags"]), shown,
                      f"{row['best_time_s']:.0f}s" if row["best_time_s"] else "-",
                      ", ".join(row["requires"]))
    console = _console()
    console.print(Text(f"On-call course for {progress.person} (pass mark "
                       f"{course.pass_mark}): `simctl train next` starts the next lesson",
                       style="bold"))
    console.print(table)


def _start(ctx: click.Context, lesson_id: str | None, who: str | None, project: str,
           timing: str | None, port_offset: int) -> None:
    from simctl.cli import drill as drill_cli

    course = load_course()
    progress = _person(who)
    _settle(progress, course, force=True)
    if _lesson_running(progress, course):
        assert progress.current is not None
        raise InvalidInput(f"lesson {progress.current.lesson} is under way: finish it, or "
                           "`simctl train giveup`")
    if lesson_id:
        chosen = course.lesson(lesson_id)
        needs = lessons.missing(chosen, progress)
        if needs:
            raise InvalidInput(f"lesson {chosen.id} needs {', '.join(needs)} passed first")
    else:
        found = lessons.next_lesson(course, progress)
        if found is None:
            click.echo(f"{progress.person} has passed every lesson of the course")
            return
        chosen = found
    # the drill's own lines (its facilitator token, the responders' commands) are not the
    # trainee's: the lesson prints its objectives instead
    with contextlib.redirect_stdout(io.StringIO()):
        ctx.invoke(drill_cli.start, scenario=chosen.id, random_=False, difficulty=None,
                   tags=(), hidden=False, conceal=False, guided=True, timing=timing,
                   delay=None, responders=(progress.person,), seed=None, max_duration="1h",
                   port_offset=port_offset, as_json=False, project=project)
    drill_id = drill_state.active_id(project)
    if drill_id is None:
        raise SimctlError(f"lesson {chosen.id}: its drill did not start")
    drill = drill_state.load(drill_state.drills_root(project) / drill_id)
    lessons.begin(progress, chosen, drill)
    console = _console()
    console.print(Text(f"lesson {chosen.id}: {chosen.title}", style="bold"))
    console.print(Text("objectives:", style="bold"))
    for i, objective in enumerate(chosen.scenario.objectives, 1):
        how = f"  (answer with `simctl train answer`: {objective.ask})" \
            if objective.check == "ask" else ""
        console.print(Text(f"  {i}. {objective.text}{how}"))
    console.print(Text(f"runbook: `simctl runbook show {Path(chosen.scenario.runbook).stem}`;"
                       " `simctl train status` shows what is met, `simctl train hint` helps"))


_START_OPTIONS = [
    click.option("--timing", type=click.Choice(["fast", "heroku"]), default=None,
                 help="Timing of the stack the lesson starts (default fast; a running "
                      "stack keeps its own)."),
    click.option("--port-offset", type=click.IntRange(0, 30000), default=0,
                 show_default=True, help="Ports of a stack the lesson starts."),
]


def _start_options(func: Any) -> Any:
    for option in reversed(_START_OPTIONS):
        func = option(func)
    return func


@train.command("start")
@click.argument("lesson", required=False)
@_start_options
@_as_option
@_project_option
@click.pass_context
def start(ctx: click.Context, lesson: str | None, timing: str | None, port_offset: int,
          who: str | None, project: str) -> None:
    """Start LESSON (default: the next one): a guided drill, its objectives shown."""
    _start(ctx, lesson, who, project, timing, port_offset)


@train.command("next")
@_start_options
@_as_option
@_project_option
@click.pass_context
def next_(ctx: click.Context, timing: str | None, port_offset: int, who: str | None,
          project: str) -> None:
    """Start the next lesson not passed yet whose prerequisites are passed."""
    _start(ctx, None, who, project, timing, port_offset)


def _status_data(state: lessons.LessonState) -> dict[str, Any]:
    scenario = state.lesson.scenario
    question = lessons.objs.open_question(scenario, state.ticks)
    return {
        "lesson": state.lesson.id, "title": state.lesson.title, "drill": state.drill.id,
        "drill_status": state.drill.status, "phase": state.drill.phase,
        "elapsed_s": state.elapsed_s, "over": False,
        "objectives": [{"index": i, "text": o.text, "check": o.check,
                        "met": i in state.ticks,
                        "met_by": state.ticks[i].met_by if i in state.ticks else None}
                       for i, o in enumerate(scenario.objectives)],
        "met": sum(1 for i in state.checkable if i in state.ticks),
        "checkable": len(state.checkable),
        "hints_used": state.hints_used,
        "hints_left": max(0, len(scenario.hints) - state.hints_used),
        "wrong_answers": state.wrong_answers, "score_so_far": state.score,
        "question": question[1].ask if question else None,
    }


@train.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_as_option
def status(as_json: bool, who: str | None) -> None:
    """Objectives ticked so far, hints left, elapsed time; after the end, the debrief."""
    course = load_course()
    progress = _person(who)
    settled = _settle(progress, course)
    found = _lesson_running(progress, course)
    if found is not None:
        lesson, drill = found
        state = lessons.read_state(lesson, drill)
        data = _status_data(state)
        if as_json:
            render.echo_json(data)
            return
        console = _console()
        console.print(Text(f"lesson {lesson.id} ({drill.id}): drill {drill.status}"
                           f"{' (' + drill.end_reason + ')' if drill.end_reason else ''}, "
                           f"{data['elapsed_s']:.0f}s elapsed", style="bold"))
        for o in data["objectives"]:
            mark = "[x]" if o["met"] else ("[ ]" if o["check"] else " - ")
            console.print(Text(f"  {mark} {o['text']}", style="green" if o["met"] else ""))
        console.print(Text(f"{data['met']}/{data['checkable']} met; hints: "
                           f"{data['hints_used']} used, {data['hints_left']} left"))
        if data["question"]:
            console.print(Text(f"question: {data['question']}  (`simctl train answer TEXT`)"))
        if not drill.running:
            console.print(Text("the drill is over: answer the open question, or "
                               "`simctl train next` to record the result and move on"))
        return
    if progress.current is None:
        if as_json:
            render.echo_json({"lesson": None, "over": True})
            return
        click.echo("no lesson under way: `simctl train next` starts one")
        return
    if as_json:
        data = settled or _debrief_data(progress, course)
        render.echo_json({**data, "over": True})
        return
    _print_debrief(progress, course)


def _debrief_data(progress: store.Progress, course: Course) -> dict[str, Any]:
    from simctl.train import debrief

    current = progress.current
    assert current is not None
    drill = lessons.current_drill(progress)
    if drill is None:
        raise InvalidInput(f"the drill of lesson {current.lesson} is gone")
    state = lessons.read_state(course.lesson(current.lesson), drill, record=False)
    report = drill.folder / "report.html"
    return debrief.data(state, current.passed, course.pass_mark,
                        report if report.is_file() else None)


def _need_running(progress: store.Progress, course: Course
                  ) -> tuple[lessons.Lesson, drill_state.Drill]:
    found = _lesson_running(progress, course)
    if found is None:
        raise InvalidInput("no lesson under way: `simctl train next` starts one")
    return found


@train.command("hint")
@_as_option
@click.pass_context
def hint(ctx: click.Context, who: str | None) -> None:
    """The lesson's next hint (each costs 10 points of the lesson's score)."""
    from simctl.cli import drill as drill_cli

    course = load_course()
    progress = _person(who)
    lesson, drill = _need_running(progress, course)
    if not drill.running:
        raise InvalidInput(f"the drill of lesson {lesson.id} is over: no more hints")
    with contextlib.redirect_stdout(io.StringIO()) as out:  # the drill's, in seconds
        ctx.invoke(drill_cli.hint, as_json=True, who=progress.person, drill_id=drill.id,
                   project=drill.project)
    given = json.loads(out.getvalue())
    total = given["index"] + 1 + given["hints_left"]
    click.echo(f"hint {given['index'] + 1}/{total} (-{lessons.HINT_COST} points): "
               f"{given['text']}")


@train.command("answer")
@click.argument("text")
@_as_option
def answer(text: str, who: str | None) -> None:
    """Answer the lesson's open question (a wrong answer costs 5 points, exit 1)."""
    course = load_course()
    progress = _person(who)
    lesson, drill = _need_running(progress, course)
    state = lessons.read_state(lesson, drill)
    correct, objective = lessons.answer(state, progress.person, text)
    if not correct:
        raise WrongAnswer(f"'{' '.join(text.split())}' is not the answer to: {objective.ask}")
    state = lessons.read_state(lesson, drill)
    met = sum(1 for i in state.checkable if i in state.ticks)
    click.echo(f"correct: {objective.text} [x] ({met}/{len(state.checkable)} met)")
    if _settle(progress, course):
        _print_debrief(progress, course)


def _end_drill(drill: drill_state.Drill, who: str) -> None:
    from simctl.cli import drill as drill_cli

    if drill.running:
        if drill.conductor_alive():
            drill_cli._request(drill, "end", who=who, reveal=False)
            drill_cli._wait_end(drill)
        else:
            drill_cli._current(drill.project, drill.id)


@train.command("giveup")
@_as_option
def giveup(who: str | None) -> None:
    """End the lesson now (faults rolled back), not passed, and show the debrief."""
    course = load_course()
    progress = _person(who)
    _, drill = _need_running(progress, course)
    _end_drill(drill, progress.person)
    _settle(progress, course, gave_up=True)
    _print_debrief(progress, course)


@train.command("reset")
@click.argument("lesson", required=False)
@click.option("--all", "all_", is_flag=True, help="Forget every lesson's progress.")
@_as_option
def reset(lesson: str | None, all_: bool, who: str | None) -> None:
    """Forget the progress of LESSON (default: the current or last one), or of all."""
    course = load_course()
    progress = _person(who)
    if lesson and all_:
        raise click.UsageError("give a LESSON or --all, not both")
    found = _lesson_running(progress, course)
    if found is not None and (all_ or lesson in (None, found[0].id)):
        _end_drill(found[1], progress.person)
    if all_:
        progress.lessons.clear()
        progress.current = None
        progress.save()
        click.echo(f"training progress of {progress.person} reset: every lesson is new")
        return
    target = lesson or (progress.current.lesson if progress.current else None)
    if target is None:
        raise InvalidInput("no lesson to reset: name one, or give --all")
    course.lesson(target)
    progress.lessons.pop(target, None)
    if progress.current and progress.current.lesson == target:
        progress.current = None
    progress.save()
    click.echo(f"lesson {target} of {progress.person} reset: new")


EXPORT_FIELDS = ("person", "lesson", "status", "attempts", "best_score", "best_time_s",
                 "last_score", "passed_at")


@train.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              metavar="FILE", help="Write to FILE (default: stdout).")
def export(fmt: str, output: str | None) -> None:
    """Everyone's progress on this machine, one row per person and lesson."""
    rows = [{"person": p.person, "lesson": lesson_id, **{
        k: getattr(record, k) for k in EXPORT_FIELDS if k not in ("person", "lesson")}}
        for p in store.everyone() for lesson_id, record in sorted(p.lessons.items())]
    if fmt == "json":
        text = json.dumps({"format": store.FORMAT, "version": store.VERSION,
                           "exported_at": round(time.time(), 3), "rows": rows}, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text)
    except OSError as exc:
        raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output} ({len(rows)} row(s))")


@train.command("lint")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def lint(file: str | None) -> None:
    """Check the course file (default scenarios/course.yaml): lesson ids, prerequisites
    (no cycles), pass mark. Exit 2 with file:line:col errors."""
    from simctl.scenario import catalog
    from simctl.train.course import course_path, lint_course

    path = Path(file) if file else course_path()
    if not path.is_file():
        raise InvalidInput(f"{path}: no such course file")
    problems = lint_course(path)
    shown = catalog.display(path)
    for p in problems:
        click.secho(f"{shown}:{p.line}:{p.column}: {p.message}", fg="red", err=True)
    if problems:
        raise InvalidInput(f"{len(problems)} error(s) in {shown}")
    click.echo(f"{shown}: valid")


COMMANDS = [train]
