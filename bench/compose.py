"""Benchmark: the stack on the compose backend, images already built.

    .venv/bin/python bench/compose.py [--runs 3] [--no-local]

Measures `up` (compose up -d, then every service healthy) and `down` (compose down -v
--remove-orphans, then nothing of the project left), median of --runs runs, beside the
local backend's `up`/`down` in the same run as the baseline (unless --no-local). Needs a
Docker engine and simctl:latest (scripts/docker-setup.sh); uses the Toxiproxy image the
backend picks (SIMCTL_TOXIPROXY_IMAGE, else the official one when it can be pulled, else
simctl:latest). Runs as project `bench-compose` in a temporary state folder; compose publishes fixed
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
    parser.add_argument("--no-local", action="store_true",
                        help="skip the local backend baseline")
    args = parser.parse_args()
    os.environ["SIMCTL_STATE_DIR"] = tempfile.mkdtemp(prefix="simctl-bench-compose-")
    from simctl.backends.compose import ComposeBackend, compose_command
    from simctl.backends.local import LocalBackend
    from simctl.errors import SimctlError

    try:
        backend = ComposeBackend("bench-compose", timing="fast")
        tool = " ".join(compose_command())
        ups, downs = timed(backend, args.runs)
        image = backend.toxiproxy_image()
        local = None if args.no_local else timed(
            LocalBackend("bench-local", timing="fast", port_offset=7000), args.runs)
    except SimctlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"compose: {tool}, toxiproxy image {image}; median of {args.runs} runs, fast timing")
    print("| measure | compose | runs | local (baseline) | compose / local | target |")
    print("|---|---|---|---|---|---|")
    for label, times, index, target in (("up to all healthy", ups, 0, "<= 20 s"),
                                        ("down, nothing left", downs, 1, "")):
        median = statistics.median(times)
        runs = ", ".join(f"{t:.1f}" for t in times)
        if local is None:
            print(f"| {label} | {median:.2f} s | {runs} | | | {target} |")
            continue
        base = statistics.median(local[index])
        print(f"| {label} | {median:.2f} s | {runs} | {base:.2f} s | x{median / base:.1f} "
              f"| {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
