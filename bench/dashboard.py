"""Benchmark: one refresh of `simctl dashboard` (docs/dashboards.md) against a live stack.

    .venv/bin/python bench/dashboard.py [--seconds 30] [--span 5m]

Starts a fast stack under its own project and a free port offset, hangs web.1 and sends
50 req/s (so every panel has data, H12 and firing alerts included), then measures:

1. in process, under Textual's pilot at 100x30, per refresh and panel: the fetch (the
   summary's and the visible panel's queries to the stack's monitor, its alerts, and on
   the log panel both routers' last 100 lines, concurrently; wall time), drawing the
   snapshot into the widgets, and rendering the visible charts (plotext);
2. the real thing: `simctl dashboard` in a 100x30 tmux terminal refreshing every second
   for `--seconds`, switching panel every 3 s, and the CPU time its process used (fetch,
   draw, render and terminal output together), per refresh.

Prints a table (ms: median, p90, max). Target: a refresh < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time

import psutil
from textual_plotext import PlotextPlot

from simctl.backends.local import LocalBackend
from simctl.pytest_plugin import free_port_offset
from simctl.views.dashboard import PANES, SUMMARY_CHARTS, Dashboard
from simctl.views.snapshot import Collector
from simctl.views.source import resolve

PROJECT = "bench-dashboard"
SIMCTL = [sys.executable, "-m", "simctl"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def in_process(refreshes: int, span: float) -> dict[str, list[float]]:
    source = resolve(PROJECT, None)
    collector = Collector(source.prometheus_url, source.routers, "10s", span=span)
    app = Dashboard(collector, interval=3600)  # refreshed by hand below, not on a timer
    times: dict[str, list[float]] = {"fetch": [], "draw": [], "render charts": []}
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        for index in range(refreshes):
            await pilot.press(str(index % len(PANES) + 1))
            await pilot.pause()
            pane = PANES[index % len(PANES)]
            started = time.perf_counter()
            snap = await collector.collect(charts=SUMMARY_CHARTS | set(pane[2]),
                                           logs=pane[0] == "logs")  # as the dashboard does
            fetched = time.perf_counter()
            app.apply(snap)
            drawn = time.perf_counter()
            for plot in app.query(PlotextPlot):
                if plot.region.area:  # on the visible panel
                    plot.render()
            rendered = time.perf_counter()
            times["fetch"].append((fetched - started) * 1000)
            times["draw"].append((drawn - fetched) * 1000)
            times["render charts"].append((rendered - drawn) * 1000)
            await asyncio.sleep(0.2)
        await pilot.press("q")
    return times


def in_tmux(seconds: int, span: str) -> float | None:
    """CPU ms per second (= per refresh) of `simctl dashboard` in a real 100x30 terminal."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    session = f"bench-dashboard-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    " ".join([*SIMCTL, "dashboard", "--project", PROJECT, "--span", span])],
                   check=True, env={**env, "TERM": "xterm-256color"})
    try:
        time.sleep(4)  # start-up and the first refreshes
        proc = next(p for p in psutil.process_iter(["cmdline"])
                    if "dashboard" in (p.info["cmdline"] or []) and PROJECT in p.info["cmdline"])
        before = sum(proc.cpu_times()[:2])
        for index in range(seconds):
            if index % 3 == 0:
                key = str(index // 3 % len(PANES) + 1)
                subprocess.run([tmux, "send-keys", "-t", session, key], check=True)
            time.sleep(1)
        return (sum(proc.cpu_times()[:2]) - before) * 1000 / seconds
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--span", default="5m", choices=["5m", "15m", "1h"])
    args = parser.parse_args()
    span = {"5m": 300.0, "15m": 900.0, "1h": 3600.0}[args.span]
    backend = LocalBackend(PROJECT, timing="fast", port_offset=free_port_offset())
    backend.up()
    traffic = None
    try:
        subprocess.run([*SIMCTL, "dyno", "set", "web.1", "hang", "--project", PROJECT],
                       check=True, capture_output=True)
        traffic = subprocess.Popen([*SIMCTL, "traffic", "--rate", "50", "-d", "150",
                                    "--project", PROJECT], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(15)  # H12s start after 3 s; the alert fires within about 12 s
        times = asyncio.run(in_process(args.seconds, span))
        cpu = in_tmux(args.seconds, args.span)
    finally:
        if traffic is not None:
            traffic.terminate()
            traffic.wait(15)
        backend.down()
    print(f"dashboard refresh at 100x30, span {args.span}, {args.seconds} refreshes (ms)")
    print(f"{'step':<32}{'median':>9}{'p90':>9}{'max':>9}")
    for step, values in times.items():
        print(f"{step:<32}{statistics.median(values):>9.1f}{percentile(values, 0.9):>9.1f}"
              f"{max(values):>9.1f}")
    total = [sum(parts) for parts in zip(*times.values(), strict=True)]
    print(f"{'fetch + draw + render charts':<32}{statistics.median(total):>9.1f}"
          f"{percentile(total, 0.9):>9.1f}{max(total):>9.1f}")
    if cpu is not None:
        print(f"{'tmux: CPU per refresh (1 s)':<32}{cpu:>9.1f}")
    verdict = "met" if statistics.median(total) < 100 and (cpu or 0) < 100 else "MISSED"
    print(f"target: a refresh < 100 ms: {verdict}")


if __name__ == "__main__":
    main()
