"""The `simctl` command: the root group, its shared options, and the one error boundary.

Command groups live in their own modules and are registered at the bottom of this file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click

from simctl import __version__
from simctl.errors import SimctlError
from simctl.faults.client import DEFAULT_URL, ToxiproxyClient


@dataclass
class CliContext:
    """What every command can reach through ctx.obj."""

    toxiproxy_url: str = DEFAULT_URL
    toxiproxy_url_given: bool = False  # from --toxiproxy-url or TOXIPROXY_URL

    def client(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.fault_plane_url())

    def fault_plane_url(self) -> str:
        """The given URL, else the running project's fault plane, else the default."""
        if self.toxiproxy_url_given:
            return self.toxiproxy_url
        from simctl.backends.state import ProjectState
        from simctl.cli.options import default_project

        state = ProjectState.load(default_project())
        return state.toxiproxy_url if state is not None else self.toxiproxy_url


class SimctlGroup(click.Group):
    """Turns every SimctlError into one red line on stderr and its exit code, never a traceback.

    click's usage errors are not SimctlErrors: they pass through with click's format and exit 2.
    """

    def main(self, args: Any = None, *rest: Any, **extra: Any) -> Any:
        """Runs the command; while a drill is active, records it on the drill's timeline
        (who, argv, exit code, the runbook step it matches: simctl.drill.recorder)."""
        from simctl.drill import recorder

        argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
        recording = recorder.before(argv)
        code = 1
        try:
            result = super().main(args, *rest, **extra)
            code = 0
            return result
        except SystemExit as exc:
            code = recorder.exit_code_of(exc)
            raise
        finally:
            recorder.after(recording, code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SimctlError as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            click.secho(f"error: {message}", fg="red", err=True)
            sys.exit(exc.exit_code)


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        ToxiproxyClient(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.group("simctl", cls=SimctlGroup)
@click.version_option(__version__, prog_name="simctl")
@click.option(
    "--toxiproxy-url",
    envvar="TOXIPROXY_URL",
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    callback=_check_url,
    help="Toxiproxy API to talk to (env TOXIPROXY_URL).",
)
@click.pass_context
def main(ctx: click.Context, toxiproxy_url: str) -> None:
    """Incident simulation and runbook rehearsal on a miniature HTTP routing stack."""
    source = ctx.get_parameter_source("toxiproxy_url")
    given = source not in (None, click.core.ParameterSource.DEFAULT)
    ctx.obj = CliContext(toxiproxy_url=toxiproxy_url, toxiproxy_url_given=given)


def _register() -> None:
    from simctl.cli import (
        alerts,
        drill,
        faults,
        operate,
        report,
        runbook,
        scenario,
        stack,
        toxiproxy,
        traffic,
        train,
        verify,
    )

    groups = [faults, stack, operate, traffic, scenario, runbook, verify, alerts, drill,
              report, train]
    for command in [c for group in groups for c in group.COMMANDS]:
        main.add_command(command)
    main.add_command(toxiproxy.toxiproxy)
    _register_views()


def _register_views() -> None:
    from simctl.cli import views  # dashboard, web

    for command in views.COMMANDS:
        main.add_command(command)


_register()
