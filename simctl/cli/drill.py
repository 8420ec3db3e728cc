"""`simctl drill`: game days. The facilitator starts a drill (a conductor process runs the
scenario's faults in the background); responders watch, acknowledge, ask for hints, take
notes and end it. docs/drills.md is the guide; every subcommand takes --json where it
prints something, --as NAME for who runs it, and exits with README's codes.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import click

from simctl.cli.options import backend_for, default_project
from simctl.drill import state as drill_state
from simctl.drill.timeline import Timeline, read_timeline, responder_view
from simctl.errors import InvalidInput, SimctlError
from simctl.scenario import interrupts

HINT_PENALTY_S = 60.0  # what each hint costs in the score (docs/drills.md)
START_WAIT = 120.0  # preflight, warm-up and steady state must be done by then
END_WAIT = 120.0  # rollback and the residue check
ANSWER_WAIT = 30.0
_RANGE = re.compile(r"^\s*([0-9][0-9.a-z]*)\s*(?:-\s*([0-9][0-9.a-z]*))?\s*$")


def parse_delay(text: str | None) -> tuple[float, float] | None:
    """'30s-2m' -> (30, 120); '45s' -> (45, 45)."""
    if text is None:
        return None
    from simctl.scenario.model import parse_duration

    found = _RANGE.match(text)
    try:
        if found is None:
            raise ValueError
        low = parse_duration(found.group(1))
        high = parse_duration(found.group(2)) if found.group(2) else low
    except Exception:
        raise InvalidInput(f"invalid --delay {text!r}: expected a duration or a range of "
                           "two, e.g. '30s' or '30s-2m'") from None
    if high < low:
        raise InvalidInput(f"invalid --delay {text!r}: the range ends before it starts")
    if high > 3600:
        raise InvalidInput(f"invalid --delay {text!r}: at most 1h")
    return low, high


def _project_option(func: Any) -> Any:
    return click.option("--project", default=default_project, show_default="simctl",
                        metavar="NAME", help="Project (stack) of the drill "
                                             "(env SIMCTL_PROJECT).")(func)


def _drill_option(func: Any) -> Any:
    return click.option("--drill", "drill_id", default=None, metavar="ID",
                        help="Which drill (default: the running one, else the latest).")(func)


def _as_option(func: Any) -> Any:
    return click.option("--as", "who", default=None, metavar="NAME",
                        help="Who runs it (default: SIMCTL_RESPONDER, else the login "
                             "name).")(func)


def _token_option(func: Any) -> Any:
    return click.option("--token", envvar=drill_state.TOKEN_ENV, default=None, metavar="T",
                        help="The facilitator token `drill start` printed "
                             "(env SIMCTL_DRILL_TOKEN).")(func)


def _running(project: str, drill_id: str | None) -> drill_state.Drill:
    drill = _current(project, drill_id)
    if not drill.running:
        raise InvalidInput(f"drill {drill.id} is over ({drill.end_reason or drill.status})")
    return drill


def _current(project: str, drill_id: str | None) -> drill_state.Drill:
    drill = drill_state.find(project, drill_id)
    if drill.running and not drill.conductor_alive() and drill.phase != "starting":
        from simctl.drill.conductor import recover_lost

        if recover_lost(drill):
            click.echo(f"note: drill {drill.id} lost its conductor: faults healed, load "
                       "stopped, drill marked conductor_lost", err=True)
        drill = drill_state.load(drill.folder)
    return drill


def _book(drill: drill_state.Drill) -> Timeline:
    return Timeline(drill.timeline_path, hidden=drill.hidden)


def _scenario(drill: drill_state.Drill) -> Any:
    from simctl.scenario import catalog
    from simctl.scenario.loader import load_scenario

    return load_scenario(catalog.resolve_scenario(drill.scenario))


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for line in lines:
            click.echo(line)


@click.group()
def drill() -> None:
    """Game days: run a scenario in the background while a team responds (docs/drills.md)."""


# -- the facilitator starts ---------------------------------------------------------------


def _pick(scenario: str | None, random_: bool, difficulty: int | None,
          tags: tuple[str, ...]) -> Any:
    from simctl.scenario import catalog
    from simctl.scenario.loader import load_scenario

    if scenario and random_:
        raise click.UsageError("give a SCENARIO or --random, not both")
    if not scenario and not random_:
        raise click.UsageError("give a SCENARIO or --random")
    if (difficulty is not None or tags) and not random_:
        raise click.UsageError("--difficulty and --tag choose among scenarios: use --random")
    if scenario:
        return load_scenario(catalog.resolve_scenario(scenario))
    every = []
    for path in catalog.scenario_files():
        try:
            every.append(load_scenario(path))
        except SimctlError:
            continue
    chosen = [s for s in every if (difficulty is None or s.difficulty == difficulty)
              and all(t in s.tags for t in tags)]
    if not chosen:
        raise InvalidInput("no scenario has " + " and ".join(
            ([f"difficulty {difficulty}"] if difficulty is not None else [])
            + [f"tag {t!r}" for t in tags]))
    return random.SystemRandom().choice(chosen)


def _ensure_stack(project: str, timing: str | None, port_offset: int) -> tuple[Any, bool]:
    """The project's running stack, or one started now (then True: the drill owns it)."""
    from simctl.backends.local import LocalBackend

    backend = backend_for(project)
    state = backend.state()
    if state is not None and state.complete:
        if timing and timing != state.timing:
            click.secho(f"warning: --timing {timing} ignored: the stack runs {state.timing}",
                        fg="yellow", err=True)
        # Every concrete backend takes these; the abstract Backend declares no constructor.
        again = type(backend)(project, timing=state.timing,  # type: ignore[call-arg]
                              port_offset=state.port_offset)
        return again, False
    from simctl.apps.config import project_apps

    backend = LocalBackend(project, timing=timing or "fast", port_offset=port_offset)
    backend.apps = project_apps(allow_shell=False)
    click.echo(f"starting stack {project!r} ({timing or 'fast'} timing)...", err=True)
    state = backend.up()
    click.echo(f"stack {project!r} is up ({len(state.processes)} processes); "
               f"`simctl down` stops it after the drill", err=True)
    return backend, True


