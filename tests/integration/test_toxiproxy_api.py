"""The HTTP API of the embedded Toxiproxy server against docs/toxiproxy.md
("Conventions and errors", "Deliberate differences").

Every reply is checked on the wire: status, exact body bytes, Content-Type, key order.
After every kind of bad input the server must still serve (``api.assert_serving``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.toxiproxy_helpers import (
    LOCALHOST,
    Harness,
    Reply,
    echo,
    expect_eof,
    expect_refused,
    harness,
    listening_port,
    poll,
    port_of,
    read_exactly,
    round_trip,
)

PROXY_KEYS = ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
TOXIC_KEYS = ["attributes", "name", "type", "stream", "toxicity"]
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

# Attribute keys in Go struct order, all zero by default
# (docs/toxiproxy.md, "Toxic defaults and validation").
DEFAULT_ATTRIBUTES = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with harness() as h:
        yield h


def go_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def assert_error(reply: Reply, status: int, message: str) -> None:
    """http.Error's shape: JSON body plus newline, served as text/plain (section 2.1)."""
    assert reply.status == status, reply.body
    assert reply.body == go_json({"error": message, "status": status}) + b"\n"
    assert reply.content_type == TEXT


def assert_error_prefix(reply: Reply, status: int, prefix: str) -> str:
    assert reply.status == status, reply.body
    assert reply.content_type == TEXT
    assert reply.body.endswith(b"}\n")
    message, _ = reply.error()
    assert message.startswith(prefix), message
    return message


def proxy_json(name: str, listen: str, upstream: str, enabled: bool = True,
               toxics: list[Any] | None = None) -> dict[str, Any]:
    return {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled,
            "Logger": {}, "toxics": toxics or []}


def toxic_json(name: str, type: str, stream: str = "downstream", toxicity: float = 1,
               attributes: dict[str, int] | None = None) -> dict[str, Any]:
    attrs = DEFAULT_ATTRIBUTES[type] if attributes is None else attributes
    return {"attributes": attrs, "name": name, "type": type, "stream": stream,
            "toxicity": toxicity}


# -- conventions (section 2.1) -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/", "/proxies/", "/version/", "/proxies/p/toxics/", "/proxies/p/x/y",
             "/metrics"]  # /metrics only exists when metrics are enabled
)
async def test_unknown_path_is_404_text(h: Harness, path: str) -> None:
    reply = await h.api.call("GET", path)
    assert reply.status == 404
    assert reply.body == b"404 page not found\n"
    assert reply.content_type == TEXT


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/proxies"),
        ("DELETE", "/reset"),
        ("GET", "/reset"),
        ("POST", "/version"),
        ("DELETE", "/proxies"),
        ("PUT", "/proxies/p"),
        ("PUT", "/proxies/p/toxics"),
        ("DELETE", "/proxies/p/toxics"),
        ("GET", "/populate"),
        ("HEAD", "/version"),
        ("HEAD", "/proxies"),
    ],
)
async def test_wrong_method_is_405_with_empty_body(h: Harness, method: str, path: str) -> None:
    reply = await h.api.call(method, path)
    assert reply.status == 405
    assert reply.body == b""
    assert "Content-Type" not in reply.headers
    await h.api.assert_serving()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/version"), ("GET", "/proxies"), ("GET", "/nope"), ("POST", "/proxies"),
     ("POST", "/reset"), ("PUT", "/proxies")],
)
async def test_mozilla_user_agent_is_403_before_routing(
    h: Harness, method: str, path: str
) -> None:
    body = {"name": "browser", "upstream": h.echo.address}
    ua = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
    reply = await h.api.call(method, path, body, headers=ua)
    assert reply.status == 403
    assert reply.body == b"User agent not allowed\n"
    assert reply.content_type == TEXT
    assert (await h.api.expect(200, "GET", "/proxies")) == {}  # nothing was created


async def test_only_a_mozilla_prefix_is_blocked(h: Harness) -> None:
    for ua in ("curl/8.5.0", "python-requests/2.32 (like Mozilla/5.0)", "mozilla/5.0"):
        reply = await h.api.call("GET", "/version", headers={"User-Agent": ua})
        assert reply.status == 200, ua


async def test_every_reply_has_a_distinct_request_id(h: Harness) -> None:
    replies = [
        await h.api.call("GET", "/version"),
        await h.api.call("GET", "/proxies"),
        await h.api.call("POST", "/proxies", {"name": "p", "upstream": h.echo.address}),
        await h.api.call("POST", "/proxies", {"name": "p", "upstream": h.echo.address}),
        await h.api.call("GET", "/nope"),
        await h.api.call("PUT", "/proxies"),
        await h.api.call("GET", "/version", headers={"User-Agent": "Mozilla/5.0"}),
        await h.api.call("POST", "/proxies", raw=b"{"),
        await h.api.call("DELETE", "/proxies/p"),
        await h.api.call("POST", "/reset"),
    ]
    assert [r.status for r in replies] == [200, 200, 201, 409, 404, 405, 403, 400, 204, 204]
    ids = [r.headers.get("X-Toxiproxy-Request-Id") for r in replies]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids


async def test_version_body_and_content_type(h: Harness) -> None:
    reply = await h.api.call("GET", "/version")
    assert reply.status == 200
    assert reply.body == b'{"version": "2.12.0"}\n'
    assert reply.content_type == "application/json;charset=utf-8"
    assert reply.json() == {"version": "2.12.0"}


async def test_reset_is_204_with_empty_body(h: Harness) -> None:
    reply = await h.api.call("POST", "/reset", raw=b"ignored, not JSON")
    assert reply.status == 204
    assert reply.body == b""
    assert "Content-Type" not in reply.headers


