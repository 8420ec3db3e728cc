"""`simctl verify --control each-fault|each-step`: a part the scenario does not need is
named, and a control run is labelled as one in the console, the JSON journal and JUnit
(docs/ci.md, "Control runs")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset

FIXTURES = Path(__file__).parents[1] / "fixtures" / "engine"


@pytest.mark.slow
def test_each_fault_names_the_fault_the_scenario_does_not_need(tmp_path: Path) -> None:
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"),
           "SIMCTL_RUNBOOKS_DIR": str(FIXTURES / "runbooks"), "NO_COLOR": "1",
           "COLUMNS": "200"}
    junit, journal = tmp_path / "controls.xml", tmp_path / "controls.json"
    project = f"vctl{os.getpid()}"
    run = subprocess.run(
        [sys.executable, "-m", "simctl", "verify", str(FIXTURES / "controls" /
                                                        "useless-fault.yaml"),
         "--control", "each-fault", "--project", project,
         "--port-offset", str(free_port_offset((10000, 7000, 8500))),
         "--junit", str(junit), "--json", str(journal)],
        env=env, text=True, capture_output=True, timeout=240, stdin=subprocess.DEVNULL)
    out = run.stdout
    assert run.returncode == 1, out + run.stderr  # one control run passed: not as it must
    assert "control run (each-fault): useless-fault without fault 0 (slow); it must fail" in out
    assert "✔ control: failed, as it must" in out
    assert "not needed: useless-fault passes without fault 1 (useless)" in out
    assert "1 of 2 control run(s) failed as they must" in out
    document = json.loads(journal.read_text())
    assert document["control"] == "each-fault"
    controls = [s["control"] for s in document["scenarios"]]
    assert [(c["without"], c["as_expected"]) for c in controls] == [
        ("fault 0 (slow)", True), ("fault 1 (useless)", False)]
    without_slow = document["scenarios"][0]
    phases = {p["name"]: p["status"] for p in without_slow["phases"]}
    assert phases["symptoms"] == "failed"
    assert [a["name"] for a in without_slow["actions"] if a["kind"] == "fault"] == [
        "toxic latency downstream latency=1 on drain.audit"]
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("simctl.controls", "useless-fault [control each-fault: without fault 0 (slow)]"),
        ("simctl.controls", "useless-fault [control each-fault: without fault 1 (useless)]")]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert "the scenario does not need it" in (failure.get("message") or "")
    assert not (tmp_path / "state" / project / "state.json").exists()
