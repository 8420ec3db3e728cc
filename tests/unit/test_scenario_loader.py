"""Scenario files: every kind of mistake reported as file:line:col: path: message, all at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simctl.errors import EXIT_INVALID, InvalidInput
from simctl.scenario import model
from simctl.scenario.describe import describe, undo
from simctl.scenario.errors import ScenarioError
from simctl.scenario.loader import lint_scenario, lint_text, load_scenario
from simctl.scenario.references import StackInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VALID = sorted(p.stem for p in (FIXTURES / "scenarios" / "valid").glob("*.yaml"))
INVALID = sorted(p.stem for p in (FIXTURES / "scenarios" / "invalid").glob("*.yaml"))

# One entry per invalid fixture: the exact messages, in order ({f} is the file).
EXPECTED = {
    "alert-not-in-runbook": [
        "{f}:11:10: alerts[0]: alert 'LogDrainDroping' is not listed in the front matter of "
        "runbooks/logplex-drain-backlog.md; did you mean 'LogDrainDropping'?",
    ],
    "attribute-out-of-range": [
        "{f}:10:29: faults[0].toxic.attributes.latency: latency=4000000 is out of range: "
        "0 to 3600000 ms",
        "{f}:10:46: faults[0].toxic.attributes.jitter: jitter=-1 is out of range: "
        "0 to 3600000 ms",
    ],
    "bad-attribute-name": [
        "{f}:11:9: faults[0].toxic.attributes.rte: unknown bandwidth attribute 'rte'; "
        "did you mean 'rate'?",
    ],
    "bad-duration": [
        "{f}:6:9: faults[0].at: invalid duration '5 seconds': expected a number and a unit "
        "(ms, s, m, h), e.g. '500ms', '5s', '2m' or '1m30s'",
        "{f}:9:13: symptoms[0].within: invalid duration 30: expected a number and a unit "
        "(ms, s, m, h), e.g. '500ms', '5s', '2m' or '1m30s'",
    ],
    "bad-dyno-params": [
        "{f}:7:54: faults[0].dyno.params.mss: latency: unknown field 'mss'; did you mean 'ms'? "
        "(accepted: fraction, jitter, ms, path)",
        "{f}:9:36: faults[1].dyno.behaviour: expected 'normal', 'latency', 'error', 'hang', "
        "'close', 'partial', 'crash', 'slow_boot', 'memory' or 'chatty', got a string 'lateny'; "
        "did you mean 'latency'?",
    ],
    "bad-expression": [
        "{f}:6:24: steady_state[0]: expected a comparison (<, <=, >, >=, ==, !=) after "
        "http.success_ratio, got '=>'; did you mean '>='?",
        "{f}:8:10: steady_state[2]: unknown http measure 'p95_ms'; did you mean 'p99_ms'? "
        "(one of: success_ratio, error_ratio, p50_ms, p90_ms, p99_ms, max_ms, mean_ms, count, "
        "rate)",
        "{f}:14:53: symptoms[0].expect[0]: expected a number, got 'many'",
    ],
    "bad-sync-op": [
        "{f}:7:16: faults[0].sync.op: unknown op 'scal'; did you mean 'scale'?",
        "{f}:9:11: faults[1].sync.op: missing required key",
        "{f}:11:47: faults[2].sync.address: invalid address 'nowhere': expected HOST:PORT or "
        "'blackhole'",
    ],
    "duplicate-key": [
        "{f}:5:1: <document>: invalid YAML: duplicate key 'title' (first at line 2)",
    ],
    "duplicate-toxic-name": [
        "{f}:14:12: faults[3].toxic: toxic 'latency_downstream' is already on web.1 from "
        "faults[0]: give one of them a distinct 'name'",
    ],
    "fault-plane-target": [
        "{f}:7:24: faults[0].process.service: 'toxiproxy' is the fault plane: it cannot be a "
        "process fault target (rollback needs it)",
        "{f}:9:19: faults[1].drain.name: 'drain.main' is the proxy; the drain is called 'main'",
        "{f}:11:22: faults[2].router.router: unknown router 'router-3'; did you mean "
        "'router-2'?",
    ],
    "id-mismatch": [
        "{f}:1:5: id: id 'slow-drain' does not match the file name 'id-mismatch.yaml' "
        "(expected 'id-mismatch')",
    ],
    "missing-keys": [
        "{f}:1:1: faults: missing required key",
        "{f}:1:1: title: missing required key",
        "{f}:4:11: symptoms: expected at least 1 item(s), got an empty list",
    ],
    "missing-runbook-file": [
        "{f}:3:10: runbook: runbook file not found: runbooks/logplex-drain-backlogs.md "
        "(looked for runbooks/logplex-drain-backlogs.md); did you mean "
        "'runbooks/logplex-drain-backlog.md'?",
    ],
    "multiple-errors": [
        "{f}:5:13: difficulty: expected at most 5, got 7",
        "{f}:6:14: load.http: invalid rate 'fast': expected a number per second or minute, "
        "e.g. '50/s' or '600/m'",
        "{f}:6:28: load.router: unknown edge proxy or router 'edge.3'; did you mean 'edge.2'?",
        "{f}:8:10: steady_state[0]: unknown http measure 'sucess_ratio'; did you mean "
        "'success_ratio'? (one of: success_ratio, error_ratio, p50_ms, p90_ms, p99_ms, max_ms, "
        "mean_ms, count, rate)",
        "{f}:11:20: faults[0].toxic.proxy: unknown proxy 'drain.mian'; did you mean "
        "'drain.main'?",
        "{f}:12:9: faults[1].at: invalid duration 10: expected a number and a unit "
        "(ms, s, m, h), e.g. '500ms', '5s', '2m' or '1m30s'",
        "{f}:13:35: faults[1].proxy.enabled: expected true or false, got a string 'maybe'",
        "{f}:17:28: alerts[1]: alert 'PagerAlert' is not listed in the front matter of "
        "runbooks/logplex-drain-backlog.md (expected one of: LogDrainDropping)",
        "{f}:18:50: mitigation.runbook_steps[1]: no step 'restart-everything' in "
        "runbooks/logplex-drain-backlog.md (expected one of: disable-slow-drain, drain-metrics, "
        "show-links, verify-links)",
        "{f}:19:9: timing: expected 'fast' or 'heroku', got a string 'slow'",
    ],
    "not-a-mapping": [
        "{f}:1:1: <document>: not a scenario file: expected a mapping of scenario keys, got "
        "a list",
    ],
    "two-actions": [
        "{f}:8:5: faults[0]: a fault has exactly one action, found 2: toxic, proxy "
        "(use one fault item per action)",
    ],
    "unknown-action": [
        "{f}:7:5: faults[0].toxc: unknown action 'toxc'; did you mean 'toxic'?",
        "{f}:8:5: faults[1]: missing the action: give one of toxic, proxy, process, dyno, "
        "sync, load, rod, drain, router, tail",
    ],
    "unknown-dyno": [
        "{f}:7:18: faults[0].dyno.dyno: unknown dyno 'web.4'; did you mean 'web.3'? "
        "(more dynos need a 'sync: {op: scale}' fault first)",
        "{f}:9:39: faults[1].sync.dyno: unknown dyno 'web.11'; did you mean 'web.1'? "
        "(more dynos need a 'sync: {op: scale}' fault first)",
    ],
    "unknown-probe-target": [
        "{f}:6:12: steady_state[0]: unknown service, role or dyno 'routr-1'; did you mean "
        "'router-1'?",
        "{f}:7:41: steady_state[1]: unknown service, role or dyno 'dyno-9'; did you mean "
        "'dyno-3'?",
        "{f}:13:34: symptoms[0].expect[0]: unknown log source 'drain.mian'; did you mean "
        "'drain.main'?",
    ],
    "unknown-proxy": [
        "{f}:7:20: faults[0].toxic.proxy: unknown proxy 'drain.mian'; did you mean "
        "'drain.main'?",
    ],
    "unknown-runbook-step": [
        "{f}:12:19: mitigation.runbook_steps[0]: no step 'disable-slow-drian' in "
        "runbooks/logplex-drain-backlog.md; did you mean 'disable-slow-drain'?",
    ],
    "self-granting-step": [
        "{f}:12:32: mitigation.runbook_steps[1]: step 'nested-run' of runbooks/self-granting.md, "
        "line 21: 'simctl runbook run runbooks/self-granting.md --step shell-touch "
        "--allow-shell' passes --allow-shell; a runbook step may not run it (RB013)",
    ],
    "unknown-service": [
        "{f}:7:24: faults[0].process.service: unknown service 'loglex'; did you mean "
        "'logplex'?",
    ],
    "unknown-top-level-key": [
        "{f}:5:1: steady_sate: unknown key 'steady_sate'; did you mean 'steady_state'?",
    ],
    "unknown-toxic-type": [
        "{f}:7:38: faults[0].toxic.type: unknown toxic type 'bandwith'; did you mean "
        "'bandwidth'?",
    ],
    "wrong-type": [
        "{f}:4:13: difficulty: expected an integer, got a string 'hard'",
        "{f}:5:7: tags: expected a list, got a string 'logplex'",
    ],
    "yaml-syntax": [
        "{f}:6:9: <document>: invalid YAML: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping)",
    ],
}


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths, so the messages are the same on every machine."""
    monkeypatch.chdir(FIXTURES)