# -- proxies: create, list, show, delete --------------------------------------------------


async def test_empty_proxy_list(h: Harness) -> None:
    reply = await h.api.call("GET", "/proxies")
    assert reply.status == 200
    assert reply.body == b"{}"
    assert reply.content_type == JSON


async def test_create_proxy_reply_bytes_and_key_order(h: Harness) -> None:
    body = {"name": "web", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address}
    reply = await h.api.call("POST", "/proxies", body)
    assert reply.status == 201
    assert reply.content_type == JSON
    data = reply.json()
    assert list(data) == PROXY_KEYS
    port = port_of(data["listen"])
    assert port != 0
    assert reply.body == go_json(proxy_json("web", f"{LOCALHOST}:{port}", h.echo.address))
    # The reported port is the real one: traffic flows through it.
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer, b"hello")
    shown = await h.api.call("GET", "/proxies/web")
    assert shown.status == 200
    assert shown.content_type == JSON
    assert shown.body == reply.body


@pytest.mark.parametrize("listen", [f"{LOCALHOST}:0", "localhost:0", ":0", "", None])
async def test_listen_port_zero_reports_the_bound_port(h: Harness, listen: str | None) -> None:
    body: dict[str, Any] = {"name": "p", "upstream": h.echo.address}
    if listen is not None:
        body["listen"] = listen
    created = await h.api.expect(201, "POST", "/proxies", body)
    # Deliberate fix (section 7.4): no listen / no host binds 127.0.0.1, not every interface.
    host, _, port_text = created["listen"].rpartition(":")
    assert host == LOCALHOST
    assert int(port_text) > 0
    reader, writer = await h.clients.open(int(port_text))
    await round_trip(reader, writer)
    assert (await h.api.get_proxy("p"))["listen"] == created["listen"]


async def test_disabled_proxy_keeps_listen_text_until_started(h: Harness) -> None:
    created = await h.api.create_proxy("p", h.echo.address, enabled=False)
    assert created == proxy_json("p", f"{LOCALHOST}:0", h.echo.address, enabled=False)
    enabled = await h.api.update_proxy("p", {"enabled": True})
    port = port_of(enabled["listen"])
    assert port != 0
    assert enabled["enabled"] is True
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)


async def test_upstream_is_not_checked_at_create(h: Harness) -> None:
    created = await h.api.create_proxy("p", "does-not-resolve.invalid:1")
    assert created["upstream"] == "does-not-resolve.invalid:1"


async def test_proxy_list_is_keyed_by_sorted_name(h: Harness) -> None:
    for name in ("zeta", "alpha", "mid", "Beta"):
        await h.api.create_proxy(name, h.echo.address)
    await h.api.add_toxic("mid", "latency", {"latency": 5})
    reply = await h.api.call("GET", "/proxies")
    assert reply.status == 200
    data = reply.json()
    assert list(data) == ["Beta", "alpha", "mid", "zeta"]
    for name, proxy in data.items():
        assert list(proxy) == PROXY_KEYS
        assert proxy["name"] == name
    assert data["mid"]["toxics"] == [
        toxic_json("latency_downstream", "latency", attributes={"latency": 5, "jitter": 0})
    ]


async def test_name_with_space_works_url_encoded(h: Harness) -> None:
    await h.api.create_proxy("with space", h.echo.address)
    assert (await h.api.call("GET", "/proxies/with%20space")).status == 200
    await h.api.add_toxic("with space", "latency", {"latency": 1})
    reply = await h.api.call("DELETE", "/proxies/with%20space/toxics/latency_downstream")
    assert reply.status == 204
    assert (await h.api.call("DELETE", "/proxies/with%20space")).status == 204


async def test_delete_proxy_then_404(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call("DELETE", "/proxies/p")
    assert reply.status == 204
    assert reply.body == b""
    assert "Content-Type" not in reply.headers
    assert_error(await h.api.call("DELETE", "/proxies/p"), 404, "proxy not found")
    assert_error(await h.api.call("GET", "/proxies/p"), 404, "proxy not found")
    assert (await h.api.expect(200, "GET", "/proxies")) == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/proxies/ghost"),
        ("PATCH", "/proxies/ghost"),
        ("POST", "/proxies/ghost"),
        ("DELETE", "/proxies/ghost"),
        ("GET", "/proxies/ghost/toxics"),
        ("POST", "/proxies/ghost/toxics"),
        ("GET", "/proxies/ghost/toxics/t"),
        ("PATCH", "/proxies/ghost/toxics/t"),
        ("DELETE", "/proxies/ghost/toxics/t"),
    ],
)
async def test_unknown_proxy_is_404(h: Harness, method: str, path: str) -> None:
    body = {"type": "latency"} if method in ("POST", "PATCH") else None
    reply = await h.api.call(method, path, body)
    assert_error(reply, 404, "proxy not found")
    await h.api.assert_serving()


