"""One catalogue scenario under the real timers (`--timing heroku`), in every CI run: a
probe or window written only for `fast` shows up here (docs/ci.md, "Heroku timing").
The whole catalogue runs under heroku in the nightly job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset

SCENARIO = "dyno-closes-connection"  # H13: about 2 minutes under heroku (alert for: 30s)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_catalogue_scenario_passes_under_heroku_timing(tmp_path: Path) -> None:
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    journal = tmp_path / "heroku.json"
    project = f"vheroku{os.getpid()}"
    run = subprocess.run(
        [sys.executable, "-m", "simctl", "verify", SCENARIO, "--timing", "heroku",
         "--project", project, "--port-offset", str(free_port_offset((5000, 12000, 3500))),
         "--json", str(journal)],
        env=env, text=True, capture_output=True, timeout=360, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr
    document = json.loads(journal.read_text())
    assert document["timing"] == "heroku"
    [scenario] = document["scenarios"]
    assert (scenario["scenario"], scenario["timing"], scenario["status"]) == (
        SCENARIO, "heroku", "passed")
    assert not (tmp_path / "state" / project / "state.json").exists()
