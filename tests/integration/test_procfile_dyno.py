"""The procfile-dyno supervisor as a process: Heroku's variables, lines relayed to a
logplex-1 endpoint, behaviours refused, and a process that exits before binding $PORT."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from simctl.platform import logframe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver(ThreadingHTTPServer):
    """A logplex-1 endpoint on 127.0.0.1 keeping (token, message) pairs."""

    def __init__(self) -> None:
        self.received: list[tuple[str, logframe.LogMessage]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                token = self.headers["Authorization"]
                receiver.received.extend((token, m) for m in logframe.parse(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/logs"

    def lines(self) -> list[str]:
        return [f"{m.app}[{m.proc}]: {m.text}" for _, m in self.received]


def supervisor(tmp_path: Path, command: str, logplex: str | None = None,
               dyno: str = "web.2") -> tuple[subprocess.Popen[str], int, int]:
    admin, port = free_port(), free_port()
    args = [sys.executable, "-m", "simctl.platform", "procfile-dyno", "--admin-port",
            str(admin), "--port", str(port), "--name", dyno, "--app", "shop", "--command",
            command, "--cwd", str(tmp_path), "--timing", "fast", "--env", "GREETING=hi"]
    if logplex:
        args += ["--logplex-url", logplex]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, admin, port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError:  # not listening yet
        return 0, ""


def wait_until(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


APP = textwrap.dedent("""
    import os
    from http.server import BaseHTTPRequestHandler, HTTPServer
    print("env", *(f"{k}={os.environ.get(k)}" for k in
                   ("PORT", "DYNO", "PS", "HEROKU_APP_NAME", "GREETING")), flush=True)
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            print("served", self.path, flush=True)
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *a): pass
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
""")


def test_runs_the_command_with_heroku_variables_and_relays_its_lines(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    receiver = Receiver()
    proc, admin, port = supervisor(tmp_path, "python3 app.py", receiver.url)
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{admin}/health")[0] == 200)
        assert get(f"http://127.0.0.1:{port}/orders")[1] == "ok"
        wait_until(lambda: "app[web.2]: served /orders" in receiver.lines())
        lines = receiver.lines()
        assert f"app[web.2]: env PORT={port} DYNO=web.2 PS=web.2 HEROKU_APP_NAME=shop " \
               "GREETING=hi" in lines
        assert "heroku[web.2]: Starting process with command `python3 app.py`" in lines
        assert "heroku[web.2]: State changed from starting to up" in lines
        assert {token for token, _ in receiver.received} == {"Basic dG9rZW46dC5zaG9w"}  # t.shop
        request = urllib.request.Request(f"http://127.0.0.1:{admin}/control", method="POST",
                                         data=b'{"behaviour": "hang"}',
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=2)
        assert refused.value.code == 400
        assert "apply only to built-in dynos" in json.loads(refused.value.read())["error"]
        assert get(f"http://127.0.0.1:{admin}/control") == (200, '{"behaviour": "normal"}')
        child = psutil.Process(proc.pid).children()[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
        receiver.shutdown()
        receiver.server_close()
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 5)


def test_a_process_that_exits_before_binding_ends_the_dyno(tmp_path: Path) -> None:
    proc, admin, _ = supervisor(tmp_path, "python3 -c 'print(\"bye\"); raise SystemExit(4)'")
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert "app[web.2]: bye" in lines
    assert "heroku[web.2]: Process exited with status 4" in lines
    assert lines[-1] == ("error: web.2: `python3 -c 'print(\"bye\"); raise SystemExit(4)'` "
                         "exited with status 4 before binding $PORT")


CRASHES = textwrap.dedent("""
    import os, threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *a): pass
    server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
    threading.Timer(1.5, os._exit, (3,)).start()  # up for 1.5 s, then a crash
    print("serving", flush=True)
    server.serve_forever()
""")


def _service(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "simctl.platform", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def test_a_crashed_process_is_marked_crashed_in_sync_and_restarted_like_heroku(
        tmp_path: Path) -> None:
    """First crash: restarted at once. Second: `crashed` in sync (the router answers H10)
    for the cool-off (60 s with fast timing), the supervisor still running."""
    (tmp_path / "app.py").write_text(CRASHES)
    sync_port, router_port, router_admin = free_port(), free_port(), free_port()
    admin, port = free_port(), free_port()
    sync = _service("sync", "--port", str(sync_port), "--timing", "fast", "--app", "shop",
                    "--domain", "shop/shop.localhost", "--dyno", f"shop/web.2=127.0.0.1:{port}")
    router = _service("router", "--port", str(router_port), "--tls-port", "-1", "--admin-port",
                      str(router_admin), "--timing", "fast", "--sync-url",
                      f"http://127.0.0.1:{sync_port}")
    receiver = Receiver()
    dyno = subprocess.Popen(
        [sys.executable, "-m", "simctl.platform", "procfile-dyno", "--admin-port", str(admin),
         "--port", str(port), "--name", "web.2", "--app", "shop", "--command", "python3 app.py",
         "--cwd", str(tmp_path), "--timing", "fast", "--logplex-url", receiver.url,
         "--sync-url", f"http://127.0.0.1:{sync_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sync_state() -> str:
        status, body = get(f"http://127.0.0.1:{sync_port}/routes")
        return json.loads(body)["apps"]["shop"]["dynos"][0]["state"] if status == 200 else ""

    def through_router() -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{router_port}/",
                                         headers={"Host": "shop.localhost"})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, resp.headers.get("X-Router-Code", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("X-Router-Code", "")
        except urllib.error.URLError:
            return 0, ""

    try:
        wait_until(lambda: receiver.lines().count(
            "heroku[web.2]: State changed from starting to up") == 2, 20)
        wait_until(lambda: sync_state() == "up", 30)  # the restart said so (a loaded host: slow)
        wait_until(lambda: receiver.lines().count(
            "heroku[web.2]: State changed from up to crashed") == 2, 10)
        wait_until(lambda: sync_state() == "crashed")
        wait_until(lambda: through_router() == (503, "H10"))
        time.sleep(3)  # the cool-off: no third start
        lines = receiver.lines()
        assert lines.count("heroku[web.2]: Starting process with command `python3 app.py`") == 2
        assert lines.count("heroku[web.2]: Process exited with status 3") == 2
        assert lines.count("heroku[web.2]: State changed from crashed to starting") == 1
        assert sync_state() == "crashed"
        assert get(f"http://127.0.0.1:{admin}/health")[0] == 503
        assert dyno.poll() is None
    finally:
        for proc in (dyno, router, sync):
            proc.terminate()
        for proc in (dyno, router, sync):
            proc.communicate(timeout=10)
        receiver.shutdown()
        receiver.server_close()
