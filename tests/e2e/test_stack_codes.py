"""Every H-code and L-code, produced on a running stack with the commands docs/incidents.md
documents, and asserted from the log line that reached the `main` drain."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from simctl.backends.local import LocalBackend

pytestmark = pytest.mark.slow

OFFSET = 6100
PROJECT = f"codes{os.getpid()}"
EDGE = 21201 + OFFSET
DYNOS = ("web.1", "web.2", "web.3")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state_dir = str(tmp_path_factory.mktemp("state"))
    os.environ["SIMCTL_STATE_DIR"] = state_dir
    backend = LocalBackend(PROJECT, timing="fast", port_offset=OFFSET)
    backend.up()
    env = {**os.environ, "SIMCTL_STATE_DIR": state_dir, "SIMCTL_PROJECT": PROJECT,
           "NO_COLOR": "1"}
    try:
        yield Stack(backend, env)
    finally:
        backend.down()


class Stack:
    def __init__(self, backend: LocalBackend, env: dict[str, str]) -> None:
        self.backend = backend
        self.env = env
        self.drain = backend.url_of("drain", drain="main")

    def sim(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "simctl", *args], env=self.env,
                              capture_output=True, text=True, timeout=90)
        assert proc.returncode == 0, f"simctl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def each_dyno(self, *args: str) -> None:
        for dyno in DYNOS:
            self.sim(*[a.replace("{dyno}", dyno) for a in args])

    def seq(self) -> int:
        with urllib.request.urlopen(f"{self.drain}/stats", timeout=5) as resp:
            return int(json.loads(resp.read())["last_seq"])

    def _messages(self, since: int, grep: str, limit: int = 1000) -> list[dict]:
        query = urllib.parse.urlencode({"since": since, "grep": grep, "limit": limit})
        with urllib.request.urlopen(f"{self.drain}/messages?{query}", timeout=5) as resp:
            return json.loads(resp.read())

    def wait_line(self, text: str, since: int, timeout: float = 20.0,
                  poke: Callable[[], object] | None = None) -> str:
        """The display text of the first line containing `text` after `since` (calling
        `poke` between looks, when given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self._messages(since, text)
            if rows:
                return rows[0]["text"]
            if poke is not None:
                poke()
            time.sleep(0.2)
        raise AssertionError(f"no line with {text!r} reached the main drain in {timeout}s")


def request(headers: dict[str, str] | None = None, timeout: float = 20.0) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{EDGE}/", headers={
        "Host": "web.localhost", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("X-Router-Code", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Router-Code", "")


def request_until(expected: tuple[int, str], timeout: float = 10.0) -> tuple[int, str]:
    """Routers apply route changes from the sync stream a moment after the CLI returns:
    ask again until the answer is the expected one (or the time is up)."""
    deadline = time.monotonic() + timeout
    got = request()
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        got = request()
    return got


def raw(data: bytes, wait: float = 0.0, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", EDGE), timeout=20) as sock:
        sock.sendall(data)
        if wait:
            time.sleep(wait)
        return sock.recv(65536) if read else b""


def burst(count: int, timeout: float = 30.0) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: request(timeout=timeout), range(count)))


GET = b"GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n"


def test_h10_app_crashed(stack):
    since = stack.seq()
    stack.each_dyno("sync", "state", "{dyno}", "crashed")
    try:
        assert request_until((503, "H10")) == (503, "H10")
        line = stack.wait_line("code=H10", since)
        assert 'desc="App crashed"' in line
        assert "status=503" in line
    finally:
        stack.each_dyno("sync", "state", "{dyno}", "up")


def test_h11_backlog_too_deep(stack):
    since = stack.seq()
    stack.sim("scale", "web=1")
    stack.sim("dyno", "set", "web.1", "latency", "-p", "ms=2000")
    time.sleep(1.0)  # the routers apply the new dyno list from the sync stream
    try:
        results = burst(130)
        assert (503, "H11") in results
        assert "status=503" in stack.wait_line("code=H11", since)
    finally:
        stack.sim("dyno", "reset", "--all")
        stack.sim("scale", "web=3")


def test_h12_request_timeout(stack):
    since = stack.seq()
    stack.each_dyno("dyno", "set", "{dyno}", "hang")
    try:
        assert request() == (503, "H12")
        line = stack.wait_line("code=H12", since)
        assert 'desc="Request timeout"' in line
        service = int(line.split("service=")[1].split("ms")[0])
        assert 2900 <= service <= 4000
    finally:
        stack.sim("dyno", "reset", "--all")


def test_h13_closed_without_response(stack):
    since = stack.seq()
    stack.each_dyno("dyno", "set", "{dyno}", "close")
    try:
        assert request() == (503, "H13")
        assert "status=503" in stack.wait_line("code=H13", since)
    finally:
        stack.sim("dyno", "reset", "--all")


def test_h14_no_web_dynos(stack):
    since = stack.seq()
    stack.sim("scale", "web=0")
    try:
        assert request_until((503, "H14")) == (503, "H14")
        assert 'desc="No web dynos running"' in stack.wait_line("code=H14", since)
    finally:
        stack.sim("scale", "web=3")


@pytest.mark.parametrize(("then", "code"), [("close", "H18"), ("idle", "H15")])
def test_partial_response(stack, then, code):
    since = stack.seq()
    stack.each_dyno("dyno", "set", "{dyno}", "partial", "-p", f"then={then}")
    try:
        with socket.create_connection(("127.0.0.1", EDGE), timeout=20) as sock:
            sock.sendall(GET)
            while sock.recv(65536):  # read until the router closes (H18 at once, H15 later)
                pass
        line = stack.wait_line(f"code={code}", since, timeout=20)
        assert "status=503" in line
        if code == "H18":
            assert line.startswith("sock=backend at=error code=H18")
    finally:
        stack.sim("dyno", "reset", "--all")


def test_h19_connect_timeout(stack):
    since = stack.seq()
    stack.each_dyno("sync", "address", "{dyno}", "blackhole")
    try:
        assert request_until((503, "H19")) == (503, "H19")
        line = stack.wait_line("code=H19", since)
        connect = int(line.split("connect=")[1].split("ms")[0])
        assert connect >= 450
    finally:
        stack.each_dyno("sync", "address", "{dyno}", "proxy")


def test_h21_connection_refused(stack):
    since = stack.seq()
    stack.each_dyno("disable", "{dyno}")
    try:
        assert request() == (503, "H21")
        assert "status=503" in stack.wait_line("code=H21", since)
    finally:
        stack.each_dyno("enable", "{dyno}")
        stack.sim("router", "flush", "--all")


def test_h26_unsupported_expect(stack):
    since = stack.seq()
    assert request({"Expect": "teapot"}) == (417, "H26")
    assert "status=417" in stack.wait_line("code=H26", since)


def test_h27_client_interrupted(stack):
    since = stack.seq()
    stack.each_dyno("dyno", "set", "{dyno}", "latency", "-p", "ms=1000")
    try:
        raw(GET, read=False)
        line = stack.wait_line("code=H27", since)
        assert line.startswith("sock=client at=warning code=H27")
        assert "status=499" in line
    finally:
        stack.sim("dyno", "reset", "--all")


def test_h28_client_idle(stack):
    since = stack.seq()
    head = (b"POST / HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 100\r\n\r\n"
            + b"x" * 10)
    raw(head, wait=7.0, read=False)
    line = stack.wait_line("code=H28", since)
    assert "at=warning" in line
    assert "status=499" in line


def test_h80_maintenance(stack):
    since = stack.seq()
    stack.sim("maintenance", "on")
    try:
        assert request_until((503, "H80")) == (503, "H80")
        assert "at=info code=H80" in stack.wait_line("code=H80", since)
    finally:
        stack.sim("maintenance", "off")


def test_h99_all_quarantined(stack):
    since = stack.seq()
    stack.each_dyno("disable", "{dyno}")
    try:
        assert request() == (503, "H21")  # every dyno refused: all quarantined now
        results = burst(60, timeout=40)
        assert (503, "H99") in results
        assert "status=503" in stack.wait_line("code=H99", since, timeout=40)
    finally:
        stack.each_dyno("enable", "{dyno}")
        stack.sim("router", "flush", "--all")


def test_l10_slow_drain(stack):
    since = stack.seq()
    stack.sim("inject", "drain.main", "latency", "--attr", "latency=2000")
    stack.each_dyno("dyno", "set", "{dyno}", "chatty", "-p", "lines=400")
    try:
        burst(15)
        line = stack.wait_line("Error L10 (output buffer overflow)", since, timeout=40)
        assert "messages dropped since" in line
    finally:
        stack.sim("dyno", "reset", "--all")
        stack.sim("heal", "drain.main")


def test_l11_slow_tail(stack):
    logplex = stack.backend.url_of("logplex")
    port = int(logplex.rsplit(":", 1)[1])
    stack.each_dyno("dyno", "set", "{dyno}", "chatty", "-p", "lines=500")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /tail?app=web HTTP/1.1\r\nHost: logplex\r\n\r\n")
        burst(12)  # about 6,000 lines while the tail reads nothing
        time.sleep(2)
        sock.settimeout(10)
        seen = b""
        # The whole phrase, not just "Error L11": a read can end in the middle of it.
        wanted = b"Error L11 (Tail buffer overflow) -> This tail session dropped"
        deadline = time.monotonic() + 30
        while wanted not in seen and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            seen = seen[-200_000:] + chunk
            if b"Error L11" not in seen:
                request()  # keep lines flowing so the catch-up write happens
        assert wanted in seen
    finally:
        sock.close()
        stack.sim("dyno", "reset", "--all")


def test_l12_shuttle_drops(stack):
    since = stack.seq()
    stack.sim("inject", "dyno-logs", "timeout", "--attr", "timeout=0")
    stack.sim("dyno", "set", "web.1", "chatty", "-p", "lines=2000")
    stack.sim("scale", "web=1")
    try:
        for _ in range(20):
            request()
        time.sleep(1)
        stack.sim("heal", "dyno-logs")
        request()
        line = stack.wait_line("Error L12", since, timeout=40)
        assert "messages dropped since" in line
    finally:
        stack.sim("heal", "dyno-logs")
        stack.sim("dyno", "reset", "--all")
        stack.sim("scale", "web=3")


def test_l13_shuttle_losses(stack):
    since = stack.seq()
    stack.sim("disable", "dyno-logs")
    try:
        for _ in range(5):
            request()
        time.sleep(3)  # three failed attempts (fast timing)
    finally:
        stack.sim("enable", "dyno-logs")
    # Each dyno reports its own losses with its next batch: ask until one that lost answers.
    line = stack.wait_line("Error L13", since, timeout=30, poke=request)
    assert "messages lost since" in line
