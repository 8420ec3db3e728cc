"""How long each `simctl` command takes to start: median wall time of N runs, against
`python -c pass` measured in the same run (docs/benchmarks.md, "CLI start-up").

    .venv/bin/python bench/cli_startup.py [--runs 15]

The commands run with a state folder of their own (SIMCTL_STATE_DIR), so `status` finds
no stack whatever else runs on the machine. Budget: 0.3 s per command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("simctl --help", [sys.executable, "-m", "simctl", "--help"]),
    ("simctl status (no stack)", [sys.executable, "-m", "simctl", "status"]),
    ("simctl scenario list", [sys.executable, "-m", "simctl", "scenario", "list"]),
]
BUDGET = 0.3


def measure(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, timeout=60)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "SIMCTL_STATE_DIR": state, "SIMCTL_PROJECT": "bench-cli",
               "NO_COLOR": "1"}
        rows = [(name, statistics.median(measure(argv, args.runs, env)))
                for name, argv in CASES]
    baseline = rows[0][1]
    print(f"{'command':<28}{'median s':>10}{'over python':>13}  budget {BUDGET} s")
    for name, median in rows:
        verdict = "" if name == CASES[0][0] else ("ok" if median <= BUDGET else "OVER")
        print(f"{name:<28}{median:>10.3f}{median - baseline:>13.3f}  {verdict}")


if __name__ == "__main__":
    main()
