"""Probe expressions: typed results, and errors that carry the column inside the string."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simctl.scenario import expressions as ex


def test_http_ratio() -> None:
    probe = ex.parse("http.success_ratio >= 0.99")
    assert isinstance(probe, ex.HttpProbe)
    assert probe.quantity == "success_ratio"
    assert probe.labels == ()
    assert probe.compare == ex.Compare(">=", 0.99)
    assert probe.compare.test(0.995)
    assert not probe.compare.test(0.5)
    assert str(probe) == "http.success_ratio >= 0.99"
    assert probe.kind == "http"


@pytest.mark.parametrize("quantity", ["p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms",
                                      "rate", "error_ratio"])
def test_http_measures(quantity: str) -> None:
    probe = ex.parse(f"http.{quantity}<500")
    assert isinstance(probe, ex.HttpProbe)
    assert probe.quantity == quantity
    assert probe.compare == ex.Compare("<", 500)


def test_http_count_labels() -> None:
    probe = ex.parse('http.count{code="H12", status="503"} > 0')
    assert isinstance(probe, ex.HttpProbe)
    assert probe.label_map == {"code": "H12", "status": "503"}
    assert ex.parse("http.count > 0").labels == ()
    assert ex.parse('http.count{code="H12",} != 0').label_map == {"code": "H12"}


def test_logs_delivery() -> None:
    probe = ex.parse('logs.delivery_ratio{drain="main"} >= 0.99')
    assert isinstance(probe, ex.LogsProbe)
    assert probe.label_map == {"drain": "main"}


def test_router_lag() -> None:
    probe = ex.parse("router.version_lag > 0 on router-1")
    assert isinstance(probe, ex.RouterProbe)
    assert probe.target == "router-1"
    assert probe.compare == ex.Compare(">", 0)
    assert probe.refs == (ex.Ref("target", "router-1", 27),)
    assert ex.parse("router.version_lag == 0").target is None


def test_metric() -> None:
    probe = ex.parse('metric logplex_drain_dropped_total{drain="main", x="a\\"b"} > 1e3 on logplex')
    assert isinstance(probe, ex.MetricProbe)
    assert probe.name == "logplex_drain_dropped_total"
    assert probe.label_map == {"drain": "main", "x": 'a"b'}
    assert probe.compare == ex.Compare(">", 1000.0)
    assert probe.target == "logplex"
    assert ex.parse("metric up == 1").target is None


def test_log_literal_and_regex() -> None:
    probe = ex.parse('log "Error L10" in drain.main count >= 3')
    assert isinstance(probe, ex.LogProbe)
    assert (probe.pattern, probe.regex, probe.source) == ("Error L10", False, "drain.main")
    assert probe.count == ex.Compare(">=", 3)
    assert probe.matches("x Error L10 (output buffer overflow)")
    assert probe.refs == (ex.Ref("source", "drain.main", 20),)
    default = ex.parse('log "say \\"hi\\""')
    assert default.pattern == 'say "hi"'
    assert default.source is None
    assert default.count == ex.Compare(">=", 1)  # type: ignore[attr-defined]
    regex = ex.parse(r"log /code=H1[0-9] path=\/api/ in tail")
    assert isinstance(regex, ex.LogProbe)
    assert regex.regex
    assert regex.pattern == "code=H1[0-9] path=/api"
    assert regex.matches("at=error code=H12 path=/api/x")
    assert not regex.matches("code=H21 path=/api")


def test_health() -> None:
    probe = ex.parse("health router-1 is degraded")
    assert isinstance(probe, ex.HealthProbe)
    assert (probe.target, probe.status) == ("router-1", "degraded")
    assert probe.refs == (ex.Ref("target", "router-1", 8),)


@pytest.mark.parametrize(("text", "column", "message"), [
    ("", 1, "empty probe expression"),
    ("http.success_ratio => 0.99", 20,
     "expected a comparison (<, <=, >, >=, ==, !=) after http.success_ratio, got '=>'; "
     "did you mean '>='?"),
    ("http.success_ratio = 1", 20, "did you mean '=='?"),
    ("http.sucess_ratio > 1", 6, "unknown http measure 'sucess_ratio'; did you mean "
                                 "'success_ratio'?"),
    ("htp.rate > 1", 1, "unknown probe 'htp.rate'; did you mean 'http.rate'?"),
    ("http.rate > fast", 13, "expected a number, got 'fast'"),
    ("http.rate > 10/s", 13, "expected a plain number, got '10/s'"),
    ("http.rate > 1 extra", 15, "unexpected 'extra' after the end of the probe"),
    ('http.count{cod="H12"} > 0', 12, "unknown label 'cod' for http.count; did you mean "
                                      "'code'?"),
    ('http.count{code="12"} > 0', 17, 'code must be a router or log code like "H12"'),
    ('http.count{status="600"} > 0', 19, "status must be an HTTP status from 100 to 599"),
    ('http.count{code="H12" status="503"} > 0', 23, "expected ',' or '}' in the labels"),
    ('http.count{code="H12", code="H13"} > 0', 24, "label 'code' given twice"),
    ('http.count{code=H12} > 0', 17, "expected a label value in double quotes"),
    ('http.rate{code="H12"} > 0', 11, "unknown label 'code' for http.rate (labels: router)"),
    ('log "unterminated', 5, "unterminated string"),
    ("log /a(b/", 7, "invalid regular expression: missing ), unterminated subpattern"),
    ("log /open", 5, "unterminated regular expression"),
    ('log ""', 5, "the pattern is empty"),
    ('log "x" in', 11, "expected drain.NAME or 'tail' after 'in'"),
    ('log "x" count 3', 15, "expected a comparison"),
    ("health router-1 ok", 17, "expected 'is' after 'router-1', got 'ok'"),
    ("health router-1 is fine", 20, "unknown health status 'fine'"),
    ("metric > 0", 8, "expected a metric name after 'metric'"),
    ("metric up > 0 on", 17, "expected a service, role or dyno after 'on'"),
    ("router.version_lag > 0 at router-1", 24, "unexpected 'at'"),
])
def test_errors_carry_the_column(text: str, column: int, message: str) -> None:
    with pytest.raises(ex.ExpressionError) as caught:
        ex.parse(text)
    assert caught.value.column == column
    assert message in caught.value.message
    assert str(caught.value).startswith(f"column {column}: ")


_ALPHABET = st.sampled_from(list('httpmetriclogheal.{}="/\\ <>=!0123456789_-,isonkH'))


@settings(max_examples=300, deadline=None)
@given(st.text(_ALPHABET, max_size=40))
def test_fuzz_only_expression_errors(text: str) -> None:
    """Whatever the input, parse returns a probe or raises ExpressionError with a column."""
    column = None
    try:
        probe = ex.parse(text)
    except ex.ExpressionError as exc:
        column = exc.column
    if column is None:
        assert probe.text == text
    else:
        assert 1 <= column <= len(text) + 1


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["http.p99_ms", "http.rate", "router.version_lag", "metric up"]),
       st.sampled_from(list(ex.OPERATORS)),
       st.floats(min_value=0, max_value=1e9, allow_nan=False),
       st.sampled_from(["", " ", "  "]))
def test_fuzz_valid_comparisons_round_trip(head: str, op: str, value: float, gap: str) -> None:
    probe = ex.parse(f"{head}{gap}{op}{gap}{value!r}")
    assert probe.compare == ex.Compare(op, value)  # type: ignore[attr-defined]
