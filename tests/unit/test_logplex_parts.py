"""Logplex's parts without sockets: buffer, --drain syntax, masking, auth, backoff, CLI errors."""

from __future__ import annotations

import base64
import logging
import random

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from simctl.platform.__main__ import main
from simctl.platform.logframe import LogMessage
from simctl.platform.logplex.buffer import LossyBuffer
from simctl.platform.logplex.config import DrainConfigError, mask_url, parse_drain, parse_drains
from simctl.platform.logplex.http_drain import HttpDrain, overflow_message
from simctl.platform.logplex.metrics import LogplexMetrics
from simctl.platform.logplex.rods import ControlRods
from simctl.platform.logplex.service import token_app
from simctl.platform.logplex.tail import overflow_line
from simctl.platform.timing import FAST, HEROKU


def msgs(*texts: object) -> list[LogMessage]:
    return [LogMessage("app", "web.1", str(t), "ts") for t in texts]


# buffer ----------------------------------------------------------------------------------


def test_buffer_keeps_newest_and_records_loss() -> None:
    buffer = LossyBuffer(3)
    assert buffer.push(msgs(1, 2)) == 0
    assert buffer.push(msgs(3, 4, 5)) == 2
    assert [m.text for m in buffer.take_all()] == ["3", "4", "5"]
    count, since = buffer.take_loss()
    assert count == 2
    assert since
    assert buffer.take_loss() == (0, "")


def test_buffer_push_larger_than_capacity() -> None:
    buffer = LossyBuffer(2)
    assert buffer.push(msgs(*range(10))) == 8
    assert [m.text for m in buffer.take_all()] == ["8", "9"]


def test_buffer_loss_keeps_first_since() -> None:
    buffer = LossyBuffer(1)
    buffer.push(msgs(1, 2))
    first = buffer.lost_since
    buffer.push(msgs(3))
    assert buffer.take_loss() == (2, first)


def test_buffer_resize_counts_displaced() -> None:
    buffer = LossyBuffer(5)
    buffer.push(msgs(*range(5)))
    assert buffer.resize(2) == 3
    assert buffer.capacity == 2
    assert [m.text for m in buffer.take_all()] == ["3", "4"]
    assert buffer.take_loss()[0] == 3
    assert buffer.resize(10) == 0
    assert buffer.capacity == 10


@given(st.lists(st.integers(0, 40), max_size=30), st.integers(1, 20))
def test_buffer_accounting(pushes: list[int], capacity: int) -> None:
    buffer = LossyBuffer(capacity)
    total = 0
    for n in pushes:
        buffer.push(msgs(*range(total, total + n)))
        total += n
    kept = buffer.take_all()
    assert len(kept) == min(total, capacity)
    assert buffer.take_loss()[0] == total - len(kept)
    assert [m.text for m in kept] == [str(i) for i in range(total - len(kept), total)]


# --drain syntax and masking --------------------------------------------------------------


def test_drain_syntax() -> None:
    spec = parse_drain("main=http://127.0.0.1:9000/logs")
    assert (spec.name, spec.app, str(spec.url)) == ("main", "web", "http://127.0.0.1:9000/logs")
    spec = parse_drain("audit@billing=https://user:pw@example.com/x?token=1")
    assert (spec.name, spec.app, spec.user, spec.password) == ("audit", "billing", "user", "pw")
    assert str(spec.url) == "https://example.com/x?token=1"
    assert spec.dest == "https://***@example.com/x?token=1"
    assert "pw" not in repr(spec)


@pytest.mark.parametrize(("value", "error"), [
    ("main", "expected NAME=URL"),
    ("=http://h/", "expected NAME=URL"),
    ("a b=http://h/", "bad drain name"),
    ("main@Web=http://h/", "bad app name"),
    ("main=ftp://u:s3cret@h/", "http:// or https://"),
    ("main=http://u:s3cret@h:99999/", "not a valid URL"),
    ("main=u:s3cret@h", "http:// or https://"),
])
def test_bad_drain_values(value: str, error: str) -> None:
    with pytest.raises(DrainConfigError, match=error) as info:
        parse_drain(value)
    assert "s3cret" not in str(info.value)


