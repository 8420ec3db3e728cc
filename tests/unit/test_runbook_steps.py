"""Running runbook steps: simctl lines without a shell, shell lines only when allowed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from simctl.errors import InvalidInput
from simctl.runbook.parser import parse_runbook
from simctl.runbook.steps import StepNeedsShell, run_step

RUNBOOK = Path(__file__).resolve().parents[1] / "fixtures" / "runbooks" / "run-steps.md"


def test_a_harmless_simctl_step_runs_with_the_same_python() -> None:
    result = run_step(RUNBOOK, "list-toxics")
    assert result.ok
    assert result.failed is None
    assert result.not_run == []
    assert result.section == "Follow-up"
    (command,) = result.commands
    assert command.argv == (sys.executable, "-m", "simctl", "toxics")
    assert command.returncode == 0
    assert command.line == 33
    assert "latency" in command.stdout
    assert "bandwidth" in command.stdout
    assert command.duration > 0


def test_a_failing_step_stops_at_the_first_failure() -> None:
    book = parse_runbook(RUNBOOK)
    result = run_step(book, "fails-midway")
    assert not result.ok
    assert [c.returncode for c in result.commands] == [0, 2]
    failed = result.failed
    assert failed is not None
    assert failed.line == 38
    assert "unknown toxic type 'no-such-toxic'" in failed.stderr
    assert [c.text for c in result.not_run] == ["simctl toxics"]


def test_shell_steps_need_permission_and_nothing_runs_without_it() -> None:
    with pytest.raises(StepNeedsShell, match="pass --allow-shell") as caught:
        run_step(RUNBOOK, "shell-echo")
    assert caught.value.exit_code == 2


def test_shell_steps_run_through_sh_when_allowed() -> None:
    result = run_step(RUNBOOK, "shell-echo", allow_shell=True)
    assert result.ok
    assert result.commands[0].argv[:2] == ("/bin/sh", "-c")
    assert result.commands[0].stdout == "from the shell: 42\n"


def test_shell_step_failure() -> None:
    result = run_step(RUNBOOK, "shell-fails", allow_shell=True)
    assert [c.returncode for c in result.commands] == [0, 3]
    assert result.commands[0].stdout == "first\n"
    assert [c.text for c in result.not_run] == ["echo never"]


def test_env_adds_variables() -> None:
    result = run_step(RUNBOOK, "shell-env", allow_shell=True, env={"SIMCTL_TEST_VALUE": "x1"})
    assert result.commands[0].stdout == "value=x1\n"


def test_timeout() -> None:
    result = run_step(RUNBOOK, "shell-sleep", allow_shell=True, timeout=0.3)
    assert not result.ok
    assert result.commands[0].timed_out
    assert result.commands[0].returncode is None


def test_unknown_step_suggests() -> None:
    with pytest.raises(InvalidInput, match="no step 'list-toxic'; did you mean 'list-toxics'"):
        run_step(RUNBOOK, "list-toxic")


def test_a_step_that_does_not_split_runs_nothing(tmp_path: Path) -> None:
    book = tmp_path / "b.md"
    book.write_text('## Mitigate\n\n```sh {#bad}\nsimctl toxics\nsimctl heal "web.1\n```\n')
    with pytest.raises(InvalidInput, match="line 5: cannot split the line"):
        run_step(book, "bad")


def test_an_empty_step_is_refused(tmp_path: Path) -> None:
    book = tmp_path / "b.md"
    book.write_text("## Mitigate\n\n```sh {#empty}\n# nothing\n```\n")
    with pytest.raises(InvalidInput, match="step 'empty' has no command"):
        run_step(book, "empty")
