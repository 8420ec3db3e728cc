"""docs/docker.md's set-up, as a new user follows it: on a fresh copy of the checkout
(no .venv), the commands of "Set up a machine", in the order written, end with the stack
up on the compose backend. And every long-running service of the compose files has a
healthcheck, as `docker-compose config` resolves them.

Cheap where it can be: the base image is reused when it exists (as the script does), so
the cost is a fresh .venv, `simctl stack build` and one `up`/`down`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "stack"


def _docker_ready() -> str | None:
    if not shutil.which("docker"):
        return "docker CLI not installed (scripts/docker-setup.sh)"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "`docker info` failed: no Docker engine (scripts/docker-setup.sh starts one)"
    return None


def _need_docker() -> None:
    reason = _docker_ready()
    if reason is None:
        return
    if os.environ.get("SIMCTL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SIMCTL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def setup_commands(doc: Path = ROOT / "docs" / "docker.md") -> list[str]:
    """The indented command block that opens "## Set up a machine"."""
    text = doc.read_text()
    section = text.split("## Set up a machine", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"\n\n((?: {4}\S.*\n)+)", section)
    assert block, "docs/docker.md: no command block under 'Set up a machine'"
    return [line.strip() for line in block.group(1).splitlines()]


def fresh_copy(dest: Path) -> Path:
    """What `git clone` of this checkout gives once its changes are committed: the
    tracked and not-ignored files, without .venv, wheels or build output."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def clean_env(state: Path, project: str) -> dict[str, str]:
    """The user's shell: no virtualenv active, no simctl variables from this test run."""
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and p != venv_bin and not p.startswith(str(ROOT)))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SIMCTL", "VIRTUAL_ENV", "PYTHON", "PYTEST"))}
    env.update(PATH=path or "/usr/bin:/bin", SIMCTL_STATE_DIR=str(state),
               SIMCTL_PROJECT=project, NO_COLOR="1")
    return env


def test_setup_block_is_what_this_test_runs() -> None:
    commands = setup_commands()
    assert commands[0] == "bash scripts/docker-setup.sh"
    assert commands[-1].startswith(".venv/bin/simctl up --backend compose")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_docs_setup_on_a_fresh_clone(tmp_path: Path) -> None:
    _need_docker()
    clone = fresh_copy(tmp_path / "clone")
    assert not (clone / ".venv").exists()
    env = clean_env(tmp_path / "state", f"fresh{os.getpid()}")
    simctl = clone / ".venv" / "bin" / "simctl"
    try:
        for command in setup_commands():
            result = subprocess.run(["bash", "-c", command], cwd=clone, env=env, text=True,
                                    capture_output=True, timeout=600, check=False)
            assert result.returncode == 0, (command, result.stdout[-3000:],
                                            result.stderr[-3000:])
        services = yaml.safe_load((clone / "stack" / "compose.yaml").read_text())["services"]
        # A router may still be fetching its first route table just after `up` (degraded,
        # "no route table yet"): give every service a little while to report ok.
        deadline = time.monotonic() + 60
        while True:
            status = subprocess.run([str(simctl), "status"], cwd=clone, env=env, text=True,
                                    capture_output=True, timeout=60, check=False)
            assert status.returncode == 0, status.stderr
            healthy = [ln for ln in status.stdout.splitlines() if " ok " in ln]
            if len(healthy) == len(services) or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert len(healthy) == len(services), status.stdout  # one row per service
    finally:
        down = subprocess.run([str(simctl), "down"], cwd=clone, env=env, text=True,
                              capture_output=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    left = subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=com.docker.compose.project={env['SIMCTL_PROJECT']}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == []


def test_taken_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    """Another stack holding a published port: one line naming it (exit 6), no container
    started, instead of compose's own "Encountered errors while bringing up the project"."""
    _need_docker()
    if subprocess.run(["docker", "image", "inspect", "simctl:latest"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("image simctl:latest missing (run `simctl stack build`)")
    project = f"taken{os.getpid()}"
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "SIMCTL_PROJECT": project,
           "NO_COLOR": "1"}
    with socket.socket() as holder:
        # SO_REUSEADDR: the previous test's stack leaves 7100 in TIME_WAIT, which would make
        # a plain bind fail although nothing holds the port (and then `up` would start).
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", 7100))
            holder.listen()
        except OSError:
            pass  # something listens there already: the same situation
        try:
            result = subprocess.run([sys.executable, "-m", "simctl", "up", "--backend",
                                     "compose"], env=env, capture_output=True, text=True,
                                    timeout=120, check=False)
        finally:
            subprocess.run([sys.executable, "-m", "simctl", "down"], env=env,
                           capture_output=True, timeout=120, check=False)
    assert result.returncode == 6, result.stdout + result.stderr
    assert re.match(r"error: port \d+ \([\w-]+\) is already in use", result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1
    left = subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == []


def compose_config(*files: Path, env: dict[str, str] | None = None) -> dict:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed")
    args = [tool, "-p", "cfgcheck"]
    for file in files:
        args += ["-f", str(file)]
    result = subprocess.run([*args, "config"], capture_output=True, text=True, check=False,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("extra", [[], ["compose.prometheus.yaml"]])
def test_every_service_has_a_healthcheck(extra: list[str], tmp_path: Path) -> None:
    files = [STACK / "compose.yaml", *(STACK / name for name in extra)]
    services = compose_config(*files, env={"SIMCTL_PROMETHEUS_DIR": str(tmp_path)})["services"]
    assert "toxiproxy" in services
    assert ("prometheus" in services) == bool(extra)
    missing = [name for name, spec in services.items()
               if not (spec.get("healthcheck") or {}).get("test")]
    assert missing == []
