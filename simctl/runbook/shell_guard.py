"""The shell rule for runbook steps (docs/scenarios.md#the-shell-rule).

A step may run a non-simctl command only when the person running it passed --allow-shell.
A simctl command could otherwise grant the shell to itself, so two checks hold:

- Statically, a step's simctl command may not pass ``--allow-shell`` and may not be one of
  ``NESTED`` (commands that run the commands of other files, or run until stopped):
  ``self_granting()`` says why, ``runbook check`` reports it (RB013), ``scenario lint`` and
  ``verify`` refuse it, and ``run_step`` refuses to run it.
- At run time, every command of a step run without the shell gets ``SIMCTL_SHELL_DENIED=1``
  in its environment; while it is set, ``--allow-shell`` is refused (``refuse_if_denied``),
  so nothing below a no-shell run can run shell, whatever it is called.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence

import click

from simctl.errors import InvalidInput

ENV = "SIMCTL_SHELL_DENIED"

# simctl sub-commands a step may not call, and why.
NESTED: dict[tuple[str, ...], str] = {
    ("runbook", "run"): "runs another runbook's commands",
    ("verify",): "runs scenarios and their runbooks' commands",
    ("up",): "starts the stack, and with it the commands of apps' Procfiles",
    ("toxiproxy", "serve"): "runs a server until it is stopped",
    ("dashboard",): "runs until it is stopped",
    ("web",): "runs a server until it is stopped",
}


def self_granting(argv: Sequence[str]) -> str | None:
    """Why the simctl command ``argv`` (with its leading "simctl") may not be a step, or None."""
    args = list(argv[1:])
    if any(a == "--allow-shell" or a.startswith("--allow-shell=") for a in args):
        return "passes --allow-shell"
    path = command_path(args)
    for prefix, why in NESTED.items():
        if path[: len(prefix)] == prefix:
            return why
    return None


def command_path(args: Sequence[str]) -> tuple[str, ...]:
    """The sub-command names ``args`` resolve to in simctl's command tree, as click parses
    them (so ``simctl --toxiproxy-url URL verify`` is ``("verify",)``); nothing is invoked."""
    from simctl.cli import main

    names: list[str] = []
    command: click.Command = main
    parent: click.Context | None = None
    rest = list(args)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            while isinstance(command, click.Group):
                ctx = command.make_context(names[-1] if names else "simctl", rest,
                                           parent=parent, resilient_parsing=True)
                protected = getattr(ctx, "_protected_args", None)  # click >= 8.2
                if protected is None:
                    protected = ctx.protected_args
                pending = [*protected, *ctx.args]
                if not pending:
                    break
                name, sub, rest = command.resolve_command(ctx, pending)
                if sub is None or name is None:
                    break
                names.append(name)
                command, parent = sub, ctx
    except (click.exceptions.ClickException, click.exceptions.Exit):
        pass  # what parsed so far is the path; `runbook check` reports the rest (RB006)
    return tuple(names)


def shell_denied(env: Mapping[str, str] | None = None) -> bool:
    return bool((os.environ if env is None else env).get(ENV))


def refuse_if_denied(allow_shell: bool) -> None:
    """InvalidInput when --allow-shell is asked for below a step run without it."""
    if allow_shell and shell_denied():
        raise InvalidInput(f"--allow-shell is refused here: this command runs inside a runbook "
                           f"step that was run without it ({ENV} is set)")


def allow_shell_callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """click callback for every --allow-shell flag: refused while SIMCTL_SHELL_DENIED is set."""
    refuse_if_denied(value)
    return value
