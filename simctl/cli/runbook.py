"""`simctl runbook list|show|check|run`: read, check and execute Markdown runbooks."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from simctl.cli import render
from simctl.errors import EXIT_FAILED, EXIT_INVALID, InvalidInput
from simctl.monitor.rules import default_rules_path
from simctl.runbook.check import CheckContext, check_alert_runbooks, check_runbook
from simctl.runbook.model import Runbook, Step
from simctl.runbook.parser import front_matter_lines, parse_runbook
from simctl.runbook.shell_guard import allow_shell_callback
from simctl.runbook.steps import DEFAULT_TIMEOUT, StepResult, run_step
from simctl.scenario import catalog


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


@click.group()
def runbook() -> None:
    """Markdown runbooks: list, show, check, and run a step."""


@runbook.command("list")
@render.json_option
def list_(as_json: bool) -> None:
    """List the runbooks (runbooks/*.md) with their alerts, scenarios and steps."""
    paths = catalog.runbook_files()
    console = _console()
    if not paths and not as_json:
        console.print(Text(f"no runbooks in {catalog.display(catalog.runbooks_dir())}"))
        return
    table = render.table("id", "title", "alerts", "scenarios", "steps", "file", ids=("id",))
    listed = []
    secret = _scenarios_hidden()
    for path in paths:
        book = parse_runbook(path)
        front = book.front
        scenarios = ["(hidden during the drill)"] if secret else list(front.scenarios) if front \
            else []
        runnable = sum(1 for s in book.steps if s.executable)
        listed.append({"id": book.id, "file": catalog.display(path), "title": book.title or None,
                       "alerts": list(front.alerts) if front else [],
                       "scenarios": scenarios,
                       "steps": [{"id": s.id, "section": s.section, "runs": _runs(s)}
                                 for s in book.steps]})
        table.add_row(
            Text(book.id), Text(book.title or "(no valid front matter)"),
            Text(", ".join(front.alerts) if front else ""),
            Text(", ".join(scenarios)),
            f"{len(book.steps)} ({runnable} simctl-only)",
            Text(catalog.display(path)),
        )
    if as_json:
        render.echo_json(listed)
    else:
        console.print(render.fit_ids(table))


@runbook.command()
@click.argument("runbook_ref", metavar="RUNBOOK")
def show(runbook_ref: str) -> None:
    """Show a runbook (an id or a path): its front matter, its text rendered, and a table
    of its steps and how each runs."""
    path = catalog.resolve_runbook(runbook_ref)
    book = parse_runbook(path)
    if book.front_line is None:
        raise InvalidInput(f"{catalog.display(path)} is not a runbook: it has no front matter "
                           "('---' block with id, title, alerts, scenarios; see "
                           "docs/scenarios.md#runbooks)")
    console = _console()
    console.print(Text(f"{book.id}: {book.title}", style="bold"))
    if book.front is not None:
        front = book.front
        scenarios = "(hidden during the drill)" if _scenarios_hidden() \
            else ", ".join(front.scenarios) or "-"
        console.print(Text(f"alerts: {', '.join(front.alerts) or '-'}   scenarios: "
                           f"{scenarios}   owner: {front.owner or '-'}"))
    else:
        console.print(Text("no valid front matter (see `simctl runbook check`)"))
    console.print(Markdown(_prose(path, book), code_theme="ansi_dark"))
    console.print()
    table = render.table("step", "section", "line", "runs", "commands", ids=("step",))
    for step in book.steps:
        runs = _runs(step)
        commands = "\n".join(c.text for c in step.commands) or "-"
        table.add_row(Text(step.id or ""), Text(step.section or "-"), str(step.line), runs,
                      Text(commands))
    console.print(render.fit_ids(table))


def _scenarios_hidden() -> bool:
    """A hidden drill runs: a runbook's list of scenarios would name the one injected."""
    from simctl.cli.options import default_project
    from simctl.drill.conceal import hides_scenarios

    return hides_scenarios(default_project())


def _prose(path: Path, book: Runbook) -> str:
    """The Markdown after the front matter, each step's block preceded by a line naming it
    (rendered code blocks do not show their ids)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for step in sorted(book.steps, key=lambda s: s.line, reverse=True):
        fence = lines[step.line - 1]
        indent = fence[: len(fence) - len(fence.lstrip())]
        lines.insert(step.line - 1, f"\n{indent}*step* `{step.id}` ({_runs(step)}):\n\n")
    return "".join(lines[front_matter_lines(text):])


def _runs(step: Step) -> str:
    """How a step runs, for people: never "simctl" for one that simctl refuses to run."""
    if step.refused_commands:
        return "refused (RB013)"
    return "simctl" if step.executable else "needs --allow-shell"


@runbook.command()
@click.argument("runbooks", nargs=-1, metavar="[RUNBOOK]...")
def check(runbooks: tuple[str, ...]) -> None:
    """Check runbooks (ids or paths; default: all, and the runbooks the alert rules
    link): front matter, sections, steps, simctl commands, referenced scenarios and
    alerts. Exits 2 on any error; warnings
    (RB009) are printed but do not fail."""
    paths = [catalog.resolve_runbook(r) for r in runbooks] or catalog.runbook_files()
    if not paths:
        click.echo(f"no runbooks in {catalog.display(catalog.runbooks_dir())}")
        return
    context = CheckContext.discover()
    findings = [f for p in paths for f in check_runbook(p, context, catalog.display(p))]
    if not runbooks:  # the whole catalogue: also the runbooks the alert rules link (RB015)
        rules = default_rules_path()
        findings += check_alert_runbooks(context, rules, catalog.display(rules))
    for finding in findings:
        click.echo(str(finding))
    errors = [f for f in findings if f.severity == "error"]
    warnings = len(findings) - len(errors)
    summary = (f"{len(paths)} runbook(s) checked: {len(errors)} error(s), "
               f"{warnings} warning(s)")
    if errors:
        click.echo(summary, err=True)
        sys.exit(EXIT_INVALID)
    click.echo(summary)


@runbook.command()
@click.argument("runbook_ref", metavar="RUNBOOK")
@click.option("--step", "steps", multiple=True, metavar="ID",
              help="The step to run (repeatable: run in order, stop at the first failure). "
                   "Without it, walk every step and ask before running each.")
@click.option("--allow-shell", is_flag=True, callback=allow_shell_callback,
              help="Also run steps with non-simctl commands (through /bin/sh -c).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds each command may take.")
def run(runbook_ref: str, steps: tuple[str, ...], allow_shell: bool, timeout: float) -> None:
    """Run runbook steps. simctl commands run without a shell; exits 1 when a step fails."""
    book = parse_runbook(catalog.resolve_runbook(runbook_ref))
    console = _console()
    if not steps:
        _walk(console, book, allow_shell, timeout)
        return
    for step_id in steps:
        result = run_step(book, step_id, allow_shell=allow_shell, timeout=timeout)
        _report(console, result)
        if not result.ok:
            sys.exit(EXIT_FAILED)


def _walk(console: Console, book: Runbook, allow_shell: bool, timeout: float) -> None:
    """Every step in file order: show it, and run it if the answer is yes (the shell rule
    holds: a step it refuses, or one needing --allow-shell without it, is only shown)."""
    if not book.steps:
        raise InvalidInput(f"{catalog.display(book.path)}: no steps (fenced blocks with an id)")
    ran = skipped = 0
    for number, step in enumerate(book.steps, 1):
        console.rule(Text(f"{number}/{len(book.steps)} step {step.id} "
                          f"({step.section or 'no section'}, line {step.line})"))
        for command in step.commands:
            console.print(Text(f"  $ {command.text}"))
        why_not = None
        if step.refused_commands:
            why_not = f"refused: {step.refused_commands[0].refused} (RB013)"
        elif not step.executable and not allow_shell:
            why_not = "needs --allow-shell"
        if why_not or not step.commands:
            console.print(Text(f"not run: {why_not or 'no command'}", style="yellow"))
            skipped += 1
            continue
        try:
            answer = click.prompt("run it? y(es), n(o: skip), q(uit)",
                                  type=click.Choice(["y", "n", "q"]), default="n",
                                  show_choices=False)
        except click.Abort:  # end of input: nothing more is asked
            answer = "q"
            console.print()
        if answer == "q":
            break
        if answer == "n":
            skipped += 1
            continue
        result = run_step(book, step.id or "", allow_shell=allow_shell, timeout=timeout)
        _report(console, result)
        ran += 1
        if not result.ok:
            sys.exit(EXIT_FAILED)
    console.print(Text(f"{ran} step(s) run, {skipped} skipped, "
                       f"{len(book.steps) - ran - skipped} not reached"))


def _report(console: Console, result: StepResult) -> None:
    console.print(Text(f"step {result.step_id} ({result.section or 'no section'})",
                       style="bold"))
    for command in result.commands:
        console.print(Text(f"$ {command.text}"))
        if command.stdout:
            console.print(Text(command.stdout.rstrip("\n")))
        if command.stderr:
            console.print(Text(command.stderr.rstrip("\n"), style="dim"))
        if command.timed_out:
            console.print(Text(f"timed out after {command.duration:.1f}s", style="red"))
        elif not command.ok:
            console.print(Text(f"exit {command.returncode} (line {command.line})",
                               style="red"))
    if result.ok:
        console.print(Text(f"step {result.step_id}: ok ({len(result.commands)} command(s), "
                           f"{result.duration:.1f}s)", style="green"))
    else:
        skipped = f", {len(result.not_run)} command(s) not run" if result.not_run else ""
        console.print(Text(f"step {result.step_id}: failed{skipped}", style="red"))


COMMANDS = [runbook]
