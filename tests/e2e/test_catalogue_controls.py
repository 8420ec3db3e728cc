"""Control runs over the whole catalogue: no scenario can rubber-stamp.

For every scenario in scenarios/: run without its faults, the symptoms must not appear
(the run fails at `symptoms`); run without its runbook's steps, the platform must not
recover (the run fails at `recovery`). Each control is one `simctl verify --all
--control ...`, both at once on a stack each, read back from their JSON journals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset
from simctl.scenario import catalog
from simctl.scenario.catalog import scenarios_dir

# Two stacks and two full catalogue runs in the module fixture: far over the per-test default.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CATALOGUE = sorted(p.stem for p in catalog.scenario_files(scenarios_dir()))
EXPECTED_FAILURE = {"no-faults": "symptoms", "no-mitigation": "recovery"}
# Known to recover without its runbook: say why, and the control passing turns this red.
SELF_HEALING: dict[str, str] = {}


@pytest.fixture(scope="module")
def journals(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """Both control passes at once, each on its own stack: the runs mostly wait on the
    platform's timers, so two side by side take the time of the longer one."""
    tmp = tmp_path_factory.mktemp("controls")
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp), "NO_COLOR": "1"}
    sim = [sys.executable, "-m", "simctl"]
    projects = {control: f"controls{os.getpid()}-{i}"
                for i, control in enumerate(EXPECTED_FAILURE)}
    candidates = [(6700, 12000), (4500, 9000)]
    out: dict[str, dict[str, dict]] = {}
    started: list[str] = []
    try:
        for (control, project), slots in zip(projects.items(), candidates, strict=True):
            up = subprocess.run([*sim, "up", "--timing", "fast", "--project", project,
                                 "--port-offset", str(free_port_offset(slots))], env=env,
                                capture_output=True, text=True, timeout=120)
            assert up.returncode == 0, f"{control}: {up.stderr}"
            started.append(project)
        runs = {control: subprocess.Popen(
                    [*sim, "verify", "--all", "--control", control, "--project", project,
                     "--json", str(Path(tmp) / f"{control}.json")], env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for control, project in projects.items()}
        for control, run in runs.items():
            try:
                _, stderr = run.communicate(timeout=1200)
            except subprocess.TimeoutExpired:
                run.kill()
                raise
            journal = json.loads((Path(tmp) / f"{control}.json").read_text())
            out[control] = {s["scenario"]: s for s in journal["scenarios"]}
            # exit 0 exactly when every control run failed the way it must
            as_expected = all(s["control"]["as_expected"] for s in journal["scenarios"])
            assert run.returncode == (0 if as_expected else 1), \
                f"{control}: exit {run.returncode}\n{stderr}"
    finally:
        for project in started:
            subprocess.run([*sim, "down", "--project", project], env=env,
                           capture_output=True, timeout=60)
    return out


@pytest.mark.parametrize("control", sorted(EXPECTED_FAILURE))
@pytest.mark.parametrize("scenario", CATALOGUE)
def test_control_run_fails_where_it_must(journals, control, scenario, request):
    if control == "no-mitigation" and scenario in SELF_HEALING:
        request.applymarker(pytest.mark.xfail(reason=SELF_HEALING[scenario], strict=True))
    run = journals[control][scenario]
    phases = {p["name"]: p["status"] for p in run["phases"]}
    assert run["status"] == "failed", f"{scenario} passed without its {control[3:]}"
    assert phases[EXPECTED_FAILURE[control]] == "failed", phases
    assert phases["residue"] == "ok"
    assert run["control"]["kind"] == control
    assert run["control"]["as_expected"], run["control"]["reason"]


@pytest.mark.parametrize("scenario", CATALOGUE)
def test_no_alert_fires_without_the_faults(journals, scenario):
    """The alerts a scenario names (docs/alerts.md) stay quiet on the healthy stack."""
    run = journals["no-faults"][scenario]
    assert run["alerts"], "every catalogue scenario names alerts, and the stack has a monitor"
    assert [a["alert"] for a in run["alerts"] if a["fired_at"] is not None] == []