def _stop_stack(backend: Any) -> None:
    """Stop the stack `drill start` brought up for a drill that did not start."""
    with interrupts.deferred():
        names = backend.down()
    click.echo(f"stopped the stack {backend.project!r} it started "
               f"({len(names)} processes)", err=True)


@drill.command("start")
@click.argument("scenario", required=False)
@click.option("--random", "random_", is_flag=True, help="A random scenario of the catalogue.")
@click.option("--difficulty", type=click.IntRange(1, 5), default=None, metavar="N",
              help="With --random: only scenarios of difficulty N.")
@click.option("--tag", "tags", multiple=True, metavar="T",
              help="With --random: only scenarios with tag T (repeatable: all of them).")
@click.option("--hidden", is_flag=True,
              help="Keep the scenario, its faults and schedule out of responder output.")
@click.option("--conceal", is_flag=True,
              help="Hidden, and the fault plane too: neutral toxic names; `proxies` and "
                   "`toxics` refuse without the token.")
@click.option("--guided", is_flag=True,
              help="Training: not hidden, faults after 5 s, objectives in `drill status`.")
@click.option("--timing", type=click.Choice(["fast", "heroku"]), default=None,
              help="Timing of the stack the drill starts (default fast; a running stack "
                   "keeps its own).")
@click.option("--delay", default=None, metavar="RANGE",
              help="Faults after a random delay in RANGE, e.g. 30s-2m (default: at once).")
@click.option("--responder", "responders", multiple=True, metavar="NAME",
              help="A responder's name (repeatable).")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None, metavar="N",
              help="Seed toxicity, jitter and load (default: the scenario's).")
@click.option("--max-duration", default="1h", show_default=True, metavar="DURATION",
              help="End the drill (and roll back) after this long in any case.")
@click.option("--port-offset", type=click.IntRange(0, 30000), default=0, show_default=True,
              help="Ports of a stack the drill starts.")
