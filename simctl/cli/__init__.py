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

    def client(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.toxiproxy_url)


class SimctlGroup(click.Group):
    """Turns every SimctlError into one red line on stderr and its exit code, never a traceback.

    click's usage errors are not SimctlErrors: they pass through with click's format and exit 2.
    """

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
    ctx.obj = CliContext(toxiproxy_url=toxiproxy_url)


def _register() -> None:
    from simctl.cli import faults, toxiproxy

    for command in faults.COMMANDS:
        main.add_command(command)
    main.add_command(toxiproxy.toxiproxy)


_register()
