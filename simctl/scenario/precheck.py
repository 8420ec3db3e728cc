"""The runbook checks of `simctl runbook check`, narrowed to the steps a scenario runs.

`simctl verify` runs these before it starts anything (docs/ci.md, "simctl verify"): a
step whose command does not parse (RB006), has no command (RB011), a malformed id
(RB010) or a duplicate id (RB004) would otherwise only fail at mitigation, after the
fault was injected. Warnings (RB009, a shell step) are left to ``--allow-shell``.
"""

from __future__ import annotations

from collections.abc import Sequence

from simctl.runbook.check import CheckContext, Finding, check_runbook
from simctl.runbook.model import Runbook


def step_findings(runbook: Runbook, step_ids: Sequence[str], context: CheckContext
                  ) -> list[tuple[str, Finding]]:
    """(step id, finding) for every error `runbook check` reports inside those steps."""
    findings = [f for f in check_runbook(runbook.path, context, display=str(runbook.path))
                if f.severity == "error"]
    out: list[tuple[str, Finding]] = []
    for step_id in step_ids:
        step = runbook.step(step_id)
        if step is None:
            continue
        last = max([c.line for c in step.commands], default=step.line)
        out.extend((step_id, f) for f in findings if step.line <= f.line <= last)
    return out
