"""simctl's Toxiproxy client against the embedded server (and stubs of older Toxiproxies)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp import web

from simctl.errors import ToxiproxyError, ToxiproxyUnreachable
from simctl.faults.client import PopulateError, Proxy, Toxic, ToxiproxyClient, parse_version
from simctl.faults.server import ToxiproxyServer


@pytest.fixture
def client(toxiproxy_server: ToxiproxyServer) -> ToxiproxyClient:
    return ToxiproxyClient(toxiproxy_server.url, timeout=5.0)


@pytest.fixture
def upstream(echo_server: tuple[str, int]) -> str:
    return f"{echo_server[0]}:{echo_server[1]}"


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def round_trip(address: str, payload: bytes = b"ping") -> tuple[bytes, float]:
    """Send through the proxy to the echo server; return the echo and the seconds it took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port_of(address)), timeout=5) as sock:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received, time.monotonic() - start


@contextmanager
def stub_server(loop_thread: Any, routes: list[web.RouteDef]) -> Iterator[str]:
    """A small aiohttp app standing in for an older Toxiproxy; yields its URL."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    loop_thread.run(runner.setup())
    loop_thread.run(web.TCPSite(runner, "127.0.0.1", 0).start())
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        loop_thread.run(runner.cleanup())


# -- version -----------------------------------------------------------------------------


def test_version_of_the_embedded_server(client: ToxiproxyClient) -> None:
    assert client.version() == "2.12.0"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("2.5.0", "text/plain", "2.5.0"),  # <= 2.5.0: plain text
        ('{"version": "2.6.0"}\\n', "application/json", "2.6.0"),  # literal backslash-n
        ('{"version": "2.7.0"}\n', "application/json;charset=utf-8", "2.7.0"),
    ],
    ids=["plain-2.5", "broken-json-2.6", "json-2.7+"],
)
def test_version_accepts_every_historical_shape(
    loop_thread: Any, body: str, content_type: str, expected: str
) -> None:
    async def version(request: web.Request) -> web.Response:
        return web.Response(body=body.encode(), headers={"Content-Type": content_type})

    with stub_server(loop_thread, [web.get("/version", version)]) as url:
        assert ToxiproxyClient(url).version() == expected


def test_parse_version_leaves_unknown_text_alone() -> None:
    assert parse_version("  2.5.0\n") == "2.5.0"
    assert parse_version('{"other": 1}') == '{"other": 1}'


# -- proxies -----------------------------------------------------------------------------


def test_create_list_get_and_delete_proxy(client: ToxiproxyClient, upstream: str) -> None:
    assert client.proxies() == {}
    created = client.create_proxy("web.1", upstream)
    assert isinstance(created, Proxy)
    assert created.name == "web.1"
    assert created.upstream == upstream
    assert created.enabled is True
    assert created.toxics == []
    assert port_of(created.listen) != 0  # the real bound port is reported

    assert client.proxies() == {"web.1": created}
    assert client.proxy("web.1") == created
    assert round_trip(created.listen)[0] == b"ping"

    client.delete_proxy("web.1")
    assert client.proxies() == {}
    with pytest.raises(ToxiproxyError) as info:
        client.proxy("web.1")
    assert info.value.status == 404


def test_proxy_created_disabled_keeps_its_listen_text(
    client: ToxiproxyClient, upstream: str
) -> None:
    created = client.create_proxy("sync", upstream, enabled=False)
    assert created.enabled is False
    assert created.listen == "127.0.0.1:0"


def test_names_are_escaped_in_paths(client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("drain main", upstream)
    assert client.proxy("drain main").name == "drain main"
    client.add_toxic("drain main", "latency", name="slow one", attributes={"latency": 1})
    assert client.get_toxic("drain main", "slow one").name == "slow one"
    client.remove_toxic("drain main", "slow one")
    client.delete_proxy("drain main")
    # A "/" stays inside one path segment, so it cannot reach another route by accident.
    with pytest.raises(ToxiproxyError) as info:
        client.proxy("drain/main")
    assert info.value.status == 404


def test_update_proxy_changes_only_what_is_given(
    client: ToxiproxyClient, upstream: str, echo_server: tuple[str, int]
) -> None:
    created = client.create_proxy("edge", "127.0.0.1:1")
    updated = client.update_proxy("edge", upstream=upstream)
    assert updated.upstream == upstream
    assert updated.enabled is True
    assert round_trip(updated.listen)[0] == b"ping"

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    new_port = free.getsockname()[1]
    free.close()
    moved = client.update_proxy("edge", listen=f"127.0.0.1:{new_port}")
    assert port_of(moved.listen) == new_port != port_of(created.listen)
    assert round_trip(moved.listen)[0] == b"ping"


def test_disable_refuses_connections_and_enable_reuses_the_port(
    client: ToxiproxyClient, upstream: str
) -> None:
    created = client.create_proxy("web.2", upstream)
    disabled = client.disable("web.2")
    assert disabled.enabled is False
    with pytest.raises(ConnectionRefusedError):
        round_trip(created.listen)
    enabled = client.enable("web.2")
    assert enabled.enabled is True
    assert enabled.listen == created.listen
    assert round_trip(enabled.listen)[0] == b"ping"


def test_populate_creates_keeps_unchanged_and_returns_proxies(
    client: ToxiproxyClient, upstream: str
) -> None:
    assert client.populate([]) == []
    first = client.populate(
        [
            {"name": "a", "listen": "127.0.0.1:0", "upstream": upstream},
            {"name": "b", "listen": "127.0.0.1:0", "upstream": upstream, "enabled": False},
        ]
    )
    assert [(p.name, p.enabled) for p in first] == [("a", True), ("b", False)]
    client.add_toxic("a", "latency", attributes={"latency": 5})
    # The same entry with the real address is unchanged: the proxy and its toxic survive.
    again = client.populate([{"name": "a", "listen": first[0].listen, "upstream": upstream}])
    assert again[0].listen == first[0].listen
    assert [t.type for t in again[0].toxics] == ["latency"]


def test_populate_failure_reports_the_proxies_processed_so_far(
    client: ToxiproxyClient, upstream: str
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(PopulateError) as info:
            client.populate(
                [
                    {"name": "ok", "listen": "127.0.0.1:0", "upstream": upstream},
                    {
                        "name": "clash",
                        "listen": f"127.0.0.1:{taken.getsockname()[1]}",
                        "upstream": upstream,
                    },
                ]
            )
    finally:
        taken.close()
    assert info.value.status == 500
    assert "address already in use" in info.value.message
    assert [p.name for p in info.value.proxies] == ["ok"]
    assert set(client.proxies()) == {"ok"}  # not atomic, as in Toxiproxy


def test_populate_validation_error_creates_nothing(client: ToxiproxyClient) -> None:
    with pytest.raises(PopulateError) as info:
        client.populate([{"name": "x", "upstream": "127.0.0.1:1"}, {"name": "y"}])
    assert info.value.status == 400
    assert info.value.message == "missing required field: upstream at proxy 2"
    assert info.value.proxies == []
    assert client.proxies() == {}


def test_reset_enables_every_proxy_and_removes_every_toxic(
    client: ToxiproxyClient, upstream: str
) -> None:
    client.create_proxy("a", upstream)
    client.create_proxy("b", upstream)
    client.add_toxic("a", "latency", attributes={"latency": 10})
    client.add_toxic("b", "timeout", stream="upstream")
    client.disable("b")
    client.reset()
    proxies = client.proxies()
    assert all(p.enabled and p.toxics == [] for p in proxies.values())


# -- toxics ------------------------------------------------------------------------------


def test_add_toxic_defaults_and_listing_order(client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    down = client.add_toxic("web.1", "latency", attributes={"latency": 100})
    assert down == Toxic(
        name="latency_downstream",
        type="latency",
        stream="downstream",
        toxicity=1.0,
        attributes={"latency": 100, "jitter": 0},
    )
    up = client.add_toxic(
        "web.1", "bandwidth", stream="upstream", toxicity=0.5, attributes={"rate": 10}, name="thin"
    )
    assert (up.name, up.stream, up.toxicity) == ("thin", "upstream", 0.5)
    # Upstream toxics first, then downstream, as Toxiproxy lists them.
    assert [t.name for t in client.toxics("web.1")] == ["thin", "latency_downstream"]
    assert client.get_toxic("web.1", "thin") == up
    assert client.proxy("web.1").toxics == [up, down]


def test_toxics_accept_a_proxy_object(client: ToxiproxyClient, upstream: str) -> None:
    proxy = client.create_proxy("web.1", upstream)
    client.add_toxic(proxy, "noop")
    assert [t.type for t in client.toxics(proxy)] == ["noop"]


def test_update_toxic_merges_attributes_and_sets_toxicity(
    client: ToxiproxyClient, upstream: str
) -> None:
    client.create_proxy("web.1", upstream)
    client.add_toxic("web.1", "latency", attributes={"latency": 100, "jitter": 10})
    merged = client.update_toxic("web.1", "latency_downstream", attributes={"latency": 500})
    assert merged.attributes == {"latency": 500, "jitter": 10}
    assert merged.toxicity == 1.0
    changed = client.update_toxic("web.1", "latency_downstream", toxicity=0.25)
    assert changed.toxicity == 0.25
    assert changed.attributes == {"latency": 500, "jitter": 10}


def test_remove_toxic(client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    client.add_toxic("web.1", "slow_close", attributes={"delay": 10})
    client.remove_toxic("web.1", "slow_close_downstream")
    assert client.toxics("web.1") == []
    with pytest.raises(ToxiproxyError) as info:
        client.remove_toxic("web.1", "slow_close_downstream")
    assert (info.value.status, info.value.message) == (404, "toxic not found")


def test_latency_toxic_slows_the_proxy_only_inside_the_block(
    client: ToxiproxyClient, upstream: str
) -> None:
    proxy = client.create_proxy("web.1", upstream)
    with client.toxic("web.1", "latency", attributes={"latency": 100}) as toxic:
        assert toxic.name == "latency_downstream"
        assert client.toxics("web.1") == [toxic]
        echoed, elapsed = round_trip(proxy.listen)
        assert echoed == b"ping"
        assert elapsed >= 0.09
    assert client.toxics("web.1") == []


def test_scoped_toxic_is_removed_when_the_block_raises(
    client: ToxiproxyClient, upstream: str
) -> None:
    client.create_proxy("web.1", upstream)

    class Boom(Exception):
        pass

    seen: list[str] = []

    def fail_inside() -> None:
        with client.toxic("web.1", "timeout", stream="upstream", name="hang"):
            seen.extend(t.name for t in client.toxics("web.1"))
            raise Boom

    with pytest.raises(Boom):
        fail_inside()
    assert seen == ["hang"]
    assert client.toxics("web.1") == []


def test_scoped_toxic_tolerates_removal_inside_the_block(
    client: ToxiproxyClient, upstream: str
) -> None:
    client.create_proxy("web.1", upstream)
    with client.toxic("web.1", "latency", attributes={"latency": 1}):
        client.reset()  # healed from elsewhere: the 404 on exit is not an error
    assert client.toxics("web.1") == []


# -- errors ------------------------------------------------------------------------------


def test_not_found_maps_to_toxiproxy_error(client: ToxiproxyClient) -> None:
    with pytest.raises(ToxiproxyError) as info:
        client.proxy("nope")
    error = info.value
    assert (error.status, error.message, error.method, error.path) == (
        404,
        "proxy not found",
        "GET",
        "/proxies/nope",
    )
    assert error.exit_code == 4
    assert "\n" not in str(error)


def test_conflicts_map_to_409(client: ToxiproxyClient, upstream: str) -> None:
    client.create_proxy("web.1", upstream)
    with pytest.raises(ToxiproxyError) as info:
        client.create_proxy("web.1", upstream)
    assert (info.value.status, info.value.message) == (409, "proxy already exists")
    client.add_toxic("web.1", "latency")
    with pytest.raises(ToxiproxyError) as info:
        client.add_toxic("web.1", "latency")
    assert (info.value.status, info.value.message) == (409, "toxic already exists")


def test_bad_requests_map_to_400_with_the_server_message(
    client: ToxiproxyClient, upstream: str
) -> None:
    client.create_proxy("web.1", upstream)
    with pytest.raises(ToxiproxyError) as info:
        client.add_toxic("web.1", "down")
    assert (info.value.status, info.value.message) == (400, "invalid toxic type")
    assert info.value.method == "POST"
    assert info.value.path == "/proxies/web.1/toxics"
    with pytest.raises(ToxiproxyError) as info:
        client.add_toxic("web.1", "latency", stream="sideways")
    assert info.value.message == "stream was invalid, can be either upstream or downstream"
    with pytest.raises(ToxiproxyError) as info:
        client.add_toxic("web.1", "latency", attributes={"latency": 100.5})
    assert info.value.status == 400
    assert info.value.message.startswith("bad request body: json: cannot unmarshal number 100.5")


def test_unreachable_server_raises_one_line_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ToxiproxyUnreachable) as info:
        client.proxies()
    message = str(info.value)
    assert message == f"cannot reach Toxiproxy at http://127.0.0.1:{port}: connection refused"
    assert info.value.exit_code == 5


def test_silent_server_times_out_as_unreachable() -> None:
    # A listening socket nobody accepts from: the connect succeeds, the answer never comes.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ToxiproxyUnreachable) as info:
            ToxiproxyClient(url, timeout=0.3).version()
    assert str(info.value) == f"no answer from Toxiproxy at {url} within 0.3s"


def test_clients_are_independent(
    toxiproxy_server_factory: Callable[..., ToxiproxyServer], upstream: str
) -> None:
    one = ToxiproxyClient(toxiproxy_server_factory().url)
    two = ToxiproxyClient(toxiproxy_server_factory().url)
    one.create_proxy("only-on-one", upstream)
    assert set(one.proxies()) == {"only-on-one"}
    assert two.proxies() == {}


def test_a_server_that_is_not_toxiproxy_is_an_error(loop_thread: Any) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    with (
        stub_server(loop_thread, [web.get("/proxies", page)]) as url,
        pytest.raises(ToxiproxyError) as info,
    ):
        ToxiproxyClient(url).proxies()
    assert info.value.message == "the reply is not JSON; is this a Toxiproxy server?"


def test_rejects_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="not an http"):
        ToxiproxyClient("ftp://example.org")


# -- pre-2.6 servers: PATCH answers 405, POST does the update ------------------------------


def test_updates_fall_back_to_post_when_patch_is_not_allowed(loop_thread: Any) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []
    proxy = {
        "name": "web.1",
        "listen": "127.0.0.1:5000",
        "upstream": "127.0.0.1:6000",
        "enabled": True,
        "toxics": [],
    }
    toxic = {
        "attributes": {"latency": 500, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }

    async def update_proxy(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append((request.method, request.path, body))
        return web.json_response({**proxy, **body})

    async def update_toxic(request: web.Request) -> web.Response:
        calls.append((request.method, request.path, await request.json()))
        return web.json_response(toxic)

    async def refuse(request: web.Request) -> web.Response:
        calls.append((request.method, request.path, {}))
        return web.Response(status=405)  # gorilla/mux: empty body, no Content-Type

    routes = [
        web.post("/proxies/{proxy}", update_proxy),
        web.patch("/proxies/{proxy}", refuse),
        web.post("/proxies/{proxy}/toxics/{toxic}", update_toxic),
        web.patch("/proxies/{proxy}/toxics/{toxic}", refuse),
    ]
    with stub_server(loop_thread, routes) as url:
        client = ToxiproxyClient(url)
        assert client.disable("web.1").enabled is False
        updated = client.update_toxic("web.1", "latency_downstream", attributes={"latency": 500})
        assert updated.attributes["latency"] == 500
    # One PATCH refused, then POST; the 405 is remembered, so the next update is POST only.
    assert calls == [
        ("PATCH", "/proxies/web.1", {}),
        ("POST", "/proxies/web.1", {"enabled": False}),
        ("POST", "/proxies/web.1/toxics/latency_downstream", {"attributes": {"latency": 500}}),
    ]


def test_updates_use_patch_on_current_servers(loop_thread: Any) -> None:
    methods: list[str] = []

    async def update_proxy(request: web.Request) -> web.Response:
        methods.append(request.method)
        return web.json_response(
            {
                "name": "p",
                "listen": "l",
                "upstream": "u",
                "enabled": True,
                "Logger": {},
                "toxics": [],
            }
        )

    routes = [
        web.post("/proxies/{proxy}", update_proxy),
        web.patch("/proxies/{proxy}", update_proxy),
    ]
    with stub_server(loop_thread, routes) as url:
        ToxiproxyClient(url).enable("p")
    assert methods == ["PATCH"]