# -- proxies: bad input (each followed by a serving check) -------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "bad request body: EOF"),
        (b"   \n", "bad request body: EOF"),
        (b"[]", "bad request body: json: cannot unmarshal array into Go value of type "
                "toxiproxy.Proxy"),
        (b'"p"', "bad request body: json: cannot unmarshal string into Go value of type "
                 "toxiproxy.Proxy"),
        (b'{"name":"p","upstream":"127.0.0.1:1","enabled":"yes"}',
         "bad request body: json: cannot unmarshal string into Go struct field "
         "Proxy.enabled of type bool"),
        (b'{"name":"p","upstream":"127.0.0.1:1","enabled":1}',
         "bad request body: json: cannot unmarshal number into Go struct field "
         "Proxy.enabled of type bool"),
        (b'{"name":5,"upstream":"127.0.0.1:1"}',
         "bad request body: json: cannot unmarshal number into Go struct field "
         "Proxy.name of type string"),
        (b'{"name":"p","upstream":["127.0.0.1:1"]}',
         "bad request body: json: cannot unmarshal array into Go struct field "
         "Proxy.upstream of type string"),
        (b'{"upstream":"127.0.0.1:1"}', "missing required field: name"),
        (b"{}", "missing required field: name"),  # name is checked first
        (b'{"name":"","upstream":"127.0.0.1:1"}', "missing required field: name"),
        (b'{"name":null,"upstream":"127.0.0.1:1"}', "missing required field: name"),
        (b'{"name":"p"}', "missing required field: upstream"),
        (b'{"name":"p","upstream":""}', "missing required field: upstream"),
    ],
)
async def test_create_proxy_bad_body_exact_error(h: Harness, raw: bytes, message: str) -> None:
    assert_error(await h.api.call("POST", "/proxies", raw=raw), 400, message)
    assert (await h.api.expect(200, "GET", "/proxies")) == {}
    await h.api.assert_serving()


@pytest.mark.parametrize(
    "raw", [b"{", b'{"name":"p",}', b"nope", b'{"name":"p"} trailing', b"\xff\xfe", b"NaN"]
)
async def test_create_proxy_malformed_json_is_400(h: Harness, raw: bytes) -> None:
    assert_error_prefix(await h.api.call("POST", "/proxies", raw=raw), 400, "bad request body: ")
    assert (await h.api.expect(200, "GET", "/proxies")) == {}
    await h.api.assert_serving()


async def test_unknown_fields_are_ignored(h: Harness) -> None:
    body = {"name": "p", "upstream": h.echo.address, "listen": f"{LOCALHOST}:0",
            "color": "blue", "toxics": [{"type": "latency"}], "Logger": {"x": 1}}
    created = await h.api.expect(201, "POST", "/proxies", body)
    assert created["toxics"] == []
    assert created["Logger"] == {}


async def test_null_enabled_means_default_true(h: Harness) -> None:
    created = await h.api.create_proxy("p", h.echo.address, enabled=None)
    assert created["enabled"] is True


async def test_duplicate_proxy_is_409(h: Harness) -> None:
    first = await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call(
        "POST", "/proxies", {"name": "p", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"}
    )
    assert_error(reply, 409, "proxy already exists")
    assert await h.api.get_proxy("p") == first  # untouched
    await h.api.assert_serving()


async def test_listen_on_a_taken_port_is_500_and_not_added(h: Harness) -> None:
    with listening_port() as taken:
        body = {"name": "p", "upstream": h.echo.address, "listen": f"{LOCALHOST}:{taken}"}
        reply = await h.api.call("POST", "/proxies", body)
        assert_error(
            reply, 500, f"listen tcp {LOCALHOST}:{taken}: bind: address already in use"
        )
    assert_error(await h.api.call("GET", "/proxies/p"), 404, "proxy not found")
    await h.api.assert_serving()
    # The name is free again.
    await h.api.create_proxy("p", h.echo.address)


async def test_listen_without_port_is_500(h: Harness) -> None:
    reply = await h.api.call("POST", "/proxies", {"name": "p", "upstream": "x:1",
                                                  "listen": "bogus"})
    assert_error(reply, 500, "listen tcp: address bogus: missing port in address")
    reply = await h.api.call("POST", "/proxies", {"name": "p", "upstream": "x:1",
                                                  "listen": "127.0.0.1:99999"})
    assert_error_prefix(reply, 500, "listen tcp")
    assert (await h.api.expect(200, "GET", "/proxies")) == {}
    await h.api.assert_serving()


@pytest.mark.parametrize("name", ["a/b", "/", "a/", "x/y/z"])
async def test_proxy_name_with_slash_is_400(h: Harness, name: str) -> None:
    # Deliberate fix (section 7.13): Toxiproxy creates an unreachable proxy.
    reply = await h.api.call("POST", "/proxies", {"name": name, "upstream": h.echo.address})
    assert_error_prefix(reply, 400, "")
    assert (await h.api.expect(200, "GET", "/proxies")) == {}
    await h.api.assert_serving()


# -- proxies: update (section 2.3) --------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_update_missing_fields_keep_current_values(h: Harness, method: str) -> None:
    created = await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call(method, "/proxies/p", {"enabled": False})
    assert reply.status == 200
    assert reply.content_type == JSON
    data = reply.json()
    assert list(data) == PROXY_KEYS
    assert data == {**created, "enabled": False}
    await expect_refused(port_of(created["listen"]))
    reply = await h.api.call(method, "/proxies/p", {})
    assert reply.json() == {**created, "enabled": False}
    reply = await h.api.call(method, "/proxies/p", {"enabled": True})
    assert reply.json() == created  # same listen string, same port


async def test_update_ignores_name(h: Harness) -> None:
    created = await h.api.create_proxy("p", h.echo.address)
    data = await h.api.update_proxy("p", {"name": "renamed"})
    assert data == created
    assert_error(await h.api.call("GET", "/proxies/renamed"), 404, "proxy not found")


async def test_update_with_equivalent_listen_does_not_restart(h: Harness) -> None:
    port = await h.proxy("p")
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    data = await h.api.update_proxy("p", {"listen": f"localhost:{port}"})
    assert data["listen"] == f"{LOCALHOST}:{port}"
    data = await h.api.update_proxy("p", {"listen": f"{LOCALHOST}:{port}",
                                          "upstream": h.echo.address, "enabled": True})
    assert data["listen"] == f"{LOCALHOST}:{port}"
    await round_trip(reader, writer)  # the open connection survived both updates


async def test_update_upstream_restarts_and_drops_connections(h: Harness) -> None:
    other = await h.serve(echo)
    port = await h.proxy("p")
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    await h.api.add_toxic("p", "noop")
    data = await h.api.update_proxy("p", {"upstream": other.address})
    assert data["upstream"] == other.address
    assert data["listen"] == f"{LOCALHOST}:{port}"
    assert [t["name"] for t in data["toxics"]] == ["noop_downstream"]  # toxics are kept
    await expect_eof(reader)
    reader2, writer2 = await h.clients.open(port)
    await round_trip(reader2, writer2)
    assert other.accepted == 1


async def test_update_listen_moves_the_proxy(h: Harness) -> None:
    port = await h.proxy("p")
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    data = await h.api.update_proxy("p", {"listen": f"{LOCALHOST}:0"})
    new_port = port_of(data["listen"])
    assert new_port not in (0, port)
    assert data["enabled"] is True
    await expect_eof(reader)
    await expect_refused(port)
    reader2, writer2 = await h.clients.open(new_port)
    await round_trip(reader2, writer2)


async def test_update_to_a_taken_port_is_500_and_leaves_proxy_disabled(h: Harness) -> None:
    port = await h.proxy("p")
    await h.api.add_toxic("p", "latency", {"latency": 1})
    with listening_port() as taken:
        reply = await h.api.call("PATCH", "/proxies/p", {"listen": f"{LOCALHOST}:{taken}"})
        assert_error(
            reply, 500, f"listen tcp {LOCALHOST}:{taken}: bind: address already in use"
        )
        data = await h.api.get_proxy("p")
        # Not atomic, as in Toxiproxy: disabled, showing the new address, toxics kept.
        assert data["enabled"] is False
        assert data["listen"] == f"{LOCALHOST}:{taken}"
        assert [t["name"] for t in data["toxics"]] == ["latency_downstream"]
    await expect_refused(port)
    await h.api.assert_serving()


async def test_update_to_an_unresolvable_listen_is_500_and_changes_nothing(h: Harness) -> None:
    port = await h.proxy("p")
    reader, writer = await h.clients.open(port)
    before = await h.api.get_proxy("p")
    reply = await h.api.call("PATCH", "/proxies/p", {"listen": "bogus"})
    assert_error(reply, 500, "listen tcp: address bogus: missing port in address")
    assert await h.api.get_proxy("p") == before
    await round_trip(reader, writer)
    await h.api.assert_serving()


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        (b"", "bad request body: EOF"),
        (b"{", "bad request body: "),
        (b"[]", "bad request body: json: cannot unmarshal array into Go value of type "),
        (b'{"enabled":"yes"}', "bad request body: json: cannot unmarshal string into Go "
                               "struct field Proxy.enabled of type bool"),
        (b'{"listen":8080}', "bad request body: json: cannot unmarshal number into Go "
                             "struct field Proxy.listen of type string"),
    ],
)
async def test_update_proxy_bad_body_is_400_and_changes_nothing(
    h: Harness, raw: bytes, prefix: str
) -> None:
    before = await h.api.create_proxy("p", h.echo.address)
    assert_error_prefix(await h.api.call("PATCH", "/proxies/p", raw=raw), 400, prefix)
    assert await h.api.get_proxy("p") == before
    await h.api.assert_serving()


