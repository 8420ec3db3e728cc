"""The registry of scenario fault kinds: every module of this package with a ``KIND``.

Adding a kind is one module here (its models, check, plan, describe and undo; see
``simctl.scenario.faults.base`` and docs/architecture.md) plus its tests.
"""

from __future__ import annotations

import importlib
import pkgutil

from simctl.scenario.faults.base import FaultKind, Plan, Undo


def _discover() -> dict[str, FaultKind]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        kind = getattr(importlib.import_module(f"{__name__}.{module.name}"), "KIND", None)
        if isinstance(kind, FaultKind):
            found.append(kind)
    return {kind.key: kind for kind in sorted(found, key=lambda k: k.order)}


KINDS: dict[str, FaultKind] = _discover()

__all__ = ["KINDS", "FaultKind", "Plan", "Undo"]