def _lint(folder: str, name: str):
    return lint_scenario(Path("scenarios", folder, f"{name}.yaml"), runbooks=Path("runbooks"))


def test_every_invalid_fixture_has_its_expected_messages() -> None:
    assert sorted(EXPECTED) == INVALID


@pytest.mark.parametrize("name", INVALID)
def test_invalid_fixture_reports_exact_errors(name: str) -> None:
    result = _lint("invalid", name)
    assert result.scenario is None
    path = f"scenarios/invalid/{name}.yaml"
    assert [str(issue) for issue in result.issues] == [
        line.replace("{f}", path) for line in EXPECTED[name]]


def test_all_errors_of_one_file_are_reported_in_file_order() -> None:
    result = _lint("invalid", "multiple-errors")
    assert len(result.issues) == 10
    assert [i.line for i in result.issues] == sorted(i.line for i in result.issues)
    kinds = {i.path.split(".")[0].split("[")[0] for i in result.issues}
    # schema, expression and cross-reference errors together
    assert {"difficulty", "steady_state", "faults", "alerts", "mitigation"} <= kinds


@pytest.mark.parametrize("name", VALID)
def test_valid_fixtures_load(name: str) -> None:
    scenario = load_scenario(Path("scenarios", "valid", f"{name}.yaml"), runbooks=Path("runbooks"))
    assert scenario.id == name


