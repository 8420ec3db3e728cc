"""Probe evaluation (simctl.scenario.probes): the windows and every kind of probe, no sockets."""

from __future__ import annotations

import pytest

from simctl.load.results import Recorder
from simctl.scenario.expressions import parse
from simctl.scenario.probes import (
    Observation,
    Window,
    counter_increase,
    evaluate,
    format_value,
    log_key,
    metric_key,
    percentile,
)
from simctl.scenario.traffic import (
    ERROR,
    RESPONSE,
    TIMEOUT,
    UNSENT,
    HttpTap,
    LogGeneration,
    Outcome,
)


def ok(t: float, ms: float = 10.0) -> Outcome:
    return Outcome(t, RESPONSE, 200, None, ms)


def h12(t: float) -> Outcome:
    return Outcome(t, RESPONSE, 503, "H12", 3000.0)


def reading(text: str, obs: Observation, phase_start: float = 0.0, width: float = 5.0):
    return evaluate(parse(text), obs, Window.at(obs.now, phase_start, width, 1.0))


# -- windows ---------------------------------------------------------------------------------


def test_window_is_the_last_five_seconds_when_the_phase_is_older() -> None:
    w = Window.at(100.0, 10.0)
    assert (w.start, w.ratio_start, w.now) == (95.0, 95.0, 100.0)


def test_window_is_clamped_to_the_phase_start_for_counts() -> None:
    w = Window.at(100.0, 98.0)
    assert w.start == 98.0
    assert w.ratio_start == 95.0 + 3.0  # the phase start: more than min_span back


def test_ratios_look_back_at_least_min_span_at_a_phase_start() -> None:
    w = Window.at(100.2, 100.0)
    assert w.start == 100.0  # counts never look before the phase
    assert w.ratio_start == pytest.approx(99.2)  # ratios: at least 1 s of requests


# -- http ------------------------------------------------------------------------------------


def test_success_ratio_counts_timeouts_errors_and_unsent_as_failures() -> None:
    outcomes = [ok(99.0), ok(99.1), h12(99.2), Outcome(99.3, TIMEOUT),
                Outcome(99.4, ERROR), Outcome(99.5, UNSENT), ok(99.6), ok(99.7)]
    obs = Observation(now=100.0, outcomes=outcomes)
    assert reading("http.success_ratio >= 0.5", obs).value == pytest.approx(4 / 8)
    assert reading("http.success_ratio >= 0.5", obs).holds
    assert reading("http.error_ratio < 0.5", obs).value == pytest.approx(0.5)
    assert not reading("http.error_ratio < 0.5", obs).holds


def test_requests_outside_the_window_do_not_count() -> None:
    obs = Observation(now=100.0, outcomes=[h12(90.0), h12(94.9), ok(95.5), ok(99.0)])
    assert reading("http.success_ratio >= 0.99", obs).holds
    assert reading('http.count{code="H12"} == 0', obs).holds


def test_a_ratio_without_requests_has_no_value_and_does_not_hold() -> None:
    r = reading("http.success_ratio >= 0.99", Observation(now=100.0))
    assert r.value is None
    assert not r.holds
    assert "no requests" in r.describe()


def test_count_by_code_by_status_both_and_none() -> None:
    outcomes = [ok(99.0), h12(99.1), h12(99.2), Outcome(99.3, RESPONSE, 503, "H10", 5.0),
                Outcome(99.4, RESPONSE, 500, None, 5.0), Outcome(99.5, TIMEOUT)]
    obs = Observation(now=100.0, outcomes=outcomes)
    assert reading('http.count{code="H12"} == 2', obs).holds
    assert reading('http.count{status="503"} == 3', obs).holds
    assert reading('http.count{status="503", code="H10"} == 1', obs).holds
    assert reading("http.count == 5", obs).holds  # responses only, not the timeout


def test_counts_start_at_the_phase_start() -> None:
    obs = Observation(now=100.0, outcomes=[h12(97.0), h12(99.5)])
    assert reading('http.count{code="H12"} == 1', obs, phase_start=98.0).holds
    assert reading('http.count{code="H12"} == 2', obs, phase_start=0.0).holds


def test_rate_is_responses_per_second_of_the_window() -> None:
    outcomes = [ok(95.0 + i * 0.1) for i in range(1, 51)]  # 50 in the last 5 s
    obs = Observation(now=100.0, outcomes=outcomes)
    assert reading("http.rate > 9", obs).value == pytest.approx(10.0)


