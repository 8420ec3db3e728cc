"""Which backend runs a project: by name (`up --backend`), or as its saved state says.

``BACKENDS`` maps each name to where its class lives; a class is imported only when it is
chosen (the compose backend imports the Docker SDK). Adding a backend is one module with a
class that satisfies ``simctl.backends.base.Backend`` and one line here
(docs/architecture.md, "Adding a backend").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from simctl.backends.base import Backend
from simctl.backends.state import ProjectState
from simctl.errors import InvalidInput

DEFAULT_BACKEND = "local"

BACKENDS = {
    "local": "simctl.backends.local:LocalBackend",
    "compose": "simctl.backends.compose:ComposeBackend",
}


def backend_class(name: str) -> Callable[..., Backend]:
    """The class registered as ``name``: called with (project, **options)."""
    try:
        module, attribute = BACKENDS[name].split(":")
    except KeyError:
        raise InvalidInput(f"unknown backend {name!r} (one of: "
                           f"{', '.join(sorted(BACKENDS))})") from None
    cls: Callable[..., Backend] = getattr(importlib.import_module(module), attribute)
    return cls


def create(name: str, project: str, **options: Any) -> Backend:
    """A backend ``name`` for ``project``; options are its constructor's (timing, ...)."""
    return backend_class(name)(project, **options)


def recorded(project: str) -> str | None:
    """The backend a running (or half-stopped) project was started with, if any."""
    state = ProjectState.load(project)
    return state.backend if state is not None else None


def for_project(project: str, default: str = DEFAULT_BACKEND, **options: Any) -> Backend:
    """The backend that runs ``project`` (the one in its saved state), else ``default``."""
    return create(recorded(project) or default, project, **options)
