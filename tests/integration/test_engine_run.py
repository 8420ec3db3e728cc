"""The engine end to end on a real stack (fast timing): scenarios written here, run, judged.

One stack for the module (its own project, state folder and free port offset). Every
test leaves it clean: the engine rolls back, and ``reset_stack`` runs after each test.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simctl.backends import procs
from simctl.backends.http import call, text
from simctl.backends.local import LocalBackend
from simctl.backends.project import base_url
from simctl.faults.client import ToxiproxyClient
from simctl.pytest_plugin import free_port_offset
from simctl.scenario.engine import run_scenario
from simctl.scenario.journal import scenario_journal
from simctl.scenario.junit import junit_document
from simctl.scenario.loader import load_scenario
from simctl.scenario.reset import find_residue, reset_stack

# The local backend leaks two resources that the suite's "error" filter turns into
# errors: procs.Zygote.close() leaves the zygote's stdout pipe open, and
# procs._group_alive() returns from inside an os.scandir() loop. Both belong to the
# backend (reported); they are ignored here, not in the engine's own code paths above.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

RUNBOOK = """\
---
id: it-engine
title: Engine integration runbook
alerts: []
scenarios: []
---

## Symptoms

Requests fail.

## Diagnose

```sh {#show-links}
simctl proxies
```

## Mitigate

```sh {#heal-web-1}
simctl heal web.1
```

```sh {#reset-web-2}
simctl dyno reset web.2
```

```sh {#enable-audit}
simctl drain enable audit
```

```sh {#fails}
simctl heal no-such-proxy
```

```sh {#shed-tails}
simctl rod deny_tail_sessions on
simctl rod deny_tail_sessions off
```

## Verify

```sh {#verify}
simctl proxies --json
```
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    root = tmp_path_factory.mktemp("engine-it")
    saved = {k: os.environ.get(k) for k in ("SIMCTL_STATE_DIR", "SIMCTL_SCENARIOS_DIR",
                                            "SIMCTL_RUNBOOKS_DIR")}
    os.environ["SIMCTL_STATE_DIR"] = str(root / "state")
    os.environ["SIMCTL_SCENARIOS_DIR"] = str(root / "scenarios")
    os.environ["SIMCTL_RUNBOOKS_DIR"] = str(root / "runbooks")
    (root / "scenarios").mkdir()
    (root / "runbooks").mkdir()
    (root / "runbooks" / "it-engine.md").write_text(RUNBOOK)
    backend = LocalBackend(f"engine-it-{os.getpid()}", timing="fast",
                           port_offset=free_port_offset((4000, 2500, 11000)))
    try:
        backend.up()
        yield backend
    finally:
        backend.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def write(stack: LocalBackend) -> Iterator[Any]:
    folder = Path(os.environ["SIMCTL_SCENARIOS_DIR"])

    def scenario(text: str) -> Any:
        body = textwrap.dedent(text)
        ident = body.split("id:", 1)[1].split()[0]
        path = folder / f"{ident}.yaml"
        path.write_text(body)
        return load_scenario(path)

    yield scenario
    reset_stack(stack)


def client(stack: LocalBackend) -> ToxiproxyClient:
    return ToxiproxyClient(stack.require_state().toxiproxy_url)


def phase_statuses(result: Any) -> list[tuple[str, str]]:
    return [(e.name, e.status) for e in result.events if e.kind == "phase"]


ALL_OK = [("preflight", "ok"), ("steady_state", "ok"), ("faults", "ok"), ("symptoms", "ok"),
          ("mitigation", "ok"), ("recovery", "ok"), ("rollback", "ok"), ("residue", "ok")]


