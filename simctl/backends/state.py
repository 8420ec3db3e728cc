"""A project's state on disk, so `status` and `down` work from any shell.

The folder is $SIMCTL_STATE_DIR/<project> (default ~/.local/state/simctl/<project>):
state.json (what runs, where, with which pids) and one log file per service. Only the
user may read them: folders are 0700 and files 0600 (``private_folder``,
``open_private``), whatever the umask; services start with umask 077 (docs/cli.md).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simctl.errors import InvalidInput

_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def state_root() -> Path:
    env = os.environ.get("SIMCTL_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "simctl"


PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
SERVICE_UMASK = 0o077  # what services create in the state folder is private too


def private_folder(path: Path) -> Path:
    """Create ``path`` 0700, with every missing parent, and tighten it if it exists.

    Parents that already exist are left alone: SIMCTL_STATE_DIR may be a shared folder.
    """
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
        os.chmod(folder, PRIVATE_FOLDER)  # mkdir's mode is masked by the umask
    if not missing:
        os.chmod(path, PRIVATE_FOLDER)
    return path


def open_private(path: Path, flags: int) -> int:
    """os.open a file 0600 (also one that existed with looser modes); returns the fd."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, 0600 from the first byte."""
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w") as f:
        f.write(text)
    tmp.replace(path)


def check_project(name: str) -> str:
    if not _PROJECT.match(name):
        raise InvalidInput(
            f"invalid project name {name!r}: use lowercase letters, digits, '-' and '_'"
        )
    return name


@dataclass
class ProcessState:
    name: str
    pid: int
    pgid: int
    started: float  # process creation time, to tell our pid from a recycled one
    command: list[str]
    role: str
    health_url: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    paused: bool = False
    stopped: bool = False  # ended on purpose (a fault or `simctl stop`), may be restarted
    ended_by: str = ""  # how: "killed" (SIGKILL, a fault) or "stopped" (graceful)


@dataclass
class ProjectState:
    project: str
    backend: str
    timing: str
    port_offset: int
    toxiproxy_url: str
    embedded_toxiproxy: bool
    processes: dict[str, ProcessState] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    # The first dyno of each app, kept so `scale web=0` can be followed by `scale web=3`.
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: float = 0.0
    # The project's own apps (simctl.apps.config.AppSpec as dicts), to rebuild its definition.
    apps: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False  # false while `up` is still starting things
    up_pid: int = 0  # the `simctl up` writing this state (an incomplete one whose up is gone
    # was left by a killed up: the next up clears it)

    @property
    def folder(self) -> Path:
        return state_root() / self.project

    def save(self) -> None:
        private_folder(self.folder)
        write_private(self.folder / "state.json", json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, project: str) -> ProjectState | None:
        path = state_root() / project / "state.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"{path}: unreadable state file ({exc}); remove it") from None
        processes = {k: ProcessState(**v) for k, v in raw.pop("processes", {}).items()}
        return cls(processes=processes, **raw)

    def remove(self) -> None:
        path = self.folder / "state.json"
        path.unlink(missing_ok=True)
