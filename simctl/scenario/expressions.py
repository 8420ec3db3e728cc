"""Probe expressions: the one-line checks used by steady_state, symptoms, recovery and abort.

    http.success_ratio >= 0.99
    http.p99_ms < 500                       (p50_ms, p90_ms, p99_ms, max_ms, mean_ms)
    http.count{code="H12"} > 0              (labels: code, status)
    http.rate > 10  /  http.error_ratio < 0.01
    logs.delivery_ratio{drain="main"} >= 0.99
    router.version_lag > 0 [on router-1]
    metric NAME{label="v",...} OP NUMBER [on TARGET]
    log "literal" | /regex/ [in drain.main|drain.audit|tail] [count OP N]
    health TARGET is ok|degraded|down

``parse(text)`` returns a typed, immutable probe or raises ``ExpressionError`` with the
1-based column of the problem inside the string. Names of services, drains and so on are
recorded as ``refs`` (with their column) so the loader can check them against the stack;
the parser itself knows nothing about the stack.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

HTTP_QUANTITIES = ("success_ratio", "error_ratio", "p50_ms", "p90_ms", "p99_ms", "max_ms",
                   "mean_ms", "count", "rate")
# ``router``: only the requests sent through that router (a load over several, docs/scenarios.md)
HTTP_LABELS = {q: ("router",) for q in HTTP_QUANTITIES} | {"count": ("code", "status", "router")}
LOGS_QUANTITIES = ("delivery_ratio",)
LOGS_LABELS = {"delivery_ratio": ("drain",)}
ROUTER_QUANTITIES = ("version_lag",)
HEALTH_STATES = ("ok", "degraded", "down")
HEADS = tuple(
    [f"http.{q}" for q in HTTP_QUANTITIES]
    + [f"logs.{q}" for q in LOGS_QUANTITIES]
    + [f"router.{q}" for q in ROUTER_QUANTITIES]
    + ["metric", "log", "health"]
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]*")
_METRIC_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_CODE = re.compile(r"[HLR]\d{2}")


class ExpressionError(ValueError):
    """A probe expression that does not parse; ``column`` is 1-based within the string."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"column {self.column}: {self.message}"


@dataclass(frozen=True)
class Compare:
    op: str
    value: float

    def test(self, actual: float) -> bool:
        return OPERATORS[self.op](actual, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Ref:
    """A name the stack must know: ``kind`` is "target" (service, role or dyno) or "source"."""

    kind: str
    name: str
    column: int  # 1-based, within the expression


@dataclass(frozen=True)
class Probe:
    text: str
    refs: tuple[Ref, ...]
    kind: ClassVar[str] = ""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class HttpProbe(Probe):
    """A measure of the load generator's HTTP traffic."""

    quantity: str
    labels: tuple[tuple[str, str], ...]
    compare: Compare
    kind: ClassVar[str] = "http"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class LogsProbe(Probe):
    """A measure of the load generator's log traffic (delivery to drains)."""

    quantity: str
    labels: tuple[tuple[str, str], ...]
    compare: Compare
    kind: ClassVar[str] = "logs"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class RouterProbe(Probe):
    """A router measure, the largest over the routers in ``target`` (all when None)."""

    quantity: str
    compare: Compare
    target: str | None
    kind: ClassVar[str] = "router"


@dataclass(frozen=True)
class MetricProbe(Probe):
    """A Prometheus sample summed over the services in ``target`` (all when None)."""

    name: str
    labels: tuple[tuple[str, str], ...]
    compare: Compare
    target: str | None
    kind: ClassVar[str] = "metric"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True)
class LogProbe(Probe):
    """Log lines matching ``pattern`` in ``source`` (any drain when None), counted."""

    pattern: str
    regex: bool
    source: str | None
    count: Compare
    kind: ClassVar[str] = "log"

    def matches(self, line: str) -> bool:
        if self.regex:
            return re.search(self.pattern, line) is not None
        return self.pattern in line