def test_a_latency_toxic_gives_h12_and_the_runbook_heals_it(stack: LocalBackend,
                                                            write: Any) -> None:
    scenario = write("""
        id: it-slow-web-1
        title: web.1 answers after 5 s, the router gives up after 3 s (H12)
        runbook: runbooks/it-engine.md
        difficulty: 1
        load: {http: 20/s}
        steady_state:
          - http.success_ratio >= 0.99
        faults:
          - at: 1s
            toxic: {proxy: web.1, type: latency, attributes: {latency: 5000}}
        symptoms:
          - within: 12s
            expect:
              - http.count{code="H12"} > 0
              - metric router_requests_total{code="H12"} > 0 on router
              - 'log "code=H12" in drain.main'
        mitigation: {runbook_steps: [heal-web-1]}
        recovery: {within: 15s}
        seed: 11
    """)
    seen: list[Any] = []
    result = run_scenario(scenario, stack, listener=seen.append)
    assert result.passed, result.reason
    journal = scenario_journal(result)
    assert [(p["name"], p["status"]) for p in journal["phases"]] == [
        (name, status) for name, status in ALL_OK]
    assert [(a["kind"], a["status"]) for a in journal["actions"]] == [
        ("load", "ok"), ("fault", "ok"), ("symptom", "ok"), ("symptom", "ok"),
        ("symptom", "ok"), ("step", "ok"), ("undo", "ok"), ("load", "ok")]
    step = next(a for a in journal["actions"] if a["kind"] == "step")
    assert "healed web.1: removed 1 toxic(s)" in step["output"]
    assert journal["load"]["http"]["by_code"].get("H12", 0) > 0
    assert 0 < journal["time_to_symptoms"] < 12
    assert journal["seed"] == 11
    assert journal["timing"] == "fast"
    for entry in journal["phases"]:
        assert entry["end_unix"] >= entry["start_unix"]
    case = junit_document([journal]).getroot().find("./testsuite/testcase")
    assert case is not None
    assert case.get("name") == "it-slow-web-1"
    assert find_residue(stack) == []
    assert client(stack).proxy("web.1").toxics == []
    assert seen[-1].kind == "scenario"


def test_without_mitigation_the_run_fails_at_recovery_and_rolls_back(stack: LocalBackend,
                                                                    write: Any) -> None:
    scenario = write("""
        id: it-unmitigated
        title: the same toxic, nothing mitigates it
        runbook: runbooks/it-engine.md
        difficulty: 1
        load: {http: 20/s}
        steady_state: [http.success_ratio >= 0.99]
        faults:
          - {at: 500ms, toxic: {proxy: web.1, type: latency, attributes: {latency: 5000}}}
        symptoms:
          - {within: 12s, expect: ['http.count{code="H12"} > 0']}
        recovery: {within: 3s}
    """)
    result = run_scenario(scenario, stack)
    assert result.status == "failed"
    assert "not recovered within 3s" in result.reason
    assert dict(phase_statuses(result))["rollback"] == "ok"
    undo = next(e for e in result.events if e.kind == "undo")
    assert undo.output == "removed toxic latency_downstream from web.1"
    assert find_residue(stack) == []


def test_dyno_errors_logs_health_and_route_probes(stack: LocalBackend, write: Any) -> None:
    scenario = write("""
        id: it-dyno-errors
        title: web.2 answers 500 and the audit drain is disabled
        runbook: runbooks/it-engine.md
        difficulty: 2
        load: {http: 20/s, logs: 40/s}
        steady_state:
          - http.success_ratio >= 0.99
          - logs.delivery_ratio >= 0.9
          - router.version_lag == 0
          - router.version_lag == 0 on router-1
          - health router is ok
        faults:
          - at: 500ms
            dyno: {dyno: web.2, behaviour: error, params: {rate: 1, status: 500}}
          - at: 500ms
            drain: {name: audit}
          - {at: 500ms, for: 1s, rod: {name: deny_logs_ingress}}
        symptoms:
          - within: 10s
            expect:
              - http.count{status="500"} > 0
              - metric dyno_requests_total{status="500"} > 0 on web.2
              - metric logplex_control_rod_active{rod="deny_logs_ingress"} == 1
              - 'log "status=500" in drain.main'
              - 'log /app\\[web\\.2\\]: at=error/ in tail'
              - health logplex is degraded
          - within: 10s
            baseline_ok: true  # guards: they hold before the faults too
            expect:
              - health web.2 is ok
              - logs.delivery_ratio{drain="main"} >= 0.9
        mitigation: {runbook_steps: [reset-web-2, enable-audit]}
        recovery: {within: 12s}
    """)
    result = run_scenario(scenario, stack)
    assert result.passed, result.reason + "\n" + "\n".join(
        f"{e.kind} {e.name} {e.status} {e.output}" for e in result.events)
    undos = [(e.name, e.detail["reason"]) for e in result.events if e.kind == "undo"]
    assert ("restore the previous state", "for") in undos  # the rod, after 1 s
    assert find_residue(stack) == []
    dyno = stack.find("dyno", dyno="web.2")[0]
    assert call("GET", f"{base_url(dyno)}/control")["behaviour"] == "normal"


