"""What an operator does to a running stack: logs, metrics, scale, dynos, and the
actions runbooks use (flush a router, switch a control rod, disable a drain,
maintenance mode, sync operations)."""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simctl.backends import names
from simctl.backends.base import Backend
from simctl.backends.http import call, text
from simctl.backends.project import base_url
from simctl.cli import complete, render
from simctl.cli.options import project_option
from simctl.errors import InvalidInput, SimctlError, StackStartError
from simctl.platform.logframe import printable
from simctl.scenario.errors import did_you_mean

console = Console()
_DISPLAY = re.compile(r"^(\S+) (\w[\w-]*)\[([^\]]+)\]: ")
LOGPLEX_HISTORY = 1500  # lines logplex keeps per channel (docs/architecture.md, logplex)


# -- logs and metrics --------------------------------------------------------------------


def _regex(ctx: click.Context, param: click.Parameter, value: str | None
           ) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(value)
    except re.error as exc:
        raise click.BadParameter(f"{value!r} is not a regular expression: {exc}") from None


@click.command()
@click.option("--tail", "-t", "follow", is_flag=True, help="Keep streaming new lines.")
@click.option("--app", "-a", default="web", show_default=True, help="The app's log channel.")
@click.option("--source", "-s", type=click.Choice(["app", "heroku"]), default=None,
              help="Only lines from this source.")
@click.option("--dyno", "-d", "proc", default=None, metavar="NAME",
              help="Only lines from this process (web.1, router, logplex, ...).")
@click.option("--num", "-n", "count", type=click.IntRange(0, LOGPLEX_HISTORY), default=100,
              show_default=True, help="How many past lines to show first (after the filters).")
@click.option("--grep", "-g", "pattern", default=None, callback=_regex, metavar="REGEX",
              help="Only lines matching this Python regular expression.")
@project_option
def logs(backend: Backend, follow: bool, app: str, source: str | None, proc: str | None,
         count: int, pattern: re.Pattern[str] | None) -> None:
    """Show the app's logs through logplex, formatted like `heroku logs`."""
    _check_app(backend, app)
    if proc:
        proc = names.dyno(backend.require_state(), proc)  # dyno-1 is web.1 in the logs

    def wanted(line: str) -> bool:
        match = _DISPLAY.match(line)
        if match and ((source and match.group(2) != source) or (proc and
                      match.group(3) != proc)):
            return False
        return pattern is None or pattern.search(line) is not None

    filtered = bool(source or proc or pattern)
    if filtered and count:
        # -n counts lines that pass the filters: search the whole history, keep the last N
        past = [line for line in _tail(backend, app, LOGPLEX_HISTORY, False) if wanted(line)]
        for line in past[-count:]:
            click.echo(printable(line))
        if not follow:
            return
        count = 0  # the stream below then carries only new lines
    for line in _tail(backend, app, count, follow):
        if wanted(line):
            click.echo(printable(line))  # logplex escapes too; a line is the app's data
            if follow:
                sys.stdout.flush()


def _tail(backend: Backend, app: str, count: int, follow: bool) -> Iterator[str]:
    """Lines of logplex's tail session: the last ``count``, then (``follow``) new ones."""
    base = backend.url_of("logplex")
    query = urllib.parse.urlencode({"app": app, "n": count, "follow": "1" if follow else "0"})
    url = f"{base}/tail?{query}"
    try:
        resp = urllib.request.urlopen(url, timeout=None if follow else 10)  # noqa: S310
    except urllib.error.HTTPError as exc:
        detail = " ".join(exc.read().decode(errors="replace").split())[:300]
        raise SimctlError(f"logplex refused the tail session: {detail or exc.reason} "
                          f"(HTTP {exc.code})") from None
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror.lower()
        raise StackStartError(f"logplex does not answer at {base}: {reason} (stopped or "
                              "paused? see `simctl status`)") from None
    try:
        for raw in resp:
            yield raw.decode(errors="replace").rstrip("\n")
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    except OSError as exc:  # the stream ended badly (logplex stopped, timeout)
        if follow:
            raise StackStartError(f"logplex tail ended: {exc}") from None
    finally:
        resp.close()


