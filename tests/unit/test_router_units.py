"""Router and sync pieces without sockets: formats, rules, tables, quarantine, slots."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import click
import pytest

from simctl.platform.router import codes, fasthead, http, logline, records
from simctl.platform.router import response as rp
from simctl.platform.router.dispatch import AppSlots, Waiter, Waker
from simctl.platform.router.follower import SyncFollower, _Reload
from simctl.platform.router.quarantine import Quarantine
from simctl.platform.router.records import RecordError
from simctl.platform.router.table import RouteTable, host_of
from simctl.platform.sync import SyncService, apps_from_options
from simctl.platform.timing import FAST

# log lines ---------------------------------------------------------------------------------


def _line(**overrides: object) -> str:
    fields: dict[str, object] = dict(
        code=None, method="GET", path="/", host="myapp.simctl.test",
        request_id="f9ed4675f1c53513c61a3b3b4e25b4c0", fwd="215.90.1.17", dyno="web.4",
        connect=0.0004, service=0.0615, status=200, nbytes=1382, protocol="https")
    fields.update(overrides)
    return logline.format_line(**fields)  # type: ignore[arg-type]


def test_success_line_is_herokus_format() -> None:
    assert _line() == (
        'at=info method=GET path="/" host=myapp.simctl.test '
        'request_id=f9ed4675f1c53513c61a3b3b4e25b4c0 fwd="215.90.1.17" dyno=web.4 connect=0ms '
        "service=61ms status=200 bytes=1382 protocol=https")


def test_error_lines() -> None:
    assert _line(code=codes.CODES["H12"], connect=0.001, service=30.0, status=503,
                 nbytes=0) == (
        'at=error code=H12 desc="Request timeout" method=GET path="/" host=myapp.simctl.test '
        'request_id=f9ed4675f1c53513c61a3b3b4e25b4c0 fwd="215.90.1.17" dyno=web.4 connect=1ms '
        "service=30000ms status=503 bytes=0 protocol=https")
    assert _line(code=codes.CODES["H10"], dyno="", connect=None, service=None, status=503,
                 nbytes=None).endswith(
        'fwd="215.90.1.17" dyno= connect= service= status=503 bytes= protocol=https')
    assert _line(code=codes.CODES["H18"]).startswith(
        'sock=backend at=error code=H18 desc="Server Request Interrupted" method=GET ')
    assert _line(code=codes.CODES["H27"], status=499).startswith(
        'sock=client at=warning code=H27 desc="Client Request Interrupted" method=GET ')
    assert _line(code=codes.CODES["H26"], cause="bad chunk", status=400).startswith(
        'at=error code=H26 desc="Request Error" cause="bad chunk" method=GET path="/" ')
    assert _line(code=codes.CODES["H80"]).startswith('at=info code=H80 desc="Maintenance mode" ')


def test_values_are_quoted_when_needed() -> None:
    line = _line(path='/a b"c', host="we ird", fwd="1.1.1.1, 2.2.2.2")
    assert ' path="/a b\\"c" host="we ird" ' in line
    assert ' fwd="1.1.1.1, 2.2.2.2" ' in line


def test_code_table() -> None:
    table = {c.code: (c.status, c.at, c.sock) for c in codes.CODES.values()}
    assert table["H27"] == (499, "warning", "client")
    assert table["H28"] == (499, "warning", "")
    assert table["H18"] == (503, "error", "backend")
    assert table["H80"] == (503, "info", "")
    assert table["H26"] == (400, "error", "")
    for code in ("H10", "H11", "H12", "H13", "H14", "H15", "H19", "H21", "H99"):
        assert table[code] == (503, "error", "")
    page = codes.error_page("H12", "<rid>")
    assert page.startswith(b"<!DOCTYPE html>")
    assert b"&lt;rid&gt;" in page
    assert len(page) < 1024


# request rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "kept"), [
    (b"a" * 20, True), (b"a" * 200, True), (b"aZ09+/=-" * 3, True),
    (b"a" * 19, False), (b"a" * 201, False), (b"a" * 19 + b"_", False),
    (b"a" * 19 + b"\xff", False), (None, False),
])
def test_request_id(value: bytes | None, kept: bool) -> None:
    result = http.request_id(value)
    if kept:
        assert value is not None
        assert result == value.decode()
    else:
        assert re.fullmatch(r"[0-9a-f-]{36}", result)
        assert uuid.UUID(result).version == 4


def test_connection_tokens() -> None:
    assert http.connection_tokens([(b"connection", b"Keep-Alive, X-Foo ,"), (b"x", b"y")]) == {
        b"keep-alive", b"x-foo"}


def test_upstream_headers() -> None:
    out = http.upstream_headers(
        [(b"host", b"h"), (b"connection", b"keep-alive, x-hop"), (b"x-hop", b"1"),
         (b"keep-alive", b"5"), (b"content-length", b"3"), (b"transfer-encoding", b"chunked"),
         (b"via", b"1.0 a"), (b"x-request-id", b"old"), (b"expect", b"100-continue"),
         (b"accept", b"*/*")],
        True, ((b"x-request-id", b"new"),), keep_alive=True)
    assert out == [(b"host", b"h"), (b"accept", b"*/*"), (b"transfer-encoding", b"chunked"),
                   (b"x-request-id", b"new"), (b"via", b"1.0 a, 1.1 vegur")]
    # Vegur's default: a new dyno connection per request, closed after it
    closing = http.upstream_headers([(b"host", b"h")], False, ())
    assert closing == [(b"host", b"h"), (b"via", b"1.1 vegur"), (b"connection", b"close")]


def test_downstream_headers() -> None:
    out = http.downstream_headers(
        [(b"content-type", b"text/plain"), (b"content-length", b"3, 3"),
         (b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5"), (b"set-cookie", b"a=1"),
         (b"set-cookie", b"b=2")])
    assert out == [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"),
                   (b"set-cookie", b"b=2"), (b"content-length", b"3"), (b"via", b"1.1 vegur")]
    assert (b"content-length", b"9") not in http.downstream_headers(
        [(b"content-length", b"9"), (b"transfer-encoding", b"chunked")])


@pytest.mark.parametrize(("header", "host"), [
    (b"Web.Simctl.Test", "web.simctl.test"), (b"web.simctl.test:8080", "web.simctl.test"),
    (b"web.simctl.test.", "web.simctl.test"), (b"[::1]:80", "[::1]"), (b" x ", "x"),
])
def test_host_of(header: bytes, host: str) -> None:
    assert host_of(header) == host


# records and the table ----------------------------------------------------------------------------


def _table() -> RouteTable:
    table = RouteTable()
    table.load({"version": 3, "epoch": "e1", "apps": {"web": {
        "domains": ["web.simctl.test"],
        "dynos": [{"name": "web.1", "address": "127.0.0.1:5001"},
                  {"name": "web.2", "address": "127.0.0.1:5002", "state": "crashed"}]}}})
    return table


def test_table_load_and_lookup() -> None:
    table = _table()
    app = table.lookup("web.simctl.test")
    assert app is not None
    assert (table.version, app.name, [d.name for d in app.up]) == (3, "web", ["web.1"])
    assert app.dynos[0].key == "web/web.1@127.0.0.1:5001"
    assert table.lookup("other") is None


def test_table_applies_records_in_order() -> None:
    table = _table()
    table.apply({"seq": 4, "op": "dyno", "app": "web", "dyno": "web.2", "state": "up"})
    table.apply({"seq": 5, "op": "maintenance", "app": "web", "enabled": True})
    table.apply({"seq": 6, "op": "app", "app": "api", "domains": ["api.simctl.test"],
                 "dynos": []})
    assert table.version == 6
    assert [d.name for d in table.apps["web"].up] == ["web.1", "web.2"]
    assert table.apps["web"].maintenance
    assert table.lookup("api.simctl.test") is table.apps["api"]
    table.apply({"seq": 7, "op": "remove_app", "app": "api"})
    assert table.lookup("api.simctl.test") is None


@pytest.mark.parametrize(("record", "message"), [
    ([], "must be an object"),
    ({"seq": 4}, "missing field 'op'"),
    ({"seq": 4, "op": "dyno"}, "missing field 'app'"),
    ({"seq": 4, "op": "explode", "app": "web"}, "unknown op"),
    ({"seq": 4, "op": "dynos", "app": "web", "dynos": "web.1"}, "must be list"),
    ({"seq": 4, "op": "dynos", "app": "nope", "dynos": []}, "unknown app"),
    ({"seq": 4, "op": "dyno", "app": "web", "dyno": "web.9", "state": "up"}, "unknown dyno"),
    ({"seq": 4, "op": "dyno", "app": "web", "dyno": "web.1"}, "needs 'state' or 'address'"),
    ({"seq": 4, "op": "dyno", "app": "web", "dyno": "web.1", "state": 1}, "must be str"),
    ({"seq": 4, "op": "maintenance", "app": "web", "enabled": 1}, "must be bool"),
    ({"seq": True, "op": "maintenance", "app": "web", "enabled": True}, "must be int"),
    ({"seq": 4, "op": "dynos", "app": "web", "dynos": [{"name": "a b", "address": "h:1"}]},
     "bad dyno name"),
    ({"seq": 4, "op": "dynos", "app": "web", "dynos": [{"name": "w", "address": "h:0"}]},
     "bad port"),
])
def test_bad_records_change_nothing(record: object, message: str) -> None:
    table = _table()
    before = table.to_json()
    with pytest.raises(RecordError, match=re.escape(message)):
        table.apply(record)
    assert table.to_json() == before


def test_bad_snapshot_keeps_the_table() -> None:
    table = _table()
    with pytest.raises(RecordError):
        table.load({"version": "7", "apps": {}})
    with pytest.raises(RecordError, match="domain 'x.test'"):
        table.load({"version": 7, "apps": {"a": {"domains": ["x.test"]},
                                           "b": {"domains": ["x.test"]}}})
    assert table.version == 3


# the follower, fed lines directly --------------------------------------------------------------


def _follower() -> SyncFollower:
    return SyncFollower("http://127.0.0.1:1", _table(), FAST)


def _rec(seq: int, **fields: object) -> bytes:
    return json.dumps({"seq": seq, **fields}).encode() + b"\n"


def test_follower_applies_and_tracks_lag() -> None:
    follower = _follower()
    follower._line(b'{"op": "heartbeat", "version": 9, "epoch": "e1"}\n')
    assert follower.lag == 6
    follower._line(_rec(4, op="maintenance", app="web", enabled=True))
    follower._line(_rec(4, op="maintenance", app="web", enabled=True))  # a replay: ignored
    assert (follower.table.version, follower.lag) == (4, 5)
    assert follower.health() == ("ok", "")
    with pytest.raises(_Reload):
        follower._line(_rec(6, op="maintenance", app="web", enabled=False))


@pytest.mark.parametrize("raw", [
    b'{"seq": 4, "op": "dyno", "app": "web", "dyno": "web.1", "state": \n',
    b'{"seq": 4, "op": "dyno"}\n',
    b'{"seq": 4, "op": "dynos", "app": "web", "dynos": "web.1"}\n',
    b'{"op": "dynos"}\n',
    b'"just a string"\n',
    b"\xff\xfe\n",
])
def test_follower_halts_on_a_malformed_record(raw: bytes) -> None:
    follower = _follower()
    follower._line(raw)
    assert follower.halted_seq == 4
    assert follower.errors == 1
    status, reason = follower.health()
    assert status == "degraded"
    assert reason.startswith("sync halted at seq 4: ")
    assert "routing on table version 3" in reason
    # nothing after it is applied, the same poison is not counted twice, the lag grows
    follower._line(raw)
    follower._line(_rec(5, op="maintenance", app="web", enabled=True))
    follower._line(b'{"op": "heartbeat", "version": 8}\n')
    assert (follower.table.version, follower.errors, follower.lag) == (3, 1, 5)
    assert not follower.table.apps["web"].maintenance


# quarantine and slots ---------------------------------------------------------------------------


def test_quarantine_probe() -> None:
    q = Quarantine(5.0)
    assert not q.blocked("k", 0.0)
    q.failed("k", 10.0)
    assert q.blocked("k", 14.9)
    assert q.next_expiry(["k", "other"]) == 15.0
    assert not q.blocked("k", 15.0)  # expired: one request may probe
    q.begin("k")
    assert q.blocked("k", 15.0)  # ... and the others wait for its verdict
    q.failed("k", 16.0)
    assert q.blocked("k", 20.0)
    assert q.by_dyno(20.0) == {"k": 1}
    q.failed("web/web.3@127.0.0.1:5003", 20.0)
    assert q.by_dyno(20.5) == {"k": 1, "web.3": 1}
    q.succeeded("web/web.3@127.0.0.1:5003")
    q.begin("k")
    q.abandon("k")
    assert not q.blocked("k", 21.0)
    q.succeeded("k")
    assert len(q) == 0


async def test_slots_hand_over_to_the_first_waiter() -> None:
    loop = asyncio.get_running_loop()
    slots = AppSlots()
    slots.take("a")
    first, second = Waiter(Waker(loop)), Waiter(Waker(loop))
    slots.queue.extend([first, second])
    slots.release("a")
    assert (first.granted, second.granted, slots.count("a")) == ("a", None, 1)
    slots.leave(first)  # gives up without using it: the slot goes on to the next
    assert (second.granted, slots.count("a"), list(slots.queue)) == ("a", 1, [])
    second.granted = None
    slots.release("a")
    assert slots.count("a") == 0


async def test_waker_deadline() -> None:
    loop = asyncio.get_running_loop()
    waker = Waker(loop)
    started = loop.time()
    await waker.wait(started + 0.05)
    assert loop.time() - started >= 0.04
    task = loop.create_task(waker.wait(None))
    await asyncio.sleep(0)
    waker.wake()
    await asyncio.wait_for(task, 1)


# sync service without sockets ---------------------------------------------------------------------


def test_sync_versions_and_poison() -> None:
    sync = SyncService(FAST, records.parse_apps({"web": {"dynos": []}}))
    assert sync.version == 1
    assert sync.snapshot()["apps"]["web"]["domains"] == ["web.simctl.test"]
    sync.append({"op": "maintenance", "app": "web", "enabled": True})
    seq = sync.poison("fields")
    assert (seq, sync.version, sync.poisoned) == (3, 3, [3])
    assert sync.snapshot()["apps"]["web"]["maintenance"] is True
    with pytest.raises(RecordError):
        sync.append({"op": "dynos", "app": "nope", "dynos": []})
    assert sync.version == 3


def test_sync_options() -> None:
    apps = apps_from_options(("web",), ("web.simctl.test", "www.simctl.test"),
                             ("web.1=127.0.0.1:5001", "web.2=127.0.0.1:5002@crashed"), None)
    assert apps["web"].domains == ("web.simctl.test", "www.simctl.test")
    assert [(d.name, d.state) for d in apps["web"].dynos] == [("web.1", "up"), ("web.2", "crashed")]
    two = apps_from_options(("web", "api"), ("api/api.example.test",), ("api/web.1=h:1",), None)
    assert two["web"].domains == ("web.simctl.test",)
    assert two["api"].dynos[0].address == "h:1"
    with pytest.raises(click.BadParameter, match="APP/"):
        apps_from_options(("web", "api"), (), ("web.1=h:1",), None)
    with pytest.raises(click.BadParameter, match="NAME=HOST:PORT"):
        apps_from_options(("web",), (), ("web.1",), None)
    with pytest.raises(click.BadParameter, match="bad address"):
        apps_from_options(("web",), (), ("web.1=nowhere",), None)


# the dyno response parser ---------------------------------------------------------------------


def _parse(*chunks: bytes, head: bool = False, eof: bool = True) -> list[object]:
    parser = rp.ResponseParser(head)
    events: list[object] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (event := parser.next_event()) is not rp.NEED_DATA:
            events.append(event)
            if event is rp.END:
                return events
    if eof:
        parser.feed_eof()
        while (event := parser.next_event()) is not rp.NEED_DATA:
            events.append(event)
            if event is rp.END:
                break
    return events


def test_parser_content_length_in_pieces() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello"
    events = _parse(*[raw[i:i + 3] for i in range(0, len(raw), 3)])
    head = events[0]
    assert isinstance(head, rp.Head)
    assert (head.status, head.reason, head.headers) == (
        200, b"OK", [(b"content-length", b"5"), (b"x-a", b"b")])
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"hello"
    assert events[-1] is rp.END


def test_parser_chunked_close_delimited_and_no_body() -> None:
    events = _parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
                    b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n")
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"abcde"
    assert events[-1] is rp.END
    events = _parse(b"HTTP/1.0 200 OK\r\n\r\nuntil ", b"close")
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"until close"
    assert events[-1] is rp.END
    assert _parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")[-1] is rp.END
    events = _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", head=True, eof=False)
    assert events[-1] is rp.END


@pytest.mark.parametrize(("raw", "code"), [
    (b"HTTP/1.1 200\r\n\r\n", "H17"),  # no reason phrase: Heroku's H17 example
    (b"HTTP/2 200 OK\r\n\r\n", "H17"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "H17"),
    (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "H17"),
    (b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "H17"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "H17"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "H25"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n", "H25"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"x" * (rp.MAX_HEAD + 10), "H25"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "H17"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", "H17"),
])
def test_parser_rejects(raw: bytes, code: str) -> None:
    with pytest.raises(rp.ResponseError) as info:
        _parse(raw)
    assert info.value.code == code


@pytest.mark.parametrize("raw", [
    b"", b"HTTP/1.1 200 OK\r\nContent-", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
])
def test_parser_truncated(raw: bytes) -> None:
    with pytest.raises(rp.Truncated):
        _parse(raw)


@pytest.mark.parametrize(("raw", "reusable"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),  # bytes nobody asked for
])
def test_parser_says_when_the_connection_is_reusable(raw: bytes, reusable: bool) -> None:
    parser = rp.ResponseParser()
    parser.feed(raw)
    while parser.next_event() is not rp.END:
        pass
    assert parser.reusable is reusable


def test_parser_is_not_reusable_before_the_end() -> None:
    parser = rp.ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc")
    assert isinstance(parser.next_event(), rp.Head)
    assert not parser.reusable


# the fast path for request heads ---------------------------------------------------------------


def test_fasthead_takes_a_plain_head_and_leaves_the_rest() -> None:
    buf = bytearray(b"GET /a?b=1 HTTP/1.1\r\nHost: web.simctl.test\r\nX-A:  v \r\n\r\nGET /next")
    head = fasthead.parse(buf, http.MAX_HEAD, eof=False)
    assert isinstance(head, fasthead.RequestHead)
    assert (head.method, head.target, head.http_version) == (b"GET", b"/a?b=1", b"1.1")
    assert head.headers == [(b"host", b"web.simctl.test"), (b"x-a", b"v")]
    assert buf == b"GET /next"
    assert fasthead.parse(buf, http.MAX_HEAD, eof=False) is None  # not complete yet


@pytest.mark.parametrize("raw", [
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok",  # a body
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n",  # obs-text: h11 decides
    b"GET / HTTP/1.1\nHost: h\n\n",  # bare LF
    b"PURGEX / HTTP/1.1\r\nHost: h\r\n\r\n",  # a method llhttp does not know
    b"BLAH\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"x" * http.MAX_HEAD + b"\r\n\r\n",
])
def test_fasthead_leaves_anything_unusual_to_h11(raw: bytes) -> None:
    buf = bytearray(raw)
    assert fasthead.parse(buf, http.MAX_HEAD, eof=False) is fasthead.SLOW
    assert buf == raw


def test_fasthead_leaves_a_closed_connection_to_h11() -> None:
    assert fasthead.parse(bytearray(b"GET / HT"), http.MAX_HEAD, eof=True) is fasthead.SLOW
    assert fasthead.parse(bytearray(), http.MAX_HEAD, eof=True) is fasthead.SLOW
