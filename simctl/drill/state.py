"""A drill on disk: its id, its folder, drill.json, the facilitator token (docs/drills.md).

``<project state dir>/drills/<id>/`` (0700) holds ``drill.json`` (0600) and
``timeline.jsonl``. ``drills/ACTIVE`` names the running drill, so that every simctl
command can find it with one small read (the command recorder must stay cheap).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from simctl.backends.state import private_folder, state_root, write_private
from simctl.errors import InvalidInput, SimctlError

RUNNING = "running"
ENDED = "ended"
ABORTED = "aborted"
INTERRUPTED = "interrupted"
STATUSES = (RUNNING, ENDED, ABORTED, INTERRUPTED)
ACTIVE = "ACTIVE"
TOKEN_ENV = "SIMCTL_DRILL_TOKEN"
RESPONDER_ENV = "SIMCTL_RESPONDER"
EXIT_REFUSED = 8  # a facilitator's command or a concealed inspection without the token


class DrillNotFound(InvalidInput):
    """No such drill, or no running drill when one is needed."""


class TokenRefused(SimctlError):
    """A facilitator command without the right token."""

    exit_code = EXIT_REFUSED


def drills_root(project: str) -> Path:
    return state_root() / project / "drills"


def new_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"d-{stamp}-{secrets.token_hex(2)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def responder(given: str | None = None) -> str:
    """``--as NAME``, else SIMCTL_RESPONDER, else the login name."""
    if given:
        return given
    if os.environ.get(RESPONDER_ENV):
        return os.environ[RESPONDER_ENV]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class Drill:
    id: str
    project: str
    scenario: str
    options: dict[str, Any]
    token_sha256: str
    status: str = RUNNING
    conductor_pid: int = 0
    conductor_started: float = 0.0  # process creation time: a recycled pid is not ours
    started_at: float = 0.0
    ended_at: float | None = None
    end_reason: str | None = None
    phase: str = "starting"  # starting, steady, waiting, faulted, ending, done
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return drills_root(self.project) / self.id

    @property
    def timeline_path(self) -> Path:
        return self.folder / "timeline.jsonl"

    @property
    def hidden(self) -> bool:
        return bool(self.options.get("hidden"))

    @property
    def conceal(self) -> bool:
        return bool(self.options.get("conceal"))

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def save(self) -> None:
        private_folder(self.folder)
        write_private(self.folder / "drill.json", json.dumps(asdict(self), indent=2))

    def token_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(hash_token(token or ""), self.token_sha256)

    def require_token(self, token: str | None) -> None:
        if not token:
            raise TokenRefused(f"drill {self.id}: this needs the facilitator token "
                               f"(--token or {TOKEN_ENV})")
        if not self.token_ok(token):
            raise TokenRefused(f"drill {self.id}: wrong facilitator token")

    def conductor_alive(self) -> bool:
        if not self.conductor_pid:
            return False
        try:
            proc = psutil.Process(self.conductor_pid)
            if abs(proc.create_time() - self.conductor_started) > 1.0:
                return False
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def load(path: Path) -> Drill:
    try:
        raw = json.loads((path / "drill.json").read_text())
    except FileNotFoundError:
        raise DrillNotFound(f"no drill {path.name}") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}/drill.json: unreadable ({exc})") from None
    known = {k: raw[k] for k in Drill.__dataclass_fields__ if k in raw}
    return Drill(**known)


def find(project: str, drill_id: str | None = None) -> Drill:
    """The named drill, else the running one, else the latest."""
    root = drills_root(project)
    if drill_id:
        if "/" in drill_id or drill_id.startswith("."):
            raise InvalidInput(f"invalid drill id {drill_id!r}")
        return load(root / drill_id)
    active = active_id(project)
    if active:
        try:
            return load(root / active)
        except DrillNotFound:
            pass
    every = all_drills(project)
    if not every:
        raise DrillNotFound(f"no drill in project {project!r}: `simctl drill start` begins one")
    return every[-1]


def all_drills(project: str) -> list[Drill]:
    root = drills_root(project)
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and (folder / "drill.json").is_file():
            try:
                found.append(load(folder))
            except InvalidInput:
                continue
    return sorted(found, key=lambda d: d.started_at)


def active_id(project: str) -> str | None:
    try:
        text = (drills_root(project) / ACTIVE).read_text().strip()
    except OSError:
        return None
    return text or None


def set_active(project: str, drill_id: str) -> None:
    private_folder(drills_root(project))
    write_private(drills_root(project) / ACTIVE, drill_id + "\n")


def clear_active(project: str, drill_id: str) -> None:
    if active_id(project) == drill_id:
        (drills_root(project) / ACTIVE).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(drill: Drill) -> Iterator[None]:
    """An exclusive lock on the drill folder (fcntl, released when the process dies)."""
    import fcntl

    from simctl.backends.state import open_private

    fd = open_private(drill.folder / "lock", os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def acknowledge(drill: Drill, who: str) -> tuple[str, bool]:
    """Record the page's acknowledgement once, under the drill's lock: the first responder
    owns it and a second ack (the CLI or the page) adds nothing to the timeline, so time
    to acknowledge and the timeline count one ack. Returns who acknowledged, and whether
    this call did."""
    from simctl.drill.timeline import Timeline, read_timeline

    with locked(drill):
        for entry in read_timeline(drill.timeline_path):
            if entry.get("kind") == "ack":
                return str(entry.get("who")), False
        Timeline(drill.timeline_path, hidden=drill.hidden).append("ack", who=who)
    return who, True
