"""A drafted post-incident review in Markdown (docs/drills.md, "Reports").

The draft fills in what the timeline knows: summary, impact, timeline, the revealed
faults as root cause and contributing factors, what went well and badly (from the
score), and action items, among them one per runbook-gap candidate. The people who ran
the drill then edit it; the sections marked _to complete_ need their judgement.
"""

from __future__ import annotations

from simctl.drill.report import ReportData, clock, command_words, describe, events, seconds
from simctl.drill.score import ACK_BUDGET, ALERT_BUDGET, MITIGATE_BUDGET, SLO_SUCCESS_RATIO


def _faults(data: ReportData) -> list[str]:
    return [f"`{e.get('name')}`: {e.get('description') or ''} ({e.get('fault_kind')} on "
            f"`{e.get('target')}`)" for e in data.entries if e.get("kind") == "fault_applied"]


def _injected(data: ReportData) -> str:
    applied = [e for e in data.entries if e.get("kind") == "fault_applied"]
    if not applied:
        return "The incident"
    first = applied[0]
    more = f" and {len(applied) - 1} more fault(s)" if len(applied) > 1 else ""
    return f"A {first.get('fault_kind')} fault on `{first.get('target')}` " \
           f"({first.get('description')}){more}"


def _in_review(entry: dict) -> bool:
    """The review's timeline leaves out probe changes, checks and the drill's own
    commands (its ack and hint entries say the same)."""
    if entry.get("kind") in ("probe", "residue_check", "stack_reset"):
        return False
    if entry.get("kind") == "command":
        return command_words(entry)[1:2] not in (["drill"], ["report"])
    return True


def _went_well(data: ReportData) -> list[str]:
    s, out = data.score, []
    if s.time_to_alert is not None and s.time_to_alert <= ALERT_BUDGET[0]:
        out.append(f"The alert fired {seconds(s.time_to_alert)} after the fault.")
    if s.ack_after_alert is not None and s.ack_after_alert <= ACK_BUDGET[0]:
        out.append(f"The page was acknowledged {seconds(s.ack_after_alert)} after it fired.")
    if s.recovered and s.time_to_mitigate is not None \
            and s.time_to_mitigate <= MITIGATE_BUDGET[0]:
        out.append(f"Service recovered {seconds(s.time_to_mitigate)} after the fault.")
    if s.followed:
        out.append("Runbook steps used: " + ", ".join(f"`{x}`" for x in s.followed) + ".")
    if not s.hints:
        out.append("No hint was needed.")
    return out or ["_to complete_"]


def _went_badly(data: ReportData) -> list[str]:
    s, out = data.score, []
    if s.time_to_alert is None:
        out.append("No alert fired: the incident was not detected by monitoring.")
    elif s.time_to_alert > ALERT_BUDGET[0]:
        out.append(f"The alert took {seconds(s.time_to_alert)} to fire.")
    if s.time_to_ack is None and any(p.name == "acknowledge" and p.possible for p in s.parts):
        out.append("Nobody acknowledged the page.")
    if not s.recovered:
        out.append("Service did not recover during the drill.")
    elif s.time_to_mitigate is not None and s.time_to_mitigate > MITIGATE_BUDGET[0]:
        out.append(f"Mitigation took {seconds(s.time_to_mitigate)}.")
    if s.hints:
        out.append(f"{s.hints} hint(s) were needed.")
    if s.skipped:
        out.append("Runbook steps not used: " + ", ".join(f"`{x}`" for x in s.skipped) + ".")
    if s.gaps:
        out.append(f"{len(s.gaps)} command(s) were needed that the runbook does not have.")
    return out or ["_to complete_"]


def _actions(data: ReportData) -> list[str]:
    s = data.score
    runbook = data.runbook.id if data.runbook is not None else data.drill.get("scenario")
    out = [f"Runbook `{runbook}`: add (or explain why not) `{g['command']}`, used "
           f"{g['times']}x by {', '.join(g['who']) or 'the responders'}." for g in s.gaps]
    if s.skipped:
        out.append(f"Runbook `{runbook}`: review the steps nobody used ("
                   + ", ".join(f"`{x}`" for x in s.skipped) + "): still needed, or stale?")
    if s.time_to_alert is None or s.time_to_alert > ALERT_BUDGET[0]:
        out.append("Alerting: make the alert fire sooner for this failure.")
    if s.hints:
        out.append("Training: the hints given point at knowledge the runbook should carry.")
    return out + ["_to complete: owners and due dates_"]


def to_review(data: ReportData) -> str:
    s = data.score
    faults = _faults(data)
    ended = s.end_reason or data.drill.get("status") or "-"
    lines = [
        f"# Post-incident review (draft): {data.title}", "",
        f"Drill `{data.drill.get('id')}` of scenario `{data.drill.get('scenario')}`; "
        f"ended: {ended}. Score {s.overall} / 100.", "",
        "## Summary", "",
        (f"{_injected(data)} caused {s.failed_requests} failed request(s). "
         "The first alert fired "
         f"{seconds(s.time_to_alert)} after the fault, it was acknowledged after "
         f"{seconds(s.time_to_ack)}, and service "
         + (f"recovered after {seconds(s.time_to_mitigate)}." if s.recovered
            else "did not recover during the drill.")), "",
        "## Impact", "",
        f"- Failed requests: {s.failed_requests} of about {s.total_requests}.",
        f"- SLO (success ratio >= {SLO_SUCCESS_RATIO:.0%} per sample) breached for "
        f"{s.breach_minutes:.1f} minute(s); worst sample "
        + ("-" if s.worst_success_ratio is None else f"{s.worst_success_ratio:.1%}") + ".",
        "",
        "## Timeline", "", "| t | time (UTC) | event |", "|---|---|---|",
    ]
    lines += [f"| {off} | {clock(e['t'])} | {describe(e).replace('|', '/')} |"
              for off, e in events(data) if _in_review(e)]
    lines += ["", "## Root cause and contributing factors", ""]
    if faults:
        lines.append("The faults injected (the drill's root cause):")
        lines += [f"- {f}" for f in faults]
    else:
        lines.append("_to complete: the faults are not in the timeline_")
    if data.scenario is not None and data.scenario.description:
        lines += ["", " ".join(data.scenario.description.split())]
    lines += ["", "## What went well", ""] + [f"- {x}" for x in _went_well(data)]
    lines += ["", "## What went badly", ""] + [f"- {x}" for x in _went_badly(data)]
    lines += ["", "## Action items", ""] + [f"- [ ] {x}" for x in _actions(data)]
    return "\n".join(lines) + "\n"
