"""`simctl runbook list|show|check|run` with CliRunner: output and exit codes."""

from __future__ import annotations

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
    result = run("runbook", "list")
    assert result.exit_code == 0, result.output
    assert "logplex-drain-backlog" in result.output
    assert "(no valid front matter)" in result.output  # missing-front-matter.md


def test_show() -> None:
    result = run("runbook", "show", "logplex-drain-backlog")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "logplex-drain-backlog: A slow log drain fills Logplex buffers (L10)" in out
    assert "alerts: LogDrainDropping   scenarios: slow-drain   owner: team-routing" in out
    assert "disable-slow-drain" in out
    assert "needs --allow-shell" in out


def test_show_unknown_runbook() -> None:
    result = run("runbook", "show", "logplex-drain-backlogg")
    assert result.exit_code == 2
    assert "did you mean 'logplex-drain-backlog'?" in result.stderr


def test_check_valid_runbook_with_a_warning_exits_0() -> None:
    result = run("runbook", "check", "logplex-drain-backlog")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "runbooks/logplex-drain-backlog.md:34: RB009 warning: step 'drain-metrics' runs "
        "non-simctl commands ('curl -s http://127.0.0.1:7300/metrics | grep logplex_drain_'), "
        "so it runs only with --allow-shell",
        "1 runbook(s) checked: 0 error(s), 1 warning(s)",
    ]


def test_check_errors_exit_2_with_every_message() -> None:
    result = run("runbook", "check", "runbooks/missing-section.md", "duplicate-step-id")
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "runbooks/missing-section.md:1: RB003 missing section '## Diagnose'",
        "runbooks/missing-section.md:1: RB003 missing section '## Verify'",
        "runbooks/missing-section.md:12: RB003 missing section '## Mitigate' (found "
        "'## Mitgate': misspelt?)",
        "runbooks/duplicate-step-id.md:32: RB004 duplicate step id 'show-links' (first at "
        "line 14)",
    ]
    assert "2 runbook(s) checked: 4 error(s), 0 warning(s)" in result.stderr


def test_check_all_runbooks() -> None:
    result = run("runbook", "check")
    assert result.exit_code == 2
    rules = {line.split(": ", 1)[1].split()[0] for line in result.stdout.splitlines()}
    assert {"RB001", "RB006", "RB009", "RB012"} <= rules


def test_check_with_no_runbooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIMCTL_RUNBOOKS_DIR", str(tmp_path))
    result = run("runbook", "check")
    assert result.exit_code == 0
    assert "no runbooks in" in result.output


def test_run_a_harmless_step() -> None:
    result = run("runbook", "run", "run-steps", "--step", "list-toxics")
    assert result.exit_code == 0, result.output
    assert "$ simctl toxics" in result.output
    assert "latency" in result.output
    assert "step list-toxics: ok (1 command(s)" in result.output


def test_run_a_failing_step_exits_1() -> None:
    result = run("runbook", "run", "runbooks/run-steps.md", "--step", "fails-midway")
    assert result.exit_code == 1
    assert "$ simctl inject web.1 no-such-toxic" in result.output
    assert "exit 2 (line 38)" in result.output
    assert "step fails-midway: failed, 1 command(s) not run" in result.output


def test_run_several_steps_stops_at_the_failing_one() -> None:
    result = run("runbook", "run", "run-steps", "--allow-shell", "--step", "shell-fails",
                 "--step", "shell-echo")
    assert result.exit_code == 1
    assert "from the shell" not in result.output


def test_run_shell_step_needs_allow_shell() -> None:
    refused = run("runbook", "run", "run-steps", "--step", "shell-echo")
    assert refused.exit_code == 2
    assert "pass --allow-shell" in refused.stderr
    allowed = run("runbook", "run", "run-steps", "--step", "shell-echo", "--allow-shell")
    assert allowed.exit_code == 0
    assert "from the shell: 42" in allowed.output


def test_run_unknown_step() -> None:
    result = run("runbook", "run", "run-steps", "--step", "nope")
    assert result.exit_code == 2
    assert "no step 'nope'" in result.stderr


def test_run_without_step_walks_the_steps_and_asks() -> None:
    result = CliRunner().invoke(main, ["runbook", "run", "run-steps"],
                                input="n\nn\nn\ny\nq\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1/9 step show-links (Diagnose, line 14)" in out
    assert "$ simctl proxies" in out
    assert "step list-toxics: ok (1 command(s)" in out
    assert "5/9 step fails-midway" in out  # shown, then quit
    assert "exit 2" not in out  # fails-midway was not run
    assert out.rstrip().endswith("1 step(s) run, 3 skipped, 5 not reached")


def test_walking_keeps_the_shell_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "shell-ran"
    monkeypatch.setenv("SIMCTL_TEST_MARKER", str(marker))
    result = CliRunner().invoke(main, ["runbook", "run", "self-granting"], input="n\n" + "y\n" * 9)
    assert result.exit_code == 0, result.output
    assert result.output.count("not run: refused:") == 3
    assert "not run: needs --allow-shell" in result.output
    assert not marker.exists()
    assert result.output.rstrip().endswith("0 step(s) run, 5 skipped, 0 not reached")


def test_run_walk_stops_at_a_failing_step() -> None:
    result = CliRunner().invoke(main, ["runbook", "run", "run-steps"],
                                input="n\nn\nn\nn\ny\n")
    assert result.exit_code == 1
    assert "step fails-midway: failed, 1 command(s) not run" in result.output


def test_show_renders_the_prose_and_names_each_step() -> None:
    result = run("runbook", "show", "logplex-drain-backlog")
    assert result.exit_code == 0, result.output
    assert "step disable-slow-drain (simctl):" in result.output
    assert "step drain-metrics (needs --allow-shell):" in result.output
    assert "---" not in result.output.splitlines()[2]  # the front matter is not shown as text
