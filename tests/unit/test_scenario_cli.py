"""`simctl scenario list|show|lint|schema` with CliRunner: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simctl.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(autouse=True)
def _fixture_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", "scenarios/valid")
    monkeypatch.setenv("SIMCTL_RUNBOOKS_DIR", "runbooks")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_list() -> None:
    result = run("scenario", "list")
    assert result.exit_code == 0, result.output
    assert "slow-drain" in result.output
    assert "every-action" in result.output
    assert "A slow log drain fills Logplex buffers" in result.output
    assert "ok" in result.output


def test_list_marks_invalid_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", "scenarios/invalid")
    result = run("scenario", "list")
    assert result.exit_code == 0
    assert "multiple-errors" in result.output
    assert "10 error(s)" in result.output


def test_list_with_no_scenarios(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", str(tmp_path))
    result = run("scenario", "list")
    assert result.exit_code == 0
    assert "no scenarios in" in result.output


def test_show() -> None:
    result = run("scenario", "show", "slow-drain")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "slow-drain: A slow log drain fills Logplex buffers" in out
    assert "toxic bandwidth upstream rate=4 on drain.main" in out
    assert "remove toxic bandwidth_upstream from drain.main" in out
    assert 'log "Error L10" in drain.main' in out
    assert "recovery within 30s (the steady state):" in out
    assert "Which link between Logplex" in out


def test_show_without_hints() -> None:
    result = run("scenario", "show", "slow-drain", "--no-hints")
    assert result.exit_code == 0
    assert "Which link between Logplex" not in result.output


def test_show_json() -> None:
    result = run("scenario", "show", "scenarios/valid/slow-drain.yaml", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == "slow-drain"
    assert data["faults"] == [{"at": "5s", "for": None, "name": None, "toxic": {
        "proxy": "drain.main", "type": "bandwidth", "stream": "upstream", "toxicity": 1.0,
        "attributes": {"rate": 4}, "name": None}}]
    assert data["load"]["http"] == "50/s"


def test_show_invalid_prints_every_error_and_exits_2() -> None:
    result = run("scenario", "show", "scenarios/invalid/wrong-type.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "scenarios/invalid/wrong-type.yaml:4:13: difficulty: expected an integer, got a "
        "string 'hard'",
        "scenarios/invalid/wrong-type.yaml:5:7: tags: expected a list, got a string 'logplex'",
    ]
    assert "2 error(s) in 1 of 1 scenario file(s)" in result.stderr


def test_show_unknown_id_suggests() -> None:
    result = run("scenario", "show", "slow-drian")
    assert result.exit_code == 2
    assert "no scenario 'slow-drian' in scenarios/valid; did you mean 'slow-drain'?" in \
        result.stderr


def test_lint_all_valid() -> None:
    result = run("scenario", "lint")
    assert result.exit_code == 0, result.output
    assert "2 scenario file(s) valid" in result.output


def test_lint_named_files_reports_all_errors() -> None:
    result = run("scenario", "lint", "slow-drain", "scenarios/invalid/two-actions.yaml",
                 "scenarios/invalid/unknown-proxy.yaml")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "scenarios/invalid/two-actions.yaml:8:5: faults[0]: a fault has exactly one action, "
        "found 2: toxic, proxy (use one fault item per action)",
        "scenarios/invalid/unknown-proxy.yaml:7:20: faults[0].toxic.proxy: unknown proxy "
        "'drain.mian'; did you mean 'drain.main'?",
    ]
    assert "2 error(s) in 2 of 3 scenario file(s)" in result.stderr


def test_lint_a_folder_of_invalid_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", "scenarios/invalid")
    result = run("scenario", "lint")
    assert result.exit_code == 2
    files = {line.split(":")[0] for line in result.stdout.splitlines()}
    assert len(files) == len(list(Path("scenarios/invalid").glob("*.yaml")))


def test_lint_missing_file() -> None:
    result = run("scenario", "lint", "scenarios/nope.yaml")
    assert result.exit_code == 2
    assert "scenarios/nope.yaml: no such scenario file" in result.stderr


def test_schema_to_stdout() -> None:
    result = run("scenario", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "Scenario"
    assert "faults" in schema["properties"]


def test_schema_to_file(tmp_path: Path) -> None:
    target = tmp_path / "scenario.schema.json"
    result = run("scenario", "schema", "-o", str(target))
    assert result.exit_code == 0
    assert json.loads(target.read_text())["title"] == "Scenario"


def test_help_lists_the_commands() -> None:
    result = run("scenario", "--help")
    assert result.exit_code == 0
    for command in ("list", "show", "lint", "schema"):
        assert command in result.output


def test_a_symptom_that_holds_in_steady_state_fails_lint() -> None:
    result = run("scenario", "lint", "scenarios/warning/symptom-in-steady-state.yaml")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("scenarios/warning/symptom-in-steady-state.yaml:15:9: "
                               "symptoms[0].expect[0]: warning: 'http.count{code=\"H12\"} == 0' "
                               "already holds in steady state")
    assert "symptoms[0].expect[1]: warning: 'http.success_ratio >= 0.99'" in lines[1]
    assert "baseline_ok: true" in lines[0]
    assert "http.error_ratio" not in result.stdout  # its item is marked baseline_ok
    assert lines[-1] == "1 scenario file(s) valid, 2 warning(s)"
