"""Dyno behaviours as /control accepts them, and the dyno command's option errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from simctl.platform.__main__ import main as service_main
from simctl.platform.dyno import behaviour as bhv
from simctl.platform.dyno.behaviour import Behaviour, BehaviourError, parse
from simctl.platform.dyno.command import logplex_url


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"behaviour": "normal"}, {"behaviour": "normal"}),
        ({"behaviour": "latency", "ms": 250},
         {"behaviour": "latency", "ms": 250.0, "jitter": 0.0, "path": "/", "fraction": 1.0}),
        ({"behaviour": "error", "rate": 0.25, "status": 503, "path": "/api"},
         {"behaviour": "error", "rate": 0.25, "status": 503, "path": "/api", "fraction": 1.0}),
        ({"behaviour": "hang", "fraction": 0.5},
         {"behaviour": "hang", "path": "/", "fraction": 0.5}),
        ({"behaviour": "close"}, {"behaviour": "close", "path": "/", "fraction": 1.0}),
        ({"behaviour": "partial", "length": 50, "sent": 10, "then": "idle"},
         {"behaviour": "partial", "length": 50, "sent": 10, "then": "idle", "path": "/",
          "fraction": 1.0}),
        ({"behaviour": "crash"}, {"behaviour": "crash"}),
        ({"behaviour": "slow_boot", "seconds": 5},
         {"behaviour": "slow_boot", "seconds": 5.0, "restart": False}),
        ({"behaviour": "memory", "mb": 2},
         {"behaviour": "memory", "mb": 2.0, "cap_mb": 256.0, "path": "/", "fraction": 1.0}),
    ],
)
def test_parse_fills_defaults_and_round_trips(body, expected):
    parsed = parse(body)
    assert parsed.to_dict() == expected
    assert parse(parsed.to_dict()) == parsed


def test_every_behaviour_has_a_name_and_round_trips():
    for name in bhv.NAMES:
        body = {"behaviour": name, "seconds": 1} if name == "slow_boot" else {"behaviour": name}
        assert parse(parse(body).to_dict()).name == name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "missing field 'behaviour'"),
        ({"behaviour": "latncy"}, "did you mean 'latency'"),
        ({"behaviour": 3}, "unknown behaviour 3"),
        ({"behaviour": "latency", "msec": 3}, "unknown field 'msec'; did you mean 'ms'"),
        ({"behaviour": "latency", "ms": "100"}, "'ms' must be a number"),
        ({"behaviour": "latency", "ms": True}, "'ms' must be a number"),
        ({"behaviour": "latency", "ms": -1}, "'ms' must be between 0"),
        ({"behaviour": "error", "rate": 1.5}, "'rate' must be between 0 and 1"),
        ({"behaviour": "error", "status": 200}, "'status' must be between 400 and 599"),
        ({"behaviour": "error", "status": 500.5}, "'status' must be an integer"),
        ({"behaviour": "hang", "path": "api"}, "'path' must be a path prefix"),
        ({"behaviour": "hang", "fraction": 2}, "'fraction' must be between 0 and 1"),
        ({"behaviour": "partial", "then": "wait"}, "'then' must be \"close\""),
        ({"behaviour": "partial", "length": 10, "sent": 10}, "must be smaller than 'length'"),
        ({"behaviour": "crash", "path": "/x"}, "does not apply (crash is process-wide)"),
        ({"behaviour": "slow_boot"}, "'seconds' is required"),
        ({"behaviour": "slow_boot", "seconds": 1, "restart": "yes"}, "true or false"),
        ({"behaviour": "memory", "cap_mb": 1e9}, "'cap_mb' must be between"),
        ({"behaviour": "normal", "ms": 1}, "accepted: no other fields"),
    ],
)
def test_bad_bodies_get_one_clear_sentence(body, message):
    with pytest.raises(BehaviourError) as info:
        parse(body)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["behaviour", "ms", "jitter", "rate", "status", "path",
                                        "fraction", "length", "sent", "then", "seconds",
                                        "restart", "mb", "cap_mb", "other"]),
                       json_values | st.sampled_from(bhv.NAMES), max_size=6))
def test_any_json_object_is_accepted_or_rejected_cleanly(body):
    try:
        parsed = parse(body)
    except BehaviourError:
        return
    assert isinstance(parsed, Behaviour)
    assert parse(json.loads(json.dumps(parsed.to_dict()))) == parsed


def test_scope_matching():
    scoped = parse({"behaviour": "hang", "path": "/api"})
    assert scoped.applies_to("/api/users")
    assert not scoped.applies_to("/")
    assert not parse({"behaviour": "normal"}).applies_to("/")
    assert not parse({"behaviour": "crash"}).applies_to("/")


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/logs"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/logs"),
        ("http://127.0.0.1:5000/logs", "http://127.0.0.1:5000/logs"),
        ("https://logs.example/ingest", "https://logs.example/ingest"),
        (None, None),
    ],
)
def test_logplex_url_defaults_to_the_logs_endpoint(given_url, expected):
    assert logplex_url(given_url) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "abc"], "Invalid value for '--port'"),
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--boot-delay", "-1"], "Invalid value for '--boot-delay'"),
        (["--timing", "slow"], "Invalid value for '--timing'"),
        (["--logplex-url", "ftp://x"], "not an http(s) URL"),
        (["--logplex-url", "no-scheme"], "not an http(s) URL"),
        (["--name", "web 1"], "not a valid name"),
        (["--app", ""], "not a valid name"),
        (["--memory-quota", "0"], "Invalid value for '--memory-quota'"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_bad_options_give_a_one_line_error(args, message):
    result = CliRunner().invoke(service_main, ["dyno", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: dyno: ")
    assert message in lines[0]
