"""Training without a stack (docs/training.md): objectives in the scenario model and lint,
ticks read from a timeline, the course file and its lint, progress files and export."""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from simctl.cli import main
from simctl.drill.timeline import Timeline, read_timeline
from simctl.scenario import catalog
from simctl.scenario.loader import load_scenario
from simctl.scenario.model import Objective
from simctl.train import objectives as objs
from simctl.train import progress as store
from simctl.train.course import lint_course, load_course

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SIMCTL_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SIMCTL_RESPONDER", "ana")
    return tmp_path


def test_objectives_text_or_one_check() -> None:
    assert Objective.model_validate("read the logs").check is None
    assert Objective.model_validate({"text": "t", "step": "s"}).check == "step"
    ask = Objective.model_validate({"text": "t", "ask": "Which?", "answer": ["a", "b"]})
    assert ask.answers == ["a", "b"]
    assert str(ask) == "t"
    for bad, message in [({"text": "t", "step": "s", "command": "simctl x"}, "at most one"),
                         ({"text": "t", "ask": "Which?"}, "needs 'answer'"),
                         ({"text": "t", "answer": "x"}, "needs 'ask'"),
                         ({"text": "t", "command_regex": "(x"}, "does not compile"),
                         ({"text": "t", "probe": "http.success_ratio >>"}, "probe")]:
        with pytest.raises(ValidationError, match=message):
            Objective.model_validate(bad)


def test_every_catalogue_scenario_has_checkable_objectives() -> None:
    for path in catalog.scenario_files(ROOT / "scenarios"):
        scenario = load_scenario(path)
        checks = {o.check for o in scenario.objectives}
        assert {"step", "ask"} <= checks, scenario.id
        assert None not in checks, scenario.id