def test_duplicate_drain_names() -> None:
    with pytest.raises(DrainConfigError, match="twice"):
        parse_drains(["a=http://h/", "a@other=http://h2/"])


@pytest.mark.parametrize(("url", "masked"), [
    ("http://h:1/p", "http://h:1/p"),
    ("http://u:p@h:1/p", "http://***@h:1/p"),
    ("http://u@h/", "http://***@h/"),
    ("https://:p@h/", "https://***@h/"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# ingest auth -----------------------------------------------------------------------------


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(("header", "app"), [
    (basic("token:t.web"), "web"),
    (basic("token:t.my-app.2"), "my-app.2"),
    ("basic " + base64.b64encode(b"token:t.web").decode(), "web"),
    (basic("token:web"), None),
    (basic("user:t.web"), None),
    (basic("token:t."), None),
    (basic("token:t.Web"), None),
    (basic("token:t.a b"), None),
    ("Bearer t.web", None),
    ("Basic !!!", None),
    ("Basic " + base64.b64encode(b"\xff\xfe").decode(), None),
    ("", None),
])
def test_token_app(header: str, app: str | None) -> None:
    assert token_app(header) == app


# lines and backoff -----------------------------------------------------------------------


def test_l10_and_l11_lines() -> None:
    l10 = overflow_message(12, "2026-01-01T00:00:00.000000+00:00")
    assert (l10.app, l10.proc, l10.priority) == ("heroku", "logplex", 172)
    assert l10.text == ("Error L10 (output buffer overflow): 12 messages dropped since "
                        "2026-01-01T00:00:00.000000+00:00.")
    l11 = overflow_line(3, "2026-01-01T00:00:00.000000+00:00")
    assert l11.endswith(" heroku[logplex]: Error L11 (Tail buffer overflow) -> This tail "
                        "session dropped 3 messages since 2026-01-01T00:00:00.000000+00:00.\n")


def make_drain(timing=HEROKU, seed: int = 1) -> HttpDrain:  # type: ignore[no-untyped-def]
    metrics = LogplexMetrics(CollectorRegistry())
    return HttpDrain(parse_drain("main=http://u:pw@127.0.0.1:1/"), timing, metrics,
                     ControlRods(metrics.rod_active), log=logging.getLogger("test"),
                     rng=random.Random(seed))


def test_backoff_follows_logplex_formula(caplog: pytest.LogCaptureFixture) -> None:
    drain = make_drain()
    caplog.set_level(logging.INFO, "test")
    delays = [drain._backoff() for _ in range(40)]
    assert delays[0] == 0  # attempt 1: trunc((2^1 - 1) / 2) = 0
    slots = {round(d / HEROKU.drain_reconnect_base) for d in delays}
    assert slots <= {(2 ** k - 1) // 2 for k in range(1, 11)}
    assert max(delays) <= HEROKU.drain_reconnect_base * 511
    assert len(slots) > 3  # jitter
    line = caplog.records[4].getMessage()
    assert line.startswith(f"drain_id={drain.token} channel_id=web dest=http://***@127.0.0.1:1/ "
                           "at=reconnect_delay attempt=5 delay=")
    assert "pw" not in caplog.text


def test_fast_backoff_is_ten_times_shorter() -> None:
    assert make_drain(FAST)._backoff() == 0
    drain = make_drain(FAST)
    assert max(drain._backoff() for _ in range(60)) <= FAST.drain_reconnect_base * 511 + 1e-12


# CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--drain", "main=ftp://u:s3cret@h/"],
    ["--drain", "a=http://h/", "--drain", "a=http://h2/"],
    ["--port", "70000"],
    ["--timing", "slow"],
    ["--log-level", "loud"],
])
def test_bad_options_are_one_line_errors(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["logplex", *args])
    assert result.exit_code == 2
    assert "Error: Invalid value for" in result.output
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_drain_option_from_environment() -> None:
    result = CliRunner().invoke(main, ["logplex"], env={"SIMCTL_DRAIN": "bad"})
    assert result.exit_code == 2
    assert "expected NAME=URL" in result.output