def _check_app(backend: Backend, app: str) -> None:
    """InvalidInput for an app sync does not know (logplex would tail an empty channel).

    When sync does not answer, logs are still worth showing: no check then.
    """
    try:
        apps = call("GET", f"{backend.url_of('sync')}/routes", timeout=3).get("apps", {})
    except (SimctlError, AttributeError):
        return
    if app not in apps:
        raise InvalidInput(f"no app '{app}' in project '{backend.project}'"
                           f"{did_you_mean(app, sorted(apps))}")


@click.command()
@click.argument("service", shell_complete=complete.services)
@click.option("--grep", "-g", "pattern", default=None, help="Only lines containing TEXT.")
@project_option
def metrics(backend: Backend, service: str, pattern: str | None) -> None:
    """Print a service's Prometheus metrics (e.g. `simctl metrics router-1 --grep H12`)."""
    proc = names.service(backend, service)
    body = text(f"{base_url(proc)}/metrics")
    for line in body.splitlines():
        if pattern is None or pattern in line:
            click.echo(line)


@click.command()
@click.argument("formation", metavar="APP=N")
@project_option
def scale(backend: Backend, formation: str) -> None:
    """Set how many dynos an app runs, e.g. `simctl scale web=4` (0 stops them all)."""
    match = re.fullmatch(r"([a-z][a-z0-9-]*)=(\d{1,2})", formation)
    if not match:
        raise click.BadParameter("expected APP=N, e.g. web=4 (N from 0 to 99)")
    app, count = match.group(1), int(match.group(2))
    names = backend.scale(app, count)
    console.print(f"{app}: {count} dyno(s) {', '.join(names)}".rstrip())


# -- dynos -------------------------------------------------------------------------------


