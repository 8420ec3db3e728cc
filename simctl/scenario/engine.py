"""The scenario engine: run one scenario against a running stack, and always roll back.

    result = run_scenario(scenario, backend, seed=7, timing="fast", listener=print)
    result.passed, result.status, result.reason, result.events

Phases (docs/scenarios.md, "How a run uses the file"):

1. **preflight**: every service healthy; no residue (no toxic, every proxy enabled,
   nothing paused or down).
2. **steady_state**: the load starts (open loop, through the scenario's edge proxy with
   its Host header); after a warm-up, every ``steady_state`` probe must hold at one
   evaluation (within ``steady_timeout``), or the run stops before any fault.
3. **faults** / **symptoms** (together): the fault phase starts at t = 0; each fault
   applies at its ``at`` (a ``for`` undoes it at ``at + for``, whenever that falls);
   each probe of each symptom item must be seen holding once before the item's
   ``within``, counted from t = 0.
4. **mitigation**: once every fault is applied and every symptom seen, the runbook's
   ``runbook_steps`` run in order (``simctl.runbook.steps.run_step``); a failing step
   fails the run. Faults stay in place.
5. **recovery**: every recovery probe must hold at one evaluation before
   ``recovery.within``, counted from the end of mitigation (the probes' window reaches
   back to the start of mitigation: what the runbook's steps caused counts).
6. **rollback** (always, in ``finally``: failures, errors, Ctrl-C, SIGTERM): every
   applied fault not yet undone is undone, in reverse order; the load stops.
7. **residue**: no toxic, every proxy enabled, nothing paused or down; residue is a
   failure, and is cleaned up (what is down is restarted) so the next run starts clean.

``abort.when`` is evaluated from the first fault to the end of recovery: as soon as
one of its probes holds, the run stops (status ``aborted``) and rolls back.

Probes are evaluated every ``interval`` over a sliding window (simctl.scenario.probes).
The engine is synchronous and never prints: the caller's ``listener`` receives every
event (simctl.scenario.events). In the main thread, SIGINT and SIGTERM become
``Interrupted`` during the run (simctl.scenario.interrupts): the run is rolled back,
then ``Interrupted`` is raised with the result attached.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from simctl.backends.base import Backend
from simctl.errors import InvalidInput, SimctlError
from simctl.faults.client import ToxiproxyClient
from simctl.load.edges import edges_for, url_of
from simctl.runbook.parser import parse_runbook
from simctl.runbook.steps import StepResult, argv_for, find_step, run_step
from simctl.scenario import alert_watch, catalog, interrupts, symptom_timing
from simctl.scenario.actions import Actions, Applied
from simctl.scenario.describe import describe, undo
from simctl.scenario.events import ERROR, FAILED, OK, SKIPPED, Event, EventLog, Listener
from simctl.scenario.expressions import Probe
from simctl.scenario.interrupts import Interrupted
from simctl.scenario.looper import BackgroundLoop
from simctl.scenario.model import FaultBase, Scenario
from simctl.scenario.observe import Observer
from simctl.scenario.probes import Reading, Window, evaluate
from simctl.scenario.reset import clean_residue, find_residue
from simctl.scenario.traffic import LoadRunner, LoadSpec

PASSED = "passed"
FAILED_RUN = "failed"
ERROR_RUN = "error"
ABORTED = "aborted"
INTERRUPTED = "interrupted"
SKIPPED_RUN = "skipped"


@dataclass(frozen=True)
class EngineOptions:
    window: float = 5.0  # sliding window of the probes
    min_span: float = 1.0  # ratios and percentiles look back at least this far
    interval: float = 0.5  # between two evaluations
    warmup: float = 2.0  # load before the first steady-state evaluation
    steady_timeout: float = 20.0  # then the steady state must hold within this
    step_timeout: float = 120.0  # each command of a runbook step
    allow_shell: bool = False  # let runbook steps run non-simctl commands
    # A control experiment proves a scenario cannot rubber-stamp: "no-faults" runs it
    # without its faults (the symptoms must not appear), "no-mitigation" without its
    # runbook steps (recovery must not happen), "each-fault" / "each-step" without one
    # fault / one step (simctl.scenario.controls). Either way the run is expected to fail.
    control: str | None = None
    without_faults: frozenset[int] = frozenset()  # indexes in Scenario.timeline()
    without_steps: frozenset[str] = frozenset()  # runbook step ids


@dataclass
class SymptomCheck:
    item: int
    probe: Probe
    within: float
    seen_at: float | None = None  # seconds from t = 0
    last: Reading | None = None
    follows: int | None = None  # timeline index of the fault it is watched from
    throughout: float | None = None  # must hold at every evaluation for this long
    while_: int | None = None  # must hold at every evaluation while this fault is applied
    hold_since: float | None = None  # monotonic start of the current run of holds

    @property
    def mode(self) -> str:
        if self.throughout is not None:
            return f"throughout {self.throughout:g}s"
        return "while" if self.while_ is not None else "once"

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "probe": self.probe.text, "within": self.within,
                "mode": self.mode,
                "seen_at": None if self.seen_at is None else round(self.seen_at, 3),
                "last": None if self.last is None else self.last.describe()}


@dataclass
class ScenarioResult:
    scenario_id: str
    title: str
    seed: int
    timing: str
    start: float
    end: float = 0.0
    status: str = PASSED
    reason: str = ""
    events: list[Event] = field(default_factory=list)
    time_to_symptoms: float | None = None  # from t = 0 to the last symptom seen
    time_to_recovery: float | None = None  # from the end of mitigation to recovery
    symptoms: list[SymptomCheck] = field(default_factory=list)
    residue: list[str] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)
    runbook: str = ""
    notes: list[str] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)  # alert_watch.AlertCheck

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def phase(self, name: str) -> Event | None:
        return next((e for e in self.events if e.kind == "phase" and e.name == name), None)


class _Stop(Exception):
    """Ends the run early with a status and a reason (not an error of the engine)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def run_scenario(
    scenario: Scenario,
    backend: Backend,
    *,
    seed: int | None = None,
    timing: str | None = None,
    listener: Listener | None = None,
    options: EngineOptions | None = None,
    runbook: str | Path | None = None,
) -> ScenarioResult:
    """Run ``scenario`` on the running stack of ``backend``; see the module docstring.

    Returns the result (passed or not). Raises ``Interrupted`` (after rolling back) when
    SIGINT or SIGTERM arrived during the run, with the result as ``.result``.
    """
    run = _Run(scenario, backend, seed=seed, timing=timing, listener=listener,
               options=options or EngineOptions(), runbook=runbook)
    return run.execute()