def test_load_scenario_raises_scenario_error_with_every_issue() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(Path("scenarios/invalid/wrong-type.yaml"), runbooks=Path("runbooks"))
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.exit_code == EXIT_INVALID
    assert len(error.issues) == 2
    assert str(error).splitlines() == error.messages
    assert error.messages[0].startswith("scenarios/invalid/wrong-type.yaml:4:13: difficulty:")


def test_missing_file_is_an_issue_not_a_traceback() -> None:
    result = lint_scenario("scenarios/valid/no-such.yaml")
    assert [str(i) for i in result.issues] == [
        "scenarios/valid/no-such.yaml:1:1: <document>: cannot read the file: "
        "No such file or directory"]


def test_empty_file() -> None:
    result = lint_text("", Path("empty.yaml"))
    assert [str(i) for i in result.issues] == [
        "empty.yaml:1:1: <document>: not a scenario file: expected a mapping of scenario keys, "
        "got an empty file"]


def test_unsafe_yaml_tag_is_refused() -> None:
    result = lint_text("id: !!python/object:os.system x\n", Path("x.yaml"))
    assert len(result.issues) == 1
    assert result.issues[0].message.startswith("invalid YAML: could not determine a constructor")


def test_the_slow_drain_example_model() -> None:
    s = load_scenario(Path("scenarios/valid/slow-drain.yaml"), runbooks=Path("runbooks"))
    assert s.load.http == 50.0
    assert s.load.logs == 2000.0
    assert s.load.router == "edge.1"
    (fault,) = s.faults
    assert isinstance(fault, model.ToxicFault)
    assert fault.kind == "toxic"
    assert fault.at == 5.0
    assert fault.for_ is None
    assert fault.action.toxic_name == "bandwidth_upstream"
    assert fault.action.attributes == {"rate": 4}
    assert s.recovery.within == 30.0
    assert s.recovery.expect is None
    assert [str(p) for p in s.recovery_expect] == [str(p) for p in s.steady_state]
    assert s.mitigation.runbook_steps == ["disable-slow-drain"]
    assert s.timing == "fast"
    assert s.seed == 7
    assert describe(fault) == "toxic bandwidth upstream rate=4 on drain.main"
    assert undo(fault) == "remove toxic bandwidth_upstream from drain.main"