@dataclass(frozen=True)
class HealthProbe(Probe):
    """Every service in ``target`` reports ``status`` on GET /health."""

    target: str
    status: str
    kind: ClassVar[str] = "health"


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.refs: list[Ref] = []

    @property
    def col(self) -> int:
        return self.i + 1

    def error(self, message: str, at: int | None = None) -> ExpressionError:
        return ExpressionError(message, (self.i if at is None else at) + 1)

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def at_end(self) -> bool:
        self.ws()
        return self.i >= len(self.text)

    def peek(self, literal: str) -> bool:
        self.ws()
        return self.text.startswith(literal, self.i)

    def rest(self) -> str:
        chunk = self.text[self.i:].split()
        return chunk[0] if chunk else ""

    def got(self) -> str:
        return f"got '{self.rest()}'" if self.rest() else "got the end of the expression"

    def match(self, pattern: re.Pattern[str]) -> str | None:
        self.ws()
        found = pattern.match(self.text, self.i)
        if not found:
            return None
        self.i = found.end()
        return found.group()

    def word(self, what: str) -> str:
        found = self.match(_WORD)
        if found is None:
            raise self.error(f"expected {what}, {self.got()}")
        return found

    def keyword(self, word: str) -> bool:
        self.ws()
        found = _WORD.match(self.text, self.i)
        if found and found.group() == word:
            self.i = found.end()
            return True
        return False

    def compare(self, after: str) -> Compare:
        self.ws()
        for op in OPERATORS:  # two-character operators first
            if self.text.startswith(op, self.i):
                self.i += len(op)
                break
        else:
            wrong = {"=": "==", "=>": ">=", "=<": "<=", "<>": "!="}
            bad = re.match(r"[=<>!]+", self.text[self.i:])
            hint = f"; did you mean '{wrong[bad.group()]}'?" if bad and bad.group() in wrong else ""
            raise self.error(
                f"expected a comparison (<, <=, >, >=, ==, !=) after {after}, {self.got()}{hint}")
        return Compare(op, self.number())

    def number(self) -> float:
        self.ws()
        found = _NUMBER.match(self.text, self.i)
        if not found:
            raise self.error(f"expected a number, {self.got()}")
        self.i = found.end()
        if self.i < len(self.text) and (self.text[self.i].isalnum()
                                       or self.text[self.i] in "_%/.:"):
            raise self.error(f"expected a plain number, {self.got_from(found.start())}",
                             found.start())
        return float(found.group())

    def got_from(self, start: int) -> str:
        chunk = self.text[start:].split()
        return f"got '{chunk[0]}'" if chunk else "got the end of the expression"

    def string(self, what: str) -> str:
        """A double-quoted string with backslash escapes for \\" and \\\\."""
        self.ws()
        start = self.i
        if not self.text.startswith('"', self.i):
            raise self.error(f"expected {what} in double quotes, {self.got()}")
        self.i += 1
        out = []
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\\" and self.i + 1 < len(self.text):
                out.append(self.text[self.i + 1])
                self.i += 2
                continue
            if char == '"':
                self.i += 1
                return "".join(out)
            out.append(char)
            self.i += 1
        raise self.error("unterminated string: missing the closing '\"'", start)

    def regex(self) -> str:
        """/pattern/ with \\/ for a slash; checked with re.compile."""
        start = self.i
        self.i += 1
        out = []
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\\" and self.text.startswith("/", self.i + 1):
                out.append("/")
                self.i += 2
                continue
            if char == "/":
                self.i += 1
                pattern = "".join(out)
                try:
                    re.compile(pattern)
                except re.error as exc:
                    where = start + 1 + (exc.pos or 0)
                    raise self.error(f"invalid regular expression: {exc.msg}", where) from None
                return pattern
            out.append(char)
            self.i += 1
        raise self.error("unterminated regular expression: missing the closing '/'", start)

    def labels(self, allowed: tuple[str, ...] | None, what: str) -> tuple[tuple[str, str], ...]:
        if not self.peek("{"):
            return ()
        self.i += 1
        found: list[tuple[str, str]] = []
        while True:
            if self.peek("}"):
                self.i += 1
                return tuple(found)
            if found:
                if not self.peek(","):
                    raise self.error(f"expected ',' or '}}' in the labels, {self.got()}")
                self.i += 1
                if self.peek("}"):
                    self.i += 1
                    return tuple(found)
            start = self.i + (len(self.text[self.i:]) - len(self.text[self.i:].lstrip()))
            name = self.match(_LABEL_NAME)
            if name is None:
                raise self.error(f"expected a label name, {self.got()}")
            if allowed is not None and name not in allowed:
                if not allowed:
                    raise self.error(f"{what} takes no labels", start)
                raise self.error(f"unknown label '{name}' for {what}{_hint(name, allowed)}"
                                 f" (labels: {', '.join(allowed)})", start)
            if any(name == seen for seen, _ in found):
                raise self.error(f"label '{name}' given twice", start)
            if not self.peek("="):
                raise self.error(f"expected '=' after the label name, {self.got()}")
            self.i += 1
            value_at = self.i + (len(self.text[self.i:]) - len(self.text[self.i:].lstrip()))
            value = self.string("a label value")
            _check_label(name, value, value_at)
            found.append((name, value))

    def target(self) -> str | None:
        if not self.keyword("on"):
            return None
        self.ws()
        column = self.col
        name = self.word("a service, role or dyno after 'on'")
        self.refs.append(Ref("target", name, column))
        return name

    def end(self) -> None:
        if not self.at_end():
            raise self.error(f"unexpected '{self.rest()}' after the end of the probe")


