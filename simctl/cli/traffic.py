"""`simctl traffic`: open-loop load against the running stack, with a live summary."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

from simctl.backends.base import Backend
from simctl.backends.project import base_url
from simctl.cli.options import project_option
from simctl.load.edges import edges_for, url_of
from simctl.load.generator import HttpTraffic, LoadGenerator, LogTraffic
from simctl.load.push import SliPusher
from simctl.load.results import HttpStats, LoadResult, LoadSnapshot

console = Console()


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    text = value.removesuffix("/s")
    try:
        rate = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected a rate like 200 or 200/s") from None
    if not 0 < rate <= 100_000:
        raise click.BadParameter("must be above 0 and at most 100000 per second")
    return rate


def _table(snap: LoadSnapshot) -> Group:
    parts: list[RenderableType] = []
    http: HttpStats | None = snap.http
    if http is not None:
        t = Table(title=f"HTTP after {snap.elapsed:.1f}s", box=None, pad_edge=False)
        for col in ("sent", "ok", "success", "p50", "p90", "p99", "max", "rate"):
            t.add_column(col, justify="right")
        lat = http.latency
        ratio = "-" if http.success_ratio is None else f"{http.success_ratio:.2%}"
        t.add_row(str(http.sent), str(http.ok), ratio, _ms(lat.p50), _ms(lat.p90),
                  _ms(lat.p99), _ms(lat.max), f"{http.achieved_rate:.0f}/s")
        parts.append(t)
        detail = Table(box=None, pad_edge=False, show_header=False)
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(http.by_status.items()))
        codes = " ".join(f"{k}:{v}" for k, v in sorted(http.by_code.items()))
        detail.add_row("status", statuses or "-")
        detail.add_row("H-codes", codes or "-")
        if http.timeouts or http.connection_errors or http.unsent:
            detail.add_row("failed", f"timeouts:{http.timeouts} connection:"
                           f"{http.connection_errors} unsent:{http.unsent}")
        parts.append(detail)
    if snap.logs is not None:
        logs = snap.logs
        parts.append(f"log lines: sent {logs.sent} rejected {logs.rejected} failed "
                     f"{logs.failed} ({logs.achieved_rate:.0f}/s)")
    return Group(*parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


@click.command()
@click.option("--rate", "-r", callback=_rate, default="50", show_default=True,
              help="HTTP requests per second (open loop: sent on the clock).")
@click.option("--duration", "-d", type=click.FloatRange(0.1, 86400), default=10.0,
              show_default=True, help="Seconds to run.")
@click.option("--router", "routers", multiple=True, default=("edge.1",), show_default=True,
              help="Which edge proxy to send to (edge.1, edge-tls.1, or a router: router.2); "
              "repeat it, or give a comma-separated list, to spread the rate over several.")
@click.option("--host", default="web.localhost", show_default=True, help="Host header.")
@click.option("--path", default="/", show_default=True)
@click.option("--logs", "log_rate", callback=_rate, default=None,
              help="Also send log lines per second to logplex.")
@click.option("--keepalive/--no-keepalive", default=True, show_default=True,
              help="Reuse connections; --no-keepalive opens one (a TLS handshake on HTTPS) "
              "per request.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
@project_option
def traffic(backend: Backend, rate: float, duration: float, routers: tuple[str, ...],
            host: str, path: str, log_rate: float | None, keepalive: bool, as_json: bool) -> None:
    """Send open-loop HTTP traffic through one or more routers and show success, latency,
    H-codes (per router when there are several)."""
    state = backend.require_state()
    from simctl.faults.client import ToxiproxyClient

    wanted = [n.strip() for item in routers for n in item.split(",") if n.strip()]
    proxies = ToxiproxyClient(state.toxiproxy_url).proxies()
    chosen = edges_for(wanted, proxies, state, backend.find("router"))
    headers = {} if keepalive else {"Connection": "close"}
    generators: dict[str, LoadGenerator] = {}
    for i, edge in enumerate(chosen):
        http = HttpTraffic(url=url_of(edge, proxies, path), rate=rate / len(chosen), host=host,
                           headers=headers, verify_tls=False)
        logs = (LogTraffic(url=backend.url_of("logplex"), rate=log_rate)
                if log_rate and i == 0 else None)
        generators[edge] = LoadGenerator(http, logs, duration=duration)
    pushers = [p for edge, gen in generators.items()
               if (p := _sli_pusher(state, gen, edge)) is not None]
    results = asyncio.run(_run(generators, live=not as_json, pushers=pushers))
    if as_json:
        if len(results) == 1:
            click.echo(json.dumps(next(iter(results.values())).summary.as_dict(), default=str))
        else:
            click.echo(json.dumps({"routers": {e: r.summary.as_dict() for e, r in results.items()}},
                                  default=str))
    else:
        console.print(_tables({e: r.summary for e, r in results.items()}))


def _sli_pusher(state, generator: LoadGenerator, router: str) -> SliPusher | None:
    """The run pushes its SLIs to the stack's monitor, if it has one (docs/alerts.md)."""
    monitors = [p for p in state.processes.values() if p.role == "monitor"]
    if not monitors:
        return None
    instance = f"traffic-{router}-{os.getpid()}"
    return SliPusher(base_url(monitors[0]), instance, generator.snapshot)


def _tables(snaps: dict[str, LoadSnapshot]) -> Group:
    if len(snaps) == 1:
        return _table(next(iter(snaps.values())))
    return Group(*(Group(f"[bold]{edge}[/bold]", _table(snap)) for edge, snap in snaps.items()))


async def _run(generators: dict[str, LoadGenerator], live: bool,
               pushers: Sequence[SliPusher] = ()) -> dict[str, LoadResult]:
    for gen in generators.values():
        await gen.start()
    for pusher in pushers:
        await pusher.start()
    try:
        return await _watch(generators, live)
    finally:
        for pusher in pushers:
            await pusher.stop()


async def _watch(generators: dict[str, LoadGenerator], live: bool) -> dict[str, LoadResult]:
    async def every() -> dict[str, LoadResult]:
        done = await asyncio.gather(*(g.wait() for g in generators.values()))
        return dict(zip(generators, done, strict=True))

    if not live:
        return await every()

    def snaps() -> Group:
        return _tables({e: g.snapshot() for e, g in generators.items()})

    with Live(snaps(), console=console, refresh_per_second=4, transient=True) as view:
        task = asyncio.ensure_future(every())
        while not task.done():
            view.update(snaps())
            await asyncio.sleep(0.25)
        return task.result()


COMMANDS = [traffic]
