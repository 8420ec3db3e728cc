"""`simctl stack build`: the wheelhouse and the image simctl:latest, offline.

The wheels of simctl and every dependency are built on the host (`pip wheel`) into
stack/.wheels, the build context holds only the Dockerfile, its entry point and those
wheels, and the image installs with `pip install --no-index`: the build never needs a
package index, so it works on machines whose containers cannot reach one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from simctl.backends.compose import DockerUnavailable
from simctl.backends.prometheus import IMAGE_LABEL, stage_binary
from simctl.errors import StackStartError
from simctl.stack.definition import default_stack_dir

DEFAULT_TAG = "simctl:latest"
DEFAULT_BASE = "python:3.11-slim"


def project_root() -> Path:
    root = default_stack_dir().parent
    if not (root / "pyproject.toml").is_file():
        raise StackStartError(f"{root}: no pyproject.toml; `simctl stack build` needs a "
                              "simctl checkout")
    return root


def build_wheels(root: Path, dest: Path) -> float:
    """`pip wheel` simctl (with its docker extra left out) and its dependencies into dest."""
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("simctl-*.whl"):  # always rebuild simctl itself
        old.unlink()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(dest), str(root)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln] or ["(no output)"]
        raise StackStartError(f"pip wheel failed: {lines[-1]}")
    return time.monotonic() - started


def build_image(base: str = DEFAULT_BASE, tag: str = DEFAULT_TAG) -> dict[str, float]:
    """Build the wheelhouse, then the image. Returns the time of each step."""
    if not shutil.which("docker"):
        raise DockerUnavailable("docker: command not found (install docker.io, or run "
                                "scripts/docker-setup.sh)")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                          capture_output=True, text=True, check=False)
    if info.returncode != 0:
        raise DockerUnavailable("no Docker engine answers `docker info`; start dockerd "
                                "(scripts/docker-setup.sh does)")
    root = project_root()
    context = root / "stack"
    times = {"wheels": build_wheels(root, context / ".wheels")}
    started = time.monotonic()
    # `up --prometheus` on compose runs the host's prometheus from this image; the label
    # says it is there (docs/alerts.md, "Real Prometheus").
    prometheus_version = stage_binary(context)
    labels = ["--label", f"{IMAGE_LABEL}={prometheus_version}"] if prometheus_version else []
    result = subprocess.run(
        ["docker", "build", "--quiet", "--build-arg", f"BASE={base}", "-t", tag, *labels,
         "-f", str(context / "Dockerfile"), str(context)],
        capture_output=True, text=True, check=False,
        env={**__import__("os").environ, "DOCKER_BUILDKIT": "0"},
    )
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln] or ["(no output)"]
        raise StackStartError(f"docker build failed: {lines[-1]}")
    times["image"] = time.monotonic() - started
    return times
