"""The drill conductor: one detached process per drill that runs the scenario's faults
while a team responds (docs/drills.md).

    python -m simctl.drill.conductor PROJECT DRILL_ID

It reuses the scenario engine (simctl.scenario.engine): preflight, load, steady state,
the fault timeline with its undo records, abort conditions, rollback and the residue
check. What differs from ``simctl verify``: the faults start after a delay, nobody runs
the mitigation for the team (the conductor never mitigates), and the drill ends when
the recovery probes have held for ``HOLD`` seconds, on ``drill end``/``abort``, after
``max_duration``, or on SIGINT/SIGTERM. Every path rolls back and checks for residue.

Requests from ``simctl drill`` (end, abort, inject) arrive as files in
``requests/``; answers go to ``responses/``. Everything that happens is appended to the
timeline (simctl.drill.timeline).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

from simctl.backends.base import Backend
from simctl.backends.state import open_private, private_folder, write_private
from simctl.drill import state as drill_state
from simctl.drill.timeline import Timeline, read_timeline
from simctl.scenario import catalog, expressions, interrupts
from simctl.scenario.describe import describe
from simctl.scenario.engine import ABORTED, EngineOptions, _Run, _Stop
from simctl.scenario.events import OK, Event
from simctl.scenario.loader import load_scenario
from simctl.scenario.model import FaultBase
from simctl.scenario.probes import percentile

HOLD = {"fast": 10.0, "heroku": 30.0}  # recovery must hold this long to end the drill
SLI_EVERY = {"fast": 1.0, "heroku": 5.0}  # one `sli` entry per interval
ALERT_EVERY = 1.0
GUIDED_DELAY = 5.0  # seconds between a guided drill's steady state and its faults
DROPPED = "metric logplex_drain_dropped_total >= 0 on logplex"


def fault_name(fault: FaultBase, index: int) -> str:
    return fault.name or f"fault-{index + 1}"


def fault_target(fault: FaultBase) -> str:
    action = fault.action
    for attr in ("proxy", "name", "service", "dyno", "router", "app"):
        value = getattr(action, attr, None)
        if isinstance(value, str) and value:
            return value
    return ""


class DrillRun(_Run):
    """The engine's run, conducted for a team: faults on a schedule, no mitigation."""

    def __init__(self, drill: drill_state.Drill, backend: Backend) -> None:
        self.drill = drill
        self.book = Timeline(drill.timeline_path, hidden=drill.hidden)
        scenario = load_scenario(catalog.resolve_scenario(drill.scenario))
        if drill.conceal:
            from simctl.drill.conceal import conceal_scenario

            scenario = conceal_scenario(scenario)
        timing = drill.options.get("timing")
        super().__init__(scenario, backend, seed=drill.options.get("seed"), timing=timing,
                         listener=self._event, options=EngineOptions(), runbook=None)
        self.hold = HOLD.get(self.timing, 10.0)
        self.sli_every = SLI_EVERY.get(self.timing, 1.0)
        self.names = {i: fault_name(f, i) for i, f in enumerate(self.scenario.timeline())}
        self.by_description = {describe(f): i for i, f in enumerate(self.scenario.timeline())}
        self.faults_due: float | None = None
        self.scheduled = False  # the schedule began (an inject may come before it)
        self.reason = "ended"
        self.revealed = False
        self.error = ""
        self.abort_condition = ""
        self._alert_states: dict[str, str] = {}
        self._probes: dict[str, bool] = {}
        self._broken = False
        self._holding_since: float | None = None
        self._last_sli = 0.0
        self._last_alerts = 0.0
        self._dropped = expressions.parse(DROPPED)

    # -- engine events -> timeline -----------------------------------------------------

    def _event(self, event: Event) -> None:
        if event.end is None:
            return
        if event.kind == "fault" and event.status == OK:
            index = int(event.detail.get("index", 0))
            fault = self.scenario.timeline()[index]
            self.book.append("fault_applied", name=self.names[index], fault_kind=fault.kind,
                             target=fault_target(fault), description=describe(fault))
        elif event.kind == "undo":
            described = str(event.detail.get("fault", ""))
            found = self.by_description.get(described)
            name = self.names[found] if found is not None else described
            self.book.append("fault_rolled_back", name=name, ok=event.status == OK,
                             reason=event.detail.get("reason", ""))
        elif event.kind == "phase" and event.name == "residue":
            self.book.append("residue_check", ok=event.status == OK,
                             problems=[] if event.status == OK else event.output.splitlines())

    def _reset(self) -> None:
        """Back to the stack's baseline, also what the team changed (a dyno taken out of
        rotation), so that the next drill starts from the same place."""
        from simctl.scenario.reset import reset_stack

        try:
            done = reset_stack(self.backend, self.client)
            self.book.append("stack_reset", ok=True, done=done, hidden=self.drill.hidden)
        except Exception as exc:
            self.book.append("stack_reset", ok=False, done=[" ".join(str(exc).split())],
                             hidden=self.drill.hidden)

    def _load_spec(self) -> Any:
        """The load's run id shows in its log lines and pushed metrics: the drill's id,
        never the scenario's."""
        return dataclasses.replace(super()._load_spec(), run_id=self.drill.id)

    def _phase_is(self, phase: str) -> None:
        self.drill.phase = phase
        self.drill.save()

    # -- the drill ---------------------------------------------------------------------

    def conduct(self) -> None:
        d = self.drill
        with interrupts.signals_as_exceptions():
            try:
                self._phase_is("preflight")
                self._preflight()
                self._start_load()
                # The type: ignore below: _start_load() sets the observer.
                self.observer.probes.append(self._dropped)  # type: ignore[union-attr]
                self._phase_is("steady")
                self._steady_state()
                delay = float(d.options.get("delay_s") or 0.0)
                self.faults_due = time.monotonic() + delay
                self._phase_is("waiting")
                self._loop()
            except _Stop as stop:
                if stop.status == ABORTED:  # the scenario's abort.when held
                    self.reason, self.abort_condition = "aborted", stop.reason
                else:
                    self.reason, self.error = "error", stop.reason
            except KeyboardInterrupt:
                self.reason = "interrupted"
            except Exception as exc:  # a bug must still roll back and be recorded
                self.reason, self.error = "error", f"{type(exc).__name__}: {exc}"
            finally:
                with interrupts.deferred():
                    self._end_drill()

    def _loop(self) -> None:
        max_duration = float(self.drill.options.get("max_duration_s") or 3600.0)
        began = time.monotonic()
        while True:
            tick = time.monotonic()
            if self._requests():
                return
            if not self.scheduled and self.faults_due is not None and tick >= self.faults_due:
                self._start_faults()
            if self.t0 is not None:
                self._advance_timeline()
            obs = self._observe()
            self._check_abort(obs)
            self._sli(obs)
            self._poll_alerts()
            if self.scheduled and self._judge_recovery(obs):
                self.reason = "recovered"
                return
            if tick - began > max_duration:
                self.reason = "timeout"
                return
            due = min(tick + self.options.interval, self._last_sli + self.sli_every)
            self._sleep(due - time.monotonic())

    def _start_faults(self) -> None:
        self.scheduled = True
        self.t0 = t0 = time.monotonic()
        done = set(self.applied_at)
        self.timeline = [(t0 + f.at, i, "apply", f)
                         for i, f in enumerate(self.scenario.timeline()) if i not in done]
        self._faults_total = len(self.scenario.timeline())
        self._phase_is("faulted")

    def _apply(self, fault: FaultBase, order: int) -> None:
        if order in self.applied_at:  # injected ahead of its time by the facilitator
            self._faults_done += 1
            return
        if self.t0 is None:  # `drill inject` before the schedule: t = 0 is now
            self.t0 = time.monotonic()
        super()._apply(fault, order)

    def _all_applied(self) -> bool:
        return not any(what == "apply" for _, _, what, _ in self.timeline)

    # -- observing ---------------------------------------------------------------------

    def _judge_recovery(self, obs: Any) -> bool:
        if not self._all_applied() or self.first_fault is None:
            return False
        since = self.first_fault
        recovery = self._readings(self.scenario.recovery_expect, obs, since)
        symptoms = self._readings([p for s in self.scenario.symptoms if not s.baseline_ok
                                   for p in s.expect], obs, since)
        for reading in recovery + symptoms:
            if self._probes.get(reading.probe.text) != reading.holds:
                self._probes[reading.probe.text] = reading.holds
                self.book.append("probe", probe=reading.probe.text, ok=reading.holds,
                                 hidden=self.drill.hidden)
        if any(not r.holds for r in recovery) or any(r.holds for r in symptoms):
            self._broken = True
            self._holding_since = None
            return False
        if not self._broken or obs.now - since < self.options.window:
            return False
        if self._holding_since is None:
            self._holding_since = obs.now
            self.book.append("recovery_holding", since=round(time.time(), 3))
        return obs.now - self._holding_since >= self.hold

    def _sli(self, obs: Any) -> None:
        if obs.now < self._last_sli + self.sli_every:
            return
        # a steady cadence: the next sample is due one interval after this one was
        late = obs.now - (self._last_sli + self.sli_every)
        self._last_sli = obs.now if late > self.sli_every / 2 else obs.now - late
        span = max(2.0, self.sli_every)
        recent = [o for o in obs.outcomes if o.t >= obs.now - span]
        ok = sum(1 for o in recent if o.ok)
        latencies = sorted(o.latency_ms for o in recent if o.latency_ms is not None)
        codes: dict[str, int] = {}
        for o in recent:
            if o.code:
                codes[o.code] = codes.get(o.code, 0) + 1
        dropped = self._readings([self._dropped], obs, obs.now - span)[0].value
        self.book.append(
            "sli", success_ratio=round(ok / len(recent), 4) if recent else None,
            p50_ms=round(percentile(latencies, 50), 1) if latencies else None,
            p99_ms=round(percentile(latencies, 99), 1) if latencies else None,
            rps=round(len(recent) / span, 2), failed=len(recent) - ok, hcodes=codes,
            drain_dropped=dropped if isinstance(dropped, (int, float)) else None,
            window_s=span)

    def _poll_alerts(self) -> None:
        now = time.monotonic()
        if now - self._last_alerts < ALERT_EVERY:
            return
        self._last_alerts = now
        from simctl.scenario.alert_watch import monitor_url

        url = monitor_url(self.backend)
        if url is None:
            return
        try:
            with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=2) as answer:  # noqa: S310
                alerts = json.loads(answer.read())["data"]["alerts"]
        except (OSError, ValueError, KeyError):
            return
        seen: dict[str, dict[str, Any]] = {}
        for alert in alerts:
            name = alert.get("labels", {}).get("alertname", "")
            if name and (name not in seen or alert.get("state") == "firing"):
                seen[name] = alert
        for name, alert in seen.items():
            if self._alert_states.get(name) != alert.get("state"):
                self._alert_states[name] = alert.get("state", "")
                notes = alert.get("annotations", {})
                self.book.append("alert", alert=name, state=alert.get("state"),
                                 value=alert.get("value"), summary=notes.get("summary", ""),
                                 runbook=notes.get("runbook"))
        for name in [n for n, s in self._alert_states.items() if n not in seen and s != "resolved"]:
            self._alert_states[name] = "resolved"
            self.book.append("alert", alert=name, state="resolved", value=None, summary="",
                             runbook=None)

    # -- requests from `simctl drill` --------------------------------------------------

    def _requests(self) -> bool:
        """Handle waiting requests; True when the drill must end."""
        folder = self.drill.folder / "requests"
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return False
        for name in names:
            path = folder / name
            try:
                request = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            finally:
                path.unlink(missing_ok=True)
            action = request.get("action")
            if action in ("end", "abort"):
                self.reason = "ended" if action == "end" else "aborted"
                self.revealed = bool(request.get("reveal"))
                self._answer(request, True, f"drill {action}ing")
                return True
            if action == "inject":
                self._inject(request)
        return False

    def _inject(self, request: dict[str, Any]) -> None:
        wanted = request.get("fault")
        timeline = self.scenario.timeline()
        pending = [i for i in range(len(timeline)) if i not in self.applied_at]
        if wanted:
            index = next((i for i, n in self.names.items() if n == wanted or
                          str(i + 1) == str(wanted)), None)
        else:
            index = pending[0] if pending else None
        if index is None:
            known = ", ".join(self.names.values())
            self._answer(request, False, f"no fault {wanted!r} to inject (the scenario has: "
                                         f"{known})" if wanted else "every fault is applied")
            return
        if index in self.applied_at and not self._undone(index):
            self._answer(request, False, f"fault {self.names[index]} is already applied")
            return
        self.applied_at.pop(index, None)
        try:
            self._apply(timeline[index], index)
        except _Stop as stop:
            self._answer(request, False, stop.reason)
            return
        self._answer(request, True, f"applied {self.names[index]}: {describe(timeline[index])}")

    def _undone(self, index: int) -> bool:
        return any(a.undone for a in self.applied if a.fault is self.scenario.timeline()[index])

    def _answer(self, request: dict[str, Any], ok: bool, message: str) -> None:
        folder = private_folder(self.drill.folder / "responses")
        write_private(folder / f"{request.get('id', 'x')}.json",
                      json.dumps({"ok": ok, "message": message}))

    # -- the end -----------------------------------------------------------------------

    def _end_drill(self) -> None:
        d = self.drill
        self._phase_is("ending")
        if self._alert_watch is not None:
            self._alert_watch.stop()
        try:
            self._rollback()
        except Exception as exc:  # the residue check still runs
            self.error = self.error or f"rollback: {exc}"
        if self.client is not None:
            self._residue_check()
            self._reset()
        else:
            self.book.append("residue_check", ok=True, problems=[])
        extra: dict[str, Any] = {"error": self.error} if self.error else {}
        if self.abort_condition:
            extra["abort_condition"] = self.abort_condition
        self.book.append("drill_ended", reason=self.reason, revealed=self.revealed, **extra)
        d.status = {"recovered": drill_state.ENDED, "ended": drill_state.ENDED,
                    "timeout": drill_state.ENDED, "aborted": drill_state.ABORTED,
                    }.get(self.reason, drill_state.INTERRUPTED)
        if self.reason == "error":
            d.status = drill_state.ABORTED
        d.end_reason = self.reason
        d.ended_at = time.time()
        d.error = self.error
        d.phase = "done"
        d.save()
        drill_state.clear_active(d.project, d.id)


