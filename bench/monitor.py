"""The monitor's steady-state cost: every rule of stack/alerts.yaml over an hour of history.

    .venv/bin/python bench/monitor.py [--seconds 60] [--interval 1] [--scale 2]

A child process serves synthetic /metrics for the stack's targets (2 routers, sync,
logplex, 3 dynos, 2 drains, times --scale), with the series the real services expose
(router request counters by code and status, the duration and TLS histograms, drain and
shipper counters, ...) and counters that grow every scrape. This process runs the real
MonitorService against them at --interval, after filling its history with an hour of
samples of the same series. It then measures, over --seconds of steady state (the
first 5 s not counted), the CPU time of this process (scrapes + parsing + storage +
evaluating every rule, with the file's heroku durations: the widest windows) as a share
of one core, the wall time of a round's evaluation, and the resident memory. The target
process's CPU is not counted: it stands for the services. Bounded: --seconds of rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import psutil
from aiohttp import web

from simctl.monitor.rules import load_rules
from simctl.monitor.scrape import Target, parse_text
from simctl.monitor.service import MonitorService

REPO = Path(__file__).resolve().parents[1]
CODES = [("none", "200"), ("none", "404"), ("none", "500"), ("H10", "503"), ("H11", "503"),
         ("H12", "503"), ("H13", "503"), ("H18", "503"), ("H19", "503"), ("H21", "503"),
         ("H27", "499"), ("H99", "503")]
LE = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0",
      "2.5", "5.0", "10.0", "30.0", "60.0", "+Inf"]
TLS_LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0",
          "10.0", "+Inf"]


def _histogram(name: str, bounds: list[str], n: float, extra: str = "") -> list[str]:
    lines = []
    for i, le in enumerate(bounds):
        share = 1.0 if le == "+Inf" else min(1.0, (i + 1) / len(bounds) * 1.2)
        lines.append(f'{name}_bucket{{{extra}le="{le}"}} {math.floor(n * share)}')
    lines += [f"{name}_count{{{extra.rstrip(',')}}} {n}", f"{name}_sum{{{extra.rstrip(',')}}} "
              f"{n * 0.02}"]
    return lines


def router_text(n: float) -> str:
    lines = [f'router_requests_total{{code="{c}",status="{s}"}} {math.floor(n * w)}'
             for (c, s), w in zip(CODES, [0.9] + [0.01] * 11, strict=True)]
    lines += _histogram("router_request_duration_seconds", LE, n)
    lines += _histogram("router_tls_handshake_seconds", TLS_LE, n / 10)
    lines += [f"router_tls_handshakes_started_total {n / 10}", "router_sync_errors_total 0",
              "router_sync_lag 0", "router_route_table_version 7", "router_sync_connected 1",
              'router_backlog{app="web"} 0', "router_log_dropped_total 0",
              f"router_log_lost_total {n // 1000}", "router_connections 12",
              f'router_connections_accepted_total{{scheme="http"}} {n / 3}',
              f'router_connections_accepted_total{{scheme="https"}} {n / 10}',
              "router_inflight 3"]
    lines += [f'router_quarantined{{dyno="web.{d}"}} 0' for d in range(1, 4)]
    return "\n".join(lines) + "\n"


def dyno_text(n: float) -> str:
    lines = [f'dyno_requests_total{{status="{s}"}} {math.floor(n * w)}'
             for s, w in (("200", 0.95), ("500", 0.03), ("hung", 0.01), ("closed", 0.01))]
    lines += [f'dyno_behaviour{{behaviour="{b}"}} {1 if b == "normal" else 0}' for b in
              ("normal", "latency", "error", "hang", "close", "partial", "crash", "slow_boot",
               "memory", "chatty")]
    lines += ["dyno_in_flight 2", "dyno_up 1", "dyno_memory_held_bytes 0",
              f"dyno_log_emitted_total {n}", f"dyno_log_sent_total {n}",
              "dyno_log_dropped_total 0", "dyno_log_lost_total 2"]
    return "\n".join(lines) + "\n"


def logplex_text(n: float) -> str:
    lines = [f"logplex_messages_received_total {n * 2}", "logplex_tail_sessions 1",
             "logplex_tail_dropped_total 0"]
    for drain in ("main", "audit"):
        lines += [f'logplex_drain_delivered_total{{drain="{drain}"}} {n * 2}',
                  f'logplex_drain_dropped_total{{drain="{drain}"}} 0',
                  f'logplex_drain_failed_frames_total{{drain="{drain}"}} 0',
                  f'logplex_drain_buffer_messages{{drain="{drain}"}} 3']
    lines += [f'logplex_control_rod_active{{rod="{r}"}} 0' for r in
              ("deny_drain_forwarding", "deny_tail_sessions", "deny_logs_ingress")]
    lines += [f'logplex_ingest_rejected_total{{reason="{r}"}} 0' for r in
              ("auth", "content_type", "malformed", "msg_count", "too_large", "denied")]
    return "\n".join(lines) + "\n"


def drain_text(n: float) -> str:
    return (f"drain_posts_total {n / 50}\ndrain_messages_total {n * 2}\n"
            "drain_duplicate_frames_total 0\ndrain_failed_posts_total 0\n"
            f"drain_stored_messages {min(n * 2, 100000)}\n")


def sync_text(n: float) -> str:
    return "sync_version 7\nsync_stream_subscribers 2\n"


KINDS = {"router": (router_text, 2), "dyno": (dyno_text, 3), "logplex": (logplex_text, 1),
         "drain": (drain_text, 2), "sync": (sync_text, 1)}


def targets_of(scale: int) -> list[tuple[str, str]]:
    return [(job, f"{job}.{i}") for job, (_, count) in KINDS.items()
            for i in range(1, count * scale + 1)]


def serve_targets(scale: int, port_queue: multiprocessing.Queue) -> None:
    """The child process: every target's /metrics on one port, /JOB/INSTANCE/metrics."""
    started = time.monotonic()

    async def metrics(request: web.Request) -> web.Response:
        job = request.match_info["job"]
        n = (time.monotonic() - started) * 50 + 1000  # 50 requests/s per target
        return web.Response(text=KINDS[job][0](n), content_type="text/plain")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{job}/{instance}/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.sleep(86400)

    asyncio.run(main())


