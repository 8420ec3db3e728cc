"""`simctl verify`: CI mode. Run scenarios unattended, check symptoms and recovery.

    simctl verify --all --junit report.xml --json journal.json

1. Every selected scenario is linted (and its runbook steps checked) first: anything
   invalid exits 2 and nothing is started.
2. The stack of ``--project`` is started (``fast`` timing by default) unless one is
   already up for that project, which is then reused and left up afterwards.
3. The scenarios run one after another; between two of them the stack is reset to its
   baseline, so each starts from the same state.
4. A summary table, the JUnit XML and the JSON journal; the stack verify started is
   stopped (unless ``--keep-stack``).

Exit codes: 0 every scenario reproduced its symptoms and recovered through its runbook;
1 any did not; 2 invalid input; 3 the stack could not start; 130 after SIGINT and 143
after SIGTERM (the run in progress is rolled back and the stack verify started is
stopped first).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simctl.backends.base import Backend
from simctl.cli import complete
from simctl.cli.options import default_project
from simctl.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_STACK,
    InvalidInput,
    SimctlError,
)
from simctl.runbook.shell_guard import allow_shell_callback


@dataclass
class Selected:
    path: Path
    scenario: Any  # simctl.scenario.model.Scenario
    runbook: Path


@dataclass
class Outcome:
    selected: Selected
    result: Any = None  # ScenarioResult
    skipped: str = ""  # why it did not run
    control: Any = None  # simctl.scenario.controls.Control of a control run

    @property
    def journal(self) -> dict[str, Any]:
        from simctl.scenario.journal import scenario_journal, skipped_journal

        if self.result is not None:
            journal = scenario_journal(self.result)
        else:
            s = self.selected.scenario
            journal = skipped_journal(s.id, s.title, self.skipped)
        if self.control is not None:
            journal["control"] = self.control.as_dict(self.result)
        return journal

    @property
    def ok(self) -> bool:
        """Passed; for a control run, failed the way it must."""
        if self.result is None:
            return False
        if self.control is not None:
            return self.control.judge(self.result)[0]
        return bool(self.result.passed)


@dataclass
class Progress:
    """Prints events as they finish; a spinner shows the phase in progress on a terminal."""

    console: Console
    status: Any = None
    current: str = ""
    lines: list[str] = field(default_factory=list)
    position: str = ""  # "3 of 15, 1m02s elapsed" for the scenario starting

    def __call__(self, event: Any) -> None:
        if event.kind == "scenario":
            if event.end is None:
                detail = event.detail
                self.current = event.name
                where = f"[{self.position}] " if self.position else ""
                self._print(Text.assemble(("▶ ", "bold"), (where, "dim"), (event.name, "bold"),
                                          f": {detail.get('title', '')} (seed "
                                          f"{detail.get('seed')}, {detail.get('timing')} timing)"))
            return
        if event.end is None:
            if event.kind == "phase":
                self._spin(f"{self.current}: {event.name.replace('_', ' ')}")
            elif event.kind == "step":
                self._spin(f"{self.current}: runbook step {event.name}")
            return
        self._print(self._line(event))

    def _line(self, event: Any) -> Text:
        style = {"ok": "green", "failed": "red", "error": "red", "skipped": "yellow"}.get(
            event.status, "")
        took = f" {event.duration:.1f}s" if event.duration else ""
        t = event.detail.get("t")
        when = f"t={t:.1f}s " if isinstance(t, int | float) else ""
        label = {
            "phase": event.name.replace("_", " "),
            "fault": f"{when}fault: {event.name}",
            "undo": f"{when}undo ({event.detail.get('reason', '')}): {event.name}",
            "step": f"runbook step {event.name}",
            "symptom": f"t={event.detail.get('seen_at', 0):.1f}s symptom seen: {event.name}",
            "abort": f"abort: {event.name}",
            "load": event.name,
        }.get(event.kind, f"{event.kind} {event.name}")
        text = Text("  ")
        text.append(label)
        text.append(f"  {event.status}", style=style)
        text.append(took, style="dim")
        output = event.output.strip()
        if output and (event.status != "ok" or event.kind in ("load",)):
            first = output.splitlines()
            shown = first[:6] if event.status != "ok" else first[:1]
            for line in shown:
                text.append(f"\n      {line[:300]}", style="dim" if event.status == "ok" else "")
        return text

    def _print(self, text: Text) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def _spin(self, message: str) -> None:
        if self.status is not None:
            self.status.update(message)

    @contextmanager
    def spinner(self) -> Iterator[None]:
        if not self.console.is_terminal:
            yield
            return
        self.status = self.console.status("")
        self.status.start()
        try:
            yield
        finally:
            self.status.stop()
            self.status = None


def _console() -> Console:
    """Stdout; 120 columns when it is not a terminal (CI logs), unless COLUMNS says."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console(highlight=False)
    return Console(highlight=False, width=120)


