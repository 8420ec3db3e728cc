"""The load generator's bookkeeping: percentiles, windows, ratios, arrival counts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simctl.load.generator import arrivals
from simctl.load.results import Latency, Recorder, new_histogram, percentiles, record


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=120), min_size=1, max_size=300))
def test_percentiles_match_hdrhistogram(samples):
    histogram = new_histogram()
    for seconds in samples:
        record(histogram, seconds)
    wanted = (50, 90, 99, 100)
    assert percentiles(histogram, wanted) == [histogram.get_value_at_percentile(p)
                                              for p in wanted]


def test_latency_summary_in_milliseconds():
    histogram = new_histogram()
    for ms in range(1, 101):
        record(histogram, ms / 1000)
    lat = Latency.of(histogram, sum(range(1, 101)) / 1000)
    assert lat.count == 100
    assert lat.p50 == pytest.approx(50, rel=0.01)
    assert lat.p90 == pytest.approx(90, rel=0.01)
    assert lat.p99 == pytest.approx(99, rel=0.01)
    assert lat.max == pytest.approx(100, rel=0.01)
    assert lat.mean == pytest.approx(50.5)
    assert Latency.of(new_histogram(), 0.0) == Latency()


def test_recorder_totals_and_windows():
    rec = Recorder()
    rec.response(200, None, 10, 0.010, 0.009)
    rec.response(503, "H12", 5, 0.020, 0.019)
    rec.failure("timeout")
    first = rec.close_window(0.0, 1.0)
    rec.failure("connect")
    rec.unsent()
    rec.response(302, None, 0, 0.005, 0.004)
    rec.log_lines(100, 3)
    second = rec.close_window(1.0, 2.0)
    empty = rec.close_window(2.0, 3.0)

    assert (first.completed, first.ok, first.timeouts) == (2, 1, 1)
    assert first.by_status == {200: 1, 503: 1}
    assert first.by_code == {"H12": 1}
    assert first.success_ratio == pytest.approx(1 / 3)
    assert first.latency.count == 2
    assert first.rate == 3.0
    assert (second.ok, second.unsent, second.connection_errors) == (1, 1, 1)
    assert second.success_ratio == pytest.approx(1 / 3)
    assert (second.log_lines_sent, second.log_lines_lost) == (100, 3)
    assert empty.success_ratio is None
    assert empty.latency == Latency()

    total = rec.total
    assert total.completed == 3
    assert total.ok == 2
    assert total.errors == {"connect": 1}
    assert total.finished() == 6
    assert total.bytes == 15
    assert rec.windows == [first, second, empty]


@pytest.mark.parametrize(
    ("rate", "duration", "expected"),
    [(200, 2.0, 400), (100, 0.3, 30), (3, 1.0, 3), (3, 0.5, 2), (0.5, 1.0, 1), (7, None, None)],
)
def test_arrivals_before_the_end(rate, duration, expected):
    count = arrivals(rate, duration)
    assert count == (float("inf") if expected is None else expected)