# -- toxics: create, show, list, delete (section 2.5) -------------------------------------


@pytest.mark.parametrize("type", list(DEFAULT_ATTRIBUTES))
async def test_toxic_defaults_and_wire_shape(h: Harness, type: str) -> None:
    await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call("POST", "/proxies/p/toxics", {"type": type})
    assert reply.status == 200  # not 201
    assert reply.content_type == JSON
    expected = toxic_json(f"{type}_downstream", type)
    assert list(reply.json()) == TOXIC_KEYS
    assert reply.body == go_json(expected)
    shown = await h.api.call("GET", f"/proxies/p/toxics/{type}_downstream")
    assert shown.status == 200
    assert shown.body == reply.body
    listed = await h.api.call("GET", "/proxies/p/toxics")
    assert listed.body == go_json([expected])
    assert (await h.api.get_proxy("p"))["toxics"] == [expected]


async def test_noop_toxic_echoes_empty_attributes(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call("POST", "/proxies/p/toxics",
                             {"type": "noop", "name": "n", "attributes": {"x": 1}})
    assert reply.status == 200
    assert reply.body == (
        b'{"attributes":{},"name":"n","type":"noop","stream":"downstream","toxicity":1}'
    )


async def test_slicer_toxic_wire_shape(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    body = {"type": "slicer", "stream": "upstream", "toxicity": 0.25,
            "attributes": {"delay": 10, "average_size": 100, "size_variation": 20}}
    reply = await h.api.call("POST", "/proxies/p/toxics", body)
    assert reply.body == (
        b'{"attributes":{"average_size":100,"size_variation":20,"delay":10},'
        b'"name":"slicer_upstream","type":"slicer","stream":"upstream","toxicity":0.25}'
    )


async def test_empty_toxic_list_is_an_array(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call("GET", "/proxies/p/toxics")
    assert reply.status == 200
    assert reply.body == b"[]"
    assert reply.content_type == JSON


async def test_toxics_array_lists_upstream_first_then_insertion_order(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    order = [("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream"),
             ("u2", "UPSTREAM"), ("d3", "Downstream"), ("u3", "upstream")]
    for name, stream in order:
        await h.api.add_toxic("p", "latency", name=name, stream=stream)
    expected = ["u1", "u2", "u3", "d1", "d2", "d3"]
    listed = await h.api.expect(200, "GET", "/proxies/p/toxics")
    assert [t["name"] for t in listed] == expected
    assert [t["name"] for t in (await h.api.get_proxy("p"))["toxics"]] == expected
    index = await h.api.expect(200, "GET", "/proxies")
    assert [t["name"] for t in index["p"]["toxics"]] == expected
    await h.api.remove_toxic("p", "u1")
    await h.api.add_toxic("p", "latency", name="u1", stream="upstream")
    listed = await h.api.expect(200, "GET", "/proxies/p/toxics")
    assert [t["name"] for t in listed] == ["u2", "u3", "u1", "d1", "d2", "d3"]


async def test_stream_is_case_insensitive_and_echoed_as_sent(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    toxic = await h.api.add_toxic("p", "latency", stream="UPSTREAM")
    assert toxic == toxic_json("latency_UPSTREAM", "latency", stream="UPSTREAM")


async def test_null_fields_keep_defaults(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    body = {"type": "latency", "name": None, "stream": None, "toxicity": None,
            "attributes": None}
    toxic = await h.api.expect(200, "POST", "/proxies/p/toxics", body)
    assert toxic == toxic_json("latency_downstream", "latency")
    body = {"type": "latency", "name": "partial", "attributes": {"latency": None,
                                                                "jitter": 3}}
    toxic = await h.api.expect(200, "POST", "/proxies/p/toxics", body)
    assert toxic["attributes"] == {"latency": 0, "jitter": 3}


async def test_unknown_attribute_keys_are_ignored(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    toxic = await h.api.add_toxic("p", "latency", {"latency": 10, "bogus": "x"})
    assert toxic["attributes"] == {"latency": 10, "jitter": 0}


async def test_toxics_can_be_added_while_disabled(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address, enabled=False)
    await h.api.add_toxic("p", "latency", {"latency": 10})
    data = await h.api.update_proxy("p", {"enabled": True})
    assert [t["name"] for t in data["toxics"]] == ["latency_downstream"]


async def test_delete_toxic_then_404(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    await h.api.add_toxic("p", "latency")
    reply = await h.api.call("DELETE", "/proxies/p/toxics/latency_downstream")
    assert reply.status == 204
    assert reply.body == b""
    assert "Content-Type" not in reply.headers
    for method in ("GET", "PATCH", "POST", "DELETE"):
        body = {"toxicity": 1} if method in ("PATCH", "POST") else None
        reply = await h.api.call(method, "/proxies/p/toxics/latency_downstream", body)
        assert_error(reply, 404, "toxic not found")
    assert (await h.api.expect(200, "GET", "/proxies/p/toxics")) == []


# -- toxics: bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "bogus"}, 400, "invalid toxic type"),
        ({}, 400, "invalid toxic type"),
        ({"type": ""}, 400, "invalid toxic type"),
        ({"type": "down"}, 400, "invalid toxic type"),  # "down" is {"enabled":false}
        ({"type": "Latency"}, 400, "invalid toxic type"),
        ({"type": "latency", "stream": ""}, 400,
         "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "stream": "sideways"}, 400,
         "stream was invalid, can be either upstream or downstream"),
        # stream is checked before type
        ({"type": "bogus", "stream": "sideways"}, 400,
         "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "attributes": {"latency": 100.5}}, 400,
         "bad request body: json: cannot unmarshal number 100.5 into Go struct field "
         "LatencyToxic.attributes.latency of type int64"),
        ({"type": "latency", "attributes": {"latency": "100"}}, 400,
         "bad request body: json: cannot unmarshal string into Go struct field "
         "LatencyToxic.attributes.latency of type int64"),
        ({"type": "bandwidth", "attributes": {"rate": True}}, 400,
         "bad request body: json: cannot unmarshal bool into Go struct field "
         "BandwidthToxic.attributes.rate of type int64"),
        ({"type": "latency", "toxicity": "0.5"}, 400,
         "bad request body: json: cannot unmarshal string into Go struct field "
         "ToxicWrapper.toxicity of type float32"),
        ({"type": 5}, 400,
         "bad request body: json: cannot unmarshal number into Go struct field "
         "ToxicWrapper.type of type string"),
    ],
)
async def test_create_toxic_bad_input_exact_error(
    h: Harness, body: dict[str, Any], status: int, message: str
) -> None:
    await h.api.create_proxy("p", h.echo.address)
    assert_error(await h.api.call("POST", "/proxies/p/toxics", body), status, message)
    assert (await h.api.expect(200, "GET", "/proxies/p/toxics")) == []
    await h.api.assert_serving()


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b'"latency"', b'{"type":"latency",}', b"null"]
)
async def test_create_toxic_malformed_body_is_400(h: Harness, raw: bytes) -> None:
    await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call("POST", "/proxies/p/toxics", raw=raw)
    assert_error_prefix(reply, 400, "bad request body: ")
    assert (await h.api.expect(200, "GET", "/proxies/p/toxics")) == []
    await h.api.assert_serving()


@pytest.mark.parametrize(
    ("type", "attributes", "toxicity"),
    [
        ("latency", {"latency": -5}, None),
        ("latency", {"jitter": -1}, None),
        ("latency", {"latency": 10**12}, None),  # absurd: about 31 years
        ("latency", {"latency": 2**63}, None),  # beyond int64 too
        ("latency", {}, 2.5),
        ("latency", {}, 1.0001),
        ("latency", {}, -0.1),
        ("bandwidth", {"rate": -1}, None),  # crashes real Toxiproxy on the first data
        ("slow_close", {"delay": -1}, None),
        ("timeout", {"timeout": -300}, None),
        ("reset_peer", {"timeout": -1}, None),
        ("limit_data", {"bytes": -10}, None),
        ("slicer", {"average_size": 0}, None),  # recurses forever in Toxiproxy
        ("slicer", {"average_size": 10, "size_variation": 10}, None),
        ("slicer", {"average_size": 10, "size_variation": -1}, None),
        ("slicer", {"average_size": 10, "delay": -1}, None),
    ],
)
async def test_out_of_range_values_are_400(
    h: Harness, type: str, attributes: dict[str, int], toxicity: float | None
) -> None:
    # Deliberate fix (section 7.5): Toxiproxy accepts these (and may crash on them).
    port = await h.proxy("p")
    body: dict[str, Any] = {"type": type, "attributes": attributes}
    if toxicity is not None:
        body["toxicity"] = toxicity
    assert_error_prefix(await h.api.call("POST", "/proxies/p/toxics", body), 400, "")
    assert (await h.api.expect(200, "GET", "/proxies/p/toxics")) == []
    await h.api.assert_serving()
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)


@pytest.mark.parametrize("toxicity", [0, 0.0, 1, 0.5, 1e-9])
async def test_toxicity_bounds_are_inclusive(h: Harness, toxicity: float) -> None:
    await h.api.create_proxy("p", h.echo.address)
    toxic = await h.api.add_toxic("p", "latency", toxicity=toxicity)
    assert toxic["toxicity"] == toxicity


async def test_toxic_name_with_slash_is_400(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    reply = await h.api.call("POST", "/proxies/p/toxics", {"type": "latency", "name": "a/b"})
    assert_error_prefix(reply, 400, "")
    assert (await h.api.expect(200, "GET", "/proxies/p/toxics")) == []
    await h.api.assert_serving()


async def test_duplicate_toxic_names_are_409_across_streams(h: Harness) -> None:
    await h.api.create_proxy("p", h.echo.address)
    await h.api.add_toxic("p", "latency", name="t", stream="downstream")
    for body in (
        {"type": "latency", "name": "t", "stream": "downstream"},
        {"type": "bandwidth", "name": "t", "stream": "upstream"},  # unique per proxy
        # uniqueness is checked before the attributes are decoded
        {"type": "latency", "name": "t", "attributes": {"latency": "bad"}},
    ):
        assert_error(await h.api.call("POST", "/proxies/p/toxics", body), 409,
                     "toxic already exists")
    # ... but after the type check
    reply = await h.api.call("POST", "/proxies/p/toxics", {"type": "bogus", "name": "t"})
    assert_error(reply, 400, "invalid toxic type")
    # Default names include the stream, so one of each direction is fine.
    await h.api.add_toxic("p", "latency")
    await h.api.add_toxic("p", "latency", stream="upstream")
    assert_error(await h.api.call("POST", "/proxies/p/toxics", {"type": "latency"}), 409,
                 "toxic already exists")
    names = [t["name"] for t in await h.api.expect(200, "GET", "/proxies/p/toxics")]
    assert names == ["latency_upstream", "t", "latency_downstream"]
    # The same name on another proxy is fine.
    await h.api.create_proxy("q", h.echo.address)
    await h.api.add_toxic("q", "latency", name="t")
    await h.api.assert_serving()


# -- toxics: update -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_update_toxic_merges_attributes(h: Harness, method: str) -> None:
    await h.api.create_proxy("p", h.echo.address)
    await h.api.add_toxic("p", "latency", {"latency": 100, "jitter": 10}, toxicity=0.5)
    path = "/proxies/p/toxics/latency_downstream"
    reply = await h.api.call(method, path, {"attributes": {"latency": 500}})
    assert reply.status == 200
    assert reply.content_type == JSON
    assert reply.body == go_json(
        toxic_json("latency_downstream", "latency", toxicity=0.5,
                   attributes={"latency": 500, "jitter": 10})
    )
    # type, stream and name are ignored; a missing toxicity keeps the current one
    body = {"type": "bandwidth", "stream": "upstream", "name": "zzz",
            "attributes": {"jitter": 1}}
    data = (await h.api.call(method, path, body)).json()
    assert data == toxic_json("latency_downstream", "latency", toxicity=0.5,
                              attributes={"latency": 500, "jitter": 1})
    data = (await h.api.call(method, path, {"toxicity": 1})).json()
    assert data["toxicity"] == 1
    assert data["attributes"] == {"latency": 500, "jitter": 1}
    assert (await h.api.expect(200, "GET", path)) == data


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"", 400),
        (b"{", 400),
        (b"[]", 400),
        (b'{"toxicity":"1"}', 400),
        (b'{"attributes":{"latency":1.5}}', 400),
        (b'{"attributes":{"latency":-1}}', 400),
        (b'{"toxicity":3}', 400),
        (b'{"attributes":"fast"}', 400),
    ],
)
async def test_update_toxic_bad_input_is_400_and_changes_nothing(
    h: Harness, raw: bytes, status: int
) -> None:
    await h.api.create_proxy("p", h.echo.address)
    before = await h.api.add_toxic("p", "latency", {"latency": 7})
    reply = await h.api.call("PATCH", "/proxies/p/toxics/latency_downstream", raw=raw)
    assert_error_prefix(reply, status, "")
    assert (await h.api.expect(200, "GET", "/proxies/p/toxics/latency_downstream")) == before
    await h.api.assert_serving()


# -- /populate (section 2.4) ---------------------------------------------------------------


async def test_populate_empty_list(h: Harness) -> None:
    reply = await h.api.call("POST", "/populate", [])
    assert reply.status == 201
    assert reply.body == b'{"proxies":null}'
    assert reply.content_type == JSON


async def test_populate_creates_in_order(h: Harness) -> None:
    body = [
        {"name": "b", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address},
        {"name": "a", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address, "enabled": None},
        {"name": "c", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address, "enabled": False},
    ]
    reply = await h.api.call("POST", "/populate", body)
    assert reply.status == 201
    assert reply.content_type == JSON
    data = reply.json()
    assert list(data) == ["proxies"]
    assert [p["name"] for p in data["proxies"]] == ["b", "a", "c"]
    assert [p["enabled"] for p in data["proxies"]] == [True, True, False]
    for proxy in data["proxies"]:
        assert list(proxy) == PROXY_KEYS
    assert data["proxies"][2]["listen"] == f"{LOCALHOST}:0"
    for proxy in data["proxies"][:2]:
        reader, writer = await h.clients.open(port_of(proxy["listen"]))
        await round_trip(reader, writer)
    assert list(await h.api.expect(200, "GET", "/proxies")) == ["a", "b", "c"]


async def test_populate_is_idempotent_when_equal_after_resolving(h: Harness) -> None:
    first = await h.api.expect(201, "POST", "/populate", [
        {"name": "p", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address}
    ])
    listen = first["proxies"][0]["listen"]
    port = port_of(listen)
    toxic = await h.api.add_toxic("p", "latency", {"latency": 1})
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
    for same_listen in (listen, f"localhost:{port}"):
        again = await h.api.expect(201, "POST", "/populate", [
            {"name": "p", "listen": same_listen, "upstream": h.echo.address}
        ])
        # The existing proxy, untouched: its listen string, toxics and connections.
        assert again["proxies"] == [proxy_json("p", listen, h.echo.address, toxics=[toxic])]
        await round_trip(reader, writer)
    assert (await h.api.get_proxy("p"))["toxics"] == [toxic]


async def test_populate_replaces_when_upstream_differs(h: Harness) -> None:
    other = await h.serve(echo)
    first = await h.api.expect(201, "POST", "/populate", [
        {"name": "p", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address}
    ])
    listen = first["proxies"][0]["listen"]
    await h.api.add_toxic("p", "latency", {"latency": 1})
    reader, writer = await h.clients.open(port_of(listen))
    await round_trip(reader, writer)
    again = await h.api.expect(201, "POST", "/populate", [
        {"name": "p", "listen": listen, "upstream": other.address}
    ])
    assert again["proxies"] == [proxy_json("p", listen, other.address)]  # a fresh proxy
    await expect_eof(reader)  # the old one was stopped
    reader2, writer2 = await h.clients.open(port_of(listen))
    await round_trip(reader2, writer2)
    assert other.accepted == 1


async def test_populate_with_port_zero_always_replaces(h: Harness) -> None:
    entry = {"name": "p", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address}
    first = await h.api.expect(201, "POST", "/populate", [entry])
    await h.api.add_toxic("p", "latency", {"latency": 1})
    again = await h.api.expect(201, "POST", "/populate", [entry])
    assert again["proxies"][0]["toxics"] == []
    assert again["proxies"][0]["listen"] != first["proxies"][0]["listen"]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b"}],
         "missing required field: upstream at proxy 2"),
        ([{"upstream": "127.0.0.1:1"}], "missing required field: name at proxy 1"),
        ([{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b", "upstream": "127.0.0.1:1"},
          {"name": "", "upstream": ""}], "missing required field: name at proxy 3"),
    ],
)
async def test_populate_validates_everything_first(
    h: Harness, entries: list[dict[str, Any]], message: str
) -> None:
    reply = await h.api.call("POST", "/populate", entries)
    assert reply.status == 400
    assert reply.content_type == JSON
    assert reply.body == go_json({"error": message, "status": 400, "proxies": None})
    assert (await h.api.expect(200, "GET", "/proxies")) == {}
    await h.api.assert_serving()


