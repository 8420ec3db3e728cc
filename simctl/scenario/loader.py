"""Load a scenario file: YAML with positions -> pydantic -> name checks, all errors at once.

    scenario = load_scenario("scenarios/slow-drain.yaml")        # or raises ScenarioError
    result = lint_scenario(path)                                  # never raises for bad files
    result.scenario, result.issues

Every problem becomes an ``Issue`` printed as ``file:line:col: path: message``: YAML
syntax, schema and type errors (pydantic), probe expression errors (with the column inside
the string), and references to names the stack, the toxic registry or the runbook do not
have, each with a "did you mean" when a known name is close. Nothing is started: loading
only reads files.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Tag, ValidationError

from simctl.errors import InvalidInput
from simctl.scenario import references, symptom_timing
from simctl.scenario.errors import Issue, ScenarioError, did_you_mean, format_path
from simctl.scenario.model import ACTION_KEYS, FaultBase, Scenario
from simctl.scenario.yaml_positions import Positions, YamlSyntaxError, load_with_positions


@dataclass
class LintResult:
    path: Path
    scenario: Scenario | None
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)  # only for a valid file

    @property
    def ok(self) -> bool:
        return not self.issues


def lint_scenario(
    path: str | Path,
    *,
    stack: references.StackInfo | None = None,
    runbooks: Path | None = None,
    root: Path | None = None,
    display: str | None = None,
    check_references: bool = True,
) -> LintResult:
    """Validate one file; every problem is in ``issues`` (sorted by position)."""
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return LintResult(path, None, [Issue(name, 1, 1, "<document>",
                                             f"not UTF-8 text: {exc.reason}")])
    except OSError as exc:
        return LintResult(path, None, [Issue(name, 1, 1, "<document>",
                                             f"cannot read the file: {exc.strerror}")])
    return lint_text(text, path, stack=stack, runbooks=runbooks, root=root, display=name,
                     check_references=check_references)


def lint_text(
    text: str,
    path: Path,
    *,
    stack: references.StackInfo | None = None,
    runbooks: Path | None = None,
    root: Path | None = None,
    display: str | None = None,
    check_references: bool = True,
) -> LintResult:
    name = display or str(path)
    try:
        data, positions = load_with_positions(text)
    except YamlSyntaxError as exc:
        return LintResult(path, None, [Issue(name, exc.pos.line, exc.pos.col, "<document>",
                                             f"invalid YAML: {exc.message}")])
    # A file that is no scenario at all (a path mistyped, /etc/shadow...) gets one line
    # that says what kind of file it is and quotes none of it.
    if not isinstance(data, dict):
        got = "an empty file" if data is None else _kind(data)
        return LintResult(path, None, [Issue(name, 1, 1, "<document>", "not a scenario file: "
                                             f"expected a mapping of scenario keys, got {got}")])
    known = set(_allowed_keys(Scenario))
    if not any(key in known for key in data):
        return LintResult(path, None, [Issue(
            name, 1, 1, "<document>", f"not a scenario file: none of its {len(data)} top-level "
            "key(s) is a scenario key (id, title, runbook, faults, symptoms, ...)")])
    issues: list[Issue] = []
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        issues.extend(_schema_issues(exc, data, positions, name))
    if check_references:
        issues.extend(_reference_issues(data, positions, path, name, stack, runbooks, root))
    issues = sorted(set(issues), key=lambda i: (i.line, i.col, i.path, i.message))
    if issues or scenario is None:
        return LintResult(path, None, issues)
    warnings = []
    for where, message in symptom_timing.baseline_warnings(scenario):
        pos = positions.nearest(where)
        warnings.append(Issue(name, pos.line, pos.col, format_path(where), message))
    return LintResult(path, scenario, [], warnings)


def load_scenario(path: str | Path, **options: Any) -> Scenario:
    """The validated scenario, or ScenarioError (exit code 2) listing every problem."""
    result = lint_scenario(path, **options)
    if result.scenario is None:
        raise ScenarioError(result.issues)
    return result.scenario


def _reference_issues(data: dict[str, Any], positions: Positions, path: Path, name: str,
                      stack: references.StackInfo | None, runbooks: Path | None,
                      root: Path | None) -> list[Issue]:
    issues: list[Issue] = []
    if stack is None:
        try:
            stack = references.stack_info()
        except InvalidInput as exc:
            issues.append(Issue(name, 1, 1, "<document>",
                                f"cannot check names against the stack: {exc}"))
    ctx = references.Context(path, stack, runbooks, root)
    for finding in references.check(data, ctx):
        if finding.offset is not None:
            pos = positions.column_in_scalar(finding.path, finding.offset)
        elif finding.at_key:
            pos = positions.key(finding.path) or positions.nearest(finding.path)
        else:
            pos = positions.nearest(finding.path)
        issues.append(Issue(name, pos.line, pos.col, format_path(finding.path),
                            finding.message))
    return issues


# --- pydantic errors to issues -----------------------------------------------------------

def _schema_issues(exc: ValidationError, data: dict[str, Any], positions: Positions,
                   name: str) -> list[Issue]:
    return [Issue(name, line, col, format_path(path), message)
            for path, message, line, col in explain(Scenario, exc, data, positions)]


def explain(model: type[BaseModel], exc: ValidationError, data: Any, positions: Positions
            ) -> list[tuple[tuple[Any, ...], str, int, int]]:
    """Each pydantic error as (path, message, line, col): friendly messages, tags stripped."""
    out = []
    for error in exc.errors(include_url=False):
        loc, owner = _walk(model, tuple(error["loc"]))
        for path, message, where in _explain(error, loc, owner, data, positions):
            out.append((path, message, where[0], where[1]))
    return out


def _explain(error: Any, loc: tuple[Any, ...], owner: type[BaseModel] | None,
             data: dict[str, Any], positions: Positions
             ) -> list[tuple[tuple[Any, ...], str, tuple[int, int]]]:
    kind, ctx = error["type"], error.get("ctx") or {}
    value = error.get("input")

    def at(path: tuple[Any, ...], *, key: bool = False) -> tuple[int, int]:
        pos = (positions.key(path) if key else None) or positions.nearest(path)
        return pos.line, pos.col

    if kind == "missing":
        return [(loc, "missing required key", at(loc[:-1]))]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(owner)
        word = "action" if owner is not None and issubclass(owner, FaultBase) else "key"
        hint = did_you_mean(loc[-1], allowed) if allowed else ""
        return [(loc, f"unknown {word} '{loc[-1]}'{hint}", at(loc, key=True))]
    if kind == "fault_action":
        return _fault_action(loc, _lookup(data, loc), positions)
    if kind == "union_tag_invalid":
        tag, expected = ctx.get("tag"), re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
        field_name = ctx.get("discriminator", "").strip("'")
        path = (*loc, field_name)
        return [(path, f"unknown {field_name} '{tag}'{did_you_mean(tag, expected)}", at(path))]
    if kind == "union_tag_not_found":
        field_name = ctx.get("discriminator", "").strip("'")
        return [((*loc, field_name), "missing required key", at(loc))]
    if kind == "probe":
        pos = positions.column_in_scalar(loc, int(ctx.get("column", 1)) - 1)
        return [(loc, ctx.get("message", error["msg"]), (pos.line, pos.col))]
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        hint = did_you_mean(value, expected, listing=False) if isinstance(value, str) else ""
        return [(loc, f"expected {ctx.get('expected')}, got {_describe(value)}{hint}", at(loc))]
    if kind in _EXPECTED:
        return [(loc, f"expected {_EXPECTED[kind]}, got {_describe(value)}", at(loc))]
    if kind == "too_short" and isinstance(value, list) and not value:
        return [(loc, f"expected at least {ctx.get('min_length', 1)} item(s), got an empty list",
                 at(loc))]
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return [(loc, f"expected {word} {ctx.get(key)}, got {value!r}", at(loc))]
    message = error["msg"]
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":
        return [(loc[:-1], message, at(loc[:-1], key=True))]
    return [(loc, message, at(loc))]


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("more than", "gt"),
    "less_than": ("less than", "lt"),
}
_EXPECTED = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
}


def _kind(value: Any) -> str:
    """What a value is, without quoting it."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    return kinds.get(type(value), type(value).__name__)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value:g})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string '{shown}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _fault_action(loc: tuple[Any, ...], item: Any, positions: Positions
                  ) -> list[tuple[tuple[Any, ...], str, tuple[int, int]]]:
    def at(path: tuple[Any, ...], key: bool = False) -> tuple[int, int]:
        pos = (positions.key(path) if key else None) or positions.nearest(path)
        return pos.line, pos.col

    choices = ", ".join(ACTION_KEYS)
    if not isinstance(item, dict):
        return [(loc, f"expected a mapping with 'at' and one action ({choices}), got "
                      f"{_describe(item)}", at(loc))]
    actions = [key for key in item if key in ACTION_KEYS]
    if len(actions) > 1:
        second = (*loc, actions[1])
        return [(loc, f"a fault has exactly one action, found {len(actions)}: "
                      f"{', '.join(actions)} (use one fault item per action)", at(second, True))]
    unknown = [key for key in item if key not in ("at", "for", "name")]
    if unknown:
        return [((*loc, key), f"unknown action '{key}'{did_you_mean(key, ACTION_KEYS)}",
                 at((*loc, key), True)) for key in unknown]
    return [(loc, f"missing the action: give one of {choices}", at(loc))]


