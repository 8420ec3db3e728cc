"""``python -m simctl.platform logplex [OPTIONS]``."""

from __future__ import annotations

import gc

import click

from simctl.platform.logplex.config import DrainConfigError, DrainSpec, parse_drains
from simctl.platform.logplex.service import LogplexService
from simctl.platform.service import run_service
from simctl.platform.timing import PROFILES, profile

LOG_LEVELS = ["debug", "info", "warning", "error"]


def _drains(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[DrainSpec]:
    try:
        return parse_drains(values)
    except DrainConfigError as exc:  # the message never carries credentials
        raise click.BadParameter(str(exc)) from None


@click.command("logplex", context_settings={"auto_envvar_prefix": "SIMCTL"})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku",
              show_default=True, help="Timing profile.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default="info", show_default=True)
@click.option("--drain", multiple=True, metavar="NAME[@APP]=URL", callback=_drains,
              help="An HTTP drain for APP (default: web); repeatable. URL may carry "
                   "user:password@ for Basic auth (never printed).")
@click.option("--seed", type=int, default=None, help="Seed for the reconnect jitter.")
def command(host: str, port: int, timing: str, log_level: str, drain: list[DrainSpec],
            seed: int | None) -> None:
    """Logplex: log ingest, HTTP drains, tail sessions and control rods."""
    service = LogplexService(profile(timing), drain, seed=seed)
    # Everything loaded so far lives as long as the process: take it out of the garbage
    # collector's full passes, which otherwise pause the loop for tens of ms, and a drain
    # buffer of 1,024 messages lasts ~50 ms at 20,000 lines/s.
    gc.freeze()
    run_service(service, host, port, log_level)
