"""A team's own app behind the router, from its Procfile (examples/hello): catalogue
scenarios marked app_agnostic pass against it, its stdout reaches `simctl logs` as
app[web.N] lines, and a Procfile that cannot run fails `up` cleanly, leaving nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from simctl.pytest_plugin import free_port_offset

EXAMPLE = Path(__file__).parents[2] / "examples" / "hello"
pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SIMCTL_SCENARIOS_DIR", "SIMCTL_RUNBOOKS_DIR")}
    return {**env, "SIMCTL_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1",
            "COLUMNS": "200"}


def simctl(*args: str, env: dict[str, str], cwd: Path, timeout: float = 240
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def processes_in(folder: Path) -> list[psutil.Process]:
    """The team's processes: running in `folder`, and not simctl's own services."""
    found = []
    for proc in psutil.process_iter():
        try:
            if Path(proc.cwd()) == folder and proc.status() != "zombie" \
                    and "simctl" not in " ".join(proc.cmdline()):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def test_example_app_runs_app_agnostic_scenarios_and_logs(env: dict[str, str]) -> None:
    project, offset = "procfile-e2e", str(free_port_offset())
    up = simctl("up", "--timing", "fast", "--project", project, "--port-offset", offset,
                env=env, cwd=EXAMPLE)  # the project file: ./simctl.yaml
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "app 'web': 3 dynos of `python3 app.py`" in up.stdout
        assert len(processes_in(EXAMPLE)) == 3
        booted = simctl("logs", "--project", project, "--dyno", "web.1", "-n", "50", env=env,
                        cwd=EXAMPLE)
        assert "heroku[web.1]: State changed from starting to up" in booted.stdout
        verify = simctl("verify", "slow-dyno", "drain-endpoint-down",
                        "stale-routes-sync-partition", "--project", project, env=env,
                        cwd=EXAMPLE)
        assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
        assert "3 of 3 scenario(s) passed" in verify.stdout
        logs = simctl("logs", "--project", project, "--dyno", "web.1", "-n", "200", env=env,
                      cwd=EXAMPLE)
        assert logs.returncode == 0, logs.stderr
        assert "app[web.1]: at=info method=GET path=\"/\" status=200" in logs.stdout
    finally:
        down = simctl("down", "--project", project, env=env, cwd=EXAMPLE)
    assert down.returncode == 0, down.stderr
    assert processes_in(EXAMPLE) == []


@pytest.mark.parametrize(("procfile", "code", "message"), [
    ("worker: python3 worker.py\n", 2,
     "no `web` process (found: worker); the router only sends traffic to `web` processes"),
    ("web: python3 -c 'import time; time.sleep(60)'\n", 3,
     "web.1: Error R10 (Boot timeout): `python3 -c 'import time; time.sleep(60)'` did not "
     "bind $PORT"),
    ("web: python3 -c 'raise SystemExit(4)'\n", 3,
     "web.1: `python3 -c 'raise SystemExit(4)'` exited with status 4 before binding $PORT"),
])
def test_a_procfile_that_cannot_serve_fails_up_and_leaves_nothing(
        env: dict[str, str], tmp_path: Path, procfile: str, code: int, message: str) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text(procfile)
    project = "procfile-bad"
    result = simctl("up", "--timing", "fast", "--project", project, "--port-offset",
                    str(free_port_offset()), "--app", f"web={app}", "--dynos", "1", env=env,
                    cwd=tmp_path, timeout=60)
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    state = Path(env["SIMCTL_STATE_DIR"]) / project
    assert not (state / "state.json").exists()
    assert processes_in(app) == []
    if code == 3:  # the error names the dyno's log, which keeps the platform's lines
        log = state / "logs" / "dyno-1.log"
        assert lines[0].endswith(f"(platform log: {log})")
        assert "heroku[web.1]: State changed from starting to crashed" in log.read_text()
    if "R10" in message:  # the platform's line, as `simctl logs` would have shown it
        assert "heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to " \
               "$PORT within 6 seconds of launch" in (state / "logs" / "dyno-1.log").read_text()