def _lookup(data: Any, loc: Sequence[Any]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _allowed_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    keys = [f.alias or n for n, f in model.model_fields.items()]
    if issubclass(model, FaultBase):
        keys = ["at", "for", "name", *ACTION_KEYS]
    return keys


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(tp) is typing.Annotated:
        metadata.extend(tp.__metadata__)
        tp = typing.get_args(tp)[0]
    return tp, metadata


def _union_members(tp: Any) -> list[Any] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return None


def _variant(members: list[Any], tag: Any) -> Any:
    for member in members:
        inner, metadata = _unwrap(member)
        if any(isinstance(m, Tag) and m.tag == tag for m in metadata):
            return inner
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            for info in inner.model_fields.values():
                if typing.get_args(info.annotation) == (tag,) and \
                        typing.get_origin(info.annotation) is typing.Literal:
                    return inner
    return None


def _walk(model: type[BaseModel], loc: tuple[Any, ...]
          ) -> tuple[tuple[Any, ...], type[BaseModel] | None]:
    """Strip union tags from a pydantic ``loc``; also return the model owning its last key."""
    clean: list[Any] = []
    owner: type[BaseModel] | None = None
    tp: Any = model
    for part in loc:
        tp, _ = _unwrap(tp)
        members = _union_members(tp)
        if members is not None:
            variant = _variant(members, part)
            if variant is not None:
                tp = variant
                continue
            tp = members[0] if len(members) == 1 else None
            tp, _ = _unwrap(tp)
        clean.append(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp
            info = next((f for n, f in tp.model_fields.items() if part in (n, f.alias)), None)
            tp = info.annotation if info is not None else None
            continue
        owner = None
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (list, tuple, set, frozenset) and args:
            tp = args[0]
        elif origin is dict and len(args) == 2:
            tp = args[1]
        else:
            tp = None
    return tuple(clean), owner
