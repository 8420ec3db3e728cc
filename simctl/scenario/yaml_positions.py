"""YAML with a position for every node, keyed by its path (the dagster ``yaml_utils`` idea).

``load_with_positions(text)`` returns the plain Python value a ``yaml.safe_load`` would
give, plus a ``Positions`` map from paths (tuples of keys and list indexes, ``()`` for the
document) to where each value and each mapping key starts. Validation errors found later
(pydantic ``loc``, cross-reference checks) are turned into ``line:col`` with it.

Differences from ``yaml.safe_load``, on purpose: a duplicate key is an error (YAML would
silently keep the last one), and so is more than one document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Pos:
    """Where a node starts (1-based line and column) and what it spans in the source."""

    line: int
    col: int
    start: int = 0  # character offsets into the source text
    end: int = 0
    style: str | None = None  # scalar style: None (plain), "'", '"', "|", ">"
    end_line: int = 0

    def shifted(self, lines: int) -> Pos:
        return Pos(self.line + lines, self.col, self.start, self.end, self.style,
                   self.end_line + lines)


class YamlSyntaxError(Exception):
    """The text is not YAML this loader accepts; ``pos`` says where."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class Positions:
    """Positions of values (``value``) and mapping keys (``key``) by path."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[Path, Pos] = {}
        self.keys: dict[Path, Pos] = {}

    def value(self, path: Path) -> Pos | None:
        return self.values.get(tuple(path))

    def key(self, path: Path) -> Pos | None:
        return self.keys.get(tuple(path))

    def nearest(self, path: Path) -> Pos:
        """The position of ``path``, or of its closest ancestor that exists."""
        path = tuple(path)
        while path:
            found = self.values.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return self.values.get((), Pos(1, 1))

    def column_in_scalar(self, path: Path, offset: int) -> Pos:
        """The position of character ``offset`` (0-based) of the string at ``path``.

        Exact for one-line plain scalars and for quoted ones without escapes; otherwise
        the start of the scalar (the message still names the column in the string).
        """
        pos = self.nearest(path)
        if pos.end_line != pos.line or pos.end <= pos.start:
            return pos
        raw = self.text[pos.start:pos.end]
        if pos.style is None:
            return Pos(pos.line, pos.col + offset, pos.start, pos.end, pos.style, pos.end_line)
        if pos.style in ("'", '"') and len(raw) >= 2 and raw[0] == raw[-1] == pos.style:
            inner = raw[1:-1]
            if ("\\" not in inner if pos.style == '"' else "''" not in inner):
                return Pos(pos.line, pos.col + 1 + offset, pos.start, pos.end, pos.style,
                           pos.end_line)
        return pos


def _pos(node: yaml.Node) -> Pos:
    start, end = node.start_mark, node.end_mark
    style = getattr(node, "style", None) if isinstance(node, yaml.ScalarNode) else None
    return Pos(start.line + 1, start.column + 1, start.index, end.index, style, end.line + 1)


def _mark_pos(mark: Any) -> Pos:
    if mark is None:
        return Pos(1, 1)
    return Pos(mark.line + 1, mark.column + 1, mark.index, mark.index, None, mark.line + 1)


class PositionLoader(yaml.SafeLoader):
    """A SafeLoader that composes the node tree; ``build`` turns it into values + positions."""

    def build(self, node: yaml.Node, path: Path, positions: Positions,
              active: frozenset[int] = frozenset()) -> Any:
        if id(node) in active:
            raise YamlSyntaxError("recursive alias: a node that contains itself", _pos(node))
        positions.values[path] = _pos(node)
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (<<) as SafeLoader does
            inner = active | {id(node)}
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise YamlSyntaxError("a mapping key must be a scalar",
                                          _pos(key_node)) from None
                if key in result:
                    first = positions.keys[(*path, key)]
                    raise YamlSyntaxError(
                        f"duplicate key '{key}' (first at line {first.line})", _pos(key_node))
                positions.keys[(*path, key)] = _pos(key_node)
                result[key] = self.build(value_node, (*path, key), positions, inner)
            return result
        if isinstance(node, yaml.SequenceNode):
            inner = active | {id(node)}
            return [self.build(item, (*path, i), positions, inner)
                    for i, item in enumerate(node.value)]
        return self.construct_object(node, deep=True)


def load_with_positions(text: str) -> tuple[Any, Positions]:
    """Parse one YAML document; raises YamlSyntaxError with a position."""
    positions = Positions(text)
    loader = PositionLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, positions
        return loader.build(node, (), positions), positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise YamlSyntaxError(message, _mark_pos(mark)) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is marked
        raise YamlSyntaxError(str(exc), Pos(1, 1)) from None
    finally:
        loader.dispose()