@click.option("--json", "as_json", is_flag=True, help="Print the id and token as JSON.")
@_project_option
def start(scenario: str | None, random_: bool, difficulty: int | None, tags: tuple[str, ...],
          hidden: bool, conceal: bool, guided: bool, timing: str | None, delay: str | None,
          responders: tuple[str, ...], seed: int | None, max_duration: str, port_offset: int,
          as_json: bool, project: str) -> None:
    """Start a drill of SCENARIO (or --random): stack up if needed, load, steady state,
    then the faults (after --delay). Prints the drill id and the facilitator token."""
    from simctl.backends.state import check_project, private_folder
    from simctl.drill import conductor, recorder
    from simctl.scenario import catalog
    from simctl.scenario.model import parse_duration

    check_project(project)
    if guided and (hidden or conceal):
        raise click.UsageError("--guided shows the scenario: it cannot be --hidden or --conceal")
    hidden = hidden or conceal
    window = parse_delay(delay)
    try:
        max_s = parse_duration(max_duration)
    except Exception:
        raise InvalidInput(f"invalid --max-duration {max_duration!r}") from None
    chosen = _pick(scenario, random_, difficulty, tags)
    active = drill_state.active_id(project)
    if active:
        existing = _current(project, active)
        if existing.running:
            raise InvalidInput(f"drill {existing.id} is already running in project "
                               f"{project!r}: end it first (`simctl drill end`)")
    backend, started_stack = _ensure_stack(project, timing, port_offset)
    try:
        stack_timing = backend.require_state().timing
        _wait_healthy(backend)
        if window is None:
            delay_s = conductor.GUIDED_DELAY if guided else 0.0
        else:
            delay_s = random.SystemRandom().uniform(*window)
        token = secrets.token_urlsafe(18)
        now = time.time()
        d = drill_state.Drill(
            id=drill_state.new_id(now), project=project, scenario=chosen.id,
            options={"hidden": hidden, "conceal": conceal, "guided": guided,
                     "timing": stack_timing, "delay": delay, "delay_s": round(delay_s, 3),
                     "responders": list(responders), "seed": seed, "max_duration_s": max_s,
                     "random": random_},
            token_sha256=drill_state.hash_token(token), started_at=now)
        private_folder(d.folder)
        d.save()
        Timeline(d.timeline_path).append(
            "drill_started", hidden=hidden, drill=d.id, scenario=chosen.id, title=chosen.title,
            conceal=conceal, timing=stack_timing, responders=list(responders), delay=delay,
            guided=guided)
        recorder.write_steps(d, catalog.runbook_path(chosen.runbook))
        drill_state.set_active(project, d.id)
        proc = conductor.spawn(d)  # it records its own pid in drill.json (one writer at a time)
        try:
            with interrupts.signals_as_exceptions():
                _wait_armed(d, proc)
        except KeyboardInterrupt as exc:  # the token was never shown: the drill cannot go on
            interrupts.hold()
            with interrupts.deferred():
                _request(d, "abort", who="drill start", reveal=False)
                _wait_end(d)
            click.secho(f"error: drill {d.id} aborted: interrupted before it started", fg="red",
                        err=True)
            sys.exit(interrupts.exit_code_for(exc))
        current = drill_state.load(d.folder)
        if current.running and not current.conductor_alive():
            from simctl.drill.conductor import recover_lost

            recover_lost(current)  # it died before the steady state: nothing may stay injected
            current = drill_state.load(d.folder)
            current.error = current.error or f"the conductor exited (see {d.folder}/conductor.log)"
        elif current.running and current.phase not in ("waiting", "faulted"):
            _request(current, "abort", who="drill start", reveal=False)
            current = _wait_end(current)
            current.error = f"no steady state within {START_WAIT:g}s"
        if not current.running:
            why = current.error or current.end_reason or current.status
            raise SimctlError(f"drill {d.id} could not start: {why}")
        data = {"drill": d.id, "token": token, "project": project, "hidden": hidden,
                "conceal": conceal, "guided": guided, "timing": stack_timing}
        if not hidden:
            data.update(scenario=chosen.id, title=chosen.title, delay_s=round(delay_s, 1))
        lines = [f"drill {d.id} started" + ("" if hidden else f": {chosen.id} ({chosen.title})"),
                 f"facilitator token (shown once): {token}",
                 "responders: `simctl drill status`, `drill ack`, `drill hint`, `drill note`, "
                 "`drill end`"]
        if hidden:
            lines.insert(1, "scenario and schedule hidden from responders"
                         + (", fault plane concealed" if conceal else ""))
        _emit(data, as_json, lines)
    except BaseException:
        if started_stack:  # nothing left half-started: the stack this drill brought up
            _stop_stack(backend)
        raise


