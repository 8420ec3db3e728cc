"""A stack and a real Prometheus (Debian's `prometheus` binary) scraping it, for the views' tests.

Test modules import from here (``from tests.integration.views_helpers import ...``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from simctl.backends.local import LocalBackend
from simctl.backends.state import ProjectState
from simctl.pytest_plugin import free_port_offset

RULES = Path(__file__).parent.parent / "fixtures" / "views" / "rules.yml"


@contextmanager
def running_stack(name: str) -> Iterator[LocalBackend]:
    backend = LocalBackend(f"{name}-{os.getpid()}", timing="fast",
                           port_offset=free_port_offset())
    try:
        backend.up()
        yield backend
    finally:
        backend.down()


def scrape_targets(state: ProjectState) -> dict[str, list[str]]:
    """job -> host:port of every service with a /metrics (the fault plane's API has none)."""
    jobs: dict[str, list[str]] = {}
    for proc in state.processes.values():
        if proc.health_url and proc.role not in ("toxiproxy", "monitor"):
            address = proc.health_url.split("//", 1)[1].split("/", 1)[0]
            jobs.setdefault(proc.role, []).append(address)
    return jobs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def real_prometheus(state: ProjectState, folder: Path) -> Iterator[str]:
    """Prometheus scraping the stack every second with tests/fixtures/views/rules.yml."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (scripts/debian-packages.sh installs it)")
        pytest.skip("prometheus is not installed")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                           for job, targets in sorted(scrape_targets(state).items())],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={folder / 'prometheus.yml'}",
         f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={folder / 'data'}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((folder / "prometheus.log").read_text()[-2000:]) \
                        from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
