"""When a symptom counts, on a real stack (fast timing): not before any fault, `while` a
fault is applied, `throughout` a window (docs/scenarios.md, "When a symptom is seen")."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simctl.backends.local import LocalBackend
from simctl.pytest_plugin import free_port_offset
from simctl.scenario.engine import run_scenario
from simctl.scenario.loader import load_scenario
from simctl.scenario.reset import find_residue, reset_stack

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

RUNBOOK = """\
---
id: it-timing
title: Symptom timing runbook
alerts: []
scenarios: []
---

## Symptoms

## Diagnose

```sh {#show}
simctl proxies
```

## Mitigate

```sh {#heal-web-1}
simctl heal web.1
```

## Verify

```sh {#verify}
simctl proxies
```
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    root = tmp_path_factory.mktemp("timing-it")
    saved = {k: os.environ.get(k) for k in ("SIMCTL_STATE_DIR", "SIMCTL_RUNBOOKS_DIR")}
    os.environ["SIMCTL_STATE_DIR"] = str(root / "state")
    os.environ["SIMCTL_RUNBOOKS_DIR"] = str(root / "runbooks")
    (root / "runbooks").mkdir()
    (root / "runbooks" / "it-timing.md").write_text(RUNBOOK)
    (root / "scenarios").mkdir()
    backend = LocalBackend(f"timing-it-{os.getpid()}", timing="fast",
                           port_offset=free_port_offset((9500, 8000, 3000)))
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
def write(stack: LocalBackend, tmp_path: Path) -> Iterator[Any]:
    def scenario(text: str) -> Any:
        body = textwrap.dedent(text)
        path = tmp_path / f"{body.split('id:', 1)[1].split()[0]}.yaml"
        path.write_text(body)
        return load_scenario(path)

    yield scenario
    reset_stack(stack)


HEADER = """
    title: t
    runbook: runbooks/it-timing.md
    difficulty: 1
    load: {http: 20/s}
    steady_state: [http.success_ratio >= 0.99]
"""


def test_a_symptom_that_holds_before_the_fault_fails_the_run(stack: LocalBackend,
                                                             write: Any) -> None:
    scenario = write("\n    id: it-early" + HEADER + """
    faults:
      - {at: 500ms, toxic: {proxy: web.1, type: latency, attributes: {latency: 5000}}}
    symptoms:
      - {within: 12s, expect: ['http.count{code="H12"} == 0']}
    mitigation: {runbook_steps: [heal-web-1]}
    """)
    result = run_scenario(scenario, stack)
    assert result.status == "failed"
    assert "symptom already holds in steady state" in result.reason
    assert "http.count{code=\"H12\"} == 0" in result.reason
    phases = {e.name: e.status for e in result.events if e.kind == "phase"}
    assert phases["steady_state"] == "failed"
    assert phases["faults"] == "skipped"  # nothing was injected
    assert find_residue(stack) == []


def test_a_guard_that_breaks_while_its_fault_is_applied_fails_at_once(
        stack: LocalBackend, write: Any) -> None:
    scenario = write("\n    id: it-while" + HEADER + """
    faults:
      - {at: 500ms, for: 4s, name: paused, process: {service: dyno-1, action: pause}}
    symptoms:
      - within: 10s
        while: paused
        baseline_ok: true
        expect: [health dyno-1 is ok]
    """)
    result = run_scenario(scenario, stack)
    assert result.status == "failed"
    assert "stopped holding" in result.reason
    assert "while 'pause dyno-1' was applied: health dyno-1 is ok" in result.reason
    assert find_residue(stack) == []


def test_a_guard_held_throughout_and_while_is_seen_when_the_window_ends(
        stack: LocalBackend, write: Any) -> None:
    scenario = write("\n    id: it-guards" + HEADER + """
    faults:
      - at: 500ms
        for: 3s
        name: slow-audit
        toxic: {proxy: drain.audit, type: latency, attributes: {latency: 50}}
    symptoms:
      - within: 8s
        while: slow-audit
        baseline_ok: true
        expect: [health dyno is ok]
      - within: 8s
        throughout: 2s
        baseline_ok: true
        expect: [http.success_ratio >= 0.99]
    """)
    result = run_scenario(scenario, stack)
    assert result.passed, result.reason
    seen = {c.probe.text: c.seen_at for c in result.symptoms}
    assert seen["health dyno is ok"] >= 3.5  # not before the fault's `for` ended
    assert 2.5 <= seen["http.success_ratio >= 0.99"] < 8
