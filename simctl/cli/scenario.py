"""`simctl scenario list|show|lint|schema`: read-only views of the scenario files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simctl.cli import complete, render
from simctl.errors import EXIT_FAILED, EXIT_INVALID, InvalidInput
from simctl.scenario import catalog
from simctl.scenario.describe import describe, undo
from simctl.scenario.loader import LintResult, lint_scenario
from simctl.scenario.model import Scenario, format_duration, format_rate


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _lint(path: Path) -> LintResult:
    return lint_scenario(path, display=catalog.display(path))


def _paths(arguments: tuple[str, ...]) -> list[Path]:
    if arguments:
        return [catalog.resolve_scenario(a) for a in arguments]
    return catalog.scenario_files()


def _fail(results: list[LintResult]) -> None:
    for result in results:
        for issue in result.issues:
            click.echo(str(issue))
    bad = sum(1 for r in results if r.issues)
    errors = sum(len(r.issues) for r in results)
    click.echo(f"{errors} error(s) in {bad} of {len(results)} scenario file(s)", err=True)
    sys.exit(EXIT_INVALID)


def _lint_courses(paths: list[Path]) -> None:
    from simctl.train.course import lint_course

    problems = [(p, problem) for p in paths for problem in lint_course(p)]
    for path, problem in problems:
        click.echo(f"{catalog.display(path)}:{problem.line}:{problem.column}: "
                   f"{problem.message}")
    if problems:
        click.echo(f"{len(problems)} error(s) in the course file", err=True)
        sys.exit(EXIT_INVALID)


@click.group()
def scenario() -> None:
    """Scenario files: list, show, lint, and the JSON Schema for editors."""


@scenario.command("list")
@render.json_option
def list_(as_json: bool) -> None:
    """List the scenarios (scenarios/*.yaml), with whether each is valid."""
    paths = catalog.scenario_files()
    console = _console()
    if not paths and not as_json:
        console.print(Text(f"no scenarios in {catalog.display(catalog.scenarios_dir())}"))
        return
    table = render.table("id", "title", "difficulty", "tags", "runbook", "status",
                         ids=("id",))
    listed = []
    for path in paths:
        result = _lint(path)
        s = result.scenario
        listed.append({"id": s.id if s else path.stem, "file": catalog.display(path),
                       "valid": s is not None, "errors": len(result.issues),
                       "title": s.title if s else None,
                       "difficulty": s.difficulty if s else None,
                       "tags": list(s.tags) if s else [], "runbook": s.runbook if s else None,
                       "app_agnostic": s.app_agnostic if s else None})
        status = Text("ok", style="green") if s else Text(
            f"{len(result.issues)} error(s)", style="red")
        if s is None:
            table.add_row(Text(path.stem), "", "", "", "", status)
            continue
        table.add_row(Text(s.id), Text(s.title), str(s.difficulty), Text(", ".join(s.tags)),
                      Text(s.runbook), status)
    if as_json:
        render.echo_json(listed)
    else:
        console.print(render.fit_ids(table))


@scenario.command()
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO]...",
                shell_complete=complete.scenarios)
def lint(scenarios: tuple[str, ...]) -> None:
    """Validate scenario files (ids or paths; default: all), printing every error.

    Exits 2 when any file is invalid, 1 when the files are valid but a warning holds
    (a symptom that already holds in steady state).
    """
    courses = [Path(s) for s in scenarios if Path(s).name == catalog.COURSE_FILE]
    paths = _paths(tuple(s for s in scenarios if Path(s).name != catalog.COURSE_FILE)) \
        if len(courses) < len(scenarios) or not scenarios else []
    if not scenarios:
        courses = [p for p in [catalog.scenarios_dir() / catalog.COURSE_FILE] if p.is_file()]
    _lint_courses(courses)  # the training course (docs/training.md): exit 2 on a problem
    if not paths:
        if not courses:
            click.echo(f"no scenarios in {catalog.display(catalog.scenarios_dir())}")
        return
    results = [_lint(p) for p in paths]
    if any(r.issues for r in results):
        _fail(results)
    warnings = [w for r in results for w in r.warnings]
    for warning in warnings:
        click.echo(str(warning))
    click.echo(f"{len(results)} scenario file(s) valid"
               + (f", {len(warnings)} warning(s)" if warnings else ""))
    if warnings:
        sys.exit(EXIT_FAILED)


@scenario.command()
@click.argument("scenario_ref", metavar="SCENARIO", shell_complete=complete.scenarios)
@click.option("--json", "as_json", is_flag=True, help="Print the validated scenario as JSON.")
@click.option("--no-hints", is_flag=True, help="Leave the hints out (for drills).")
def show(scenario_ref: str, as_json: bool, no_hints: bool) -> None:
    """Show one scenario (an id or a path): load, timeline, checks, and what undoes what."""
    result = _lint(catalog.resolve_scenario(scenario_ref))
    if result.scenario is None:
        _fail([result])
    s = result.scenario
    assert s is not None
    if as_json:
        data = s.model_dump(mode="json", by_alias=True)
        if no_hints:
            data.pop("hints", None)
        click.echo(json.dumps(data, indent=2))
        return
    _render(s, result.path, no_hints)


def _render(s: Scenario, path: Path, no_hints: bool) -> None:
    console = _console()
    console.print(Text(f"{s.id}: {s.title}", style="bold"))
    stars = "*" * s.difficulty + "." * (5 - s.difficulty)
    meta = (f"difficulty {s.difficulty}/5 [{stars}]   timing {s.timing}   "
            f"seed {s.seed if s.seed is not None else '-'}   file {catalog.display(path)}")
    console.print(Text(meta))
    console.print(Text(f"runbook {s.runbook}   tags {', '.join(s.tags) or '-'}"))
    if s.description:
        console.print(Text(s.description.rstrip()))
    if s.objectives:
        console.print(Text("objectives:", style="bold"))
        for objective in s.objectives:
            console.print(Text(f"  - {objective}"))
    ld = s.load
    console.print(Text(f"load: http {format_rate(ld.http)} to {ld.host}{ld.path} through "
                       f"{ld.router}, logs {format_rate(ld.logs)}"))
    _probes(console, "steady state (before the faults and, by default, after recovery):",
            s.steady_state)
    table = Table("at", "for", "fault", "undone by", title="faults")
    for fault in s.timeline():
        table.add_row(format_duration(fault.at),
                      format_duration(fault.for_) if fault.for_ is not None else "-",
                      Text(describe(fault) + (f" [{fault.name}]" if fault.name else "")),
                      Text(undo(fault)))
    console.print(table)
    last = s.timeline()[-1]
    for symptom in s.symptoms:
        after = symptom.after or (last.name or "the last fault")
        how = (f", held throughout {format_duration(symptom.throughout)}"
               if symptom.throughout is not None else
               f", held while {symptom.while_} is applied" if symptom.while_ else "")
        guard = " (a guard: may hold before the faults)" if symptom.baseline_ok else ""
        _probes(console, f"symptoms within {format_duration(symptom.within)}, after {after}"
                         f"{how}{guard}:", symptom.expect)
    if s.alerts:
        console.print(Text(f"alerts: {', '.join(s.alerts)}"))
    steps = ", ".join(s.mitigation.runbook_steps) or "none"
    console.print(Text(f"mitigation: runbook steps {steps}"))
    default = " (the steady state)" if s.recovery.expect is None else ""
    _probes(console, f"recovery within {format_duration(s.recovery.within)}{default}:",
            s.recovery_expect)
    if s.abort.when:
        _probes(console, "abort when any holds:", s.abort.when)
    if s.hints and not no_hints:
        console.print(Text("hints:", style="bold"))
        for hint in s.hints:
            console.print(Text(f"  - {hint}"))


def _probes(console: Console, title: str, probes: list) -> None:
    console.print(Text(title, style="bold"))
    for probe in probes:
        console.print(Text(f"  - {probe}"))
    if not probes:
        console.print(Text("  (none)"))


@scenario.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of scenario files (for editor completion and checks)."""
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Scenario.model_json_schema(by_alias=True),
    }
    text = json.dumps(document, indent=2) + "\n"
    if output:
        try:
            Path(output).write_text(text)
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


COMMANDS = [scenario]
