"""`simctl up --prometheus` on the local backend: a real Prometheus (Debian's binary) beside
the stack, scraping every target of the embedded evaluator with the stack's alert rules,
shown by `status`, stopped by `down`; without the binary, one line and exit 3, nothing
started.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml

from simctl.pytest_plugin import SLOTS, free_port_offset

pytestmark = pytest.mark.slow
SPARE_SLOTS = (11000, 12500, 14000)  # when other stacks hold every usual slot


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
            "SIMCTL_PROJECT": f"prom{os.getpid()}"}


def sim(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def api(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_up_prometheus_scrapes_the_stack(env: dict[str, str]) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (scripts/debian-packages.sh prometheus)")
    offset = free_port_offset(SLOTS + SPARE_SLOTS)
    up = sim(env, "up", "--timing", "fast", "--prometheus", "--port-offset", str(offset))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{7900 + offset}"
        assert url in up.stdout
        status = sim(env, "status")
        row = next(ln for ln in status.stdout.splitlines() if " prometheus " in ln)
        assert " ok " in row, status.stdout
        folder = Path(env["SIMCTL_STATE_DIR"]) / env["SIMCTL_PROJECT"] / "prometheus"
        config_file = folder / "prometheus.yml"
        assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
        config = yaml.safe_load(config_file.read_text())
        assert config["global"]["scrape_interval"] == "1s"
        expected = {(j["job_name"], c["labels"]["instance"])
                    for j in config["scrape_configs"] for c in j["static_configs"]}
        assert ("router", "router.1") in expected
        deadline = time.monotonic() + 30
        while True:  # every target scraped at least once, and healthy
            targets = api(f"{url}/api/v1/targets")["data"]["activeTargets"]
            seen = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets}
            if set(seen) == expected and set(seen.values()) == {"up"}:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(1)
        rules = api(f"{url}/api/v1/rules")["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        assert "RouterRequestTimeouts" in names
        pid = next(p for p in json.loads((folder.parent / "state.json").read_text())
                   ["processes"].values() if p["name"] == "prometheus")["pid"]
    finally:
        down = sim(env, "down")
    assert down.returncode == 0, down.stderr
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_missing_binary_is_one_line_and_starts_nothing(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    bare = {**env, "PATH": str(Path(sys.executable).parent)}  # python, but no prometheus
    result = sim(bare, "up", "--prometheus")  # said before any port is checked
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: --prometheus needs the `prometheus` binary")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / env["SIMCTL_PROJECT"] / "state.json").exists()
