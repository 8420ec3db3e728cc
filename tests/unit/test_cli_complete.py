"""Shell completion (docs/cli.md, "Shell completion"): scenario ids from the catalogue;
services, dynos and proxies from the project's state file, through click's own protocol."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simctl.backends.state import ProcessState, ProjectState


def complete(line: str, env: dict[str, str]) -> list[str]:
    words = line.split(" ")
    out = subprocess.run([str(Path(sys.executable).parent / "simctl")], capture_output=True,
                         text=True,
                         timeout=60, env={**env, "COMP_WORDS": line,
                                          "COMP_CWORD": str(len(words) - 1),
                                          "_SIMCTL_COMPLETE": "bash_complete"})
    assert out.returncode == 0, out.stderr
    return [item.split(",", 1)[1] for item in out.stdout.splitlines() if item]


def test_values_complete_from_the_catalogue_and_the_state(tmp_path: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(tmp_path))
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path), "SIMCTL_PROJECT": "comp"}
    assert complete("simctl verify slow-d", env) == ["slow-drain", "slow-dyno"]
    assert complete("simctl restart w", env) == []  # no stack: nothing, and no error
    state = ProjectState("comp", "local", "fast", 0, "http://127.0.0.1:8474", True)
    state.processes = {
        "router-1": ProcessState("router-1", 1, 1, 0.0, [], "router",
                                 labels={"instance": "router.1"}),
        "dyno-1": ProcessState("dyno-1", 2, 2, 0.0, [], "dyno",
                               labels={"app": "web", "dyno": "web.1"}),
    }
    state.endpoints = {"proxy edge.1": "127.0.0.1:21201", "proxy web.1": "127.0.0.1:21301",
                       "logplex": "http://127.0.0.1:8800"}
    state.save()
    assert complete("simctl restart ", env) == ["dyno-1", "router-1", "router.1", "web.1"]
    assert complete("simctl dyno set ", env) == ["web.1"]
    assert complete("simctl inject e", env) == ["edge.1"]
    assert complete("simctl heal --project comp w", env) == ["web.1"]
    assert complete("simctl re", env)[:2] == ["report", "restart"]
