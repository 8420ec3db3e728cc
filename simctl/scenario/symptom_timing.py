"""When a symptom counts: the fault it follows, `throughout`, `while`, and `baseline_ok`.

A symptom proves the incident only if it appears *because of* a fault: "error ratio ==
0" or "success ratio >= 0.99" already hold before any fault, so seeing them once proves
nothing (docs/scenarios.md, "When a symptom is seen"). This module has the file-level
checks of those keys (names exist, windows fit) and the lint warning for a probe that a
healthy stack already satisfies; the engine enforces the same at run time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simctl.scenario import expressions
from simctl.scenario.errors import did_you_mean
from simctl.scenario.model import Scenario, Symptom, parse_duration

# What the measures read on a healthy stack with nothing injected.
_BASELINE = {"success_ratio": 1.0, "error_ratio": 0.0, "count": 0.0, "delivery_ratio": 1.0,
             "version_lag": 0.0, "p50_ms": 10.0, "p90_ms": 10.0, "p99_ms": 10.0,
             "max_ms": 10.0, "mean_ms": 10.0}


def holds_on_baseline(probe: expressions.Probe, steady: list[str]) -> bool:
    """Whether ``probe`` is satisfied by a healthy stack with no fault (a static guess:
    the steady state's own probes, ratios at 1, error counts and counter increases at 0,
    health ok, latencies of a few ms; gauges and rates are not guessed)."""
    if probe.text.strip() in steady:
        return True
    if isinstance(probe, expressions.HttpProbe | expressions.LogsProbe | expressions.RouterProbe):
        value = _BASELINE.get(probe.quantity)
        return value is not None and probe.compare.test(value)
    if isinstance(probe, expressions.MetricProbe):
        return probe.name.endswith("_total") and probe.compare.test(0.0)
    if isinstance(probe, expressions.LogProbe):
        return probe.count.test(0.0)
    if isinstance(probe, expressions.HealthProbe):
        return probe.status == "ok"
    return False


def baseline_warnings(scenario: Scenario) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, message) for each symptom probe that already holds in steady state and is
    not in an item marked ``baseline_ok: true``."""
    steady = [p.text.strip() for p in scenario.steady_state]
    for i, item in enumerate(scenario.symptoms):
        if item.baseline_ok:
            continue
        for j, probe in enumerate(item.expect):
            if holds_on_baseline(probe, steady):
                yield (("symptoms", i, "expect", j),
                       f"warning: '{probe.text}' already holds in steady state, so seeing it "
                       "proves nothing; test what the fault changes, or mark the item "
                       "'baseline_ok: true' (verify fails it otherwise)")


def check(data: dict[str, Any], add: Any) -> None:
    """Fault names are unique; `after` and `while` name a fault; the windows fit in
    `within`. ``add(path, message)`` records a problem (raw YAML data: skip bad shapes)."""
    raw_faults = data.get("faults")
    faults = raw_faults if isinstance(raw_faults, list) else []
    named: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(faults):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in named:
            add(("faults", index, "name"), f"fault name '{name}' is used twice")
        named.setdefault(name, item)
    raw_symptoms = data.get("symptoms")
    symptoms = raw_symptoms if isinstance(raw_symptoms, list) else []
    for index, item in enumerate(symptoms):
        if not isinstance(item, dict):
            continue
        within = _seconds(item.get("within"))
        for key in ("after", "while"):
            ref = item.get(key)
            if isinstance(ref, str) and ref not in named:
                hint = did_you_mean(ref, named) if named else " (no fault has a 'name')"
                add(("symptoms", index, key), f"no fault named '{ref}'{hint}")
        followed = named.get(item["after"]) if isinstance(item.get("after"), str) else None
        start = _seconds(followed.get("at")) if followed else None
        throughout = _seconds(item.get("throughout"))
        if within is not None and start is not None and start >= within:
            add(("symptoms", index, "within"), f"within {item['within']} ends before the "
                # The type: ignore below: start is not None, so followed is set.
                f"fault '{item['after']}' is applied (at {followed['at']})")  # type: ignore[index]
        if within is not None and throughout is not None and (start or 0) + throughout > within:
            add(("symptoms", index, "throughout"), f"throughout {item['throughout']} cannot "
                f"end by within {item['within']}")
        during = named.get(item["while"]) if isinstance(item.get("while"), str) else None
        if during and within is not None and "for" in during:
            end = (_seconds(during.get("at")) or 0) + (_seconds(during["for"]) or 0)
            if end > within:
                add(("symptoms", index, "while"), f"fault '{item['while']}' lasts until "
                    f"t={end:g}s, after within {item['within']}")


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def followed_fault(scenario: Scenario, item: Symptom) -> int | None:
    """Index in ``scenario.timeline()`` of the fault the item is watched from: its
    ``after`` (or ``while``) fault, else the last fault to apply."""
    timeline = scenario.timeline()
    name = item.after or item.while_
    if name is not None:
        fault = scenario.fault_named(name)
        return next((i for i, f in enumerate(timeline) if f is fault), None)
    return len(timeline) - 1 if timeline else None
