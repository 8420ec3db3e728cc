"""Benchmark: one refresh of `simctl dashboard` (docs/dashboards.md) against a live stack.

    .venv/bin/python bench/dashboard.py [--refreshes 30] [--span 5m]

Starts a fast stack under its own project and a free port offset, hangs web.1 and sends 50 req/s
(so every panel has data, H12 and firing alerts included), then runs the dashboard
headless at 100x30 under Textual's pilot and times, per refresh: the fetch (every panel's
query from the stack's monitor, its alerts and both routers' last 100 lines, concurrently),
drawing it into the widgets, and the repaint that follows, cycling through the panels so
each chart gets drawn. Prints a table (ms: median, p90, max). Target: a refresh < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from simctl.backends.local import LocalBackend
from simctl.pytest_plugin import free_port_offset
from simctl.views.dashboard import PANES, Dashboard
from simctl.views.snapshot import Collector
from simctl.views.source import resolve

PROJECT = "bench-dashboard"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(project: str, refreshes: int, span: float) -> dict[str, list[float]]:
    source = resolve(project, None)
    collector = Collector(source.prometheus_url, source.routers, "10s", span=span)
    app = Dashboard(collector, interval=3600)  # refreshed by hand below, not on a timer
    times: dict[str, list[float]] = {"fetch": [], "draw": [], "repaint": [], "refresh": []}
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        for index in range(refreshes):
            await pilot.press(str(index % len(PANES) + 1))
            await pilot.pause()
            started = time.perf_counter()
            snap = await collector.collect()
            fetched = time.perf_counter()
            app.apply(snap)
            drawn = time.perf_counter()
            await pilot.pause()  # the repaint the new data asked for
            painted = time.perf_counter()
            times["fetch"].append((fetched - started) * 1000)
            times["draw"].append((drawn - fetched) * 1000)
            times["repaint"].append((painted - drawn) * 1000)
            times["refresh"].append((painted - started) * 1000)
            await asyncio.sleep(0.2)
        await pilot.press("q")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refreshes", type=int, default=32)
    parser.add_argument("--span", default="5m", choices=["5m", "15m", "1h"])
    args = parser.parse_args()
    span = {"5m": 300.0, "15m": 900.0, "1h": 3600.0}[args.span]
    backend = LocalBackend(PROJECT, timing="fast", port_offset=free_port_offset())
    backend.up()
    simctl = [sys.executable, "-m", "simctl"]
    traffic = None
    try:
        subprocess.run([*simctl, "dyno", "set", "web.1", "hang", "--project", PROJECT],
                       check=True, capture_output=True)
        traffic = subprocess.Popen([*simctl, "traffic", "--rate", "50", "-d", "120",
                                    "--project", PROJECT], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(15)  # H12s start after 3 s; the alert fires within about 12 s
        times = asyncio.run(measure(PROJECT, args.refreshes, span))
    finally:
        if traffic is not None:
            traffic.terminate()
            traffic.wait(15)
        backend.down()
    print(f"dashboard refresh, {args.refreshes} refreshes, span {args.span}, 100x30 (ms)")
    print(f"{'step':<10}{'median':>9}{'p90':>9}{'max':>9}")
    for step, values in times.items():
        print(f"{step:<10}{statistics.median(values):>9.1f}{percentile(values, 0.9):>9.1f}"
              f"{max(values):>9.1f}")
    verdict = "met" if statistics.median(times["refresh"]) < 100 else "MISSED"
    print(f"target: refresh < 100 ms (median): {verdict}")


if __name__ == "__main__":
    main()
