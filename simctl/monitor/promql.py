"""PromQL evaluation over the monitor's history: the subset the alert rules use.

Expressions are parsed by promql-parser (Prometheus's grammar); this module checks that
a parsed expression stays inside the supported subset (``unsupported``) and evaluates it
at an instant with Prometheus's semantics (docs/alerts.md lists the subset):
selectors with label matchers and ``offset``; ``rate``/``increase``/``irate``/``delta``
(extrapolated as Prometheus does) and the ``*_over_time`` family; ``sum``, ``max``,
``min``, ``avg``, ``count`` with ``by``/``without``; ``histogram_quantile``, ``absent``,
``scalar``, ``vector``, ``time``, ``abs``; arithmetic and comparisons (with ``bool``)
between scalars and vectors with one-to-one ``on``/``ignoring`` matching; ``and``,
``or``, ``unless``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import promql_parser as pp

from simctl.monitor.history import History, Labels

LOOKBACK = 300.0  # Prometheus's default lookback delta: 5 minutes

Sample = tuple[Labels, float]
Vector = list[Sample]
Matrix = list[tuple[Labels, list[tuple[float, float]]]]
Value = float | Vector | Matrix | str
NO_LABELS: Labels = ()

RANGE_FUNCTIONS = {"rate", "increase", "irate", "delta", "avg_over_time", "min_over_time",
                   "max_over_time", "sum_over_time", "count_over_time", "last_over_time"}
OTHER_FUNCTIONS = {"histogram_quantile", "absent", "scalar", "vector", "time", "abs",
                   "clamp_min", "clamp_max"}
AGGREGATIONS = {"sum", "max", "min", "avg", "count"}
ARITHMETIC = {"+", "-", "*", "/", "%", "^"}
COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}


class QueryError(ValueError):
    """An expression that cannot be parsed, or is outside the supported subset."""


def parse(text: str) -> Any:
    """Parse and check an expression; QueryError names what is wrong."""
    try:
        expr = pp.parse(text)
    except (ValueError, RuntimeError) as exc:
        raise QueryError(f"invalid expression: {exc}") from None
    problems = unsupported(expr)
    if problems:
        raise QueryError("unsupported: " + "; ".join(problems))
    return expr


def unsupported(expr: Any) -> list[str]:
    """Every construct of `expr` this evaluator does not implement."""
    found: list[str] = []

    def walk(node: Any) -> None:
        kind = type(node).__name__
        if kind == "SubqueryExpr":
            found.append("subqueries ([range:step])")
        elif kind == "VectorSelector":
            if node.at is not None:
                found.append("the @ modifier")
        elif kind == "MatrixSelector":
            walk(node.vector_selector)
        elif kind == "Call":
            name = node.func.name
            if name not in RANGE_FUNCTIONS | OTHER_FUNCTIONS:
                found.append(f"function {name}()")
            for arg in node.args:
                walk(arg)
        elif kind == "AggregateExpr":
            op = str(node.op)
            if op not in AGGREGATIONS:
                found.append(f"aggregation {op}")
            walk(node.expr)
        elif kind == "BinaryExpr":
            op = str(node.op)
            if op not in ARITHMETIC | COMPARISON | SET_OPS:
                found.append(f"operator {op}")
            modifier = node.modifier
            if modifier is not None and str(modifier.card).endswith(("ManyToOne", "OneToMany")):
                found.append("group_left/group_right (only one-to-one matching)")
            walk(node.lhs)
            walk(node.rhs)
        elif kind in ("ParenExpr", "UnaryExpr"):
            walk(node.expr)

    walk(expr)
    return found


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _matcher(m: Any) -> Callable[[str], bool]:
    op, value = str(m.op), m.value
    if op.endswith("NotEqual"):
        return lambda v: v != value
    if op.endswith("NotRe"):
        rx = _regex(value)
        return lambda v: rx.fullmatch(v) is None
    if op.endswith("Re"):
        rx = _regex(value)
        return lambda v: rx.fullmatch(v) is not None
    return lambda v: v == value


def _drop_name(labels: Labels) -> Labels:
    return tuple(kv for kv in labels if kv[0] != "__name__")


def _signature(labels: Labels, names: frozenset[str], include: bool) -> Labels:
    if include:
        return tuple(kv for kv in labels if kv[0] in names)
    return tuple(kv for kv in labels if kv[0] not in names and kv[0] != "__name__")


@dataclass
class Evaluator:
    """Evaluates parsed expressions against a History at an instant."""

    history: History
    lookback: float = LOOKBACK

    def instant(self, expr: Any, t: float) -> Value:
        return self._eval(expr, t)

    # -- dispatch --------------------------------------------------------------------

    def _eval(self, node: Any, t: float) -> Value:
        kind = type(node).__name__
        if kind == "NumberLiteral":
            return float(node.val)
        if kind == "StringLiteral":
            return str(node.val)
        if kind == "ParenExpr":
            return self._eval(node.expr, t)
        if kind == "UnaryExpr":
            value = self._eval(node.expr, t)
            if isinstance(value, float):
                return -value
            return [(_drop_name(labels), -v) for labels, v in instant_vector(value, "unary -")]
        if kind == "VectorSelector":
            return self._select(node, t)
        if kind == "MatrixSelector":
            return self._matrix(node, t)
        if kind == "Call":
            return self._call(node, t)
        if kind == "AggregateExpr":
            return self._aggregate(node, t)
        if kind == "BinaryExpr":
            return self._binary(node, t)
        raise QueryError(f"unsupported: {kind}")

    # -- selectors -------------------------------------------------------------------

    @staticmethod
    def _series(node: Any) -> tuple[str | None, Callable[[Labels], bool]]:
        """The metric name to look up (if the selector fixes one) and a label test."""
        tests = []
        name = node.name
        for m in node.matchers.matchers:
            op = str(m.op)
            if m.name == "__name__" and op.endswith("Equal") and not op.endswith("NotEqual"):
                name = m.value
            tests.append((m.name, _matcher(m)))

        def matches(labels: Labels) -> bool:
            found = dict(labels)
            return all(check(found.get(key, "")) for key, check in tests)

        return name, matches

    def _select(self, node: Any, t: float) -> Vector:
        name, matches = self._series(node)
        at = t - (node.offset.total_seconds() if node.offset else 0.0)
        return [
            (labels, value)
            for labels, value in self.history.instant(at, self.lookback, name)
            if matches(labels)
        ]

    def _matrix(self, node: Any, t: float) -> Matrix:
        selector = node.vector_selector
        name, matches = self._series(selector)
        at = t - (selector.offset.total_seconds() if selector.offset else 0.0)
        lo, hi = self.history.window(at, node.range.total_seconds())
        out: Matrix = []
        for labels, ring in self.history.of(name).items():
            if matches(labels):
                points = self.history.samples(ring, lo, hi)
                if points:
                    out.append((labels, points))
        return out

    # -- functions -------------------------------------------------------------------

    def _call(self, node: Any, t: float) -> Value:
        name = node.func.name
        if name in RANGE_FUNCTIONS:
            matrix = node.args[0]
            span = matrix.range.total_seconds()
            offset = matrix.vector_selector.offset
            end = t - (offset.total_seconds() if offset else 0.0)
            out: Vector = []
            for labels, points in self._matrix(matrix, t):
                value = _range_function(name, points, end - span, end)
                if value is not None:
                    out.append((_drop_name(labels), value))
            return out
        args = [self._eval(a, t) for a in node.args]
        if name == "time":
            return t
        if name == "vector":
            return [(NO_LABELS, _scalar(args[0], "vector()"))]
        if name == "scalar":
            vec = instant_vector(args[0], "scalar()")
            return vec[0][1] if len(vec) == 1 else math.nan
        if name == "abs":
            return [(_drop_name(lb), abs(v)) for lb, v in instant_vector(args[0], "abs()")]
        if name in ("clamp_min", "clamp_max"):
            pick = max if name == "clamp_min" else min
            bound = _scalar(args[1], f"{name}()")
            vector = instant_vector(args[0], f"{name}()")
            return [(_drop_name(lb), pick(v, bound)) for lb, v in vector]
        if name == "absent":
            if args[0]:
                return []
            return [(_absent_labels(node.args[0]), 1.0)]
        if name == "histogram_quantile":
            return _histogram_quantile(_scalar(args[0], name), instant_vector(args[1], name))
        raise QueryError(f"unsupported: function {name}()")

    # -- aggregation -----------------------------------------------------------------

    def _aggregate(self, node: Any, t: float) -> Vector:
        op = str(node.op)
        vector = instant_vector(self._eval(node.expr, t), f"{op}()")
        modifier = node.modifier
        names = frozenset(modifier.labels) if modifier is not None else frozenset()
        by = modifier is None or str(modifier.type).endswith("By")
        groups: dict[Labels, list[float]] = {}
        for labels, value in vector:
            key = _signature(labels, names, include=by)
            groups.setdefault(key, []).append(value)
        out: Vector = []
        for key, values in groups.items():
            if op == "sum":
                result = math.fsum(values)
            elif op == "max":
                result = max(values, key=lambda v: -math.inf if v != v else v)
            elif op == "min":
                result = min(values, key=lambda v: math.inf if v != v else v)
            elif op == "avg":
                result = math.fsum(values) / len(values)
            else:
                result = float(len(values))
            out.append((key, result))
        return out

    # -- binary operators ------------------------------------------------------------

    def _binary(self, node: Any, t: float) -> Value:
        op = str(node.op)
        lhs, rhs = self._eval(node.lhs, t), self._eval(node.rhs, t)
        modifier = node.modifier
        keep_bool = bool(modifier is not None and modifier.return_bool)
        if isinstance(lhs, float) and isinstance(rhs, float):
            value = _apply(op, lhs, rhs)
            if op in COMPARISON:
                if not keep_bool:
                    raise QueryError("comparisons between scalars must use bool")
                return 1.0 if value else 0.0
            return value
        if isinstance(lhs, float) or isinstance(rhs, float):
            return self._vector_scalar(op, lhs, rhs, keep_bool)
        return self._vector_vector(op, instant_vector(lhs, op), instant_vector(rhs, op),
                                   modifier, keep_bool)

    @staticmethod
    def _vector_scalar(op: str, lhs: Value, rhs: Value, keep_bool: bool) -> Vector:
        vector_left = isinstance(rhs, float)
        vector, scalar = (lhs, rhs) if vector_left else (rhs, lhs)
        number = _scalar(scalar, op)
        out: Vector = []
        for labels, v in instant_vector(vector, op):
            a, b = (v, number) if vector_left else (number, v)
            result = _apply(op, a, b)
            if op in COMPARISON:
                if keep_bool:
                    out.append((_drop_name(labels), 1.0 if result else 0.0))
                elif result:
                    out.append((labels, v))
            else:
                out.append((_drop_name(labels), float(result)))
        return out

    @staticmethod
    def _vector_vector(op: str, lhs: Vector, rhs: Vector, modifier: Any,
                       keep_bool: bool) -> Vector:
        matching = modifier.matching if modifier is not None else None
        include = matching is not None and str(matching.type).endswith("Include")
        names = frozenset(matching.labels) if matching is not None else frozenset()

        def sig(labels: Labels) -> Labels:
            return _signature(labels, names, include)

        if op in SET_OPS:
            right = {sig(lb) for lb, _ in rhs}
            if op == "and":
                return [(lb, v) for lb, v in lhs if sig(lb) in right]
            if op == "unless":
                return [(lb, v) for lb, v in lhs if sig(lb) not in right]
            left = {sig(lb) for lb, _ in lhs}
            return list(lhs) + [(lb, v) for lb, v in rhs if sig(lb) not in left]
        right_by_sig: dict[Labels, Sample] = {}
        for labels, value in rhs:
            key = sig(labels)
            if key in right_by_sig:
                raise QueryError("many-to-many matching not allowed: matching labels must be "
                                 "unique on one side")
            right_by_sig[key] = (labels, value)
        out: Vector = []
        seen: set[Labels] = set()
        for labels, a in lhs:
            key = sig(labels)
            match = right_by_sig.get(key)
            if match is None:
                continue
            if key in seen:
                raise QueryError("found duplicate series for the match group on the left side")
            seen.add(key)
            b = match[1]
            result = _apply(op, a, b)
            if op in COMPARISON:
                if keep_bool:
                    out.append((_result_labels(labels, names, include), 1.0 if result else 0.0))
                elif result:
                    out.append((labels, a))
            else:
                out.append((_result_labels(labels, names, include), float(result)))
        return out


def _result_labels(labels: Labels, names: frozenset[str], include: bool) -> Labels:
    """One-to-one arithmetic keeps the left side's labels (only the `on` ones with on())."""
    labels = _drop_name(labels)
    if include:
        return tuple(kv for kv in labels if kv[0] in names)
    return labels


