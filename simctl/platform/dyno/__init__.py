"""The dyno service: a small web app with run-time switchable misbehaviour.

    app.py        DynoService (the web app, /control, logs, metrics)
    behaviour.py  the behaviours /control accepts, validated
    memory.py     memory growth for R14 drills
    command.py    the click command ``python -m simctl.platform dyno``
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: `simctl scenario lint` checks behaviours without the web app
# (aiohttp), which keeps the CLI quick to start (docs/benchmarks.md, "CLI start-up").
# (``python -m simctl.platform dyno`` runs simctl.platform.dyno.command's ``command``.)
_WHERE = {"DynoService": "app", "Behaviour": "behaviour", "BehaviourError": "behaviour",
          "parse": "behaviour"}

__all__ = ["Behaviour", "BehaviourError", "DynoService", "parse"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
