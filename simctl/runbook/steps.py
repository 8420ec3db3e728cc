"""Run a runbook step: each command as a subprocess, stopping at the first failure.

``simctl ...`` lines are split with shlex and run as ``sys.executable -m simctl ...`` (the
same installation), never through a shell. Other lines run only with ``allow_shell=True``,
through ``/bin/sh -c``. Everything is checked before anything runs: an unknown step id, a
line that does not split, a shell line without permission, or a simctl command that could
grant itself the shell (simctl.runbook.shell_guard) raises InvalidInput and runs nothing.
Commands of a step run without the shell inherit ``SIMCTL_SHELL_DENIED=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from simctl.errors import InvalidInput
from simctl.runbook.model import Command, Runbook, Step
from simctl.runbook.parser import parse_runbook
from simctl.runbook.shell_guard import ENV as SHELL_DENIED
from simctl.runbook.shell_guard import refuse_if_denied
from simctl.scenario.errors import did_you_mean

DEFAULT_TIMEOUT = 300.0


class StepNeedsShell(InvalidInput):
    """The step has non-simctl commands and the shell was not allowed."""


class StepRefused(InvalidInput):
    """The step has a simctl command that could grant itself the shell."""


@dataclass(frozen=True)
class CommandResult:
    line: int
    text: str
    argv: tuple[str, ...]  # what was executed
    returncode: int | None  # None when it timed out
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass
class StepResult:
    runbook: Path
    step_id: str
    section: str | None
    commands: list[CommandResult] = field(default_factory=list)
    not_run: list[Command] = field(default_factory=list)  # after the failure

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.commands) and not self.not_run

    @property
    def failed(self) -> CommandResult | None:
        return next((c for c in self.commands if not c.ok), None)

    @property
    def duration(self) -> float:
        return sum(c.duration for c in self.commands)


def argv_for(command: Command, allow_shell: bool) -> list[str]:
    if command.refused is not None:
        raise StepRefused(f"line {command.line}: '{command.text}' {command.refused}: a runbook "
                          "step may not run it (it could grant itself the shell)")
    if command.is_simctl and command.argv is not None:
        return [sys.executable, "-m", "simctl", *command.argv[1:]]
    if command.is_simctl:
        raise InvalidInput(f"line {command.line}: {command.error}")
    if not allow_shell:
        raise StepNeedsShell(f"line {command.line}: '{command.text}' is not a simctl command; "
                             "pass --allow-shell to run it through /bin/sh")
    return ["/bin/sh", "-c", command.text]


def find_step(runbook: Runbook, step_id: str) -> Step:
    step = runbook.step(step_id)
    if step is None:
        hint = did_you_mean(step_id, runbook.step_ids)
        raise InvalidInput(f"{runbook.path}: no step '{step_id}'{hint}")
    return step


def run_step(
    runbook: Runbook | str | Path,
    step_id: str,
    allow_shell: bool = False,
    env: dict[str, str] | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    cwd: str | Path | None = None,
) -> StepResult:
    """Run one step; ``env`` adds variables to the current environment.

    Returns a StepResult whether the commands succeed or not; raises InvalidInput (and
    runs nothing) when the step is unknown or cannot run as asked.
    """
    refuse_if_denied(allow_shell)
    if not isinstance(runbook, Runbook):
        runbook = parse_runbook(runbook)
    step = find_step(runbook, step_id)
    if not step.commands:
        raise InvalidInput(f"{runbook.path}: step '{step_id}' has no command")
    plan = [(command, argv_for(command, allow_shell)) for command in step.commands]
    environment = {**os.environ, **(env or {})}
    if not allow_shell:
        environment[SHELL_DENIED] = "1"
    result = StepResult(runbook.path, step_id, step.section)
    for index, (command, argv) in enumerate(plan):
        outcome = _run(command, argv, environment, timeout, cwd)
        result.commands.append(outcome)
        if not outcome.ok:
            result.not_run = [c for c, _ in plan[index + 1:]]
            break
    return result


def _run(command: Command, argv: list[str], env: dict[str, str], timeout: float | None,
         cwd: str | Path | None) -> CommandResult:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=cwd, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        return CommandResult(command.line, command.text, tuple(argv), None,
                             _text(exc.stdout), _text(exc.stderr),
                             time.monotonic() - started, timed_out=True)
    except OSError as exc:
        return CommandResult(command.line, command.text, tuple(argv), 127, "",
                             f"cannot run: {exc.strerror}", time.monotonic() - started)
    return CommandResult(command.line, command.text, tuple(argv), done.returncode,
                         done.stdout, done.stderr, time.monotonic() - started)


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
