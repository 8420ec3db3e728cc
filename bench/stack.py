"""Benchmark: the whole stack on the local backend.

    .venv/bin/python bench/stack.py [--quick]

Measures, in one run: `up` to all-healthy and `down` (median of 5); the highest
request rate the router sustains end to end through the proxies (edge -> router ->
web.N -> dyno) with success >= 99.9% and p99 <= 100 ms, with Vegur's default (a new
dyno connection per request) and again with keep-alive to dynos switched on, beside the
same load sent straight to one dyno (the baseline); log lines per second through logplex to a fast
drain, with loss; and the RSS of every stack process. Runs under its own project name
and port offset, so it does not touch a stack you have up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import psutil

from simctl.backends.local import LocalBackend
from simctl.backends.project import base_url
from simctl.load.generator import HttpTraffic, LoadGenerator, LogTraffic

PROJECT = "bench"
OFFSET = 5000


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def run_lines(drain: str, since: int, run_id: str) -> tuple[int, int, int]:
    """(lines of load run ``run_id`` the drain stored after seq ``since``, messages the
    L10 lines stored meanwhile report dropped, messages after ``since`` the drain's store
    (100,000 messages) no longer holds: the oldest, so almost all of them the run's)."""
    lines = dropped = 0
    marker = f" run={run_id} "
    first = get_json(f"{drain}/stats")["first_seq"]
    evicted = max(0, first - since - 1) if first is not None else 0
    while True:
        query = urllib.parse.urlencode({"since": since, "limit": 10000})
        rows = get_json(f"{drain}/messages?{query}")
        if not rows:
            return lines, dropped, evicted
        for row in rows:
            text = row["text"]
            if marker in text:
                lines += 1
            elif text.startswith("Error L10 "):
                dropped += int(text.split(": ", 1)[1].split(" ", 1)[0])
        since = rows[-1]["seq"]


def run_load(generator: LoadGenerator):
    try:
        import uvloop

        return uvloop.run(generator.run())
    except ImportError:
        return asyncio.run(generator.run())


def http_point(url: str, host: str | None, rate: float, seconds: float):
    traffic = HttpTraffic(url=url, rate=rate, host=host, max_in_flight=512, timeout=10)
    result = run_load(LoadGenerator(traffic, duration=seconds, grace=5))
    http = result.http
    assert http is not None
    ratio = http.success_ratio or 0.0
    return ratio, http.latency.p50, http.latency.p99, http.achieved_rate


def sweep(url: str, host: str | None, rates: list[int], seconds: float) -> list[tuple]:
    rows = []
    for rate in rates:
        ratio, p50, p99, achieved = http_point(url, host, rate, seconds)
        rows.append((rate, ratio, p50, p99, achieved))
        if ratio < 0.999 or p99 > 100:
            break
    return rows


def keepalive(backend: LocalBackend, enabled: bool) -> None:
    """Switch every router's keep-alive to dynos (POST /admin/keepalive)."""
    for proc in backend.find("router"):
        request = urllib.request.Request(
            f"{base_url(proc)}/admin/keepalive", method="POST",
            data=json.dumps({"enabled": enabled}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass


def best(rows: list[tuple]) -> tuple | None:
    good = [r for r in rows if r[1] >= 0.999 and r[3] <= 100]
    return good[-1] if good else None


def stack_memory(backend: LocalBackend) -> tuple[float, float]:
    """(sum of PSS, sum of RSS) in MB over every stack process.

    The services are forked from one pre-loaded parent, so they share the pages of the
    interpreter and libraries; RSS counts those pages once per process, PSS divides each
    shared page among the processes that map it. The PSS sum is the stack's real memory.
    """
    state = backend.require_state()
    pss = rss = 0
    for proc in state.processes.values():
        try:
            info = psutil.Process(proc.pid).memory_full_info()
        except psutil.NoSuchProcess:
            continue
        pss += info.pss
        rss += info.rss
    return pss / 1e6, rss / 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    args = parser.parse_args()
    os.environ.setdefault("SIMCTL_STATE_DIR", tempfile.mkdtemp(prefix="simctl-bench-"))
    repeats = 2 if args.quick else 5
    seconds = 2.0 if args.quick else 4.0
    backend = LocalBackend(PROJECT, timing="heroku", port_offset=OFFSET)
    backend.down()

    ups, downs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.up()
        ups.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        backend.down()
        downs.append(time.perf_counter() - t0)

    rows = []
    state = backend.up()
    try:
        edge = f"http://127.0.0.1:{21201 + OFFSET}/"
        dyno = f"http://127.0.0.1:{7401 + OFFSET}/"
        rates = [250, 500, 1000, 1500, 2000, 2500, 3000]
        routed = sweep(edge, "web.localhost", rates, seconds)  # Vegur's default
        keepalive(backend, True)  # the opt-in: dyno connections reused
        kept = sweep(edge, "web.localhost", rates, seconds)
        keepalive(backend, False)
        direct = sweep(dyno, None, rates, seconds)
        pss, rss = stack_memory(backend)

        drain = backend.url_of("drain", drain="main")
        with urllib.request.urlopen(urllib.request.Request(
                f"{drain}/messages", method="DELETE",
                headers={"Content-Type": "application/json"}), timeout=10):
            pass  # an empty store: it holds 100,000 messages, as many as the run sends
        before = get_json(f"{drain}/stats")
        line_rate, line_seconds = 20000, 5.0
        # Offered the way log-shuttle ships (docs/platform.md, "Log shipper"): a batch of
        # 500 lines goes out as soon as it is full, so at 20,000 lines/s one post every 25 ms, not
        # 2,000 lines at once every 100 ms (the generator's default tick).
        logs = LogTraffic(url=backend.url_of("logplex"), rate=line_rate, max_batch=500,
                          batch_interval=500 / line_rate)
        result = run_load(LoadGenerator(logs=logs, duration=line_seconds, grace=5))
        sent = result.logs.sent if result.logs else 0
        deadline = time.monotonic() + 15
        while True:
            after = get_json(f"{drain}/stats")
            # The store holds other lines too (L10, the stack's own): count this run's.
            if after["messages"] - before["messages"] >= sent or time.monotonic() > deadline:
                delivered, l10, evicted = run_lines(drain, before["last_seq"], logs.run_id)
                delivered = min(sent, delivered + evicted)  # evicted: mostly the run's
                if delivered + l10 >= sent or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        del state
    finally:
        backend.down()

    def fmt(point: tuple | None) -> tuple[str, str]:
        if point is None:
            return "-", "-"
        rate, ratio, p50, p99, _ = point
        return f"{rate} req/s ({ratio:.2%})", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"

    b_routed, b_kept, b_direct = best(routed), best(kept), best(direct)
    rows.append(("up (to all healthy)", f"median {statistics.median(ups):.2f} s",
                 f"min {min(ups):.2f} max {max(ups):.2f} (n={repeats})", "<= 3 s"))
    rows.append(("down", f"median {statistics.median(downs):.2f} s",
                 f"min {min(downs):.2f} max {max(downs):.2f} (n={repeats})", "<= 2 s"))
    rows.append(("router end to end", *fmt(b_routed), ">= 500 req/s, p99 <= 100 ms"))
    rows.append(("  the same, keep-alive to dynos on", *fmt(b_kept), ""))
    rows.append(("direct to one dyno (baseline)", *fmt(b_direct), ""))
    loss = 1 - delivered / sent if sent else 1.0
    rows.append(("logplex to a fast drain", f"{sent / line_seconds:.0f} lines/s offered",
                 f"{delivered} of {sent} delivered (loss {loss:.2%}, L10 reports {l10}"
                 f"{f'; {evicted} evicted from the store, counted by seq' if evicted else ''})",
                 ">= 20,000/s, no loss"))
    rows.append(("whole stack memory (PSS)", f"{pss:.0f} MB",
                 f"RSS summed {rss:.0f} MB (shared pages counted per process)", "<= 400 MB"))

    print("router sweep (rate, success, p50 ms, p99 ms, achieved/s):")
    for label, data in (("routed", routed), ("keep-alive", kept), ("direct", direct)):
        print(f"  {label}: " + "; ".join(
            f"{r}: {ok:.2%} {p50:.1f}/{p99:.1f} {a:.0f}" for r, ok, p50, p99, a in data))
    header = ("measure", "result", "detail", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
