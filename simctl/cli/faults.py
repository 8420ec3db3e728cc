"""Ad hoc fault commands on any Toxiproxy: proxies, inject, heal, toxics."""

from __future__ import annotations

import dataclasses
import difflib
import json
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simctl.cli import complete
from simctl.errors import ToxiproxyError
from simctl.faults.client import Toxic
from simctl.faults.toxics import REGISTRY
from simctl.faults.toxics import Toxic as ToxicType

if TYPE_CHECKING:
    from simctl.cli import CliContext


def describe_toxic(toxic: Toxic, named: bool = True) -> str:
    """One line, e.g. "latency downstream latency=100 jitter=0 (toxicity 1)"."""
    attrs = " ".join(f"{key}={value}" for key, value in toxic.attributes.items())
    text = " ".join(part for part in (toxic.type, toxic.stream, attrs) if part)
    text += f" (toxicity {toxic.toxicity:g})"
    # Only a non-default name is worth showing; the default is "<type>_<stream>".
    if named and toxic.name != f"{toxic.type}_{toxic.stream}":
        text = f"{toxic.name}: {text}"
    return text


def _unknown(word: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{word}'{hint} (choose from: {', '.join(choices)})"


def _toxic_type(ctx: click.Context, param: click.Parameter, value: str) -> type[ToxicType]:
    kind = REGISTRY.get(value)
    if kind is None:
        raise click.BadParameter(_unknown(value, sorted(REGISTRY), "toxic type"))
    return kind


def parse_attrs(kind: type[ToxicType], items: tuple[str, ...]) -> dict[str, int]:
    """--attr key=value pairs, checked against the registry so typos fail before any request."""
    known = {attr.name: attr for attr in kind.attributes}
    attrs: dict[str, int] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"'{item}': expected key=value", param_hint="'--attr'")
        attr = known.get(key)
        if attr is None:
            if not known:
                message = f"{kind.type_name} takes no attributes (got '{key}')"
            else:
                message = _unknown(key, list(known), f"{kind.type_name} attribute")
            raise click.BadParameter(message, param_hint="'--attr'")
        if key in attrs:
            raise click.BadParameter(f"'{key}' given twice", param_hint="'--attr'")
        try:
            value = int(text.strip())
        except ValueError:
            raise click.BadParameter(
                f"{key}='{text}': expected an integer ({attr.unit})", param_hint="'--attr'"
            ) from None
        if not attr.minimum <= value <= attr.maximum:
            raise click.BadParameter(
                f"{key}={value}: must be between {attr.minimum} and {attr.maximum} {attr.unit}",
                param_hint="'--attr'",
            )
        attrs[key] = value
    return attrs


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def proxies(obj: CliContext, as_json: bool) -> None:
    """List the proxies and their toxics."""
    _refuse_if_concealed("simctl proxies")
    found = obj.client().proxies()
    if as_json:
        click.echo(json.dumps({n: dataclasses.asdict(p) for n, p in found.items()}, indent=2))
        return
    console = Console(highlight=False)
    if not found:
        console.print(Text(f"no proxies at {obj.toxiproxy_url}"))
        return
    table = Table("name", "listen", "upstream", "enabled", "toxics")
    for proxy in found.values():
        toxics = "\n".join(describe_toxic(t) for t in proxy.toxics) or "-"
        # Text, not markup: names and addresses are data, "[x]" must print as is.
        table.add_row(
            Text(proxy.name),
            Text(proxy.listen),
            Text(proxy.upstream),
            "yes" if proxy.enabled else "no",
            Text(toxics),
        )
    console.print(table)


@click.command()
@click.argument("proxy", shell_complete=complete.proxies)
@click.argument("type_", metavar="TYPE", callback=_toxic_type)
@click.option(
    "--stream",
    type=click.Choice(["upstream", "downstream"]),
    default="downstream",
    show_default=True,
    help="Direction: upstream is client to server, downstream server to client.",
)
@click.option(
    "--toxicity",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Probability that the toxic applies to a connection.",
)
@click.option(
    "--attr", "attrs", multiple=True, metavar="KEY=VALUE", help="A toxic attribute (repeatable)."
)
@click.option("--name", help="Toxic name (default: TYPE_STREAM).")
@click.pass_obj
def inject(
    obj: CliContext,
    proxy: str,
    type_: type[ToxicType],
    stream: str,
    toxicity: float,
    attrs: tuple[str, ...],
    name: str | None,
) -> None:
    """Add a toxic of TYPE to PROXY (see `simctl toxics` for types and attributes)."""
    attributes = parse_attrs(type_, attrs)
    added = obj.client().add_toxic(
        proxy, type_.type_name, stream=stream, toxicity=toxicity, attributes=attributes, name=name
    )
    click.echo(f"added {added.name} to {proxy}: {describe_toxic(added, named=False)}")


@click.command()
@click.argument("proxy", required=False, shell_complete=complete.proxies)
@click.option("--all", "all_", is_flag=True, help="Reset the server: every proxy, every toxic.")
@click.pass_obj
def heal(obj: CliContext, proxy: str | None, all_: bool) -> None:
    """Remove every toxic of PROXY and re-enable it, or reset everything with --all."""
    if (proxy is None) == (not all_):
        raise click.UsageError("give either PROXY or --all, not both and not neither")
    client = obj.client()
    if all_:
        client.reset()
        click.echo("healed all proxies: toxics removed, proxies enabled")
        return
    assert proxy is not None
    current = client.proxy(proxy)
    for toxic in current.toxics:
        try:
            client.remove_toxic(proxy, toxic.name)
        except ToxiproxyError as exc:
            if exc.status != 404:  # removed meanwhile by someone else: already healed
                raise
    if not current.enabled:
        client.enable(proxy)
    enabled = "re-enabled" if not current.enabled else "already enabled"
    click.echo(f"healed {proxy}: removed {len(current.toxics)} toxic(s), {enabled}")


def _attribute_line(kind: type[ToxicType]) -> str:
    lines = [f"{a.name} ({a.unit}, {a.minimum}..{a.maximum})" for a in kind.attributes]
    return "\n".join(lines) or "-"


@click.command()
def toxics() -> None:
    """List the toxic types, their attributes (unit, range) and what they do."""
    _refuse_if_concealed("simctl toxics")
    table = Table("type", "attributes", "summary")
    for type_name, kind in REGISTRY.items():
        table.add_row(type_name, _attribute_line(kind), Text(kind.summary))
    Console(highlight=False).print(table)


def _refuse_if_concealed(command: str) -> None:
    """During a concealed drill the fault plane is not shown (docs/drills.md)."""
    from simctl.cli.options import default_project
    from simctl.drill.conceal import refuse_inspection

    refuse_inspection(default_project(), command)


def _switch(enabled: bool) -> click.Command:
    verb = "enable" if enabled else "disable"
    doc = (
        "Re-enable PROXY (listen again on the same port)."
        if enabled
        else "Take PROXY down: open connections are closed, new ones refused (Toxiproxy's "
        '"down"). `simctl heal PROXY` or `simctl enable PROXY` brings it back.'
    )

    @click.command(verb, help=doc)
    @click.argument("proxy", shell_complete=complete.proxies)
    @click.pass_obj
    def command(obj: CliContext, proxy: str) -> None:
        client = obj.client()
        if enabled:
            client.enable(proxy)
        else:
            client.disable(proxy)
        click.echo(f"{proxy}: {verb}d")

    return command


COMMANDS = [proxies, inject, heal, toxics, _switch(False), _switch(True)]