def test_a_killed_and_a_paused_service_come_back_in_rollback(stack: LocalBackend,
                                                             write: Any) -> None:
    before = {p.name: p.pid for p in stack.require_state().processes.values()}
    scenario = write("""
        id: it-process
        title: dyno-3 is killed, dyno-2 paused for a second
        runbook: runbooks/it-engine.md
        difficulty: 2
        load: {http: 20/s}
        faults:
          - at: 300ms
            process: {service: dyno-3, action: kill}
          - {at: 300ms, for: 1s, process: {service: dyno-2, action: pause}}
        symptoms:
          - within: 5s
            expect: [health dyno-3 is down, health dyno-2 is down]
        mitigation: {runbook_steps: [show-links]}
        recovery: {within: 10s, expect: [health dyno-2 is ok]}
    """)
    result = run_scenario(scenario, stack)
    assert result.passed, result.reason
    undos = [(e.name, e.detail["reason"], e.status) for e in result.events if e.kind == "undo"]
    assert ("resume dyno-2", "for", "ok") in undos
    assert ("restart dyno-3", "rollback", "ok") in undos
    state = stack.require_state()
    assert state.processes["dyno-3"].pid != before["dyno-3"]
    assert procs.alive(state.processes["dyno-3"].pid)
    assert stack.paused_or_down() == []


def test_a_failing_runbook_step_fails_the_run(stack: LocalBackend, write: Any) -> None:
    scenario = write("""
        id: it-step-fails
        title: the runbook step exits 1
        runbook: runbooks/it-engine.md
        difficulty: 1
        load: {http: 20/s}
        faults:
          - {at: 200ms, toxic: {proxy: web.1, type: latency, attributes: {latency: 100}}}
        symptoms:
          - {within: 5s, expect: [http.p99_ms > 50]}
        mitigation: {runbook_steps: [fails]}
    """)
    result = run_scenario(scenario, stack)
    assert result.status == "failed"
    assert result.reason.startswith("runbook step fails failed: 'simctl heal no-such-proxy' exited")
    assert dict(phase_statuses(result))["recovery"] == "skipped"
    assert find_residue(stack) == []


def tail_sessions(stack: LocalBackend, settle: float = 5.0) -> float:
    """Open tail sessions on logplex, once logplex has noticed closed clients."""
    deadline = time.monotonic() + settle
    while True:
        body = text(f"{stack.url_of('logplex')}/metrics")
        line = next(li for li in body.splitlines() if li.startswith("logplex_tail_sessions "))
        value = float(line.split()[1])
        if value == 0 or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


SLOW_TAIL = """
    id: ID
    title: a tail client reads 32 KB/s while the app logs 2,000 lines a second
    runbook: runbooks/it-engine.md
    difficulty: 1
    load: {http: 5/s, logs: 2000/s}
    steady_state: [metric logplex_tail_dropped_total == 0 on logplex]
    faults:
      - {at: 500ms, tail: {rate: 32}}
    symptoms:
      - within: 20s
        expect:
          - metric logplex_tail_dropped_total > 0 on logplex
          - metric logplex_tail_sessions >= 1 on logplex
    MITIGATION
    recovery: {within: WITHIN, expect: [metric logplex_tail_dropped_total == 0 on logplex]}
"""


