"""`simctl dashboard` and `simctl web`: what on-call looks at (docs/dashboards.md)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import socket
import sys
from collections.abc import Callable
from typing import Any

import click

from simctl.cli.options import default_project
from simctl.errors import AddressInUse, InvalidInput
from simctl.views.panels import window_for
from simctl.views.prom_client import PromClient
from simctl.views.snapshot import Collector
from simctl.views.source import ViewSource, resolve

_DURATION = re.compile(r"^([1-9][0-9]{0,4})(s|m|h)$")


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _DURATION.match(value):
        raise click.BadParameter(f"{value!r} is not a duration such as 10s, 1m or 1h")
    return value


def _seconds(text: str) -> int:
    # The type: ignore below: the option's type validated the text.
    number, unit = _DURATION.match(text).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600}[unit]


def view_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options both views take: where to read, how much history, which rate window."""
    options = [
        click.option("--project", default=default_project, show_default="simctl",
                     metavar="NAME", help="Project whose monitor and routers to read "
                                          "(env SIMCTL_PROJECT)."),
        click.option("--prometheus-url", envvar="SIMCTL_PROMETHEUS_URL", metavar="URL",
                     help="Read this Prometheus API instead of the project's monitor "
                          "(env SIMCTL_PROMETHEUS_URL)."),
        click.option("--span", default="5m", show_default=True, callback=_duration,
                     metavar="D",
                     help="History shown in the charts (30s..1h)."),
        click.option("--window", default=None, callback=_duration, metavar="D",
                     help="Rate window of the queries [default: 10s on fast timing, else 30s]."),
        click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0,
                     show_default=True,
                     help="Seconds between refreshes (web: between the page's polls)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _prepare(project: str, prometheus_url: str | None, span: str,
             window: str | None) -> tuple[ViewSource, Collector]:
    """Resolve the source, check it answers (exit 7 if not), and build the collector."""
    seconds = _seconds(span)
    if not 30 <= seconds <= 3600:
        raise InvalidInput(f"--span {span}: must be between 30s and 1h")
    source = resolve(project, prometheus_url)

    async def probe() -> None:
        async with PromClient(source.prometheus_url) as prom:
            await prom.probe()

    asyncio.run(probe())
    collector = Collector(source.prometheus_url, source.routers,
                          window or window_for(source.timing), span=float(seconds))
    return source, collector


def _title(source: ViewSource) -> str:
    return f"project {source.project}" if source.project else source.prometheus_url


@click.command()
@view_options
def dashboard(project: str, prometheus_url: str | None, span: str, window: str | None,
              interval: float) -> None:
    """Live terminal dashboard: health, traffic, latency, H-codes, drains, sync, alerts, logs."""
    if not sys.stdout.isatty():
        raise InvalidInput("the dashboard needs a terminal (stdout is not a tty)")
    from simctl.views.dashboard import Dashboard

    source, collector = _prepare(project, prometheus_url, span, window)
    Dashboard(collector, interval=interval, subtitle=_title(source)).run()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else runs (exit 6 if taken)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInput(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == 98:
            raise AddressInUse(f"port {port} on {host} is taken (choose another with --port)") \
                from None
        raise InvalidInput(f"cannot bind {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


@click.command()
@view_options
@click.option("--host", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address to bind; anything but loopback requires the printed token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True,
              help="Port to bind (0 picks a free one).")
def web(project: str, prometheus_url: str | None, span: str, window: str | None,
        interval: float, host: str, port: int) -> None:
    """Serve the dashboard's panels as a web page with live charts, until Ctrl-C."""
    from aiohttp import web as aioweb

    from simctl.views.web import build_app

    source, collector = _prepare(project, prometheus_url, span, window)
    sock = _bind(host, port)
    token = None if _loopback(host) else secrets.token_urlsafe(24)
    bound_host, bound_port = sock.getsockname()[:2]
    if bound_host in ("0.0.0.0", "::"):  # every interface: a name other machines can use
        bound_host = socket.gethostname()
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    url = f"http://{shown}:{bound_port}/"
    if token:
        url += f"?token={token}"
        click.echo(f"token: {token} (cookie simctl_web_token or header X-Simctl-Token)")
    click.echo(f"web view of {_title(source)} on {url}", nl=True)
    app = build_app(collector, token=token, title=_title(source), interval=interval,
                    project=source.project)
    aioweb.run_app(app, sock=sock, print=None, handle_signals=True)


COMMANDS = [dashboard, web]