def _check_label(name: str, value: str, at: int) -> None:
    if name == "code" and not _CODE.fullmatch(value):
        raise ExpressionError(f"code must be a router or log code like \"H12\", got \"{value}\"",
                              at + 1)
    if name == "status" and not (value.isdigit() and 100 <= int(value) <= 599):
        raise ExpressionError(f"status must be an HTTP status from 100 to 599, got \"{value}\"",
                              at + 1)


def _hint(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def parse(text: str, timing: str = "fast") -> Probe:
    """Parse one probe expression; raises ExpressionError. ``${timeouts...}`` values
    take those of the ``timing`` profile (simctl.scenario.timing_vars); the probe's
    ``text`` stays as written."""
    if not isinstance(text, str):
        raise ExpressionError("a probe must be a string", 1)
    if "${" in text:
        from simctl.scenario import timing_vars

        try:
            resolved = timing_vars.substitute(text, timing)
        except timing_vars.UnknownVariable as exc:
            raise ExpressionError(exc.message, exc.column) from None
        return replace(parse(resolved), text=text)
    s = _Scanner(text)
    if s.at_end():
        raise ExpressionError("empty probe expression", 1)
    start = s.i
    head = s.word("a probe such as 'http.success_ratio >= 0.99'")
    family, _, quantity = head.partition(".")
    if head in ("metric", "log", "health"):
        return _KEYWORD_PARSERS[head](s, text)
    if family in ("http", "logs", "router") and quantity:
        choices = {"http": HTTP_QUANTITIES, "logs": LOGS_QUANTITIES,
                   "router": ROUTER_QUANTITIES}[family]
        if quantity not in choices:
            raise s.error(f"unknown {family} measure '{quantity}'{_hint(quantity, choices)}"
                          f" (one of: {', '.join(choices)})", start + len(family) + 1)
        if family == "router":
            compare = s.compare(head)
            target = s.target()
            s.end()
            return RouterProbe(text, tuple(s.refs), quantity, compare, target)
        allowed = (HTTP_LABELS if family == "http" else LOGS_LABELS).get(quantity, ())
        labels = s.labels(allowed, head)
        compare = s.compare(head)
        s.end()
        if family == "http":
            return HttpProbe(text, tuple(s.refs), quantity, labels, compare)
        return LogsProbe(text, tuple(s.refs), quantity, labels, compare)
    raise s.error(f"unknown probe '{head}'{_hint(head, HEADS)}", start)


def _metric(s: _Scanner, text: str) -> MetricProbe:
    name = s.match(_METRIC_NAME)
    if name is None:
        raise s.error(f"expected a metric name after 'metric', {s.got()}")
    labels = s.labels(None, name)
    compare = s.compare(f"'{name}'")
    target = s.target()
    s.end()
    return MetricProbe(text, tuple(s.refs), name, labels, compare, target)


def _log(s: _Scanner, text: str) -> LogProbe:
    s.ws()
    if s.text.startswith("/", s.i):
        pattern, regex = s.regex(), True
    else:
        pattern, regex = s.string("a log line literal (\"...\") or /regex/"), False
    if not pattern:
        raise s.error("the pattern is empty", s.i - 2)
    source = None
    if s.keyword("in"):
        s.ws()
        column = s.col
        source = s.word("drain.NAME or 'tail' after 'in'")
        s.refs.append(Ref("source", source, column))
    count = Compare(">=", 1)
    if s.keyword("count"):
        count = s.compare("'count'")
    s.end()
    return LogProbe(text, tuple(s.refs), pattern, regex, source, count)


def _health(s: _Scanner, text: str) -> HealthProbe:
    s.ws()
    column = s.col
    target = s.word("a service, role or dyno after 'health'")
    s.refs.append(Ref("target", target, column))
    if not s.keyword("is"):
        raise s.error(f"expected 'is' after '{target}', {s.got()}")
    s.ws()
    at = s.i
    status = s.word("ok, degraded or down")
    if status not in HEALTH_STATES:
        raise s.error(f"unknown health status '{status}'{_hint(status, HEALTH_STATES)}"
                      f" (one of: {', '.join(HEALTH_STATES)})", at)
    s.end()
    return HealthProbe(text, tuple(s.refs), target, status)


_KEYWORD_PARSERS: dict[str, Callable[[_Scanner, str], Probe]] = {
    "metric": _metric,
    "log": _log,
    "health": _health,
}
