"""``simctl runbook check``: rules with stable ids, each finding printed ``file:line: RBnnn ...``.

    RB001  the front matter is missing
    RB002  the front matter is invalid (YAML, unknown or missing keys, wrong types)
    RB003  a required section (Symptoms, Diagnose, Mitigate, Verify) is missing
    RB004  two steps have the same id
    RB005  a code block in Mitigate has no id
    RB006  a simctl command does not parse (unknown command or option, bad argument)
    RB007  a scenario named in the front matter does not exist (scenarios/ID.yaml)
    RB008  an alert of the front matter is named by no scenario
    RB009  warning: a step runs non-simctl commands, so it needs --allow-shell
    RB010  a step id is malformed (or a block has two)
    RB011  a step has no command
    RB012  the front matter id does not match the file name
    RB013  a step runs a simctl command that could grant itself the shell or runs until
           stopped (``runbook run``, ``verify``, ``up``, ``toxiproxy serve``, ``web``,
           ``dashboard``, or ``--allow-shell``): simctl never runs it
    RB014  an alert of the front matter has no rule in stack/alerts.yaml (docs/alerts.md)
    RB015  the runbook's id, or an alert rule's ``annotations.runbook``, is a scenario's id:
           alerts link their runbook, so the page would name a hidden drill's scenario
           (docs/drills.md); name runbooks after what on-call sees

Warnings do not make the check fail; every other rule does.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from simctl.errors import InvalidInput
from simctl.monitor.rules import default_rules_path, load_rules, missing_rule
from simctl.runbook.model import REQUIRED_SECTIONS, Command, Runbook
from simctl.runbook.parser import parse_runbook
from simctl.scenario import catalog
from simctl.scenario.errors import did_you_mean

RULES = {
    "RB001": "front matter missing",
    "RB002": "front matter invalid",
    "RB003": "required section missing",
    "RB004": "duplicate step id",
    "RB005": "Mitigate code block without an id",
    "RB006": "simctl command does not parse",
    "RB007": "unknown scenario",
    "RB008": "alert named by no scenario",
    "RB009": "step needs --allow-shell",
    "RB010": "malformed step id",
    "RB011": "step without commands",
    "RB012": "id does not match the file name",
    "RB013": "step could grant itself the shell",
    "RB014": "alert without a rule",
    "RB015": "runbook id names a scenario",
}
GIVES_AWAY = "names a scenario: it would give away a hidden drill"
WARNINGS = {"RB009"}


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str

    @property
    def severity(self) -> str:
        return "warning" if self.rule in WARNINGS else "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {self.rule} {prefix}{self.message}"


@dataclass
class CheckContext:
    """What every runbook is checked against: the scenarios and the simctl command tree."""

    scenarios: dict[str, list[str]] = field(default_factory=dict)  # id -> its alerts
    cli: click.Group | None = None

    @classmethod
    def discover(cls, scenarios_dir: Path | None = None) -> CheckContext:
        from simctl.cli import main

        found: dict[str, list[str]] = {}
        for path in catalog.scenario_files(scenarios_dir):
            found[path.stem] = _alerts_of(path)
        return cls(found, main)

    @property
    def alerts(self) -> set[str]:
        return {alert for alerts in self.scenarios.values() for alert in alerts}


def _alerts_of(path: Path) -> list[str]:
    """A scenario's alerts, read leniently (its own errors are `scenario lint`'s business)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    alerts = data.get("alerts") if isinstance(data, dict) else None
    return [a for a in alerts if isinstance(a, str)] if isinstance(alerts, list) else []


# click >= 8.2 names these differently from 8.1; keep both working.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _pending_args(ctx: click.Context) -> list[str]:
    protected = getattr(ctx, "_protected_args", None)
    if protected is None:  # click < 8.2
        protected = ctx.protected_args
    return [*protected, *ctx.args]


def parse_command(cli: click.Group, argv: Sequence[str]) -> str | None:
    """Why ``argv`` (without the leading "simctl") is not a valid command, or None.

    Parses with the real command tree (``make_context`` on each level, resilient parsing
    off), so unknown commands and options, missing arguments and bad values are caught;
    nothing is invoked. --help and --version count as valid.
    """
    args = list(argv)
    command: click.Command = cli
    parent: click.Context | None = None
    name = "simctl"
    sink = io.StringIO()
    contexts: list[click.Context] = []
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            while True:
                ctx = command.make_context(name, args, parent=parent,
                                           resilient_parsing=False)
                contexts.append(ctx)
                if not isinstance(command, click.Group):
                    return None
                rest = _pending_args(ctx)
                if not rest:
                    if command.invoke_without_command:
                        return None
                    return f"missing command after '{ctx.command_path}'"
                sub_name, sub, rest = command.resolve_command(ctx, rest)
                if sub is None or sub_name is None:  # pragma: no cover - resolve raises
                    return f"no such command '{rest[0]}'"
                command, parent, name, args = sub, ctx, sub_name, rest
    except click.exceptions.Exit:
        return None  # --help, --version
    except _NO_ARGS_IS_HELP as exc:
        return f"missing command after '{exc.ctx.command_path if exc.ctx else 'simctl'}'"
    except click.ClickException as exc:
        failed = getattr(exc, "ctx", None)  # UsageError and its subclasses carry one
        where = failed.command_path if failed else "simctl"
        return f"{where}: {exc.format_message()}"
    except click.exceptions.Abort:
        return "aborted while parsing"
    finally:
        for ctx in reversed(contexts):
            ctx.close()


