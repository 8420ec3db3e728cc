"""`simctl verify` as a process: exit codes, reports, and what is left behind (nothing).

Scenarios and runbooks come from tests/fixtures/engine (SIMCTL_SCENARIOS_DIR and
SIMCTL_RUNBOOKS_DIR point there): ``slow-web-1`` (a latency toxic on web.1, H12,
mitigated by ``simctl heal web.1``) and ``slow-web-1-unmitigated`` (the same without
the mitigation step, so recovery fails).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simctl.backends import procs
from simctl.errors import ToxiproxyError, ToxiproxyUnreachable
from simctl.faults.client import ToxiproxyClient
from simctl.pytest_plugin import free_port_offset

FIXTURES = Path(__file__).parents[1] / "fixtures" / "engine"
TIMEOUT = 150


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"),
            "SIMCTL_SCENARIOS_DIR": str(FIXTURES / "scenarios"),
            "SIMCTL_RUNBOOKS_DIR": str(FIXTURES / "runbooks"), "NO_COLOR": "1",
            "COLUMNS": "200"}


def simctl(*args: str, env: dict[str, str], timeout: float = TIMEOUT
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def state_file(env: dict[str, str], project: str) -> Path:
    return Path(env["SIMCTL_STATE_DIR"]) / project / "state.json"


def read_state(env: dict[str, str], project: str) -> dict[str, Any] | None:
    try:
        return json.loads(state_file(env, project).read_text())
    except (OSError, ValueError):
        return None


def toxics_on(url: str, proxy: str) -> list[Any]:
    """The proxy's toxics; an unreachable fault plane or a missing proxy raises, so that
    "no toxics left" is never claimed for a fault plane that is not there."""
    return ToxiproxyClient(url, timeout=1).proxy(proxy).toxics


def wait_for_fault(env: dict[str, str], project: str, proc: subprocess.Popen[str],
                   seen: dict[int, float], timeout: float = 60.0) -> str:
    """Until verify's toxic is on web.1; meanwhile note every pid of the stack."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        state = read_state(env, project)
        if state is not None:
            for p in state["processes"].values():
                seen[p["pid"]] = p["started"]
            if state.get("complete"):
                try:  # the fault plane or web.1's proxy may not be there yet
                    if toxics_on(state["toxiproxy_url"], "web.1"):
                        return str(state["toxiproxy_url"])
                except (ToxiproxyError, ToxiproxyUnreachable):
                    pass
        time.sleep(0.05)
    raise AssertionError("the fault never appeared")


def assert_all_gone(pids: dict[int, float]) -> None:
    deadline = time.monotonic() + 10
    alive = dict(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid: t for pid, t in alive.items() if procs.alive(pid, t)}
        time.sleep(0.1)
    assert not alive, f"processes left running: {sorted(alive)}"


# -- invalid input: nothing starts -------------------------------------------------------------


def test_an_invalid_scenario_exits_2_and_starts_nothing(env: dict[str, str]) -> None:
    done = simctl("verify", str(FIXTURES / "invalid" / "bad-probe.yaml"),
                  str(FIXTURES / "invalid" / "needs-shell.yaml"), "--project", "neverup",
                  env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bad-probe.yaml:8:10: steady_state[0]: unknown http measure 'sucess_ratio'" \
        in done.stdout
    assert "unknown proxy 'web.9'" in done.stdout
    assert "needs-shell.yaml: mitigation:" in done.stdout
    assert "--allow-shell" in done.stdout
    assert "nothing was started" in done.stderr
    assert not Path(env["SIMCTL_STATE_DIR"]).exists()


@pytest.mark.parametrize(("args", "message"), [
    ((), "give SCENARIO ids or paths, or --all"),
    (("slow-web-1", "--all"), "not both"),
    (("slow-web-2",), "no scenario 'slow-web-2'"),
    (("slow-web-1", "--report", "/nonexistent/reports"), "/nonexistent/reports: no such "),
])
def test_bad_arguments_exit_2(env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    done = simctl("verify", *args, env=env, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert not Path(env["SIMCTL_STATE_DIR"]).exists()


def test_a_stack_that_cannot_start_exits_3(env: dict[str, str]) -> None:
    offset = free_port_offset((10500, 9000, 7500))
    with socket.socket() as taken:  # the fault plane's API port
        taken.bind(("127.0.0.1", 8474 + offset))
        taken.listen()
        done = simctl("verify", "slow-web-1", "--project", f"vport{os.getpid()}",
                      "--port-offset", str(offset), env=env, timeout=60)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"port {8474 + offset} (toxiproxy) is already in use" in done.stderr
    assert not state_file(env, f"vport{os.getpid()}").exists()


# -- a stack verify starts -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_passing_scenario_exits_0_with_one_junit_testcase(env: dict[str, str],
                                                            tmp_path: Path) -> None:
    project = f"vpass{os.getpid()}"
    offset = free_port_offset((7000, 8500, 10000))
    junit, journal = tmp_path / "report.xml", tmp_path / "journal.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simctl", "verify", "slow-web-1", "--project", project,
         "--port-offset", str(offset), "--junit", str(junit), "--json", str(journal),
         "--report", str(tmp_path / "reports")],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids: dict[int, float] = {}
    try:
        wait_for_fault(env, project, proc, pids)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            simctl("down", "--project", project, env=env)
    assert proc.returncode == 0, out + err
    assert "✔ passed" in out
    assert f"stopped stack {project!r}" in out
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["slow-web-1"]
    assert cases[0].find("failure") is None
    assert cases[0].find("error") is None
    document = json.loads(journal.read_text())
    assert document["status"] == "passed"
    scenario = document["scenarios"][0]
    assert [p["name"] for p in scenario["phases"] if p["status"] == "ok"] == [
        "preflight", "steady_state", "faults", "symptoms", "mitigation", "recovery",
        "rollback", "residue"]
    assert scenario["seed"] == 3
    # --report: the run as a drill report, its SLIs read from the monitor before `down`
    report = json.loads((tmp_path / "reports" / "slow-web-1.json").read_text())
    assert report["score"]["recovered"] is True
    assert report["score"]["followed"] == ["heal-web-1"]
    assert report["score"]["failed_requests"] > 0
    assert sum(e["kind"] == "sli" for e in report["timeline"]) > 5
    assert "Plotly.newPlot" in (tmp_path / "reports" / "slow-web-1.html").read_text()
    assert (tmp_path / "reports" / "slow-web-1.md").is_file()
    assert not state_file(env, project).exists()
    assert_all_gone(pids)


@pytest.mark.slow
def test_sigterm_during_the_faults_rolls_back_stops_the_stack_and_exits_143(
        env: dict[str, str], tmp_path: Path) -> None:
    project = f"vterm{os.getpid()}"
    offset = free_port_offset((8500, 10000, 7000))
    journal = tmp_path / "journal.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simctl", "verify", "slow-web-1", "--project", project,
         "--port-offset", str(offset), "--json", str(journal)],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids: dict[int, float] = {}
    try:
        wait_for_fault(env, project, proc, pids)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            simctl("down", "--project", project, env=env)
    assert proc.returncode == 143, out + err
    assert "interrupted by SIGTERM" in out
    scenario = json.loads(journal.read_text())["scenarios"][0]
    assert scenario["status"] == "interrupted"
    phases = {p["name"]: p["status"] for p in scenario["phases"]}
    assert (phases["rollback"], phases["residue"]) == ("ok", "ok")
    undo = [a for a in scenario["actions"] if a["kind"] == "undo"]
    assert [(a["status"], a["output"]) for a in undo] == [
        ("ok", "removed toxic latency_downstream from web.1")]
    assert not state_file(env, project).exists()
    assert_all_gone(pids)


