"""Scenario errors: one ``Issue`` per problem, all of them in one ``ScenarioError``.

Every issue prints like a compiler message, ``file:line:col: path: message``, where
``path`` is the dotted path of the value in the file (``faults[0].toxic.attributes``)
or ``<document>`` for the file as a whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from simctl.errors import InvalidInput


def format_path(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<document>"


def did_you_mean(word: Any, choices: Iterable[str], *, listing: bool = True) -> str:
    """"; did you mean 'x'?" (or the list of choices when nothing is close)."""
    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if listing and options:
        shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
        return f" (expected one of: {shown})"
    return ""


@dataclass(frozen=True, order=True)
class Issue:
    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.path}: {self.message}"


class ScenarioError(InvalidInput):
    """A scenario file (or several) is invalid; ``issues`` holds every problem found."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    @property
    def messages(self) -> list[str]:
        return [str(issue) for issue in self.issues]
