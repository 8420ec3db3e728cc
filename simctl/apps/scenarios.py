"""Scenarios and the project's own apps (docs/scenarios.md, docs/apps.md).

``app: NAME`` at the top of a scenario targets the project's app NAME: the load's Host
and every sync or tail action default to it. ``app_agnostic: true`` says a scenario
needs nothing of the built-in dynos (no behaviour, no special path), so it runs
unchanged against a project's app that takes the built-in app's place. Either way a
dyno behaviour fault is a lint error: a team's process has no /control to switch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

APP_ACTIONS = ("sync", "tail")  # the actions with an `app` field


def with_app_defaults(data: Any) -> Any:
    """The raw scenario with `app:`'s defaults filled in (the input is not changed)."""
    if not isinstance(data, dict) or not isinstance(data.get("app"), str):
        return data
    app = data["app"]
    out = dict(data)
    load = out.get("load")
    if load is None or isinstance(load, dict):
        out["load"] = {"host": f"{app}.localhost", **(load or {})}
    faults = out.get("faults")
    if isinstance(faults, list):
        out["faults"] = [_fault_defaults(item, app) for item in faults]
    return out


def _fault_defaults(item: Any, app: str) -> Any:
    if not isinstance(item, dict):
        return item
    out = dict(item)
    for key in APP_ACTIONS:
        if isinstance(out.get(key), dict):
            out[key] = {"app": app, **out[key]}
    return out


def check(data: Any, add: Callable[..., None], app_dynos: tuple[str, ...] = ()) -> None:
    """A dyno behaviour in a scenario meant for the project's own apps, or on one of
    their dynos (`app_dynos`, from ./simctl.yaml), is an error."""
    if not isinstance(data, dict):
        return
    target = data.get("app")
    if isinstance(target, str):
        why = f"this scenario targets the project's app '{target}'"
    elif data.get("app_agnostic") is True:
        why = "this scenario is app_agnostic (it runs against the project's own apps)"
    else:
        why = ""
    for index, item in enumerate(data.get("faults") or []):
        if not isinstance(item, dict) or not isinstance(item.get("dyno"), dict):
            continue
        dyno = item["dyno"].get("dyno")
        reason = why or (f"{dyno} runs the project's own app (simctl.yaml)"
                         if dyno in app_dynos else "")
        if reason:
            add(("faults", index, "dyno"), f"dyno behaviours apply only to built-in dynos, "
                                           f"and {reason}: use a toxic or a process fault")


def only_app_agnostic(paths: list[Path], all_: bool) -> list[Path]:
    """`verify --all --app-agnostic`: the scenarios whose file says `app_agnostic: true`."""
    from simctl.errors import InvalidInput

    if not all_:
        raise InvalidInput("--app-agnostic selects from --all: give --all with it")
    picked = []
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            picked.append(path)  # lint reports what is wrong with it
            continue
        if isinstance(data, dict) and data.get("app_agnostic") is True:
            picked.append(path)
    if not picked:
        raise InvalidInput("no scenario is marked app_agnostic: true")
    return picked
