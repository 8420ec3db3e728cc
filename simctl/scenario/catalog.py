"""Where scenarios and runbooks live, and how a name on the command line finds its file.

    scenarios/ID.yaml    one scenario per file; ID is the scenario's id
    runbooks/ID.md       one runbook per file

Each folder is, in order: the SIMCTL_SCENARIOS_DIR / SIMCTL_RUNBOOKS_DIR variable, the
folder of that name in the current directory, or the one in simctl's own checkout. A
scenario's ``runbook: runbooks/x.md`` names a file in the runbooks folder (so the variable
applies to it too); any other relative path is taken from the repository root, the folder
holding ``scenarios/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from simctl.errors import InvalidInput
from simctl.scenario.errors import did_you_mean

SCENARIO_SUFFIX = ".yaml"
RUNBOOK_SUFFIX = ".md"
COURSE_FILE = "course.yaml"  # the training course (docs/training.md), not a scenario


def package_root() -> Path:
    """The checkout simctl runs from (the folder holding the ``simctl`` package)."""
    return Path(__file__).resolve().parents[2]


def _folder(variable: str, name: str) -> Path:
    env = os.environ.get(variable)
    if env:
        return Path(env)
    here = Path.cwd() / name
    if here.is_dir():
        return here
    return package_root() / name


def scenarios_dir() -> Path:
    return _folder("SIMCTL_SCENARIOS_DIR", "scenarios")


def runbooks_dir() -> Path:
    return _folder("SIMCTL_RUNBOOKS_DIR", "runbooks")


def repo_root() -> Path:
    """The folder holding scenarios/ (where relative runbook paths start)."""
    return scenarios_dir().resolve().parent


def scenario_files(directory: Path | None = None) -> list[Path]:
    directory = directory or scenarios_dir()
    return sorted(p for p in directory.glob(f"*{SCENARIO_SUFFIX}")
                  if p.is_file() and p.name != COURSE_FILE)


def runbook_files(directory: Path | None = None) -> list[Path]:
    directory = directory or runbooks_dir()
    return sorted(p for p in directory.glob(f"*{RUNBOOK_SUFFIX}") if p.is_file())


def runbook_path(reference: str, *, runbooks: Path | None = None,
                 root: Path | None = None) -> Path:
    """The file a scenario's ``runbook:`` value names."""
    path = Path(reference)
    if path.is_absolute():
        return path
    if path.parts and path.parts[0] == "runbooks":
        return (runbooks or runbooks_dir()).joinpath(*path.parts[1:])
    return (root or repo_root()) / path


def _resolve(argument: str, folder: Path, suffix: str, what: str) -> Path:
    path = Path(argument)
    if path.is_file():
        return path
    looks_like_path = os.sep in argument or "/" in argument or argument.endswith(suffix)
    if not looks_like_path:
        candidate = folder / f"{argument}{suffix}"
        if candidate.is_file():
            return candidate
        known = [p.stem for p in sorted(folder.glob(f"*{suffix}"))]
        hint = did_you_mean(argument, known, listing=False)
        raise InvalidInput(f"no {what} '{argument}' in {folder}{hint}")
    raise InvalidInput(f"{argument}: no such {what} file")


def resolve_scenario(argument: str) -> Path:
    """A path, or an id looked up in the scenarios folder."""
    return _resolve(argument, scenarios_dir(), SCENARIO_SUFFIX, "scenario")


def resolve_runbook(argument: str) -> Path:
    """A path, or an id looked up in the runbooks folder."""
    return _resolve(argument, runbooks_dir(), RUNBOOK_SUFFIX, "runbook")


def display(path: Path) -> str:
    """A path as messages show it: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
