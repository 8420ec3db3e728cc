"""The monitor's PromQL evaluation, rule files and alert states (docs/alerts.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simctl.monitor.history import History, labels_of
from simctl.monitor.promql import Evaluator, QueryError, parse
from simctl.monitor.rules import (
    RuleFileError,
    format_duration,
    load_rules,
    missing_rule,
    parse_duration,
    scale_expr,
)
from simctl.runbook.check import CheckContext, check_runbook

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def series(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return labels_of({"__name__": name, **labels})


@pytest.fixture
def history() -> History:
    """20 one-second ticks: an H12 counter +10/s, a 200 counter +5/s, a histogram."""
    h = History(100)
    for i in range(20):
        h.append(1000.0 + i, {
            series("req_total", job="router", code="H12"): 10.0 * i,
            series("req_total", job="router", code="none"): 5.0 * i,
            series("dur_bucket", job="router", le="0.1"): 10.0 * i,
            series("dur_bucket", job="router", le="1"): 19.0 * i,
            series("dur_bucket", job="router", le="+Inf"): 20.0 * i,
            series("up", job="router"): 1.0,
        })
    return h


def value(history: History, expr: str, t: float = 1019.0) -> object:
    return Evaluator(history).instant(parse(expr), t)


def by_code(result: object) -> dict[str, float]:
    return {dict(labels).get("code", ""): v for labels, v in result}  # type: ignore[union-attr]


def test_rate_and_increase_follow_prometheus_extrapolation(history: History) -> None:
    # Samples cover the whole 10 s window at 1 s: rate is the slope, increase rate x 10.
    assert by_code(value(history, "rate(req_total[10s])")) == pytest.approx(
        {"H12": 10.0, "none": 5.0})
    assert by_code(value(history, "increase(req_total[10s])")) == pytest.approx(
        {"H12": 100.0, "none": 50.0})
    # A counter reset counts as a restart from 0. The window (100, 103] holds 10, 2, 6:
    # 2 + 4 = 6 over 2 s, extrapolated by one sample interval to the window's start: 9.
    h = History(10)
    for i, v in enumerate([5.0, 10.0, 2.0, 6.0]):
        h.append(100.0 + i, {series("c_total"): v})
    assert value(h, "increase(c_total[3s])", 103.0)[0][1] == pytest.approx(9.0)


def test_aggregation_arithmetic_and_comparison(history: History) -> None:
    ratio = value(history, 'sum(rate(req_total{code="H12"}[10s])) / sum(rate(req_total[10s]))')
    assert ratio[0][1] == pytest.approx(10 / 15)
    assert value(history, 'sum by (job) (rate(req_total{code=~"H1."}[10s])) > 20') == []
    fired = value(history, 'sum by (job) (rate(req_total{code=~"H1."}[10s])) > 0')
    assert fired == [((("job", "router"),), pytest.approx(10.0))]
    as_bool = value(history, "count(up) > bool 5")
    assert as_bool == [((), 0.0)]
    assert value(history, "up == 0") == []
    assert value(history, 'absent(nothing{job="x"})') == [((("job", "x"),), 1.0)]
    assert value(history, "absent(up)") == []
    both = value(history, 'req_total{code="H12"} and on(job) up')
    assert [dict(lb)["code"] for lb, _ in both] == ["H12"]


def test_histogram_quantile(history: History) -> None:
    q = value(history, "histogram_quantile(0.9, sum by (le) (rate(dur_bucket[10s])))")
    # 90% of 20/s = 18/s falls in the (0.1, 1] bucket holding 9/s of the observations.
    assert q[0][1] == pytest.approx(0.1 + 0.9 * (18 - 10) / 9)
    empty = History(5)
    empty.append(1.0, {series("d_bucket", le="1"): 0.0, series("d_bucket", le="+Inf"): 0.0})
    assert math.isnan(value(empty, "histogram_quantile(0.5, d_bucket)", 1.0)[0][1])


def test_a_series_gone_from_a_scrape_is_stale() -> None:
    h = History(10)
    h.append(1.0, {series("x"): 1.0})
    h.append(2.0, {})
    assert value(h, "x", 2.0) == []
    assert value(h, "x", 1.5) == [(series("x"), 1.0)]


def test_unsupported_constructs_are_named() -> None:
    for expr, named in [("topk(1, up)", "aggregation topk"),
                        ("rate(up[5m:1m])", "subqueries"),
                        ("up * on(job) group_left up", "group_left"),
                        ("label_replace(up, 'a', 'b', 'c', 'd')", "function label_replace")]:
        with pytest.raises(QueryError, match=named):
            parse(expr)
    with pytest.raises(QueryError, match="unknown function"):
        parse("nosuch(up)")


def test_durations_and_scaling() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")
    assert format_duration(1.5) == "1s500ms"
    assert scale_expr('rate(x{a="[1m]"}[1m]) offset 5m', 10) == \
        'rate(x{a="[6s]"}[6s]) offset 30s'


BAD = """\
groups:
  - name: a
    rules:
      - alert: One
        expr: rate(x[1m] > 0
        for: 5 minutes
      - alert: Two
        expr: nosuch(x) > 1
      - alert: Three
        expr: topk(1, x)
        bogus: 1
"""


def test_a_bad_rule_file_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BAD)
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in caught.value.problems] == \
        ["5", "6", "8", "10", "11"]
    text = "\n".join(caught.value.problems)
    for expected in ("unclosed left parenthesis", "'for': not a duration", "nosuch",
                     "aggregation topk", "unknown rule key 'bogus'"):
        assert expected in text
    path.write_text("groups: [\n")
    with pytest.raises(RuleFileError, match=r"rules.yaml:\d+: YAML syntax error"):
        load_rules(path)


def test_the_stack_rules_load_and_cover_every_named_alert() -> None:
    rules = load_rules(REPO / "stack" / "alerts.yaml", scale=10)
    named = set()
    for path in list((REPO / "scenarios").glob("*.yaml")) + list(
            (REPO / "runbooks").glob("*.md")):
        for line in path.read_text().splitlines():
            if line.startswith("alerts:"):
                named |= {a.strip() for a in line.split("[", 1)[1].rstrip("]").split(",")}
    assert named <= rules.names()
    runbooks = {p.stem for p in (REPO / "runbooks").glob("*.md")}
    for rule in rules.rules():
        assert rule.runbook in runbooks, rule.name
        assert rule.labels.get("severity"), rule.name
        assert rule.annotations.get("summary"), rule.name
    timeouts = next(r for r in rules.rules() if r.name == "RouterRequestTimeouts")
    assert timeouts.duration == 3.0
    assert "[6s]" in timeouts.expr


def test_alerts_go_pending_firing_resolved(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("groups:\n  - name: g\n    rules:\n      - alert: Errors\n"
                    "        expr: rate(err_total[2s]) > 0\n        for: 2s\n"
                    "        labels: {severity: page}\n"
                    "        annotations: {summary: 'rate {{ $value }} on {{ $labels.job }}'}\n")
    rule = load_rules(path).rules()[0]
    h = History(100)
    evaluator = Evaluator(h)
    states = []
    counts = [0, 0, 0, 5, 10, 15, 20, 25, 25, 25, 25, 25]
    for i, count in enumerate(counts):
        h.append(float(i), {series("err_total", job="app"): float(count)})
        changed = rule.evaluate(evaluator, float(i))
        states.append((rule.state, [a.state for a in changed]))
    assert [s for s, _ in states] == [
        "inactive", "inactive", "inactive", "pending", "pending", "firing", "firing",
        "firing", "inactive", "inactive", "inactive", "inactive"]
    assert [c for _, c in states if c] == [["firing"], ["resolved"]]
    alert = next(iter(rule.alerts.values()))
    assert alert.labels == {"alertname": "Errors", "job": "app", "severity": "page"}
    assert alert.annotations["summary"].endswith(" on app")
    # (6, 8] holds only 25s: the rate is 0 at t=8, so the alert resolves there.
    assert (alert.active_at, alert.fired_at, alert.resolved_at) == (3.0, 5.0, 8.0)


def test_runbook_check_flags_an_alert_without_a_rule(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: LogDrainDroppingFast\n"
                     "        expr: up == 0\n")
    monkeypatch.setenv("SIMCTL_RULES", str(rules))
    monkeypatch.chdir(FIXTURES)
    context = CheckContext.discover(FIXTURES / "scenarios" / "valid")
    findings = [str(f) for f in check_runbook(Path("runbooks/logplex-drain-backlog.md"),
                                              context) if f.rule == "RB014"]
    assert findings == [
        "runbooks/logplex-drain-backlog.md:4: RB014 alert 'LogDrainDropping' has no rule in "
        f"{tmp_path.name}/alerts.yaml (docs/alerts.md); did you mean 'LogDrainDroppingFast'?"]
    assert missing_rule("LogDrainDroppingFast") is None


def test_the_ring_keeps_the_newest_rounds_across_its_end() -> None:
    h = History(5)
    for i in range(8):  # rounds 3..7 are kept, slots wrap around
        h.append(float(i), {series("x_total"): float(i * 2)})
    ring = h.of("x_total")[series("x_total")]
    lo, hi = h.window(7.0, 10.0)
    assert h.samples(ring, lo, hi) == [(float(i), float(i * 2)) for i in range(3, 8)]
    assert value(h, "increase(x_total[2s])", 7.0)[0][1] == pytest.approx(4.0)
