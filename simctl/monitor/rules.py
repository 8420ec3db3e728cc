"""Alert rule files (Prometheus's rule-file format) and alert states.

``load_rules`` reads a file and reports EVERY problem at once, each as ``file:line:
message`` (YAML syntax, unknown keys, PromQL syntax or constructs outside the evaluator's
subset, durations that are not durations). ``scale`` divides every duration (``for``,
``interval``, range selectors, ``offset``) for the ``fast`` timing profile (docs/alerts.md).

An alerting rule's alerts go inactive -> pending -> firing -> resolved as Prometheus's do:
pending while the expression has a result for less than ``for``, firing after, resolved
(kept 15 minutes for notifications) once the result is gone.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simctl.errors import InvalidInput
from simctl.monitor.history import Labels
from simctl.monitor.promql import Evaluator, QueryError, Vector, instant_vector, parse

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"
                       r"(?:(\d+)ms)?$")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_DURATION_IN_EXPR = re.compile(r"(\[|\boffset\s+)((?:\d+(?:ms|[smhdwy]))+)(\])?")
_TEMPLATE = re.compile(r"\{\{\s*(\$value|\$labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}")
GROUP_KEYS = {"name", "interval", "rules", "limit", "query_offset", "labels"}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
RESOLVED_KEPT = 900.0  # seconds a resolved alert stays listed (for notifications)


def parse_duration(text: str) -> float:
    """Prometheus's duration syntax (1h30m, 500ms) in seconds; ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 5m, 1h30m, 500ms)")
    return sum(int(g) * unit for g, unit in zip(match.groups(), _UNITS, strict=True) if g)