def _apply(op: str, a: float, b: float) -> float | bool:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                return math.nan if a == 0 or a != a else math.copysign(math.inf, a)
            return a / b
        if op == "%":
            return math.fmod(a, b) if b != 0 else math.nan
        if op == "^":
            return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.nan
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    raise QueryError(f"unsupported: operator {op}")


def _absent_labels(arg: Any) -> Labels:
    """absent() of a selector takes the labels of its equality matchers."""
    if type(arg).__name__ == "MatrixSelector":
        arg = arg.vector_selector
    if type(arg).__name__ != "VectorSelector":
        return ()
    found = {}
    for m in arg.matchers.matchers:
        if str(m.op).endswith("Equal") and not str(m.op).endswith("NotEqual") \
                and m.name != "__name__":
            found[m.name] = m.value
    return tuple(sorted(found.items()))


def _range_function(name: str, points: list[tuple[float, float]], start: float,
                    end: float) -> float | None:
    values = [v for _, v in points]
    if name == "avg_over_time":
        return math.fsum(values) / len(values)
    if name == "min_over_time":
        return min(values)
    if name == "max_over_time":
        return max(values)
    if name == "sum_over_time":
        return math.fsum(values)
    if name == "count_over_time":
        return float(len(values))
    if name == "last_over_time":
        return values[-1]
    if len(points) < 2:
        return None
    if name == "irate":
        (t0, v0), (t1, v1) = points[-2], points[-1]
        change = v1 - v0 if v1 >= v0 else v1  # a counter reset
        return change / (t1 - t0) if t1 > t0 else None
    counter = name in ("rate", "increase")
    return _extrapolated(points, start, end, counter=counter, per_second=name == "rate")


