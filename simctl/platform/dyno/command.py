"""``python -m simctl.platform dyno [OPTIONS]``: run one dyno as a process."""

from __future__ import annotations

import re
import sys
from typing import Any

import click
from yarl import URL

from simctl.errors import EXIT_INVALID
from simctl.platform.dyno.app import DynoService
from simctl.platform.service import run_service
from simctl.platform.timing import PROFILES

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class OneLineError(click.ClickException):
    """Shown as a single ``Error: ...`` line, exit status 2 (InvalidInput)."""

    exit_code = EXIT_INVALID


class OneLineCommand(click.Command):
    """Reports bad options in one line, without the usage block."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise OneLineError(f"dyno: {exc.format_message()}") from None


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a valid name (letters, digits, '.', '_', "
                                 "'-', at most 64)")
    return value


def logplex_url(value: str | None) -> str | None:
    """Check a logplex URL; a bare ``http://host:port`` means its ``/logs`` endpoint."""
    if value is None or value == "":
        return None
    try:
        url = URL(value)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(f"{value!r} is not a URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise click.BadParameter(f"{value!r} is not an http(s) URL with a host")
    if url.path in ("", "/"):
        url = url.with_path("/logs")
    return str(url)


def _logplex(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return logplex_url(value)


@click.command("dyno", cls=OneLineCommand,
               help="A small web app whose behaviour switches at run time (POST /control).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: any free port, named in the ready line).")
@click.option("--name", "dyno", default="web.1", show_default=True, callback=_name,
              help="Dyno name, the PROCID of its log lines.")
@click.option("--app", "app_name", default="web", show_default=True, callback=_name,
              help="App name; logs go to the channel of token t.<app>.")
@click.option("--logplex-url", default=None, callback=_logplex,
              help="Logplex ingest URL (http://host:port means http://host:port/logs). "
                   "Without it, app lines go to stderr at debug level.")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku",
              show_default=True, help="Timing profile.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--boot-delay", type=click.FloatRange(0, 3600), default=0.0, show_default=True,
              help="Seconds before the app is up (health 503 'starting' meanwhile).")
@click.option("--state-file", type=click.Path(dir_okay=False), default=None,
              help="Where slow_boot is kept so that the next start is slow too.")
@click.option("--memory-quota", type=click.FloatRange(1, 65536), default=512.0,
              show_default=True, help="MB of RSS above which the dyno logs R14.")
@click.option("--seed", type=int, default=None, help="Seed for fraction, rate and jitter draws.")
def command(host: str, port: int, log_level: str, timing: str, **options: Any) -> None:
    service = DynoService(
        timing=PROFILES[timing],
        exit_process=True,
        memory_quota_mb=options.pop("memory_quota"),
        command_line=" ".join(["python", "-m", "simctl.platform", *sys.argv[1:]]),
        **options,
    )
    run_service(service, host, port, log_level)