def _params(values: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--param")
        value: object = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw in ("true", "false"):
            value = raw == "true"
        out[key] = value
    return out


@click.group()
def dyno() -> None:
    """Switch a dyno's behaviour at run time (latency, error, hang, close, ...)."""


@dyno.command("set")
@click.argument("name", metavar="DYNO", shell_complete=complete.dynos)
@click.argument("behaviour")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Behaviour parameter, e.g. -p ms=4000 (repeatable).")
@project_option
def dyno_set(backend: Backend, name: str, behaviour: str, params: tuple[str, ...]) -> None:
    """Set DYNO's BEHAVIOUR, e.g. `simctl dyno set web.1 latency -p ms=4000`."""
    body = {"behaviour": behaviour, **_params(params)}
    name = names.dyno(backend.require_state(), name)
    from simctl.apps.stack import is_app_dyno
    from simctl.platform.procfile_dyno import BEHAVIOUR_REFUSED

    if any(is_app_dyno(p.labels) for p in backend.find("dyno", dyno=name)):
        raise InvalidInput(BEHAVIOUR_REFUSED.format(dyno=name))
    shown = call("POST", f"{backend.url_of('dyno', dyno=name)}/control", body)
    console.print(_behaviours({name: shown}))


def _behaviours(shown: dict[str, Any]) -> Table:
    """dyno | behaviour | parameters, from the dynos' /control answers."""
    out = render.table("dyno", "behaviour", "parameters", ids=("dyno",))
    for name, answer in shown.items():
        if isinstance(answer, dict):
            out.add_row(Text(name), Text(str(answer.get("behaviour", "-"))),
                        Text(render.pairs(answer, skip=("behaviour",)) or "-"))
        else:
            out.add_row(Text(name), Text("-"), Text(render.value_text(answer)))
    return render.fit_ids(out)


@dyno.command("show")
@click.argument("name", metavar="DYNO", required=False, shell_complete=complete.dynos)
@render.json_option
@project_option
def dyno_show(backend: Backend, name: str | None, as_json: bool) -> None:
    """Show the behaviour of one dyno, or of all of them."""
    procs = sorted(backend.find("dyno"), key=lambda p: str(p.labels.get("dyno")))
    if name:
        name = names.dyno(backend.require_state(), name)
        procs = [p for p in procs if str(p.labels.get("dyno")) == name]
        if not procs:
            raise InvalidInput(f"no dyno '{name}' in project '{backend.project}'"
                               f"{did_you_mean(name, _dyno_names(backend))}")
    shown: dict[str, Any] = {}
    for proc in procs:
        try:
            shown[str(proc.labels.get("dyno"))] = call("GET", f"{base_url(proc)}/control",
                                                       timeout=2)
        except SimctlError as exc:  # a killed dyno is still listed
            shown[str(proc.labels.get("dyno"))] = {"behaviour": "unreachable",
                                                   "error": str(exc)}
    if as_json:
        render.echo_json(shown)
    else:
        console.print(_behaviours(shown))


def _dyno_names(backend: Backend) -> list[str]:
    return sorted(str(p.labels.get("dyno")) for p in backend.find("dyno"))


@dyno.command("reset")
@click.argument("name", metavar="DYNO", required=False, shell_complete=complete.dynos)
@click.option("--all", "all_", is_flag=True, help="Every dyno.")
@project_option
def dyno_reset(backend: Backend, name: str | None, all_: bool) -> None:
    """Return a dyno (or --all) to normal behaviour."""
    if bool(name) == all_:
        raise click.UsageError("give a DYNO or --all")
    if name:
        name = names.dyno(backend.require_state(), name)
    procs = backend.find("dyno") if all_ else backend.find("dyno", dyno=name or "")
    if not procs:
        raise InvalidInput(f"no dyno {name!r}")
    for proc in procs:
        call("DELETE", f"{base_url(proc)}/control")
        console.print(f"{proc.labels.get('dyno')}: normal")


# -- operator actions --------------------------------------------------------------------


def _routers(backend: Backend, name: str | None, all_: bool) -> list[tuple[str, str]]:
    """(name, admin URL) of the router named (router-1, router.1, edge.1...), or of every
    router."""
    if bool(name) == all_:
        raise click.UsageError("give a ROUTER (router-1) or --all")
    procs = backend.find("router")
    if name:
        state = backend.require_state()
        found = names.resolve(state, name, procs)
        if found is None:
            raise InvalidInput(f"no router {name!r} (routers: "
                               f"{', '.join(p.name for p in procs)})")
        procs = [found]
    return [(names.canonical(p), base_url(p)) for p in procs]


def _each_router(backend: Backend, name: str | None, all_: bool, method: str,
                 path: str, body: Any = None) -> None:
    """Send one admin request to each router named; one table row per answer."""
    rows = [(router_name, call(method, f"{url}{path}", body))
            for router_name, url in _routers(backend, name, all_)]
    console.print(render.answers("router", [(n, a if isinstance(a, dict) else {"answer": a})
                                            for n, a in rows]))


@click.group()
def router() -> None:
    """Router operator actions."""


@router.command("flush")
@click.argument("name", metavar="ROUTER", required=False)
@click.option("--all", "all_", is_flag=True, help="Every router.")
@project_option
def router_flush(backend: Backend, name: str | None, all_: bool) -> None:
    """Flush a router's route cache and quarantine, then resync from a fresh snapshot."""
    _each_router(backend, name, all_, "POST", "/admin/flush", {})


@router.command("resync")
@click.argument("name", metavar="ROUTER", required=False)
@click.option("--all", "all_", is_flag=True, help="Every router.")
@project_option
def router_resync(backend: Backend, name: str | None, all_: bool) -> None:
    """Force a router to fetch a fresh route table snapshot from sync."""
    _each_router(backend, name, all_, "POST", "/admin/resync", {})


@router.command("keepalive")
@click.argument("setting", type=click.Choice(["on", "off", "show"]))
@click.argument("name", metavar="ROUTER", required=False)
@click.option("--all", "all_", is_flag=True, help="Every router.")
@project_option
def router_keepalive(backend: Backend, setting: str, name: str | None, all_: bool) -> None:
    """Reuse connections to dynos (on) or open one per request (off, Vegur's default)."""
    if setting == "show":
        _each_router(backend, name, all_, "GET", "/admin/keepalive")
    else:
        _each_router(backend, name, all_, "POST", "/admin/keepalive",
                     {"enabled": setting == "on"})


@router.command("routes")
@click.argument("name", metavar="ROUTER")
@render.json_option
@project_option
def router_routes(backend: Backend, name: str, as_json: bool) -> None:
    """Show the route table a router is using, and its sync stream state."""
    ((router_name, url),) = _routers(backend, name, False)
    routes = call("GET", f"{url}/admin/routes")
    health = call("GET", f"{url}/health")
    sync_state = health.get("sync", {}) if isinstance(health, dict) else {}
    quarantined = health.get("quarantined", []) if isinstance(health, dict) else []
    if as_json:
        render.echo_json({"router": router_name, **routes, "sync": sync_state,
                          "quarantined": quarantined})
        return
    console.print(Text(f"{router_name}: route table version {routes.get('version')} "
                       f"(epoch {routes.get('epoch')}), quarantined: "
                       f"{render.value_text(quarantined)}"))
    console.print(render.fields("sync stream", sync_state))
    out = render.table("app", "domains", "maintenance", "dyno", "address", "state",
                       ids=("app", "dyno", "address"))
    for app, entry in sorted(routes.get("apps", {}).items()):
        dynos = entry.get("dynos") or [{}]
        for index, dyno_entry in enumerate(dynos):
            first = index == 0
            out.add_row(Text(app if first else ""),
                        Text(render.value_text(entry.get("domains")) if first else ""),
                        Text(render.value_text(entry.get("maintenance")) if first else ""),
                        Text(str(dyno_entry.get("name", "-"))),
                        Text(str(dyno_entry.get("address", "-"))),
                        Text(str(dyno_entry.get("state", "-"))))
    console.print(render.fit_ids(out))


@click.command()
@click.argument("name", metavar="ROD",
                type=click.Choice(["deny_drain_forwarding", "deny_tail_sessions",
                                   "deny_logs_ingress"]))
@click.argument("setting", type=click.Choice(["on", "off"]))
@project_option
def rod(backend: Backend, name: str, setting: str) -> None:
    """Switch a logplex control rod on or off (load-shedding switches)."""
    url = backend.url_of("logplex")
    call("POST", f"{url}/admin/rods/{name}", {"enabled": setting == "on"})
    console.print(f"control rod {name}: {setting}")


@click.group()
def drain() -> None:
    """Logplex drains: list, disable, enable, and what a drain received."""


@drain.command("list")
@render.json_option
@project_option
def drain_list(backend: Backend, as_json: bool) -> None:
    """Every drain with its state, buffer and counters."""
    answer = call("GET", f"{backend.url_of('logplex')}/admin/drains")
    if as_json:
        render.echo_json(answer)
        return
    # The rest (app, token, frames, attempts) is in --json.
    out = render.table("drain", "enabled", "state", "service", "buffer", "delivered",
                       "dropped", "last error", "url", ids=("drain",))
    for entry in answer.get("drains", []):
        buffer = entry.get("buffer") or {}
        out.add_row(*(Text(render.value_text(v)) for v in (
            entry.get("name"), entry.get("enabled"), entry.get("state"), entry.get("service"),
            f"{buffer.get('messages', 0)}/{buffer.get('capacity', '?')}",
            entry.get("delivered"), entry.get("dropped"), entry.get("last_error"),
            entry.get("url"))))
    console.print(render.fit_ids(out))


def _drain_switch(enabled: bool):
    verb = "enable" if enabled else "disable"

    @drain.command(verb, help=f"{verb.capitalize()} a drain (by name, e.g. main).")
    @click.argument("name")
    @project_option
    def command(backend: Backend, name: str) -> None:
        call("POST", f"{backend.url_of('logplex')}/admin/drains/{name}", {"enabled": enabled})
        console.print(f"drain {name}: {verb}d")

    return command


_drain_switch(True)
_drain_switch(False)


@drain.command("logs")
@click.argument("name")
@click.option("--num", "-n", "count", type=click.IntRange(1, 10_000), default=100,
              show_default=True, help="How many of the last matching lines.")
@click.option("--grep", "-g", "pattern", default=None, callback=_regex, metavar="REGEX",
              help="Only lines matching this Python regular expression.")
@project_option
def drain_logs(backend: Backend, name: str, count: int,
               pattern: re.Pattern[str] | None) -> None:
    """The last lines drain NAME (main, audit) received, as `simctl logs` shows them.

    The drain's own store is searched (what was delivered, not what logplex sent), so a
    line missing here and present in `simctl logs` was lost on the way."""
    proc = names.resolve(backend.require_state(), f"drain-{name}", backend.find("drain")) \
        or names.resolve(backend.require_state(), name, backend.find("drain"))
    if proc is None:
        drains = sorted(p.name.removeprefix("drain-") for p in backend.find("drain"))
        raise InvalidInput(f"no drain {name!r} (drains: {', '.join(drains) or 'none'})"
                           f"{did_you_mean(name, drains, listing=False)}")
    query = {"limit": count, "last": 1} | ({"regex": pattern.pattern} if pattern else {})
    rows = call("GET", f"{base_url(proc)}/messages?{urllib.parse.urlencode(query)}")
    for row in rows if isinstance(rows, list) else []:
        click.echo(printable(f"{row['timestamp']} {row['app']}[{row['proc']}]: {row['text']}"))


@click.command()
@click.argument("setting", type=click.Choice(["on", "off"]))
@click.option("--app", "-a", default="web", show_default=True)
@project_option
def maintenance(backend: Backend, setting: str, app: str) -> None:
    """Put an app in maintenance mode (routers answer H80) or take it out."""
    url = backend.url_of("sync")
    call("POST", f"{url}/apps/{app}/maintenance", {"enabled": setting == "on"})
    console.print(f"{app}: maintenance {setting}")


@click.group()
def sync() -> None:
    """The route table's source: show it, or change it behind the routers' backs."""


@sync.command("show")
@project_option
def sync_show(backend: Backend) -> None:
    """Print sync's route table snapshot."""
    console.print_json(data=call("GET", f"{backend.url_of('sync')}/routes"))


@sync.command("state")
@click.argument("name", metavar="DYNO", shell_complete=complete.dynos)
@click.argument("state", type=click.Choice(["up", "starting", "crashed", "down"]))
@click.option("--app", "-a", default="web", show_default=True)
@project_option
def sync_state(backend: Backend, name: str, state: str, app: str) -> None:
    """Record a dyno state change in the route table."""
    name = names.dyno(backend.require_state(), name)
    call("POST", f"{backend.url_of('sync')}/apps/{app}/dynos/{name}", {"state": state})
    console.print(f"{name}: {state}")


@sync.command("address")
@click.argument("name", metavar="DYNO", shell_complete=complete.dynos)
@click.argument("address", metavar="HOST:PORT|blackhole|proxy")
@click.option("--app", "-a", default="web", show_default=True)
@project_option
def sync_address(backend: Backend, name: str, address: str, app: str) -> None:
    """Point a dyno's route somewhere else: an address, `blackhole` (never answers: H19)
    or `proxy` (back to its fault-plane proxy)."""
    name = names.dyno(backend.require_state(), name)
    resolved = backend.dyno_address(name, address)
    call("POST", f"{backend.url_of('sync')}/apps/{app}/dynos/{name}", {"address": resolved})
    console.print(f"{name}: {resolved}")


@sync.command("poison")
@project_option
def sync_poison(backend: Backend) -> None:
    """Append a malformed record to the route stream (routers must not crash-loop)."""
    answer = call("POST", f"{backend.url_of('sync')}/poison", {})
    shown = render.pairs(answer) if isinstance(answer, dict) else render.value_text(answer)
    console.print(Text(f"poison record appended: {shown}"))


COMMANDS = [logs, metrics, scale, dyno, router, rod, drain, maintenance, sync]
