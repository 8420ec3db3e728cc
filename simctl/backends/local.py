"""The local backend: every service a child process on 127.0.0.1, links through the fault plane.

`up` checks ports, starts the fault plane, loads the link map, starts every service at
once and waits for all of them to be healthy. State is written as processes start, so
`down` (from any shell, even after simctl was killed) ends every process group it
lists. A failed or interrupted `up` ends what it started before returning.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from simctl.apps import stack as apps_stack
from simctl.apps.config import saved_apps
from simctl.backends import fault_plane, procs, prometheus
from simctl.backends.base import ServiceStatus
from simctl.backends.health import HealthReport, probe, wait_healthy
from simctl.backends.names import canonical
from simctl.backends.project import ProjectQueries
from simctl.backends.rotation import out_of_rotation
from simctl.backends.state import ProcessState, ProjectState, check_project
from simctl.errors import AddressInUse, InvalidInput, SimctlError, StackStartError
from simctl.faults.client import ToxiproxyClient
from simctl.platform.timing import boot_timeout
from simctl.stack.definition import ServiceSpec, StackDefinition, load

DEFAULT_PROJECT = "simctl"

__all__ = ["DEFAULT_PROJECT", "LocalBackend", "ServiceStatus"]  # ServiceStatus: backends.base


class LocalBackend(ProjectQueries):
    name = "local"
    prometheus = False  # `up --prometheus`: a real Prometheus too (backends/prometheus.py)

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        *,
        timing: str = "heroku",
        port_offset: int = 0,
        toxiproxy_url: str | None = None,
        stack_dir: Path | None = None,
        start_timeout: float = 30.0,
        apps: list[Any] | None = None,
    ) -> None:
        self.project = check_project(project)
        self.apps = list(apps or [])  # simctl.apps.config.AppSpec: the project's own apps
        self.timing = timing
        self.port_offset = port_offset
        self.external_toxiproxy = toxiproxy_url
        self.stack_dir = stack_dir
        self.start_timeout = start_timeout
        self.notices: list[str] = []  # said to the user once `up` returns

    # -- definition ------------------------------------------------------------------

    def definition(self) -> StackDefinition:
        env = {"SIMCTL_TIMING": self.timing, "SIMCTL_PROJECT": self.project}
        import os

        definition = load(self.stack_dir, env={**os.environ, **env},
                          port_offset=self.port_offset)
        return apps_stack.apply(definition, self.apps or saved_apps(self.state()),
                                self.port_offset)



    # -- up --------------------------------------------------------------------------

    def up(self) -> ProjectState:
        existing = self.state()
        if existing is not None and not existing.complete and not _up_running(existing):
            self._stop_all(existing)  # left by a killed `up`: end what it started
            existing = None
        if existing is not None:
            if any(procs.alive(p.pid, p.started) for p in existing.processes.values()):
                raise StackStartError(
                    f"project {self.project!r} is already up; `simctl down` first, or use "
                    "--project NAME with --port-offset N for a second stack"
                )
            procs.terminate_owned(existing.folder)  # forked by a killed `up`, unrecorded
            existing.remove()  # stale: every process is gone
        definition = self.definition()
        services = [s for s in definition.services.values() if s.role != "toxiproxy"]
        toxiproxy_spec = next(iter(definition.by_role("toxiproxy")), None)
        # A missing prometheus binary is said before any taken port: no offset helps it.
        prometheus_binary = prometheus.check_local(self.port_offset) if self.prometheus else ""
        self._check_ports(definition, toxiproxy_spec)
        url = self.external_toxiproxy or _toxiproxy_url(toxiproxy_spec)
        state = ProjectState(
            project=self.project,
            backend=self.name,
            timing=self.timing,
            port_offset=self.port_offset,
            toxiproxy_url=url,
            embedded_toxiproxy=self.external_toxiproxy is None,
            started_at=time.time(),
            apps=[app.to_dict() for app in self.apps],
            up_pid=os.getpid(),
        )
        state.save()
        if self.apps:  # a Procfile process has the platform's boot timeout to bind $PORT
            self.start_timeout = max(self.start_timeout, boot_timeout(self.timing) + 5)
        self._zygote = procs.Zygote(env=procs.owner_env(state.folder))
        try:
            self._start_fault_plane(state, toxiproxy_spec, definition)
            for wave in _waves(services):
                for spec in wave:
                    self._spawn(state, spec)
                state.save()
                self._wait(state, [s.name for s in wave])
            state.endpoints = _endpoints(definition)
            if prometheus_binary:  # last: every target answers its first scrape
                self._start_prometheus(state, prometheus_binary, definition)
            for proc in state.processes.values():
                app = str(proc.labels.get("app", ""))
                if proc.role == "dyno" and app and app not in state.templates:
                    state.templates[app] = asdict(proc)
            state.complete = True
            state.save()
            return state
        except BaseException:
            self._stop_all(state)
            raise
        finally:
            self._zygote.close()
            self._zygote = None

    def _check_ports(self, definition: StackDefinition, toxiproxy: ServiceSpec | None) -> None:
        wanted: dict[int, str] = {}
        for spec in definition.services.values():
            if spec.role == "toxiproxy" and self.external_toxiproxy:
                continue
            for port in spec.ports():
                wanted[port] = spec.name
        for proxy in definition.proxies:
            port = int(proxy["listen"].rsplit(":", 1)[1])
            if port:
                wanted[port] = f"proxy {proxy['name']}"
        for port, owner in sorted(wanted.items()):
            if procs.port_taken(port):
                raise AddressInUse(
                    f"port {port} ({owner}) is already in use on 127.0.0.1; stop what uses "
                    "it or pass --port-offset N"
                )

    def _start_fault_plane(
        self, state: ProjectState, spec: ServiceSpec | None, definition: StackDefinition
    ) -> None:
        if state.embedded_toxiproxy:
            if spec is None:
                raise InvalidInput("stack/compose.yaml has no service with role toxiproxy")
            self._spawn(state, spec)
            state.save()
            self._wait(state, [spec.name])
        client = ToxiproxyClient(state.toxiproxy_url, timeout=10)
        client.populate(definition.proxies)

    def _start_prometheus(self, state: ProjectState, binary: str,
                          definition: StackDefinition) -> None:
        spec = prometheus.local_spec(state, binary, definition.directory)
        self._spawn(state, spec)
        state.save()
        self._wait(state, [spec.name])
        state.endpoints.update(spec.labels["endpoints"])

    _zygote: procs.Zygote | None = None

    def _spawn(self, state: ProjectState, spec: ServiceSpec) -> ProcessState:
        log = state.folder / "logs" / f"{spec.name}.log"
        env = {**spec.environment, **procs.owner_env(state.folder)}  # `down` finds it by this
        if self._zygote is not None and self._zygote.can_run(spec.command):
            pid = self._zygote.spawn(spec.command, env, log)
        else:
            pid = procs.spawn(spec.command, env, log).pid
        entry = ProcessState(
            name=spec.name,
            pid=pid,
            pgid=pid,
            started=procs.started_at(pid),
            command=spec.command,
            role=spec.role,
            health_url=spec.health_url,
            labels=spec.labels,
            log=str(log),
        )
        state.processes[spec.name] = entry
        return entry

    def _wait(self, state: ProjectState, names: list[str]) -> None:
        urls = {n: url for n in names if (url := state.processes[n].health_url)}
        failed = wait_healthy(
            urls,
            self.start_timeout,
            alive=lambda n: procs.alive(state.processes[n].pid, state.processes[n].started),
        )
        if failed:
            name, report = next(iter(sorted(failed.items())))
            tail = _log_tail(state.processes[name].log)
            if apps_stack.is_app_dyno(state.processes[name].labels) and tail.startswith("error: "):
                # R10, or why it exited; the dyno's log keeps its heroku[web.N] lines
                raise StackStartError(f"{tail.removeprefix('error: ')} (platform log: "
                                      f"{state.processes[name].log})")
            hint = f"; last log line: {tail}" if tail else ""
            others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise StackStartError(
                f"{canonical(state.processes[name])} did not become healthy: "
                f"{report.status} {report.reason}".rstrip()
                + others
                + hint
            )

    # -- down ------------------------------------------------------------------------

    def down(self) -> list[str]:
        state = self.state()
        if state is None:
            return []
        names = self._stop_all(state)
        return names

    def _stop_all(self, state: ProjectState) -> list[str]:
        if state.embedded_toxiproxy is False and state.complete:
            self._clear_external_proxies(state)
        procs.terminate_groups([p.pgid for p in state.processes.values()])
        procs.terminate_owned(state.folder)  # what was forked but not yet recorded
        names = sorted(state.processes)
        state.remove()
        fault_plane.forget(state)
        return names

    def _clear_external_proxies(self, state: ProjectState) -> None:
        """With a real Toxiproxy we do not own the server: remove only our proxies."""
        client = ToxiproxyClient(state.toxiproxy_url, timeout=5)
        try:
            for proxy in self.definition().proxies:
                try:
                    client.delete_proxy(proxy["name"])
                except Exception:  # already gone, or the server is down
                    pass
        except Exception:
            pass

    # -- status and process faults ---------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        state = self.require_state()
        out = []
        for proc in state.processes.values():
            # killed on purpose is down at once, though its process may take a moment to go
            running = not proc.stopped and procs.alive(proc.pid, proc.started)
            if not running:
                ended = (proc.ended_by or "killed") if proc.stopped else "exited"
                health = HealthReport(False, ended)
            elif proc.paused:
                health = HealthReport(False, "paused", "SIGSTOP")
            elif proc.health_url:
                health = probe(proc.health_url)
                if proc.role == "toxiproxy" and health.ok:
                    health = self._fault_plane_health(state, health)
            else:
                health = HealthReport(True, "running")
            out.append(ServiceStatus(proc.name, proc.role, proc.pid, running, proc.paused, health))
        return out

    def _fault_plane_health(self, state: ProjectState, health: HealthReport) -> HealthReport:
        """Answering is not enough: a fault plane without the stack's links cuts them."""
        try:
            lost = fault_plane.missing(ToxiproxyClient(state.toxiproxy_url, timeout=2),
                                       self._links(state)[1])
        except SimctlError as exc:
            return HealthReport(False, "unreachable", str(exc))
        if not lost:
            return health
        shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        return HealthReport(False, "degraded", f"missing proxies: {shown}")


    def kill(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        self._save_links(state, proc)
        procs.signal_group(proc.pgid, signal.SIGKILL)
        proc.stopped, proc.paused, proc.ended_by = True, False, "killed"
        state.save()

    def pause(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        # a killed process may take signals a moment longer: what killed it says it is down
        if proc.stopped or not procs.alive(proc.pid, proc.started) \
                or not procs.signal_group(proc.pgid, signal.SIGSTOP):
            raise InvalidInput(f"{canonical(proc)} is not running")
        proc.paused = True
        state.save()

    def resume(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        procs.signal_group(proc.pgid, signal.SIGCONT)
        proc.paused = False
        state.save()

    def restart(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        self._save_links(state, proc)
        with out_of_rotation(state, proc):  # a dyno: no request meets it half-restarted
            procs.terminate_groups([proc.pgid])
            self._start(state, proc)

    def stop(self, name: str) -> None:
        """Stop a service gracefully (SIGTERM, then SIGKILL); `start` brings it back."""
        state = self.require_state()
        proc = self._process(state, name)
        self._save_links(state, proc)
        procs.terminate_groups([proc.pgid])
        proc.stopped, proc.paused, proc.ended_by = True, False, "stopped"
        state.save()

    def start(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        if procs.alive(proc.pid, proc.started) and not proc.stopped:
            raise InvalidInput(f"{canonical(proc)} is already running")
        self._start(state, proc)

    def _start(self, state: ProjectState, proc: ProcessState) -> None:
        spec = ServiceSpec(proc.name, proc.command, {}, [], proc.health_url, proc.role, proc.labels)
        self._spawn(state, spec)
        state.save()
        self._wait(state, [proc.name])
        if proc.role == "toxiproxy":  # it comes back empty: the stack's links, then faults
            link_map, expected = self._links(state)
            fault_plane.restore(state, ToxiproxyClient(state.toxiproxy_url, timeout=10),
                                link_map, expected)

    def _links(self, state: ProjectState) -> tuple[list[dict[str, Any]], set[str]]:
        """The link map, and the names of the proxies the stack needs now."""
        self.port_offset, self.timing = state.port_offset, state.timing  # as `up` had them
        definition = self.definition()
        defined_dynos = {str(s.labels["dyno"]) for s in definition.services.values()
                         if s.role == "dyno" and s.labels.get("dyno")}
        return definition.proxies, fault_plane.expected_names(state, definition.proxies,
                                                              defined_dynos)

    def _save_links(self, state: ProjectState, proc: ProcessState) -> None:
        if proc.role != "toxiproxy":
            return
        if not proc.paused and procs.alive(proc.pid, proc.started):
            fault_plane.save(state, ToxiproxyClient(state.toxiproxy_url, timeout=2))
        else:  # nothing to save: an older save must not come back on the next start
            fault_plane.forget(state)

    def limit_cpu(self, name: str, cpus: float | None) -> None:
        raise InvalidInput("a CPU limit needs the compose backend (a container's CPU quota); "
                           "on the local backend use a latency toxic or `simctl pause`")

    def partition(self, name: str, connected: bool = False) -> None:
        raise InvalidInput("disconnecting a service needs the compose backend (a container "
                           "network); on the local backend use `simctl disable PROXY`")



    # -- scale and routes ------------------------------------------------------------

    def dyno_address(self, dyno: str, address: str) -> str:
        """Resolve `blackhole` and `proxy` to addresses; anything else is host:port."""
        if address == "blackhole":
            return self.blackhole_address()
        if address == "proxy":
            proxy = ToxiproxyClient(self.require_state().toxiproxy_url).proxy(dyno)
            return proxy.listen
        if not re.fullmatch(r"[\w.-]+:\d{1,5}", address):
            raise InvalidInput(f"{address!r}: expected HOST:PORT, blackhole or proxy")
        return address

    def scale(self, app: str, count: int) -> list[str]:
        """Run `count` dynos of `app`: start or stop processes, proxies and routes."""
        state = self.require_state()
        current = sorted(self.find("dyno", app=app), key=lambda p: _dyno_index(p))
        saved = state.templates.get(app)
        if not current and saved is None:
            raise InvalidInput(f"no app {app!r} in project {self.project!r}")
        client = ToxiproxyClient(state.toxiproxy_url)
        template = current[0] if current else ProcessState(**(saved or {}))
        if count > len(current):
            assert template is not None
            for index in range(len(current) + 1, count + 1):
                self._add_dyno(state, client, template, app, index)
        keep = [p for p in current if _dyno_index(p) <= count]
        self._publish_dynos(state, client, app, count)
        for proc in current:
            if _dyno_index(proc) > count:
                procs.terminate_groups([proc.pgid])
                del state.processes[proc.name]
                try:
                    client.delete_proxy(str(proc.labels["dyno"]))
                except Exception:  # already gone
                    pass
        state.save()
        return [str(p.labels["dyno"]) for p in keep] + [
            f"{app}.{i}" for i in range(len(current) + 1, count + 1)
        ]

    def _add_dyno(self, state: ProjectState, client: ToxiproxyClient, template: ProcessState,
                  app: str, index: int) -> None:
        name = f"{app}.{index}"
        port = 7400 + index + state.port_offset
        proxy_port = 21400 + index + state.port_offset
        if apps_stack.is_app_dyno(template.labels):
            spec, port, proxy_port = apps_stack.scaled_dyno(
                template.command, template.labels, index, state.port_offset)
        for taken in (port, proxy_port):
            if procs.port_taken(taken):
                raise AddressInUse(f"port {taken} (dyno {name}) is already in use")
        if not apps_stack.is_app_dyno(template.labels):
            command = list(template.command)
            for flag, value in (("--port", str(port)), ("--name", name)):
                command[command.index(flag) + 1] = value
            health = f"http://127.0.0.1:{port}/health"
            labels = dict(template.labels, dyno=name)
            spec = ServiceSpec(f"dyno-{index}", command, {}, [], health, "dyno", labels)
        client.create_proxy(name, f"127.0.0.1:{port}", listen=f"127.0.0.1:{proxy_port}")
        self._spawn(state, spec)
        state.save()
        self._wait(state, [spec.name])

    def _publish_dynos(self, state: ProjectState, client: ToxiproxyClient, app: str,
                       count: int) -> None:
        proxies = client.proxies()
        dynos = []
        for index in range(1, count + 1):
            name = f"{app}.{index}"
            if name in proxies:
                dynos.append({"name": name, "address": proxies[name].listen, "state": "up"})
        from simctl.backends.http import call

        call("POST", f"{self.url_of('sync')}/apps/{app}/dynos", {"dynos": dynos})

    def paused_or_down(self) -> list[str]:
        """Services left paused or dead: the residue a scenario must not leave."""
        state = self.state()
        if state is None:
            return []
        return [
            p.name
            for p in state.processes.values()
            if p.paused or p.stopped or not procs.alive(p.pid, p.started)
        ]


def _up_running(state: ProjectState) -> bool:
    """Is the `up` that wrote this (incomplete) state still at work? Its pid must run and
    be older than the state: a recycled pid is younger."""
    started = procs.started_at(state.up_pid) if state.up_pid else 0.0
    return bool(started) and started <= state.started_at and procs.alive(state.up_pid)


def _dyno_index(proc: ProcessState) -> int:
    return int(str(proc.labels.get("dyno", "x.0")).rsplit(".", 1)[1])


def _waves(services: list[ServiceSpec]) -> list[list[ServiceSpec]]:
    """Group services so each starts once what it depends on is healthy."""
    names = {s.name for s in services}
    done: set[str] = set()
    waves = []
    remaining = list(services)
    while remaining:
        wave = [s for s in remaining if all(d in done or d not in names for d in s.depends_on)]
        if not wave:  # a cycle: start the rest together rather than never
            wave = remaining
        waves.append(wave)
        done |= {s.name for s in wave}
        remaining = [s for s in remaining if s.name not in done]
    return waves


def _toxiproxy_url(spec: ServiceSpec | None) -> str:
    if spec is None or not spec.health_url:
        raise InvalidInput("stack/compose.yaml: the toxiproxy service needs x-simctl.health")
    return spec.health_url.rsplit("/", 1)[0]


def _endpoints(definition: StackDefinition) -> dict[str, str]:
    out = {}
    for spec in definition.services.values():
        for key, value in spec.labels.get("endpoints", {}).items():
            out[key] = value
    for proxy in definition.proxies:
        out[f"proxy {proxy['name']}"] = proxy["listen"]
    return out


def _log_tail(path: str) -> str:
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""
