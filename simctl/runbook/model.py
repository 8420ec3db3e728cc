"""A runbook as simctl reads it: front matter, sections, and steps (fenced code with an id).

    ---
    id: logplex-drain-backlog
    title: A log drain is slow and Logplex drops messages (L10)
    alerts: [LogDrainDropping]
    scenarios: [slow-drain]
    owner: team-routing            # optional
    ---
    ## Symptoms / ## Diagnose / ## Mitigate / ## Verify / ## Follow-up (optional)

    ```sh {#disable-slow-drain}
    simctl heal drain.main
    ```

A step whose every command is ``simctl ...`` is *executable*: simctl runs it without a
shell. Any other command makes the step need ``--allow-shell``. A simctl command that could
grant itself the shell (``runbook run``, ``verify``, ``--allow-shell``) is never run
(simctl.runbook.shell_guard).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

SECTIONS = ("Symptoms", "Diagnose", "Mitigate", "Verify", "Follow-up")
REQUIRED_SECTIONS = ("Symptoms", "Diagnose", "Mitigate", "Verify")


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    alerts: list[str] = []
    scenarios: list[str] = []
    owner: str | None = None


@dataclass(frozen=True)
class Command:
    """One command line of a step (continuation lines joined)."""

    line: int  # 1-based line in the file
    text: str
    argv: tuple[str, ...] | None  # shlex.split of the text; None when it does not split
    is_simctl: bool  # starts with `simctl` and uses no shell syntax
    error: str | None = None  # why it does not split
    refused: str | None = None  # why a step may never run it (runbook.shell_guard)

    @property
    def needs_shell(self) -> bool:
        return not self.is_simctl


@dataclass(frozen=True)
class Step:
    id: str | None
    section: str | None  # canonical name (Mitigate, ...), an extra section's title, or None
    language: str
    line: int  # the opening fence
    commands: tuple[Command, ...]

    @property
    def executable(self) -> bool:
        """Every command is a simctl command a step may run: it runs without a shell."""
        return all(c.is_simctl and c.refused is None for c in self.commands)

    @property
    def shell_commands(self) -> list[Command]:
        return [c for c in self.commands if c.needs_shell]

    @property
    def refused_commands(self) -> list[Command]:
        return [c for c in self.commands if c.refused is not None]


@dataclass(frozen=True)
class Heading:
    title: str
    line: int
    section: str | None  # canonical name when it is one of SECTIONS


@dataclass(frozen=True)
class Problem:
    """Something the parser found wrong; ``check`` turns these into findings."""

    rule: str
    line: int
    message: str


@dataclass
class Runbook:
    path: Path
    front: FrontMatter | None
    front_line: int | None  # line of the opening '---', None when there is none
    headings: list[Heading] = field(default_factory=list)
    blocks: list[Step] = field(default_factory=list)  # every fenced block, with or without id
    problems: list[Problem] = field(default_factory=list)
    front_lines: dict[str, int] = field(default_factory=dict)  # front matter key -> line

    @property
    def steps(self) -> list[Step]:
        return [b for b in self.blocks if b.id is not None]

    @property
    def step_ids(self) -> list[str]:
        return [b.id for b in self.blocks if b.id is not None]

    @property
    def sections(self) -> list[str]:
        return [h.section for h in self.headings if h.section is not None]

    @property
    def id(self) -> str:
        return self.front.id if self.front is not None else self.path.stem

    @property
    def title(self) -> str:
        return self.front.title if self.front is not None else ""

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)
