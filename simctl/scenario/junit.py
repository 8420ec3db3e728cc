"""JUnit XML for CI: one test case per scenario.

    <testsuites name="simctl verify" tests=".." failures=".." errors=".." skipped=".." time="..">
      <testsuite name="simctl verify" ...>
        <testcase classname="simctl.scenarios" name="slow-web-1" time="9.19">
          <properties>
            <property name="seed" value="3"/>
            <property name="phase.preflight" value="0.040"/> ... (seconds; "skipped" when
            a phase was not reached)
            <property name="time_to_symptoms" value="4.513"/>
          </properties>
          <failure message="not recovered within 15s ..." type="failed">details</failure>
          <system-out>the timeline, one event a line</system-out>
        </testcase>

``failed`` and ``aborted`` runs are failures; ``error`` and ``interrupted`` runs are
errors (the scenario could not be judged); ``skipped`` ones are skipped.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simctl.scenario.engine import ABORTED, FAILED_RUN, PASSED, SKIPPED_RUN
from simctl.scenario.events import PHASES
from simctl.scenario.journal import iso

CLASSNAME = "simctl.scenarios"
CONTROL_CLASSNAME = "simctl.controls"


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters: drop them."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def _timeline(journal: dict[str, Any]) -> str:
    lines = []
    events = sorted(journal.get("phases", []) + journal.get("actions", []),
                    key=lambda e: (e.get("seq", 0)))
    for e in events:
        duration = e.get("duration")
        took = "" if duration is None else f" ({duration:.2f}s)"
        offset = e.get("offset", 0.0) or 0.0
        lines.append(f"[{offset:7.2f}s] {e['kind']:<8} {e['name']}: {e['status']}{took}")
        output = (e.get("output") or "").strip()
        if output:
            lines.extend(f"            {line}" for line in output.splitlines()[:40])
    return "\n".join(lines)


def _verdict(journal: dict[str, Any]) -> str:
    """The status JUnit reports: a control run passes when it failed the way it must."""
    control = journal.get("control")
    status = str(journal.get("status"))
    if control is None or status == SKIPPED_RUN:
        return status
    return PASSED if control.get("as_expected") else FAILED_RUN


def testcase(journal: dict[str, Any]) -> ET.Element:
    control = journal.get("control")
    name = str(journal["scenario"])
    if control is not None:  # one test case per control run, named by what it left out
        name = f"{name} [control {control['kind']}: without {control['without']}]"
    case = ET.Element("testcase", classname=CONTROL_CLASSNAME if control else CLASSNAME,
                      name=name, time=f"{journal.get('duration', 0.0) or 0.0:.3f}")
    if journal.get("start"):
        case.set("timestamp", str(journal["start"]))
    props = ET.SubElement(case, "properties")

    def prop(name: str, value: Any) -> None:
        ET.SubElement(props, "property", name=name, value=_clean(str(value)))

    for key in ("title", "seed", "timing", "status", "runbook"):
        if journal.get(key) is not None:
            prop(key, journal[key])
    phases = {p["name"]: p for p in journal.get("phases", [])}
    for name in PHASES:
        phase = phases.get(name)
        if phase is None:
            continue
        shown = "skipped" if phase["status"] == "skipped" else (
            f"{phase['duration']:.3f}" if phase.get("duration") is not None else "")
        prop(f"phase.{name}", shown)
        prop(f"phase.{name}.status", phase["status"])
    for key in ("time_to_symptoms", "time_to_recovery"):
        if journal.get(key) is not None:
            prop(key, f"{journal[key]:.3f}")
    for alert in journal.get("alerts", []):  # seconds from t = 0; "never" when it did not
        for key in ("fired_at", "resolved_at"):
            value = alert.get(key)
            prop(f"alert.{alert['alert']}.{key}", "never" if value is None else f"{value:.3f}")
    if control is not None:
        prop("control", control["kind"])
        prop("control.without", control["without"])
        prop("control.as_expected", str(bool(control.get("as_expected"))).lower())
    status = _verdict(journal)
    reason = _clean(str((control or {}).get("reason") or journal.get("reason") or status))
    if status == SKIPPED_RUN:
        ET.SubElement(case, "skipped", message=reason)
    elif status in (FAILED_RUN, ABORTED):
        failure = ET.SubElement(case, "failure", message=reason, type=str(status))
        failure.text = _clean(_failed_detail(journal) or reason)
    elif status != PASSED:
        error = ET.SubElement(case, "error", message=reason, type=str(status))
        error.text = _clean(_failed_detail(journal) or reason)
    out = ET.SubElement(case, "system-out")
    out.text = _clean(_timeline(journal))
    return case


def _failed_detail(journal: dict[str, Any]) -> str:
    for e in journal.get("phases", []):
        if e["status"] in ("failed", "error") and e.get("output"):
            return f"{e['name']}: {e['output']}"
    return ""


def junit_document(journals: Sequence[dict[str, Any]], *, name: str = "simctl verify",
                   start: float | None = None, duration: float | None = None) -> ET.ElementTree:
    cases = [testcase(j) for j in journals]
    if duration is None:
        duration = sum(j.get("duration") or 0.0 for j in journals)
    counts = {
        "tests": str(len(journals)),
        "failures": str(sum(1 for j in journals if _verdict(j) in (FAILED_RUN, ABORTED))),
        "errors": str(sum(1 for j in journals
                          if _verdict(j) not in (PASSED, FAILED_RUN, ABORTED, SKIPPED_RUN))),
        "skipped": str(sum(1 for j in journals if _verdict(j) == SKIPPED_RUN)),
        "time": f"{duration:.3f}",
    }
    root = ET.Element("testsuites", {"name": name, **counts})
    suite = ET.SubElement(root, "testsuite",
                          {"name": name, "hostname": socket.gethostname(), **counts})
    if start is not None:
        suite.set("timestamp", iso(start) or "")
    suite.extend(cases)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str | Path, journals: Sequence[dict[str, Any]], **kwargs: Any) -> None:
    tree = junit_document(journals, **kwargs)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
