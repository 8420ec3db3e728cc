"""The monitor's PromQL and alert states against Prometheus's own engine (promtool).

The same input series go into the monitor's History and into a `promtool test rules`
file (evaluated half a step after a sample: see TIMES); every expression's result from
the monitor becomes that file's expectation, and promtool (Prometheus's evaluator) must
agree, up to float rounding. Likewise the alerts
of a rule with `for`, at several times. promtool comes with Debian's prometheus package
(scripts/debian-packages.sh); without it the test skips.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from simctl.monitor.history import History, labels_of
from simctl.monitor.promql import Evaluator, parse
from simctl.monitor.rules import load_rules

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool")

STEPS = 60  # one sample a second, t = 0..60
SERIES = {
    # name{labels}: values at t = 0, 1, ... (promtool's expanding notation beside it)
    'req_total{job="router",instance="r1",code="H12"}': ([i * 10.0 for i in range(STEPS + 1)],
                                                         "0+10x60"),
    'req_total{job="router",instance="r1",code="none"}': ([i * 7.0 for i in range(STEPS + 1)],
                                                          "0+7x60"),
    'req_total{job="router",instance="r2",code="none"}': (
        [i * 3.0 if i < 30 else (i - 30) * 3.0 for i in range(STEPS + 1)],  # a reset at 30
        "0+3x29 0+3x30"),
    'dur_bucket{job="router",le="0.1"}': ([i * 5.0 for i in range(STEPS + 1)], "0+5x60"),
    'dur_bucket{job="router",le="1"}': ([i * 9.0 for i in range(STEPS + 1)], "0+9x60"),
    'dur_bucket{job="router",le="+Inf"}': ([i * 10.0 for i in range(STEPS + 1)], "0+10x60"),
    'lag{job="router",instance="r1"}': ([0.0] * 20 + [3.0] * 20 + [0.0] * 21,
                                        "0x19 3x19 0x20"),
    'up{job="router",instance="r1"}': ([1.0] * (STEPS + 1), "1x60"),
    'up{job="sync",instance="s"}': ([1.0] * 25 + [0.0] * 36, "1x24 0x35"),
}
EXPRESSIONS = [
    "rate(req_total[10s])",
    "increase(req_total[15s])",
    "irate(req_total[5s])",
    "delta(lag[10s])",
    'sum by (job) (rate(req_total{code=~"H1."}[10s])) > 0',
    'sum(rate(req_total{code="H12"}[10s])) / sum(rate(req_total[10s]))',
    "sum without (code) (rate(req_total[20s]))",
    "histogram_quantile(0.9, sum by (le) (rate(dur_bucket[10s])))",
    "histogram_quantile(0.5, rate(dur_bucket[30s]))",
    "max by (instance) (lag) > 0",
    "count(up == 1)",
    "up == bool 0",
    "avg(up)",
    "max_over_time(lag[10s])",
    'absent(nothing{job="x"})',
    'rate(req_total{code="none"}[10s]) and on (instance) lag > 0',
    "lag > 0 or up == 0",
    "up unless on (job) lag",
    "-min(rate(req_total[10s])) + 2 * 3",
    "rate(req_total[10s] offset 5s)",
]
# Half a step after a sample: Prometheus 3 selects (t - range, t], the promtool of Debian
# bookworm (2.42) [t - range, t]; with no sample on the edge both select the same samples.
TIMES = [12.5, 25.5, 35.5, 45.5, 59.5]


def parse_series(text: str) -> tuple[tuple[str, str], ...]:
    name, _, rest = text.partition("{")
    labels = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return labels_of({"__name__": name, **labels})


@pytest.fixture(scope="module")
def history() -> History:
    h = History(STEPS + 10)
    for t in range(STEPS + 1):
        h.append(float(t), {parse_series(k): values[t] for k, (values, _) in SERIES.items()})
    return h


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def _promtool(tmp_path: Path, test: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def _mismatches(output: str) -> list[str]:
    """promtool's failures that are more than float rounding: `exp` and `got` of one
    expression must hold the same series with values equal to 1e-9 (relative)."""
    bad = []
    for block in re.split(r"\n\s*expr: ", output)[1:]:
        exp = dict(re.findall(r"(\{[^}]*\}) ([^,\s]+)", block.split("got:")[0].split("exp:")[1]))
        got = dict(re.findall(r"(\{[^}]*\}) ([^,\s]+)", block.split("got:")[1]))
        same = exp.keys() == got.keys() and all(
            math.isclose(float(exp[k]), float(got[k]), rel_tol=1e-9, abs_tol=1e-12)
            or (math.isnan(float(exp[k])) and math.isnan(float(got[k]))) for k in exp)
        if not same:
            bad.append(block.strip())
    return bad


def test_expressions_agree_with_prometheus(history: History, tmp_path: Path) -> None:
    evaluator = Evaluator(history)
    cases = []
    for expr in EXPRESSIONS:
        node = parse(expr)
        for t in TIMES:
            result = evaluator.instant(node, float(t))
            assert isinstance(result, list), expr
            cases.append({"expr": expr, "eval_time": f"{int(t * 1000)}ms", "exp_samples": [
                {"labels": _labels(labels), "value": value} for labels, value in result]})
    test = {"rule_files": [], "evaluation_interval": "1s", "tests": [{
        "interval": "1s",
        "input_series": [{"series": k, "values": v} for k, (_, v) in SERIES.items()],
        "promql_expr_test": cases}]}
    done = _promtool(tmp_path, test)
    if done.returncode != 0:
        assert "FAILED" in done.stdout + done.stderr
        assert _mismatches(done.stdout + done.stderr) == []


def test_alert_states_agree_with_prometheus(history: History, tmp_path: Path) -> None:
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(yaml.safe_dump({"groups": [{"name": "g", "interval": "1s", "rules": [
        {"alert": "Lagging", "expr": "max by (instance) (lag) > 0", "for": "5s",
         "labels": {"severity": "page"}},
        {"alert": "Down", "expr": "up == 0", "for": "10s"}]}]}))
    rules = load_rules(rules_path).rules()
    evaluator = Evaluator(history)
    expected: dict[int, dict[str, list[dict]]] = {}
    for t in range(STEPS + 1):  # evaluate every second, as the group's interval says
        for rule in rules:
            rule.evaluate(evaluator, float(t))
            if t in (22, 24, 26, 30, 38, 41, 45, 60):
                expected.setdefault(t, {})[rule.name] = [
                    {"exp_labels": {k: v for k, v in a.labels.items() if k != "alertname"}}
                    for a in rule.alerts.values() if a.state == "firing"]
    assert expected[30]["Lagging"]  # the rule did fire somewhere in the window
    assert expected[45]["Down"]
    test = {"rule_files": [rules_path.name], "evaluation_interval": "1s", "tests": [{
        "interval": "1s",
        "input_series": [{"series": k, "values": v} for k, (_, v) in SERIES.items()],
        "alert_rule_test": [{"eval_time": f"{t}s", "alertname": name, "exp_alerts": alerts}
                            for t, by_name in expected.items()
                            for name, alerts in by_name.items()]}]}
    done = _promtool(tmp_path, test)
    assert done.returncode == 0, done.stdout + done.stderr
