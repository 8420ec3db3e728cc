"""The position-tracking YAML loader: values and keys by path, columns inside strings."""

from __future__ import annotations

import pytest
import yaml

from simctl.scenario.yaml_positions import Pos, YamlSyntaxError, load_with_positions

TEXT = """\
base: &base
  proxy: web.1
  type: latency
faults:
  - at: 5s
    toxic:
      <<: *base
      attributes: {latency: 10}
probes:
  - http.rate > 1
  - 'http.rate > 2'
  - "http.rate > 3"
  - "esc\\"aped > 4"
  - >-
    folded
    text
"""


def test_same_values_as_safe_load() -> None:
    data, _ = load_with_positions(TEXT)
    assert data == yaml.safe_load(TEXT)


def test_positions_of_values_and_keys() -> None:
    _, pos = load_with_positions(TEXT)
    assert pos.value(("faults", 0, "at")) == pos.values[("faults", 0, "at")]
    value = pos.value(("faults", 0, "at"))
    assert value is not None
    assert (value.line, value.col) == (5, 9)
    key = pos.key(("faults", 0, "toxic", "attributes"))
    assert key is not None
    assert (key.line, key.col) == (8, 7)
    latency = pos.value(("faults", 0, "toxic", "attributes", "latency"))
    assert latency is not None
    assert (latency.line, latency.col) == (8, 29)
    merged = pos.value(("faults", 0, "toxic", "proxy"))  # from the anchor
    assert merged is not None
    assert merged.line == 2
    assert pos.value(()) == Pos(1, 1, 0, len(TEXT), None, 17)


def test_nearest_existing_ancestor() -> None:
    _, pos = load_with_positions(TEXT)
    near = pos.nearest(("faults", 0, "toxic", "missing", "deeper"))
    assert (near.line, near.col) == (7, 7)
    assert pos.nearest(("nothing",)).line == 1


@pytest.mark.parametrize(("index", "offset", "col"), [
    (0, 10, 15),  # plain: start column + offset
    (1, 10, 16),  # single-quoted: one more for the quote
    (2, 10, 16),  # double-quoted
    (3, 10, 5),  # escapes: the start of the scalar
])
def test_column_in_scalar(index: int, offset: int, col: int) -> None:
    _, pos = load_with_positions(TEXT)
    found = pos.column_in_scalar(("probes", index), offset)
    assert (found.line, found.col) == (10 + index, col)


def test_column_in_a_block_scalar_is_its_start() -> None:
    _, pos = load_with_positions(TEXT)
    found = pos.column_in_scalar(("probes", 4), 3)
    assert (found.line, found.col) == (14, 5)


@pytest.mark.parametrize(("text", "line", "col", "message"), [
    ("a: 1\na: 2\n", 2, 1, "duplicate key 'a' (first at line 1)"),
    ("a: [1\n", 2, 1, "expected ',' or ']'"),
    ("a: 1\n---\nb: 2\n", 2, 1, "expected a single document"),
    ("? [1, 2]\n: x\n", 1, 3, "a mapping key must be a scalar"),
    ("a: *nope\n", 1, 4, "found undefined alias"),
])
def test_syntax_errors_have_positions(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        load_with_positions(text)
    assert (caught.value.pos.line, caught.value.pos.col) == (line, col)
    assert message in caught.value.message


def test_empty_document() -> None:
    assert load_with_positions("# only a comment\n")[0] is None
