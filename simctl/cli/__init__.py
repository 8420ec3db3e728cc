"""The `simctl` command: the root group, its shared options, and the one error boundary.

Command groups live in their own modules; simctl.cli.registry names the module of each,
and a command's module is imported only when that command runs (LazyGroup).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any

import click

from simctl import __version__
from simctl.cli.registry import COMMANDS
from simctl.errors import SimctlError

DEFAULT_URL = "http://127.0.0.1:8474"  # simctl.faults.client.DEFAULT_URL, without its imports


@dataclass
class CliContext:
    """What every command can reach through ctx.obj."""

    toxiproxy_url: str = DEFAULT_URL
    toxiproxy_url_given: bool = False  # from --toxiproxy-url or TOXIPROXY_URL

    def client(self) -> Any:  # a simctl.faults.client.ToxiproxyClient
        from simctl.faults.client import ToxiproxyClient

        return ToxiproxyClient(self.fault_plane_url())

    def fault_plane_url(self) -> str:
        """The given URL, else the running project's fault plane, else the default."""
        if self.toxiproxy_url_given:
            return self.toxiproxy_url
        from simctl.backends.state import ProjectState
        from simctl.cli.options import default_project

        state = ProjectState.load(default_project())
        return state.toxiproxy_url if state is not None else self.toxiproxy_url


class LazyGroup(click.Group):
    """A group whose commands are imported when used: `simctl --help` lists them from
    simctl.cli.registry, `simctl NAME` imports only NAME's module."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module = importlib.import_module(f"simctl.cli.{COMMANDS[cmd_name][0]}")
            everything = getattr(module, "COMMANDS", [])
            command = next((c for c in everything if c.name == cmd_name), None) \
                or getattr(module, cmd_name.replace("-", "_"), None)
            if isinstance(command, click.Command):
                self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of `--help`, from the registry: no command module is imported."""
        stubs = {name: click.Command(name, help=short)
                 for name, (_, short) in COMMANDS.items()}
        rows = []
        width = formatter.width - 6 - max(map(len, stubs), default=0)
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or stubs[name]
            if not command.hidden:
                rows.append((name, command.get_short_help_str(width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class SimctlGroup(LazyGroup):
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
    from simctl.faults.client import ToxiproxyClient

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