@pytest.mark.parametrize(
    "raw", [b"{}", b'{"name":"a","upstream":"x:1"}', b"{", b"", b'"x"', b"[1]",
            b'[{"name":"a","upstream":"127.0.0.1:1","enabled":"yes"}]']
)
async def test_populate_bad_body_is_400_with_null_proxies(h: Harness, raw: bytes) -> None:
    reply = await h.api.call("POST", "/populate", raw=raw)
    assert reply.status == 400
    assert reply.content_type == JSON
    data = reply.json()
    assert list(data) == ["error", "status", "proxies"]
    assert data["error"].startswith("bad request body: ")
    assert data["status"] == 400
    assert data["proxies"] is None
    assert (await h.api.expect(200, "GET", "/proxies")) == {}
    await h.api.assert_serving()


async def test_populate_name_with_slash_is_400(h: Harness) -> None:
    entries = [{"name": "ok", "upstream": h.echo.address},
               {"name": "a/b", "upstream": h.echo.address}]
    reply = await h.api.call("POST", "/populate", entries)
    assert reply.status == 400
    assert reply.json()["proxies"] is None
    assert (await h.api.expect(200, "GET", "/proxies")) == {}


async def test_populate_partial_failure_keeps_what_was_done(h: Harness) -> None:
    with listening_port() as taken:
        entries = [
            {"name": "a", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address},
            {"name": "b", "listen": f"{LOCALHOST}:{taken}", "upstream": h.echo.address},
            {"name": "c", "listen": f"{LOCALHOST}:0", "upstream": h.echo.address},
        ]
        reply = await h.api.call("POST", "/populate", entries)
    assert reply.status == 500
    assert reply.content_type == JSON  # populate writes its own body
    data = reply.json()
    assert list(data) == ["error", "status", "proxies"]
    assert data["error"] == f"listen tcp {LOCALHOST}:{taken}: bind: address already in use"
    assert data["status"] == 500
    assert [p["name"] for p in data["proxies"]] == ["a"]
    assert reply.body == go_json({"error": data["error"], "status": 500,
                                  "proxies": [await h.api.get_proxy("a")]})
    assert list(await h.api.expect(200, "GET", "/proxies")) == ["a"]
    reader, writer = await h.clients.open(port_of(data["proxies"][0]["listen"]))
    await round_trip(reader, writer)
    await h.api.assert_serving()


