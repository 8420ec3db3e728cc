"""`runbook check`: one fixture per rule, each finding exactly `file:line: RBnnn message`."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from simctl.cli import main
from simctl.runbook.check import (
    RULES,
    WARNINGS,
    CheckContext,
    check_alert_runbooks,
    check_runbook,
    parse_command,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

EXPECTED = {
    "logplex-drain-backlog": [
        "{f}:34: RB009 warning: step 'drain-metrics' runs non-simctl commands ('curl -s "
        "http://127.0.0.1:7300/metrics | grep logplex_drain_'), so it runs only with "
        "--allow-shell",
    ],
    "missing-front-matter": [
        "{f}:1: RB001 no front matter: start the file with a '---' block holding id, title, "
        "alerts and scenarios",
    ],
    "bad-front-matter": [
        "{f}:3: RB002 front matter: title: expected a string, got a list",
        "{f}:4: RB002 front matter: alert: unknown key 'alert'; did you mean 'alerts'?",
    ],
    "front-matter-yaml": [
        "{f}:4: RB002 front matter: invalid YAML: found unexpected end of stream (while "
        "scanning a quoted scalar)",
    ],
    "missing-section": [
        "{f}:1: RB003 missing section '## Diagnose'",
        "{f}:1: RB003 missing section '## Verify'",
        "{f}:12: RB003 missing section '## Mitigate' (found '## Mitgate': misspelt?)",
    ],
    "duplicate-step-id": [
        "{f}:32: RB004 duplicate step id 'show-links' (first at line 14)",
    ],
    "mitigate-without-id": [
        "{f}:20: RB005 a code block in Mitigate has no id: open it with ```sh {#some-id} so "
        "it can be run and referenced",
    ],
    "bad-simctl-command": [
        "{f}:21: RB006 'simctl heel drain.main': simctl: No such command 'heel'. Did you "
        "mean 'heal'?",
        "{f}:27: RB006 'simctl proxies --jsn': simctl proxies: No such option '--jsn'. Did "
        "you mean '--json'?",
        "{f}:33: RB006 'simctl inject web.1 latency --attr \"latency=100': cannot split the "
        "line: No closing quotation",
        "{f}:37: RB006 'simctl inject web.1 latncy --attr latency=100': simctl inject: "
        "Invalid value for 'TYPE': unknown toxic type 'latncy'; did you mean 'latency'? "
        "(choose from: bandwidth, latency, limit_data, noop, reset_peer, slicer, slow_close, "
        "timeout)",
    ],
    "unknown-scenario": [
        "{f}:5: RB007 unknown scenario 'slow-drains': no scenarios/slow-drains.yaml; did you "
        "mean 'slow-drain'?",
    ],
    "unknown-alert": [
        "{f}:4: RB008 alert 'LogDrainDroping' is named by no scenario (no scenario lists it "
        "in 'alerts'); did you mean 'LogDrainDropping'?",
    ],
    "shell-step": [
        "{f}:34: RB009 warning: step 'count-l10' runs non-simctl commands ('curl -s "
        "'http://127.0.0.1:7501/messages?since=0' | grep -...'), so it runs only with "
        "--allow-shell",
    ],
    "bad-step-id": [
        "{f}:32: RB010 invalid step id 'not/an/id': use letters, digits, '-' and '_'",
        "{f}:36: RB011 step 'empty-step' has no command",
    ],
    "id-mismatch": [
        "{f}:2: RB012 id 'some-other-runbook' does not match the file name 'id-mismatch.md' "
        "(expected 'id-mismatch')",
    ],
    "self-granting": [
        "{f}:21: RB013 step 'nested-run': 'simctl runbook run runbooks/self-granting.md --step "
        "shell...' passes --allow-shell; a step may not run it, with or without --allow-shell",
        "{f}:25: RB013 step 'nested-verify': 'simctl --toxiproxy-url http://127.0.0.1:1 verify "
        "slow-drain' runs scenarios and their runbooks' commands; a step may not run it, with "
        "or without --allow-shell",
        "{f}:30: RB013 step 'nested-no-shell': 'simctl runbook run runbooks/self-granting.md "
        "--step list-...' runs another runbook's commands; a step may not run it, with or "
        "without --allow-shell",
        "{f}:36: RB009 warning: step 'shell-touch' runs non-simctl commands ('touch "
        "\"$SIMCTL_TEST_MARKER\"'), so it runs only with --allow-shell",
    ],
    "slow-drain": [
        "{f}:2: RB015 runbook id 'slow-drain' names a scenario: it would give away a hidden "
        "drill (name it after the symptom or alert on-call sees)",
    ],
    "run-steps": [
        "{f}:38: RB006 'simctl inject web.1 no-such-toxic': simctl inject: Invalid value for "
        "'TYPE': unknown toxic type 'no-such-toxic' (choose from: bandwidth, latency, "
        "limit_data, noop, reset_peer, slicer, slow_close, timeout)",
        "{f}:43: RB009 warning: step 'shell-echo' runs non-simctl commands ('echo \"from the "
        "shell: $((6 * 7))\"'), so it runs only with --allow-shell",
        "{f}:47: RB009 warning: step 'shell-fails' runs non-simctl commands ('echo first'), "
        "so it runs only with --allow-shell",
        "{f}:53: RB009 warning: step 'shell-env' runs non-simctl commands ('echo "
        "\"value=$SIMCTL_TEST_VALUE\"'), so it runs only with --allow-shell",
        "{f}:57: RB009 warning: step 'shell-sleep' runs non-simctl commands ('sleep 5'), so it "
        "runs only with --allow-shell",
    ],
}


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


@pytest.fixture(scope="module")
def context() -> CheckContext:
    return CheckContext.discover(FIXTURES / "scenarios" / "valid")


def test_every_runbook_fixture_has_its_expected_findings() -> None:
    assert sorted(EXPECTED) == sorted(p.stem for p in (FIXTURES / "runbooks").glob("*.md"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_findings(name: str, context: CheckContext) -> None:
    path = f"runbooks/{name}.md"
    findings = check_runbook(Path(path), context)
    assert [str(f) for f in findings] == [line.replace("{f}", path) for line in EXPECTED[name]]


def test_every_rule_has_a_fixture() -> None:
    used = {line.split(": ", 1)[1].split()[0] for lines in EXPECTED.values() for line in lines}
    # RB014 needs a rule file without the alert: tests/unit/test_monitor_rules.py
    assert used | {"RB014"} == set(RULES)


ALERT_RULES = """\
groups:
  - name: g
    rules:
      - alert: LogDrainDropping
        expr: up == 0
        annotations:
          summary: drops
          runbook: slow-drain
      - alert: LogDrainFailing
        expr: up == 0
        annotations: {summary: fails, runbook: logplex-drain-backlog}
      - alert: Flowing
        expr: up == 0
        annotations: {summary: flows, runbook: every-action}
