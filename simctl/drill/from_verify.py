"""A ``verify`` run in a drill's shape, so that it scores and reports like a drill
(docs/drills.md, "Reports"; ``simctl verify --report DIR``).

``timeline_from_journal`` maps one scenario of verify's JSON journal
(simctl/scenario/journal.py) to timeline entries: faults, undos, symptoms seen (probes),
alerts fired and resolved, runbook steps (commands by ``verify``), recovery holding, the
end. ``sli_samples`` reads the run's service levels back from the stack's monitor: the
load generator pushes its counters there (``job="load"``, ``instance`` = the run).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from simctl.errors import SimctlError

Entry = dict[str, Any]
WHO = "verify"
SAMPLE_EVERY = {"fast": 1.0, "heroku": 5.0}


def _phase(journal: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in journal.get("phases", []) if p.get("name") == name), None)


def _step_argv(runbook: Any, step_id: str) -> list[str]:
    step = runbook.step(step_id) if runbook is not None else None
    if step is None:
        return []
    return [str(a) for c in step.commands[:1] if c.argv for a in c.argv]


def _fault(scenario: Any, detail: dict[str, Any], name: str) -> tuple[str, str, str]:
    """(name, kind, target) of a journal's fault action, named as a drill names it."""
    from simctl.drill.conductor import fault_name, fault_target

    index = detail.get("index")
    faults = list(getattr(scenario, "faults", []) or [])
    if isinstance(index, int) and 0 <= index < len(faults):
        fault = faults[index]
        return fault_name(fault, index), fault.kind, fault_target(fault)
    return name, "fault", ""


def timeline_from_journal(journal: dict[str, Any], runbook: Any = None,
                          sli: list[Entry] | None = None,
                          scenario: Any = None) -> tuple[dict[str, Any], list[Entry]]:
    """(drill.json equivalent, entries oldest first) of one scenario's journal."""
    start = float(journal.get("start_unix") or 0.0)
    end = float(journal.get("end_unix") or start)
    faults = _phase(journal, "faults") or _phase(journal, "symptoms")
    t0 = float(faults["start_unix"]) if faults else start
    status = journal.get("status")
    reason = {"passed": "recovered", "aborted": "aborted",
              "interrupted": "interrupted"}.get(str(status), "ended")
    drill = {"id": f"verify-{journal.get('scenario')}-{int(start)}",
             "scenario": journal.get("scenario"), "status": "ended", "started_at": start,
             "ended_at": end, "end_reason": reason, "options": {"hidden": False,
                                                                "source": "verify"},
             "verify_status": status, "verify_reason": journal.get("reason", "")}
    runbook_id = runbook.id if runbook is not None else None
    entries: list[Entry] = [{
        "t": start, "kind": "drill_started", "hidden": False, "drill": drill["id"],
        "scenario": journal.get("scenario"), "title": journal.get("title"),
        "conceal": False, "timing": journal.get("timing"), "responders": [WHO], "delay": 0}]
    for action in journal.get("actions", []):
        kind, at = action.get("kind"), float(action.get("start_unix") or t0)
        detail = action.get("detail") or {}
        if kind == "fault":
            name, fault_kind, target = _fault(scenario, detail, str(action.get("name")))
            entries.append({"t": at, "kind": "fault_applied", "hidden": False, "name": name,
                            "fault_kind": fault_kind, "target": target,
                            "description": action.get("name")})
        elif kind == "undo":
            entries.append({"t": at, "kind": "fault_rolled_back", "hidden": False,
                            "name": detail.get("fault") or action.get("name"),
                            "ok": action.get("status") == "ok"})
        elif kind == "symptom":
            seen = detail.get("seen_at")
            entries.append({"t": t0 + float(seen) if seen is not None else at, "kind": "probe",
                            "hidden": False, "probe": action.get("name"), "ok": True})
        elif kind == "step":
            entries.append({"t": at, "kind": "command", "hidden": False, "who": WHO,
                            "argv": _step_argv(runbook, str(action.get("name"))),
                            "exit_code": 0 if action.get("status") == "ok" else 1,
                            "duration_s": action.get("duration"),
                            "matched_step": action.get("name"), "runbook": runbook_id})
    for alert in journal.get("alerts", []):
        for state, key in (("firing", "fired_at"), ("resolved", "resolved_at")):
            if alert.get(key) is not None:
                entries.append({"t": t0 + float(alert[key]), "kind": "alert", "hidden": False,
                                "alert": alert.get("alert"), "state": state, "value": None,
                                "summary": "", "runbook": runbook_id})
    recovery = _phase(journal, "recovery")
    if recovery and recovery.get("status") == "ok" and recovery.get("end_unix"):
        entries.append({"t": float(recovery["end_unix"]), "kind": "recovery_holding",
                        "hidden": False, "since": float(recovery["end_unix"])})
    residue = journal.get("residue") or []
    entries.append({"t": end, "kind": "residue_check", "hidden": False, "ok": not residue,
                    "problems": list(residue)})
    entries.extend(sli or [])
    entries.append({"t": end + 0.001, "kind": "drill_ended", "hidden": False, "reason": reason,
                    "revealed": True})
    entries.sort(key=lambda e: e["t"])
    return drill, entries


