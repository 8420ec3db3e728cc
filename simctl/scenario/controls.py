"""Control runs: prove that every part of a scenario matters (docs/ci.md, "Control runs").

A scenario that still passes without one of its parts does not test that part:

- ``no-faults``: every fault left out; the run must fail at ``symptoms``.
- ``no-mitigation``: every runbook step left out; the run must fail at ``recovery``.
- ``each-fault``: one run per fault, without it; each must fail (else the scenario
  does not need that fault).
- ``each-step``: one run per mitigation step, without it; each must fail (else the
  runbook does not need that step for this incident).

``expand`` lists a scenario's control runs; ``judge`` says whether one failed the way
it must. ``simctl verify --control KIND`` exits 0 only when every one did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from simctl.scenario.describe import describe
from simctl.scenario.model import Scenario

KINDS = ("no-faults", "no-mitigation", "each-fault", "each-step")


@dataclass(frozen=True)
class Control:
    kind: str
    label: str  # what was left out, e.g. "fault 2 (toxic latency on web.1)"
    without_faults: frozenset[int] = frozenset()  # indexes in Scenario.timeline()
    without_steps: frozenset[str] = frozenset()
    must_fail_at: str | None = None  # the phase that must fail; None: any failure

    def options(self, base: Any) -> Any:
        """The engine options of this run (simctl.scenario.engine.EngineOptions)."""
        return dataclasses.replace(base, control=self.kind, without_faults=self.without_faults,
                                   without_steps=self.without_steps)

    def judge(self, result: Any) -> tuple[bool, str]:
        """(failed as it must, why not)."""
        if result.status == "passed":
            return False, f"passed without {self.label}: the scenario does not need it"
        if result.status != "failed":
            return False, f"ended {result.status}, not failed: {result.reason}"
        fired = [a.name for a in getattr(result, "alerts", []) if a.fired_at is not None]
        if self.kind == "no-faults" and fired:
            return False, f"alert {', '.join(fired)} fired without the faults"
        if self.must_fail_at is not None:
            phase = result.phase(self.must_fail_at)
            if phase is None or phase.status != "failed":
                return False, (f"failed, but not at {self.must_fail_at}: {result.reason}")
        return True, ""

    def as_dict(self, result: Any) -> dict[str, Any]:
        ok, why = self.judge(result) if result is not None else (False, "not run")
        return {"kind": self.kind, "without": self.label, "must_fail_at": self.must_fail_at,
                "as_expected": ok, "reason": why}


def expand(scenario: Scenario, kind: str) -> list[Control]:
    if kind == "no-faults":
        return [Control(kind, "its faults", frozenset(range(len(scenario.faults))),
                        must_fail_at="symptoms")]
    if kind == "no-mitigation":
        return [Control(kind, "its runbook steps",
                        without_steps=frozenset(scenario.mitigation.runbook_steps),
                        must_fail_at="recovery")]
    if kind == "each-fault":
        return [Control(kind, f"fault {i} ({fault.name or describe(fault)})", frozenset({i}))
                for i, fault in enumerate(scenario.timeline())]
    if kind == "each-step":
        return [Control(kind, f"step {step}", without_steps=frozenset({step}))
                for step in dict.fromkeys(scenario.mitigation.runbook_steps)]
    raise ValueError(f"unknown control {kind!r} (one of: {', '.join(KINDS)})")
