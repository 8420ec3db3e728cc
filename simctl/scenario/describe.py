"""What each fault does and what undoes it, in one line each (`scenario show`, journals).

The undo column is the contract docs/scenarios.md documents for rollback and ``for``.
"""

from __future__ import annotations

from simctl.scenario.faults import KINDS
from simctl.scenario.model import FaultBase


def describe(fault: FaultBase) -> str:
    """One line: what the fault does (its kind's ``describe``)."""
    return KINDS[fault.kind].describe(fault.action)


def undo(fault: FaultBase) -> str:
    """One line: what rollback (or the end of ``for``) does about it."""
    return KINDS[fault.kind].undo(fault.action)
