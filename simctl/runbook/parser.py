"""Parse a Markdown runbook: YAML front matter, ``##`` sections, fenced steps with ids.

Markdown is read with markdown-it-py (CommonMark), so fences inside lists, ``~~~`` fences
and indented fences behave as any renderer shows them. A fence's info string carries the
step id in Pandoc attribute syntax: ```` ```sh {#disable-slow-drain} ```` (or
```` ```{#disable-slow-drain .sh} ````).

Inside a step, each non-empty line that is not a ``#`` comment is one command; a line
ending in ``\\`` continues on the next. In ``console`` blocks only lines starting with
``$ `` are commands (the rest is output).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from markdown_it import MarkdownIt
from pydantic import ValidationError

from simctl.errors import InvalidInput
from simctl.runbook.model import SECTIONS, Command, FrontMatter, Heading, Problem, Runbook, Step
from simctl.runbook.shell_guard import self_granting
from simctl.scenario.errors import format_path
from simctl.scenario.yaml_positions import YamlSyntaxError, load_with_positions

STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_INFO = re.compile(r"^(?P<lang>[^\s{]+)?\s*(?:\{(?P<attrs>[^}]*)\})?\s*$")
_SHELL_SYNTAX = set("();<>|&")
_CONSOLE = ("console", "shell-session")


def canonical_section(title: str) -> str | None:
    key = re.sub(r"[\s_-]+", "", title.strip().lower())
    for name in SECTIONS:
        if key == name.replace("-", "").lower():
            return name
    return None


def classify(text: str, line: int) -> Command:
    """Split a command line (no shell): is it a simctl command, and does it split?"""
    try:
        argv = tuple(shlex.split(text, comments=True))
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as exc:
        first = text.split()[0] if text.split() else ""
        return Command(line, text, None, first == "simctl", f"cannot split the line: {exc}")
    shell = any(tok and set(tok) <= _SHELL_SYNTAX for tok in tokens)
    is_simctl = argv[:1] == ("simctl",) and not shell
    return Command(line, text, argv, is_simctl,
                   refused=self_granting(argv) if is_simctl else None)


def _commands(content: str, first_line: int, language: str) -> tuple[Command, ...]:
    out: list[Command] = []
    pending: list[str] = []
    start = 0
    for index, raw in enumerate(content.split("\n")):
        line = raw.rstrip()
        if language in _CONSOLE and not pending:
            if not line.lstrip().startswith("$ "):
                continue
            line = line.lstrip()[2:]
        if not pending:
            start = first_line + index
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append(classify(" ".join(p.strip() for p in pending), start))
        pending = []
    if pending:
        out.append(classify(" ".join(p.strip() for p in pending), start))
    return tuple(out)


def _info(info: str, line: int, problems: list[Problem]) -> tuple[str, str | None]:
    found = _INFO.match(info.strip())
    if found is None:
        return info.split()[0] if info.split() else "", None
    language = found.group("lang") or ""
    step_id = None
    for attr in (found.group("attrs") or "").split():
        if attr.startswith("#"):
            if step_id is not None:
                problems.append(Problem("RB010", line, f"a step has one id, found "
                                                       f"'{step_id}' and '{attr[1:]}'"))
                continue
            step_id = attr[1:]
            if not STEP_ID.fullmatch(step_id):
                problems.append(Problem("RB010", line, f"invalid step id '{step_id}': use "
                                                       "letters, digits, '-' and '_'"))
                step_id = None
        elif attr.startswith(".") and not language:
            language = attr[1:]
    return language, step_id


def _front_matter(runbook: Runbook, lines: list[str]) -> int:
    """Parse the front matter into ``runbook``; returns how many lines it spans."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    runbook.front_line = 1
    if end is None:
        runbook.problems.append(Problem("RB002", 1, "front matter: no closing '---' line"))
        return 0
    try:
        data, positions = load_with_positions("".join(lines[1:end]))
    except YamlSyntaxError as exc:
        runbook.problems.append(Problem("RB002", exc.pos.line + 1,
                                        f"front matter: invalid YAML: {exc.message}"))
        return end + 1
    if isinstance(data, dict):
        runbook.front_lines = {str(path[0]): pos.line + 1 for path, pos in positions.keys.items()
                               if len(path) == 1}
    if not isinstance(data, dict):
        runbook.problems.append(Problem("RB002", 2, "front matter: expected a mapping with "
                                                    "id, title, alerts, scenarios"))
        return end + 1
    try:
        runbook.front = FrontMatter.model_validate(data)
    except ValidationError as exc:
        from simctl.scenario.loader import explain

        for path, message, line, _ in explain(FrontMatter, exc, data, positions):
            runbook.problems.append(Problem("RB002", line + 1,
                                            f"front matter: {format_path(path)}: {message}"))
    return end + 1


def parse_text(text: str, path: Path) -> Runbook:
    runbook = Runbook(path=path, front=None, front_line=None)
    lines = text.splitlines(keepends=True)
    skip = _front_matter(runbook, lines)
    body = "\n" * skip + "".join(lines[skip:])  # keep line numbers
    section: str | None = None
    tokens = MarkdownIt("commonmark").parse(body)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2" and token.map:
            title = tokens[index + 1].content.strip()
            section = canonical_section(title)
            runbook.headings.append(Heading(title, token.map[0] + 1, section))
            if section is None:
                section = title  # an extra section: steps there keep its title
        elif token.type == "fence" and token.map:
            line = token.map[0] + 1
            language, step_id = _info(token.info, line, runbook.problems)
            commands = _commands(token.content, line + 1, language)
            runbook.blocks.append(Step(step_id, section, language, line, commands))
    return runbook


def front_matter_lines(text: str) -> int:
    """How many lines the front matter spans (0 when there is none or it is not closed)."""
    lines = text.splitlines()
    if not lines or lines[0].rstrip() != "---":
        return 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    return 0 if end is None else end + 1


def parse_runbook(path: str | Path) -> Runbook:
    """Read and parse a runbook file; InvalidInput when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the runbook: {exc.strerror}") from None
    return parse_text(text, path)
