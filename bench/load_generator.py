"""How fast the open-loop load generator drives a dyno in another process.

    .venv/bin/python bench/load_generator.py [--seconds 3] [--rates 1000,1500,2000,3000]

Starts ``python -m simctl.platform dyno --port 0``, then for each client ("raw", the
default, and "aiohttp") and each target rate runs a bounded open-loop run and prints
what was achieved: requests sent per second, responses per second, requests not sent
because of the in-flight cap, latency percentiles, the worst send lag, and the
generator's CPU time per request (the ratio between clients is the figure that holds
on other machines). Uses uvloop when installed, like the services.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

from simctl.load import HttpTraffic, LoadGenerator


def start_dyno() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simctl.platform", "dyno", "--port", "0", "--log-level",
         "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise SystemExit(f"dyno did not start: {line!r}")
    return proc, line.split("url=", 1)[1].strip()


async def one(url: str, rate: float, seconds: float, client: str) -> dict[str, float]:
    gen = LoadGenerator(HttpTraffic(url + "/", rate=rate, host="web.example", client=client,
                                    max_in_flight=256, timeout=10),
                        duration=seconds, max_requests=int(rate * seconds), grace=5)
    cpu = time.process_time()
    result = await gen.run()
    cpu = time.process_time() - cpu
    h = result.http
    assert h is not None
    return {
        "sent/s": h.achieved_rate, "resp/s": h.throughput, "completed": h.completed,
        "unsent": h.unsent, "errors": h.timeouts + h.connection_errors,
        "p50 ms": h.latency.p50, "p99 ms": h.latency.p99, "max ms": h.latency.max,
        "lag ms": h.send_lag_max_ms, "cpu us/req": cpu / max(h.sent, 1) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", default="1000,1500,2000,3000")
    parser.add_argument("--clients", default="raw,aiohttp")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    args = parser.parse_args()
    loop = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop
            uvloop.install()
            loop = "uvloop"
        except ImportError:
            pass
    proc, url = start_dyno()
    try:
        cols = None
        for client in args.clients.split(","):
            for rate in (float(r) for r in args.rates.split(",")):
                row = asyncio.run(one(url, rate, args.seconds, client))
                if cols is None:
                    cols = list(row)
                    print(f"{'client':8} {'rate':>6} " + " ".join(f"{c:>10}" for c in cols))
                print(f"{client:8} {rate:6.0f} " + " ".join(
                    f"{row[c]:10.1f}" if isinstance(row[c], float) else f"{row[c]:10d}"
                    for c in cols))
        print(f"(loop: {loop}, cpus: {os.cpu_count()}, "
              f"load average: {os.getloadavg()[0]:.2f})")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