def test_latency_percentiles_mean_and_max() -> None:
    outcomes = [ok(99.0, float(ms)) for ms in range(1, 101)]  # 1..100 ms
    obs = Observation(now=100.0, outcomes=outcomes + [Outcome(99.5, TIMEOUT)])
    assert reading("http.p50_ms <= 50", obs).value == 50.0
    assert reading("http.p90_ms <= 90", obs).value == 90.0
    assert reading("http.p99_ms <= 99", obs).value == 99.0
    assert reading("http.max_ms == 100", obs).holds
    assert reading("http.mean_ms > 50", obs).value == pytest.approx(50.5)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0], 99) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0


# -- logs delivery ---------------------------------------------------------------------------


def test_delivery_ratio_counts_the_lines_due_in_the_window() -> None:
    gen = LogGeneration("run.1", rate=10.0, t0=90.0)
    due = gen.due_range(94.0, 99.0)  # window [95, 100] shifted back by 1 s
    assert (due.start, due.stop) == (40, 91)
    delivered = {"main": {"run.1": set(range(0, 91))},
                 "audit": {"run.1": set(range(0, 91, 2))}}
    obs = Observation(now=100.0, generations=[gen], drains=["main", "audit"],
                      delivered=delivered)
    assert reading('logs.delivery_ratio{drain="main"} >= 0.99', obs).value == 1.0
    audit = reading('logs.delivery_ratio{drain="audit"} >= 0.99', obs)
    assert audit.value == pytest.approx(26 / 51)
    both = reading("logs.delivery_ratio >= 0.99", obs)
    assert both.value == pytest.approx((51 + 26) / 102)
    assert not both.holds


def test_delivery_ratio_without_lines_has_no_value() -> None:
    r = reading("logs.delivery_ratio >= 0.99", Observation(now=100.0, drains=["main"]))
    assert r.value is None
    assert not r.holds


def test_a_stopped_generation_has_no_lines_after_its_end() -> None:
    gen = LogGeneration("run.1", rate=10.0, t0=0.0, end=5.0)
    assert len(gen.due_range(4.0, 10.0)) == 11  # seq 40..50
    assert len(gen.due_range(6.0, 10.0)) == 0


# -- metrics ---------------------------------------------------------------------------------


def test_counter_increase_uses_the_last_value_before_the_window() -> None:
    points = [(90.0, 5.0), (94.0, 7.0), (96.0, 9.0), (99.0, 12.0)]
    assert counter_increase(points, 95.0, 100.0) == 5.0  # from 7 (at 94) to 12


def test_counter_increase_treats_a_drop_as_a_restart_from_zero() -> None:
    points = [(94.0, 100.0), (96.0, 110.0), (97.0, 3.0), (99.0, 4.0)]
    assert counter_increase(points, 95.0, 100.0) == 10.0 + 3.0 + 1.0


def test_counter_increase_ignores_scrapes_that_failed() -> None:
    assert counter_increase([(94.0, None), (99.0, None)], 95.0, 100.0) is None
    assert counter_increase([(94.0, 1.0), (97.0, None), (99.0, 4.0)], 95.0, 100.0) == 3.0


def test_metric_counters_sum_the_increase_over_services() -> None:
    probe = parse('metric router_requests_total{code="H12"} > 0 on router')
    history = {"router-1": [(94.0, 0.0), (99.0, 2.0)], "router-2": [(94.0, 1.0), (99.0, 1.0)]}
    obs = Observation(now=100.0, metrics={metric_key(probe): history})
    r = evaluate(probe, obs, Window.at(100.0, 0.0))
    assert (r.value, r.holds) == (2.0, True)


def test_metric_gauges_sum_the_current_values_of_services_that_expose_them() -> None:
    probe = parse('metric logplex_drain_buffer_messages{drain="main"} >= 100')
    history = {"logplex": [(98.0, 10.0), (99.5, 150.0)], "router-1": [(99.5, None)]}
    r = evaluate(probe, Observation(now=100.0, metrics={metric_key(probe): history}),
                 Window.at(100.0, 0.0))
    assert (r.value, r.holds) == (150.0, True)
    absent = evaluate(probe, Observation(now=100.0, metrics={metric_key(probe): {
        "router-1": [(99.5, None)]}}), Window.at(100.0, 0.0))
    assert absent.value is None
    assert not absent.holds