def _select(scenarios: tuple[str, ...], all_: bool) -> list[Path]:
    from simctl.scenario import catalog

    if all_ and scenarios:
        raise click.UsageError("give SCENARIO ids or paths, or --all, not both")
    if not all_ and not scenarios:
        raise click.UsageError("give SCENARIO ids or paths, or --all")
    paths = catalog.scenario_files() if all_ else [catalog.resolve_scenario(a) for a in scenarios]
    if not paths:
        raise InvalidInput(f"no scenarios in {catalog.display(catalog.scenarios_dir())}")
    unique: dict[Path, None] = {}
    for path in paths:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def _lint(paths: list[Path], allow_shell: bool) -> list[Selected]:
    """Every problem of every file, printed at once; exit 2 when there is any."""
    from simctl.runbook.check import CheckContext
    from simctl.runbook.parser import parse_runbook
    from simctl.runbook.steps import argv_for, find_step
    from simctl.scenario import catalog
    from simctl.scenario.loader import lint_scenario
    from simctl.scenario.precheck import step_findings

    problems: list[str] = []
    selected: list[Selected] = []
    context = None  # what `simctl runbook check` checks against, built once
    for path in paths:
        result = lint_scenario(path, display=catalog.display(path))
        problems.extend(str(issue) for issue in result.issues)
        s = result.scenario
        if s is None:
            continue
        runbook = catalog.runbook_path(s.runbook)
        try:
            parsed = parse_runbook(runbook)
            for step_id in s.mitigation.runbook_steps:
                for command in find_step(parsed, step_id).commands:
                    argv_for(command, allow_shell)
        except InvalidInput as exc:
            problems.append(f"{catalog.display(path)}: mitigation: {' '.join(str(exc).split())}")
            continue
        if context is None:
            context = CheckContext.discover()
        found = step_findings(parsed, s.mitigation.runbook_steps, context)
        problems.extend(f"{catalog.display(path)}: mitigation: step '{step_id}': {finding}"
                        for step_id, finding in found)
        if found:
            continue
        selected.append(Selected(path, s, runbook))
    if problems:
        for line in problems:
            click.echo(line)
        click.echo(f"{len(problems)} problem(s): nothing was started", err=True)
        sys.exit(EXIT_INVALID)
    return selected


@contextmanager
def _seeded_environment(seed: int) -> Iterator[None]:
    """Services read their --seed from the environment (SIMCTL_SEED; SIMCTL_DYNO_SEED for
    dynos, whose options are prefixed by their command name)."""
    names = ("SIMCTL_SEED", "SIMCTL_DYNO_SEED")
    saved = {n: os.environ.get(n) for n in names}
    for name in names:
        os.environ[name] = str(seed)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _reusable(backend: Backend) -> bool:
    from simctl.backends import procs

    state = backend.state()
    if state is None:
        return False
    if not any(procs.alive(p.pid, p.started) for p in state.processes.values()):
        return False  # stale: `up` clears it
    if not state.complete:
        raise SimctlError(f"project {backend.project!r} is still starting (or its start "
                          "failed half-way); run `simctl down` first")
    return True


