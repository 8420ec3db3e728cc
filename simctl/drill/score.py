"""Scoring a drill: pure functions over its timeline, scenario and runbook (docs/drills.md,
"Scoring").

Everything is measured from the first fault (``fault_applied``): time to alert (first
alert firing), time to acknowledge (first ``ack``), time to mitigate (recovery holding).
Customer impact comes from the ``sli`` samples, runbook use from the ``command``
entries. The overall score adds the points of each part; a part that does not apply
(no responder to acknowledge in a ``verify`` run) is left out and the rest is scaled
to 100, so runs of either kind read on the same scale.

    score = score_drill(entries, scenario=scenario, runbook=runbook)
    score.overall, score.as_dict()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The SLO a sample is judged by: at least this share of requests not answered 5xx.
SLO_SUCCESS_RATIO = 0.99

# Budgets (seconds, from the first fault; ack from the first alert): full points up to
# the first number, none from the second, linear in between.
ALERT_BUDGET = (120.0, 600.0)
ACK_BUDGET = (120.0, 600.0)
MITIGATE_BUDGET = (300.0, 1800.0)
BREACH_BUDGET_MIN = 15.0  # SLO-breach minutes that cost every impact point

POINTS = {"detection": 10, "acknowledge": 15, "mitigation": 35, "impact": 20, "runbook": 20}

# Commands that run the drill itself, not the incident: never a runbook gap.
META_COMMANDS = frozenset({"drill", "report", "web", "dashboard"})

Entry = dict[str, Any]


@dataclass
class StepUse:
    step: str
    section: str | None
    followed: bool
    first_at: float | None = None  # seconds from the first fault
    by: list[str] = field(default_factory=list)


@dataclass
class Part:
    name: str
    points: float  # earned
    possible: int  # 0 when it does not apply
    why: str


@dataclass
class Score:
    first_fault: float | None  # unix time
    time_to_alert: float | None
    time_to_ack: float | None  # from the first fault
    ack_after_alert: float | None
    time_to_mitigate: float | None
    recovered: bool
    failed_requests: int
    total_requests: int
    breach_minutes: float
    worst_success_ratio: float | None
    hints: int
    hint_penalty_s: float
    steps: list[StepUse]
    gaps: list[dict[str, Any]]  # commands the runbook does not have
    parts: list[Part]
    overall: int
    end_reason: str | None

    @property
    def followed(self) -> list[str]:
        return [s.step for s in self.steps if s.followed]

    @property
    def skipped(self) -> list[str]:
        return [s.step for s in self.steps if not s.followed]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["followed"] = self.followed
        data["skipped"] = self.skipped
        return data


def linear(value: float | None, budget: tuple[float, float]) -> float:
    """1.0 up to budget[0], 0.0 from budget[1] (and for None), linear in between."""
    if value is None:
        return 0.0
    full, none = budget
    if value <= full:
        return 1.0
    if value >= none:
        return 0.0
    return (none - value) / (none - full)


def first(entries: list[Entry], kind: str, since: float | None = None,
          **match: Any) -> Entry | None:
    for entry in entries:
        if entry.get("kind") != kind:
            continue
        if since is not None and entry.get("t", 0) < since:
            continue
        if all(entry.get(k) == v for k, v in match.items()):
            return entry
    return None


def _after(t: float | None, origin: float | None) -> float | None:
    if t is None or origin is None:
        return None
    return round(max(0.0, t - origin), 3)


def mitigated_at(entries: list[Entry]) -> float | None:
    """When recovery began to hold (``recovery_holding.since``, else the entry's time)."""
    entry = first(entries, "recovery_holding")
    if entry is None:
        return None
    since = entry.get("since")
    return float(since) if isinstance(since, int | float) else float(entry["t"])


def impact(entries: list[Entry], start: float | None) -> tuple[int, int, float, float | None]:
    """(failed requests, requests, minutes of SLO breach, worst success ratio) from the
    ``sli`` samples at or after ``start``. A sample stands for the time up to the next one
    (the last one for the median interval); a sample without traffic breaches nothing."""
    samples = [e for e in entries if e.get("kind") == "sli"
               and (start is None or e.get("t", 0) >= start)]
    breach = 0.0
    worst: float | None = None
    gaps = [b["t"] - a["t"] for a, b in zip(samples, samples[1:], strict=False)]
    typical = sorted(gaps)[len(gaps) // 2] if gaps else 1.0
    failed_f = total_f = 0.0
    for index, sample in enumerate(samples):
        span = min(gaps[index] if index < len(gaps) else typical, 3 * typical)
        # Samples count over `window_s`, which may overlap the next: take this one's share.
        window = float(sample.get("window_s") or span) or span
        share = min(1.0, span / window) if window > 0 else 1.0
        failed_f += float(sample.get("failed") or 0) * share
        total_f += float(sample.get("rps") or 0) * span
        ratio = sample.get("success_ratio")
        if not isinstance(ratio, int | float):
            continue
        worst = ratio if worst is None else min(worst, ratio)
        if ratio < SLO_SUCCESS_RATIO:
            breach += span  # a pause in sampling (over 3 intervals) is not all breach
    failed, total = round(failed_f), round(total_f)
    return failed, max(total, failed), round(breach / 60.0, 3), worst


def runbook_steps(runbook: Any, scenario: Any = None,
                  attended: bool = True) -> list[tuple[str, str | None]]:
    """(step id, section) of every step responders are expected to follow: those of
    Diagnose and Mitigate, plus the scenario's mitigation steps wherever they are. An
    unattended run (verify) only runs the scenario's mitigation steps."""
    if runbook is None:
        return []
    wanted = set(getattr(getattr(scenario, "mitigation", None), "runbook_steps", []) or [])
    sections = ("Diagnose", "Mitigate") if attended else ()
    return [(s.id, s.section) for s in runbook.steps
            if s.commands and (s.section in sections or s.id in wanted)]


def step_use(entries: list[Entry], runbook: Any, scenario: Any, origin: float | None,
             attended: bool = True) -> tuple[list[StepUse], list[dict[str, Any]]]:
    uses = {sid: StepUse(sid, section, False) for sid, section in
            runbook_steps(runbook, scenario, attended)}
    gaps: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("kind") != "command":
            continue
        argv = [str(a) for a in entry.get("argv") or []]
        step = entry.get("matched_step")
        if step:
            if entry.get("exit_code") not in (0, None):
                continue  # failed, or refused (exit 8 in a concealed drill): not followed
            use = uses.setdefault(step, StepUse(step, None, False))
            if not use.followed:
                use.followed, use.first_at = True, _after(entry.get("t"), origin)
            who = str(entry.get("who") or "")
            if who and who not in use.by:
                use.by.append(who)
            continue
        if argv and argv[0].rsplit("/", 1)[-1] == "simctl":
            argv = argv[1:]  # the recorder keeps what followed `simctl`
        words = [a for a in argv if not a.startswith("-")]
        if not words or words[0] in META_COMMANDS or entry.get("exit_code") not in (0, None):
            continue  # the drill's own commands, and commands that failed, are no gap
        text = " ".join(["simctl", *argv])
        gap = gaps.setdefault(text, {"command": text, "times": 0, "who": [],
                                     "first_at": _after(entry.get("t"), origin)})
        gap["times"] += 1
        if entry.get("who") and entry["who"] not in gap["who"]:
            gap["who"].append(entry["who"])
    return list(uses.values()), list(gaps.values())


def score_drill(entries: list[Entry], scenario: Any = None, runbook: Any = None,
                attended: bool | None = None) -> Score:
    """The score of a timeline (oldest first). ``attended``: whether people responded (an
    acknowledgement is expected); by default, unless the drill says its responder was
    ``verify``."""
    started = first(entries, "drill_started") or {}
    if attended is None:
        attended = list(started.get("responders") or []) != ["verify"]
    fault = first(entries, "fault_applied")
    origin = float(fault["t"]) if fault else None
    alert = first(entries, "alert", since=origin, state="firing") if origin else None
    ack = first(entries, "ack")
    recovered_t = mitigated_at(entries)
    hints = [e for e in entries if e.get("kind") == "hint"]
    penalty = float(sum(float(h.get("penalty_s") or 0) for h in hints))
    ended = first(entries, "drill_ended")

    tta = _after(alert["t"], origin) if alert else None
    ttack = _after(ack["t"], origin) if ack else None
    ack_after_alert = _after(ack["t"], alert["t"]) if ack and alert else None
    ttm = _after(recovered_t, origin)
    failed, total, breach, worst = impact(entries, origin)
    steps, gaps = step_use(entries, runbook, scenario, origin, attended)

    parts = [
        Part("detection", POINTS["detection"] * linear(tta, ALERT_BUDGET), POINTS["detection"],
             "no alert fired" if tta is None else f"first alert {tta:.0f} s after the fault"),
    ]
    if attended:
        waited = ack_after_alert if ack_after_alert is not None else ttack
        parts.append(Part("acknowledge", POINTS["acknowledge"] * linear(waited, ACK_BUDGET),
                          POINTS["acknowledge"], "never acknowledged" if waited is None else
                          f"acknowledged {waited:.0f} s after the "
                          f"{'alert' if ack_after_alert is not None else 'fault'}"))
    else:
        parts.append(Part("acknowledge", 0.0, 0, "unattended run: nobody to acknowledge"))
    effective = None if ttm is None else ttm + penalty
    parts.append(Part("mitigation", POINTS["mitigation"] * linear(effective, MITIGATE_BUDGET),
                      POINTS["mitigation"], "not mitigated" if ttm is None else
                      f"recovered {ttm:.0f} s after the fault" +
                      (f", +{penalty:.0f} s for {len(hints)} hint(s)" if hints else "")))
    impact_share = max(0.0, 1.0 - breach / BREACH_BUDGET_MIN)
    if ttm is None:
        impact_share = min(impact_share, 0.5)  # an impact that never ended is not small
    parts.append(Part("impact", POINTS["impact"] * impact_share, POINTS["impact"],
                      f"{breach:.1f} min below the SLO, {failed} failed request(s)"))
    mitigation_steps = [s for s in steps if s.section == "Mitigate"
                        or (scenario is not None and s.step in
                            scenario.mitigation.runbook_steps)]
    diagnose_steps = [s for s in steps if s not in mitigation_steps]
    share = (_share(mitigation_steps) + _share(diagnose_steps)) / 2 if steps else 0.0
    parts.append(Part("runbook", POINTS["runbook"] * share, POINTS["runbook"] if steps else 0,
                      f"{sum(s.followed for s in steps)} of {len(steps)} step(s) followed, "
                      f"{len(gaps)} command(s) the runbook does not have" if steps
                      else "no runbook steps to follow"))
    possible = sum(p.possible for p in parts)
    earned = sum(p.points for p in parts)
    # No fault applied (aborted before its faults): nothing was rehearsed, nothing scores.
    overall = round(100 * earned / possible) if possible and origin is not None else 0
    for part in parts:
        part.points = round(part.points, 1)
    return Score(first_fault=origin, time_to_alert=tta, time_to_ack=ttack,
                 ack_after_alert=ack_after_alert, time_to_mitigate=ttm,
                 recovered=ttm is not None, failed_requests=failed, total_requests=total,
                 breach_minutes=breach, worst_success_ratio=worst, hints=len(hints),
                 hint_penalty_s=penalty, steps=steps, gaps=gaps, parts=parts,
                 overall=overall, end_reason=(ended or {}).get("reason"))


def _share(steps: list[StepUse]) -> float:
    """Followed share of a group; an empty group counts as fully followed."""
    return sum(s.followed for s in steps) / len(steps) if steps else 1.0
