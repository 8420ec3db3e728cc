"""Which apps a project runs: ``--app NAME=PATH`` options and the project file simctl.yaml.

simctl.yaml sits next to the team's code (docs/apps.md)::

    apps:
      web:
        procfile: .        # the Procfile, or its directory (relative to this file)
        dynos: 3
        env: {GREETING: hello}
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simctl.apps import procfile
from simctl.errors import InvalidInput

PROJECT_FILE = "simctl.yaml"
CONFIG_ENV = "SIMCTL_CONFIG"  # the project file, as --config names it
MAX_APPS = 5
MAX_DYNOS = 20
DEFAULT_DYNOS = 3  # as many as the built-in app, so the catalogue's scenarios fit
_APP = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_APP_KEYS = {"procfile", "image", "dynos", "env"}
# a Docker image reference: [registry/]name[:tag][@digest], as `docker run` takes it
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")


@dataclass
class AppSpec:
    name: str
    procfile: str  # absolute path of the Procfile
    command: str  # its web process
    dynos: int = DEFAULT_DYNOS
    env: dict[str, str] = field(default_factory=dict)
    shell: bool = False  # run the command with sh -c (the user passed --allow-shell)
    image: str = ""  # a container image instead of a Procfile (the compose backend)

    @property
    def cwd(self) -> str:
        return str(Path(self.procfile).parent)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AppSpec:
        return cls(**raw)


def check_name(name: str) -> str:
    if not _APP.match(name):
        raise InvalidInput(f"invalid app name {name!r}: lowercase letters, digits and '-', "
                           "starting with a letter (at most 30)")
    return name


def check_dynos(count: Any, where: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DYNOS:
        raise InvalidInput(f"{where}: dynos must be a whole number from 1 to {MAX_DYNOS}")
    return count


def _app(name: str, path: Path, dynos: int, env: dict[str, str], allow_shell: bool) -> AppSpec:
    found = procfile.locate(path).resolve()
    command = procfile.web_command(found, allow_shell=allow_shell)
    return AppSpec(check_name(name), str(found), command, dynos, env,
                   shell=bool(procfile.shell_syntax(command)))


def image_app(name: str, image: str, dynos: int, env: dict[str, str], where: str) -> AppSpec:
    if not _IMAGE.match(image):
        raise InvalidInput(f"{where}: {image!r} is not an image reference")
    return AppSpec(check_name(name), "", "", dynos, env, image=image)


def parse_option(value: str, dynos: int, allow_shell: bool, images: bool = False) -> AppSpec:
    """``NAME=PROCFILE_OR_DIR`` from the command line; ``NAME=IMAGE`` with ``images``
    (the compose backend)."""
    name, sep, path = value.partition("=")
    if not sep or not path:
        raise InvalidInput(f"--app {value!r}: expected NAME=PROCFILE_OR_DIR"
                           + (" or NAME=IMAGE" if images else ""))
    if images:
        if not _IMAGE.match(path) and Path(path).expanduser().exists():
            raise InvalidInput(f"--app {value!r}: the compose backend runs a container image "
                               "(--app NAME=IMAGE), not a Procfile (docs/apps.md)")
        return image_app(name, path, dynos, {}, f"--app {value!r}")
    if not Path(path).expanduser().exists():
        raise InvalidInput(f"--app {value!r}: {path} is not a Procfile or a directory holding "
                           "one (images run on the compose backend: docs/apps.md)")
    return _app(check_name(name), Path(path).expanduser(), dynos, {}, allow_shell)


def load_project_file(path: Path, allow_shell: bool, images: bool | None = False
                      ) -> list[AppSpec]:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the project file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: invalid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(raw, dict) or set(raw) != {"apps"} or not isinstance(raw["apps"], dict) \
            or not raw["apps"]:
        raise InvalidInput(f"{path}: expected a mapping with one key, `apps`, naming at least "
                           "one app")
    apps = []
    for name, entry in raw["apps"].items():
        where = f"{path}: apps.{name}"
        check_name(str(name))
        if not isinstance(entry, dict) or ("procfile" in entry) == ("image" in entry):
            raise InvalidInput(f"{where}: expected a mapping with `procfile` or `image`")
        unknown = set(entry) - _APP_KEYS
        if unknown:
            raise InvalidInput(f"{where}: unknown key {sorted(unknown)[0]!r} (known: "
                               f"{', '.join(sorted(_APP_KEYS))})")
        env = entry.get("env") or {}
        if not isinstance(env, dict) or not all(
                _ENV_KEY.match(str(k)) and isinstance(v, str | int | float)
                for k, v in env.items()):
            raise InvalidInput(f"{where}.env: expected KEY: value pairs")
        dynos = check_dynos(entry.get("dynos", DEFAULT_DYNOS), where)
        if "image" in entry:
            if images is False:
                raise InvalidInput(f"{where}: `image` runs on the compose backend only "
                                   "(`simctl up --backend compose`; docs/apps.md)")
            apps.append(image_app(str(name), str(entry["image"]), dynos,
                                  {str(k): str(v) for k, v in env.items()}, where))
            continue
        if images is True:
            raise InvalidInput(f"{where}: the compose backend runs an `image`, not a "
                               "`procfile` (docs/apps.md)")
        apps.append(_app(str(name), path.parent / str(entry["procfile"]), dynos,
                         {str(k): str(v) for k, v in env.items()}, allow_shell))
    return apps


def resolve(options: tuple[str, ...], dynos: int | None, config: Path | None,
            cwd: Path, allow_shell: bool = False, images: bool = False) -> list[AppSpec]:
    """The apps to run: the project file (--config, else ./simctl.yaml when no --app is
    given), then --app options (replacing a file's app of the same name); --dynos N sets
    every app's count."""
    apps: dict[str, AppSpec] = {}
    if config is None and not options and (cwd / PROJECT_FILE).is_file():
        config = cwd / PROJECT_FILE
    if config is not None:
        for app in load_project_file(config, allow_shell, images):
            apps[app.name] = app
    for value in options:
        app = parse_option(value, dynos or DEFAULT_DYNOS, allow_shell, images)
        apps[app.name] = app
    if dynos is not None:
        check_dynos(dynos, "--dynos")
        if not apps:
            raise InvalidInput("--dynos N sets the dynos of your own apps: give --app "
                               "NAME=PROCFILE_OR_DIR or a simctl.yaml (`simctl scale web=N` "
                               "scales the built-in app)")
        for app in apps.values():
            app.dynos = dynos
    if len(apps) > MAX_APPS:
        raise InvalidInput(f"at most {MAX_APPS} apps per project")
    return list(apps.values())


def saved_apps(state: Any) -> list[AppSpec]:
    """The apps a running project was started with (none when it is not up)."""
    return [AppSpec.from_dict(raw) for raw in getattr(state, "apps", None) or []]


def project_apps(cwd: Path | None = None, allow_shell: bool = True,
                 images: bool | None = False) -> list[AppSpec]:
    """The apps of the project file: $SIMCTL_CONFIG (`--config`), else ./simctl.yaml if
    there is one (what `verify` and `scenario lint` see). ``images``: the compose
    backend's apps (True), the local backend's (False), or either (None: only names)."""
    named = os.environ.get(CONFIG_ENV)
    path = Path(named) if named else (cwd or Path.cwd()) / PROJECT_FILE
    if named and not path.is_file():
        raise InvalidInput(f"{CONFIG_ENV}={named}: no such project file")
    return load_project_file(path, allow_shell, images) if path.is_file() else []
