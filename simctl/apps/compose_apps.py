"""A project's own app on the compose backend: its image as the dynos (docs/apps.md).

Each dyno is two containers. The dyno service of stack/compose.yaml (`dyno-1` ...) keeps
its name, ports and health check but runs the procfile-dyno supervisor with
``--attach``: it runs nothing itself and answers /health once ``$PORT`` accepts. The
team's image runs beside it as `dyno-1-app` with ``network_mode: service:dyno-1``, so
it binds ``$PORT`` in the supervisor's network namespace and the fault-plane proxy
`web.1` reaches it as ``dyno-1:PORT``. The image's output and exits are followed from the
host through the Docker SDK (simctl/apps/container_relay.py).

Everything goes into an override file in the project's state folder; stack/compose.yaml
is never edited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simctl.apps.config import AppSpec
from simctl.apps.stack import BUILTIN_APP
from simctl.backends.state import private_folder, write_private
from simctl.errors import InvalidInput

OVERRIDE_FILE = "compose.apps.yaml"
APP_PORT_BASE = 8400  # $PORT of dyno K is 8400 + K, as on the local backend
APP_LABEL = "org.simctl.dyno"  # the app containers' dyno name (web.1 ...)


def check(apps: list[AppSpec], defined: int) -> None:
    """What the compose backend runs: one app named `web`, from an image, with at most as
    many dynos as compose.yaml has dyno services."""
    for app in apps:
        if not app.image:
            raise InvalidInput(f"app {app.name!r}: the compose backend runs an image "
                               "(--app NAME=IMAGE or `image:`), not a Procfile")
        if app.name != BUILTIN_APP:
            raise InvalidInput(f"app {app.name!r}: on the compose backend your app takes the "
                               f"built-in app's place: name it {BUILTIN_APP!r}")
        if app.dynos > defined:
            raise InvalidInput(f"app {app.name!r}: the compose backend runs at most {defined} "
                               "dynos (the dyno services of stack/compose.yaml)")


def app_port(index: int) -> int:
    return APP_PORT_BASE + index


def app_service(dyno_service: str) -> str:
    return f"{dyno_service}-app"


def override(app: AppSpec, dyno_services: dict[str, dict[str, Any]], timing: str
             ) -> dict[str, Any]:
    """The override: every dyno service of compose.yaml (name -> its x-simctl) becomes a
    supervisor in attach mode, with the app's container beside it."""
    services: dict[str, Any] = {}
    for name, meta in dyno_services.items():
        dyno = str(meta["dyno"])
        index = int(dyno.rsplit(".", 1)[1])
        admin = int(str(meta["health"]).rsplit(":", 1)[1].split("/")[0])
        services[name] = {"command": [
            "python", "-m", "simctl.platform", "procfile-dyno", "--attach", "--host", "0.0.0.0",
            "--admin-port", str(admin), "--port", str(app_port(index)), "--name", dyno,
            "--app", app.name, "--command", f"image {app.image}", "--timing", timing]}
        env = {**app.env, "PORT": str(app_port(index)), "DYNO": dyno, "PS": dyno,
               "HEROKU_APP_NAME": app.name}
        services[app_service(name)] = {
            "image": app.image,
            "network_mode": f"service:{name}",
            "depends_on": [name],
            "restart": "no",
            "environment": env,
            "labels": {APP_LABEL: dyno, "org.simctl.admin": f"http://127.0.0.1:{admin}/health"},
        }
    return {"services": services}


def write_override(folder: Path, data: dict[str, Any]) -> Path:
    """The override file in the state folder (0600, like every state file)."""
    private_folder(folder)
    path = folder / OVERRIDE_FILE
    write_private(path, yaml.safe_dump(data, sort_keys=False))
    return path