def _summary(console: Console, outcomes: list[Outcome]) -> None:
    controls = any(o.control is not None for o in outcomes)
    table = Table(title="simctl verify" + (" (control runs: each must fail)" if controls else ""))
    table.add_column("scenario", no_wrap=True)
    if controls:
        table.add_column("without", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("symptoms after", justify="right")
    table.add_column("recovered after", justify="right")
    table.add_column("time", justify="right")
    table.add_column("reason", overflow="fold")
    for outcome in outcomes:
        r = outcome.result
        without = [Text(outcome.control.label)] if outcome.control is not None else []
        if r is None:
            table.add_row(Text(outcome.selected.scenario.id), *without,
                          Text("skipped", style="yellow"), "-", "-", "-", Text(outcome.skipped))
            continue
        style = "green" if outcome.ok else "red"
        reason = r.reason
        status = r.status
        if outcome.control is not None:
            status = f"{r.status} (as it must)" if outcome.ok else r.status
            reason = reason if outcome.ok else outcome.control.judge(r)[1]
        table.add_row(
            Text(r.scenario_id), *without, Text(status, style=style),
            "-" if r.time_to_symptoms is None else f"{r.time_to_symptoms:.1f}s",
            "-" if r.time_to_recovery is None else f"{r.time_to_recovery:.1f}s",
            f"{r.duration:.1f}s", Text(reason))
    console.print(table)
    if controls:
        good = sum(1 for o in outcomes if o.ok)
        console.print(f"{good} of {len(outcomes)} control run(s) failed as they must")
        for o in outcomes:
            if o.result is not None and o.result.passed:
                console.print(Text(f"not needed: {o.selected.scenario.id} passes without "
                                   f"{o.control.label}", style="red"))
        return
    passed = sum(1 for o in outcomes if o.result is not None and o.result.passed)
    console.print(f"{passed} of {len(outcomes)} scenario(s) passed")


@click.command()
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO]...",
                shell_complete=complete.scenarios)
@click.option("--all", "all_", is_flag=True, help="Every scenario (scenarios/*.yaml).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write JUnit XML (one test case per scenario).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the JSON journal (every phase and action).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None, metavar="N",
              help="Seed every scenario with N (default: each scenario's own seed, else 0).")
@click.option("--timing", type=click.Choice(["fast", "heroku"]), default=None,
              help="Timing profile of the stack verify starts (default fast).")
@click.option("--fail-fast", is_flag=True, help="Stop at the first scenario that fails.")
@click.option("--project", default=default_project, show_default="simctl", metavar="NAME",
              help="Project (stack) to run on; reused if it is already up (env SIMCTL_PROJECT).")
@click.option("--port-offset", type=click.IntRange(0, 30000), default=0, show_default=True,
              help="Add N to every port of a stack verify starts.")
@click.option("--keep-stack", is_flag=True, help="Leave the stack verify started running.")
@click.option("--backend", "backend_name", type=click.Choice(["local", "compose"]),
              default="local", show_default=True,
              help="Backend of the stack verify starts (a running stack keeps its own).")
@click.option("--allow-shell", is_flag=True, callback=allow_shell_callback,
              help="Let runbook steps run non-simctl commands (through /bin/sh).")
@click.option("--shard", callback=lambda ctx, param, value: _parse_shard(value), default=None,
              metavar="I/N", help="Run only the I-th of N stable parts of the selection "
                                  "(a CI matrix: --shard 1/3, 2/3, 3/3).")
