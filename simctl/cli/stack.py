"""Stack lifecycle and process faults: up, down, status, kill, pause, resume, restart."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simctl.backends import factory, names
from simctl.backends.base import Backend
from simctl.cli import complete
from simctl.cli.alerts import up_monitor_option
from simctl.cli.options import default_project, project_option
from simctl.cli.render import echo_json, json_option
from simctl.platform.timing import PROFILES
from simctl.runbook.shell_guard import allow_shell_callback
from simctl.scenario.interrupts import exit_code_for, signals_as_exceptions

console = Console()


@click.command()
@click.option(
    "--timing",
    type=click.Choice(sorted(PROFILES)),
    default="heroku",
    show_default=True,
    help="Timing profile: heroku (real timeouts) or fast (every timeout / 10).",
)
@click.option(
    "--project",
    default=default_project,
    show_default="simctl",
    metavar="NAME",
    help="Project name (env SIMCTL_PROJECT).",
)
@click.option(
    "--port-offset",
    type=click.IntRange(0, 30000),
    default=0,
    show_default=True,
    help="Add N to every port, to run a second stack beside the first.",
)
@click.option(
    "--backend",
    "backend_name",
    type=click.Choice(["local", "compose"]),
    default="local",
    show_default=True,
    help="Where to run the stack: local processes, or Docker Compose (see docs/docker.md).",
)
@click.option(
    "--app",
    "app_options",
    multiple=True,
    metavar="NAME=PROCFILE_OR_DIR|IMAGE",
    help="Run your own app: the `web` process of this Procfile, or with --backend compose "
         "this container image (repeatable; docs/apps.md).",
)
@click.option("--dynos", type=int, default=None, metavar="N",
              help="Dynos of each --app (default 3, or the project file's count).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE", envvar="SIMCTL_CONFIG",
              help="Project file naming the apps (default: ./simctl.yaml when no --app).")
@click.option("--allow-shell", is_flag=True, callback=allow_shell_callback,
              help="Let a Procfile command that needs a shell run with sh -c.")
@click.option("--prometheus", is_flag=True,
              help="Also run a real Prometheus with the stack's alert rules "
                   "(127.0.0.1:7900; docs/alerts.md).")
@up_monitor_option
@click.pass_obj
def up(obj, timing: str, project: str, port_offset: int, backend_name: str,
       app_options: tuple[str, ...] = (), dynos: int | None = None,
       config_path: Path | None = None, allow_shell: bool = False,
       prometheus: bool = False) -> None:
    """Start the stack and print its endpoints."""
    from simctl.apps.config import resolve

    external = obj.toxiproxy_url if obj.toxiproxy_url_given else None
    # compose runs images (NAME=IMAGE, `image:`), local runs Procfiles (docs/apps.md)
    apps = resolve(app_options, dynos, config_path, Path.cwd(), allow_shell,
                   images=backend_name == "compose")
    options: dict[str, Any] = {"apps": apps} if apps else {}
    backend = factory.create(backend_name, project, timing=timing, port_offset=port_offset,
                             toxiproxy_url=external, **options)
    backend.prometheus = prometheus
    started = time.monotonic()
    running = _running_as_asked(backend, timing, port_offset, external, apps, prometheus)
    try:
        # Ctrl-C or SIGTERM while starting: everything started so far is stopped again.
        with signals_as_exceptions(), console.status(f"starting stack {project!r}..."):
            state = running or backend.up()
    except KeyboardInterrupt as exc:
        console.print(f"[red]interrupted[/red]: stack {project!r} was not started "
                      "(everything it had started is stopped)")
        sys.exit(exit_code_for(exc))
    for app in apps:
        what = f"image {app.image}" if app.image else f"`{app.command}` ({app.procfile})"
        console.print(f"app {app.name!r}: {app.dynos} dynos of {what}", highlight=False)
    for notice in backend.notices:
        console.print(Text(f"note: {notice}", style="yellow"))
    elapsed = time.monotonic() - started
    console.print(
        f"[green]stack {project!r} is already up[/green]: nothing started "
        f"(timing {state.timing}, {len(state.processes)} processes)"
        if running else
        f"[green]stack {project!r} is up[/green] in {elapsed:.1f}s "
        f"({len(state.processes)} processes, backend {state.backend})"
    )
    table = Table("endpoint", "address", box=None, pad_edge=False)
    for name, address in state.endpoints.items():
        if not name.startswith("proxy "):
            table.add_row(name, address)
    table.add_row("toxiproxy API", state.toxiproxy_url)
    console.print(table)
    hint = state.endpoints.get("hint")
    if hint:
        console.print(hint)


def _running_as_asked(backend: Backend, timing: str, port_offset: int, external: str | None,
                      apps: list[Any], prometheus: bool) -> Any:
    """The local project's state when it already runs, complete and healthy, as this `up`
    asks (same timing and ports, nothing extra): `up` after the quick start then succeeds
    without starting anything. Any other running stack is still refused by backend.up()."""
    if backend.name != "local" or external or apps or prometheus:
        return None
    state = backend.state()
    if (state is None or not state.complete or state.apps or state.timing != timing
            or state.port_offset != port_offset or not state.embedded_toxiproxy):
        return None
    return None if backend.paused_or_down() else state


@click.command()
@project_option
def down(backend: Backend) -> None:
    """Stop every process of the stack (safe to run twice, or after simctl was killed)."""
    names = backend.down()
    if not names and backend.name == "local":
        names = _compose_leftovers_down(backend.project)
    if names:
        console.print(f"stopped {len(names)} processes of {backend.project!r}")
    else:
        console.print(f"project {backend.project!r} is not running")


def _compose_leftovers_down(project: str) -> list[str]:
    """Containers of the project with no state left (its state folder was lost, or simctl
    was killed before writing it): remove them too, when a Docker engine answers."""
    from simctl.backends.compose import ComposeBackend, DockerUnavailable  # noqa: PLC0415

    try:
        backend = ComposeBackend(project)
        if not backend.leftovers():
            return []
        return backend.down()
    except DockerUnavailable:
        return []


@click.command()
@json_option
@project_option
def status(backend: Backend, as_json: bool) -> None:
    """Health of every service, endpoints and key SLIs."""
    state = backend.require_state()
    rows = backend.status()

    def aliases(row) -> list[str]:  # canonical first: web.1 for dyno-1 (docs/cli.md#names)
        proc = state.processes.get(row.name)
        return names.aliases(proc, state) if proc is not None else [row.name]

    if as_json:
        echo_json({"project": backend.project, "backend": state.backend,
                   "timing": state.timing, "toxiproxy_url": state.toxiproxy_url,
                   "endpoints": state.endpoints,
                   "services": [{"name": aliases(r)[0], "service": r.name,
                                 "aliases": aliases(r)[1:], "role": r.role, "pid": r.pid,
                                 "state": r.health.status, "reason": r.health.reason}
                                for r in rows]})
        return
    table = Table("service", "role", "pid", "state", "reason")
    table.columns[0].no_wrap = True
    for row in rows:
        style = "green" if row.health.ok else ("yellow" if row.running else "red")
        table.add_row(
            aliases(row)[0],
            row.role,
            str(row.pid),
            f"[{style}]{row.health.status}[/{style}]",
            row.health.reason,
        )
    console.print(table)
    console.print(f"toxiproxy API: {state.toxiproxy_url}   timing: {state.timing}")


def _process_fault(verb: str, help_text: str):
    @click.command(verb, help=help_text)
    @click.argument("service", shell_complete=complete.services)
    @project_option
    def command(backend: Backend, service: str) -> None:
        proc = names.service(backend, service)  # any alias: web.1, dyno-1, router.1, edge.1
        getattr(backend, verb)(proc.name)
        console.print(f"{verb}: {names.canonical(proc)}")

    return command


def _cpu_limit(value: str) -> float | None:
    if value == "none":
        return None
    try:
        cpus = float(value)
    except ValueError:
        cpus = 0.0
    if not 0.01 <= cpus <= 64:
        raise click.BadParameter(f"{value!r}: want a number of CPUs from 0.01 to 64, or none")
    return cpus


@click.command()
@click.argument("service")
@click.argument("limit", metavar="CPUS|none")
@project_option
def cpu(backend: Backend, service: str, limit: str) -> None:
    """Limit a service to CPUS cores (e.g. 0.05, to saturate TLS), or `none` to lift it
    (compose backend: the container's CPU quota)."""
    cpus = _cpu_limit(limit)
    service = names.service(backend, service).name
    backend.limit_cpu(service, cpus)
    console.print(f"cpu: {service} limited to {cpus:g} CPUs" if cpus else
                  f"cpu: {service} limit lifted")


@click.command()
@click.argument("service")
@project_option
def disconnect(backend: Backend, service: str) -> None:
    """Cut a service off the stack's network, a partition (compose backend); `connect`
    undoes it."""
    service = names.service(backend, service).name
    backend.partition(service, connected=False)
    console.print(f"disconnect: {service} is off the network")


@click.command()
@click.argument("service")
@project_option
def connect(backend: Backend, service: str) -> None:
    """Put a disconnected service back on the stack's network (compose backend)."""
    service = names.service(backend, service).name
    backend.partition(service, connected=True)
    console.print(f"connect: {service} is back on the network")


@click.group("stack")
def stack_group() -> None:
    """Build what the compose backend runs (see docs/docker.md)."""


@stack_group.command("build")
@click.option("--base", default="python:3.11-slim", show_default=True, metavar="IMAGE",
              help="Base image (needs python3 and python3-venv; e.g. simctl-base:bookworm).")
@click.option("--tag", default="simctl:latest", show_default=True, metavar="IMAGE",
              help="Name of the image to build.")
def stack_build(base: str, tag: str) -> None:
    """Build the wheelhouse (stack/.wheels) and the image from stack/Dockerfile, offline."""
    from simctl.backends.image import build_image

    with console.status(f"building {tag} on {base}..."):
        times = build_image(base, tag)
    console.print(f"built {tag} (base {base}): wheels {times['wheels']:.1f}s, "
                  f"image {times['image']:.1f}s")


COMMANDS = [
    stack_group,
    up,
    down,
    status,
    _process_fault("kill", "Kill a service's processes (SIGKILL); `restart` brings it back."),
    _process_fault(
        "pause", "Freeze a service (SIGSTOP): it holds connections but answers nothing."
    ),
    _process_fault("resume", "Unfreeze a paused service (SIGCONT)."),
    _process_fault("restart", "Stop a service and start it again, waiting until it is healthy."),
    _process_fault("stop", "Stop a service gracefully (SIGTERM); `start` brings it back."),
    _process_fault("start", "Start a stopped or killed service, waiting until it is healthy."),
    cpu,
    disconnect,
    connect,
]
