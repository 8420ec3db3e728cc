"""Hostile input to the Toxiproxy API (docs/toxics.md, "Hostile input"), generated.

Names, JSON shapes, attribute types and ranges, deep bodies and unicode, thrown at a real
embedded server on 127.0.0.1. After every request:

- no 500, except the listen errors Toxiproxy itself answers with 500 ("listen tcp ...");
- every error is Toxiproxy's error shape, and the server still answers;
- the listeners bound by the server are exactly those of its enabled proxies: a refused
  create leaves nothing bound, an accepted one binds one port.

Listen addresses come from a fixed list (port 0 or unparseable): generated ones could bind
ports other stacks on this machine use, or wait on DNS.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simctl.faults import wire
from simctl.faults.server import ToxiproxyServer
from simctl.faults.toxics import REGISTRY

HOSTILE = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIAL_TEXT = ["", " ", "a/b", "%2F", "..", "\ud800", "\udfff", "\x00", "a\nb", "\u202e",
                "é", "😀", "x" * 300, "p", "[[[[", "null"]
SAFE_LISTENS = ["127.0.0.1:0", "", ":0", "localhost:0", "[::1]:0", "127.0.0.1", "bogus",
                "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:x", "127.0.0.1\x00:0", "[]:0",
                "\ud800:0", "é" * 70 + ":0"]
ATTRIBUTES = sorted({a.name for kind in REGISTRY.values() for a in kind.attributes})

text = st.sampled_from(SPECIAL_TEXT) | st.text(
    st.characters(codec=None, exclude_categories=()), max_size=12
)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | text)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


proxy_bodies = st.fixed_dictionaries({}, optional={
    "name": text | json_values,
    "upstream": text | json_values,
    "listen": st.sampled_from(SAFE_LISTENS) | st.sampled_from([None, 0, True, [], {}]),
    "enabled": st.booleans() | json_values,
    "extra": json_values | st.integers(1, 60).map(nested),
})
toxic_bodies = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(sorted(REGISTRY)) | text | json_values,
    "name": text | json_values,
    "stream": st.sampled_from(["upstream", "downstream", "UPSTREAM", "sideways"]) | json_values,
    "toxicity": st.floats(-2, 2, allow_nan=False) | json_values,
    "attributes": st.dictionaries(
        st.sampled_from(ATTRIBUTES) | text,
        st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 2**31, 2**63 - 1]) | json_values,
        max_size=4,
    ) | json_values,
})


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()  # ASCII: lone surrogates travel as "\udXXX" escapes


depths = st.sampled_from([32, 33, 1000, 3000]) | st.integers(1, 3000)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    depths.map(lambda d: b"[" * d + b"]" * d),
    depths.map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.sampled_from([b"\xff\xfe", b'{"name":"\\ud800\\udc00x"}', b"1e999999", b"-0",
                     b'{"name":"p","upstream":"x:1",', b"\"\\u0000\"", b"[" * 32 + b"]" * 32]),
)


def listening_ports() -> set[int]:
    """TCP ports this process listens on, asked of each of its socket descriptors."""
    ports = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:  # closed meanwhile
            continue
        with sock:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_ACCEPTCONN
            ):
                ports.add(sock.getsockname()[1])
    return ports


class Api:
    def __init__(self, server: ToxiproxyServer, baseline: set[int]) -> None:
        self.port = server.port
        self.baseline = baseline  # listeners that are not the server's proxies

    def call(self, method: str, path: str, raw: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=raw)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def proxies(self) -> dict[str, Any]:
        status, body = self.call("GET", "/proxies")
        assert status == 200, body
        return json.loads(body)

    def listeners(self) -> set[int]:
        return listening_ports() - self.baseline

    def check(self, status: int, body: bytes, listen_errors: bool = False,
              binds: bool = True) -> None:
        """The invariants that hold after any request, good or bad."""
        if status in (404, 405) and not body.startswith(b"{"):
            assert body in (b"", b"404 page not found\n"), body  # routing, as gorilla/mux
        elif status >= 400:
            error = json.loads(body)
            assert list(error)[:2] == ["error", "status"], body  # /populate adds "proxies"
            assert error["status"] == status, body
            listen_error = listen_errors and error["error"].startswith("listen tcp")
            assert status < 500 or (status == 500 and listen_error), body
        version = self.call("GET", "/version")
        assert version[0] == 200
        if not binds:
            return
        bound = {int(p["listen"].rsplit(":", 1)[1]) for p in self.proxies().values()
                 if p["enabled"]}
        assert self.listeners() == bound

    def clear(self, keep: str = "") -> None:
        for name in self.proxies():
            if name != keep:
                status, _ = self.call("DELETE", "/proxies/" + quote(name, safe=""))
                assert status == 204
        assert self.listeners() == ({self.port_of(keep)} if keep else set())

    def port_of(self, name: str) -> int:
        return int(self.proxies()[name]["listen"].rsplit(":", 1)[1])


@pytest.fixture
def api(toxiproxy_server_factory: Callable[..., ToxiproxyServer]) -> Api:
    already = listening_ports()  # the test process's own servers
    server = toxiproxy_server_factory()
    return Api(server, already | {server.port})


@HOSTILE
@given(body=proxy_bodies | json_values)
def test_create_proxy(api: Api, body: Any) -> None:
    api.clear()
    status, reply = api.call("POST", "/proxies", encode(body))
    api.check(status, reply, listen_errors=True)
    if status != 201:
        assert api.listeners() == set()
    api.clear()


@HOSTILE
@given(raw=raw_bodies)
def test_raw_bodies_everywhere(api: Api, raw: bytes) -> None:
    api.clear()
    status, reply = api.call("POST", "/proxies", raw)
    api.check(status, reply, listen_errors=True)
    if status != 201:
        assert api.listeners() == set()
    api.clear()
    api.call("POST", "/proxies", encode({"name": "p", "upstream": "127.0.0.1:1"}))
    for method, path in (("POST", "/populate"), ("PATCH", "/proxies/p"),
                         ("POST", "/proxies/p/toxics")):
        status, reply = api.call(method, path, raw)
        api.check(status, reply, listen_errors=True)
    api.clear()


@HOSTILE
@given(entries=st.lists(proxy_bodies, max_size=3) | json_values)
def test_populate(api: Api, entries: Any) -> None:
    api.clear()
    status, reply = api.call("POST", "/populate", encode(entries))
    if status >= 400:  # /populate's own error shape carries the proxies it kept
        error = json.loads(reply)
        assert list(error) == ["error", "status", "proxies"], reply
        assert status != 500 or error["error"].startswith("listen tcp"), reply
        reply = wire.encode({"error": error["error"], "status": status})
    api.check(status, reply, listen_errors=True)
    api.clear()


@HOSTILE
@given(body=proxy_bodies | json_values)
def test_update_proxy(api: Api, body: Any) -> None:
    api.clear()
    api.call("POST", "/proxies", encode({"name": "p", "upstream": "127.0.0.1:1"}))
    status, reply = api.call("PATCH", "/proxies/p", encode(body))
    api.check(status, reply, listen_errors=True)
    api.clear()


@HOSTILE
@given(bodies=st.lists(toxic_bodies | json_values, min_size=1, max_size=3),
       update=toxic_bodies | json_values)
def test_toxics(api: Api, bodies: list[Any], update: Any) -> None:
    api.clear()
    if "p" not in api.proxies():
        api.call("POST", "/proxies", encode({"name": "p", "upstream": "127.0.0.1:1"}))
    names = []
    for body in bodies:
        status, reply = api.call("POST", "/proxies/p/toxics", encode(body))
        api.check(status, reply, binds=False)
        if status == 200:
            names.append(json.loads(reply)["name"])
    for name in names:
        path = "/proxies/p/toxics/" + quote(name, safe="")
        status, reply = api.call("PATCH", path, encode(update))
        api.check(status, reply, binds=False)
        status, reply = api.call("GET", path)
        assert status == 200
    status, reply = api.call("GET", "/proxies/p/toxics")
    assert status == 200
    assert sorted(t["name"] for t in json.loads(reply)) == sorted(names)
    for name in names:
        status, _ = api.call("DELETE", "/proxies/p/toxics/" + quote(name, safe=""))
        assert status == 204


@HOSTILE
@given(name=text)
def test_names_in_paths(api: Api, name: str) -> None:
    api.clear()
    path = "/proxies/" + quote(name.encode("utf-8", "surrogatepass"), safe="")
    for method in ("GET", "DELETE", "PATCH"):
        status, reply = api.call(method, path, b"{}" if method == "PATCH" else None)
        api.check(status, reply)
