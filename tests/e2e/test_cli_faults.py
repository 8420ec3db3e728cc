"""The fault commands (proxies, inject, heal, toxics) and `simctl toxiproxy serve`."""

from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from simctl.cli import main
from simctl.faults.client import ToxiproxyClient
from simctl.faults.server import ToxiproxyServer


def _shared_fixtures() -> Any:
    # The threaded-server fixtures live in tests/integration/conftest.py; load them from
    # there rather than keep a second copy.
    path = Path(__file__).parents[1] / "integration" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_simctl_integration_fixtures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shared = _shared_fixtures()
loop_thread = _shared.loop_thread
toxiproxy_server_factory = _shared.toxiproxy_server_factory
toxiproxy_server = _shared.toxiproxy_server
echo_server = _shared.echo_server


@pytest.fixture
def url(toxiproxy_server: ToxiproxyServer) -> str:
    return toxiproxy_server.url


@pytest.fixture
def client(url: str) -> ToxiproxyClient:
    return ToxiproxyClient(url)


@pytest.fixture
def upstream(echo_server: tuple[str, int]) -> str:
    return f"{echo_server[0]}:{echo_server[1]}"


def simctl(url: str | None, *args: str, env: dict[str, str] | None = None) -> Result:
    options = ["--toxiproxy-url", url] if url else []
    # Wide and colourless, so rich tables keep each cell on one line.
    env = {"COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return CliRunner().invoke(main, [*options, *args], env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- proxies -----------------------------------------------------------------------------


def test_proxies_table_summarises_toxics(url: str, client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    client.create_proxy("sync", upstream, enabled=False)
    client.add_toxic("web.1", "latency", attributes={"latency": 100})
    client.add_toxic("web.1", "timeout", stream="upstream", toxicity=0.5, name="hang")
    result = simctl(url, "proxies")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for heading in ("name", "listen", "upstream", "enabled", "toxics"):
        assert heading in out
    assert "latency downstream latency=100 jitter=0 (toxicity 1)" in out
    assert "hang: timeout upstream timeout=0 (toxicity 0.5)" in out
    sync_row = next(line for line in out.splitlines() if " sync " in line)
    assert " no " in sync_row


def test_proxies_json(url: str, client: ToxiproxyClient, upstream: str) -> None:
    created = client.create_proxy("web.1", upstream)
    client.add_toxic("web.1", "bandwidth", attributes={"rate": 10})
    result = simctl(url, "proxies", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == {
        "web.1": {
            "name": "web.1",
            "listen": created.listen,
            "upstream": upstream,
            "enabled": True,
            "toxics": [
                {
                    "name": "bandwidth_downstream",
                    "type": "bandwidth",
                    "stream": "downstream",
                    "toxicity": 1.0,
                    "attributes": {"rate": 10},
                }
            ],
        }
    }


def test_proxies_when_there_are_none(url: str) -> None:
    result = simctl(url, "proxies")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"no proxies at {url}"


def test_toxiproxy_url_comes_from_the_environment(
    url: str, client: ToxiproxyClient, upstream: str
) -> None:
    client.create_proxy("from-env", upstream)
    result = simctl(None, "proxies", "--json", env={"TOXIPROXY_URL": url})
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)) == ["from-env"]


# -- inject ------------------------------------------------------------------------------


def test_inject_with_attributes(url: str, client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    result = simctl(
        url, "inject", "web.1", "latency", "--attr", "latency=250", "--attr", "jitter=10"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "added latency_downstream to web.1: latency downstream latency=250 jitter=10 (toxicity 1)"
    )
    [toxic] = client.toxics("web.1")
    assert toxic.attributes == {"latency": 250, "jitter": 10}


def test_inject_stream_toxicity_and_name(url: str, client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("drain.main", upstream)
    result = simctl(
        url,
        "inject",
        "drain.main",
        "bandwidth",
        "--stream",
        "upstream",
        "--toxicity",
        "0.5",
        "--attr",
        "rate=4",
        "--name",
        "thin",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "added thin to drain.main: bandwidth upstream rate=4 (toxicity 0.5)"
    )
    toxic = client.get_toxic("drain.main", "thin")
    assert (toxic.type, toxic.stream, toxic.toxicity, toxic.attributes) == (
        "bandwidth",
        "upstream",
        0.5,
        {"rate": 4},
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["latency", "--attr", "latncy=100"], "did you mean 'latency'?"),
        (["latency", "--attr", "latency=fast"], "expected an integer (ms)"),
        (["latency", "--attr", "latency"], "expected key=value"),
        (["latency", "--attr", "latency=-5"], "must be between 0 and 3600000 ms"),
        (["latency", "--attr", "latency=1", "--attr", "latency=2"], "given twice"),
        (["noop", "--attr", "delay=1"], "noop takes no attributes"),
        (["latncy"], "did you mean 'latency'?"),
        (["latency", "--stream", "sideways"], "'sideways' is not one of"),
        (["latency", "--toxicity", "2"], "--toxicity"),
    ],
    ids=[
        "typo",
        "not-int",
        "no-equals",
        "range",
        "twice",
        "noop",
        "type-typo",
        "stream",
        "toxicity",
    ],
)
def test_inject_bad_input_is_a_usage_error(
    url: str, client: ToxiproxyClient, upstream: str, args: list[str], message: str
) -> None:
    client.create_proxy("web.1", upstream)
    result = simctl(url, "inject", "web.1", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert client.toxics("web.1") == []


def test_inject_into_a_missing_proxy_is_an_api_error(url: str) -> None:
    result = simctl(url, "inject", "nope", "latency", "--attr", "latency=1")
    assert result.exit_code == 4
    assert result.stderr.splitlines() == [
        "error: toxiproxy: proxy not found [HTTP 404] (POST /proxies/nope/toxics)"
    ]


# -- heal --------------------------------------------------------------------------------


def test_heal_one_proxy(url: str, client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    client.create_proxy("web.2", upstream)
    client.add_toxic("web.1", "latency")
    client.add_toxic("web.1", "slicer", stream="upstream", attributes={"average_size": 10})
    client.add_toxic("web.2", "latency")
    client.disable("web.1")
    result = simctl(url, "heal", "web.1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "healed web.1: removed 2 toxic(s), re-enabled"
    healed = client.proxy("web.1")
    assert healed.enabled is True
    assert healed.toxics == []
    assert len(client.toxics("web.2")) == 1  # the other proxy is left alone
    result = simctl(url, "heal", "web.2")
    assert result.stdout.strip() == "healed web.2: removed 1 toxic(s), already enabled"


def test_heal_all(url: str, client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    client.create_proxy("web.2", upstream)
    client.add_toxic("web.1", "latency")
    client.disable("web.2")
    result = simctl(url, "heal", "--all")
    assert result.exit_code == 0, result.output
    assert all(p.enabled and not p.toxics for p in client.proxies().values())


@pytest.mark.parametrize("args", [[], ["web.1", "--all"]], ids=["neither", "both"])
def test_heal_needs_exactly_one_target(url: str, args: list[str]) -> None:
    result = simctl(url, "heal", *args)
    assert result.exit_code == 2
    assert "give either PROXY or --all" in result.stderr


def test_heal_missing_proxy(url: str) -> None:
    result = simctl(url, "heal", "nope")
    assert result.exit_code == 4
    assert len(result.stderr.splitlines()) == 1


# -- toxics ------------------------------------------------------------------------------


def test_toxics_lists_the_registry() -> None:
    result = simctl(None, "toxics")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for type_name in (
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "noop",
    ):
        assert f" {type_name} " in out
    assert "latency (ms, 0..3600000)" in out
    assert "delay (us, 0..3600000000)" in out
    assert "rate (KB/s," in out


# -- errors ------------------------------------------------------------------------------


def test_unreachable_server_is_one_line_and_exit_5() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = simctl(dead, "proxies")
    assert result.exit_code == 5
    assert result.stderr.splitlines() == [
        f"error: cannot reach Toxiproxy at {dead}: connection refused"
    ]
    assert result.stdout == ""


def test_bad_url_is_a_usage_error() -> None:
    result = simctl("ftp://example.org", "proxies")
    assert result.exit_code == 2
    assert "--toxiproxy-url" in result.stderr


def test_version() -> None:
    result = simctl(None, "--version")
    assert result.exit_code == 0
    assert "simctl, version" in result.stdout


# -- simctl toxiproxy serve as a real process -----------------------------------------------

# No proxies from the environment: these requests go to 127.0.0.1 directly, like curl would.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def curl(method: str, url: str, body: str | None = None) -> tuple[int, Any]:
    """`curl -X METHOD -d BODY URL`: form content type, as curl sends it with -d."""
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    with _http.open(request, timeout=10) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw.strip() else None


def start_serve(
    tmp_path: Path, *args: str, log_level: str = "info"
) -> tuple[subprocess.Popen[str], Path]:
    stderr_path = tmp_path / "serve.stderr"
    env = {**os.environ, "LOG_LEVEL": log_level}
    env.pop("TOXIPROXY_URL", None)
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "simctl", "toxiproxy", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=tmp_path,  # relative paths (--config) resolve in the test's own folder
        )
    return process, stderr_path


def read_line(process: subprocess.Popen[str], timeout: float = 20.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return process.stdout.readline()


def test_serve_runs_the_readme_curl_examples(tmp_path: Path, upstream: str) -> None:
    process, stderr_path = start_serve(tmp_path, "--port", "0")
    try:
        line = read_line(process)
        assert line.startswith("toxiproxy API listening on http://127.0.0.1:")
        api = line.split(" on ", 1)[1].strip()
        assert int(api.rpartition(":")[2]) != 0

        status, proxy = curl(
            "POST",
            f"{api}/proxies",
            json.dumps({"name": "redis", "listen": "127.0.0.1:0", "upstream": upstream}),
        )
        assert status == 201
        assert proxy["name"] == "redis"
        status, toxic = curl(
            "POST",
            f"{api}/proxies/redis/toxics",
            '{"type": "latency", "attributes": {"latency": 1000}}',
        )
        assert status == 200
        assert toxic["name"] == "latency_downstream"
        status, listed = curl("GET", f"{api}/proxies")
        assert listed["redis"]["toxics"][0]["attributes"] == {"latency": 1000, "jitter": 0}
        status, updated = curl(
            "PATCH",
            f"{api}/proxies/redis/toxics/latency_downstream",
            '{"attributes": {"latency": 500}}',
        )
        assert updated["attributes"]["latency"] == 500
        assert curl("DELETE", f"{api}/proxies/redis/toxics/latency_downstream")[0] == 204
        status, disabled = curl("POST", f"{api}/proxies/redis", '{"enabled": false}')
        assert disabled["enabled"] is False
        assert curl("POST", f"{api}/reset")[0] == 204
        assert curl("GET", f"{api}/proxies/redis")[1]["enabled"] is True
        assert curl("DELETE", f"{api}/proxies/redis")[0] == 204
        assert curl("GET", f"{api}/proxies") == (200, {})
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        assert process.stdout is not None
        rest = process.stdout.read()
        process.stdout.close()
    assert code == 0
    assert rest == ""  # stdout carries only the ready line
    log = stderr_path.read_text()
    assert "level=info" in log
    assert "proxy=redis at=started" in log
    assert "Traceback" not in log


def test_serve_on_a_taken_port_exits_6_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, stderr_path = start_serve(tmp_path, "--port", str(port))
        try:
            code = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
            assert process.stdout is not None
            out = process.stdout.read()
            process.stdout.close()
    assert code == 6
    assert out == ""
    assert stderr_path.read_text().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_serve_loads_config_and_exits_0_on_sigint(tmp_path: Path, upstream: str) -> None:
    config = tmp_path / "toxiproxy.json"
    config.write_text(json.dumps([{"name": "edge", "listen": "127.0.0.1:0", "upstream": upstream}]))
    process, _ = start_serve(tmp_path, "--port", "0", "--config", str(config), "--seed", "7")
    try:
        api = read_line(process).split(" on ", 1)[1].strip()
        proxies = ToxiproxyClient(api).proxies()
        assert list(proxies) == ["edge"]
        assert proxies["edge"].enabled is True
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
        assert process.stdout is not None
        process.stdout.close()
    assert code == 0


@pytest.mark.parametrize(
    ("args", "log_level", "message"),
    [
        (["--config", "missing.json"], "info", "error: missing.json: cannot read config"),
        ([], "loud", "error: LOG_LEVEL=loud: expected one of panic, fatal"),
    ],
    ids=["missing-config", "bad-log-level"],
)
def test_serve_bad_input_exits_2_with_one_line(
    tmp_path: Path, args: list[str], log_level: str, message: str
) -> None:
    process, stderr_path = start_serve(tmp_path, "--port", "0", *args, log_level=log_level)
    try:
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        assert process.stdout is not None
        process.stdout.close()
    assert code == 2
    [line] = stderr_path.read_text().splitlines()
    assert line.startswith(message)