def test_every_action_is_typed_and_the_timeline_is_sorted() -> None:
    s = load_scenario(Path("scenarios/valid/every-action.yaml"), runbooks=Path("runbooks"))
    kinds = {f.kind for f in s.faults}
    assert kinds == set(model.ACTION_KEYS)
    times = [f.at for f in s.timeline()]
    assert times == sorted(times)
    assert s.load.http == 10.0  # 600/m
    proxy = next(f for f in s.faults if f.kind == "proxy")
    assert proxy.at == 0.5
    assert proxy.for_ == 10.0
    assert undo(proxy) == "restore the previous state"
    syncs = [f.action for f in s.faults if f.kind == "sync"]
    assert {type(a) for a in syncs} == {model.SyncScale, model.SyncState,
                                        model.SyncMaintenance, model.SyncPoison,
                                        model.SyncAddress}
    assert any(isinstance(a, model.SyncAddress) and a.address == "blackhole" for a in syncs)
    for fault in s.faults:  # every action has a description and an undo
        assert describe(fault)
        assert undo(fault)
    dumped = s.model_dump(mode="json", by_alias=True)
    assert dumped["faults"][2]["for"] == "10s"
    assert dumped["steady_state"][0] == "http.success_ratio >= 0.99"


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("5s", 5.0), ("1.5s", 1.5), ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0),
    (" 0s ", 0.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert model.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", 5, "5 s", "s", "-1s", "5sec", "", None, "1.s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        model.parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "500ms"), (5, "5s"), (120, "2m"),
                                                (90, "90s"), (0, "0s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert model.format_duration(seconds) == text


@pytest.mark.parametrize(("text", "rate"), [("50/s", 50.0), ("600/m", 10.0), ("0/s", 0.0),
                                            ("2.5 / s", 2.5)])
def test_rates(text: str, rate: float) -> None:
    assert model.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["50", 50, "50/h", "fast", "200000/s"])