def test_lint_checks_objective_steps_and_probes(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    runbook = tmp_path / "runbooks" / "h12-request-timeouts.md"
    runbook.write_text(runbook.read_text().replace(
        "simctl logs --dyno router -n 300", "curl -s http://127.0.0.1:21201/"))
    (tmp_path / "scenarios").mkdir()
    text = (ROOT / "scenarios" / "slow-dyno.yaml").read_text()
    text = text.replace("step: take-dyno-out", "step: take-dyno-ot").replace(
        "probe: http.success_ratio >= 0.99", "probe: http.success_ratio >= 0.5")
    (tmp_path / "scenarios" / "slow-dyno.yaml").write_text(text)
    target = str(tmp_path / "scenarios" / "slow-dyno.yaml")
    result = CliRunner().invoke(main, ["scenario", "lint", target],
                                env={"SIMCTL_SCENARIOS_DIR": str(tmp_path / "scenarios"),
                                     "SIMCTL_RUNBOOKS_DIR": str(tmp_path / "runbooks")})
    assert result.exit_code == 2
    assert "no step 'take-dyno-ot'" in result.output
    assert "did you mean 'take-dyno-out'" \
        in result.output
    assert "is not one of the scenario's symptom or recovery probes" in result.output
    assert "step 'router-lines' of runbooks/h12-request-timeouts.md has no simctl command" \
        in result.output


def _timeline(tmp_path: Path, entries: list[tuple[str, dict[str, object]]]) -> Path:
    path = tmp_path / "timeline.jsonl"
    book = Timeline(path)
    for t, (kind, fields) in enumerate(entries):
        book.append(kind, t=1000.0 + t, **fields)
    return path


def test_ticks_come_from_the_timeline(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "slow-dyno.yaml")
    ratio = "http.success_ratio >= 0.99"
    path = _timeline(tmp_path, [
        ("probe", {"probe": ratio, "ok": True}),  # before the fault: not "became true"
        ("command", {"argv": ["logs", "--dyno", "router", "-n", "300"], "exit_code": 0,
                     "matched_step": "router-lines"}),
        ("answer", {"who": "ana", "question": "Which dyno do the H12 lines name?",
                    "text": "web.3", "correct": False}),
        ("probe", {"probe": ratio, "ok": False}),
        ("command", {"argv": ["sync", "state", "web.1", "down"], "exit_code": 2,
                     "matched_step": "take-dyno-out"}),  # failed: does not count
    ])
    ticks = objs.evaluate(scenario, read_timeline(path))
    assert sorted(ticks) == [0]
    book = Timeline(path)
    book.append("answer", t=1010.0, who="ana", question="Which dyno do the H12 lines name?",
                text="web.1", correct=True)
    book.append("probe", t=1011.0, probe=ratio, ok=True)
    ticks = objs.evaluate(scenario, read_timeline(path))
    assert sorted(ticks) == [0, 1, 3]
    assert ticks[3].t == 1011.0
    new = objs.record_new(book, read_timeline(path), ticks)
    assert [k.index for k in new] == [0, 1, 3]
    assert objs.record_new(book, read_timeline(path), ticks) == []  # recorded once


def test_command_patterns_and_answers() -> None:
    glob = Objective.model_validate({"text": "t", "command": "simctl dyno show *"})
    regex = Objective.model_validate({"text": "t", "command_regex": r"^simctl logs .*router"})
    entries = [{"t": 1.0, "kind": "command", "argv": ["simctl", "train", "answer", "dyno"],
                "exit_code": 0},
               {"t": 2.0, "kind": "command", "argv": ["dyno", "show", "--json"],
                "exit_code": 0},
               {"t": 3.0, "kind": "command", "argv": ["--project", "p", "logs", "--dyno",
                                                      "router"], "exit_code": 0}]
    assert objs._met(glob, entries, set()) == ("command: simctl dyno show --json", 2.0)
    assert objs._met(regex, entries, set())[1] == 3.0  # type: ignore[index]
    ask = Objective.model_validate({"text": "t", "ask": "q", "answer_regex": "(dyno=)?web[.]1"})
    assert objs.answer_ok(ask, " Web.1 ")
    assert objs.answer_ok(ask, "dyno=web.1")
    assert not objs.answer_ok(ask, "web.10")


def test_course_lint_names_lines(tmp_path: Path) -> None:
    path = tmp_path / "course.yaml"
    path.write_text("pass_mark: 120\nlessons:\n  - slow-dyn\n  - id: app-crashed\n"
                    "    requires: [backends-refused]\n  - id: backends-refused\n"
                    "    requires: [app-crashed]\n")
    problems = [(p.line, p.message) for p in lint_course(path)]
    assert problems[0] == (1, "pass_mark must be a whole number from 0 to 100, not 120")
    assert (3, "unknown lesson 'slow-dyn'; did you mean 'slow-dyno'?") in problems
    assert any(line == 4 and "cycle: app-crashed -> backends-refused -> app-crashed" in m
               for line, m in problems)
    result = CliRunner().invoke(main, ["train", "lint", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3:5: unknown lesson" in result.output
    assert lint_course(ROOT / "scenarios" / "course.yaml") == []


def test_the_course_lists_every_catalogue_scenario() -> None:
    course = load_course(ROOT / "scenarios" / "course.yaml")
    ids = {p.stem for p in catalog.scenario_files(ROOT / "scenarios")}
    assert set(course.ids()) == ids
    assert len(course.ids()) == len(ids)
    result = CliRunner().invoke(main, ["train", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert {row["lesson"] for row in listed["lessons"]} == ids
    assert listed["person"] == "ana"
    assert listed["pass_mark"] == course.pass_mark


def test_progress_file_private_versioned_and_exported(tmp_path: Path) -> None:
    progress = store.load("ana")
    progress.lessons["slow-dyno"] = store.LessonRecord(status="passed", attempts=2,
                                                       best_score=85, best_time_s=40.5)
    progress.save()
    path = tmp_path / "xdg" / "simctl" / "training" / "ana.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["version"] == store.VERSION
    (path.parent / "bo.json").write_text(json.dumps({"passed": ["slow-dyno"]}))  # version 0
    assert store.load("bo").status("slow-dyno") == "passed"
    (path.parent / "cy.json").write_text(json.dumps({"version": 99}))
    result = CliRunner().invoke(main, ["train", "--as", "cy"])
    assert result.exit_code == 2
    assert "newer than this simctl reads" in result.output
    result = CliRunner().invoke(main, ["train", "--as", "../etc"])
    assert result.exit_code == 2
    assert "invalid person name" in result.output
    out = CliRunner().invoke(main, ["train", "export", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert {(r["person"], r["lesson"], r["status"]) for r in rows} == {
        ("ana", "slow-dyno", "passed"), ("bo", "slow-dyno", "passed")}
    target = tmp_path / "out.json"
    done = CliRunner().invoke(main, ["train", "export", "-o", str(target)])
    assert done.exit_code == 0
    assert len(json.loads(target.read_text())["rows"]) == 2


def test_commands_without_a_lesson_say_so() -> None:
    for args in (["train", "answer", "web.1"], ["train", "hint"], ["train", "giveup"],
                 ["train", "reset"]):
        result = CliRunner().invoke(main, args)
        assert (result.exit_code, "error:" in result.output) == (2, True), args
    result = CliRunner().invoke(main, ["train", "start", "backends-refused"])
    assert result.exit_code == 2
    assert "needs slow-dyno, app-crashed passed first" \
        in result.output
    result = CliRunner().invoke(main, ["train", "start", "slow-dino"])
    assert result.exit_code == 2
    assert "did you mean 'slow-dyno'" in result.output


def test_the_drill_page_ticks_a_lessons_objectives(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from simctl.drill import state as drill_state
    from simctl.views.drill_page import drill_view

    monkeypatch.setenv("SIMCTL_STATE_DIR", str(tmp_path / "state"))
    drill = drill_state.Drill(id="d-20261204-000000-ab12", project="p", scenario="slow-dyno",
                              options={"guided": True}, token_sha256="0" * 64,
                              started_at=1000.0)
    drill.save()
    Timeline(drill.timeline_path).append(
        "command", t=1001.0, who="ana", argv=["logs", "--dyno", "router", "-n", "300"],
        exit_code=0, matched_step="router-lines", runbook="h12-request-timeouts")
    shown = drill_view(drill, facilitator=False)["objectives"]
    assert [o["met"] for o in shown] == [True, False, False, False]
    drill.options["guided"] = False
    assert "objectives" not in drill_view(drill, facilitator=False)