def prefill(monitor: MonitorService, targets: list[Target], hour: int, now: float) -> None:
    """An hour of rounds of the same series, counters growing, before the measured run."""
    texts = {t.instance: parse_text(KINDS[t.job][0](1000.0), t.job, t.instance)
             for t in targets}
    rng = random.Random(1)
    for i in range(hour):
        samples = {}
        for target in targets:
            for labels, value in texts[target.instance].items():
                name = labels[0][1]
                grows = name.endswith(("_total", "_bucket", "_count", "_sum"))
                samples[labels] = value + i * 50 * rng.random() if grows else value
            samples[(("__name__", "up"), ("instance", target.instance),
                     ("job", target.job))] = 1.0
        monitor.history.append(now - hour + i, samples)


async def measure(args: argparse.Namespace, port: int) -> dict[str, float]:
    targets = [Target(job, inst, f"http://127.0.0.1:{port}/{job}/{inst}/metrics")
               for job, inst in targets_of(args.scale)]
    rules = load_rules(REPO / "stack" / "alerts.yaml")  # heroku durations: widest windows
    monitor = MonitorService(targets, rules, interval=args.interval, retention=3600)
    hour = monitor.history.capacity - 1
    prefill(monitor, targets, hour, time.time())
    await monitor.listen("127.0.0.1", 0)
    process = psutil.Process()
    eval_times: list[float] = []
    original = monitor.evaluate

    def timed(t: float):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(t)
        finally:
            eval_times.append(time.perf_counter() - started)

    monitor.evaluate = timed  # type: ignore[method-assign]
    try:
        await asyncio.sleep(5)  # warm-up: not counted
        eval_times.clear()
        cpu0, wall0, rounds0 = time.process_time(), time.monotonic(), monitor.rounds
        await asyncio.sleep(args.seconds)
        cpu1, wall1, rounds1 = time.process_time(), time.monotonic(), monitor.rounds
        rss = process.memory_info().rss
    finally:
        await monitor.close()
    series = len(monitor.history.series)
    return {
        "targets": len(targets), "series": series, "rounds": rounds1 - rounds0,
        "history_rounds": len(monitor.history.times),
        "cpu_percent": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "eval_ms_median": 1000 * statistics.median(eval_times),
        "eval_ms_max": 1000 * max(eval_times),
        "history_mb": series * monitor.history.capacity * 8 / 1e6,
        "rss_mb": rss / 1e6,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--scale", type=int, default=2, help="targets per kind, times this")
    args = parser.parse_args()
    if not 5 <= args.seconds <= 600:
        parser.error("--seconds must be 5..600")
    queue: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve_targets, args=(args.scale, queue), daemon=True)
    child.start()
    try:
        port = queue.get(timeout=30)
        result = asyncio.run(measure(args, port))
    finally:
        child.terminate()
        child.join(10)
    print(f"monitor: {len(load_rules(REPO / 'stack' / 'alerts.yaml').rules())} rules, "
          f"interval {args.interval:g}s, {args.seconds:g}s measured")
    rows = [("targets", f"{result['targets']}"), ("series", f"{result['series']}"),
            ("history", f"{result['history_rounds']} rounds "
                        f"({result['history_rounds'] * args.interval / 60:.0f} min)"),
            ("rounds measured", f"{result['rounds']}"),
            ("CPU (one core)", f"{result['cpu_percent']:.2f} %"),
            ("evaluation per round", f"median {result['eval_ms_median']:.1f} ms, "
                                     f"max {result['eval_ms_max']:.1f} ms"),
            ("history arrays", f"{result['history_mb']:.1f} MB"),
            ("resident memory", f"{result['rss_mb']:.0f} MB (peak {result['maxrss_mb']:.0f})")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    ok = result["cpu_percent"] < 5 and result["maxrss_mb"] < 100
    print("within budget (< 5 % of a core, < 100 MB)" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