def test_bad_rates(text: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        model.parse_rate(text)


def test_names_are_checked_against_the_stack_given() -> None:
    stack = StackInfo(proxies=("edge.1", "only.proxy"), services=("svc",),
                      roles={"router": ("svc",)}, dynos={"web": ("web.1",)}, drains=("main",))
    text = (Path("scenarios/valid/slow-drain.yaml").read_text()
            .replace("drain.main, type", "only.prxy, type"))
    result = lint_text(text, Path("scenarios/valid/slow-drain.yaml"), stack=stack,
                       runbooks=Path("runbooks"))
    messages = [i.message for i in result.issues]
    assert "unknown proxy 'only.prxy'; did you mean 'only.proxy'?" in messages
    assert any("unknown service, role or dyno 'logplex'" in m for m in messages)


def test_references_can_be_skipped() -> None:
    result = lint_scenario(Path("scenarios/invalid/unknown-proxy.yaml"), check_references=False)
    assert result.ok
    assert result.scenario is not None


def test_a_scale_fault_allows_more_dynos() -> None:
    text = Path("scenarios/invalid/unknown-dyno.yaml").read_text().replace(
        "faults:\n", "faults:\n  - {at: 1s, sync: {op: scale, dynos: 11}}\n")
    result = lint_text(text, Path("unknown-dyno.yaml"), runbooks=Path("runbooks"))
    assert result.ok, [str(i) for i in result.issues]


def test_json_schema_is_produced() -> None:
    schema = model.Scenario.model_json_schema(by_alias=True)
    json.dumps(schema)  # serialisable
    props = schema["properties"]
    for key in ("id", "title", "runbook", "difficulty", "load", "steady_state", "faults",
                "symptoms", "alerts", "mitigation", "recovery", "abort", "hints", "seed",
                "timing"):
        assert key in props
    assert set(schema["required"]) == {"id", "title", "runbook", "difficulty", "faults",
                                       "symptoms"}
    assert schema["additionalProperties"] is False
    assert len(props["faults"]["items"]["oneOf"]) == len(model.ACTION_KEYS)
    toxic = schema["$defs"]["ToxicFault"]["properties"]
    assert "for" in toxic
    assert toxic["at"]["type"] == "string"
    assert props["steady_state"]["items"]["type"] == "string"


def test_symptom_timing_names_must_exist_and_windows_fit() -> None:
    text = """\
id: timing-refs
title: t
runbook: runbooks/logplex-drain-backlog.md
difficulty: 1
faults:
  - {at: 1s, name: slow, toxic: {proxy: web.1, type: latency, attributes: {latency: 10}}}
  - {at: 2s, name: slow, for: 20s, proxy: {name: web.2}}
symptoms:
  - {within: 10s, after: slwo, expect: [http.count > 0]}
  - {within: 10s, throughout: 12s, expect: [http.count > 0]}
  - {within: 10s, while: nothing, throughout: 2s, expect: [http.count > 0]}
"""
    result = lint_text(text, Path("scenarios/timing-refs.yaml"), runbooks=Path("runbooks"))
    messages = [f"{i.path}: {i.message}" for i in result.issues]
    assert "faults[1].name: fault name 'slow' is used twice" in messages
    assert "symptoms[0].after: no fault named 'slwo'; did you mean 'slow'?" in messages
    assert "symptoms[1].throughout: throughout 12s cannot end by within 10s" in messages
    assert "symptoms[2]: give 'throughout' or 'while', not both" in messages
    assert "symptoms[2].while: no fault named 'nothing'" in " ".join(messages)


def test_a_load_over_several_routers_and_their_slis() -> None:
    """`load.routers` takes edges or routers of the stack; `{router=...}` must name one."""
    path = Path("scenarios/valid/every-action.yaml")
    base = (FIXTURES / path).read_text()
    text = base.replace("  router: edge.2\n", "  routers: [router.1, edge.2]\n").replace(
        "  - http.rate > 5\n",
        '  - http.rate{router="router.1"} > 2\n  - http.success_ratio{router="edge.2"} > 0.9\n')
    result = lint_text(text, path, runbooks=Path("runbooks"))
    assert result.ok, [str(i) for i in result.issues]
    assert result.scenario is not None
    assert result.scenario.load.targets == ["router.1", "edge.2"]
    bad = text.replace("routers: [router.1, edge.2]", "routers: [router.1, ruoter.2]").replace(
        'http.rate{router="router.1"}', 'http.rate{router="router.3"}')
    messages = [i.message for i in lint_text(bad, path, runbooks=Path("runbooks")).issues]
    assert "unknown edge proxy or router 'ruoter.2'; did you mean 'router.2'?" in messages
    assert any("router 'router.3' is not one of the load's" in m for m in messages)
    both = base.replace("  router: edge.2\n", "  router: edge.2\n  routers: [edge.1]\n")
    messages = [i.message for i in lint_text(both, path, runbooks=Path("runbooks")).issues]
    assert any("give 'router' or 'routers', not both" in m for m in messages)