@click.option("--control", type=click.Choice(["no-faults", "no-mitigation", "each-fault",
                                              "each-step"]), default=None,
              help="Control runs: leave out the faults (symptoms must not appear), the "
                   "runbook's steps (recovery must not happen), each fault or each step in "
                   "turn; every run must then FAIL (exit 0 when each did).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              metavar="DIR", help="Write a report per scenario run into DIR (HTML, Markdown, "
                                  "JSON: scores, timeline, SLI charts; docs/drills.md).")
@click.option("--app-agnostic", "app_agnostic", is_flag=True,
              help="With --all: only the scenarios marked app_agnostic, which run against "
                   "your own app (docs/apps.md).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              default=None, envvar="SIMCTL_CONFIG", metavar="FILE",
              help="Project file naming your own apps (default ./simctl.yaml; docs/apps.md).")
@click.option("--parallel", type=click.IntRange(1, 8), default=1, show_default=True,
              metavar="N", help="Run N stacks side by side (projects PROJECT-p1.., ports "
                                "1500 apart), each a shard; JUnit and JSON files merged.")
def verify(scenarios: tuple[str, ...], all_: bool, junit_path: str | None,
           json_path: str | None, seed: int | None, timing: str | None, fail_fast: bool,
           project: str, port_offset: int, keep_stack: bool, allow_shell: bool,
           backend_name: str = "local", control: str | None = None,
           shard: tuple[int, int] | None = None, config_path: str | None = None,
           report_dir: str | None = None, app_agnostic: bool = False,
           parallel: int = 1) -> None:
    """Run scenarios unattended: reproduce each incident, run its runbook's mitigation,
    check recovery (CI). Exit 0 only if every scenario passed."""
    from simctl.backends import factory
    from simctl.scenario import interrupts

    if parallel > 1:
        sys.exit(_parallel(parallel, locals()))

    if config_path:  # lint and the stack verify starts read the apps from it
        os.environ["SIMCTL_CONFIG"] = str(Path(config_path).resolve())

    try:
        with interrupts.signals_as_exceptions():  # nothing runs yet: just leave
            paths = _select(scenarios, all_)
            if app_agnostic:
                from simctl.apps.scenarios import only_app_agnostic

                paths = only_app_agnostic(paths, all_)
            selected = _lint(paths, allow_shell)
    except KeyboardInterrupt as exc:
        sys.exit(interrupts.exit_code_for(exc))
    if shard is not None:
        selected = _shard(selected, *shard)
        if not selected:
            click.echo(f"shard {shard[0]}/{shard[1]}: no scenario falls in it; nothing to run")
            sys.exit(EXIT_OK)
    for path in (junit_path, json_path, report_dir):
        if path and not Path(path).resolve().parent.is_dir():
            raise InvalidInput(f"{path}: no such directory")
    if report_dir and Path(report_dir).exists() and not Path(report_dir).is_dir():
        raise InvalidInput(f"--report {report_dir}: not a directory")
    console = _console()
    wanted_timing = timing or "fast"
    # a running stack is reused with the backend it runs on
    chosen = factory.recorded(project) or backend_name
    options: dict[str, Any] = {}
    # a stack verify starts runs the project file's apps (Procfiles on local, images on
    # compose: docs/apps.md)
    from simctl.apps.config import project_apps

    apps = project_apps(allow_shell=allow_shell, images=chosen == "compose")
    if apps:
        options["apps"] = apps
    backend = factory.create(chosen, project, timing=wanted_timing, port_offset=port_offset,
                             **options)
    outcomes = _outcomes(selected, control)
    started_stack = False
    baseline = Baseline()
    exit_code = EXIT_OK
    began = time.time()
    stack_timing = wanted_timing
    with interrupts.signals_as_exceptions():
        try:
            try:
                if _reusable(backend):
                    state = backend.require_state()
                    stack_timing = state.timing
                    # act on the stack as it was started (its ports), not as asked now
                    backend = factory.create(chosen, project, timing=state.timing,
                                             port_offset=state.port_offset)
                    console.print(f"reusing the running stack {project!r} ({state.timing} "
                                  "timing); it stays up afterwards")
                    if timing and timing != state.timing:
                        console.print(Text(f"warning: --timing {timing} ignored: the stack "
                                           f"runs {state.timing}", style="yellow"))
                else:
                    started_stack = True
                    with console.status(f"starting stack {project!r} ({wanted_timing} "
                                        "timing)..."), _seeded_environment(seed or 0):
                        state = backend.up()
                    for notice in backend.notices:
                        console.print(Text(f"note: {notice}", style="yellow"))
                    console.print(f"stack {project!r} is up ({len(state.processes)} processes, "
                                  f"{wanted_timing} timing)")
            except SimctlError as exc:
                click.secho(f"error: the stack could not start: {' '.join(str(exc).split())}",
                            fg="red", err=True)
                exit_code = EXIT_STACK
            if exit_code != EXIT_STACK:
                exit_code = _run_all(console, backend, outcomes, seed, stack_timing, fail_fast,
                                     allow_shell, reset_after_last=not started_stack,
                                     control=control, baseline=baseline)
        except interrupts.Interrupted as exc:
            interrupts.hold()  # from here on, more signals wait for the clean-up
            exit_code = exc.exit_code
            _interrupted(console, outcomes, exc)
        except KeyboardInterrupt as exc:
            interrupts.hold()
            exit_code = interrupts.exit_code_for(exc)
            _interrupted(console, outcomes, exc)
        finally:
            with interrupts.deferred():
                if not started_stack and baseline.dirty:
                    # A reused stack goes back to the baseline the run found on every
                    # exit path, also what the runbook's steps changed (not only faults).
                    _reset(console, backend, baseline)
                ran = [o for o in outcomes if o.result is not None or o.skipped]
                if ran:
                    try:
                        _reports(console, ran, junit_path, json_path, began, exit_code,
                                 project, seed, stack_timing, control, shard)
                        if report_dir:  # before the stack stops: SLIs come from its monitor
                            _drill_reports(console, ran, report_dir, backend)
                    except OSError as exc:  # the stack must still be stopped
                        click.secho(f"error: cannot write a report: {exc}", fg="red", err=True)
                        exit_code = exit_code or EXIT_FAILED
                if started_stack and not keep_stack:
                    with console.status(f"stopping stack {project!r}..."):
                        backend.down()
                    console.print(f"stopped stack {project!r}")
                elif started_stack:
                    console.print(f"stack {project!r} left running (--keep-stack); "
                                  f"`simctl down --project {project}` stops it")
            late = interrupts.pending()
            if late is not None and exit_code in (EXIT_OK, EXIT_FAILED):
                exit_code = 128 + late
    sys.exit(exit_code)


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise click.BadParameter(f"expected I/N with 1 <= I <= N, e.g. 2/3; got {value!r}",
                                 param_hint="'--shard'")
    return int(index), int(count)


def _parallel(parts: int, given: dict[str, Any]) -> int:
    """--parallel N: the same selection and options, in N child verifies (verify_parallel)."""
    from simctl.cli import verify_parallel

    if given["shard"] is not None or given["keep_stack"]:
        raise InvalidInput("--parallel starts and stops a stack per part: not with --shard "
                           "or --keep-stack")
    if given["port_offset"] + verify_parallel.STRIDE * (parts - 1) > 30000:
        raise InvalidInput(f"--port-offset {given['port_offset']} leaves no room for {parts} "
                           f"stacks {verify_parallel.STRIDE} ports apart (at most 30000)")
    for path in (given["junit_path"], given["json_path"]):
        if path and not Path(path).resolve().parent.is_dir():
            raise InvalidInput(f"{path}: no such directory")
    args = [*given["scenarios"]]
    for flag, name in (("--all", "all_"), ("--fail-fast", "fail_fast"),
                       ("--allow-shell", "allow_shell"), ("--app-agnostic", "app_agnostic")):
        if given[name]:
            args.append(flag)
    for flag, name in (("--seed", "seed"), ("--timing", "timing"), ("--control", "control"),
                       ("--report", "report_dir"), ("--config", "config_path"),
                       ("--backend", "backend_name")):
        if given[name] is not None:
            args += [flag, str(given[name])]
    return verify_parallel.run(parts, args, given["project"], given["port_offset"],
                               given["junit_path"], given["json_path"])


def _shard(selected: list[Selected], index: int, count: int) -> list[Selected]:
    """The I-th of N parts: scenarios sorted by id, dealt round-robin. The same on every
    machine (no hashing seeds, no file order), and the parts differ in size by one."""
    ordered = sorted(selected, key=lambda s: s.scenario.id)
    return [s for position, s in enumerate(ordered) if position % count == index - 1]


def _outcomes(selected: list[Selected], control: str | None) -> list[Outcome]:
    """One run per scenario; with --control, one per control run of each scenario."""
    from simctl.scenario.controls import expand

    if control is None:
        return [Outcome(s) for s in selected]
    return [Outcome(s, control=c) for s in selected for c in expand(s.scenario, control)]


@dataclass
class Baseline:
    """Whether the stack may differ from its baseline (a run began since the last reset)."""

    dirty: bool = False


def _reset(console: Console, backend: Backend, baseline: Baseline) -> None:
    from simctl.scenario.reset import reset_stack

    try:
        with console.status("resetting the stack to its baseline..."):
            done = reset_stack(backend)
        baseline.dirty = False
        console.print(Text(f"  reset to baseline ({len(done)} action(s))", style="dim"))
    except SimctlError as exc:
        console.print(Text(f"  warning: reset failed: {exc}", style="yellow"))


def _run_all(console: Console, backend: Backend, outcomes: list[Outcome], seed: int | None,
             timing: str, fail_fast: bool, allow_shell: bool, *, reset_after_last: bool,
             control: str | None = None, baseline: Baseline | None = None) -> int:
    """Run every scenario; reset the stack to its baseline between two (and after the
    last one on a reused stack, which is left as it was found)."""
    from simctl.scenario.engine import EngineOptions, run_scenario
    from simctl.scenario.reset import reset_stack

    progress = Progress(console)
    began = time.monotonic()
    options = EngineOptions(allow_shell=allow_shell, control=control)
    baseline = baseline or Baseline()
    failed = False
    if reset_after_last:
        # A reused stack may hold what an earlier run or a person left: start from baseline.
        with console.status("resetting the stack to its baseline..."):
            reset_stack(backend)
    for index, outcome in enumerate(outcomes):
        if failed and fail_fast:
            outcome.skipped = "not run: --fail-fast after a failure"
            continue
        s = outcome.selected
        if outcome.control is not None:
            console.print(Text(f"control run ({outcome.control.kind}): {s.scenario.id} without "
                               f"{outcome.control.label}; it must fail", style="bold yellow"))
        progress.position = (f"{index + 1} of {len(outcomes)}, "
                             f"{_elapsed(time.monotonic() - began)} elapsed")
        baseline.dirty = True
        try:
            with progress.spinner():
                run_options = (outcome.control.options(options) if outcome.control is not None
                               else options)
                outcome.result = run_scenario(s.scenario, backend, seed=seed, timing=timing,
                                              listener=progress, options=run_options,
                                              runbook=s.runbook)
        except KeyboardInterrupt as exc:
            outcome.result = getattr(exc, "result", None)
            for later in outcomes[index + 1:]:
                later.skipped = "not run: verify was interrupted"
            raise
        r = outcome.result
        if outcome.control is not None:
            ok, why = outcome.control.judge(r)
            mark = (Text(f"✔ control: {r.status}, as it must", style="green") if ok
                    else Text(f"✘ control: {why}", style="red"))
            mark.append(f" in {r.duration:.1f}s")
            if ok and r.reason:
                mark.append(f": {r.reason}")
        else:
            mark = Text("✔ passed", style="green") if r.passed else Text(f"✘ {r.status}",
                                                                          style="red")
            mark.append(f" in {r.duration:.1f}s")
            if r.reason:
                mark.append(f": {r.reason}")
        console.print(Text("  ").append(mark), soft_wrap=True)
        failed = failed or not outcome.ok
        last = index == len(outcomes) - 1
        if (not last and not (failed and fail_fast)) or reset_after_last:
            _reset(console, backend, baseline)
    _summary(console, outcomes)
    console.print(f"{len(outcomes)} run(s) in {_elapsed(time.monotonic() - began)}")
    return EXIT_OK if not failed else EXIT_FAILED


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _interrupted(console: Console, outcomes: list[Outcome], exc: BaseException) -> None:
    name = getattr(exc, "name", "SIGINT")
    console.print(Text(f"interrupted by {name}: the run in progress was rolled back",
                       style="yellow"))
    for outcome in outcomes:
        if outcome.result is None and not outcome.skipped:
            outcome.skipped = f"not run: verify was interrupted by {name}"
    _summary(console, outcomes)


def _drill_reports(console: Console, outcomes: list[Outcome], folder: str,
                   backend: Backend) -> None:
    """`--report DIR`: each run as a drill report (simctl.drill.from_verify)."""
    from simctl.drill.from_verify import write_reports
    from simctl.scenario.alert_watch import monitor_url

    Path(folder).mkdir(exist_ok=True)
    try:
        url = monitor_url(backend)
    except SimctlError:
        url = None
    written = write_reports(folder, [o.journal for o in outcomes], url)
    console.print(f"reports: {len(written)} file(s) in {folder}")


def _reports(console: Console, outcomes: list[Outcome], junit_path: str | None,
             json_path: str | None, began: float, exit_code: int, project: str,
             seed: int | None, timing: str, control: str | None = None,
             shard: tuple[int, int] | None = None) -> None:
    from simctl.scenario.journal import run_journal, write_json
    from simctl.scenario.junit import write_junit

    journals = [o.journal for o in outcomes]
    end = time.time()
    status = {EXIT_OK: "passed", EXIT_FAILED: "failed"}.get(exit_code, "interrupted")
    if json_path:
        write_json(json_path, run_journal(journals, start=began, end=end, status=status,
                                          project=project, seed=seed, timing=timing,
                                          exit_code=exit_code, control=control,
                                          shard=None if shard is None else
                                          f"{shard[0]}/{shard[1]}"))
        console.print(f"journal: {json_path}")
    if junit_path:
        # one suite per shard, named for it, so the shards' files merge into one report
        name = "simctl verify" + ("" if shard is None else f" (shard {shard[0]}/{shard[1]})")
        write_junit(junit_path, journals, start=began, duration=end - began, name=name)
        console.print(f"JUnit: {junit_path}")


COMMANDS = [verify]
