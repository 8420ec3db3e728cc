"""Where ``slow_boot`` survives a restart: a small JSON file in the behaviour's own shape."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from simctl.platform.dyno import behaviour as bhv
from simctl.platform.dyno.behaviour import Behaviour
from simctl.platform.service import kv


def read(path: Path | None, log: logging.Logger) -> Behaviour | None:
    """The saved behaviour, or None (no file, or one that is unreadable: logged)."""
    if path is None:
        return None
    try:
        return bhv.parse(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning(kv(at="state_file_ignored", path=path, error=exc))
        return None


def write(path: Path | None, saved: Behaviour | None, log: logging.Logger) -> None:
    """Save a behaviour (atomically), or remove the file for None."""
    if path is None:
        return
    try:
        if saved is None:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(saved.to_dict(), restart=False)))
            tmp.replace(path)
    except OSError as exc:
        log.warning(kv(at="state_file_error", path=path, error=exc))