# -- /reset ---------------------------------------------------------------------------------


async def test_reset_reenables_and_clears_toxics(h: Harness) -> None:
    await h.api.create_proxy("a", h.echo.address)
    b = await h.api.create_proxy("b", h.echo.address)
    await h.api.add_toxic("a", "latency", {"latency": 1})
    await h.api.add_toxic("b", "timeout", stream="upstream")
    await h.api.update_proxy("b", {"enabled": False})
    await h.api.reset()
    index = await h.api.expect(200, "GET", "/proxies")
    assert [p["toxics"] for p in index.values()] == [[], []]
    assert [p["enabled"] for p in index.values()] == [True, True]
    assert index["b"]["listen"] == b["listen"]
    reader, writer = await h.clients.open(port_of(b["listen"]))
    await round_trip(reader, writer)


async def test_reset_stops_at_a_bind_failure_with_500(h: Harness) -> None:
    created = await h.api.create_proxy("p", h.echo.address)
    port = port_of(created["listen"])
    await h.api.add_toxic("p", "latency")
    await h.api.update_proxy("p", {"enabled": False})
    with listening_port(port):
        reply = await h.api.call("POST", "/reset")
        assert_error(reply, 500, f"listen tcp {LOCALHOST}:{port}: bind: address already in use")
        data = await h.api.get_proxy("p")
        assert data["enabled"] is False
        assert [t["name"] for t in data["toxics"]] == ["latency_downstream"]  # not cleared
    await h.api.reset()
    data = await h.api.get_proxy("p")
    assert (data["enabled"], data["toxics"], data["listen"]) == (True, [], created["listen"])


