"""`simctl up --prometheus`: a real Prometheus beside the stack, with the stack's alert rules.

It scrapes the same targets as the embedded evaluator (the monitor service's `--target`
list, with its `job` and `instance` labels) at the same interval (1 s on `--timing fast`, 5 s
on `heroku`), evaluates stack/alerts.yaml (as the fast stack evaluates it, on `fast`) and
serves its own HTTP API on 127.0.0.1 (port 7900, plus the port offset locally).

The local backend runs the `prometheus` binary from PATH; the compose backend a
`prometheus` service (stack/compose.prometheus.yaml) from simctl:latest, into which
`simctl stack build` copies the host's binary. Its prometheus.yml is written into the
project's state folder (0600). docs/alerts.md, "Real Prometheus", has the details.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from simctl.backends.state import ProcessState, ProjectState
from simctl.errors import AddressInUse, StackStartError

PORT = 7900  # not 9090: Debian's own prometheus service may hold that one
SERVICE = "prometheus"
IMAGE_LABEL = "org.simctl.prometheus"  # on simctl:latest: the version of the binary inside
IMAGE_BINARY = "/opt/prometheus/prometheus"
OVERRIDE_FILE = "compose.prometheus.yaml"
INTERVALS = {"fast": "1s", "heroku": "5s"}
# Not scraped, as the evaluator does not scrape them: the fault plane (no /metrics without
# -proxy-metrics), the blackhole (an empty one), the evaluator and Prometheus themselves.
UNSCRAPED_ROLES = {"toxiproxy", "blackhole", "monitor", SERVICE}


@dataclass(frozen=True)
class Target:
    job: str  # the service's role: router, dyno, logplex, ...
    instance: str  # router.1, web.2, main, ... (as the embedded evaluator names them)
    address: str  # host:port of its /metrics
    path: str = "/metrics"


def find_binary() -> str:
    """The `prometheus` on PATH, or a one-line reason to stop (exit 3)."""
    found = shutil.which("prometheus")
    if found is None:
        raise StackStartError("--prometheus needs the `prometheus` binary on PATH "
                              "(Debian: apt-get install --no-install-recommends prometheus)")
    return found


def interval(timing: str) -> str:
    return INTERVALS.get(timing, INTERVALS["heroku"])


def config_folder(state: ProjectState) -> Path:
    return state.folder / SERVICE


def monitor_targets(command: list[str]) -> list[Target]:
    """The embedded evaluator's own targets (its `--target JOB/INSTANCE=URL` options), so
    both scrape exactly the same series under the same labels."""
    out = []
    for flag, value in zip(command, command[1:], strict=False):
        if flag != "--target":
            continue
        name, _, url = value.partition("=")
        job, _, instance = name.partition("/")
        parts = urlsplit(url)
        out.append(Target(job, instance or job, parts.netloc, parts.path or "/metrics"))
    return out


def role_targets(state: ProjectState, host_of: Any = None) -> list[Target]:
    """Without an evaluator in the stack: every service that serves /metrics, named as the
    evaluator would name it. ``host_of(proc)`` gives the host:port Prometheus dials."""
    from simctl.backends.project import base_url

    out = []
    for proc in state.processes.values():
        if proc.role in UNSCRAPED_ROLES or not (proc.health_url or proc.labels.get("admin")):
            continue
        address = host_of(proc) if host_of else base_url(proc).split("://", 1)[1]
        key = {"router": "instance", "dyno": "dyno", "drain": "drain"}.get(proc.role, "")
        out.append(Target(proc.role, str(proc.labels.get(key) or proc.name), address))
    return out


def scrape_targets(state: ProjectState, monitor_command: list[str] | None = None,
                   host_of: Any = None) -> list[Target]:
    if monitor_command is None:
        monitor = next((p for p in state.processes.values() if p.role == "monitor"), None)
        monitor_command = monitor.command if monitor is not None else None
    found = monitor_targets(monitor_command or [])
    return found or role_targets(state, host_of)


def render_config(found: list[Target], timing: str, rule_file: str) -> str:
    """prometheus.yml: one scrape job per role, evaluation at the scrape interval."""
    from simctl.monitor.rules import parse_duration

    every = interval(timing)
    # The evaluator gives a scrape 0.8 of its interval: a slow target is down in both.
    timeout = f"{round(parse_duration(every) * 800)}ms"
    jobs: dict[str, list[Target]] = {}
    for target in found:
        jobs.setdefault(target.job, []).append(target)
    config = {
        "global": {"scrape_interval": every, "scrape_timeout": timeout,
                   "evaluation_interval": every},
        "rule_files": [rule_file],
        "scrape_configs": [
            {"job_name": job,
             "static_configs": [{"targets": [t.address],
                                 "labels": {"instance": t.instance, "__metrics_path__": t.path}}
                                for t in members]}
            for job, members in sorted(jobs.items())
        ],
    }
    header = ("# Written by `simctl up --prometheus` for this project; rewritten at every up.\n")
    return header + yaml.safe_dump(config, sort_keys=False)


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner can read (0600), whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


def rules_for(timing: str, stack_dir: Path, folder: Path) -> Path:
    """The rule file Prometheus loads: stack/alerts.yaml itself on `heroku`; on `fast`, the
    same rules with every duration divided by 10 (as the embedded evaluator reads them),
    written into ``folder``."""
    source = stack_dir / "alerts.yaml"
    if timing != "fast":
        return source
    return write_private(folder / "alerts.yaml", scaled_rules(source.read_text(), 10))


def scaled_rules(text: str, factor: int) -> str:
    """A rule file with every duration (`for`, group `interval`, ranges, offsets) divided by
    ``factor``, by the embedded evaluator's own scaling."""
    from simctl.monitor.rules import format_duration, parse_duration, scale_expr

    def divided(duration: Any) -> str:
        return format_duration(parse_duration(str(duration)) / factor)

    document = yaml.safe_load(text) or {}
    for group in document.get("groups") or []:
        if "interval" in group:
            group["interval"] = divided(group["interval"])
        for rule in group.get("rules") or []:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = divided(rule[key])
            rule["expr"] = scale_expr(str(rule["expr"]), factor)
    header = f"# stack/alerts.yaml with every duration divided by {factor} (--timing fast)\n"
    return header + yaml.safe_dump(document, sort_keys=False)