class _Run:
    def __init__(self, scenario: Scenario, backend: Backend, *, seed: int | None,
                 timing: str | None, listener: Listener | None, options: EngineOptions,
                 runbook: str | Path | None) -> None:
        self.scenario = scenario
        self.backend = backend
        self.options = options
        self.seed = seed if seed is not None else (scenario.seed if scenario.seed is not None
                                                   else 0)
        state = backend.state()
        stack_timing = state.timing if state is not None else None
        self.timing = timing or stack_timing or scenario.timing
        if self.timing in ("fast", "heroku"):  # probes' ${timeouts...} values of this run
            self.scenario = scenario = scenario.with_timing(self.timing)
        self.runbook_path = Path(runbook) if runbook else catalog.runbook_path(scenario.runbook)
        self.log = EventLog(listener)
        self.result = ScenarioResult(scenario.id, scenario.title, self.seed, self.timing,
                                     start=self.log.origin, runbook=str(self.runbook_path))
        if stack_timing and stack_timing != self.timing:
            self.result.notes.append(f"the stack runs {stack_timing} timing, not {self.timing}")
        if scenario.timing != self.timing:
            self.result.notes.append(f"the scenario is written for {scenario.timing} timing; "
                                     f"it ran with {self.timing}")
        self.loop: BackgroundLoop | None = None
        self.load: LoadRunner | None = None
        self.observer: Observer | None = None
        self.client: ToxiproxyClient | None = None
        self.actions: Actions | None = None
        self.applied: list[Applied] = []
        self.t0: float | None = None  # monotonic start of the fault phase
        self.first_fault: float | None = None
        self.applied_at: dict[int, float] = {}  # timeline index -> monotonic time applied
        self.ended_at: dict[int, float] = {}  # timeline index -> undone by its `for`
        self.mitigation_start: float | None = None
        self.timeline: list[tuple[float, int, str, Any]] = []
        self._faults_event: Event | None = None
        self._faults_total = 0
        self._faults_done = 0
        self._step_future: concurrent.futures.Future[StepResult] | None = None
        self._step_argv: list[list[str]] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._alert_watch: alert_watch.AlertWatch | None = None
        self._reached: set[str] = set()

    # -- the run -----------------------------------------------------------------------

    def execute(self) -> ScenarioResult:
        r = self.result
        top = self.log.begin(self.scenario.id, "scenario", seed=self.seed, timing=self.timing,
                             title=self.scenario.title)
        interrupt: BaseException | None = None
        with interrupts.signals_as_exceptions():
            try:
                self._preflight()
                self._start_load()
                self._steady_state()
                self._alert_watch = alert_watch.start(self)
                self._faults_and_symptoms()
                self._alerts(alert_watch.check_fired, "fired")
                self._mitigation()
                self._recovery()
                self._alerts(alert_watch.check_resolved, "resolved")
            except _Stop as stop:
                r.status, r.reason = stop.status, stop.reason
            except KeyboardInterrupt as exc:
                interrupt = exc
                name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
                r.status, r.reason = INTERRUPTED, f"interrupted by {name}"
            except SimctlError as exc:
                r.status, r.reason = ERROR_RUN, " ".join(str(exc).split())
            except Exception as exc:  # a bug must still roll back and be reported
                r.status, r.reason = ERROR_RUN, f"{type(exc).__name__}: {exc}"
            finally:
                with interrupts.deferred():
                    try:
                        self._finish(interrupt)
                    except Exception as exc:  # never lose the result to a clean-up bug
                        if r.passed:
                            r.status = ERROR_RUN
                        r.reason = (r.reason + "; " if r.reason else "") + (
                            f"clean-up failed: {type(exc).__name__}: {exc}")
                    self.log.finish(top, OK if r.passed else (
                        ERROR if r.status in (ERROR_RUN, INTERRUPTED) else FAILED), r.reason)
                    r.end = time.time()
                    r.events = self.log.events
        late = interrupts.pending()
        if interrupt is not None:
            if not isinstance(interrupt, Interrupted):
                interrupt = Interrupted(interrupts.HANDLED[0])
            interrupt.result = r
            raise interrupt
        if late is not None:
            raise Interrupted(late, r)
        return r

    def _finish(self, interrupt: BaseException | None) -> None:
        r = self.result
        if self._alert_watch is not None:
            r.alerts = self._alert_watch.stop()
        note = r.reason or "stopped"
        for event in self.log.events:
            if event.end is None and event.kind != "scenario":
                self.log.finish(event, ERROR if interrupt or r.status == ERROR_RUN else FAILED,
                                note)
        for phase in ("preflight", "steady_state", "faults", "symptoms", "mitigation",
                      "recovery"):
            if phase not in self._reached:
                self.log.instant(phase, "phase", SKIPPED, f"not reached: {note}")
        self._rollback()
        self._residue_check()

    def _alerts(self, check: Any, what: str) -> None:
        """The scenario's alerts must fire with the symptoms and resolve after recovery."""
        if self._alert_watch is None:
            return
        failure = check(self, self._alert_watch)
        names = ", ".join(self.scenario.alerts)
        if failure:
            self.log.instant(names, "alert", FAILED, failure)
            raise _Stop(FAILED_RUN, failure)
        self.log.instant(names, "alert", OK, f"{names} {what}")

    # -- helpers -----------------------------------------------------------------------

    def _phase(self, name: str, **detail: Any) -> Event:
        self._reached.add(name)
        return self.log.begin(name, "phase", **detail)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def _observe(self) -> Any:
        assert self.observer is not None
        return self.observer.sample()

    def _window(self, now: float, phase_start: float) -> Window:
        return Window.at(now, phase_start, self.options.window, self.options.min_span)

    def _readings(self, probes: Sequence[Probe], obs: Any, phase_start: float) -> list[Reading]:
        window = self._window(obs.now, phase_start)
        return [evaluate(p, obs, window) for p in probes]

    def _check_abort(self, obs: Any) -> None:
        if not self.scenario.abort.when or self.first_fault is None:
            return
        for reading in self._readings(self.scenario.abort.when, obs, self.first_fault):
            if reading.holds:
                self.log.instant(reading.probe.text, "abort", FAILED, reading.describe())
                raise _Stop(ABORTED, f"abort condition held: {reading.describe()}")

    # -- preflight ---------------------------------------------------------------------

    def _preflight(self) -> None:
        event = self._phase("preflight")
        state = self.backend.state()
        if state is None:
            self.log.finish(event, FAILED, "the stack is not up")
            raise _Stop(ERROR_RUN, f"preflight: project {self.backend.project!r} is not up")
        self.client = ToxiproxyClient(state.toxiproxy_url, timeout=5)
        problems = []
        for row in self.backend.status():
            if not row.health.ok:
                problems.append(f"{row.name} is {row.health.status} {row.health.reason}".strip())
        try:
            residue = find_residue(self.backend, self.client)
        except SimctlError as exc:
            residue = [f"cannot check the fault plane: {exc}"]
        problems += [f"residue: {item}" for item in residue]
        proxies = self.client.proxies() if not residue else {}
        if not residue:
            try:
                edges_for(self.scenario.load.targets, proxies, state)
            except InvalidInput as exc:
                problems.append(f"the load: {exc}")
        if problems:
            self.log.finish(event, FAILED, "\n".join(problems))
            raise _Stop(ERROR_RUN, "preflight: " + "; ".join(problems))
        self.actions = Actions(self.backend, self.client, None)
        self.log.finish(event, OK, f"{len(state.processes)} services healthy, no residue")

    # -- load and steady state ---------------------------------------------------------

    def _load_spec(self) -> LoadSpec:
        assert self.client is not None
        load = self.scenario.load
        proxies = self.client.proxies()
        edges = edges_for(load.targets, proxies, self.backend.state())
        urls = [url_of(edge, proxies, load.path) for edge in edges]
        targets = tuple(zip(load.targets, urls, strict=True)) if load.routers else ()
        logs_url = None
        if load.logs > 0:
            if "dyno-logs" in proxies:
                lhost, lport = proxies["dyno-logs"].listen.rsplit(":", 1)
                lhost = "127.0.0.1" if lhost in ("0.0.0.0", "", "[::]") else lhost
                logs_url = f"http://{lhost}:{lport}/logs"
            else:
                logs_url = f"{self.backend.url_of('logplex')}/logs"
        run_id = f"{self.scenario.id[:40]}-s{self.seed}"
        return LoadSpec(urls[0], load.host, load.http, logs_url, load.logs, run_id,
                        keepalive=load.keepalive, targets=targets)

    def _start_load(self) -> None:
        spec = self._load_spec()
        self.loop = BackgroundLoop()
        self.load = LoadRunner(self.loop, spec, push_url=alert_watch.monitor_url(self.backend))
        assert self.actions is not None
        self.actions.load = self.load
        self.actions.loop = self.loop
        every = list(self.scenario.steady_state) + list(self.scenario.recovery_expect)
        every += [p for s in self.scenario.symptoms for p in s.expect]
        every += list(self.scenario.abort.when)
        self.observer = Observer(self.backend, self.loop, every, self.load,
                                 window=self.options.window)
        self.observer.start()
        event = self.log.begin("start load", "load", url=spec.url, host=spec.host,
                               http_rate=spec.http_rate, logs_rate=spec.logs_rate,
                               run_id=spec.run_id)
        self.load.start()
        self.log.finish(event, OK, f"http {spec.http_rate:g}/s to {spec.url} (Host "
                                   f"{spec.host}), logs {spec.logs_rate:g}/s")

    def _steady_state(self) -> None:
        assert self.load is not None
        assert self.load.started is not None
        event = self._phase("steady_state")
        start = self.load.started
        self._sleep(start + self.options.warmup - time.monotonic())
        probes = self.scenario.steady_state
        deadline = start + self.options.warmup + self.options.steady_timeout
        readings: list[Reading] = []
        while True:
            tick = time.monotonic()
            obs = self._observe()
            readings = self._readings(probes, obs, start)
            if all(r.holds for r in readings):
                self._symptoms_not_yet(obs, start, event)
                self.log.finish(event, OK, "\n".join(r.describe() for r in readings)
                                or "no steady-state probes")
                return
            if obs.now >= deadline:
                failing = [r.describe() for r in readings if not r.holds]
                self.log.finish(event, FAILED, "\n".join(failing))
                raise _Stop(FAILED_RUN, "steady state did not hold within "
                                        f"{self.options.steady_timeout:g}s: " + "; ".join(failing))
            self._sleep(tick + self.options.interval - time.monotonic())

    def _symptoms_not_yet(self, obs: Any, start: float, event: Event) -> None:
        """A symptom that already holds before any fault cannot show the incident
        (docs/scenarios.md, "When a symptom is seen"): fail, unless its item says
        ``baseline_ok: true``."""
        probes = [p for item in self.scenario.symptoms if not item.baseline_ok
                  for p in item.expect]
        early = [r for r in self._readings(probes, obs, start) if r.holds]
        if early:
            lines = [f"symptom already holds in steady state: {r.describe()}" for r in early]
            self.log.finish(event, FAILED, "\n".join(lines))
            raise _Stop(FAILED_RUN, "; ".join(lines) + " (a guard that may hold before the "
                                    "fault needs 'baseline_ok: true')")

    # -- faults and symptoms -----------------------------------------------------------

    def _symptom_checks(self) -> list[SymptomCheck]:
        timeline = self.scenario.timeline()
        checks: list[SymptomCheck] = []
        for i, item in enumerate(self.scenario.symptoms):
            follows = symptom_timing.followed_fault(self.scenario, item)
            during = None
            if item.while_ is not None:
                fault = self.scenario.fault_named(item.while_)
                during = next((k for k, f in enumerate(timeline) if f is fault), None)
            checks.extend(SymptomCheck(i, probe, item.within, follows=follows,
                                       throughout=item.throughout, while_=during)
                          for probe in item.expect)
        return checks

    def _watch_from(self, check: SymptomCheck, now: float) -> float | None:
        """When the fault the check follows was applied; for a fault a control run left
        out, when it would have been (so the control still watches for the symptom)."""
        assert self.t0 is not None
        index = check.follows
        if index is None:
            return self.t0
        if index in self.applied_at:
            return self.applied_at[index]
        if index in self.options.without_faults or self.options.control == "no-faults":
            due = self.t0 + self.scenario.timeline()[index].at
            return due if now >= due else None
        return None

    def _while_over(self, check: SymptomCheck, now: float, others_seen: bool) -> bool:
        """The fault of a `while` check is over: undone by its `for` (or due to be, in a
        control run without it), or, without `for`, every other symptom was seen."""
        assert self.t0 is not None
        assert check.while_ is not None
        fault = self.scenario.timeline()[check.while_]
        if fault.for_ is None:
            return others_seen
        if check.while_ in self.ended_at:
            return True
        return check.while_ not in self.applied_at and now >= self.t0 + fault.at + fault.for_

    def _judge(self, check: SymptomCheck, obs: Any, elapsed: float, others_seen: bool) -> None:
        """One evaluation of one symptom; sets ``seen_at``, or raises when a `while`
        symptom stops holding."""
        start = self._watch_from(check, obs.now)
        if start is None:
            return
        check.last = evaluate(check.probe, obs, self._window(obs.now, start))
        if check.throughout is None and check.while_ is None:
            seen = check.last.holds and elapsed <= check.within
        elif not check.last.holds:
            check.hold_since = None
            if check.while_ is not None:
                name = describe(self.scenario.timeline()[check.while_])
                raise _Stop(FAILED_RUN, f"symptom stopped holding at t={elapsed:.1f}s while "
                                        f"'{name}' was applied: {check.last.describe()}")
            seen = False
        else:
            check.hold_since = obs.now if check.hold_since is None else check.hold_since
            held = obs.now - check.hold_since
            if check.throughout is not None:
                seen = held >= check.throughout and elapsed <= check.within
            else:
                seen = (held >= self.options.min_span and elapsed <= check.within
                        and self._while_over(check, obs.now, others_seen))
        if seen:
            check.seen_at = elapsed
            self.log.instant(check.probe.text, "symptom", OK, check.last.describe(),
                             item=check.item, seen_at=round(elapsed, 3), mode=check.mode)

    def _faults_and_symptoms(self) -> None:
        self.t0 = t0 = time.monotonic()
        left_out = self.options.without_faults
        faults = [] if self.options.control == "no-faults" else [
            (i, f) for i, f in enumerate(self.scenario.timeline()) if i not in left_out]
        self._faults_total = len(faults)
        self.timeline = [(t0 + f.at, i, "apply", f) for i, f in faults]
        self._faults_event = self._phase("faults", count=len(faults))
        symptoms_event = self._phase("symptoms")
        checks = self._symptom_checks()
        self.result.symptoms = checks
        while True:
            tick = time.monotonic()
            self._advance_timeline()
            obs = self._observe()
            self._advance_timeline()
            self._check_abort(obs)
            elapsed = obs.now - t0
            others_seen = all(c.seen_at is not None for c in checks if c.while_ is None or
                              self.scenario.timeline()[c.while_].for_ is not None)
            try:
                for check in checks:
                    if check.seen_at is None:
                        self._judge(check, obs, elapsed, others_seen)
            except _Stop as stop:
                self.log.finish(symptoms_event, FAILED, stop.reason)
                raise
            missed = [c for c in checks if c.seen_at is None and elapsed > c.within]
            if missed:
                lines = [f"{c.probe.text} not seen{_held(c)} within {c.within:g}s (last: "
                         f"{c.last.describe() if c.last else 'never evaluated'})" for c in missed]
                self.log.finish(symptoms_event, FAILED, "\n".join(lines))
                raise _Stop(FAILED_RUN, "symptom not reproduced: " + "; ".join(lines))
            if all(c.seen_at is not None for c in checks):
                if self.log.current(symptoms_event).end is None:
                    last = max((c.seen_at or 0.0) for c in checks) if checks else 0.0
                    self.result.time_to_symptoms = last
                    self.log.finish(symptoms_event, OK, f"{len(checks)} symptom probe(s) seen; "
                                                        f"the last at t={last:.1f}s")
                if self._faults_done >= self._faults_total:
                    return
            self._sleep(min(tick + self.options.interval, self._next_due()) - time.monotonic())

    def _next_due(self) -> float:
        return min((due for due, *_ in self.timeline), default=float("inf"))

    def _advance_timeline(self) -> None:
        """Apply (or undo) what is due; a failure of either ends the run as an error."""
        assert self.t0 is not None
        assert self.actions is not None
        while self.timeline:
            self.timeline.sort(key=lambda item: (item[0], item[1]))
            due, order, what, payload = self.timeline[0]
            if due > time.monotonic():
                return
            self.timeline.pop(0)
            if what == "apply":
                self._apply(payload, order)
            else:
                self._undo(payload, reason="for")
                self.ended_at[order] = time.monotonic()

    def _apply(self, fault: FaultBase, order: int) -> None:
        """Plan (read the state to restore), record the undo, then act: a signal in the
        middle of the action still finds the undo in ``self.applied``. An action that
        fails with an error changed nothing, and is forgotten."""
        assert self.t0 is not None
        assert self.actions is not None
        event = self.log.begin(describe(fault), "fault", index=order, at=fault.at,
                               t=round(time.monotonic() - self.t0, 3))
        applied = None
        try:
            plan = self.actions.plan(fault)
            applied = Applied(fault, "", plan.undo)
            self.applied.append(applied)
            applied.output = plan.do()
        except Exception as exc:
            if applied is not None:
                self.applied.remove(applied)
            self.log.finish(event, ERROR, str(exc))
            raise _Stop(ERROR_RUN, f"fault '{describe(fault)}' could not be applied: "
                                   f"{' '.join(str(exc).split())}") from None
        if self.first_fault is None:
            self.first_fault = time.monotonic()
        self.applied_at[order] = time.monotonic()
        self.log.finish(event, OK, applied.output)
        if fault.for_ is not None and applied.undo is not None:
            self.timeline.append((self.t0 + fault.at + fault.for_, order, "undo", applied))
        self._faults_done += 1
        if self._faults_done >= self._faults_total and self._faults_event is not None:
            self.log.finish(self._faults_event, OK, f"{self._faults_total} fault(s) applied")

    def _undo(self, applied: Applied, reason: str) -> bool:
        if applied.undone or applied.undo is None:
            return True
        t = None if self.t0 is None else round(time.monotonic() - self.t0, 3)
        event = self.log.begin(undo(applied.fault), "undo", reason=reason, t=t,
                               fault=describe(applied.fault))
        applied.undone = True
        try:
            output = applied.undo()
        except Exception as exc:
            applied.undone = False
            self.log.finish(event, ERROR, str(exc))
            if reason == "for":
                raise _Stop(ERROR_RUN, f"could not undo '{describe(applied.fault)}': "
                                       f"{' '.join(str(exc).split())}") from None
            return False
        self.log.finish(event, OK, output)
        return True

    # -- mitigation --------------------------------------------------------------------

    def _mitigation(self) -> None:
        self.mitigation_start = time.monotonic()
        event = self._phase("mitigation")
        steps = self.scenario.mitigation.runbook_steps
        if self.options.control == "no-mitigation":
            self.log.finish(event, OK, "control run: the runbook's steps are left out")
            return
        if self.options.without_steps:
            steps = [s for s in steps if s not in self.options.without_steps]
            self.log.instant("control", "phase", OK, "control run: left out "
                             + ", ".join(sorted(self.options.without_steps)))
        if not steps:
            self.log.finish(event, OK, "no runbook steps")
            return
        runbook = parse_runbook(self.runbook_path)
        state = self.backend.require_state()
        env = {"SIMCTL_PROJECT": self.backend.project, "TOXIPROXY_URL": state.toxiproxy_url}
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "simctl-step")
        for step_id in steps:
            step_event = self.log.begin(step_id, "step", runbook=str(self.runbook_path))
            try:
                step = find_step(runbook, step_id)
                self._step_argv = [argv_for(c, self.options.allow_shell) for c in step.commands]
            except InvalidInput as exc:
                self.log.finish(step_event, FAILED, str(exc))
                self.log.finish(event, FAILED, f"step {step_id}: {exc}")
                raise _Stop(FAILED_RUN, f"runbook step {step_id}: {exc}") from None
            self._step_future = self._executor.submit(
                run_step, runbook, step_id, self.options.allow_shell, env,
                timeout=self.options.step_timeout)
            while not self._step_future.done():
                tick = time.monotonic()
                self._advance_timeline()
                if self.scenario.abort.when:
                    self._check_abort(self._observe())
                remaining = tick + self.options.interval - time.monotonic()
                concurrent.futures.wait([self._step_future], timeout=max(0.01, remaining))
            try:
                outcome = self._step_future.result()
            except InvalidInput as exc:
                self.log.finish(step_event, FAILED, str(exc))
                self.log.finish(event, FAILED, f"step {step_id}: {exc}")
                raise _Stop(FAILED_RUN, f"runbook step {step_id}: {exc}") from None
            finally:
                self._step_future = None
            output = _step_output(outcome)
            if not outcome.ok:
                failed = outcome.failed
                why = (f"'{failed.text}' timed out" if failed and failed.timed_out else
                       f"'{failed.text}' exited {failed.returncode}" if failed else "failed")
                self.log.finish(step_event, FAILED, output, commands=len(outcome.commands))
                self.log.finish(event, FAILED, f"step {step_id}: {why}")
                raise _Stop(FAILED_RUN, f"runbook step {step_id} failed: {why}")
            self.log.finish(step_event, OK, output, commands=len(outcome.commands))
        self.log.finish(event, OK, f"{len(steps)} runbook step(s) ran")

    # -- recovery ----------------------------------------------------------------------

    def _recovery(self) -> None:
        """The deadline runs from the end of mitigation; the probes' window is clamped to
        its *start*, so what the runbook's steps caused (a loss report logged once when a
        link comes back) counts, and failures during the steps roll out of the window
        instead of being skipped."""
        event = self._phase("recovery")
        start = time.monotonic()
        since = self.mitigation_start if self.mitigation_start is not None else start
        probes = self.scenario.recovery_expect
        deadline = start + self.scenario.recovery.within
        while True:
            tick = time.monotonic()
            self._advance_timeline()
            obs = self._observe()
            self._check_abort(obs)
            readings = self._readings(probes, obs, since)
            # Absence ("no drops", "count == 0") over an almost empty window proves
            # nothing: recovery needs at least min_span of observation since mitigation
            # began (a control run without mitigation showed such a vacuous pass).
            observed = obs.now - since >= self.options.min_span
            if observed and all(r.holds for r in readings):
                self.result.time_to_recovery = obs.now - start
                self.log.finish(event, OK, "\n".join(r.describe() for r in readings)
                                or "no recovery probes", after=round(obs.now - start, 3))
                return
            if obs.now >= deadline:
                failing = [r.describe() for r in readings if not r.holds]
                self.log.finish(event, FAILED, "\n".join(failing))
                raise _Stop(FAILED_RUN, f"not recovered within "
                                        f"{self.scenario.recovery.within:g}s after mitigation: "
                            + "; ".join(failing))
            self._sleep(tick + self.options.interval - time.monotonic())

    # -- rollback and residue ----------------------------------------------------------

    def _stop_step(self) -> None:
        """A runbook step still running (an interrupted run): end its commands."""
        future = self._step_future
        if future is None or future.done():
            return
        wanted = [list(argv) for argv in self._step_argv]
        try:
            children = psutil.Process().children()
        except psutil.Error:
            children = []
        for child in children:
            try:
                if child.cmdline() in wanted:
                    child.terminate()
            except psutil.Error:
                pass
        try:
            future.result(timeout=10)
        except Exception:
            pass

    def _rollback(self) -> None:
        event = self._phase("rollback")
        errors = []
        self._stop_step()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        for applied in reversed(self.applied):
            if not self._undo(applied, reason="rollback"):
                errors.append(describe(applied.fault))
        if self.load is not None:
            stop = self.log.begin("stop load", "load")
            try:
                self.load.stop()
                self.result.load = self.load.summary()
                self.log.finish(stop, OK, _load_line(self.result.load))
            except Exception as exc:
                self.log.finish(stop, ERROR, str(exc))
        if self.observer is not None:
            self.observer.stop()
        if self.loop is not None:
            self.loop.close()
        undone = sum(1 for a in self.applied if a.undone)
        if errors:
            self.log.finish(event, ERROR, "could not undo: " + "; ".join(errors))
            if self.result.status == PASSED:
                self.result.status = ERROR_RUN
                self.result.reason = "rollback could not undo: " + "; ".join(errors)
        else:
            self.log.finish(event, OK, f"{undone} fault(s) undone, load stopped")

    def _residue_check(self) -> None:
        event = self._phase("residue")
        r = self.result
        try:
            found = find_residue(self.backend, self.client)
        except Exception as exc:
            self.log.finish(event, ERROR, f"cannot check for residue: {exc}")
            if r.status == PASSED:
                r.status, r.reason = ERROR_RUN, f"cannot check for residue: {exc}"
            return
        if not found:
            self.log.finish(event, OK, "no toxic, every proxy enabled, every service running")
            return
        r.residue = found
        try:
            cleaned = clean_residue(self.backend, self.client)
        except Exception as exc:
            cleaned = [f"clean-up failed: {exc}"]
        self.log.finish(event, FAILED, "\n".join(found + [f"cleaned: {c}" for c in cleaned]))
        if r.status == PASSED:
            r.status, r.reason = FAILED_RUN, "residue after rollback: " + "; ".join(found)


def _held(check: SymptomCheck) -> str:
    return "" if check.mode == "once" else f" holding {check.mode}"


def _step_output(outcome: StepResult) -> str:
    parts = []
    for command in outcome.commands:
        status = "timed out" if command.timed_out else f"exit {command.returncode}"
        parts.append(f"$ {command.text}  ({status}, {command.duration:.1f}s)")
        for stream in (command.stdout, command.stderr):
            if stream.strip():
                parts.append(stream.rstrip())
    for skipped in outcome.not_run:
        parts.append(f"(not run) {skipped.text}")
    return "\n".join(parts)


def _load_line(summary: dict[str, Any]) -> str:
    http = summary.get("http", {})
    ratio = http.get("success_ratio")
    shown = "-" if ratio is None else f"{ratio:.4f}"
    codes = ", ".join(f"{k}={v}" for k, v in http.get("by_code", {}).items()) or "none"
    return (f"{http.get('finished', 0)} requests, success ratio {shown}, router codes: {codes}")
