"""Control runs without a stack: which runs a control expands to, how each is judged,
and how JUnit reports one (docs/ci.md, "Control runs")."""

from __future__ import annotations

from pathlib import Path

import pytest

from simctl.scenario.controls import expand
from simctl.scenario.engine import EngineOptions, ScenarioResult
from simctl.scenario.events import EventLog
from simctl.scenario.junit import junit_document
from simctl.scenario.loader import load_scenario

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def scenario(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SIMCTL_RUNBOOKS_DIR", str(FIXTURES / "engine" / "runbooks"))
    return load_scenario(FIXTURES / "engine" / "controls" / "useless-fault.yaml")


def result(status: str, failed_phase: str | None = None) -> ScenarioResult:
    log = EventLog()
    for name in ("preflight", "steady_state", "faults", "symptoms", "mitigation", "recovery"):
        log.finish(log.begin(name, "phase"), "failed" if name == failed_phase else "ok")
    return ScenarioResult("useless-fault", "t", 3, "fast", start=0.0, status=status,
                          reason="why", events=log.events)


def test_each_fault_and_each_step_leave_out_one_part_per_run(scenario) -> None:
    faults = expand(scenario, "each-fault")
    assert [(c.label, c.without_faults) for c in faults] == [
        ("fault 0 (slow)", frozenset({0})), ("fault 1 (useless)", frozenset({1}))]
    steps = expand(scenario, "each-step")
    assert [(c.label, c.without_steps) for c in steps] == [
        ("step heal-web-1", frozenset({"heal-web-1"}))]
    options = faults[1].options(EngineOptions(allow_shell=True))
    assert (options.control, options.without_faults, options.allow_shell) == (
        "each-fault", frozenset({1}), True)
    [none] = expand(scenario, "no-faults")
    assert none.must_fail_at == "symptoms"
    with pytest.raises(ValueError, match="unknown control"):
        expand(scenario, "each-thing")


def test_a_control_run_must_fail_and_where(scenario) -> None:
    [no_faults] = expand(scenario, "no-faults")
    assert no_faults.judge(result("failed", "symptoms")) == (True, "")
    assert no_faults.judge(result("failed", "recovery")) == (
        False, "failed, but not at symptoms: why")
    assert no_faults.judge(result("passed")) == (
        False, "passed without its faults: the scenario does not need it")
    assert no_faults.judge(result("error")) == (False, "ended error, not failed: why")
    each = expand(scenario, "each-fault")[1]
    assert each.judge(result("failed", "recovery"))[0]  # any failure will do


def test_junit_passes_a_control_that_failed_and_fails_one_that_passed(scenario) -> None:
    from simctl.scenario.journal import scenario_journal

    good, bad = expand(scenario, "each-fault")
    journals = []
    for control, run in ((good, result("failed", "symptoms")), (bad, result("passed"))):
        journal = scenario_journal(run)
        journal["control"] = control.as_dict(run)
        journals.append(journal)
    root = junit_document(journals).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    first, second = root.findall("./testsuite/testcase")
    assert first.get("name") == "useless-fault [control each-fault: without fault 0 (slow)]"
    assert first.find("failure") is None
    props = {p.get("name"): p.get("value") for p in first.find("properties")}
    assert (props["control"], props["control.as_expected"]) == ("each-fault", "true")
    failure = second.find("failure")
    assert failure is not None
    assert "fault 1 (useless): the scenario does not need it" in failure.get("message")