def _queries(run_id: str, window: str) -> dict[str, str]:
    sel = f'job="load",instance="{run_id}"'
    return {
        "all": f"sum(increase(simctl_load_requests_total{{{sel}}}[{window}]))",
        "ok": f'sum(increase(simctl_load_requests_total{{{sel},outcome="ok"}}[{window}]))',
        "codes": f"sum by (code) (increase(simctl_load_router_codes_total{{{sel}}}[{window}]))",
        "p50": "histogram_quantile(0.5, sum by (le) "
               f"(rate(router_request_duration_seconds_bucket[{window}])))",
        "p99": "histogram_quantile(0.99, sum by (le) "
               f"(rate(router_request_duration_seconds_bucket[{window}])))",
        "dropped": f"sum(increase(logplex_drain_dropped_total[{window}]))",
    }


async def _fetch(url: str, run_id: str, start: float, end: float,
                 every: float) -> list[Entry]:
    from simctl.views.prom_client import PromClient

    window_s = 3 * every
    window = f"{int(window_s)}s"
    got: dict[str, dict[float, Any]] = {}
    async with PromClient(url) as prom:
        for name, expr in _queries(run_id, window).items():
            series = await prom.query_range(expr, start, end, every)
            if name == "codes":
                got[name] = {}
                for s in series:
                    for t, v in s.points:
                        got[name].setdefault(round(t, 3), {})[s.labels.get("code", "?")] = v
            else:
                got[name] = {round(t, 3): v for s in series[:1] for t, v in s.points}
    samples = []
    for t in sorted(got["all"]):
        total = got["all"][t] or 0.0
        ok = got["ok"].get(t, 0.0) or 0.0
        codes = {c: round(n) for c, n in got["codes"].get(t, {}).items() if n and n >= 0.5}

        def ms(name: str, at: float = t) -> float | None:
            value = got[name].get(at)
            return None if value is None else round(value * 1000, 1)

        dropped = got["dropped"].get(t)
        samples.append({"t": t, "kind": "sli", "hidden": False,
                        "success_ratio": round(ok / total, 4) if total > 0 else None,
                        "p50_ms": ms("p50"), "p99_ms": ms("p99"),
                        "rps": round(total / window_s, 2), "failed": round(total - ok),
                        "hcodes": codes, "drain_dropped": dropped, "window_s": window_s})
    return samples


def sli_samples(monitor_url: str | None, journal: dict[str, Any]) -> list[Entry]:
    """The run's ``sli`` entries from the monitor's history ([] without a monitor, or when
    it does not answer: the report then has no charts, the rest stands)."""
    run_id = next((a.get("detail", {}).get("run_id") for a in journal.get("actions", [])
                   if a.get("kind") == "load" and a.get("detail", {}).get("run_id")), None)
    if not monitor_url or not run_id or not journal.get("start_unix"):
        return []
    every = SAMPLE_EVERY.get(str(journal.get("timing")), 1.0)
    start = float(journal["start_unix"])
    end = float(journal.get("end_unix") or start)
    try:
        return asyncio.run(_fetch(monitor_url, run_id, start, end, every))
    except (SimctlError, OSError, ValueError, KeyError):
        return []


def write_reports(folder: str | Path, journals: list[dict[str, Any]],
                  monitor_url: str | None) -> list[Path]:
    """One report per scenario run (HTML, Markdown, JSON) in ``folder``: ``ID.html`` ...,
    ``ID-2.html`` for a second run of the same scenario (control runs)."""
    from simctl.drill.report import build, find_scenario, write_all
    from simctl.runbook.parser import parse_runbook

    folder = Path(folder)
    written: list[Path] = []
    used: dict[str, int] = {}
    for journal in journals:
        if journal.get("status") == "skipped" or not journal.get("start_unix"):
            continue
        scenario, runbook = find_scenario(str(journal.get("scenario")))
        if runbook is None and journal.get("runbook"):
            try:
                runbook = parse_runbook(journal["runbook"])
            except (SimctlError, OSError, ValueError):
                runbook = None
        drill, entries = timeline_from_journal(journal, runbook,
                                               sli_samples(monitor_url, journal), scenario)
        data = build(drill, entries, scenario, runbook)
        control = journal.get("control")
        if isinstance(control, dict):
            verdict = "failed as it must" if control.get("as_expected") else "did NOT fail"
            data.notes.append(f"control run ({control.get('kind')}) without "
                              f"{control.get('without')}: {verdict}")
        name = str(journal.get("scenario"))
        used[name] = used.get(name, 0) + 1
        stem = name if used[name] == 1 else f"{name}-{used[name]}"
        try:
            written += write_all(data, folder / f"{stem}.html", folder / f"{stem}.md",
                                 folder / f"{stem}.json")
        except SimctlError as exc:  # verify reports OSErrors and still stops its stack
            raise OSError(str(exc)) from None
    return written
