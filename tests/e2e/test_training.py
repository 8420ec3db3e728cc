"""The on-call course end to end (docs/training.md): a scripted trainee does the first two
lessons on a fast local stack. Objectives tick in the order the trainee meets them, a
wrong answer is refused, a hint is counted, progress is saved, `train next` moves on,
and after `train reset --all` the course starts over."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simctl.pytest_plugin import free_port_offset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
SIM = [sys.executable, "-m", "simctl"]


class Trainee:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = f"train{os.getpid()}"
        self.env = {**os.environ, "SIMCTL_STATE_DIR": str(root), "SIMCTL_PROJECT": self.project,
                    "NO_COLOR": "1", "COLUMNS": "200", "SIMCTL_RESPONDER": "ana"}
        self.env.pop("SIMCTL_DRILL_TOKEN", None)

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SIM, *args], env=self.env, text=True, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done.stdout

    def status(self) -> dict[str, Any]:
        return json.loads(self.ok("train", "status", "--json"))

    def met(self) -> list[bool]:
        return [o["met"] for o in self.status()["objectives"]]

    def wait_over(self, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.status()
            if data.get("over"):
                return data
            time.sleep(1)
        raise AssertionError(f"lesson not over within {timeout}s: {self.status()}")

    def timeline(self, drill: str) -> list[dict[str, Any]]:
        path = self.root / self.project / "drills" / drill / "timeline.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def progress(self) -> dict[str, Any]:
        return json.loads((self.root / "training" / "ana.json").read_text())


def _ticked_in_order(trainee: Trainee, drill: str) -> list[int]:
    return [e["index"] for e in sorted(trainee.timeline(drill), key=lambda e: e["t"])
            if e["kind"] == "objective"]


def test_a_trainee_does_the_first_two_lessons(tmp_path: Path) -> None:
    trainee = Trainee(tmp_path)
    offset = free_port_offset()
    trainee.ok("up", "--timing", "fast", "--port-offset", str(offset))
    try:
        course = json.loads(trainee.ok("train", "--json"))
        assert [row["lesson"] for row in course["lessons"][:2]] == [
            "slow-dyno", "dyno-closes-connection"]
        assert all(row["status"] == "new" for row in course["lessons"])

        # Lesson 1: slow-dyno, in the runbook's order.
        out = trainee.ok("train", "next")
        assert "lesson slow-dyno" in out
        assert "Which dyno do the H12 lines name?" in out
        assert trainee.met() == [False, False, False, False]
        time.sleep(10)  # the guided drill's faults start 5 s after the steady state
        trainee.ok("logs", "--dyno", "router", "-n", "300")
        assert trainee.met() == [True, False, False, False]
        wrong = trainee.run("train", "answer", "web.2")
        assert wrong.returncode == 1
        assert "is not the answer" in wrong.stderr
        assert trainee.met() == [True, False, False, False]
        assert "hint 1/2" in trainee.ok("train", "hint")
        assert "correct" in trainee.ok("train", "answer", "web.1")
        trainee.ok("sync", "state", "web.1", "down")
        status = trainee.status()
        assert [o["met"] for o in status["objectives"]] == [True, True, True, False]
        assert status["hints_used"] == 1
        assert status["hints_left"] == 1
        assert status["wrong_answers"] == 1
        first = trainee.wait_over()
        assert first["passed"]
        assert first["lesson"] == "slow-dyno"
        assert first["score"] == 100 - 10 - 5  # one hint, one wrong answer
        assert _ticked_in_order(trainee, first["drill"]) == [0, 1, 2, 3]
        assert Path(first["report"]).is_file()
        debrief = trainee.ok("train", "status")
        assert "Debrief" in debrief
        assert "The incident explained" in debrief
        assert "simctl sync state web.1 down" in debrief

        saved = trainee.progress()
        assert saved["version"] == 1
        assert saved["lessons"]["slow-dyno"]["status"] == "passed"
        assert saved["lessons"]["slow-dyno"]["best_score"] == 85
        mode = (tmp_path / "training" / "ana.json").stat().st_mode
        assert stat.S_IMODE(mode) == 0o600

        # Lesson 2: `train next` moves on.
        assert "lesson dyno-closes-connection" in trainee.ok("train", "next")
        time.sleep(10)
        trainee.ok("logs", "--dyno", "router", "-n", "300")
        trainee.ok("train", "answer", "bytes=0")
        trainee.ok("restart", "dyno-1")
        second = trainee.wait_over()
        assert second["passed"]
        assert second["lesson"] == "dyno-closes-connection"
        assert second["score"] == 100
        assert _ticked_in_order(trainee, second["drill"]) == [0, 1, 2, 3]
        listed = json.loads(trainee.ok("train", "--json"))["lessons"]
        assert [r["status"] for r in listed[:3]] == ["passed", "passed", "new"]

        # Reset: the course starts over at the first lesson.
        trainee.ok("train", "reset", "--all")
        assert trainee.progress()["lessons"] == {}
        assert "lesson slow-dyno" in trainee.ok("train", "next")
        gave_up = trainee.ok("train", "giveup")
        assert "not passed" in gave_up
        assert trainee.progress()["lessons"]["slow-dyno"]["status"] == "started"
    finally:
        trainee.run("down", timeout=120)
