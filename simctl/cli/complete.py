"""Shell completion of simctl's arguments (docs/cli.md, "Shell completion").

click completes command names and options itself; these callbacks complete the values:
scenario ids from the catalogue (scenarios/*.yaml), and services, dynos and proxies from
the project's state file (the names `simctl status` and `simctl proxies` show). Nothing
here touches the network, so a TAB never waits on a stopped stack.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem


def _state(ctx: click.Context) -> Any:
    from simctl.backends.state import ProjectState

    project = ctx.params.get("project") or os.environ.get("SIMCTL_PROJECT") or "simctl"
    try:
        return ProjectState.load(str(project))
    except Exception:  # an unreadable state file completes nothing, never a traceback
        return None


def _matching(names: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(n) for n in sorted(dict.fromkeys(names)) if n.startswith(incomplete)]


def scenarios(ctx: click.Context, param: click.Parameter, incomplete: str
              ) -> list[CompletionItem]:
    from simctl.scenario import catalog

    try:
        return _matching([p.stem for p in catalog.scenario_files()], incomplete)
    except Exception:
        return []


def services(ctx: click.Context, param: click.Parameter, incomplete: str
             ) -> list[CompletionItem]:
    """Every name of every service: router-1, router.1, web.1, dyno-1, logplex, ..."""
    from simctl.backends import names

    state = _state(ctx)
    if state is None:
        return []
    return _matching([a for p in state.processes.values() for a in names.aliases(p, state)],
                     incomplete)


def dynos(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    state = _state(ctx)
    if state is None:
        return []
    return _matching([str(p.labels["dyno"]) for p in state.processes.values()
                      if p.role == "dyno" and p.labels.get("dyno")], incomplete)


def proxies(ctx: click.Context, param: click.Parameter, incomplete: str
            ) -> list[CompletionItem]:
    """The stack's links, as `up` created them in the fault plane (recorded in the state)."""
    state = _state(ctx)
    if state is None:
        return []
    return _matching([key.removeprefix("proxy ") for key in state.endpoints
                      if key.startswith("proxy ")], incomplete)
