"""The compose backend on a real Docker engine: the compose file is valid for v1 and v2,
up -> all healthy -> a request through the router answered -> down leaves nothing,
process faults through the Docker SDK, scenarios through `simctl verify --backend compose`
and no residue after an interrupted verify.

Needs a Docker engine and the image simctl:latest (`scripts/docker-setup.sh`). Without an
engine every test is skipped, unless SIMCTL_REQUIRE_DOCKER=1 makes that a failure. Where the
official Toxiproxy image cannot be pulled (no registry) the backend runs the embedded
server from simctl:latest and says so: the tests use that default as a user would get it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "stack" / "compose.yaml"
OFFICIAL_TOXIPROXY = "ghcr.io/shopify/toxiproxy:2.12.0"


def _docker_ready() -> str | None:
    """None when an engine answers and simctl:latest exists, else the reason."""
    if not shutil.which("docker"):
        return "docker CLI not installed (scripts/docker-setup.sh)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return "`docker info` failed: no Docker engine (scripts/docker-setup.sh starts one)"
    image = subprocess.run(["docker", "image", "inspect", "simctl:latest"],
                           capture_output=True, check=False)
    if image.returncode != 0:
        return "image simctl:latest missing (run `simctl stack build`)"
    return None


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    reason = _docker_ready()
    if reason is None:
        return
    if os.environ.get("SIMCTL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SIMCTL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _has_image(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          check=False).returncode == 0


def _inspect(service: str, env: dict[str, str], template: str) -> str:
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project="
         f"{env['SIMCTL_PROJECT']}", "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, check=True).stdout.split()
    assert ids, f"no container for {service}"
    return subprocess.run(["docker", "inspect", "-f", template, ids[0]], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "NO_COLOR": "1",
            "SIMCTL_PROJECT": f"ctest{os.getpid()}"}


def sim(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def leftovers(project: str) -> list[str]:
    out = []
    for kind in ("ps", "network"):
        args = ["docker", kind, "ls"] if kind == "network" else ["docker", "ps", "-a"]
        result = subprocess.run([*args, "-q", "--filter",
                                 f"label=com.docker.compose.project={project}"],
                                capture_output=True, text=True, check=True)
        out += [f"{kind} {line}" for line in result.stdout.split()]
    return out


@pytest.fixture
def stack(env: dict[str, str]):
    project = env["SIMCTL_PROJECT"]
    try:
        yield env
    finally:
        sim(env, "down")
        assert leftovers(project) == []


def test_compose_file_accepted_by_v1_and_v2() -> None:
    tools = []
    if shutil.which("docker-compose"):
        tools.append(["docker-compose"])
    if subprocess.run(["docker", "compose", "version"], capture_output=True,
                      check=False).returncode == 0:
        tools.append(["docker", "compose"])
    if not tools:
        pytest.skip("neither docker-compose nor docker compose is installed")
    for tool in tools:
        result = subprocess.run([*tool, "-p", "cfgcheck", "-f", str(COMPOSE_FILE), "config",
                                 "-q"], capture_output=True, text=True, check=False)
        assert result.returncode == 0, (tool, result.stderr)


def test_lifecycle_up_request_faults_down(stack: dict[str, str]) -> None:
    env = stack
    up = sim(env, "up", "--backend", "compose", "--timing", "fast")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "backend compose" in up.stdout
    if not _has_image(OFFICIAL_TOXIPROXY):
        assert "cannot be pulled" in up.stdout, up.stdout
    status = sim(env, "status")
    assert status.returncode == 0, status.stderr
    for service in ("toxiproxy", "sync", "router-1", "router-2", "logplex", "web.1",
                    "drain-main", "blackhole"):  # status names dyno-1 web.1
        line = next(ln for ln in status.stdout.splitlines() if f" {service} " in ln)
        assert " ok " in line, status.stdout
    request = urllib.request.Request("http://127.0.0.1:21201/",
                                     headers={"Host": "web.localhost"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    metrics = sim(env, "metrics", "router-1", "--grep", 'status="200"')
    assert metrics.returncode == 0
    assert "router_requests_total" in metrics.stdout
    assert sim(env, "pause", "dyno-2").returncode == 0
    assert "paused" in sim(env, "status").stdout
    assert sim(env, "resume", "dyno-2").returncode == 0
    assert sim(env, "kill", "dyno-3").returncode == 0
    assert "killed" in sim(env, "status").stdout
    assert sim(env, "restart", "dyno-3").returncode == 0
    assert sim(env, "stop", "dyno-3").returncode == 0
    assert _inspect("dyno-3", env, "{{.State.Status}}") == "exited"
    assert "stopped" in sim(env, "status").stdout
    assert sim(env, "start", "dyno-3").returncode == 0
    assert _inspect("dyno-3", env, "{{.State.Status}}") == "running"
    assert sim(env, "cpu", "router-2", "0.05").returncode == 0
    assert _inspect("router-2", env, "{{.HostConfig.CpuQuota}}") == "5000"
    assert sim(env, "cpu", "router-2", "none").returncode == 0
    assert sim(env, "disconnect", "router-2").returncode == 0
    assert _inspect("router-2", env, "{{len .NetworkSettings.Networks}}") == "0"
    again = sim(env, "disconnect", "router-2")
    assert again.returncode != 0
    assert again.stderr.startswith("error: router-2:"), again.stderr
    assert sim(env, "connect", "router-2").returncode == 0
    assert _inspect("router-2", env, "{{len .NetworkSettings.Networks}}") == "1"
    final = sim(env, "status").stdout
    assert "killed" not in final
    assert "paused" not in final
    down = sim(env, "down")
    assert down.returncode == 0, down.stderr
    assert leftovers(env["SIMCTL_PROJECT"]) == []
    assert "not running" in sim(env, "down").stdout  # twice is fine


SCENARIOS = [  # router, sync and logplex incidents
    "scenarios/slow-dyno.yaml",
    "scenarios/app-crashed.yaml",
    "scenarios/stale-routes-sync-partition.yaml",
    "scenarios/sync-poison-record.yaml",
    "scenarios/drain-endpoint-down.yaml",
]


def test_verify_scenarios_on_compose(env: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = sim(env, "verify", "--backend", "compose", "--junit", str(report), *SCENARIOS,
                 timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert report.read_text().count("<testcase") == len(SCENARIOS)
    assert leftovers(env["SIMCTL_PROJECT"]) == []


def test_interrupted_verify_leaves_nothing(env: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simctl", "verify", "--backend", "compose",
                             SCENARIOS[0]], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    project = env["SIMCTL_PROJECT"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(leftovers(project)) < 5:
        time.sleep(0.5)
    time.sleep(3)  # now inside up (or the scenario)
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            sim(env, "down")
    assert proc.returncode != 0
    assert leftovers(project) == []
