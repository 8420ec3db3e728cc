"""Operator commands against a running stack, as documented in docs/cli.md: a service's
refusal of bad input exits 2 with its reason on one line; `metrics toxiproxy` answers;
`logs` names a stopped logplex or an unknown app in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simctl.pytest_plugin import free_port_offset

pytestmark = pytest.mark.slow


def sim(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simctl", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("state")
    env = {**os.environ, "SIMCTL_STATE_DIR": str(state), "NO_COLOR": "1", "COLUMNS": "200",
           "SIMCTL_PROJECT": f"msg{os.getpid()}"}
    up = sim(env, "up", "--timing", "fast", "--port-offset", str(free_port_offset()),
             timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        yield env
    finally:
        sim(env, "down")


def one_error_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(("args", "reason"), [
    (("dyno", "set", "web.3", "eror"), "unknown behaviour 'eror'; did you mean 'error'?"),
    (("dyno", "set", "web.1", "latency", "-p", "ms=-5"), "'ms' must be between 0 and"),
    (("drain", "disable", "mian"), "no drain named 'mian'"),
    (("sync", "state", "web.9", "down"), "unknown dyno 'web.9' in app 'web'"),
    (("maintenance", "on", "--app", "nope"), "unknown app 'nope'"),
])
def test_a_service_refusal_is_invalid_input(env: dict[str, str], args: tuple[str, ...],
                                            reason: str) -> None:
    done = sim(env, *args)
    assert done.returncode == 2
    line = one_error_line(done)
    assert reason in line
    assert "(HTTP 4" in line


def test_metrics_toxiproxy(env: dict[str, str]) -> None:
    done = sim(env, "metrics", "toxiproxy")
    assert done.returncode == 0, done.stderr
    assert "# TYPE toxiproxy_proxy_received_bytes_total counter" in done.stdout
    assert "process_resident_memory_bytes" in done.stdout


def test_logs_of_an_unknown_app_and_of_a_stopped_logplex(env: dict[str, str]) -> None:
    nope = sim(env, "logs", "--app", "nope")
    assert nope.returncode == 2
    assert one_error_line(nope) == (f"error: no app 'nope' in project '{env['SIMCTL_PROJECT']}' "
                                    "(expected one of: web)")
    assert sim(env, "logs", "--app", "web", "-n", "1").returncode == 0
    assert sim(env, "stop", "logplex").returncode == 0
    try:
        for args in (("logs",), ("logs", "--tail")):
            done = sim(env, *args)
            assert done.returncode == 3
            assert "logplex does not answer at http://127.0.0.1:" in one_error_line(done)
    finally:
        assert sim(env, "start", "logplex").returncode == 0


def test_the_state_folder_of_a_running_stack_is_private(env: dict[str, str]) -> None:
    folder = Path(env["SIMCTL_STATE_DIR"]) / env["SIMCTL_PROJECT"]
    paths = [folder, *folder.rglob("*")]
    assert len(paths) > 10  # state.json and a log per service
    assert {p.stat().st_mode & 0o777 for p in paths if p.is_dir()} == {0o700}
    assert {p.stat().st_mode & 0o777 for p in paths if p.is_file()} == {0o600}


def test_operator_answers_are_tables_or_json_never_reprs(env: dict[str, str]) -> None:
    narrow = {**env, "COLUMNS": "60"}
    outputs = {}
    for args in (("dyno", "set", "web.2", "latency", "-p", "ms=5"), ("dyno", "show"),
                 ("router", "flush", "--all"), ("router", "resync", "router-2"),
                 ("router", "keepalive", "show", "--all"), ("router", "routes", "router-1"),
                 ("drain", "list"), ("status",), ("dyno", "reset", "--all")):
        done = sim(narrow, *args)
        assert done.returncode == 0, done.stderr
        assert "{'" not in done.stdout, done.stdout  # no Python dict repr
        outputs[args[:2]] = done.stdout
    assert "│ web.2 │ latency   │ ms=5 jitter=0" in outputs[("dyno", "show")]
    for name in ("router-1", "router-2"):  # names people type back are never cut
        assert f"│ {name} │" in outputs[("router", "flush")]
    routes = outputs[("router", "routes")]
    assert "sync stream" in routes
    assert "│ state         │ following" in routes
    assert "│ web.3 │" in routes
    assert "│ main  │ yes " in outputs[("drain", "list")]
    parsed = {args: json.loads(sim(env, *args, "--json").stdout) for args in (
        ("status",), ("dyno", "show"), ("drain", "list"), ("router", "routes", "router.1"))}
    assert {s["name"] for s in parsed[("status",)]["services"]} >= {"router-1", "web.1"}
    assert parsed[("dyno", "show")]["web.1"] == {"behaviour": "normal"}
    assert [d["name"] for d in parsed[("drain", "list")]["drains"]] == ["main", "audit"]
    assert parsed[("router", "routes", "router.1")]["sync"]["state"] == "following"
    assert parsed[("router", "routes", "router.1")]["router"] == "router-1"


def test_every_alias_names_the_same_router_or_dyno(env: dict[str, str]) -> None:
    for alias in ("web.1", "dyno-1"):
        for verb in ("pause", "resume"):
            done = sim(env, verb, alias)
            assert (done.returncode, done.stdout) == (0, f"{verb}: web.1\n"), done.stderr
    for alias in ("router-2", "router.2", "edge.2", "edge-tls.2"):
        done = sim(env, "router", "resync", alias)
        assert done.returncode == 0, done.stderr
        assert "│ router-2 │" in done.stdout
    shown = sim(env, "dyno", "show", "dyno-3", "--json")
    assert json.loads(shown.stdout) == {"web.3": {"behaviour": "normal"}}
    assert sim(env, "sync", "state", "dyno-3", "up").stdout == "web.3: up\n"
    assert "router_requests_total" in sim(env, "metrics", "router.1").stdout
    typo = sim(env, "kill", "wbe.1")
    assert (typo.returncode, typo.stderr) == (
        2, f"error: no service 'wbe.1' in project '{env['SIMCTL_PROJECT']}'; did you mean "
           "'web.1'?\n")
