"""docs/cli.md and the command tree agree: every command it heads exists, every command is in it."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import click
from click.testing import CliRunner

from simctl.cli import main

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
WORD = re.compile(r"^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$")


def command_tree(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    tree: dict[str, click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # simctl's groups load their commands lazily
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = prefix + (name,)
        tree[" ".join(path)] = command
        if isinstance(command, click.Group):
            tree.update(command_tree(command, path))
    return tree


TREE = command_tree(main)
FIRST_WORDS = {name.split()[0] for name in TREE}


def named_commands(text: str) -> set[str]:
    """Commands named in code spans: `simctl drill ack|hint`, `drain list [--json]`, `show ID`
    after a command of the same span's table row is not resolved (the row's first span is)."""
    found: set[str] = set()
    for span in re.findall(r"`([^`]*)`", text):
        span = re.sub(r" \[[A-Z]+\]\|", "|", span.removeprefix("simctl "))  # inject [FAULT]|abort
        words = []
        for token in span.split():
            if not WORD.match(token):
                break  # an option, a placeholder (ID, [FAULT]) or a value ends the name
            words.append(token.split("|"))
        if not words or words[0][0] not in FIRST_WORDS:
            continue
        for length in range(len(words), 0, -1):  # the longest prefix that names commands
            hits = {" ".join(c) for c in itertools.product(*words[:length])} & TREE.keys()
            if hits:
                found |= hits
                break
    return found


def test_every_heading_names_a_command_whose_help_works() -> None:
    headings = re.findall(r"^#+ .*$", CLI_MD.read_text(), re.M)
    spans = [s for h in headings for s in re.findall(r"`simctl [^`]*`", h)]
    assert spans, "docs/cli.md has no command headings"
    assert [s for s in spans if not named_commands(s)] == []
    for name in sorted(named_commands("\n".join(headings))):
        result = CliRunner().invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_every_command_is_documented() -> None:
    documented = named_commands(CLI_MD.read_text())
    # Subcommands given as `/ show ID` in a table row are resolved through the row's group.
    for row in re.findall(r"^\|.*$", CLI_MD.read_text(), re.M):
        groups = {w for w in named_commands(row) if isinstance(TREE[w], click.Group)} | {
            name.split()[0] for name in named_commands(row) if " " in name}
        for group in groups:
            documented |= {f"{group} {w}" for w in re.findall(r"/ `([a-z][a-z-]*)", row)}
    missing = [name for name, command in TREE.items()
               if name not in documented and not isinstance(command, click.Group)]
    assert missing == []
