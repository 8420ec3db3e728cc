"""Scoring and reports of drills, on timelines written with the Timeline API (no sockets).

The scenario and runbook are the catalogue's slow-dyno files, so step matching is
checked against a real runbook.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simctl.drill import score as S
from simctl.drill.from_verify import timeline_from_journal
from simctl.drill.report import build, find_scenario, to_html, to_json, to_markdown
from simctl.drill.review import to_review
from simctl.drill.timeline import Timeline, read_timeline

T0 = 1_800_000_000.0
FAULT = T0 + 20


@pytest.fixture(scope="module")
def slow_dyno():
    scenario, runbook = find_scenario("slow-dyno")
    assert scenario is not None
    assert runbook is not None
    return scenario, runbook


def sli(book: Timeline, t: float, ratio: float, failed: int) -> None:
    book.append("sli", t=t, success_ratio=ratio, p50_ms=3.0, p99_ms=4000.0 if failed else 9.0,
                rps=30.0, failed=failed, hcodes={"H12": failed} if failed else {},
                drain_dropped=0, window_s=1.0)


def cmd(book: Timeline, t: float, argv: list[str], step: str | None, who: str = "ana",
        code: int = 0) -> None:
    book.append("command", t=t, who=who, argv=argv, exit_code=code, duration_s=0.4,
                matched_step=step, runbook="h12-request-timeouts" if step else None)


def write_drill(path: Path, *, recover: bool = True, ack: bool = True) -> list[dict]:
    """A hidden drill: fault at +20 s, alert +10 s later, ack +40 s, a hint, two runbook
    steps and one command the runbook lacks, recovery at +100 s."""
    book = Timeline(path, hidden=True)
    book.append("drill_started", t=T0, drill="d-1", scenario="slow-dyno", title="Slow dyno",
                hidden=True, conceal=False, timing="fast", responders=["ana"], delay=20)
    for i in range(0, 20):
        sli(book, T0 + i, 1.0, 0)
    book.append("fault_applied", t=FAULT, name="f1", fault_kind="toxic", target="web.1",
                description="latency 4000 ms on web.1")
    book.append("alert", t=FAULT + 5, alert="RouterRequestTimeouts", state="pending",
                value=1, summary="H12", runbook="h12-request-timeouts")
    book.append("alert", t=FAULT + 10, alert="RouterRequestTimeouts", state="firing",
                value=1, summary="H12", runbook="h12-request-timeouts")
    end = 100 if recover else 130
    for i in range(0, end + 10):  # 10 failed a second until recovery: 60 s below the SLO
        bad = i < 60 or (not recover)
        sli(book, FAULT + i, 0.66 if bad else 1.0, 10 if bad else 0)
    if ack:
        book.append("ack", t=FAULT + 40, who="ana")
        cmd(book, FAULT + 41, ["simctl", "drill", "ack"], None)
    cmd(book, FAULT + 45, ["simctl", "logs", "--dyno", "router", "-n", "300"], "router-lines")
    cmd(book, FAULT + 50, ["simctl", "status"], None, who="ben")
    cmd(book, FAULT + 51, ["simctl", "status"], None, who="ana")
    cmd(book, FAULT + 52, ["simctl", "bogus"], None, code=2)  # failed: no gap
    book.append("hint", t=FAULT + 55, who="ana", index=1, text="Group by dyno=", penalty_s=60)
    cmd(book, FAULT + 60, ["simctl", "sync", "state", "web.1", "down"], "take-dyno-out")
    if recover:
        book.append("recovery_holding", t=FAULT + 110, since=FAULT + 100)
    book.append("fault_rolled_back", t=FAULT + end + 12, name="f1", ok=True)
    book.append("drill_ended", t=FAULT + end + 13,
                reason="recovered" if recover else "ended", revealed=True)
    return read_timeline(path)


def test_times_steps_gaps_and_hints(tmp_path, slow_dyno):
    entries = write_drill(tmp_path / "timeline.jsonl")
    assert [e["hidden"] for e in entries if e["kind"] == "fault_applied"] == [True]
    s = S.score_drill(entries, *slow_dyno)
    assert s.first_fault == FAULT
    assert (s.time_to_alert, s.time_to_ack, s.ack_after_alert) == (10.0, 40.0, 30.0)
    assert s.time_to_mitigate == 100.0
    assert s.recovered
    assert s.hints == 1
    assert s.hint_penalty_s == 60.0
    assert s.followed == ["router-lines", "take-dyno-out"]
    assert s.skipped == ["h12-metric", "dyno-view"]
    assert [(g["command"], g["times"], g["who"]) for g in s.gaps] == [
        ("simctl status", 2, ["ben", "ana"])]
    assert s.failed_requests == 600
    assert s.breach_minutes == pytest.approx(1.0, abs=0.02)
    assert s.worst_success_ratio == 0.66


def test_overall_is_the_documented_formula(tmp_path, slow_dyno):
    s = S.score_drill(write_drill(tmp_path / "t.jsonl"), *slow_dyno)
    parts = {p.name: p for p in s.parts}
    assert parts["detection"].points == 10  # alert after 10 s: within 120 s
    assert parts["acknowledge"].points == 15  # 30 s after the alert
    assert parts["mitigation"].points == 35  # 100 s + 60 s of hint penalty <= 300 s
    assert parts["impact"].points == pytest.approx(20 * (1 - 1.0 / 15), abs=0.1)
    assert parts["runbook"].points == pytest.approx(20 * (1 + 1 / 3) / 2, abs=0.1)
    earned = sum(p.points for p in s.parts)
    assert s.overall == round(earned)
    assert 80 <= s.overall <= 95


def test_linear_budget():
    assert S.linear(None, (10, 20)) == 0.0
    assert S.linear(5, (10, 20)) == 1.0
    assert S.linear(15, (10, 20)) == 0.5
    assert S.linear(25, (10, 20)) == 0.0


def test_unrecovered_and_unacknowledged_drill_scores_low(tmp_path, slow_dyno):
    s = S.score_drill(write_drill(tmp_path / "t.jsonl", recover=False, ack=False), *slow_dyno)
    parts = {p.name: p for p in s.parts}
    assert not s.recovered
    assert s.time_to_mitigate is None
    assert parts["mitigation"].points == 0
    assert parts["acknowledge"].points == 0
    assert parts["impact"].points <= 10
    assert s.overall < 50


def test_overlapping_sample_windows_are_not_counted_twice():
    entries = [{"t": T0 + i, "kind": "sli", "success_ratio": 0.5, "rps": 10, "failed": 10,
                "window_s": 2.0} for i in range(10)]
    failed, total, breach, worst = S.impact(entries, T0)
    assert failed == 50
    assert total == 100
    assert breach == pytest.approx(10 / 60, abs=0.01)
    assert worst == 0.5


def test_reports_render_scores_timeline_and_review(tmp_path, slow_dyno):
    entries = write_drill(tmp_path / "t.jsonl")
    data = build({"id": "d-1", "scenario": "slow-dyno", "status": "ended"}, entries, *slow_dyno)
    md = to_markdown(data)
    assert "| time to mitigate | 1m40s |" in md
    assert "`simctl status` (2x, ben, ana)" in md
    assert "ana ran `simctl sync state web.1 down` (exit 0) (runbook step take-dyno-out)" in md
    page = to_html(data)
    assert "<script src=" not in page
    assert "<link" not in page
    assert "Plotly.newPlot" in page
    assert len(page) > 1_000_000
    assert json.loads(json.dumps(to_json(data)))["score"]["overall"] == data.score.overall
    review = to_review(data)
    for section in ("## Summary", "## Impact", "## Timeline", "## Root cause",
                    "## What went well", "## What went badly", "## Action items"):
        assert section in review
    assert "latency 4000 ms on web.1" in review
    assert "add (or explain why not) `simctl status`" in review


def test_a_verify_journal_becomes_a_timeline(slow_dyno):
    scenario, runbook = slow_dyno
    start = T0
    journal = {
        "scenario": "slow-dyno", "title": "Slow", "timing": "fast", "status": "passed",
        "start_unix": start, "end_unix": start + 30, "residue": [],
        "phases": [{"name": "faults", "start_unix": start + 3, "end_unix": start + 4},
                   {"name": "recovery", "status": "ok", "start_unix": start + 15,
                    "end_unix": start + 20}],
        "actions": [
            {"kind": "fault", "name": "toxic latency on web.1", "start_unix": start + 4,
             "status": "ok", "output": "added", "detail": {"index": 0}},
            {"kind": "step", "name": "take-dyno-out", "start_unix": start + 12,
             "status": "ok", "duration": 1.5, "detail": {}},
            {"kind": "undo", "name": "remove toxic", "start_unix": start + 28,
             "status": "ok", "detail": {"fault": "toxic latency on web.1"}},
        ],
        "alerts": [{"alert": "RouterRequestTimeouts", "fired_at": 8.0, "resolved_at": 22.0}],
    }
    drill, entries = timeline_from_journal(journal, runbook, scenario=scenario)
    assert drill["end_reason"] == "recovered"
    fault = next(e for e in entries if e["kind"] == "fault_applied")
    assert (fault["name"], fault["fault_kind"], fault["target"]) == ("fault-1", "toxic",
                                                                     "web.1")
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "drill_started"
    assert kinds[-1] == "drill_ended"
    step = next(e for e in entries if e["kind"] == "command")
    assert step["argv"] == ["simctl", "sync", "state", "web.1", "down"]
    s = S.score_drill(entries, scenario, runbook)
    assert s.time_to_alert == pytest.approx(7.0)
    assert s.time_to_mitigate == pytest.approx(16.0)
    assert [p.possible for p in s.parts if p.name == "acknowledge"] == [0]  # unattended
    assert s.followed == ["take-dyno-out"]
    assert s.skipped == []


def test_what_responders_typed_cannot_break_out_of_the_page(tmp_path, slow_dyno):
    entries = write_drill(tmp_path / "t.jsonl")
    evil = "</script><script>alert(1)</script>"
    entries.append({"t": FAULT + 70, "kind": "command", "hidden": False, "who": evil,
                    "argv": ["logs", "--grep", evil], "exit_code": 0, "matched_step": None})
    entries.append({"t": FAULT + 71, "kind": "note", "hidden": False, "who": "ana",
                    "text": evil})
    page = to_html(build({"id": "d-1", "scenario": "slow-dyno"}, entries, *slow_dyno))
    assert evil not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page  # the timeline shows it as text


def test_a_drill_ended_before_its_faults_scores_nothing(tmp_path, slow_dyno):
    entries = [e for e in write_drill(tmp_path / "t.jsonl") if e["kind"] in (
        "drill_started", "sli", "drill_ended") and e["t"] < FAULT]
    s = S.score_drill(entries, *slow_dyno)
    assert s.first_fault is None
    assert s.overall == 0
    assert "# Drill report" in to_markdown(build({"id": "d-1"}, entries, *slow_dyno))


def test_a_runbook_step_that_failed_or_was_refused_is_not_followed(tmp_path, slow_dyno):
    # `simctl proxies` is refused (exit 8) in a concealed drill: the step was not followed
    book = Timeline(tmp_path / "timeline.jsonl")
    cmd(book, FAULT + 5, ["proxies"], "dyno-view", code=8)
    cmd(book, FAULT + 6, ["logs", "--dyno", "router", "-n", "300"], "router-lines")
    uses, _ = S.step_use(read_timeline(tmp_path / "timeline.jsonl"), slow_dyno[1],
                         slow_dyno[0], FAULT)
    followed = {u.step: u.followed for u in uses}
    assert followed["router-lines"] is True
    assert followed["dyno-view"] is False
