"""A team's image as the app's dynos on the compose backend (docs/apps.md, "The compose
backend"): examples/hello in an image FROM simctl-base:bookworm, `up --app web=IMAGE`,
a request through the router, `app[web.N]` lines in `simctl logs`, a killed container
crashing its dyno and restarted at once, an app-agnostic scenario verified against it,
and `down` leaving no container, network or relay process. A missing image is one line
(exit 3) with nothing started.

Needs a Docker engine with simctl:latest and simctl-base:bookworm
(scripts/docker-setup.sh); skipped without them unless SIMCTL_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from simctl.backends import procs

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
BASE = "simctl-base:bookworm"
# HOST: the app binds every address of the dyno's network namespace, as on Heroku
DOCKERFILE = f"""FROM {BASE}
COPY app.py /app/app.py
WORKDIR /app
ENV HOST=0.0.0.0 PYTHONUNBUFFERED=1
CMD ["python3", "app.py"]
"""


def _missing() -> str | None:
    if not shutil.which("docker") or subprocess.run(
            ["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker engine (scripts/docker-setup.sh starts one)"
    for image in ("simctl:latest", BASE):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          check=False).returncode != 0:
            return f"image {image} missing (scripts/docker-setup.sh)"
    return None


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("SIMCTL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SIMCTL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def sim(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def leftovers(project: str) -> list[str]:
    out = []
    for args in (["docker", "ps", "-a"], ["docker", "network", "ls"]):
        result = subprocess.run([*args, "-q", "--filter",
                                 f"label=com.docker.compose.project={project}"],
                                capture_output=True, text=True, check=True)
        out += result.stdout.split()
    return out


def test_missing_image_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    project = f"capp{os.getpid()}m"
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "SIMCTL_PROJECT": project,
           "NO_COLOR": "1"}
    result = sim(env, "up", "--backend", "compose", "--app", "web=simctl-no-such-image:1")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr == ("error: app 'web': image simctl-no-such-image:1 does not exist "
                             "(docker build or pull it first)\n")
    assert leftovers(project) == []
    assert not (tmp_path / project / "state.json").exists()


def test_image_app_behind_the_router_on_compose(tmp_path: Path) -> None:
    project = f"capp{os.getpid()}"
    image = f"simctl-test-hello:{os.getpid()}"
    context = tmp_path / "image"
    context.mkdir()
    shutil.copy(ROOT / "examples" / "hello" / "app.py", context / "app.py")
    (context / "Dockerfile").write_text(DOCKERFILE)
    built = subprocess.run(["docker", "build", "-q", "-t", image, str(context)],
                           env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True,
                           text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"),
           "SIMCTL_PROJECT": project, "NO_COLOR": "1"}
    folder = tmp_path / "state" / project
    try:
        up = sim(env, "up", "--backend", "compose", "--timing", "fast", "--app",
                 f"web={image}")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"app 'web': 3 dynos of image {image}" in up.stdout
        assert (folder / "compose.apps.yaml").stat().st_mode & 0o777 == 0o600
        request = urllib.request.Request("http://127.0.0.1:21201/",
                                         headers={"Host": "web.localhost"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert re.fullmatch(r"hello from web\.[123]\n", response.read().decode())
        deadline = time.monotonic() + 30
        logs = ""
        while time.monotonic() < deadline and not (
                "app[web.1]: listening on port 8401" in logs
                and re.search(r"app\[web\.\d\]: at=info method=GET", logs)):
            time.sleep(0.5)
            logs = sim(env, "logs", "-n", "300").stdout
        assert "heroku[web.1]: State changed from starting to up" in logs
        assert "app[web.1]: listening on port 8401" in logs
        assert re.search(r"app\[web\.\d\]: at=info method=GET", logs), logs[-3000:]
        assert procs.owned(folder), "the relay of the app's containers runs"
        # a crash: Heroku's lines, and the container restarted at once (the first crash)
        container = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
             "--filter", "label=org.simctl.dyno=web.2"],
            capture_output=True, text=True, check=True).stdout.split()
        assert len(container) == 1
        subprocess.run(["docker", "kill", container[0]], capture_output=True, check=True)
        wanted = ["heroku[web.2]: Process exited with status 137",
                  "heroku[web.2]: State changed from up to crashed",
                  "heroku[web.2]: State changed from crashed to starting"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                all(line in logs for line in wanted)
                and logs.count("heroku[web.2]: State changed from starting to up") == 2):
            time.sleep(0.5)
            logs = sim(env, "logs", "--dyno", "web.2", "-n", "300").stdout
        assert all(line in logs for line in wanted), logs[-3000:]
        assert logs.count("heroku[web.2]: State changed from starting to up") == 2
        verify = sim(env, "verify", "slow-dyno", "--backend", "compose", timeout=400)
        assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    finally:
        down = sim(env, "down")
        subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True,
                       check=False)
    assert down.returncode == 0, down.stderr
    assert leftovers(project) == []
    assert procs.owned(folder) == []
    assert not (folder / "compose.apps.yaml").exists()
