"""The compose backend: the same stack as containers, from stack/compose.yaml.

`docker compose` (v2) or `docker-compose` (v1), whichever exists, starts and stops the
project (`-p PROJECT -f stack/compose.yaml`); the Docker SDK does the process faults (kill,
pause/unpause, restart, CPU limits, network disconnects) and reads container state.

Addresses: inside the project network services reach each other by name through the
toxiproxy service, exactly as the compose file says. From the host, every service's
health/admin port is published on 127.0.0.1 with the same number, so the state written
here holds host URLs (the x-simctl addresses with the service name replaced by
127.0.0.1, as for the local backend) and the rest of the CLI works unchanged. Addresses
that only containers use (the blackhole's hole, a dyno's proxy) stay container addresses.

Each service's `pid` in the state is its container's main process as seen by the host
(docker inspect State.Pid), so code that checks processes keeps working on a Linux host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from simctl.apps import compose_apps
from simctl.apps.config import saved_apps
from simctl.backends import procs, prometheus
from simctl.backends.health import HealthReport, probe, wait_healthy
from simctl.backends.local import DEFAULT_PROJECT, ServiceStatus
from simctl.backends.names import canonical
from simctl.backends.project import ProjectQueries
from simctl.backends.state import ProcessState, ProjectState, check_project, state_root
from simctl.errors import AddressInUse, InvalidInput, StackStartError
from simctl.faults.client import ToxiproxyClient
from simctl.stack.definition import StackDefinition, interpolate, load

TOXIPROXY_URL = "http://127.0.0.1:8474"
OFFICIAL_TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
PULL_TIMEOUT = 120.0
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class DockerUnavailable(StackStartError):
    """No Docker CLI, no compose, or no engine answering."""


def compose_command() -> list[str]:
    """`docker compose` when the v2 plugin exists, else `docker-compose` (v1)."""
    if shutil.which("docker"):
        probe_v2 = subprocess.run(["docker", "compose", "version"], capture_output=True,
                                  timeout=30, check=False)
        if probe_v2.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise DockerUnavailable("neither `docker compose` nor `docker-compose` is installed "
                            "(see docs/docker.md or run scripts/docker-setup.sh)")


def docker_client() -> Any:
    try:
        import docker  # noqa: PLC0415 (the docker extra)
    except ImportError:
        raise DockerUnavailable("the Docker SDK is missing: pip install 'simctl[docker]'") \
            from None
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # DockerException, connection refused, permission denied
        reason = " ".join(str(exc).split())[:200]
        raise DockerUnavailable(f"no Docker engine answers ({reason}); start dockerd or "
                                "run scripts/docker-setup.sh") from None
    return client


def _pulled(images: Any, reference: str) -> bool:
    """Pull ``reference``; False when no registry answers (an offline machine)."""
    repository, _, tag = reference.rpartition(":")
    try:
        images.pull(repository, tag=tag)
    except Exception:  # APIError: no such host, unauthorised, timeout
        return False
    return True


class ComposeBackend(ProjectQueries):
    up_hint = "simctl up --backend compose"
    name = "compose"
    prometheus = False  # `up --prometheus`: also stack/compose.prometheus.yaml

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        *,
        timing: str = "heroku",
        port_offset: int = 0,
        toxiproxy_url: str | None = None,
        stack_dir: Path | None = None,
        start_timeout: float = 120.0,
        apps: list[Any] | None = None,
    ) -> None:
        self.project = check_project(project)
        self.apps = list(apps or [])  # simctl.apps.config.AppSpec with an image (docs/apps.md)
        self.timing = timing
        if port_offset:
            raise InvalidInput("--port-offset is not supported by the compose backend "
                               "(published ports are fixed in stack/compose.yaml)")
        if toxiproxy_url:
            raise InvalidInput("--toxiproxy-url is not supported by the compose backend "
                               "(set SIMCTL_TOXIPROXY_IMAGE to choose the Toxiproxy image)")
        self.port_offset = 0
        self.stack_dir = stack_dir
        self.start_timeout = start_timeout
        self._docker: Any = None
        self._toxiproxy_image: str | None = None
        self.notices: list[str] = []  # said to the user once `up` returns
        self.image = os.environ.get("SIMCTL_IMAGE") or "simctl:latest"
        self._prometheus_env: dict[str, str] = {}  # where its prometheus.yml is, as whom

    # -- definition and helpers --------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {**os.environ, "SIMCTL_TIMING": self.timing, "SIMCTL_PROJECT": self.project,
                "SIMCTL_TOXIPROXY_IMAGE": self.toxiproxy_image(), **self._prometheus_env}

    def toxiproxy_image(self, pull: bool = False) -> str:
        """SIMCTL_TOXIPROXY_IMAGE when set; else the official image when the engine has it
        (or, with ``pull``, can pull it); else the simctl image, whose entry point runs
        the embedded server with toxiproxy-server's flags (docs/docker.md)."""
        chosen = os.environ.get("SIMCTL_TOXIPROXY_IMAGE")
        if chosen:
            return chosen
        if self._toxiproxy_image is None:
            images = self.docker().images
            try:
                images.get(OFFICIAL_TOXIPROXY_IMAGE)
                self._toxiproxy_image = OFFICIAL_TOXIPROXY_IMAGE
            except Exception:  # ImageNotFound; pulled below only when asked
                if pull and _pulled(images, OFFICIAL_TOXIPROXY_IMAGE):
                    self._toxiproxy_image = OFFICIAL_TOXIPROXY_IMAGE
                elif pull:
                    self._toxiproxy_image = self.image
                else:
                    return self.image
        return self._toxiproxy_image

    def definition(self) -> StackDefinition:
        """Services with host URLs; proxies as the Toxiproxy container sees them."""
        env = self._env()
        definition = load(self.stack_dir, env=env)
        raw = _raw_compose(definition.directory)
        for name, spec in definition.services.items():
            meta = (raw.get("services", {}).get(name) or {}).get("x-simctl") or {}
            if "hole" in meta:  # used by routers, inside the network
                spec.labels["hole"] = interpolate(str(meta["hole"]), env)
        import json

        links = json.loads((definition.directory / "toxiproxy.json").read_text())
        definition.proxies = [
            {"name": p["name"], "listen": p.get("listen", ""), "upstream": p["upstream"],
             "enabled": p.get("enabled", True)}
            for p in links
        ]
        if self._apps():  # web.K reaches the app's $PORT in dyno-K's network namespace
            for spec in definition.by_role("dyno"):
                index = _index(str(spec.labels.get("dyno")))
                for proxy in definition.proxies:
                    if proxy["name"] == spec.labels.get("dyno"):
                        proxy["upstream"] = f"{spec.name}:{compose_apps.app_port(index)}"
        return definition

    def _apps(self) -> list[Any]:
        """The project's own apps: those `up` was given, else those its state recorded."""
        return self.apps or saved_apps(self.state())

    def _override(self) -> Path:
        return state_root() / self.project / compose_apps.OVERRIDE_FILE

    def compose_file(self) -> Path:
        return self.definition().directory / "compose.yaml"

    def _compose(self, *args: str, timeout: float = 300.0, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        env = {**self._env(), "COMPOSE_PROJECT_NAME": self.project}
        files = [self.compose_file()]
        if self._prometheus_env:
            files.append(files[0].with_name(prometheus.OVERRIDE_FILE))
        if self._override().is_file():
            files.append(self._override())
        command = [*compose_command(), "-p", self.project,
                   *(arg for file in files for arg in ("-f", str(file))), *args]
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            lines = [ln for ln in (result.stderr or result.stdout).strip().splitlines() if ln]
            tail = lines[-1] if lines else f"exit code {result.returncode}"
            shown = " ".join([*compose_command(), *args])
            raise StackStartError(f"`{shown}` failed: {tail}")
        return result

    def docker(self) -> Any:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    def containers(self, service: str | None = None) -> list[Any]:
        labels = [f"{PROJECT_LABEL}={self.project}"]
        if service:
            labels.append(f"{SERVICE_LABEL}={service}")
        return self.docker().containers.list(all=True, filters={"label": labels})

    def container(self, name: str) -> Any:
        found = self.containers(name)
        if not found:
            raise InvalidInput(f"{name}: no container in project {self.project!r}")
        return found[0]

    def networks(self) -> list[Any]:
        return self.docker().networks.list(filters={"label": f"{PROJECT_LABEL}={self.project}"})



    # -- up ------------------------------------------------------------------------------

    def up(self) -> ProjectState:
        self.docker()
        existing = self.state()
        if existing is not None:
            if existing.backend == "local" and any(
                procs.alive(p.pid, p.started) for p in existing.processes.values()
            ):
                raise StackStartError(f"project {self.project!r} is already up (local backend)")
            if existing.backend == self.name and any(
                c.status in ("running", "paused") for c in self.containers()
            ):
                raise StackStartError(f"project {self.project!r} is already up; "
                                      "`simctl down` first")
            existing.remove()
        try:
            self.docker().images.get(self.image)
        except Exception:
            raise StackStartError(f"image {self.image} does not exist; run `simctl stack build`") \
                from None
        self._check_apps()
        if self.prometheus:
            self._check_prometheus()
        self._check_ports()
        if self.toxiproxy_image(pull=True) == self.image \
                and not os.environ.get("SIMCTL_TOXIPROXY_IMAGE"):
            self.notices.append(f"{OFFICIAL_TOXIPROXY_IMAGE} cannot be pulled: the toxiproxy "
                                f"service runs the embedded server from {self.image}")
        definition = self.definition()
        state = ProjectState(
            project=self.project,
            backend=self.name,
            timing=self.timing,
            port_offset=0,
            toxiproxy_url=TOXIPROXY_URL,
            embedded_toxiproxy=True,
            started_at=time.time(),
        )
        state.apps = [app.to_dict() for app in self.apps]
        state.save()
        try:
            self._write_override()
            if self.prometheus:
                monitor = _raw_compose(definition.directory)["services"].get("monitor") or {}
                command = [interpolate(str(a), self._env()) for a in monitor.get("command", [])]
                self._prometheus_env = prometheus.compose_env(state, definition.directory,
                                                              command)
            self._compose("up", "-d", "--no-build", timeout=self.start_timeout + 60)
            for spec in definition.services.values():
                state.processes[spec.name] = ProcessState(
                    name=spec.name, pid=0, pgid=0, started=0.0, command=spec.command,
                    role=spec.role, health_url=spec.health_url, labels=dict(spec.labels),
                )
                self._refresh(state.processes[spec.name])
            if self.prometheus:
                state.processes[prometheus.SERVICE] = prometheus.compose_process()
                self._refresh(state.processes[prometheus.SERVICE])
            state.save()
            self._wait(state, list(state.processes))
            client = ToxiproxyClient(state.toxiproxy_url, timeout=10)
            present = client.proxies()
            missing = [p for p in definition.proxies if p["name"] not in present]
            if missing:
                client.populate(missing)
            for proxy in definition.proxies:  # the app's links (toxiproxy.json has dyno-K:74xx)
                if proxy["name"] in present and present[proxy["name"]].upstream \
                        != proxy["upstream"]:
                    client.update_proxy(proxy["name"], upstream=proxy["upstream"])
            state.endpoints = _endpoints(definition)
            if self.prometheus:
                state.endpoints[prometheus.SERVICE] = f"http://127.0.0.1:{prometheus.PORT}"
            for proc in state.processes.values():
                app = str(proc.labels.get("app", ""))
                if proc.role == "dyno" and app and app not in state.templates:
                    state.templates[app] = asdict(proc)
            state.complete = True
            state.save()
            if self.apps:
                self._start_relay(state)
                if self.apps[0].dynos < len(definition.by_role("dyno")):
                    self.scale(self.apps[0].name, self.apps[0].dynos)
            return state
        except BaseException:
            self._down(state)
            raise

    def _check_apps(self) -> None:
        """Before anything starts: the apps fit the compose file and their images exist."""
        if not self.apps:
            return
        definition = load(self.stack_dir, env=self._env())
        compose_apps.check(self.apps, len(definition.by_role("dyno")))
        for app in self.apps:
            try:
                self.docker().images.get(app.image)
            except Exception:  # ImageNotFound
                raise StackStartError(f"app {app.name!r}: image {app.image} does not exist "
                                      "(docker build or pull it first)") from None

    def _write_override(self) -> None:
        """The apps' override file in the state folder, or none (docs/apps.md)."""
        self._override().unlink(missing_ok=True)
        if not self.apps:
            return
        raw = _raw_compose(self.definition().directory)
        dynos = {name: spec.get("x-simctl") or {} for name, spec in raw["services"].items()
                 if (spec.get("x-simctl") or {}).get("role") == "dyno"}
        compose_apps.write_override(self._override().parent,
                                    compose_apps.override(self.apps[0], dynos, self.timing))

    def _start_relay(self, state: ProjectState) -> None:
        """The host process that follows the app's containers (simctl/apps/container_relay.py);
        `down` ends it by the project's owner mark."""
        app = self.apps[0]
        command = [sys.executable, "-m", "simctl.apps.container_relay", "--project",
                   self.project, "--app", app.name, "--logplex-url",
                   "http://127.0.0.1:21301/logs", "--sync-url", self.url_of("sync"),
                   "--timing", self.timing]
        procs.spawn(command, procs.owner_env(state.folder),
                    state.folder / "logs" / "container-relay.log")

    def _check_ports(self) -> None:
        """Before anything starts: every port compose.yaml publishes is free (another stack,
        local or compose, may hold them; compose itself would only say it failed)."""
        raw = _raw_compose(self.definition().directory)
        for port, service in sorted(_published_ports(raw).items()):
            if procs.port_taken(port):
                raise AddressInUse(f"port {port} ({service}) is already in use on 127.0.0.1; "
                                   "stop what uses it (another stack? `simctl down`)")

    def _check_prometheus(self) -> None:
        """Before anything starts: the image has the binary, and its port is free."""
        prometheus.image_version(self.docker(), self.image)
        if procs.port_taken(prometheus.PORT):
            raise AddressInUse(f"port {prometheus.PORT} (prometheus) is already in use on "
                               "127.0.0.1; stop what uses it")

    def _refresh(self, proc: ProcessState) -> None:
        """Record the container's main process (host pid) for this service."""
        try:
            container = self.container(proc.name)
            container.reload()
            pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        except InvalidInput:
            pid = 0
        proc.pid = proc.pgid = pid
        proc.started = procs.started_at(pid) if pid else 0.0
        proc.log = f"docker logs {self.project} {proc.name}"

    def _running(self, name: str) -> bool:
        try:
            return self.container(name).status in ("running", "paused")
        except InvalidInput:
            return False

    def _wait(self, state: ProjectState, names: list[str]) -> None:
        urls = {n: url for n in names if (url := state.processes[n].health_url)}
        failed = wait_healthy(urls, self.start_timeout,
                              alive=self._running)
        if failed:
            name, report = next(iter(sorted(failed.items())))
            tail = self._log_tail(name)
            hint = f"; last log line: {tail}" if tail else ""
            raise StackStartError(f"{canonical(state.processes[name])} did not become healthy: "
                                  f"{report.status} "
                                  f"{report.reason}".rstrip() + hint)

    def _log_tail(self, name: str) -> str:
        try:
            text = self.container(name).logs(tail=5).decode(errors="replace").strip()
        except Exception:
            return ""
        return text.splitlines()[-1][-300:] if text else ""

    # -- down ----------------------------------------------------------------------------

    def down(self) -> list[str]:
        state = self.state()
        if state is None:
            state = ProjectState(self.project, self.name, self.timing, 0, TOXIPROXY_URL, True)
        return self._down(state)

    def _down(self, state: ProjectState) -> list[str]:
        """`compose down -v --remove-orphans`, then check (and clean) what is left."""
        names = sorted(state.processes) or sorted(
            c.labels.get(SERVICE_LABEL, c.name) for c in self.containers()
        )
        procs.terminate_owned(state.folder)  # the apps' relay first: it would restart them
        for container in self.containers():
            if container.status == "paused":  # compose v1 cannot stop a paused container
                container.unpause()
        self._compose("down", "-v", "--remove-orphans", "--timeout", "3", check=False)
        for container in self.containers():
            container.remove(force=True, v=True)
        for network in self.networks():
            network.remove()
        left = self.leftovers()
        if left:
            raise StackStartError(f"project {self.project!r}: still left after down: "
                                  + ", ".join(left))
        self._override().unlink(missing_ok=True)
        state.remove()
        return names

    def leftovers(self) -> list[str]:
        """Containers and networks of the project that still exist."""
        return ([f"container {c.name}" for c in self.containers()]
                + [f"network {n.name}" for n in self.networks()])

    # -- status and process faults -------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        state = self.require_state()
        out = []
        by_service = {c.labels.get(SERVICE_LABEL): c for c in self.containers()}
        for proc in state.processes.values():
            container = by_service.get(proc.name)
            cstatus = container.status if container is not None else "removed"
            running = cstatus in ("running", "paused")
            paused = cstatus == "paused" or (running and proc.paused)
            if not running:
                ended = (proc.ended_by or "killed") if proc.stopped else cstatus
                health = HealthReport(False, ended)
            elif paused:
                how = "docker pause" if cstatus == "paused" else "SIGSTOP"
                health = HealthReport(False, "paused", how)
            elif proc.health_url:
                health = probe(proc.health_url)
            else:
                health = HealthReport(True, "running")
            out.append(ServiceStatus(proc.name, proc.role, proc.pid, running, paused, health))
        return out


    def kill(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        container = self.container(name)
        self._unfreeze(container, proc)
        if container.status in ("running", "paused"):
            container.kill()
        proc.stopped, proc.paused, proc.ended_by = True, False, "killed"
        state.save()

    def pause(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        container = self.container(name)
        if container.status != "running" or proc.paused:
            raise InvalidInput(f"{canonical(proc)} is not running")
        try:
            container.pause()
        except Exception:  # APIError "unable to freeze": no cgroup freezer (nested engines)
            # SIGSTOP from outside the container stops its main process all the same
            # (only signals sent from inside its pid namespace spare pid 1).
            container.kill(signal="SIGSTOP")
        proc.paused = True
        state.save()

    def resume(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        self._unfreeze(self.container(name), proc)
        proc.paused = False
        state.save()

    @staticmethod
    def _unfreeze(container: Any, proc: ProcessState) -> None:
        """Undo `pause` in the way it was done (docker pause, or SIGSTOP)."""
        if container.status == "paused":
            container.unpause()
        elif proc.paused and container.status == "running":
            container.kill(signal="SIGCONT")

    def restart(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        container = self.container(name)
        self._unfreeze(container, proc)
        container.restart(timeout=3)
        proc.stopped, proc.paused = False, False
        self._refresh(proc)
        state.save()
        self._wait(state, [name])

    def stop(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        container = self.container(name)
        self._unfreeze(container, proc)
        container.stop(timeout=3)
        proc.stopped, proc.paused, proc.ended_by = True, False, "stopped"
        state.save()

    def start(self, name: str) -> None:
        state = self.require_state()
        proc = self._process(state, name)
        self.container(name).start()
        proc.stopped = False
        self._refresh(proc)
        state.save()
        self._wait(state, [name])

    def limit_cpu(self, name: str, cpus: float | None) -> None:
        """Starve a service of CPU (e.g. 0.05 of one core for TLS saturation); None lifts it."""
        proc = self._process(self.require_state(), name)
        quota = int(cpus * 100_000) if cpus else -1
        try:
            self.container(name).update(cpu_period=100_000, cpu_quota=quota)
        except Exception as exc:  # docker APIError: e.g. cgroup v1 without CFS quota
            raise _refused(canonical(proc), exc) from None

    def partition(self, name: str, connected: bool = False) -> None:
        """Disconnect a service from the project network (a partition), or reconnect it."""
        proc = self._process(self.require_state(), name)
        container = self.container(name)
        network = self._default_network()
        try:
            if connected:
                network.connect(container, aliases=[name])
            else:
                network.disconnect(container, force=True)
        except Exception as exc:  # docker APIError: already (dis)connected, not running
            raise _refused(canonical(proc), exc) from None

    def _default_network(self) -> Any:
        for network in self.networks():
            if network.name.endswith("default"):
                return network
        raise InvalidInput(f"project {self.project!r} has no default network")



    # -- scale and routes ----------------------------------------------------------------

    def dyno_address(self, dyno: str, address: str) -> str:
        if address == "blackhole":
            return self.blackhole_address()
        if address == "proxy":
            listen = ToxiproxyClient(self.require_state().toxiproxy_url).proxy(dyno).listen
            return "toxiproxy:" + listen.rsplit(":", 1)[1]
        if not re.fullmatch(r"[\w.-]+:\d{1,5}", address):
            raise InvalidInput(f"{address!r}: expected HOST:PORT, blackhole or proxy")
        return address

    def scale(self, app: str, count: int) -> list[str]:
        """Run `count` dynos of `app`, among the dyno services compose.yaml defines."""
        state = self.require_state()
        defined = sorted(
            (s for s in self.definition().by_role("dyno") if s.labels.get("app") == app),
            key=lambda s: _index(str(s.labels.get("dyno"))),
        )
        if not defined:
            raise InvalidInput(f"no app {app!r} in project {self.project!r}")
        if count > len(defined):
            raise InvalidInput(f"the compose backend runs at most {len(defined)} dynos of "
                               f"{app!r} (the dyno services of stack/compose.yaml)")
        paired = (lambda name: [compose_apps.app_service(name)]) if self._apps() \
            else (lambda name: [])  # an app dyno's container goes and comes with it
        for spec in defined[:count]:
            if spec.name not in state.processes or not self._running(spec.name):
                self._compose("up", "-d", "--no-deps", "--no-build", spec.name,
                              *paired(spec.name))
                state.processes[spec.name] = ProcessState(
                    name=spec.name, pid=0, pgid=0, started=0.0, command=spec.command,
                    role=spec.role, health_url=spec.health_url, labels=dict(spec.labels))
                self._refresh(state.processes[spec.name])
                state.save()
                self._wait(state, [spec.name])
        for spec in defined[count:]:
            if spec.name in state.processes:
                self._compose("rm", "-s", "-f", *paired(spec.name), spec.name, check=False)
                del state.processes[spec.name]
        state.save()
        names = [str(s.labels["dyno"]) for s in defined[:count]]
        client = ToxiproxyClient(state.toxiproxy_url)
        self._match_dyno_proxies(client, names, [str(s.labels["dyno"]) for s in defined[count:]])
        proxies = client.proxies()
        dynos = [{"name": n, "address": "toxiproxy:" + proxies[n].listen.rsplit(":", 1)[1],
                  "state": "up"} for n in names if n in proxies]
        from simctl.backends.http import call

        call("POST", f"{self.url_of('sync')}/apps/{app}/dynos", {"dynos": dynos})
        return names

    def _match_dyno_proxies(self, client: ToxiproxyClient, running: list[str],
                            removed: list[str]) -> None:
        """A removed dyno's link goes too, as on the local backend: a router that still
        routes to it gets connection refused (and quarantines it), not a proxy that
        accepts and hangs up. A dyno that runs again gets its link back from
        toxiproxy.json."""
        present = client.proxies()
        for name in removed:
            if name in present:
                client.delete_proxy(name)
        links = {p["name"]: p for p in self.definition().proxies}
        missing = [links[n] for n in running if n not in present and n in links]
        if missing:
            client.populate(missing)

    def paused_or_down(self) -> list[str]:
        state = self.state()
        if state is None:
            return []
        by_service = {c.labels.get(SERVICE_LABEL): c for c in self.containers()}
        out = []
        for name in state.processes:
            container = by_service.get(name)
            if container is None or container.status != "running":
                out.append(name)
        return out


def _refused(name: str, exc: Exception) -> InvalidInput:
    """The engine refused an action on ``name``: its reason, on one line."""
    reason = getattr(exc, "explanation", None) or str(exc)
    return InvalidInput(f"{name}: {' '.join(str(reason).split())[:200]}")


def _index(dyno: str) -> int:
    return int(dyno.rsplit(".", 1)[1]) if "." in dyno else 0


def _published_ports(raw: dict[str, Any]) -> dict[int, str]:
    """Host ports of every `ports:` entry ("127.0.0.1:7100:7100", "127.0.0.1:21201-21202:...")
    and the service that publishes each."""
    out = {}
    for name, spec in (raw.get("services") or {}).items():
        for entry in (spec or {}).get("ports") or []:
            parts = str(entry).split(":")
            if len(parts) < 2:
                continue  # a container port only: the engine picks the host port
            first, _, last = parts[-2].partition("-")
            for port in range(int(first), int(last or first) + 1):
                out[port] = name
    return out


def _raw_compose(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "compose.yaml").read_text()) or {}


def _endpoints(definition: StackDefinition) -> dict[str, str]:
    out = {}
    for spec in definition.services.values():
        for key, value in spec.labels.get("endpoints", {}).items():
            out[key] = value
    return out
