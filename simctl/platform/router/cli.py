"""``python -m simctl.platform router``: the router as a process."""

from __future__ import annotations

import click

from simctl.platform.router.logs import logs_url
from simctl.platform.router.records import RecordError, parse_apps
from simctl.platform.router.service import RouterService, load_routes_file
from simctl.platform.service import run_service
from simctl.platform.timing import PROFILES, profile


def _check_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        logs_url(value)  # the same rules for every http(s) URL option
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an http(s)://host:port URL") from None
    return value


@click.command("router", help="Run a router: HTTP/1.1 reverse proxy with Heroku's H-codes.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, type=click.IntRange(0, 65535), show_default=True,
              help="App traffic (HTTP).")
@click.option("--tls-port", default=0, type=click.IntRange(-1, 65535), show_default=True,
              help="App traffic over TLS (0: pick a port, -1: no TLS).")
@click.option("--admin-port", default=0, type=click.IntRange(0, 65535), show_default=True,
              help="/health, /metrics and /admin/*.")
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku", show_default=True)
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@click.option("--sync-url", default=None, callback=_check_url, metavar="URL",
              help="The sync service to follow.")
@click.option("--logplex-url", default=None, callback=_check_url, metavar="URL",
              help="Logplex (base URL or its /logs URL) for router log lines.")
@click.option("--routes-file", default=None, type=click.Path(dir_okay=False),
              help="A static route table (JSON, the shape of GET /routes), loaded at start.")
@click.option("--instance", default="router", show_default=True,
              help="HOSTNAME of the router's log frames (router.1, router.2, ...).")
@click.option("--backend-keepalive", type=click.Choice(["on", "off"]), default="off",
              show_default=True, envvar="SIMCTL_BACKEND_KEEPALIVE",
              help="Reuse connections to dynos (Vegur's opt-in; off: one per request).")
def command(host: str, port: int, tls_port: int, admin_port: int, timing: str, log_level: str,
            sync_url: str | None, logplex_url: str | None, routes_file: str | None,
            instance: str, backend_keepalive: str) -> None:
    routes = None
    if routes_file:
        try:
            routes = load_routes_file(routes_file)
            parse_apps(routes["apps"])
        except (OSError, ValueError, RecordError) as exc:
            raise click.BadParameter(f"{routes_file}: {exc}", param_hint="--routes-file") from None
    service = RouterService(profile(timing), sync_url=sync_url, logplex_url=logplex_url,
                            tls_port=tls_port, admin_port=admin_port, routes=routes,
                            instance=instance, backend_keepalive=backend_keepalive == "on")
    run_service(service, host, port, log_level)