# -- local backend -------------------------------------------------------------------------


def check_local(port_offset: int) -> str:
    """Before anything starts: the binary exists and the port is free."""
    binary = find_binary()
    port = PORT + port_offset
    from simctl.backends.procs import port_taken

    if port_taken(port):
        raise AddressInUse(f"port {port} (prometheus) is already in use on 127.0.0.1; stop "
                           "what uses it or pass --port-offset N")
    return binary


def local_command(binary: str, config: Path, data: Path, port: int) -> list[str]:
    return [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=2h",
            "--log.level=warn"]


def local_spec(state: ProjectState, binary: str, stack_dir: Path) -> Any:
    """The ServiceSpec the local backend starts: config written, data folder fresh."""
    from simctl.stack.definition import ServiceSpec

    folder = config_folder(state)
    port = PORT + state.port_offset
    rules = rules_for(state.timing, stack_dir, folder)
    config = write_private(folder / "prometheus.yml",
                           render_config(scrape_targets(state), state.timing, str(rules)))
    data = folder / "data"
    shutil.rmtree(data, ignore_errors=True)
    command = local_command(binary, config, data, port)
    return ServiceSpec(SERVICE, command, {}, [], f"http://127.0.0.1:{port}/-/ready", SERVICE,
                       {"endpoints": {SERVICE: f"http://127.0.0.1:{port}"}})


# -- compose backend -----------------------------------------------------------------------


def image_version(docker: Any, image: str) -> str:
    """The Prometheus version `simctl stack build` put into ``image``, or a reason to stop."""
    try:
        labels = docker.images.get(image).labels or {}
    except Exception:
        labels = {}
    version = labels.get(IMAGE_LABEL)
    if not version:
        raise StackStartError(f"{image} has no Prometheus: install Debian's prometheus "
                              "package on this host, then run `simctl stack build` again")
    return str(version)


def compose_env(state: ProjectState, stack_dir: Path,
                monitor_command: list[str] | None) -> dict[str, str]:
    """Write prometheus.yml (container addresses: ``monitor_command`` is the evaluator's
    command as compose.yaml gives it) and say where the service finds it."""
    folder = config_folder(state)
    rules = rules_for(state.timing, stack_dir, folder)
    in_container = ("/etc/simctl-prometheus/alerts.yaml" if rules.parent == folder
                    else "/etc/simctl-prometheus-rules/alerts.yaml")

    def container_address(proc: ProcessState) -> str:
        from simctl.backends.project import base_url

        return f"{proc.name}:{base_url(proc).rsplit(':', 1)[1]}"

    write_private(folder / "prometheus.yml",
                  render_config(scrape_targets(state, monitor_command or [], container_address),
                                state.timing, in_container))
    # The container runs as this user, so it can read the 0600 files it mounts.
    return {"SIMCTL_PROMETHEUS_DIR": str(folder), "SIMCTL_UID": str(os.getuid()),
            "SIMCTL_GID": str(os.getgid())}


def compose_process() -> ProcessState:
    return ProcessState(name=SERVICE, pid=0, pgid=0, started=0.0, command=[IMAGE_BINARY],
                        role=SERVICE, health_url=f"http://127.0.0.1:{PORT}/-/ready")


# -- simctl stack build --------------------------------------------------------------------


def stage_binary(context: Path) -> str | None:
    """Copy the host's prometheus into the build context (context/.prometheus/); return its
    version for the image label, or None (and an empty folder) when there is none."""
    folder = context / ".prometheus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    found = shutil.which("prometheus")
    if found is None:
        return None
    result = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\S+)", result.stdout or result.stderr)
    version = match.group(1) if match else "unknown"
    shutil.copy2(found, folder / "prometheus")
    return version
