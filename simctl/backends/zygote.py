"""A pre-loaded parent that forks service processes: `up` pays Python's imports once.

Importing aiohttp, click and the services costs most of a second of CPU per process;
ten services started at once on two cores would spend seconds on it. The zygote imports
everything once, then for each JSON line on stdin ({"argv", "env", "log"}) forks a
child that starts its own session, points stdout/stderr at its log file, reseeds its
random state and runs exactly what `argv` would run. It answers each line with the
child's pid and exits when stdin closes; the children live on, detached.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click


def _preload() -> None:
    import simctl.cli  # noqa: F401
    from simctl.platform.__main__ import SERVICES, main

    for name in SERVICES:
        # The type: ignore below: click allows no context for a lookup.
        main.get_command(None, name)  # type: ignore[arg-type]


def _run(argv: list[str]) -> int:
    """Run `python -m simctl ...` or `python -m simctl.platform ...` in this process."""
    entry: click.Group
    if argv[:2] == ["-m", "simctl.platform"]:
        from simctl.platform.__main__ import main as entry
    elif argv[:2] == ["-m", "simctl"]:
        from simctl.cli import main as entry
    else:
        raise SystemExit(f"zygote: cannot run {argv!r}")
    sys.argv = [argv[1], *argv[2:]]
    try:
        entry.main(args=argv[2:], prog_name=argv[1], standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def _fork(spec: dict) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()
        fd = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # private, like every file of the state folder
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        sys.stdin = open(0)  # noqa: SIM115
        os.environ.update(spec.get("env") or {})
        random.seed()  # the parent's random state must not be shared by every child
        code = _run(spec["argv"])
    except BaseException as exc:  # report, never return into the parent's loop
        print(f"zygote child failed: {exc!r}", file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return 0  # unreachable


def main() -> int:
    _preload()
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        print(_fork(json.loads(line)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