# -- /metrics (section 2.6) -------------------------------------------------------------------


def metric(text: str, name: str, direction: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'direction="{direction}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_count_bytes_when_the_connection_ends() -> None:
    async def five_in_ten_out(reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5)
        writer.write(b"0123456789")
        await writer.drain()
        await reader.read()  # until the client closes

    async with harness(proxy_metrics=True) as h:
        upstream = await h.serve(five_in_ten_out)
        port = await h.proxy("m", upstream=upstream.address)
        for method in ("GET", "POST"):  # any method
            assert (await h.api.call(method, "/metrics")).status == 200
        reader, writer = await h.clients.open(port)
        writer.write(b"hello")
        assert await read_exactly(reader, 10) == b"0123456789"
        text = (await h.api.call("GET", "/metrics")).body.decode()
        assert metric(text, "toxiproxy_proxy_received_bytes_total", "upstream") is None
        writer.close()  # the links end
        proxy = h.server.collection.proxies["m"]
        assert await poll(lambda: not proxy.connections, 2.0)
        text = (await h.api.call("GET", "/metrics")).body.decode()
        assert 'proxy="m"' in text
        assert metric(text, "toxiproxy_proxy_received_bytes_total", "upstream") == 5
        assert metric(text, "toxiproxy_proxy_sent_bytes_total", "upstream") == 5
        assert metric(text, "toxiproxy_proxy_received_bytes_total", "downstream") == 10
        assert metric(text, "toxiproxy_proxy_sent_bytes_total", "downstream") == 10


# -- concurrent requests ----------------------------------------------------------------------


async def test_concurrent_creates_of_one_name_give_one_proxy(h: Harness) -> None:
    body = {"name": "dup", "upstream": h.echo.address, "listen": f"{LOCALHOST}:0"}
    replies = await asyncio.gather(*(h.api.call("POST", "/proxies", body) for _ in range(10)))
    assert sorted(r.status for r in replies) == [201] + [409] * 9
    listens = [r.json()["listen"] for r in replies if r.status == 201]
    # No orphan listener: only the reported port accepts (each reply named its own port).
    assert list(await h.api.expect(200, "GET", "/proxies")) == ["dup"]
    assert (await h.api.get_proxy("dup"))["listen"] == listens[0]
    reader, writer = await h.clients.open(port_of(listens[0]))
    await round_trip(reader, writer)


async def test_concurrent_populates_leave_no_orphan_listeners(h: Harness) -> None:
    body = [{"name": "pop", "upstream": h.echo.address, "listen": f"{LOCALHOST}:0"}]
    replies = await asyncio.gather(*(h.api.call("POST", "/populate", body) for _ in range(5)))
    assert [r.status for r in replies] == [201] * 5
    ports = {port_of(r.json()["proxies"][0]["listen"]) for r in replies}
    current = port_of((await h.api.get_proxy("pop"))["listen"])
    assert current in ports
    for port in ports - {current}:
        await expect_refused(port)  # each replaced proxy was stopped


async def test_concurrent_enables_bind_once(h: Harness) -> None:
    with listening_port() as port:
        pass  # a free port, released for the proxy
    await h.api.create_proxy("p", h.echo.address, listen=f"{LOCALHOST}:{port}", enabled=False)
    replies = await asyncio.gather(
        *(h.api.call("PATCH", "/proxies/p", {"enabled": True}) for _ in range(10))
    )
    assert [r.status for r in replies] == [200] * 10, [r.body for r in replies]
    assert {r.json()["listen"] for r in replies} == {f"{LOCALHOST}:{port}"}
    reader, writer = await h.clients.open(port)
    await round_trip(reader, writer)
