"""The lazy command table (simctl/cli/registry.py) matches the command modules, and
`simctl --help` / `simctl status` import no other command's module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from simctl.cli.registry import COMMANDS


def test_every_command_of_every_module_is_in_the_table_with_its_help() -> None:
    found: dict[str, tuple[str, str]] = {}
    for module_name in sorted({module for module, _ in COMMANDS.values()}):
        module = importlib.import_module(f"simctl.cli.{module_name}")
        commands = list(getattr(module, "COMMANDS", []))
        if module_name == "toxiproxy":
            commands.append(module.toxiproxy)
        for command in commands:
            assert isinstance(command, click.Command)
            found[command.name or ""] = (module_name, command.get_short_help_str(limit=1000))
    assert found == COMMANDS


def _imported_after(*argv: str) -> set[str]:
    code = ("import sys\nfrom simctl.cli import main\n"
            f"try:\n    main({list(argv)!r}, prog_name='simctl')\nexcept SystemExit:\n    pass\n"
            "print(' '.join(m for m in sys.modules if m.startswith('simctl.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env={"SIMCTL_STATE_DIR": "/nonexistent-simctl-state",
                                          "PATH": "/usr/bin:/bin"})
    return set(out.stdout.strip().splitlines()[-1].split())


def test_help_and_one_command_import_only_what_they_need() -> None:
    assert _imported_after("--help") <= {"simctl.cli.registry", "simctl.cli.options"}
    status = _imported_after("status")
    assert "simctl.cli.stack" in status
    assert not status & {"simctl.cli.verify", "simctl.cli.drill", "simctl.cli.scenario",
                         "simctl.cli.views", "simctl.cli.traffic", "simctl.cli.train"}
