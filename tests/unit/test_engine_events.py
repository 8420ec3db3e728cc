"""The engine's phases, events and rollback, on a simulated stack (no sockets, no processes).

A fake fault plane holds toxics; a fake observer turns them into HTTP outcomes (a toxic on
web.1 makes some requests H12); a fake runbook step heals. Everything else is the real
engine: timeline, symptom deadlines, mitigation, recovery, abort, rollback, residue,
signals.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from simctl.errors import ToxiproxyError
from simctl.faults.client import Proxy, Toxic
from simctl.runbook.steps import CommandResult, StepResult
from simctl.scenario import engine as engine_module
from simctl.scenario.engine import EngineOptions, run_scenario
from simctl.scenario.events import ERROR, OK, EventLog, clip
from simctl.scenario.interrupts import Interrupted
from simctl.scenario.model import Scenario
from simctl.scenario.probes import Observation
from simctl.scenario.traffic import RESPONSE, Outcome

RUNBOOK = Path(__file__).parents[1] / "fixtures" / "engine" / "runbooks" / "engine-slow-dyno.md"
FAST = EngineOptions(window=0.6, min_span=0.1, interval=0.03, warmup=0.05, steady_timeout=1.0,
                     step_timeout=5.0)
PHASES = ["preflight", "steady_state", "faults", "symptoms", "mitigation", "recovery",
          "rollback", "residue"]


class FakePlane:
    """A fault plane: proxies with toxics; hooks let a test act when something happens."""

    def __init__(self) -> None:
        self.names = ["edge.1", "web.1", "web.2", "drain.main"]
        self.toxics: dict[str, dict[str, Toxic]] = {n: {} for n in self.names}
        self.enabled = dict.fromkeys(self.names, True)
        self.on_add: Any = None
        self.on_remove: Any = None
        self.fail_add = False
        self.log: list[str] = []

    def proxies(self) -> dict[str, Proxy]:
        return {n: Proxy(n, f"127.0.0.1:{21000 + i}", "x:1", self.enabled[n],
                         list(self.toxics[n].values())) for i, n in enumerate(self.names)}

    def proxy(self, name: str) -> Proxy:
        return self.proxies()[name]

    def add_toxic(self, proxy: str, type: str, stream: str = "downstream",
                  toxicity: float = 1.0, attributes: Any = None, name: str | None = None) -> Toxic:
        if self.fail_add:
            raise ToxiproxyError(500, "boom", "POST", f"/proxies/{proxy}/toxics")
        toxic = Toxic(name or f"{type}_{stream}", type, stream, toxicity, dict(attributes or {}))
        self.toxics[proxy][toxic.name] = toxic
        self.log.append(f"add {proxy} {toxic.name}")
        if self.on_add:
            self.on_add()
        return toxic

    def remove_toxic(self, proxy: str, name: str) -> None:
        if self.on_remove:
            self.on_remove()
        if name not in self.toxics[proxy]:
            raise ToxiproxyError(404, "toxic not found", "DELETE", f"/proxies/{proxy}/toxics")
        del self.toxics[proxy][name]
        self.log.append(f"remove {proxy} {name}")

    def update_proxy(self, name: str, enabled: bool | None = None, **_: Any) -> Proxy:
        if enabled is not None:
            self.enabled[name] = enabled
        return self.proxy(name)

    def reset(self) -> None:
        self.log.append("reset")
        for name in self.names:
            self.toxics[name].clear()
            self.enabled[name] = True


class FakeBackend:
    project = "fake"

    def __init__(self) -> None:
        self._state = SimpleNamespace(toxiproxy_url="http://127.0.0.1:1", timing="fast",
                                      processes={"router-1": SimpleNamespace(paused=False,
                                                                             role="router")})

    def state(self) -> Any:
        return self._state

    require_state = state

    def status(self) -> list[Any]:
        return [SimpleNamespace(name="router-1", health=SimpleNamespace(ok=True, status="ok",
                                                                        reason=""))]

    def paused_or_down(self) -> list[str]:
        return []


class FakeLoop:
    closed = False

    def close(self) -> None:
        self.closed = True


class FakeLoad:
    def __init__(self, loop: Any, spec: Any) -> None:
        self.spec = spec
        self.started: float | None = None
        self.stopped = False
        self.http_rate = spec.http_rate
        self.logs_rate = spec.logs_rate

    def start(self) -> None:
        self.started = time.monotonic()

    def set_rates(self, http: float | None = None, logs: float | None = None) -> None:
        self.http_rate = http if http is not None else self.http_rate

    def stop(self) -> None:
        self.stopped = True

    def summary(self) -> dict[str, Any]:
        return {"http": {"finished": 0}}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    plane = FakePlane()
    state = SimpleNamespace(plane=plane, loads=[], steps=[], step_ok=True, step_heals=True)

    class FakeObserver:
        def __init__(self, backend: Any, loop: Any, probes: Any, load: Any,
                     **options: Any) -> None:
            self.outcomes: list[Outcome] = []

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

        def sample(self) -> Observation:
            now = time.monotonic()
            slow = bool(plane.toxics["web.1"])
            for i in range(6):
                bad = slow and i % 3 == 0
                self.outcomes.append(Outcome(now, RESPONSE, 503 if bad else 200,
                                             "H12" if bad else None, 5.0))
            return Observation(now=now, outcomes=list(self.outcomes))

    def fake_load(loop: Any, spec: Any, push_url: str | None = None) -> FakeLoad:
        load = FakeLoad(loop, spec)
        state.loads.append(load)
        return load

    def fake_run_step(runbook: Any, step_id: str, allow_shell: bool = False, env: Any = None,
                      *, timeout: float | None = None, cwd: Any = None) -> StepResult:
        state.steps.append((step_id, dict(env or {})))
        if state.step_heals:
            for proxy in plane.names:
                plane.toxics[proxy].clear()
        code = 0 if state.step_ok else 1
        result = StepResult(Path(runbook.path), step_id, "Mitigate")
        result.commands.append(CommandResult(1, f"simctl heal web.1 ({step_id})",
                                             ("simctl",), code, "healed\n", "", 0.01))
        return result

    monkeypatch.setattr(engine_module, "ToxiproxyClient", lambda *a, **k: plane)
    monkeypatch.setattr(engine_module, "BackgroundLoop", FakeLoop)
    monkeypatch.setattr(engine_module, "LoadRunner", fake_load)
    monkeypatch.setattr(engine_module, "Observer", FakeObserver)
    monkeypatch.setattr(engine_module, "run_step", fake_run_step)
    return state


def scenario(**changes: Any) -> Scenario:
    data: dict[str, Any] = {
        "id": "unit-slow", "title": "unit", "runbook": "runbooks/engine-slow-dyno.md",
        "difficulty": 1,
        "steady_state": ["http.success_ratio >= 0.99"],
        "faults": [{"at": "50ms", "toxic": {"proxy": "web.1", "type": "latency",
                                            "attributes": {"latency": 5000}}}],
        "symptoms": [{"within": "1s", "expect": ['http.count{code="H12"} > 0']}],
        "mitigation": {"runbook_steps": ["heal-web-1"]},
        "recovery": {"within": "2s"},
        "seed": 5,
    }
    data.update(changes)
    return Scenario.model_validate(data)


def run(s: Scenario, **kwargs: Any) -> Any:
    kwargs.setdefault("options", FAST)
    return run_scenario(s, FakeBackend(), runbook=RUNBOOK, **kwargs)


def phases(result: Any) -> list[tuple[str, str]]:
    return [(e.name, e.status) for e in result.events if e.kind == "phase"]


# -- EventLog ------------------------------------------------------------------------------


def test_event_log_numbers_events_in_the_order_they_began() -> None:
    seen: list[tuple[str, str]] = []
    log = EventLog(lambda e: seen.append((e.name, e.status)))
    a = log.begin("a", "phase")
    b = log.begin("b", "fault")
    log.finish(b, OK, "done")
    log.instant("c", "symptom")
    log.finish(a, ERROR, "x" * 5000)
    assert [e.name for e in log.events] == ["a", "b", "c"]
    assert [e.seq for e in log.events] == [0, 1, 2]
    assert seen == [("a", "running"), ("b", "running"), ("b", "ok"), ("c", "ok"), ("a", "error")]
    first = log.events[0]
    assert first.duration is not None
    assert len(first.output) < 4100
    assert first.output.startswith("[1000 characters cut]")


def test_a_listener_that_raises_does_not_break_the_log() -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("display bug")

    log = EventLog(broken)
    log.finish(log.begin("a", "phase"), OK)
    assert log.events[0].status == OK


def test_finish_rejects_unknown_statuses() -> None:
    log = EventLog()
    with pytest.raises(ValueError, match="unknown event status"):
        log.finish(log.begin("a", "phase"), "great")


def test_clip_keeps_the_end() -> None:
    assert clip("abc\n") == "abc"
    assert clip("0123456789", 4) == "[6 characters cut]\n6789"


# -- whole runs ----------------------------------------------------------------------------


def test_a_passing_run_goes_through_every_phase_in_order(world: SimpleNamespace) -> None:
    events: list[Any] = []
    result = run(scenario(), listener=events.append)
    assert result.passed, result.reason
    assert phases(result) == [(p, "ok") for p in PHASES]
    kinds = [(e.kind, e.name) for e in result.events]
    order = [k for k in kinds if k[0] in ("fault", "symptom", "step", "undo", "load")]
    assert order == [
        ("load", "start load"),
        ("fault", "toxic latency downstream latency=5000 on web.1"),
        ("symptom", 'http.count{code="H12"} > 0'),
        ("step", "heal-web-1"),
        ("undo", "remove toxic latency_downstream from web.1"),
        ("load", "stop load"),
    ]
    undo = next(e for e in result.events if e.kind == "undo")
    assert "already removed" in undo.output  # the runbook healed it first
    # the listener saw every event begin before it ended, and the scenario last
    running = [e.seq for e in events if e.end is None]
    finished = [e.seq for e in events if e.end is not None]
    assert sorted(running) == running
    assert set(finished) == {e.seq for e in result.events}
    assert events[-1].kind == "scenario"
    assert events[-1].status == "ok"
    assert result.time_to_symptoms is not None
    assert result.time_to_recovery is not None
    assert world.loads[0].stopped
    step_env = world.steps[0][1]
    assert step_env["SIMCTL_PROJECT"] == "fake"
    assert result.seed == 5


def test_seed_and_timing_are_recorded(world: SimpleNamespace) -> None:
    result = run(scenario(), seed=42, timing="heroku")
    assert (result.seed, result.timing) == (42, "heroku")
    assert any("heroku" in note for note in result.notes)
    assert world.loads[0].spec.run_id.endswith("-s42")


def test_a_symptom_not_seen_in_time_fails_and_rolls_back(world: SimpleNamespace) -> None:
    s = scenario(symptoms=[{"within": "300ms", "expect": ['http.count{code="H10"} > 0']}])
    result = run(s)
    assert result.status == "failed"
    assert "not seen within 0.3s" in result.reason
    got = dict(phases(result))
    assert got["symptoms"] == "failed"
    assert got["mitigation"] == "skipped"
    assert got["recovery"] == "skipped"
    assert got["rollback"] == "ok"
    assert got["residue"] == "ok"
    assert world.plane.toxics["web.1"] == {}
    assert world.steps == []


def test_a_failing_runbook_step_fails_the_run(world: SimpleNamespace) -> None:
    world.step_ok = False
    world.step_heals = False
    result = run(scenario())
    assert result.status == "failed"
    assert "runbook step heal-web-1 failed" in result.reason
    got = dict(phases(result))
    assert (got["mitigation"], got["recovery"], got["rollback"]) == ("failed", "skipped", "ok")
    step = next(e for e in result.events if e.kind == "step")
    assert step.status == "failed"
    assert "exit 1" in step.output
    assert world.plane.toxics["web.1"] == {}  # rollback removed it


def test_without_mitigation_recovery_fails(world: SimpleNamespace) -> None:
    result = run(scenario(mitigation={"runbook_steps": []}, recovery={"within": "300ms"}))
    assert result.status == "failed"
    assert result.reason.startswith("not recovered within 0.3s")
    assert "http.success_ratio >= 0.99" in result.reason
    assert dict(phases(result))["recovery"] == "failed"
    assert world.plane.toxics["web.1"] == {}


def test_an_abort_condition_stops_the_run(world: SimpleNamespace) -> None:
    result = run(scenario(abort={"when": ["http.success_ratio < 0.9"]},
                          symptoms=[{"within": "2s", "expect": ['http.count{code="H12"} > 50']}]))
    assert result.status == "aborted"
    assert "abort condition held: http.success_ratio < 0.9" in result.reason
    assert any(e.kind == "abort" for e in result.events)
    assert world.plane.toxics["web.1"] == {}


def test_a_fault_with_for_is_undone_on_the_timeline_not_again_in_rollback(
        world: SimpleNamespace) -> None:
    s = scenario(faults=[{"at": "0s", "for": "200ms",
                          "toxic": {"proxy": "web.1", "type": "latency",
                                    "attributes": {"latency": 5000}}}],
                 mitigation={"runbook_steps": []})
    world.step_heals = False
    result = run(s)
    assert result.passed, result.reason
    undos = [e for e in result.events if e.kind == "undo"]
    assert [e.detail["reason"] for e in undos] == ["for"]
    assert undos[0].detail["t"] >= 0.2
    assert world.plane.log == ["add web.1 latency_downstream", "remove web.1 latency_downstream"]


def test_faults_apply_in_time_order_and_roll_back_in_reverse(world: SimpleNamespace) -> None:
    s = scenario(faults=[
        {"at": "100ms", "toxic": {"proxy": "web.2", "type": "latency", "name": "second"}},
        {"at": "0s", "toxic": {"proxy": "web.1", "type": "latency", "name": "first"}},
        {"at": "100ms", "proxy": {"name": "drain.main"}},
    ], mitigation={"runbook_steps": []}, recovery={"within": "200ms"})
    result = run(s)
    assert result.status == "failed"  # no mitigation: recovery cannot hold
    faults = [e.name for e in result.events if e.kind == "fault"]
    assert faults == ["toxic latency downstream on web.1 as first",
                      "toxic latency downstream on web.2 as second", "disable proxy drain.main"]
    undos = [e.name for e in result.events if e.kind == "undo"]
    assert undos == ["restore the previous state", "remove toxic second from web.2",
                     "remove toxic first from web.1"]
    assert world.plane.enabled["drain.main"] is True


def test_an_action_that_fails_is_an_error_and_still_rolls_back(world: SimpleNamespace) -> None:
    world.plane.fail_add = True
    result = run(scenario())
    assert result.status == "error"
    assert "could not be applied" in result.reason
    fault = next(e for e in result.events if e.kind == "fault")
    assert fault.status == "error"
    got = dict(phases(result))
    assert (got["rollback"], got["residue"]) == ("ok", "ok")


def test_preflight_refuses_a_stack_with_residue(world: SimpleNamespace) -> None:
    world.plane.toxics["web.2"]["left"] = Toxic("left", "latency", "downstream", 1.0)
    result = run(scenario())
    assert result.status == "error"
    assert "residue: toxic left (latency) on proxy web.2" in result.reason
    assert world.loads == []  # nothing started
    got = dict(phases(result))
    assert got["preflight"] == "failed"
    assert got["steady_state"] == "skipped"


def test_residue_after_rollback_fails_the_run_and_is_cleaned(world: SimpleNamespace) -> None:
    def step_leaves_a_toxic(*args: Any, **kwargs: Any) -> StepResult:
        world.plane.toxics["web.1"].clear()
        world.plane.toxics["web.2"]["stray"] = Toxic("stray", "timeout", "downstream", 1.0)
        result = StepResult(RUNBOOK, "heal-web-1", "Mitigate")
        result.commands.append(CommandResult(1, "simctl x", ("simctl",), 0, "", "", 0.0))
        return result

    engine_module.run_step = step_leaves_a_toxic  # undone by monkeypatch at teardown
    result = run(scenario())
    assert result.status == "failed"
    assert result.reason == "residue after rollback: toxic stray (timeout) on proxy web.2"
    assert result.residue == ["toxic stray (timeout) on proxy web.2"]
    assert dict(phases(result))["residue"] == "failed"
    assert world.plane.toxics["web.2"] == {}  # cleaned for the next run


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_faults_rolls_back_then_raises(world: SimpleNamespace, signum: int,
                                                          code: int) -> None:
    before = signal.getsignal(signal.SIGTERM)
    world.plane.on_add = lambda: os.kill(os.getpid(), signum)
    with pytest.raises(Interrupted) as caught:
        run(scenario())
    assert caught.value.exit_code == code
    result = caught.value.result
    assert result.status == "interrupted"
    assert result.reason == f"interrupted by {signal.Signals(signum).name}"
    got = dict(phases(result))
    assert (got["rollback"], got["residue"], got["mitigation"]) == ("ok", "ok", "skipped")
    assert world.plane.toxics["web.1"] == {}
    assert world.loads[0].stopped
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_a_signal_during_rollback_waits_for_the_rollback(world: SimpleNamespace) -> None:
    s = scenario(faults=[
        {"at": "0s", "toxic": {"proxy": "web.1", "type": "latency", "name": "a"}},
        {"at": "0s", "toxic": {"proxy": "web.2", "type": "latency", "name": "b"}},
    ], mitigation={"runbook_steps": []}, recovery={"within": "100ms"})
    sent = []

    def once() -> None:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    world.plane.on_remove = once
    with pytest.raises(Interrupted) as caught:
        run(s)
    assert caught.value.signum == signal.SIGTERM
    assert caught.value.result.status == "failed"  # it had failed before the signal
    assert world.plane.toxics == {n: {} for n in world.plane.names}  # both undone
