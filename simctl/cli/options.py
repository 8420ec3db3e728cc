"""Options shared by the commands that act on a running stack."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click

from simctl.backends import factory
from simctl.backends.base import Backend
from simctl.backends.local import DEFAULT_PROJECT


def default_project() -> str:
    return os.environ.get("SIMCTL_PROJECT") or DEFAULT_PROJECT


def project_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--project NAME (env SIMCTL_PROJECT): which stack a command acts on."""

    @click.option(
        "--project",
        default=default_project,
        show_default="simctl",
        metavar="NAME",
        help="Project (stack) name, so several stacks can run side by side (env SIMCTL_PROJECT).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, project: str, **kwargs: Any) -> Any:
        return func(*args, backend=backend_for(project), **kwargs)

    return wrapper


def backend_for(project: str) -> Backend:
    """The backend that runs `project` (the one recorded in its state, else local)."""
    return factory.for_project(project)