def format_duration(seconds: float) -> str:
    """Seconds in Prometheus's syntax (the largest units first; ms for fractions)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, suffix in ((3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")):
        if ms >= unit:
            out.append(f"{ms // unit}{suffix}")
            ms %= unit
    return "".join(out)


def scale_expr(expr: str, scale: float) -> str:
    """Divide every range and offset duration in an expression by `scale`."""
    if scale == 1:
        return expr

    def sub(m: re.Match[str]) -> str:
        scaled = format_duration(parse_duration(m.group(2)) / scale)
        return f"{m.group(1)}{scaled}{m.group(3) or ''}"

    return _DURATION_IN_EXPR.sub(sub, expr)


@dataclass
class Alert:
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # pending | firing | resolved
    active_at: float
    value: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_seen: float = 0.0


@dataclass
class Rule:
    name: str
    expr: str  # as evaluated (durations scaled)
    source_expr: str  # as written in the file
    duration: float  # `for`, seconds (scaled)
    labels: dict[str, str]
    annotations: dict[str, str]
    line: int
    parsed: Any = None
    alerts: dict[Labels, Alert] = field(default_factory=dict)
    health: str = "unknown"
    last_error: str = ""
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0

    @property
    def runbook(self) -> str:
        return self.annotations.get("runbook", "")

    @property
    def state(self) -> str:
        states = {a.state for a in self.alerts.values()}
        return "firing" if "firing" in states else "pending" if "pending" in states else \
            "inactive"

    def evaluate(self, evaluator: Evaluator, t: float) -> list[Alert]:
        """Evaluate at t; returns the alerts whose state changed (fired or resolved)."""
        try:
            result = instant_vector(evaluator.instant(self.parsed, t), "an alert expression")
            self.health, self.last_error = "ok", ""
        except QueryError as exc:
            self.health, self.last_error = "err", str(exc)
            return []
        self.last_evaluation = t
        return self._advance(result, t)

    def _advance(self, result: Vector, t: float) -> list[Alert]:
        changed = []
        present = set()
        for labels, value in result:
            own = {k: v for k, v in labels if k != "__name__"}
            own.update(self.labels)
            own["alertname"] = self.name
            key = tuple(sorted(own.items()))
            present.add(key)
            alert = self.alerts.get(key)
            if alert is None or alert.state == "resolved":
                alert = self.alerts[key] = Alert(own, {}, "pending", t, value)
            alert.value, alert.last_seen = value, t
            alert.annotations = {k: _expand(v, own, value) for k, v in self.annotations.items()}
            if alert.state == "pending" and t - alert.active_at >= self.duration:
                alert.state, alert.fired_at = "firing", t
                changed.append(alert)
        for key, alert in list(self.alerts.items()):
            if key in present:
                continue
            if alert.state == "pending":
                del self.alerts[key]
            elif alert.state == "firing":
                alert.state, alert.resolved_at = "resolved", t
                changed.append(alert)
            elif alert.resolved_at is not None and t - alert.resolved_at > RESOLVED_KEPT:
                del self.alerts[key]
        return changed


def _expand(text: str, labels: dict[str, str], value: float) -> str:
    """The two template forms rule files use most: {{ $value }} and {{ $labels.NAME }}."""
    return _TEMPLATE.sub(
        lambda m: f"{value:g}" if m.group(1) == "$value" else labels.get(m.group(2), ""), text)


@dataclass
class RuleGroup:
    name: str
    interval: float | None
    rules: list[Rule]
    last_evaluation: float = 0.0
    evaluation_time: float = 0.0


@dataclass
class RuleFile:
    path: Path
    groups: list[RuleGroup]
    scale: float = 1.0

    def rules(self) -> list[Rule]:
        return [rule for group in self.groups for rule in group.rules]

    def names(self) -> set[str]:
        return {rule.name for rule in self.rules()}


class RuleFileError(InvalidInput):
    """A rule file with problems; `problems` holds every `file:line: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        super().__init__(f"invalid rule file ({count}): " + "; ".join(problems))


CONTAINER_RULES = Path("/config/alerts.yaml")  # stack/compose.yaml mounts the file here


def default_rules_path(stack_dir: Path | None = None) -> Path:
    """SIMCTL_RULES, else the mounted file in a container, else alerts.yaml of the stack."""
    from simctl.stack.definition import default_stack_dir

    if os.environ.get("SIMCTL_RULES"):
        return Path(os.environ["SIMCTL_RULES"])
    if stack_dir is None and os.environ.get("SIMCTL_IN_CONTAINER") and CONTAINER_RULES.exists():
        return CONTAINER_RULES
    return (stack_dir or default_stack_dir()) / "alerts.yaml"


def load_rules(path: Path | str | None = None, *, scale: float = 1.0) -> RuleFile:
    """Read, check and compile a rule file; RuleFileError lists every problem."""
    path = Path(path) if path else default_rules_path()
    problems: list[str] = []
    try:
        text = path.read_text()
    except OSError as exc:
        raise RuleFileError([f"{path}: cannot read rule file: {exc.strerror}"]) from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleFileError([f"{path}:{line}: YAML syntax error: {problem}"]) from None

    def add(node: Any, message: str) -> None:
        problems.append(f"{path}:{node.start_mark.line + 1}: {message}")

    groups: list[RuleGroup] = []
    top = _mapping(root)
    if root is None or top is None or "groups" not in top:
        problems.append(f"{path}:1: a rule file is a mapping with a 'groups' list")
        raise RuleFileError(problems)
    for key, (knode, _) in top.items():
        if key != "groups":
            add(knode, f"unknown top-level key {key!r} (only 'groups')")
    groups_node = top["groups"][1]
    if not isinstance(groups_node, yaml.SequenceNode):
        add(groups_node, "'groups' must be a list")
        raise RuleFileError(problems)
    seen_groups: set[str] = set()
    alert_names: dict[str, int] = {}
    for gnode in groups_node.value:
        group = _mapping(gnode)
        if group is None:
            add(gnode, "a group must be a mapping with 'name' and 'rules'")
            continue
        for key, (knode, _) in group.items():
            if key not in GROUP_KEYS:
                add(knode, f"unknown group key {key!r}")
        name = _scalar(group, "name")
        if not name:
            add(gnode, "a group needs a 'name'")
        elif name in seen_groups:
            add(group["name"][1], f"group name {name!r} is used twice")
        seen_groups.add(name or "")
        interval = None
        if "interval" in group:
            try:
                interval = parse_duration(str(_scalar(group, "interval"))) / scale
            except ValueError as exc:
                add(group["interval"][1], f"'interval': {exc}")
        rules_node = group.get("rules", (None, None))[1]
        if not isinstance(rules_node, yaml.SequenceNode):
            add(rules_node or gnode, f"group {name!r}: 'rules' must be a list")
            continue
        rules = []
        for rnode in rules_node.value:
            rule = _rule(rnode, add, scale)
            if rule is not None:
                if rule.name in alert_names:
                    pass  # Prometheus allows the same alert name in several rules
                alert_names[rule.name] = rule.line
                rules.append(rule)
        groups.append(RuleGroup(name or "", interval, rules))
    if problems:
        raise RuleFileError(sorted(problems, key=_line_of))
    return RuleFile(path, groups, scale)


def _line_of(problem: str) -> int:
    match = re.search(r":(\d+): ", problem)
    return int(match.group(1)) if match else 0


def _rule(rnode: Any, add: Any, scale: float) -> Rule | None:
    rule = _mapping(rnode)
    if rule is None:
        add(rnode, "a rule must be a mapping with 'alert' and 'expr'")
        return None
    ok = True
    for key, (knode, _) in rule.items():
        if key == "record":
            add(knode, "recording rules are not supported (only alerting rules)")
            ok = False
        elif key not in RULE_KEYS:
            add(knode, f"unknown rule key {key!r}")
            ok = False
    name = _scalar(rule, "alert")
    if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
        add(rule.get("alert", (rnode, rnode))[1], f"'alert' must be a metric-style name, "
            f"not {name!r}")
        ok = False
    expr = _scalar(rule, "expr")
    parsed = None
    if not expr:
        add(rule.get("expr", (rnode, rnode))[1], f"rule {name}: 'expr' is missing or empty")
        ok = False
    else:
        try:
            parsed = parse(scale_expr(str(expr), scale))
        except QueryError as exc:
            add(rule["expr"][1], f"rule {name}: {exc}")
            ok = False
        except ValueError as exc:
            add(rule["expr"][1], f"rule {name}: {exc}")
            ok = False
    duration = 0.0
    if "for" in rule:
        try:
            duration = parse_duration(str(_scalar(rule, "for"))) / scale
        except ValueError as exc:
            add(rule["for"][1], f"rule {name}: 'for': {exc}")
            ok = False
    maps = {}
    for key in ("labels", "annotations"):
        node = rule.get(key, (None, None))[1]
        value: dict[str, str] = {}
        if node is not None:
            raw = yaml.safe_load(yaml.serialize(node))
            if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
                add(node, f"rule {name}: '{key}' must be a mapping of names to strings")
                ok = False
            else:
                value = {k: "" if v is None else str(v) for k, v in raw.items()}
        maps[key] = value
    if not ok:
        return None
    return Rule(name=str(name), expr=scale_expr(str(expr), scale), source_expr=str(expr),
                duration=duration, labels=maps["labels"], annotations=maps["annotations"],
                line=rnode.start_mark.line + 1, parsed=parsed)


def _mapping(node: Any) -> dict[str, tuple[Any, Any]] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return {str(k.value): (k, v) for k, v in node.value}


def _scalar(mapping: dict[str, tuple[Any, Any]], key: str) -> str | None:
    entry = mapping.get(key)
    if entry is None or not isinstance(entry[1], yaml.ScalarNode):
        return None
    return str(entry[1].value)


@functools.lru_cache(maxsize=4)
def _names_in(path: str, mtime: float) -> frozenset[str] | str:
    try:
        return frozenset(load_rules(path).names())
    except RuleFileError as exc:
        return f"{len(exc.problems)} problem(s); see `simctl alerts check`"


def missing_rule(alert: str, path: Path | None = None) -> str | None:
    """Why `alert` has no rule in the stack's rule file (for lint), or None when it has."""
    path = path or default_rules_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return f"alert '{alert}' has no rule: no rule file at {path}"
    names = _names_in(str(path), mtime)
    if isinstance(names, str):
        return f"cannot check alert '{alert}': the rule file {path} is invalid ({names})"
    if alert in names:
        return None
    close = difflib.get_close_matches(alert, sorted(names), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"alert '{alert}' has no rule in {path.parent.name}/{path.name} (docs/alerts.md){hint}"
