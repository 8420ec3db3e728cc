"""`simctl toxiproxy serve`: the embedded Toxiproxy-compatible server as a process.

Flags mirror toxiproxy-server's (-host, -port, -config, -seed, -proxy-metrics,
-runtime-metrics), except that the default host is 127.0.0.1 and a taken port is an error
with exit code 6 instead of a process that keeps running without an API.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click

from simctl.errors import InvalidInput

log = logging.getLogger("simctl.faults")

# Toxiproxy's LOG_LEVEL names (server.go), mapped onto the logging module's levels.
LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


class KeyValueFormatter(logging.Formatter):
    """`time=... level=info logger=... <message>`: the key=value lines every service writes."""

    def __init__(self) -> None:
        super().__init__(
            "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.levelname = record.levelname.lower()
        return super().formatMessage(record)


def setup_logging() -> None:
    name = os.environ.get("LOG_LEVEL", "info").strip().lower() or "info"
    if name not in LEVELS:
        raise InvalidInput(f"LOG_LEVEL={name}: expected one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    logging.basicConfig(level=LEVELS[name], handlers=[handler], force=True)


@click.group()
def toxiproxy() -> None:
    """The embedded Toxiproxy-compatible fault server."""


@toxiproxy.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="API listen address.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8474,
    show_default=True,
    help="API port (0: any free port, printed when ready).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Proxies to create at start-up, in the /populate JSON format.",
)
@click.option("--seed", type=int, help="Seed toxicity and jitter draws, for reproducible runs.")
@click.option("--proxy-metrics", is_flag=True, help="Serve per-proxy byte counters on /metrics.")
@click.option("--runtime-metrics", is_flag=True, help="Serve process metrics on /metrics.")
def serve(
    host: str,
    port: int,
    config_file: str | None,
    seed: int | None,
    proxy_metrics: bool,
    runtime_metrics: bool,
) -> None:
    """Run the Toxiproxy API on HOST:PORT until SIGINT or SIGTERM."""
    # Imported here: aiohttp and the server are not needed by any other command.
    from simctl.faults.server import ToxiproxyServer, install_uvloop, load_config

    setup_logging()
    config = load_config(config_file) if config_file else None
    server = ToxiproxyServer(
        host=host,
        port=port,
        seed=seed,
        proxy_metrics=proxy_metrics,
        runtime_metrics=runtime_metrics,
        config=config,
    )

    def ready(started: ToxiproxyServer) -> None:
        # One flushed line on stdout, so a parent process can wait for it and read the port.
        click.echo(f"toxiproxy API listening on {started.url}")
        sys.stdout.flush()
        log.info("at=ready api=%s seed=%s", started.url, seed)

    install_uvloop()
    signum = asyncio.run(server.serve_forever(ready=ready))
    log.info("at=stopped signal=%s", signal.Signals(signum).name)