"""


def test_an_alert_linking_a_scenario_named_runbook_gives_away_a_hidden_drill(
        tmp_path: Path, context: CheckContext, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALERT_RULES)
    findings = [str(f) for f in check_alert_runbooks(context, rules, "alerts.yaml")]
    tail = ("names a scenario: it would give away a hidden drill (name the runbook after the "
            "symptom)")
    assert findings == [
        f"alerts.yaml:8: RB015 alert 'LogDrainDropping': runbook 'slow-drain' {tail}",
        f"alerts.yaml:14: RB015 alert 'Flowing': runbook 'every-action' {tail}"]
    # `runbook check` with no runbook named checks the alert rules too
    monkeypatch.setenv("SIMCTL_RULES", str(rules))
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", "scenarios/valid")
    monkeypatch.setenv("SIMCTL_RUNBOOKS_DIR", "runbooks")
    result = CliRunner().invoke(main, ["runbook", "check"])
    assert result.exit_code == 2
    assert f"{rules}:8: RB015 alert 'LogDrainDropping'" in result.stdout
    rules.write_text("groups: [\n")  # a broken rule file is `alerts check`'s business
    assert check_alert_runbooks(context, rules) == []


def test_severity(context: CheckContext) -> None:
    findings = check_runbook(Path("runbooks/run-steps.md"), context)
    assert [f.severity for f in findings] == ["error"] + ["warning"] * 4
    assert {"RB009"} == WARNINGS


def test_discover_reads_scenario_alerts_leniently(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("alerts: [One, 2, Two]\n")
    (tmp_path / "b.yaml").write_text("{not yaml: [\n")
    (tmp_path / "c.yaml").write_text("- a list\n")
    context = CheckContext.discover(tmp_path)
    assert context.scenarios == {"a": ["One", "Two"], "b": [], "c": []}
    assert context.alerts == {"One", "Two"}


@pytest.mark.parametrize(("argv", "problem"), [
    (["toxics"], None),
    (["--help"], None),
    (["inject", "--help"], None),
    (["--version"], None),
    (["--toxiproxy-url", "http://127.0.0.1:9999", "proxies", "--json"], None),
    (["inject", "web.1", "latency", "--attr", "latency=5"], None),
    ([], "missing command after 'simctl'"),
    (["toxiproxy"], "missing command after 'simctl toxiproxy'"),
    (["toxcs"], "simctl: No such command 'toxcs'. Did you mean 'toxics'?"),
    (["inject"], "simctl inject: Missing argument 'PROXY'."),
    (["heal", "--bogus"], "simctl heal: No such option '--bogus'."),
    (["--toxiproxy-url", "ftp://x", "toxics"], "simctl: Invalid value for '--toxiproxy-url'"),
    (["scenario", "lint", "a", "b"], None),
    (["runbook", "run", "x"], None),  # walks the steps (RB013 refuses it in a step)
    (["runbook", "run"], "simctl runbook run: Missing argument 'RUNBOOK'."),
])
def test_parse_command_uses_the_real_command_tree(argv: list[str], problem: str | None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    found = parse_command(main, argv)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)
    assert capsys.readouterr().out == ""  # --help and --version print nothing


def test_commands_added_later_just_work() -> None:
    group = click.Group("simctl")
    assert parse_command(group, ["flush", "router-1"]) is not None

    @group.command()
    @click.argument("router")
    def flush(router: str) -> None:
        raise AssertionError("never invoked")

    assert parse_command(group, ["flush", "router-1"]) is None
