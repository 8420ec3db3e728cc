"""Put a project's apps into the stack definition, in place of or beside the built-in app.

An app named like the built-in app (`web`) replaces its dynos: the same dyno names
(`web.1` ...), services (`dyno-1` ...), ports and fault-plane proxies, so every scenario
written for the built-in app runs unchanged. Any other name is added beside it, with its
own domains (`NAME.localhost`, `NAME.simctl.test`), dynos `NAME.1` ..., services
`NAME-dyno-1` ... and proxies `NAME.1` ... on ports of their own (docs/apps.md).
Each dyno is a `procfile-dyno` supervisor (simctl/platform/procfile_dyno.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simctl.apps.config import AppSpec
from simctl.stack.definition import ServiceSpec, StackDefinition

BUILTIN_APP = "web"


@dataclass(frozen=True)
class PortBlock:
    """Where an app's dyno K listens: base + K (plus the project's port offset)."""

    port: int  # the process's $PORT
    admin: int  # the supervisor's /health
    proxy: int  # the fault-plane proxy the routers connect to
    service_prefix: str

    def labels(self) -> dict[str, Any]:
        return {"port_base": self.port, "admin_base": self.admin, "proxy_base": self.proxy,
                "service_prefix": self.service_prefix}


def port_blocks(apps: list[AppSpec]) -> dict[str, PortBlock]:
    blocks = {}
    others = 0
    for app in apps:
        # The supervisor takes the port a built-in dyno serves /health, /metrics and
        # /control on, so whatever reaches dyno-N there (a scrape, a probe) finds that
        # contract; the team's process gets a port of its own.
        if app.name == BUILTIN_APP:
            blocks[app.name] = PortBlock(8400, 7400, 21400, "dyno")
        else:
            step = 40 * others
            # not 8700: stacks at port offsets 1,500 apart would meet (8701 = 7201 + 1500)
            blocks[app.name] = PortBlock(8800 + step, 7700 + step, 21700 + step,
                                         f"{app.name}-dyno")
            others += 1
    return blocks


def _option(command: list[str], flag: str, default: str = "") -> str:
    return command[command.index(flag) + 1] if flag in command[:-1] else default


def dyno_service(app: AppSpec, index: int, block: PortBlock, offset: int, timing: str,
                 logplex: str, sync_url: str = "") -> ServiceSpec:
    admin = block.admin + index + offset
    command = ["python", "-m", "simctl.platform", "procfile-dyno", "--host", "127.0.0.1",
               "--admin-port", str(admin), "--port", str(block.port + index + offset),
               "--name", f"{app.name}.{index}", "--app", app.name, "--command", app.command,
               "--cwd", app.cwd, "--timing", timing, "--logplex-url", logplex]
    for key, value in app.env.items():
        command += ["--env", f"{key}={value}"]
    if app.shell:
        command.append("--shell")
    if sync_url:  # a crash marks the dyno crashed there (the router's H10)
        command += ["--sync-url", sync_url]
    labels = {"app": app.name, "dyno": f"{app.name}.{index}", "procfile": app.procfile,
              **block.labels()}
    return ServiceSpec(f"{block.service_prefix}-{index}", command, {}, ["toxiproxy", "logplex"],
                       f"http://127.0.0.1:{admin}/health", "dyno", labels)


def scaled_dyno(template_command: list[str], labels: dict[str, Any], index: int,
                offset: int) -> tuple[ServiceSpec, int, int]:
    """Dyno `index` of a running app, made from one of its dynos (for `simctl scale`)."""
    app = str(labels["app"])
    port = int(labels["port_base"]) + index + offset
    admin = int(labels["admin_base"]) + index + offset
    command = list(template_command)
    for flag, value in (("--port", str(port)), ("--admin-port", str(admin)),
                        ("--name", f"{app}.{index}")):
        command[command.index(flag) + 1] = value
    spec = ServiceSpec(f"{labels['service_prefix']}-{index}", command, {}, [],
                       f"http://127.0.0.1:{admin}/health", "dyno",
                       dict(labels, dyno=f"{app}.{index}"))
    return spec, port, int(labels["proxy_base"]) + index + offset


def _sync_command(command: list[str], app: str, dynos: list[tuple[str, str]]) -> list[str]:
    """Sync's initial table: the app's dynos (and, for a new app, the app and its domains)."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(command):
        if skip:
            skip = False
            continue
        if arg == "--dyno" and i + 1 < len(command) and command[i + 1].startswith(f"{app}/"):
            skip = True
            continue
        out.append(arg)
    if not any(a == "--app" and b == app for a, b in zip(out, out[1:], strict=False)):
        out += ["--app", app, "--domain", f"{app}/{app}.localhost",
                "--domain", f"{app}/{app}.simctl.test"]
    for name, address in dynos:
        out += ["--dyno", f"{app}/{name}={address}"]
    return out


def apply(definition: StackDefinition, apps: list[AppSpec], offset: int) -> StackDefinition:
    """The definition with each app's dynos, routes and proxies (a new object's lists)."""
    if not apps:
        return definition
    services = dict(definition.services)
    proxies = list(definition.proxies)
    logs = next((p["listen"] for p in proxies if p["name"] == "dyno-logs"), "")
    sync = next((s for s in services.values() if s.role == "sync"), None)
    timing = _option(sync.command, "--timing", "heroku") if sync else "heroku"
    sync_url = (sync.health_url or "").removesuffix("/health") if sync else ""
    for app, block in zip(apps, port_blocks(apps).values(), strict=True):
        for name, spec in list(services.items()):
            if spec.role == "dyno" and spec.labels.get("app", BUILTIN_APP) == app.name:
                del services[name]
        own = re.compile(re.escape(app.name) + r"\.\d+")
        proxies = [p for p in proxies if not own.fullmatch(p["name"])]
        routes = []
        for index in range(1, app.dynos + 1):
            spec = dyno_service(app, index, block, offset, timing, f"http://{logs}/logs",
                                sync_url)
            services[spec.name] = spec
            listen = f"127.0.0.1:{block.proxy + index + offset}"
            proxies.append({"name": f"{app.name}.{index}", "listen": listen,
                            "upstream": f"127.0.0.1:{block.port + index + offset}",
                            "enabled": True})
            routes.append((f"{app.name}.{index}", listen))
        if sync is not None:
            sync = ServiceSpec(sync.name, _sync_command(sync.command, app.name, routes),
                               sync.environment, sync.depends_on, sync.health_url, sync.role,
                               sync.labels)
            services[sync.name] = sync
    return StackDefinition(services, proxies, definition.directory)


def is_app_dyno(labels: dict[str, Any]) -> bool:
    """A dyno of a project's own app (not a built-in dyno)."""
    return bool(labels.get("procfile"))
