"""The shell rule: a runbook step run without --allow-shell cannot grant itself the shell,
neither through a nested `simctl runbook run ... --allow-shell` or `verify` (refused before
anything runs) nor through anything that gets past that check (SIMCTL_SHELL_DENIED)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from simctl.cli import main
from simctl.errors import InvalidInput
from simctl.runbook.model import Command, Runbook, Step
from simctl.runbook.parser import parse_runbook
from simctl.runbook.shell_guard import ENV, self_granting
from simctl.runbook.steps import run_step

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUNBOOK = FIXTURES / "runbooks" / "self-granting.md"


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the runbook's shell step creates: it must never appear."""
    path = tmp_path / "shell-ran"
    monkeypatch.setenv("SIMCTL_TEST_MARKER", str(path))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(FIXTURES)
    return path


@pytest.mark.parametrize(("line", "why"), [
    ("simctl runbook run x.md --step a --allow-shell", "passes --allow-shell"),
    ("simctl proxies --allow-shell=1", "passes --allow-shell"),
    ("simctl runbook run x.md --step a", "runs another runbook's commands"),
    ("simctl --toxiproxy-url http://127.0.0.1:1 verify slow-drain",
     "runs scenarios and their runbooks' commands"),
    ("simctl toxiproxy serve --port 0", "runs a server until it is stopped"),
    ("simctl up --app web=examples/hello", "starts the stack, and with it the commands of "
     "apps' Procfiles"),
    ("simctl web --port 0", "runs a server until it is stopped"),
    ("simctl dashboard", "runs until it is stopped"),
    ("simctl runbook show verify", None),
    ("simctl scenario show verify", None),
    ("simctl heal drain.main", None),
])
def test_which_simctl_commands_a_step_may_not_run(line: str, why: str | None) -> None:
    assert self_granting(line.split()) == why


@pytest.mark.parametrize("step", ["nested-run", "nested-verify", "nested-no-shell"])
def test_a_nested_runner_is_refused_and_nothing_runs(marker: Path, step: str) -> None:
    for allow_shell in (False, True):
        with pytest.raises(InvalidInput, match="a runbook step may not run it") as caught:
            run_step(RUNBOOK, step, allow_shell=allow_shell)
        assert caught.value.exit_code == 2
    assert not marker.exists()


def test_the_cli_refuses_it_with_one_line_and_exit_2(marker: Path) -> None:
    result = CliRunner().invoke(main, ["runbook", "run", str(RUNBOOK), "--step", "nested-run"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: line 21: 'simctl runbook run")
    assert len(result.stderr.splitlines()) == 1
    assert not marker.exists()


def test_a_step_run_without_the_shell_passes_the_guard_to_its_commands(marker: Path) -> None:
    """Even a command the static rule missed cannot turn the shell on below a no-shell run."""
    argv = ("simctl", "runbook", "run", str(RUNBOOK), "--step", "shell-touch", "--allow-shell")
    sneaky = Command(1, " ".join(argv), argv, is_simctl=True, refused=None)
    book = Runbook(RUNBOOK, None, None, blocks=[Step("sneaky", "Mitigate", "sh", 1, (sneaky,))])
    result = run_step(book, "sneaky")
    (command,) = result.commands
    assert command.returncode == 2, command.stderr
    assert "--allow-shell is refused here" in command.stderr
    assert not marker.exists()
    # With the shell allowed at the top, the same command may use it.
    assert run_step(book, "sneaky", allow_shell=True).ok
    assert marker.exists()


@pytest.mark.parametrize("command", [["verify", "slow-drain"], ["up", "--port-offset", "9"]])
def test_allow_shell_is_refused_below_a_no_shell_step(marker: Path, tmp_path: Path,
                                                      command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "simctl", *command, "--allow-shell"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, ENV: "1", "SIMCTL_STATE_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: --allow-shell is refused here: this command runs inside a runbook step that "
        f"was run without it ({ENV} is set)"]
    assert list(tmp_path.iterdir()) == []  # nothing started


def test_show_does_not_label_a_refused_step_simctl(marker: Path) -> None:
    result = CliRunner().invoke(main, ["runbook", "show", str(RUNBOOK)])
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.split("│")[1:-1]]
             for line in result.output.splitlines() if line.startswith("│ ")]
    runs = {row[0]: row[3] for row in cells if row[0]}
    assert runs == {"list-toxics": "simctl", "nested-run": "refused (RB013)",
                    "nested-verify": "refused (RB013)", "nested-no-shell": "refused (RB013)",
                    "shell-touch": "needs --allow-shell"}
    assert parse_runbook(RUNBOOK).step("nested-no-shell").executable is False
