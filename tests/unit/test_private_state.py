"""A project's state folder is the user's alone: folders 0700, files 0600, whatever the
umask, and what the services write there too; a file that is not a scenario is never
quoted back."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from simctl.backends import procs
from simctl.backends.state import ProjectState
from simctl.cli import main


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "a" / "state"
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(root))
    return root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists()


def test_state_json_and_its_folders_are_private(state_dir: Path, loose_umask: None) -> None:
    state = ProjectState("p1", "local", "fast", 0, "http://127.0.0.1:8474", True)
    state.save()
    assert mode(state_dir.parent) == 0o700  # created by simctl
    assert mode(state_dir) == 0o700
    assert mode(state_dir / "p1") == 0o700
    assert mode(state_dir / "p1" / "state.json") == 0o600
    # Loosened by hand (or by an older simctl): the next save tightens both again.
    os.chmod(state_dir / "p1", 0o755)
    os.chmod(state_dir / "p1" / "state.json", 0o644)
    state.save()
    assert mode(state_dir / "p1") == 0o700
    assert mode(state_dir / "p1" / "state.json") == 0o600
    assert ProjectState.load("p1") == state


def test_an_existing_shared_parent_is_left_alone(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 loose_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    monkeypatch.setenv("SIMCTL_STATE_DIR", str(shared))
    ProjectState("p2", "local", "fast", 0, "http://127.0.0.1:8474", True).save()
    assert mode(shared) == 0o755
    assert mode(shared / "p2") == 0o700


def test_service_logs_and_service_files_are_private(state_dir: Path, loose_umask: None) -> None:
    made = state_dir / "p3" / "made-by-the-service"
    log = state_dir / "p3" / "logs" / "svc.log"
    child = procs.spawn(["python", "-c", f"open({str(made)!r}, 'w').write('x'); print('hi')"],
                        {}, log)
    assert child.wait(timeout=20) == 0
    assert mode(log.parent) == 0o700
    assert mode(log) == 0o600
    assert log.read_text() == "hi\n"
    assert mode(made) == 0o600


def test_the_service_launcher_logs_privately(state_dir: Path, loose_umask: None) -> None:
    log = state_dir / "p4" / "logs" / "toxics.log"
    zygote = procs.Zygote()
    try:
        pid = zygote.spawn(["python", "-m", "simctl", "toxics"], {}, log)
        assert pid > 0
        deadline = time.monotonic() + 30
        while procs.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        zygote.close()
    wait_for(log)
    assert mode(log) == 0o600
    assert mode(log.parent) == 0o700


SECRET = "root:$6$s3cr3t-hash$abcdefgh:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n"


@pytest.mark.parametrize("text", [SECRET, "only-a-s3cr3t-line\n", "- s3cr3t\n- two\n"])
@pytest.mark.parametrize("command", [["verify", "--project", "neverup"], ["scenario", "lint"],
                                     ["scenario", "show"]])
def test_a_file_that_is_no_scenario_is_not_quoted(tmp_path: Path, state_dir: Path, text: str,
                                                  command: list[str]) -> None:
    path = tmp_path / "shadow"
    path.write_text(text)
    result = CliRunner().invoke(main, [*command, str(path)])
    assert result.exit_code == 2
    out = result.stdout + result.stderr
    assert "not a scenario file" in out
    assert "s3cr3t" not in out
    assert "19000" not in out
    assert not state_dir.exists()  # nothing was started
