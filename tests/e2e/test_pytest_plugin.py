"""The pytest plugin (simctl.pytest_plugin), as a user's test suite sees it (pytester).

The inner sessions find the plugin through its entry point (``pytest11: simctl``), as
any project that installs simctl would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simctl.backends import procs
from simctl.pytest_plugin import free_port_offset

pytest_plugins = ["pytester"]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "engine"

USER_TESTS = '''
import pytest

from simctl.faults.client import ToxiproxyClient


def test_the_stack_is_up(simctl_stack):
    state = simctl_stack.require_state()
    assert state.timing == "fast"
    assert state.project.startswith("pytest-")
    assert state.complete


def test_toxics_are_added(simctl_stack, simctl_toxic):
    toxic = simctl_toxic("web.1", "latency", latency=5000)
    assert toxic.attributes["latency"] == 5000
    named = simctl_toxic("web.2", "timeout", name="t2", stream="upstream", timeout=100)
    assert (named.name, named.stream) == ("t2", "upstream")


def test_and_healed_at_teardown(simctl_stack):
    client = ToxiproxyClient(simctl_stack.require_state().toxiproxy_url)
    assert [p.name for p in client.proxies().values() if p.toxics] == []


def test_a_scenario_runs_through_its_runbook(simctl_scenario):
    events = []
    result = simctl_scenario("slow-web-1", seed=9, listener=events.append)
    assert result.passed, result.reason
    assert result.seed == 9
    assert [e.name for e in result.events if e.kind == "step"] == ["heal-web-1"]
    assert events[-1].kind == "scenario"


@pytest.mark.simctl
def test_the_marker_is_registered():
    pass


def test_without_the_stack():
    pass
'''


@pytest.fixture
def user_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
             ) -> Iterator[Path]:
    state = tmp_path / "state"
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(state))
    monkeypatch.setenv("SIMCTL_SCENARIOS_DIR", str(FIXTURES / "scenarios"))
    monkeypatch.setenv("SIMCTL_RUNBOOKS_DIR", str(FIXTURES / "runbooks"))
    monkeypatch.delenv("SIMCTL_PROJECT", raising=False)
    yield state
    for leftover in stacks_left(state):  # only when a test failed: never leak a stack
        subprocess.run([sys.executable, "-m", "simctl", "down", "--project",
                        Path(leftover).parent.name], check=False, capture_output=True,
                       env={**os.environ, "SIMCTL_STATE_DIR": str(state)}, timeout=60)


def stacks_left(state: Path) -> list[str]:
    return [str(p) for p in state.glob("*/state.json")] if state.exists() else []


def test_markers_and_options_are_registered(pytester: pytest.Pytester, user_env: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("--co", "-q", "--strict-markers", "-m", "not simctl")
    result.stdout.fnmatch_lines(["*test_without_the_stack*", "*1/6 tests collected*"])
    assert "test_the_stack_is_up" not in result.stdout.str()
    assert "test_the_marker_is_registered" not in result.stdout.str()
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert "--simctl-port-offset=N" in help_text
    markers = pytester.runpytest_subprocess("--markers").stdout.str()
    assert "@pytest.mark.simctl:" in markers
    assert stacks_left(user_env) == []  # collecting starts nothing


@pytest.mark.slow
def test_fixtures_start_use_and_always_stop_a_stack(pytester: pytest.Pytester,
                                                    user_env: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    offset = free_port_offset((8000, 9500, 6500))
    result = pytester.runpytest_subprocess("-v", "--strict-markers", "-p", "no:cacheprovider",
                                           "--simctl-port-offset", str(offset), timeout=240)
    result.assert_outcomes(passed=6)
    assert stacks_left(user_env) == []  # the session stack is down


@pytest.mark.slow
def test_sigterm_still_stops_the_stack(pytester: pytest.Pytester, user_env: Path) -> None:
    pytester.makepyfile(test_wait='''
        import time

        def test_waits(simctl_stack):
            time.sleep(120)
    ''')
    offset = free_port_offset((9500, 8000, 6500))
    proc = pytester.popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--simctl-port-offset", str(offset)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL)
    pids: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the inner session ended early:\n{out.decode()}\n{err.decode()}")
            files = stacks_left(user_env)
            if files:
                state = json.loads(Path(files[0]).read_text())
                if state.get("complete"):
                    pids = {p["pid"]: p["started"] for p in state["processes"].values()}
                    break
            time.sleep(0.1)
        assert pids, "the stack never came up"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert stacks_left(user_env) == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(procs.alive(p, t) for p, t in pids.items()):
        time.sleep(0.1)
    assert not [p for p, t in pids.items() if procs.alive(p, t)]
