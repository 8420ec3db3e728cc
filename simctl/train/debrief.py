"""The debrief at the end of a lesson (docs/training.md, "The debrief"): the objectives,
what the trainee ran beside what the runbook says, the times, the incident explained
(the scenario's description and the runbook's prose), and where the drill report is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from simctl.drill.recorder import normalise
from simctl.scenario import catalog
from simctl.train.lesson import LessonState
from simctl.train.objectives import command_line


def _rel(t: float | None, origin: float) -> str:
    return "-" if t is None else f"+{t - origin:.0f}s"


def _first(entries: list[dict[str, Any]], kind: str, **match: Any) -> float | None:
    for e in entries:
        if e.get("kind") == kind and all(e.get(k) == v for k, v in match.items()):
            return float(e["t"])
    return None


def runbook_prose(path: Path) -> str:
    """The runbook's Markdown without its front matter."""
    from simctl.runbook.parser import front_matter_lines

    text = path.read_text()
    return "".join(text.splitlines(keepends=True)[front_matter_lines(text):])


def write_report(state: LessonState) -> Path | None:
    """The drill report (``simctl report``) as HTML and Markdown in the drill's folder."""
    from simctl.drill.report import load_report, write_all

    html = state.drill.folder / "report.html"
    try:
        data = load_report(state.drill.project, state.drill.id, None)
        write_all(data, html, state.drill.folder / "report.md")
    except Exception:  # a report that cannot be drawn must not lose the debrief
        return None
    return html


def steps_table(state: LessonState) -> list[dict[str, Any]]:
    """Each runbook step with its commands, and when the trainee ran it."""
    from simctl.runbook.parser import parse_runbook

    runbook = parse_runbook(catalog.runbook_path(state.lesson.scenario.runbook))
    rows = []
    for step in runbook.steps:
        if not step.id:
            continue
        ran = _first(state.entries, "command", matched_step=step.id, exit_code=0)
        rows.append({"step": step.id, "section": step.section,
                     "commands": [c.text for c in step.commands], "ran_at": ran})
    return rows


def other_commands(state: LessonState) -> list[dict[str, Any]]:
    """What the trainee ran that is no runbook step (training's own commands aside)."""
    rows = []
    for e in state.entries:
        if e.get("kind") != "command" or e.get("matched_step"):
            continue
        if normalise(e.get("argv") or [])[:1] in (["train"], ["drill"]):
            continue
        rows.append({"command": command_line(e.get("argv") or []), "t": e["t"],
                     "exit_code": e.get("exit_code")})
    return rows


def data(state: LessonState, passed: bool, pass_mark: int,
         report: Path | None) -> dict[str, Any]:
    entries = state.entries
    origin = state.drill.started_at
    ended = next((e for e in entries if e.get("kind") == "drill_ended"), None)
    return {
        "lesson": state.lesson.id, "title": state.lesson.title, "drill": state.drill.id,
        "passed": passed, "score": state.score, "pass_mark": pass_mark,
        "hints_used": state.hints_used, "wrong_answers": state.wrong_answers,
        "end_reason": ended.get("reason") if ended else state.drill.end_reason,
        "objectives": [{"index": i, "text": o.text, "check": o.check,
                        "met": i in state.ticks,
                        "met_at_s": round(state.ticks[i].t - origin, 1)
                        if i in state.ticks else None,
                        "met_by": state.ticks[i].met_by if i in state.ticks else None}
                       for i, o in enumerate(state.lesson.scenario.objectives)],
        "steps": steps_table(state), "other_commands": other_commands(state),
        "times": {"started_at": origin,
                  "first_fault_s": _secs(_first(entries, "fault_applied"), origin),
                  "first_alert_s": _secs(_first(entries, "alert", state="firing"), origin),
                  "recovered_s": _secs(_first(entries, "recovery_holding"), origin),
                  "elapsed_s": state.elapsed_s},
        "report": str(report) if report else None,
    }


def _secs(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 1)


def render(console: Console, state: LessonState, info: dict[str, Any]) -> None:
    origin = state.drill.started_at
    verdict = (Text("passed", style="bold green") if info["passed"]
               else Text("not passed", style="bold red"))
    console.rule(f"Debrief: {info['title']}")
    console.print(Text.assemble("lesson ", (info["lesson"], "bold"), ": ", verdict,
                                f", score {info['score']}/100 (pass mark {info['pass_mark']}"
                                f"; {info['hints_used']} hint(s), {info['wrong_answers']} "
                                f"wrong answer(s)), {info['times']['elapsed_s']:.0f}s"))
    table = Table(title="Objectives", title_justify="left", show_header=True)
    for column in ("", "objective", "met", "how"):
        table.add_column(column)
    for o in info["objectives"]:
        table.add_row(Text("[x]" if o["met"] else ("[ ]" if o["check"] else " - ")),
                      Text(o["text"]), f"+{o['met_at_s']:.0f}s" if o["met"] else "-",
                      Text(o["met_by"] or ""))
    console.print(table)
    steps = Table(title="The runbook beside what you ran", title_justify="left")
    for column in ("step", "section", "runbook says", "you ran it"):
        steps.add_column(column)
    for row in info["steps"]:
        steps.add_row(Text(row["step"]), Text(row["section"] or ""),
                      Text("\n".join(row["commands"])), _rel(row["ran_at"], origin))
    console.print(steps)
    if info["other_commands"]:
        console.print(Text("You also ran:", style="bold"))
        for row in info["other_commands"]:
            console.print(Text(f"  {_rel(row['t'], origin):>6}  {row['command']}"
                               + (f"  (exit {row['exit_code']})" if row["exit_code"] else "")))
    times = info["times"]
    console.print(Text("Times: ", style="bold") + Text(
        f"faults at {_s(times['first_fault_s'])}, first alert {_s(times['first_alert_s'])}, "
        f"recovery from {_s(times['recovered_s'])}, ended after {times['elapsed_s']:.0f}s"
        f" ({info['end_reason'] or 'running'})"))
    scenario = state.lesson.scenario
    console.rule("The incident explained")
    prose = runbook_prose(catalog.runbook_path(scenario.runbook))
    console.print(Group(Markdown(scenario.description or ""), Markdown(prose)))
    console.rule()
    if info["report"]:
        console.print(Text(f"Drill report: {info['report']}  (`simctl report {state.drill.id}`)"))


def _s(value: float | None) -> str:
    return "-" if value is None else f"+{value:.0f}s"
