"""Scenarios for a project's own apps: `app:` defaults, `app_agnostic`, and the lint rule
that keeps dyno behaviours off them."""

from __future__ import annotations

from pathlib import Path

import pytest

from simctl.scenario import catalog
from simctl.scenario.loader import lint_text
from simctl.scenario.references import stack_info

ROOT = Path(__file__).parents[2]

BASE = """\
id: shop-slow
title: A slow dyno of the shop
runbook: runbooks/h12-request-timeouts.md
difficulty: 1
{extra}
faults:
  - {{at: 1s, toxic: {{proxy: {proxy}, type: latency, attributes: {{latency: 4000}}}}}}
  - {{at: 2s, sync: {{op: state, dyno: {dyno}, state: down}}}}
{more}
symptoms:
  - within: 10s
    expect: ['http.count{{code="H12"}} > 0']
"""


def lint(text: str, cwd: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(cwd)
    return lint_text(text, Path("shop-slow.yaml"), stack=stack_info(ROOT / "stack"),
                     root=ROOT, runbooks=ROOT / "runbooks")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text("web: python3 app.py\n")
    (tmp_path / "simctl.yaml").write_text("apps:\n  shop: {procfile: ., dynos: 2}\n")
    return tmp_path


def test_app_targets_the_projects_app(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = lint(BASE.format(extra="app: shop", proxy="shop.1", dyno="shop.1", more=""),
                  project, monkeypatch)
    assert result.ok, result.issues
    scenario = result.scenario
    assert scenario.load.host == "shop.localhost"
    sync = scenario.faults[1].action
    assert (sync.app, sync.dyno) == ("shop", "shop.1")


def test_unknown_dyno_of_the_app_is_reported(project: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    result = lint(BASE.format(extra="app: shop", proxy="shop.3", dyno="shop.1", more=""),
                  project, monkeypatch)
    assert any("unknown proxy 'shop.3'" in issue.message for issue in result.issues)


@pytest.mark.parametrize("extra", ["app: shop", "app_agnostic: true"])
def test_a_dyno_behaviour_on_a_projects_app_is_a_lint_error(
        extra: str, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dyno = "shop.1" if extra.startswith("app:") else "web.1"
    behaviour = f"  - {{at: 3s, dyno: {{dyno: {dyno}, behaviour: hang}}}}"
    result = lint(BASE.format(extra=extra, proxy=dyno, dyno=dyno, more=behaviour),
                  project, monkeypatch)
    messages = [issue.message for issue in result.issues]
    assert len(messages) == 1, messages
    assert "dyno behaviours apply only to built-in dynos" in messages[0]
    assert result.issues[0].line == 9


def test_catalogue_app_agnostic_scenarios_use_no_behaviour() -> None:
    import yaml

    agnostic = [p for p in catalog.scenario_files(ROOT / "scenarios")
                if yaml.safe_load(p.read_text()).get("app_agnostic")]
    assert {p.stem for p in agnostic} >= {"slow-dyno", "drain-endpoint-down",
                                          "stale-routes-sync-partition"}
    for path in agnostic:
        faults = yaml.safe_load(path.read_text())["faults"]
        assert not any("dyno" in fault for fault in faults), path.name


def test_a_catalogue_behaviour_on_the_projects_web_dynos_is_a_lint_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Procfile").write_text("web: python3 app.py\n")
    (tmp_path / "simctl.yaml").write_text("apps:\n  web: {procfile: .}\n")
    monkeypatch.chdir(tmp_path)
    from simctl.scenario.loader import lint_scenario

    result = lint_scenario(ROOT / "scenarios" / "app-crashed.yaml", stack=stack_info(),
                           root=ROOT, runbooks=ROOT / "runbooks")
    messages = {issue.message for issue in result.issues}
    assert messages == {"dyno behaviours apply only to built-in dynos, and web.1 runs the "
                        "project's own app (simctl.yaml): use a toxic or a process fault",
                        "dyno behaviours apply only to built-in dynos, and web.2 runs the "
                        "project's own app (simctl.yaml): use a toxic or a process fault",
                        "dyno behaviours apply only to built-in dynos, and web.3 runs the "
                        "project's own app (simctl.yaml): use a toxic or a process fault"}


def test_scenario_list_json_says_which_are_app_agnostic() -> None:
    import json

    from click.testing import CliRunner

    from simctl.cli import main

    result = CliRunner().invoke(main, ["scenario", "list", "--json"])
    assert result.exit_code == 0, result.output
    flags = {entry["id"]: entry["app_agnostic"] for entry in json.loads(result.stdout)}
    assert flags["slow-dyno"] is True
    assert flags["app-crashed"] is False


def test_simctl_config_names_the_project_file(project: Path, tmp_path_factory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.setenv("SIMCTL_CONFIG", str(project / "simctl.yaml"))
    result = lint(BASE.format(extra="app: shop", proxy="shop.2", dyno="shop.2", more=""),
                  elsewhere, monkeypatch)
    assert result.ok, result.issues
    monkeypatch.setenv("SIMCTL_CONFIG", str(elsewhere / "missing.yaml"))
    from simctl.apps.config import project_apps
    from simctl.errors import InvalidInput

    with pytest.raises(InvalidInput, match="missing.yaml: no such project file"):
        project_apps()


def test_verify_all_app_agnostic_selects_the_marked_scenarios() -> None:
    from click.testing import CliRunner

    from simctl.apps.scenarios import only_app_agnostic
    from simctl.cli import main
    from simctl.errors import InvalidInput

    files = catalog.scenario_files(ROOT / "scenarios")
    picked = {p.stem for p in only_app_agnostic(files, True)}
    assert {"slow-dyno", "drain-endpoint-down", "stale-routes-sync-partition"} <= picked
    assert "app-crashed" not in picked
    with pytest.raises(InvalidInput, match="no scenario is marked"):
        only_app_agnostic([ROOT / "scenarios" / "app-crashed.yaml"], True)
    result = CliRunner().invoke(main, ["verify", "--app-agnostic", "slow-dyno"])
    assert result.exit_code == 2
    assert "--app-agnostic selects from --all: give --all with it" in result.output
