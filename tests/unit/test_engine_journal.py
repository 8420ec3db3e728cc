"""The JSON journal and JUnit XML written from scenario results (no sockets)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from itertools import count
from pathlib import Path

from simctl.scenario.engine import ScenarioResult, SymptomCheck
from simctl.scenario.events import ERROR, FAILED, OK, SKIPPED, EventLog
from simctl.scenario.expressions import parse
from simctl.scenario.journal import iso, run_journal, scenario_journal, skipped_journal, write_json
from simctl.scenario.junit import junit_document, write_junit

T0 = 1_800_000_000.0


def make_result(status: str = "passed", reason: str = "") -> ScenarioResult:
    ticks = count()
    log = EventLog(clock=lambda: T0 + next(ticks) * 0.5)
    top = log.begin("slow-web-1", "scenario")
    for name in ("preflight", "steady_state"):
        log.finish(log.begin(name, "phase"), OK, f"{name} output")
    faults = log.begin("faults", "phase")
    log.finish(log.begin("toxic latency on web.1", "fault", t=1.0), OK, "added")
    log.finish(faults, OK, "1 fault(s) applied")
    symptoms = log.begin("symptoms", "phase")
    log.instant('http.count{code="H12"} > 0', "symptom", seen_at=2.5)
    log.finish(symptoms, OK)
    mitigation = log.begin("mitigation", "phase")
    log.finish(log.begin("heal-web-1", "step"), OK, "$ simctl heal web.1  (exit 0)")
    log.finish(mitigation, OK)
    recovery = log.begin("recovery", "phase")
    if status == "passed":
        log.finish(recovery, OK, "http.success_ratio >= 0.99: value 1")
    else:
        log.finish(recovery, FAILED, "http.success_ratio >= 0.99: value 0.5\x01")
    log.finish(log.begin("rollback", "phase"), OK)
    log.finish(log.begin("residue", "phase"), OK)
    log.finish(top, OK if status == "passed" else ERROR)
    result = ScenarioResult("slow-web-1", "A slow dyno", 3, "fast", start=T0, end=T0 + 12.0,
                            status=status, reason=reason, events=log.events,
                            time_to_symptoms=2.5,
                            time_to_recovery=1.25 if status == "passed" else None)
    result.symptoms = [SymptomCheck(0, parse('http.count{code="H12"} > 0'), 10.0, 2.5)]
    return result


def test_iso_times_are_utc_with_milliseconds() -> None:
    assert iso(T0) == "2027-01-15T08:00:00.000Z"
    assert iso(None) is None


def test_the_journal_has_every_phase_and_action_with_times_and_status() -> None:
    journal = scenario_journal(make_result())
    assert journal["scenario"] == "slow-web-1"
    assert (journal["seed"], journal["timing"], journal["status"]) == (3, "fast", "passed")
    assert journal["start"] == iso(T0)
    assert journal["duration"] == 12.0
    assert [p["name"] for p in journal["phases"]] == [
        "preflight", "steady_state", "faults", "symptoms", "mitigation", "recovery",
        "rollback", "residue"]
    for entry in journal["phases"] + journal["actions"]:
        assert set(entry) >= {"name", "kind", "start", "end", "duration", "status", "output"}
        assert entry["status"] in (OK, FAILED, ERROR, SKIPPED)
    preflight = journal["phases"][0]
    assert (preflight["duration"], preflight["output"]) == (0.5, "preflight output")
    assert preflight["start"].endswith("Z")
    assert [(a["kind"], a["name"]) for a in journal["actions"]] == [
        ("fault", "toxic latency on web.1"), ("symptom", 'http.count{code="H12"} > 0'),
        ("step", "heal-web-1")]
    assert journal["symptoms"] == [{"item": 0, "probe": 'http.count{code="H12"} > 0',
                                    "within": 10.0, "mode": "once", "seen_at": 2.5,
                                    "last": None}]
    assert (journal["time_to_symptoms"], journal["time_to_recovery"]) == (2.5, 1.25)
    json.dumps(journal)  # serialisable as is


def test_the_run_journal_counts_and_is_written_atomically(tmp_path: Path) -> None:
    failed = make_result("failed", "not recovered within 4s")
    document = run_journal([make_result(), failed, skipped_journal("x", "X", "fail-fast")],
                           start=T0, end=T0 + 30, status="failed", project="p", seed=None)
    assert document["summary"] == {"scenarios": 3, "passed": 1, "failed": 1, "skipped": 1}
    assert document["project"] == "p"
    path = tmp_path / "journal.json"
    write_json(path, document)
    assert json.loads(path.read_text())["scenarios"][1]["reason"] == "not recovered within 4s"
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


def test_junit_has_one_testcase_per_scenario_with_phase_timings() -> None:
    tree = junit_document([scenario_journal(make_result())], start=T0)
    root = tree.getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("1", "0", "0")
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 1
    case = cases[0]
    assert (case.get("classname"), case.get("name"), case.get("time")) == (
        "simctl.scenarios", "slow-web-1", "12.000")
    props = {p.get("name"): p.get("value") for p in case.findall("./properties/property")}
    assert props["seed"] == "3"
    assert props["phase.preflight"] == "0.500"
    assert props["phase.recovery.status"] == "ok"
    assert props["time_to_symptoms"] == "2.500"
    assert case.find("failure") is None
    out = case.find("system-out")
    assert out is not None
    assert "fault    toxic latency on web.1: ok" in (out.text or "")


def test_junit_failures_errors_and_skips(tmp_path: Path) -> None:
    journals = [
        scenario_journal(make_result("failed", "not recovered within 4s")),
        scenario_journal(make_result("interrupted", "interrupted by SIGTERM")),
        skipped_journal("later", "Later", "not run: --fail-fast after a failure"),
    ]
    path = tmp_path / "report.xml"
    write_junit(path, journals, duration=40.0)
    root = ET.parse(path).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped"),
            root.get("time")) == ("3", "1", "1", "1", "40.000")
    failed, interrupted, skipped = root.findall("./testsuite/testcase")
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == "not recovered within 4s"
    assert failure.get("type") == "failed"
    assert "recovery: http.success_ratio >= 0.99: value 0.5" in (failure.text or "")
    assert "\x01" not in (failure.text or "")  # control characters are not XML
    error = interrupted.find("error")
    assert error is not None
    assert error.get("message") == "interrupted by SIGTERM"
    skip = skipped.find("skipped")
    assert skip is not None
    assert skip.get("message") == "not run: --fail-fast after a failure"


def test_alert_checks_reach_the_journal_and_junit() -> None:
    from simctl.scenario.alert_watch import AlertCheck

    result = make_result()
    result.alerts = [AlertCheck("RouterRequestTimeouts", 15.0, fired_at=8.1234,
                                resolved_at=21.5),
                     AlertCheck("RouterHighErrorRatio", 15.0)]
    journal = scenario_journal(result)
    assert journal["alerts"] == [
        {"alert": "RouterRequestTimeouts", "within": 15.0, "fired_at": 8.123,
         "resolved_at": 21.5},
        {"alert": "RouterHighErrorRatio", "within": 15.0, "fired_at": None,
         "resolved_at": None}]
    case = junit_document([journal]).getroot().find("./testsuite/testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["alert.RouterRequestTimeouts.fired_at"] == "8.123"
    assert props["alert.RouterRequestTimeouts.resolved_at"] == "21.500"
    assert props["alert.RouterHighErrorRatio.fired_at"] == "never"
