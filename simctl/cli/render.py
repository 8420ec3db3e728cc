"""How the operator commands show what a service answered (docs/cli.md#output).

People get rich tables whose cells are words and ``key=value`` pairs, never a Python repr;
scripts get ``--json`` (the service's own JSON, unchanged). Columns holding names that
people type back (a dyno, a router, a drain, a step id) never wrap or get cut: they are
as wide as their longest value, and the other columns give way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
from rich.table import Table
from rich.text import Text


def value_text(value: Any) -> str:
    """One cell: yes/no, numbers without noise, mappings as key=value, lists with commas."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return pairs(value) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value) or "-"
    return str(value)


def pairs(data: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    """``key=value key=value`` for the items of ``data`` not in ``skip``."""
    left_out = set(skip)
    return " ".join(f"{k}={value_text(v)}" for k, v in data.items() if k not in left_out)


def table(*columns: str, ids: Sequence[str] = ()) -> Table:
    """A table whose ``ids`` columns keep their values whole (no wrap, no ellipsis)."""
    out = Table()
    for name in columns:
        if name in ids:
            out.add_column(name, no_wrap=True, overflow="ignore")
        else:  # headers are single words: they never break, values fold
            out.add_column(name, overflow="fold", min_width=len(name))
    return out


def fields(title: str, data: Mapping[str, Any]) -> Table:
    """A two-column table, one row per key: for one record with many fields."""
    out = table(title, "", ids=(title,))
    for key, value in data.items():
        out.add_row(Text(key), Text(value_text(value)))
    return fit_ids(out)


def fit_ids(out: Table) -> Table:
    """Give every no-wrap column the width of its longest cell, so it is never cut."""
    for column in out.columns:
        if column.no_wrap:
            cells = [str(column.header), *(c.plain if isinstance(c, Text)
                                           else Text.from_markup(str(c)).plain
                                           for c in column.cells)]
            column.min_width = max(len(c) for c in cells)
    return out


def answers(first: str, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> Table:
    """One row per answering service: its name, then one column per key of the answers."""
    keys: list[str] = []
    for _, answer in rows:
        keys.extend(k for k in answer if k not in keys)
    out = table(first, *keys, ids=(first,))
    for name, answer in rows:
        out.add_row(Text(name), *(Text(value_text(answer.get(k))) for k in keys))
    return fit_ids(out)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON for scripts instead of a table.")
