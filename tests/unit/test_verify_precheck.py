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


def test_shards_split_the_catalogue_stably_and_completely(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from simctl.cli.verify import _shard
    from simctl.scenario import catalog

    monkeypatch.delenv("SIMCTL_SCENARIOS_DIR")
    monkeypatch.delenv("SIMCTL_RUNBOOKS_DIR")
    selected = _lint(catalog.scenario_files(), allow_shell=False)
    parts = [[s.scenario.id for s in _shard(selected, i, 3)] for i in (1, 2, 3)]
    every = sorted(s.scenario.id for s in selected)
    assert sorted(sum(parts, [])) == every  # each scenario in exactly one shard
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert parts == [[s.scenario.id for s in _shard(list(reversed(selected)), i, 3)]
                     for i in (1, 2, 3)]  # not the order they came in
    assert parts[0][:2] == every[0:6:3][:2]


@pytest.mark.parametrize("value", ["0/3", "4/3", "1-3", "a/b", "/3"])
def test_a_bad_shard_is_invalid_input(value: str) -> None:
    from click.testing import CliRunner

    from simctl.cli import main

    result = CliRunner().invoke(main, ["verify", "--all", "--shard", value])
    assert result.exit_code == EXIT_INVALID
    assert "expected I/N with 1 <= I <= N" in result.output
