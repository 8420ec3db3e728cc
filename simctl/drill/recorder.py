"""Records every simctl command run while a drill is active (docs/drills.md, "The timeline").

``SimctlGroup.main`` calls ``before(argv)`` and ``after(...)`` around each command. Both
must stay cheap and must never break a command: one small file read finds the active
drill (``drills/ACTIVE``), one appended line records the command, and any error (an
unwritable folder, a broken drill.json) is swallowed.

``before`` also notices a drill whose conductor died (killed -9) and cleans up after it
(simctl.drill.conductor.recover_lost), and stops the conductor before ``simctl down``
so that no drill outlives the stack.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from simctl.drill import state as drill_state

GLOBAL_OPTIONS = ("--toxiproxy-url", "--project", "--as", "--token")
FACILITATOR = ("start", "reveal", "inject", "abort")  # hidden in a hidden drill's view


def project_of(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--project" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--project="):
            return arg.split("=", 1)[1]
    from simctl.cli.options import default_project

    return default_project()


def who_of(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--as" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--as="):
            return arg.split("=", 1)[1]
    return drill_state.responder()


def redact(argv: list[str]) -> list[str]:
    """The argv with the facilitator token's value replaced."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append("***")
            hide = False
        elif arg == "--token":
            out.append(arg)
            hide = True
        elif arg.startswith("--token="):
            out.append("--token=***")
        else:
            out.append(arg)
    return out


def normalise(argv: list[str] | tuple[str, ...]) -> list[str]:
    """simctl's own words of a command line: no leading `simctl`, no global options,
    `--opt=value` split in two, so that a typed command compares with a runbook's."""
    words = list(argv)
    if words and os.path.basename(words[0]) == "simctl":
        words = words[1:]
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        name, eq, value = word.partition("=")
        if name in GLOBAL_OPTIONS:
            skip = not eq
            continue
        if word.startswith("--") and eq:
            out += [name, value]
        else:
            out.append(word)
    return out


def match_step(argv: list[str], steps: list[dict[str, Any]]) -> str | None:
    """The id of the runbook step one of whose commands this argv is (normalised; option
    order does not matter)."""
    mine = normalise(argv)
    if not mine:
        return None
    for step in steps:
        for command in step.get("commands", []):
            theirs = normalise(command)
            if mine == theirs or (mine[:1] == theirs[:1] and sorted(mine) == sorted(theirs)):
                return str(step["id"])
    return None


def write_steps(drill: drill_state.Drill, runbook_path: Any) -> None:
    """Keep the runbook's steps (simctl commands, as argv) in the drill folder, so that
    matching a command needs no Markdown parsing."""
    from simctl.backends.state import write_private
    from simctl.runbook.parser import parse_runbook

    runbook = parse_runbook(runbook_path)
    steps = [{"id": s.id, "section": s.section,
              "commands": [list(c.argv) for c in s.commands if c.is_simctl and c.argv]}
             for s in runbook.steps if s.id]
    write_private(drill.folder / "steps.json",
                  json.dumps({"runbook": runbook.id, "steps": steps}))


class Recording:
    def __init__(self, drill: drill_state.Drill, argv: list[str]) -> None:
        self.drill = drill
        self.argv = argv
        self.started = time.monotonic()


def before(argv: list[str]) -> Recording | None:
    try:
        project = project_of(argv)
        drill_id = drill_state.active_id(project)
        if drill_id is None:
            return None
        drill = drill_state.load(drill_state.drills_root(project) / drill_id)
        if not drill.running:
            return None
        words = normalise(argv)
        ends = words[:2] in (["drill", "end"], ["drill", "abort"])  # they clean up themselves
        if not ends and not drill.conductor_alive() and drill.phase != "starting":
            _recover(drill)
            return None
        if words[:1] == ["down"]:
            _stop_conductor(drill)
            return None
        return Recording(drill, argv)
    except Exception:  # recording must never break a command
        return None


def after(recording: Recording | None, exit_code: int) -> None:
    if recording is None:
        return
    try:
        drill = recording.drill
        words = normalise(recording.argv)
        steps: dict[str, Any] = {}
        try:
            steps = json.loads((drill.folder / "steps.json").read_text())
        except (OSError, ValueError):
            pass
        from simctl.drill.timeline import Timeline

        facilitator = words[:1] == ["drill"] and words[1:2] and words[1] in FACILITATOR
        Timeline(drill.timeline_path).append(
            "command", hidden=bool(drill.hidden and facilitator), who=who_of(recording.argv),
            argv=redact(recording.argv), exit_code=exit_code,
            duration_s=round(time.monotonic() - recording.started, 3),
            matched_step=match_step(recording.argv, steps.get("steps", [])),
            runbook=steps.get("runbook"))
    except Exception:  # an unwritable drill folder must not break the command
        pass


def exit_code_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _recover(drill: drill_state.Drill) -> None:
    from simctl.drill.conductor import recover_lost

    if recover_lost(drill):
        print(f"note: drill {drill.id} lost its conductor: faults healed, load stopped, "
              "drill marked conductor_lost", file=sys.stderr)


def _stop_conductor(drill: drill_state.Drill, wait: float = 60.0) -> None:
    """SIGTERM: the conductor rolls back and ends the drill as interrupted."""
    try:
        os.kill(drill.conductor_pid, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + wait
    while drill.conductor_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if drill.conductor_alive():
        os.kill(drill.conductor_pid, signal.SIGKILL)
    fresh = drill_state.load(drill.folder)
    if fresh.running:
        _recover(fresh)