def check_runbook(path: str | Path, context: CheckContext | None = None,
                  display: str | None = None) -> list[Finding]:
    """Every finding for one runbook file, sorted by line."""
    path = Path(path)
    context = context or CheckContext.discover()
    name = display or str(path)
    runbook = parse_runbook(path)
    findings = [Finding(name, p.line, p.rule, p.message) for p in runbook.problems]

    def add(line: int, rule: str, message: str) -> None:
        findings.append(Finding(name, line, rule, message))

    _check_front(runbook, context, add)
    _check_sections(runbook, add)
    _check_steps(runbook, context, add)
    return sorted(set(findings), key=lambda f: (f.line, f.rule, f.message))


def _check_front(runbook: Runbook, context: CheckContext, add: Any) -> None:
    if runbook.front_line is None:
        add(1, "RB001", "no front matter: start the file with a '---' block holding id, "
                        "title, alerts and scenarios")
        return
    front = runbook.front
    if front is None:
        return
    lines = runbook.front_lines
    if front.id in context.scenarios:
        add(lines.get("id", 1), "RB015", f"runbook id '{front.id}' {GIVES_AWAY} (name it "
                                         "after the symptom or alert on-call sees)")
    if front.id != runbook.path.stem:
        add(lines.get("id", 1), "RB012", f"id '{front.id}' does not match the file name "
                                         f"'{runbook.path.name}' (expected '{runbook.path.stem}')")
    for scenario in front.scenarios:
        if scenario not in context.scenarios:
            hint = did_you_mean(scenario, context.scenarios, listing=False)
            add(lines.get("scenarios", 1), "RB007",
                f"unknown scenario '{scenario}': no scenarios/{scenario}.yaml{hint}")
    known = context.alerts
    for alert in front.alerts:
        if alert not in known:
            hint = did_you_mean(alert, known, listing=False)
            add(lines.get("alerts", 1), "RB008",
                f"alert '{alert}' is named by no scenario (no scenario lists it in "
                f"'alerts'){hint}")
        elif no_rule := missing_rule(alert):
            add(lines.get("alerts", 1), "RB014", no_rule)


def _check_sections(runbook: Runbook, add: Any) -> None:
    present = set(runbook.sections)
    for section in REQUIRED_SECTIONS:
        if section in present:
            continue
        near = [h for h in runbook.headings if h.section is None
                and did_you_mean(h.title, [section], listing=False)]
        if near:
            add(near[0].line, "RB003", f"missing section '## {section}' (found "
                                       f"'## {near[0].title}': misspelt?)")
        else:
            add(1, "RB003", f"missing section '## {section}'")


def _check_steps(runbook: Runbook, context: CheckContext, add: Any) -> None:
    first_seen: dict[str, int] = {}
    for block in runbook.blocks:
        if block.id is None:
            if block.section == "Mitigate" and block.commands:
                add(block.line, "RB005", "a code block in Mitigate has no id: open it with "
                                         "```sh {#some-id} so it can be run and referenced")
            elif block.section != "Mitigate":
                _check_commands(block.commands, context, add)
                continue
        else:
            if block.id in first_seen:
                add(block.line, "RB004", f"duplicate step id '{block.id}' (first at line "
                                         f"{first_seen[block.id]})")
            else:
                first_seen[block.id] = block.line
            if not block.commands:
                add(block.line, "RB011", f"step '{block.id}' has no command")
            for command in block.refused_commands:
                add(command.line, "RB013",
                    f"step '{block.id}': '{_short(command.text)}' {command.refused}; a step "
                    "may not run it, with or without --allow-shell")
            shell = block.shell_commands
            if shell:
                add(shell[0].line, "RB009",
                    f"step '{block.id}' runs non-simctl commands ('{_short(shell[0].text)}'), "
                    "so it runs only with --allow-shell")
        _check_commands(block.commands, context, add)


def _check_commands(commands: Iterable[Command], context: CheckContext, add: Any) -> None:
    for command in commands:
        if not command.is_simctl:
            continue
        if command.argv is None:
            add(command.line, "RB006", f"'{_short(command.text)}': {command.error}")
            continue
        if context.cli is None:
            continue
        problem = parse_command(context.cli, command.argv[1:])
        if problem:
            add(command.line, "RB006", f"'{_short(command.text)}': {problem}")


def check_alert_runbooks(context: CheckContext, rules: Path | None = None,
                         display: str | None = None) -> list[Finding]:
    """RB015 for the alert rules (default: the stack's rule file) whose runbook annotation
    is a scenario's id: `simctl alerts`, the dashboards and drill timelines show it to
    responders. A rule file that does not load is `simctl alerts check`'s business."""
    path = rules or default_rules_path()
    try:
        rule_file = load_rules(path)
        lines = path.read_text(encoding="utf-8").splitlines()
    except (InvalidInput, OSError, UnicodeDecodeError):
        return []
    name = display or str(path)
    findings = []
    for rule in rule_file.rules():
        if rule.runbook in context.scenarios:
            findings.append(Finding(name, _annotation_line(lines, rule.line), "RB015",
                                    f"alert '{rule.name}': runbook '{rule.runbook}' "
                                    f"{GIVES_AWAY} (name the runbook after the symptom)"))
    return sorted(findings)


def _annotation_line(lines: list[str], start: int) -> int:
    """The line of the rule's ``runbook:`` annotation (1-based), or the rule's own line."""
    for number in range(start, len(lines) + 1):
        text = lines[number - 1].strip()
        if number > start and text.startswith("- "):
            break  # the next rule
        if "runbook:" in text:  # block or flow style
            return number
    return start


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["RULES", "WARNINGS", "CheckContext", "Finding", "check_alert_runbooks", "check_runbook",
           "parse_command"]
