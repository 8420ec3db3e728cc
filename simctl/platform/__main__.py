"""``python -m simctl.platform SERVICE [OPTIONS]``: run one platform service as a process.

The local backend starts every service this way; the container image runs the same.
"""

from __future__ import annotations

import importlib

import click

SERVICES = {
    "sync": "simctl.platform.sync",
    "router": "simctl.platform.router",
    "logplex": "simctl.platform.logplex",
    "dyno": "simctl.platform.dyno.command",
    "drain": "simctl.platform.drain",
    "blackhole": "simctl.platform.blackhole",
    "monitor": "simctl.monitor.service",
    "procfile-dyno": "simctl.platform.procfile_dyno",
}


class ServiceGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SERVICES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = SERVICES.get(name)
        if module is None:
            return None
        return importlib.import_module(module).command


main = ServiceGroup(
    name="simctl-service",
    help="Run one platform service.",
    context_settings={"auto_envvar_prefix": "SIMCTL"},
)

if __name__ == "__main__":
    main()