# -- starting, and cleaning up after a lost conductor -------------------------------------


def spawn(drill: drill_state.Drill) -> subprocess.Popen[bytes]:
    """Start the conductor detached (its own session): it outlives the terminal."""
    log = open_private(drill.folder / "conductor.log", os.O_WRONLY | os.O_APPEND)
    env = dict(os.environ, SIMCTL_PROJECT=drill.project)
    env.pop(drill_state.TOKEN_ENV, None)
    try:
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "simctl.drill.conductor", drill.project, drill.id],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=env, close_fds=True)
    finally:
        os.close(log)


def recover_lost(drill: drill_state.Drill) -> bool:
    """The conductor of a running drill is gone (killed -9): heal the stack back to its
    baseline, check for residue, and mark the drill ``conductor_lost``. Returns whether
    this call did it (another process may have, meanwhile)."""
    from simctl.cli.options import backend_for
    from simctl.scenario.reset import client_for, find_residue, reset_stack

    with drill_state.locked(drill):
        fresh = drill_state.load(drill.folder)
        if not fresh.running or fresh.conductor_alive():
            return False
        book = Timeline(fresh.timeline_path, hidden=fresh.hidden)
        entries = read_timeline(fresh.timeline_path)
        applied = [e["name"] for e in entries if e.get("kind") == "fault_applied"]
        undone = {e["name"] for e in entries if e.get("kind") == "fault_rolled_back"}
        backend = backend_for(fresh.project)
        problems: list[str] = []
        if backend.state() is not None:
            try:
                reset_stack(backend)
            except Exception as exc:
                problems.append(f"reset failed: {exc}")
            try:
                problems += find_residue(backend, client_for(backend))
            except Exception as exc:
                problems.append(f"cannot check for residue: {exc}")
        for name in applied:
            if name not in undone:
                book.append("fault_rolled_back", name=name, ok=not problems,
                            reason="conductor_lost")
        book.append("residue_check", ok=not problems, problems=problems)
        book.append("drill_ended", reason="conductor_lost", revealed=False)
        fresh.status = drill_state.INTERRUPTED
        fresh.end_reason = "conductor_lost"
        fresh.ended_at = time.time()
        fresh.phase = "done"
        fresh.save()
        drill_state.clear_active(fresh.project, fresh.id)
        return True


def main(argv: list[str]) -> int:
    project, drill_id = argv
    drill = drill_state.load(drill_state.drills_root(project) / drill_id)
    from simctl.backends import factory

    backend = factory.for_project(project)
    state = backend.state()
    if state is not None:  # act on the stack as it was started (its ports)
        backend = factory.create(state.backend, project, timing=state.timing,
                                 port_offset=state.port_offset)
    import psutil

    drill.conductor_pid = os.getpid()  # saved with the first phase, before any fault
    drill.conductor_started = psutil.Process().create_time()
    run = DrillRun(drill, backend)
    run.conduct()
    return 0 if run.reason != "error" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
