"""Quick, bounded logplex throughput check: lines/s from ingest to a fast drain, and loss.

    .venv/bin/python bench/logplex_quick.py [--rate 20000] [--seconds 5] [--batch 500]
    .venv/bin/python bench/logplex_quick.py --max        # as fast as ingest accepts

Starts a drain and a logplex as processes (``python -m simctl.platform ...``), warms
both paths up (--warmup seconds of load, not measured), posts pre-encoded logplex-1
bodies (open loop at --rate, or closed loop with --max), waits until the drain holds
every line (or --wait runs out, or nothing arrives for a second), and prints a table. The baseline
row posts the same bodies straight to the drain, so the ratio shows what logplex costs.
Everything is bounded: --seconds of load, --wait for delivery, then both processes stop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import psutil

from simctl.platform import logframe
from simctl.platform.logframe import LogMessage

AUTH = "Basic " + base64.b64encode(b"token:t.web").decode()
LINE = ('at=info method=GET path="/items/{i}" host=web.example.com request_id={i:032x} '
        'fwd="10.0.0.1" dyno=web.1 connect=0ms service=12ms status=200 bytes=1024 protocol=http')


@dataclass
class Proc:
    url: str
    ps: psutil.Process

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)


@asynccontextmanager
async def process(*args: str) -> AsyncIterator[Proc]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simctl.platform", *args, "--log-level", "warning",
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line.startswith("ready "):
            raise SystemExit(f"{args[0]} did not start: {line!r}")
        yield Proc(line.split("url=", 1)[1].strip(), psutil.Process(proc.pid))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def bodies(count: int, batch: int) -> list[bytes]:
    ts = logframe.now_rfc5424()
    return [
        logframe.encode_many([LogMessage("heroku", "router", LINE.format(i=n * batch + j), ts)
                              for j in range(batch)])
        for n in range(count)
    ]


@dataclass
class Result:
    name: str
    lines: int
    post_seconds: float
    delivered: int
    deliver_seconds: float
    l10_dropped: int
    refused: int
    cpu: dict[str, float]  # CPU seconds used by each service during the run

    def row(self) -> str:
        ingest = self.lines / self.post_seconds if self.post_seconds else 0
        e2e = self.delivered / self.deliver_seconds if self.deliver_seconds else 0
        cpu = " ".join(f"{k}={1e6 * v / self.lines:.1f}" for k, v in self.cpu.items())
        return (f"{self.name:<16} {self.lines:>8} {ingest:>10,.0f} {self.delivered:>10} "
                f"{e2e:>12,.0f} {self.lines - self.delivered:>7} {self.l10_dropped:>6} "
                f"{self.refused:>7}  {cpu}")


async def stored(http: aiohttp.ClientSession, drain: str) -> int:
    async with http.get(drain + "/stats") as resp:
        return int((await resp.json())["messages"])


async def l10_dropped(http: aiohttp.ClientSession, drain: str, since: int) -> tuple[int, int]:
    """(L10 lines stored after ``since``, messages they report dropped). Run after the
    load: grep scans the whole store and would slow the drain down while it works."""
    lines = dropped = 0
    while True:
        async with http.get(drain + "/messages", params={
                "grep": "Error L10", "since": str(since), "limit": "10000"}) as resp:
            found = await resp.json()
        if not found:
            return lines, dropped
        for message in found:
            lines += 1
            match = re.search(r"(\d+) messages dropped", message["text"])
            dropped += int(match.group(1)) if match else 0
        since = found[-1]["seq"]


async def run(name: str, http: aiohttp.ClientSession, target: str, procs: dict[str, Proc],
              payload: list[bytes], batch: int, rate: float | None, wait: float) -> Result:
    drain = procs["drain"].url
    async with http.delete(drain + "/messages", json={}):  # each run starts with an empty store
        pass
    cpu = {k: proc.cpu() for k, proc in procs.items()}
    async with http.get(drain + "/stats") as resp:
        stats = await resp.json()
    base, first_seq = stats["messages"], stats["last_seq"]
    headers = {"Authorization": AUTH, "Content-Type": logframe.CONTENT_TYPE,
               "Logplex-Msg-Count": str(batch)}
    refused = 0
    in_flight = asyncio.Semaphore(8)

    async def post(body: bytes) -> None:
        nonlocal refused
        async with in_flight, http.post(target, data=body, headers=headers) as resp:
            await resp.read()
            refused += resp.status >= 300

    loop = asyncio.get_running_loop()
    started = loop.time()
    if rate is None:  # closed loop: one body at a time, as fast as it is accepted
        for body in payload:
            await post(body)
    else:  # open loop: a fixed arrival schedule, lateness does not slow it down
        tasks = []
        for n, body in enumerate(payload):
            delay = started + n * batch / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(body)))
        await asyncio.gather(*tasks)
    posted = loop.time() - started
    lines = len(payload) * batch
    expected = lines - refused * batch
    deadline = loop.time() + wait
    last, last_change = -1, loop.time()
    while True:
        arrived = await stored(http, drain) - base  # log lines plus any L10 lines
        now = loop.time()
        if arrived != last:
            last, last_change = arrived, now
        if arrived >= expected or now > deadline or now - last_change > 1.0:
            break
        await asyncio.sleep(0.02)
    elapsed = last_change - started
    l10_lines, dropped = await l10_dropped(http, drain, first_seq)
    delivered = arrived - l10_lines
    cpu = {k: proc.cpu() - cpu[k] for k, proc in procs.items()}
    return Result(name, lines, posted, delivered, elapsed, dropped, refused, cpu)


async def main(args: argparse.Namespace) -> int:
    rate = None if args.max else args.rate
    count = max(1, int(args.rate * args.seconds / args.batch))
    payload = bodies(count, args.batch)
    async with process("drain", "--timing", args.timing) as drain, process(
            "logplex", "--timing", args.timing, "--drain", f"main={drain.url}/") as logplex, \
            aiohttp.ClientSession() as http:
        procs = {"drain": drain, "logplex": logplex}
        warm = payload[:max(1, int(args.rate * args.warmup / args.batch))]
        for target in (drain.url + "/", logplex.url + "/logs"):  # first connections, caches
            await run("warm-up", http, target, procs, warm, args.batch, rate, args.wait)
        results = [
            await run("direct to drain", http, drain.url + "/", {"drain": drain}, payload,
                      args.batch, rate, args.wait),
            await run("through logplex", http, logplex.url + "/logs", procs, payload,
                      args.batch, rate, args.wait),
        ]
    mode = "max (closed loop)" if rate is None else f"open loop at {rate:,.0f} lines/s"
    print(f"logplex quick check: {count} bodies x {args.batch} lines, {mode}, "
          f"timing {args.timing}")
    print(f"{'path':<16} {'lines':>8} {'ingest/s':>10} {'delivered':>10} {'end-to-end/s':>12} "
          f"{'missing':>7} {'L10':>6} {'refused':>7}  CPU us/line")
    for result in results:
        print(result.row())
    direct, through = results
    if direct.deliver_seconds and through.deliver_seconds:
        ratio = (through.delivered / through.deliver_seconds) / (
            direct.delivered / direct.deliver_seconds)
        print(f"through logplex / direct: {ratio:.2f}")
    lossless = through.delivered == through.lines and not through.refused
    print("no loss" if lossless else "LOSS: some lines did not reach the drain")
    return 0 if lossless else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20_000, help="lines/s offered")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--batch", type=int, default=500, help="lines per POST")
    parser.add_argument("--wait", type=float, default=15.0, help="max seconds for delivery")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of load sent first and not measured")
    parser.add_argument("--timing", choices=["heroku", "fast"], default="heroku")
    parser.add_argument("--max", action="store_true", help="closed loop, as fast as possible")
    sys.exit(asyncio.run(main(parser.parse_args())))
