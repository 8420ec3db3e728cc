"""`simctl verify`'s pre-check: every mitigation step it will run gets the checks of
`simctl runbook check` before anything starts (docs/ci.md, "simctl verify")."""

from __future__ import annotations

from pathlib import Path

import pytest

from simctl.cli.verify import _lint
from simctl.errors import EXIT_INVALID

FIXTURES = Path(__file__).parents[1] / "fixtures" / "engine"


@pytest.fixture(autouse=True)
def engine_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", str(FIXTURES / "scenarios"))
    monkeypatch.setenv("SIMCTL_RUNBOOKS_DIR", str(FIXTURES / "runbooks"))


def test_a_misspelt_step_command_is_refused_before_anything_starts(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        _lint([FIXTURES / "invalid" / "misspelt-step-command.yaml"], allow_shell=False)
    assert exit_.value.code == EXIT_INVALID
    out = capsys.readouterr()
    assert "misspelt-step-command.yaml: mitigation: step 'take-web-1-out':" in out.out
    assert "RB006 'simctl sync stat web.1 down'" in out.out
    assert "No such command 'stat'" in out.out
    assert "nothing was started" in out.err


def test_a_valid_step_passes_the_pre_check() -> None:
    selected = _lint([FIXTURES / "scenarios" / "slow-web-1.yaml"], allow_shell=False)
    assert [s.scenario.id for s in selected] == ["slow-web-1"]