# -- a stack that was already up ---------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A stack started before verify: verify reuses it and must leave it up and clean."""
    project = f"vreuse{os.getpid()}"
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path_factory.mktemp("reuse")),
           "SIMCTL_SCENARIOS_DIR": str(FIXTURES / "scenarios"),
           "SIMCTL_RUNBOOKS_DIR": str(FIXTURES / "runbooks"), "NO_COLOR": "1",
           "COLUMNS": "200", "SIMCTL_PROJECT": project}
    offset = free_port_offset((5500, 2200, 3700))
    up = simctl("up", "--timing", "fast", "--project", project, "--port-offset", str(offset),
                env=env, timeout=90)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield env
    finally:
        simctl("down", "--project", project, env=env, timeout=60)


def assert_clean(env: dict[str, str]) -> None:
    state = read_state(env, env["SIMCTL_PROJECT"])
    assert state is not None, "the reused stack must stay up"
    client = ToxiproxyClient(state["toxiproxy_url"])
    for name, proxy in client.proxies().items():
        assert proxy.toxics == [], name
        assert proxy.enabled, name
    status = simctl("status", env=env, timeout=30)
    assert status.returncode == 0
    for p in state["processes"].values():
        assert procs.alive(p["pid"], p["started"]), p["name"]
        assert not p["paused"], p["name"]


@pytest.mark.slow
def test_without_the_mitigation_step_recovery_fails_and_verify_exits_1(
        running: dict[str, str], tmp_path: Path) -> None:
    junit, journal = tmp_path / "report.xml", tmp_path / "journal.json"
    done = simctl("verify", "slow-web-1-unmitigated", "slow-web-1", "--fail-fast", "--junit",
                  str(junit), "--json", str(journal), env=running)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "reusing the running stack" in done.stdout
    document = json.loads(journal.read_text())
    assert document["summary"] == {"scenarios": 2, "passed": 0, "failed": 1, "skipped": 1}
    assert document["scenarios"][1]["status"] == "skipped"  # --fail-fast
    scenario = document["scenarios"][0]
    assert scenario["status"] == "failed"
    assert scenario["reason"].startswith("not recovered within 4s after mitigation")
    phases = {p["name"]: p["status"] for p in scenario["phases"]}
    assert (phases["symptoms"], phases["recovery"], phases["rollback"]) == (
        "ok", "failed", "ok")
    case, skipped = ET.parse(junit).getroot().findall("./testsuite/testcase")
    failure = case.find("failure")
    assert failure is not None
    assert "not recovered" in (failure.get("message") or "")
    assert skipped.find("skipped") is not None
    assert_clean(running)


@pytest.mark.slow
def test_sigint_during_the_faults_rolls_back_and_exits_130(running: dict[str, str],
                                                          tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simctl", "verify", "slow-web-1", "--json", str(journal)],
        env=running, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = wait_for_fault(running, running["SIMCTL_PROJECT"], proc, {})
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert "interrupted by SIGINT" in out
    assert toxics_on(url, "web.1") == []
    scenario = json.loads(journal.read_text())["scenarios"][0]
    phases = {p["name"]: p["status"] for p in scenario["phases"]}
    assert (phases["rollback"], phases["residue"]) == ("ok", "ok")
    assert_clean(running)
