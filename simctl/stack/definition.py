"""Read the stack files and turn them into what a backend runs.

stack/compose.yaml is an ordinary Compose file; each platform service's `command` is a
`python -m simctl.platform ...` line whose addresses name other services (`sync:7100`,
`toxiproxy:21401`). stack/toxiproxy.json is the link map in Toxiproxy's populate format.
The local backend runs the same commands as child processes with every service name and
0.0.0.0 rewritten to 127.0.0.1, and every port moved by the project's port offset.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simctl.errors import InvalidInput

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def default_stack_dir() -> Path:
    """stack/ next to the package (a checkout), or SIMCTL_STACK_DIR."""
    env = os.environ.get("SIMCTL_STACK_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "stack"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent / "files"


@dataclass
class ServiceSpec:
    name: str  # the compose service name, e.g. "router-1"
    command: list[str]
    environment: dict[str, str]
    depends_on: list[str]
    health_url: str | None
    role: str  # x-simctl.role: toxiproxy, sync, router, logplex, dyno, drain
    labels: dict[str, Any] = field(default_factory=dict)  # the rest of x-simctl

    def ports(self) -> list[int]:
        """Every --*port option value (to check for taken ports before starting)."""
        found = []
        for i, arg in enumerate(self.command[:-1]):
            if arg.endswith("port") and arg.startswith("--"):
                value = self.command[i + 1]
                if value.isdigit() and int(value) > 0:
                    found.append(int(value))
        return found


@dataclass
class StackDefinition:
    services: dict[str, ServiceSpec]
    proxies: list[dict[str, Any]]
    directory: Path

    def by_role(self, role: str) -> list[ServiceSpec]:
        return [s for s in self.services.values() if s.role == role]


def interpolate(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)


class LocalRewriter:
    """Service hostnames and 0.0.0.0 become 127.0.0.1; ports move by an offset."""

    def __init__(self, hostnames: list[str], port_offset: int) -> None:
        names = sorted(hostnames + ["0.0.0.0", "localhost"], key=len, reverse=True)
        self._addr = re.compile(
            r"(?<![\w.-])(" + "|".join(re.escape(n) for n in names) + r"):(\d+)"
        )
        self.offset = port_offset

    def address(self, text: str) -> str:
        return self._addr.sub(lambda m: f"127.0.0.1:{int(m.group(2)) + self.offset}", text)

    def port(self, text: str) -> str:
        return str(int(text) + self.offset) if text.isdigit() and int(text) > 0 else text

    def command(self, args: list[str]) -> list[str]:
        out = []
        previous = ""
        for arg in args:
            if previous.startswith("--") and previous.endswith("port"):
                out.append(self.port(arg))
            elif arg == "0.0.0.0":
                out.append("127.0.0.1")
            else:
                out.append(self.address(arg))
            previous = arg
        return out


def load(
    directory: Path | None = None,
    *,
    env: dict[str, str] | None = None,
    port_offset: int = 0,
) -> StackDefinition:
    directory = directory or default_stack_dir()
    env = dict(os.environ if env is None else env)
    compose_path = directory / "compose.yaml"
    links_path = directory / "toxiproxy.json"
    try:
        compose = yaml.safe_load(compose_path.read_text())
        proxies = json.loads(links_path.read_text())
    except OSError as exc:
        raise InvalidInput(f"{exc.filename}: cannot read stack file: {exc.strerror}") from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{directory}: invalid stack file: {exc}") from None
    raw_services = compose.get("services") or {}
    rewriter = LocalRewriter(list(raw_services), port_offset)
    services: dict[str, ServiceSpec] = {}
    for name, raw in raw_services.items():
        meta = dict(raw.get("x-simctl") or {})
        command = meta.pop("local-command", None) or raw.get("command") or []
        command = [interpolate(str(a), env) for a in command]
        environment = {
            k: rewriter.address(interpolate(str(v), env))
            for k, v in (raw.get("environment") or {}).items()
        }
        depends = raw.get("depends_on") or []
        if isinstance(depends, dict):
            depends = list(depends)
        health = meta.pop("health", None)
        for key, value in list(meta.items()):
            if isinstance(value, str) and "://" in value:
                meta[key] = rewriter.address(interpolate(value, env))
        if "endpoints" in meta:
            meta["endpoints"] = {
                k: rewriter.address(interpolate(str(v), env)) for k, v in meta["endpoints"].items()
            }
        services[name] = ServiceSpec(
            name=name,
            command=rewriter.command(command),
            environment=environment,
            depends_on=list(depends),
            health_url=rewriter.address(interpolate(health, env)) if health else None,
            role=meta.pop("role", name),
            labels=meta,
        )
    local_proxies = [
        {
            "name": p["name"],
            "listen": rewriter.address(p.get("listen", "")),
            "upstream": rewriter.address(p["upstream"]),
            "enabled": p.get("enabled", True),
        }
        for p in proxies
    ]
    return StackDefinition(services, local_proxies, directory)
