"""Drill parts without a stack: the timeline file, the command recorder, step matching,
concealed names and the CLI's one-line errors (docs/drills.md)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from simctl.cli import main
from simctl.cli.drill import parse_delay
from simctl.drill import recorder
from simctl.drill import state as drill_state
from simctl.drill.conceal import conceal_scenario
from simctl.drill.timeline import Timeline, read_timeline, responder_view
from simctl.errors import InvalidInput
from simctl.scenario import catalog
from simctl.scenario.loader import load_scenario


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("SIMCTL_PROJECT", "unit")
    monkeypatch.delenv("SIMCTL_DRILL_TOKEN", raising=False)
    return tmp_path


def _drill(hidden: bool = True) -> drill_state.Drill:
    d = drill_state.Drill(id=drill_state.new_id(), project="unit", scenario="slow-dyno",
                          options={"hidden": hidden, "conceal": hidden},
                          token_sha256=drill_state.hash_token("tok"), started_at=1.0,
                          conductor_pid=os.getpid(), phase="faulted")
    d.conductor_started = __import__("psutil").Process().create_time()
    d.save()
    drill_state.set_active("unit", d.id)
    return d


def test_timeline_is_private_append_only_and_hides_faults_while_running(
        state_dir: Path) -> None:
    d = _drill()
    book = Timeline(d.timeline_path, hidden=True)
    book.append("fault_applied", name="f", fault_kind="toxic", target="web.1",
                description="x")
    book.append("note", who="ana", text="hello")
    with open(d.timeline_path, "a") as torn:  # a crash mid-line loses only that line
        torn.write('{"t": 1, "kind": "no')
    entries = read_timeline(d.timeline_path)
    assert [e["kind"] for e in entries] == ["fault_applied", "note"]
    assert entries[0]["hidden"] is True
    assert entries[1]["hidden"] is False
    assert isinstance(entries[0]["t"], float)
    assert [e["kind"] for e in responder_view(entries, running=True, hidden=True)] == ["note"]
    assert len(responder_view(entries, running=False, hidden=True)) == 2
    assert stat.S_IMODE(d.timeline_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((d.folder / "drill.json").stat().st_mode) == 0o600


def test_commands_match_runbook_steps_after_normalising() -> None:
    steps = [{"id": "take-dyno-out", "commands": [["simctl", "sync", "state", "web.1", "down"]]},
             {"id": "show", "commands": [["simctl", "logs", "--dyno", "router", "-n", "300"]]}]
    assert recorder.match_step(["sync", "state", "web.1", "down"], steps) == "take-dyno-out"
    assert recorder.match_step(["--project", "p", "sync", "state", "web.1", "down"],
                               steps) == "take-dyno-out"
    assert recorder.match_step(["logs", "-n", "300", "--dyno=router"], steps) == "show"
    assert recorder.match_step(["sync", "state", "web.2", "down"], steps) is None
    assert recorder.redact(["drill", "inject", "--token", "s3cret"]) == [
        "drill", "inject", "--token", "***"]


def test_recorder_records_who_argv_exit_code_and_step(state_dir: Path) -> None:
    d = _drill(hidden=False)
    (d.folder / "steps.json").write_text(json.dumps(
        {"runbook": "h12-request-timeouts",
         "steps": [{"id": "s", "commands": [["simctl", "status"]]}]}))
    recording = recorder.before(["status", "--as", "bo"])
    recorder.after(recording, 3)
    entry = read_timeline(d.timeline_path)[-1]
    assert entry["kind"] == "command"
    assert entry["who"] == "bo"
    assert entry["argv"] == ["status", "--as", "bo"]
    assert entry["exit_code"] == 3
    assert entry["matched_step"] == "s"
    assert entry["runbook"] == "h12-request-timeouts"


def test_an_unwritable_timeline_never_breaks_a_command(state_dir: Path) -> None:
    d = _drill(hidden=False)
    d.timeline_path.unlink(missing_ok=True)
    d.timeline_path.mkdir()  # appending fails whoever runs the test (root ignores modes)
    recorder.after(recorder.before(["status"]), 0)  # must not raise
    result = CliRunner().invoke(main, ["scenario", "list"])
    assert result.exit_code == 0, result.output
    assert d.timeline_path.is_dir()


def test_concealed_toxics_get_neutral_unique_names() -> None:
    scenario = load_scenario(catalog.resolve_scenario("slow-drain"))
    hidden = conceal_scenario(scenario)
    names = [f.toxic.name for f in hidden.faults if f.kind == "toxic"]
    assert names
    assert all(n.startswith("t-") for n in names)
    assert "slow-consumer" not in json.dumps([f.toxic.model_dump() for f in hidden.faults])


def test_delay_ranges() -> None:
    assert parse_delay("30s-2m") == (30.0, 120.0)
    assert parse_delay("45s") == (45.0, 45.0)
    for bad in ("2m-30s", "soon", "10", "2h"):
        with pytest.raises(InvalidInput):
            parse_delay(bad)


@pytest.mark.parametrize("args", [
    ["drill", "start"],
    ["drill", "start", "slow-dyno", "--random"],
    ["drill", "start", "slow-dyno", "--guided", "--hidden"],
    ["drill", "start", "slow-dyno", "--delay", "later"],
    ["drill", "start", "no-such-scenario"],
    ["drill", "start", "--random", "--difficulty", "5", "--tag", "nothing-has-this"],
    ["drill", "status"],
    ["drill", "ack"],
])
def test_bad_drill_input_is_one_line_and_exit_2(state_dir: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (state_dir / "unit" / "drills" / "ACTIVE").exists()


def test_facilitator_commands_and_concealed_inspection_need_the_token(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _drill(hidden=True)
    runner = CliRunner()
    for args in (["drill", "reveal"], ["drill", "reveal", "--token", "nope"], ["proxies"],
                 ["toxics"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 8, (args, result.output)
        assert result.output.startswith("error: ")
    monkeypatch.setenv("SIMCTL_DRILL_TOKEN", "tok")
    assert runner.invoke(main, ["toxics"]).exit_code == 0
    revealed = runner.invoke(main, ["drill", "reveal", "--json"])
    assert revealed.exit_code == 0, revealed.output
    assert json.loads(revealed.output)["scenario"] == "slow-dyno"


def test_hints_come_in_order_with_a_penalty_then_run_out(state_dir: Path) -> None:
    d = _drill(hidden=False)
    runner = CliRunner()
    hints = list(load_scenario(catalog.resolve_scenario("slow-dyno")).hints)
    for index, text in enumerate(hints):
        done = runner.invoke(main, ["drill", "hint", "--json", "--as", f"r{index}"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["text"] == text
    over = runner.invoke(main, ["drill", "hint"])
    assert over.exit_code == 1
    assert over.output.startswith("error: ")
    entries = [e for e in read_timeline(d.timeline_path) if e["kind"] == "hint"]
    assert [(e["index"], e["who"]) for e in entries] == [(i, f"r{i}") for i in range(len(hints))]
    assert all(e["penalty_s"] > 0 for e in entries)
    status = json.loads(runner.invoke(main, ["drill", "status", "--json"]).output)
    assert status["hints_left"] == 0
    assert status["scenario"] == "slow-dyno"
    texts = [getattr(o, "text", o) for o in
             load_scenario(catalog.resolve_scenario("slow-dyno")).objectives]
    assert status["objectives"] == texts
    assert all(isinstance(t, str) for t in texts)


def test_the_next_command_ends_a_drill_whose_conductor_is_gone(state_dir: Path) -> None:
    import subprocess

    d = _drill(hidden=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    d.conductor_pid, d.conductor_started = gone.pid, 1.0  # a dead (or recycled) pid
    d.save()
    Timeline(d.timeline_path, hidden=True).append(
        "fault_applied", name="fault-1", fault_kind="toxic", target="web.1", description="x")
    result = CliRunner().invoke(main, ["scenario", "list"])
    assert result.exit_code == 0, result.output
    assert "lost its conductor" in result.output
    after = drill_state.load(d.folder)
    assert after.status == "interrupted"
    assert after.end_reason == "conductor_lost"
    kinds = [(e["kind"], e.get("reason")) for e in read_timeline(d.timeline_path)]
    assert kinds[-3:] == [("fault_rolled_back", "conductor_lost"), ("residue_check", None),
                          ("drill_ended", "conductor_lost")]
    assert drill_state.active_id("unit") is None


def test_responders_do_not_see_which_runbook_a_command_matched_in_a_hidden_drill() -> None:
    # the runbook (and its step) a command matched name the hidden scenario's runbook
    command = {"t": 1.0, "kind": "command", "hidden": False, "who": "ana",
               "argv": ["proxies"], "exit_code": 0, "duration_s": 0.1,
               "matched_step": "dyno-view", "runbook": "h12-request-timeouts"}
    shown = responder_view([command], running=True, hidden=True)
    assert shown == [{k: v for k, v in command.items() if k not in ("runbook", "matched_step")}]
    assert "h12-request-timeouts" not in json.dumps(shown)
    assert responder_view([command], running=False, hidden=True) == [command]
    assert responder_view([command], running=True, hidden=False) == [command]


def test_the_page_is_acknowledged_once_by_the_first_responder(state_dir: Path) -> None:
    d = _drill()
    assert drill_state.acknowledge(d, "ana") == ("ana", True)
    assert drill_state.acknowledge(d, "ana") == ("ana", False)  # twice: nothing new
    assert drill_state.acknowledge(d, "bo") == ("ana", False)
    acks = [e for e in read_timeline(d.timeline_path) if e["kind"] == "ack"]
    assert [e["who"] for e in acks] == ["ana"]


def test_runbook_show_and_list_hide_the_scenarios_a_runbook_covers_in_a_hidden_drill(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    before = runner.invoke(main, ["runbook", "show", "h12-request-timeouts"])
    assert "scenarios: slow-dyno" in before.output
    _drill(hidden=True)
    for args in (["runbook", "show", "h12-request-timeouts"], ["runbook", "list"],
                 ["runbook", "list", "--json"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "slow-dyno" not in result.output, args
        assert "hidden during the drill" in result.output
    monkeypatch.setenv("SIMCTL_DRILL_TOKEN", "tok")  # the facilitator sees everything
    assert "scenarios: slow-dyno" in runner.invoke(
        main, ["runbook", "show", "h12-request-timeouts"]).output