def _extrapolated(points: list[tuple[float, float]], start: float, end: float, *,
                  counter: bool, per_second: bool) -> float:
    """Prometheus's extrapolatedRate (promql/functions.go), for rate, increase and delta."""
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if counter:
        previous = first_v
        for _, v in points[1:]:
            if v < previous:
                result += previous  # a reset: the counter started again from 0
            previous = v
    duration_to_start = first_t - start
    duration_to_end = end - last_t
    sampled = last_t - first_t
    average = sampled / (len(points) - 1)
    if counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled * (first_v / result)
        duration_to_start = min(duration_to_start, duration_to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else average / 2
    interval += duration_to_end if duration_to_end < threshold else average / 2
    result *= interval / sampled
    if per_second:
        result /= end - start
    return result


def _histogram_quantile(q: float, vector: Vector) -> Vector:
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for labels, value in vector:
        le = dict(labels).get("le")
        if le is None:
            continue
        try:
            bound = float(le)
        except ValueError:
            continue
        key = tuple(kv for kv in labels if kv[0] not in ("le", "__name__"))
        groups.setdefault(key, []).append((bound, value))
    return [(key, _bucket_quantile(q, buckets)) for key, buckets in groups.items()]


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's bucketQuantile (promql/quantile.go), classic histograms."""
    if q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    counts = []
    highest = 0.0
    for _, count in buckets:  # counts must not fall (scrapes of a moving histogram)
        highest = max(highest, count)
        counts.append(highest)
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], counts[b]
    if b > 0:
        start = buckets[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def _scalar(value: Value, what: str) -> float:
    """The number `what` takes: a vector or string there is a query error."""
    if isinstance(value, (list, str)):
        raise QueryError(f"{what} needs a scalar")
    return float(value)


def instant_vector(value: Value, what: str) -> Vector:
    """The instant vector `what` takes: a scalar, string or range vector is a query error."""
    if not isinstance(value, list) or (value and isinstance(value[0][1], list)):
        raise QueryError(f"{what} needs an instant vector")
    # Vector and Matrix are both lists; the check above tells them apart at run time.
    return cast(Vector, value)


def format_value(value: Value, t: float) -> dict[str, Any]:
    """Prometheus's API `data` for an instant query result."""
    if isinstance(value, float):
        return {"resultType": "scalar", "result": [t, format_number(value)]}
    if isinstance(value, str):
        return {"resultType": "string", "result": [t, value]}
    if value and isinstance(value[0][1], list):
        return {"resultType": "matrix", "result": [
            {"metric": dict(labels), "values": [[ts, format_number(v)] for ts, v in points]}
            for labels, points in value]}
    return {"resultType": "vector", "result": [
        {"metric": dict(labels), "value": [t, format_number(v)]}
        for labels, v in instant_vector(value, "a vector result")]}


def format_number(value: float) -> str:
    """Prometheus sends sample values as strings: NaN, +Inf, -Inf, or the shortest repr."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) or abs(value) >= 1e15 else str(int(value))