def test_a_slow_tail_drops_until_the_rod_sheds_it(stack: LocalBackend, write: Any) -> None:
    scenario = write(SLOW_TAIL.replace("ID", "it-slow-tail").replace("WITHIN", "25s").replace(
        "MITIGATION", "mitigation: {runbook_steps: [shed-tails]}"))
    result = run_scenario(scenario, stack)
    assert result.passed, result.reason
    fault = next(e for e in result.events if e.kind == "fault")
    assert fault.output == "tail session open on web's logs, its client reading 32 KB/s"
    undo = next(e for e in result.events if e.kind == "undo")
    assert undo.detail["reason"] == "rollback"
    assert " L11 report(s)" in undo.output
    assert tail_sessions(stack) == 0
    assert find_residue(stack) == []


def test_a_slow_tail_left_alone_keeps_dropping_and_rollback_closes_it(
        stack: LocalBackend, write: Any) -> None:
    scenario = write(SLOW_TAIL.replace("ID", "it-slow-tail-alone").replace("WITHIN", "4s")
                     .replace("MITIGATION", ""))
    result = run_scenario(scenario, stack)
    assert result.status == "failed"
    assert "not recovered within 4s" in result.reason
    assert "logplex_tail_dropped_total == 0 on logplex: value" in result.reason
    undo = next(e for e in result.events if e.kind == "undo")
    assert undo.output.startswith("closed the tail session: read ")
    assert tail_sessions(stack) == 0


def test_a_tail_fault_refused_by_logplex_is_an_error_not_a_hang(stack: LocalBackend,
                                                                write: Any) -> None:
    call("POST", f"{stack.url_of('logplex')}/admin/rods/deny_tail_sessions", {"enabled": True})
    scenario = write("""
        id: it-tail-refused
        title: tails are denied, so the slow tail cannot open
        runbook: runbooks/it-engine.md
        difficulty: 1
        load: {http: 5/s}
        faults:
          - {at: 200ms, tail: {rate: 8}}
        symptoms:
          - {within: 5s, expect: [metric logplex_tail_sessions >= 1 on logplex]}
    """)
    result = run_scenario(scenario, stack)
    assert result.status == "error"
    assert "logplex refused the tail session: HTTP/1.1 503" in result.reason
    assert "Error L20 (Tail sessions forbidden)" in result.reason
    assert not any(e.kind == "undo" for e in result.events)


def test_reset_brings_the_stack_back_to_its_baseline(stack: LocalBackend) -> None:
    plane = client(stack)
    state = stack.require_state()
    sync = stack.url_of("sync")
    logplex = stack.url_of("logplex")
    plane.add_toxic("web.2", "latency", attributes={"latency": 10})
    plane.disable("sync.2")
    dyno = stack.find("dyno", dyno="web.1")[0]
    call("POST", f"{base_url(dyno)}/control", {"behaviour": "latency", "ms": 10})
    call("POST", f"{logplex}/admin/rods/deny_tail_sessions", {"enabled": True})
    call("POST", f"{logplex}/admin/drains/audit", {"enabled": False})
    call("POST", f"{sync}/apps/web/maintenance", {"enabled": True})
    stack.scale("web", 4)
    stack.pause("drain-audit")
    done = reset_stack(stack)
    assert done
    assert find_residue(stack) == []
    assert len(stack.find("dyno")) == 3
    assert "web.4" not in plane.proxies()
    app = call("GET", f"{sync}/routes")["apps"]["web"]
    assert app["maintenance"] is False
    assert [d["name"] for d in app["dynos"]] == ["web.1", "web.2", "web.3"]
    assert all(d["state"] == "up" for d in app["dynos"])
    assert call("GET", f"{base_url(dyno)}/control")["behaviour"] == "normal"
    assert not any(call("GET", f"{logplex}/admin/rods")["rods"].values())
    assert all(d["enabled"] for d in call("GET", f"{logplex}/admin/drains")["drains"])
    assert state.toxiproxy_url == stack.require_state().toxiproxy_url