def _wait_healthy(backend: Any, timeout: float = 30.0) -> None:
    """A stack just reset (routers resyncing after the last drill) is briefly degraded; the
    conductor's preflight wants every service healthy, and says which is not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(row.health.ok for row in backend.status()):
            return
        time.sleep(0.5)


def _wait_armed(d: drill_state.Drill, proc: Any) -> None:
    """Until the conductor has seen the steady state (or ended, or died)."""
    deadline = time.monotonic() + START_WAIT
    while True:
        current = drill_state.load(d.folder)
        if not current.running or current.phase in ("waiting", "faulted"):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            return
        time.sleep(0.2)


# -- responders ----------------------------------------------------------------------------


def _latest_alerts(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("kind") == "alert":
            states[entry["alert"]] = entry
    return states


def status_data(d: drill_state.Drill, full: bool = False) -> dict[str, Any]:
    """What `drill status` shows: never the hidden scenario or faults of a running hidden
    drill (unless ``full``, for the facilitator's reveal)."""
    entries = read_timeline(d.timeline_path)
    shown = entries if full else responder_view(entries, d.running, d.hidden)
    secret = d.hidden and d.running and not full
    end = d.ended_at or time.time()
    alerts = _latest_alerts(shown)
    acks = [e for e in shown if e.get("kind") == "ack"]
    hints = [e for e in shown if e.get("kind") == "hint"]
    scenario = _scenario(d)
    data: dict[str, Any] = {
        "drill": d.id, "status": d.status, "end_reason": d.end_reason,
        "elapsed_s": round(end - d.started_at, 1),
        "phase": ("running" if d.running else "over") if secret else d.phase,
        "hidden": d.hidden, "conceal": d.conceal, "guided": bool(d.options.get("guided")),
        "responders": d.options.get("responders", []),
        "alerts_firing": sorted(n for n, e in alerts.items() if e.get("state") == "firing"),
        "alerts_pending": sorted(n for n, e in alerts.items() if e.get("state") == "pending"),
        "acked": bool(acks), "acked_by": acks[0]["who"] if acks else None,
        "acked_at": acks[0]["t"] if acks else None,
        "hints_used": len(hints), "hints_left": max(0, len(scenario.hints) - len(hints)),
        "notes": sum(1 for e in shown if e.get("kind") == "note"),
        "commands": sum(1 for e in shown if e.get("kind") == "command"),
    }
    if not secret:
        data["scenario"] = d.scenario
        data["title"] = scenario.title
        data["faults_applied"] = [e.get("name") for e in shown
                                  if e.get("kind") == "fault_applied"]
    if d.options.get("guided") or not secret:
        data["objectives"] = [getattr(o, "text", o) for o in scenario.objectives]
    if d.error and not secret:
        data["error"] = d.error
    return data


@drill.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_drill_option
@_project_option
def status(as_json: bool, drill_id: str | None, project: str) -> None:
    """Elapsed time, alerts firing, acknowledgement, hints left (never a hidden fault)."""
    d = _current(project, drill_id)
    data = status_data(d)
    lines = [f"drill {d.id}: {d.status}"
             + (f" ({d.end_reason})" if d.end_reason else "")
             + f", {data['elapsed_s']:.0f}s elapsed"]
    if "scenario" in data:
        lines.append(f"scenario: {data['scenario']} ({data['title']})")
    lines.append("alerts firing: " + (", ".join(data["alerts_firing"]) or "none")
                 + (f"; pending: {', '.join(data['alerts_pending'])}"
                    if data["alerts_pending"] else ""))
    lines.append(f"acknowledged by {data['acked_by']}" if data["acked"] else
                 "not acknowledged (`simctl drill ack`)")
    lines.append(f"hints: {data['hints_used']} used, {data['hints_left']} left")
    if data.get("objectives") and data["guided"]:
        lines.append("objectives:")
        lines += [f"  - {o}" for o in data["objectives"]]
    _emit(data, as_json, lines)


@drill.command("ack")
@_as_option
@_drill_option
@_project_option
def ack(who: str | None, drill_id: str | None, project: str) -> None:
    """Acknowledge the page: the team is on it."""
    d = _running(project, drill_id)
    name = drill_state.responder(who)
    owner, now = drill_state.acknowledge(d, name)
    click.echo(f"drill {d.id}: " + ("acknowledged by " if now else "already acknowledged by ")
               + owner)


@drill.command("hint")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_as_option
@_drill_option
@_project_option
def hint(as_json: bool, who: str | None, drill_id: str | None, project: str) -> None:
    """Reveal the scenario's next hint (each costs a penalty in the score)."""
    d = _running(project, drill_id)
    hints = list(_scenario(d).hints)
    name = drill_state.responder(who)
    with drill_state.locked(d):  # two responders asking at once get two different hints
        used = sum(1 for e in read_timeline(d.timeline_path) if e.get("kind") == "hint")
        if used >= len(hints):
            raise SimctlError(f"drill {d.id}: no hints left ({len(hints)} used)")
        _book(d).append("hint", who=name, index=used, text=hints[used],
                        penalty_s=HINT_PENALTY_S)
    data = {"index": used, "text": hints[used], "penalty_s": HINT_PENALTY_S,
            "hints_left": len(hints) - used - 1}
    _emit(data, as_json, [f"hint {used + 1}/{len(hints)} (+{HINT_PENALTY_S:g}s): "
                          f"{hints[used]}"])


@drill.command("note")
@click.argument("text")
@_as_option
@_drill_option
@_project_option
def note(text: str, who: str | None, drill_id: str | None, project: str) -> None:
    """Add a note to the drill's timeline."""
    d = _running(project, drill_id)
    if not text.strip():
        raise InvalidInput("empty note")
    if len(text) > 4000:
        raise InvalidInput("note too long (at most 4000 characters)")
    _book(d).append("note", who=drill_state.responder(who), text=text)
    click.echo(f"drill {d.id}: note recorded")


def _request(d: drill_state.Drill, action: str, **fields: Any) -> str:
    from simctl.backends.state import private_folder, write_private

    request_id = f"{time.time_ns()}-{secrets.token_hex(3)}"
    folder = private_folder(d.folder / "requests")
    tmp = d.folder / f".{request_id}.json"
    write_private(tmp, json.dumps({"id": request_id, "action": action, **fields}))
    tmp.replace(folder / f"{request_id}.json")
    return request_id


def _wait_end(d: drill_state.Drill) -> drill_state.Drill:
    deadline = time.monotonic() + END_WAIT
    while time.monotonic() < deadline:
        current = drill_state.load(d.folder)
        if not current.running:
            return current
        if not current.conductor_alive():
            return _current(d.project, d.id)
        time.sleep(0.2)
    raise SimctlError(f"drill {d.id}: the conductor did not finish within {END_WAIT:g}s")


def _end(d: drill_state.Drill, action: str, who: str, reveal: bool, as_json: bool,
         token_ok: bool) -> None:
    if d.conductor_alive():
        _request(d, action, who=who, reveal=reveal)
        d = _wait_end(d)
    else:
        d = _current(d.project, d.id)
    data = status_data(d, full=reveal or token_ok)
    entries = read_timeline(d.timeline_path)
    residue = [e for e in entries if e.get("kind") == "residue_check"]
    data["residue_ok"] = residue[-1].get("ok") if residue else None
    lines = [f"drill {d.id} {d.status} ({d.end_reason}) after {data['elapsed_s']:.0f}s; "
             f"residue check: {'clean' if data['residue_ok'] else 'see the timeline'}"]
    if reveal or token_ok:
        if reveal:
            _book(d).append("reveal", who=who)
        lines.append(f"scenario: {d.scenario} ({data['title']})")
        lines += [f"fault: {e.get('description')}" for e in entries
                  if e.get("kind") == "fault_applied"]
    _emit(data, as_json, lines)


@drill.command("end")
@click.option("--reveal", is_flag=True, help="Then show the scenario and its faults.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_as_option
@_drill_option
@_project_option
def end(reveal: bool, as_json: bool, who: str | None, drill_id: str | None,
        project: str) -> None:
    """End the drill: every fault rolled back and checked, the load stopped."""
    d = drill_state.find(project, drill_id)
    if not d.running:
        raise InvalidInput(f"drill {d.id} is already over ({d.end_reason or d.status})")
    _end(d, "end", drill_state.responder(who), reveal, as_json, token_ok=False)


@drill.command("abort")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_token_option
@_as_option
@_drill_option
@_project_option
def abort(as_json: bool, token: str | None, who: str | None, drill_id: str | None,
          project: str) -> None:
    """Facilitator: stop the drill now (rolled back, marked aborted)."""
    d = drill_state.find(project, drill_id)
    d.require_token(token)
    if not d.running:
        raise InvalidInput(f"drill {d.id} is already over ({d.end_reason or d.status})")
    _end(d, "abort", drill_state.responder(who), False, as_json, token_ok=True)


@drill.command("reveal")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_token_option
@_as_option
@_drill_option
@_project_option
def reveal(as_json: bool, token: str | None, who: str | None, drill_id: str | None,
           project: str) -> None:
    """Facilitator: the scenario, its faults and their schedule."""
    d = _current(project, drill_id)
    d.require_token(token)
    name = drill_state.responder(who)
    Timeline(d.timeline_path).append("reveal", hidden=d.hidden and d.running, who=name)
    entries = read_timeline(d.timeline_path)
    data = status_data(d, full=True)
    data["delay_s"] = d.options.get("delay_s")
    data["faults"] = [e for e in entries if e.get("kind") in ("fault_applied",
                                                               "fault_rolled_back")]
    lines = [f"drill {d.id}: {d.scenario} ({data['title']}), phase {d.phase}, faults after "
             f"{d.options.get('delay_s')}s"]
    lines += [f"{e['kind']}: {e.get('name')} {e.get('description', '')}".rstrip()
              for e in data["faults"]]
    _emit(data, as_json, lines)


@drill.command("inject")
@click.argument("fault", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_token_option
@_as_option
@_drill_option
@_project_option
def inject(fault: str | None, as_json: bool, token: str | None, who: str | None,
           drill_id: str | None, project: str) -> None:
    """Facilitator: apply one of the scenario's faults now (by name or number; default the
    next not yet applied)."""
    d = _running(project, drill_id)
    d.require_token(token)
    request_id = _request(d, "inject", who=drill_state.responder(who), fault=fault)
    answer_path = d.folder / "responses" / f"{request_id}.json"
    deadline = time.monotonic() + ANSWER_WAIT
    while not answer_path.exists():
        if time.monotonic() > deadline or not d.conductor_alive():
            raise SimctlError(f"drill {d.id}: the conductor did not answer")
        time.sleep(0.1)
    answer = json.loads(Path(answer_path).read_text())
    answer_path.unlink(missing_ok=True)
    if not answer.get("ok"):
        raise InvalidInput(f"drill {d.id}: {answer.get('message')}")
    _emit(answer, as_json, [answer.get("message", "")])


@drill.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_project_option
def list_(as_json: bool, project: str) -> None:
    """Every drill of the project, oldest first."""
    rows = []
    for d in drill_state.all_drills(project):
        secret = d.hidden and d.running
        rows.append({"drill": d.id, "status": d.status, "end_reason": d.end_reason,
                     "scenario": None if secret else d.scenario,
                     "started_at": d.started_at, "ended_at": d.ended_at,
                     "folder": str(d.folder)})
    lines = [f"{r['drill']}  {r['status']:<11} {r['end_reason'] or '-':<15} "
             f"{r['scenario'] or '(hidden)'}" for r in rows] or ["no drills"]
    _emit({"drills": rows}, as_json, lines)


COMMANDS = [drill]
