"""Read a Procfile: one ``type: command`` line per process type (docs/apps.md)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from simctl.errors import InvalidInput

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.*)$")


def shell_syntax(command: str) -> str:
    """What in `command` only a shell understands (an operator, `...` or $(...)), or ""."""
    if "`" in command or "$(" in command:
        return "`" if "`" in command else "$("
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        for token in lexer:
            if token and all(c in "();<>|&" for c in token):
                return token
    except ValueError:  # an unclosed quote: web_command says so
        return ""
    return ""


def locate(path: Path) -> Path:
    """A Procfile, or a directory holding one."""
    found = path / "Procfile" if path.is_dir() else path
    if not found.is_file():
        where = f"{path}: no Procfile in this directory" if path.is_dir() else \
            f"{path}: no such Procfile"
        raise InvalidInput(where)
    return found


def parse(path: Path) -> dict[str, str]:
    """Process types to commands, in file order; blank lines and # comments are skipped."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the Procfile ({exc})") from None
    processes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match or not match.group(2).strip():
            raise InvalidInput(f"{path}:{number}: expected `TYPE: COMMAND`, got {line.strip()!r}")
        name, command = match.group(1), match.group(2).strip()
        if name in processes:
            raise InvalidInput(f"{path}:{number}: process type {name!r} is defined twice")
        processes[name] = command
    return processes


def web_command(path: Path, *, allow_shell: bool) -> str:
    """The `web` process's command, checked: it must exist and need no shell unless allowed."""
    processes = parse(path)
    command = processes.get("web")
    if command is None:
        found = ", ".join(processes) or "no process types"
        raise InvalidInput(f"{path}: no `web` process (found: {found}); the router only "
                           "sends traffic to `web` processes")
    try:
        shlex.split(command)
    except ValueError as exc:
        raise InvalidInput(f"{path}: the web command cannot be split into words ({exc})") \
            from None
    syntax = shell_syntax(command)
    if syntax and not allow_shell:
        raise InvalidInput(f"{path}: the web command needs a shell ({syntax}); pass "
                           "--allow-shell to run it with sh -c")
    return command
