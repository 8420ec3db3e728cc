"""Game-day drills end to end on one fast stack (docs/drills.md): the conductor
interrupted in each phase leaves nothing injected and keeps its timeline; a hidden and
concealed drill shows responders neither the scenario nor its fault."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from simctl.pytest_plugin import free_port_offset
from simctl.scenario import catalog

pytestmark = pytest.mark.slow
SIM = [sys.executable, "-m", "simctl"]


class Stack:
    def __init__(self, root: Path) -> None:
        self.project = f"drill{os.getpid()}"
        self.env = {**os.environ, "SIMCTL_STATE_DIR": str(root), "SIMCTL_PROJECT": self.project,
                    "NO_COLOR": "1", "COLUMNS": "200", "SIMCTL_RESPONDER": "tester"}
        self.env.pop("SIMCTL_DRILL_TOKEN", None)
        self.drills = root / self.project / "drills"

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SIM, *args], env={**self.env, **(env or {})}, text=True,
                              capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def start(self, *args: str) -> dict[str, Any]:
        done = self.run("drill", "start", "--json", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def drill(self, drill_id: str) -> dict[str, Any]:
        return json.loads((self.drills / drill_id / "drill.json").read_text())

    def timeline(self, drill_id: str) -> list[dict[str, Any]]:
        path = self.drills / drill_id / "timeline.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def wait_for(self, drill_id: str, kind: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.timeline(drill_id) if e["kind"] == kind]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no {kind} entry within {timeout}s")

    def assert_clean(self, drill_id: str, reason: str) -> None:
        """Nothing injected, every proxy enabled, no conductor (it ran the load) left,
        the timeline kept with its end."""
        proxies = self.run("proxies", "--json")
        assert proxies.returncode == 0, proxies.stderr
        for name, proxy in json.loads(proxies.stdout).items():
            assert proxy["toxics"] == [], name
            assert proxy["enabled"], name
        pid = self.drill(drill_id)["conductor_pid"]
        assert pid
        assert not _alive(pid)
        assert not [p for p in psutil.process_iter(["cmdline"])
                    if drill_id in " ".join(p.info["cmdline"] or [])]
        entries = self.timeline(drill_id)
        assert entries[0]["kind"] == "drill_started"
        last = [e for e in entries if e["kind"] != "command"][-1]  # `drill end` comes after
        assert last["kind"] == "drill_ended"
        assert last["reason"] == reason
        residue = [e for e in entries if e["kind"] == "residue_check"]
        assert residue, entries
        assert residue[-1]["ok"], residue
        assert self.drill(drill_id)["status"] != "running"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(pid: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, "the conductor did not exit"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("drill-state"))
    offset = free_port_offset((12000, 7500, 4000, 2500))
    up = s.run("up", "--timing", "fast", "--port-offset", str(offset), timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        yield s
    finally:
        s.run("down", timeout=120)


def test_interrupting_the_conductor_in_each_phase_leaves_nothing(stack: Stack) -> None:
    # SIGINT before the faults (they are minutes away)
    before = stack.start("slow-dyno", "--delay", "5m")
    pid = stack.drill(before["drill"])["conductor_pid"]
    os.kill(pid, signal.SIGINT)
    _wait_gone(pid)
    stack.assert_clean(before["drill"], "interrupted")
    assert not [e for e in stack.timeline(before["drill"]) if e["kind"] == "fault_applied"]

    # SIGINT after the faults
    after = stack.start("slow-dyno")
    stack.wait_for(after["drill"], "fault_applied")
    assert stack.run("proxies", "--json").stdout.count('"type": "latency"') == 1
    pid = stack.drill(after["drill"])["conductor_pid"]
    os.kill(pid, signal.SIGINT)
    _wait_gone(pid)
    stack.assert_clean(after["drill"], "interrupted")
    rolled = [e for e in stack.timeline(after["drill"]) if e["kind"] == "fault_rolled_back"]
    assert rolled
    assert rolled[0]["ok"]

    # kill -9: the toxic stays until `drill end` notices the lost conductor
    killed = stack.start("slow-dyno")
    stack.wait_for(killed["drill"], "fault_applied")
    pid = stack.drill(killed["drill"])["conductor_pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, timeout=10)
    assert stack.drill(killed["drill"])["status"] == "running"
    end = stack.run("drill", "end", "--json")
    assert end.returncode == 0, end.stdout + end.stderr
    assert json.loads(end.stdout)["end_reason"] == "conductor_lost"
    stack.assert_clean(killed["drill"], "conductor_lost")
    kinds = [e["kind"] for e in stack.timeline(killed["drill"])]
    assert "fault_applied" in kinds
    assert "sli" in kinds
    assert "fault_rolled_back" in kinds


def test_hidden_concealed_drill_shows_responders_no_scenario_or_fault(stack: Stack) -> None:
    # slow-drain: its runbook (which alerts link to) has a name of its own, and its load
    # logs 5,000 lines a second (the load's lines must not name the scenario either)
    started = stack.start("slow-drain", "--conceal")
    assert "scenario" not in started
    drill_id, token = started["drill"], started["token"]
    applied = stack.wait_for(drill_id, "fault_applied")
    assert applied["hidden"]
    neutral = applied["description"].rsplit(" as ", 1)[1]
    assert neutral.startswith("t-")
    alert = stack.wait_for(drill_id, "alert")
    secrets = ["slow-drain", "slow-consumer", "latency", neutral, "toxic"]
    outputs = {}
    for args in (["drill", "status"], ["drill", "status", "--json"], ["drill", "list"],
                 ["alerts"], ["logs", "-n", "200"], ["status"]):
        done = stack.run(*args)
        assert done.returncode == 0, (args, done.stderr)
        outputs[" ".join(args)] = done.stdout + done.stderr
    for args in (["proxies"], ["proxies", "--json"], ["toxics"]):
        done = stack.run(*args)
        assert done.returncode == 8, (args, done.stdout)
        assert done.stderr.startswith("error: ")
        assert len(done.stderr.splitlines()) == 1
        outputs[" ".join(args)] = done.stdout + done.stderr
    assert "msg=load run=" + drill_id in outputs["logs -n 200"]  # the logs were really read
    # the page links its runbook, named after the symptom: no scenario's id (RB015)
    assert alert["runbook"]
    assert alert["runbook"] in outputs["alerts"]
    assert alert["runbook"] not in {p.stem for p in catalog.scenario_files()}
    for command, text in outputs.items():
        for secret in secrets:
            # whole words: the alert RouterLatencyP99High is a symptom, not the fault type
            assert not re.search(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", text), (
                command, secret, text)

    # the facilitator sees the fault plane with the token; the toxic has its neutral name
    seen = stack.run("proxies", "--json", env={"SIMCTL_DRILL_TOKEN": token})
    assert seen.returncode == 0
    assert neutral in seen.stdout
    assert "slow-consumer" not in seen.stdout
    assert stack.run("drill", "abort", "--token", "wrong").returncode == 8
    done = stack.run("drill", "abort", "--json", "--token", token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["scenario"] == "slow-drain"  # revealed once over
    stack.assert_clean(drill_id, "aborted")
