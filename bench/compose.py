"""Benchmark: the stack on the compose backend, images already built.

    .venv/bin/python bench/compose.py [--runs 3] [--local]

Measures `up` (compose up -d, then every service healthy) and `down` (compose down -v
--remove-orphans, then nothing of the project left), median of --runs runs, and with
--local the local backend's `up`/`down` in the same process as the baseline (ratio
printed). Needs a Docker engine and simctl:latest (scripts/docker-setup.sh); uses
SIMCTL_TOXIPROXY_IMAGE (default simctl:latest, as on machines without a registry).
Runs as project `bench-compose` in a temporary state folder; compose publishes fixed
ports, so no other stack (local or compose) may be up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def timed(backend: object, runs: int) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for _ in range(runs):
        started = time.monotonic()
        try:
            backend.up()  # type: ignore[attr-defined]
            ups.append(time.monotonic() - started)
        finally:
            started = time.monotonic()
            backend.down()  # type: ignore[attr-defined]
            downs.append(time.monotonic() - started)
    return ups, downs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--local", action="store_true", help="also time the local backend")
    args = parser.parse_args()
    os.environ.setdefault("SIMCTL_TOXIPROXY_IMAGE", "simctl:latest")
    os.environ["SIMCTL_STATE_DIR"] = tempfile.mkdtemp(prefix="simctl-bench-compose-")
    from simctl.backends.compose import ComposeBackend, compose_command
    from simctl.errors import SimctlError

    try:
        backend = ComposeBackend("bench-compose", timing="fast")
        tool = " ".join(compose_command())
        ups, downs = timed(backend, args.runs)
    except SimctlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    up, down = statistics.median(ups), statistics.median(downs)
    print(f"compose backend ({tool}, toxiproxy image {os.environ['SIMCTL_TOXIPROXY_IMAGE']}), "
          f"median of {args.runs}:")
    print(f"  up (to all healthy)   {up:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in ups)}")
    print(f"  down (nothing left)   {down:6.2f} s   runs: {', '.join(f'{t:.2f}' for t in downs)}")
    if args.local:
        from simctl.backends.local import LocalBackend

        lups, ldowns = timed(LocalBackend("bench-local", timing="fast", port_offset=7000),
                             args.runs)
        lup, ldown = statistics.median(lups), statistics.median(ldowns)
        print(f"local backend, median of {args.runs}: up {lup:.2f} s, down {ldown:.2f} s")
        print(f"  compose/local: up x{up / lup:.1f}, down x{down / ldown:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