def test_metric_keys_tell_labels_and_targets_apart() -> None:
    a = metric_key(parse('metric x_total{a="1"} > 0 on router'))
    b = metric_key(parse('metric x_total{a="1"} > 0'))
    assert a != b


# -- log lines -------------------------------------------------------------------------------


def test_log_literal_and_regex_are_counted_in_the_window_since_the_phase_began() -> None:
    literal = parse('log "Error L10" in drain.main count >= 2')
    regex = parse(r"log /code=H1[2-9]/ in tail")
    rows = {log_key(literal): [(96.0, "heroku[logplex]: Error L10 (output buffer overflow)"),
                               (97.0, "heroku[logplex]: Error L10 (output buffer overflow)"),
                               (97.5, "app[web.1]: at=info")],
            log_key(regex): [(99.0, "heroku[router]: at=error code=H12 desc=...")]}
    obs = Observation(now=100.0, log_rows=rows)
    assert evaluate(literal, obs, Window.at(100.0, 0.0)).holds
    assert not evaluate(literal, obs, Window.at(100.0, 96.5)).holds  # one since the phase
    assert evaluate(regex, obs, Window.at(100.0, 0.0)).value == 1.0


def test_log_keys_share_a_feed_for_the_same_source_and_literal() -> None:
    assert log_key(parse('log "x" in drain.main')) == ("drain.main", "x")
    assert log_key(parse('log "x"')) == ("*", "x")
    assert log_key(parse("log /x/ in drain.audit")) == ("drain.audit", None)
    assert log_key(parse('log "x" in tail')) == ("tail", None)


# -- health and route versions ---------------------------------------------------------------


def test_health_holds_when_every_service_of_the_target_has_the_status() -> None:
    obs = Observation(now=1.0, health={"router-1": "ok", "router-2": "degraded"},
                      targets={"router": ["router-1", "router-2"], "router-1": ["router-1"]})
    assert reading("health router-1 is ok", obs).holds
    r = reading("health router is ok", obs)
    assert not r.holds
    assert r.value == "router-1=ok, router-2=degraded"


def test_health_of_an_unknown_or_unanswered_service() -> None:
    obs = Observation(now=1.0, targets={"dyno-2": ["dyno-2"]})
    assert reading("health dyno-2 is down", obs).holds  # no answer is down
    assert not reading("health web.9 is down", obs).holds  # nothing runs it


def test_version_lag_is_sync_minus_applied_the_largest_over_routers() -> None:
    obs = Observation(now=1.0, sync_version=12, routers={"router-1": (9, 0), "router-2": (12, 0)},
                      targets={"router-1": ["router-1"], "router-2": ["router-2"]})
    assert reading("router.version_lag == 3", obs).holds
    assert reading("router.version_lag == 0 on router-2", obs).holds
    fallback = Observation(now=1.0, routers={"router-1": (9, 2)})
    assert reading("router.version_lag == 2", fallback).holds  # sync unreachable


# -- the tap ---------------------------------------------------------------------------------


def test_tap_sees_what_the_generator_records() -> None:
    clock = iter([10.0, 11.0, 12.0, 13.0])
    tap = HttpTap(keep=60.0, clock=lambda: next(clock))
    recorder = Recorder()
    tap.attach(recorder)
    recorder.response(200, None, 10, 0.02, 0.01)
    recorder.response(503, "H12", 10, 3.0, 3.0)
    recorder.failure("timeout")
    recorder.unsent()
    assert recorder.total.completed == 2  # the generator's own counts still work
    kinds = [(o.kind, o.status, o.code) for o in tap.since(0.0)]
    assert kinds == [(RESPONSE, 200, None), (RESPONSE, 503, "H12"), (TIMEOUT, None, None),
                     (UNSENT, None, None)]
    assert tap.since(11.5)[0].kind == TIMEOUT
    summary = tap.summary()
    assert summary["finished"] == 4
    assert summary["by_code"] == {"H12": 1}
    assert summary["success_ratio"] == 0.25


def test_tap_forgets_outcomes_older_than_keep() -> None:
    tap = HttpTap(keep=5.0)
    for t in (1.0, 2.0, 8.0):
        tap.add(ok(t))
    assert [o.t for o in tap.since(0.0)] == [8.0]
    assert tap.summary()["finished"] == 3


def test_values_are_shown_plainly() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.98765) == "0.9877"
    assert format_value("a=ok") == "a=ok"
    assert format_value(None) == "none"
