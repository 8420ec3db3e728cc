"""toxiproxy-python 0.1.1, a third-party synchronous client, against the embedded server
(docs/toxiproxy.md, "Clients"). The server runs in a background thread (conftest's
``toxiproxy_server``), the upstream is conftest's threaded ``echo_server``.

The client keeps host and port in class attributes of ``APIConsumer``: the fixture
points them at the test server and restores them afterwards.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy

from simctl.faults.server import ToxiproxyServer
from tests.integration.toxiproxy_helpers import listening_port, port_of

pytestmark = pytest.mark.timeout(60)  # requests is called without timeouts


@pytest.fixture
def tp(toxiproxy_server: ToxiproxyServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toxiproxy]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # requests honours *_PROXY
    saved = (APIConsumer.host, APIConsumer.port)
    client = Toxiproxy()
    client.update_api_consumer(toxiproxy_server.host, toxiproxy_server.port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved


@pytest.fixture
def upstream(echo_server: tuple[str, int]) -> str:
    host, port = echo_server
    return f"{host}:{port}"


def connect(proxy: Proxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(proxy.listen)), timeout=5)


def round_trip(sock: socket.socket, data: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        got += chunk
    assert got == data
    return time.monotonic() - start


def assert_refused(proxy: Proxy) -> None:
    with pytest.raises(ConnectionRefusedError):
        connect(proxy).close()


def test_running_and_version(tp: Toxiproxy) -> None:
    assert tp.running() is True
    assert tp.version() == b'{"version": "2.12.0"}\n'  # raw bytes, as documented


def test_create_list_get_and_destroy(tp: Toxiproxy, upstream: str) -> None:
    proxy = tp.create(upstream, "echo")
    assert isinstance(proxy, Proxy)
    assert proxy.name == "echo"
    assert proxy.upstream == upstream
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert port_of(proxy.listen) != 0  # the real port, not the "127.0.0.1:0" it sent
    with connect(proxy) as sock:
        round_trip(sock)
    assert list(tp.proxies()) == ["echo"]  # the "Logger" and "toxics" keys are swallowed
    fetched = tp.get_proxy("echo")
    assert fetched is not None
    assert (fetched.name, fetched.listen, fetched.upstream, fetched.enabled) == (
        "echo", proxy.listen, upstream, True
    )
    assert tp.get_proxy("missing") is None
    with pytest.raises(ProxyExists):
        tp.create(upstream, "echo")
    assert tp.destroy("echo") is False  # a name string is silently refused
    assert tp.destroy(proxy) is True
    assert tp.proxies() == {}
    assert_refused(proxy)


def test_create_disabled_with_explicit_listen(tp: Toxiproxy, upstream: str) -> None:
    proxy = tp.create(upstream, "later", listen="127.0.0.1:0", enabled=False)
    assert proxy.enabled is False
    assert proxy.listen == "127.0.0.1:0"
    proxy.enable()
    fetched = tp.get_proxy("later")
    assert fetched is not None
    assert fetched.enabled is True
    with connect(fetched) as sock:
        round_trip(sock)


def test_add_list_and_destroy_toxics(tp: Toxiproxy, upstream: str) -> None:
    proxy = tp.create(upstream, "slow")
    assert proxy.add_toxic(type="latency", attributes={"latency": 100}) is None
    proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", toxicity=0.5,
                    attributes={"rate": 1000})
    toxics = proxy.toxics()
    assert list(toxics) == ["bw", "latency_downstream"]  # upstream first
    latency = proxy.get_toxic("latency_downstream")
    assert latency is not None
    assert (latency.type, latency.stream, latency.toxicity, latency.attributes) == (
        "latency", "downstream", 1, {"latency": 100, "jitter": 0}
    )
    assert toxics["bw"].toxicity == 0.5
    assert proxy.get_toxic("nope") is None
    with connect(proxy) as sock:
        rtt = min(round_trip(sock) for _ in range(2))
        assert 0.095 <= rtt <= 0.135
        assert proxy.destroy_toxic("latency_downstream") is True
        assert round_trip(sock) < 0.05  # same connection, toxic gone
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")
    assert list(proxy.toxics()) == ["bw"]


@pytest.mark.parametrize(
    "toxic",
    [
        {"type": "down"},  # "down" is not a toxic
        {"type": "latency", "stream": "sideways"},
        {"type": "latency", "attributes": {"latency": 100.5}},
        {"type": "latency", "toxicity": 2.5},
    ],
)
def test_invalid_toxics_raise_invalid_toxic(tp: Toxiproxy, upstream: str,
                                            toxic: dict[str, object]) -> None:
    proxy = tp.create(upstream, "p")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(**toxic)
    assert proxy.toxics() == {}


def test_duplicate_toxic_raises_proxy_exists(tp: Toxiproxy, upstream: str) -> None:
    # The client maps every 409 to ProxyExists.
    proxy = tp.create(upstream, "p")
    proxy.add_toxic(type="latency", name="t")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", name="t", stream="upstream")


def test_disable_enable_and_down(tp: Toxiproxy, upstream: str) -> None:
    proxy = tp.create(upstream, "flaky")
    sock = connect(proxy)
    try:
        round_trip(sock)
        proxy.disable()  # the deprecated POST /proxies/{name}, still supported
        assert proxy.enabled is False
        assert sock.recv(1) == b""  # open connections see EOF
    finally:
        sock.close()
    assert_refused(proxy)
    fetched = tp.get_proxy("flaky")
    assert fetched is not None
    assert fetched.enabled is False
    proxy.enable()
    with connect(proxy) as sock:  # the same port again
        round_trip(sock)
    with proxy.down():
        assert_refused(proxy)
    with connect(proxy) as sock:
        round_trip(sock)


def test_reset(tp: Toxiproxy, upstream: str) -> None:
    a = tp.create(upstream, "a")
    b = tp.create(upstream, "b")
    a.add_toxic(type="latency", attributes={"latency": 1000})
    b.disable()
    assert tp.reset() is True
    proxies = tp.proxies()
    assert [p.enabled for p in proxies.values()] == [True, True]
    assert a.toxics() == {}
    with connect(a) as sock:
        assert round_trip(sock) < 0.5
    with connect(b) as sock:
        round_trip(sock)


def test_populate(tp: Toxiproxy, upstream: str) -> None:
    config = [
        {"name": "one", "upstream": upstream, "listen": "127.0.0.1:0"},
        {"name": "two", "upstream": upstream, "listen": "127.0.0.1:0"},
    ]
    created = tp.populate(config)
    assert [p.name for p in created] == ["one", "two"]
    one = tp.get_proxy("one")
    assert one is not None
    one.add_toxic(type="latency", attributes={"latency": 1})
    # The client compares listen strings: with the real address nothing is recreated ...
    same = [{**config[0], "listen": one.listen}]
    assert tp.populate(same) == []
    assert list(one.toxics()) == ["latency_downstream"]
    # ... while "127.0.0.1:0" never equals a bound address, so it is destroyed and recreated.
    recreated = tp.populate(config[:1])
    assert [p.name for p in recreated] == ["one"]
    assert recreated[0].listen != one.listen
    assert recreated[0].toxics() == {}
    with connect(recreated[0]) as sock:
        round_trip(sock)


def test_destroy_all(tp: Toxiproxy, upstream: str) -> None:
    for name in ("x", "y", "z"):
        tp.create(upstream, name)
    tp.destroy_all()
    assert tp.proxies() == {}


def test_bind_conflict_surfaces_as_keyerror(tp: Toxiproxy, upstream: str) -> None:
    # Documented client defect: a 500 passes validate_response, then Proxy(**error_body)
    # fails. It proves the server answered 500 with an error body and no proxy.
    with listening_port() as taken, pytest.raises(KeyError):
        tp.create(upstream, "clash", listen=f"127.0.0.1:{taken}")
    assert tp.get_proxy("clash") is None
