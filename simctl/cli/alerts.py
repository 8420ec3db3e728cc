"""`simctl alerts` and `simctl query`: read the stack's monitor (or any Prometheus API).

`simctl alerts` lists firing and pending alerts; `alerts check [FILE]` checks a rule file
(every problem, each with file:line, exit 2); `alerts rules` prints the rule file as a
timing profile evaluates it. `simctl query EXPR` evaluates PromQL at now, or over a range.
docs/alerts.md has the details.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from simctl.cli.options import default_project
from simctl.errors import InvalidInput, MonitorUnreachable, SimctlError
from simctl.monitor.rules import RuleFileError, load_rules, parse_duration, scale_expr
from simctl.platform.timing import PROFILES

console = Console()


def source_options(func: Any) -> Any:
    func = click.option("--prometheus-url", envvar="SIMCTL_PROMETHEUS_URL", metavar="URL",
                        help="Read this Prometheus API instead of the project's monitor "
                             "(env SIMCTL_PROMETHEUS_URL).")(func)
    return click.option("--project", default=default_project, show_default="simctl",
                        metavar="NAME", help="Project whose monitor to read "
                                             "(env SIMCTL_PROJECT).")(func)


def api_url(project: str, prometheus_url: str | None) -> str:
    from simctl.views.source import resolve  # noqa: PLC0415

    return resolve(project, prometheus_url).prometheus_url


def api_get(base: str, path: str, **params: Any) -> Any:
    """GET a Prometheus API path; its `data`, or an error with the API's own message."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{base}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http only)
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            raise SimctlError(f"{url}: HTTP {exc.code}") from None
        if exc.code == 400 or body.get("errorType") == "bad_data":
            raise InvalidInput(body.get("error") or f"HTTP {exc.code}") from None
        raise SimctlError(f"{url}: {body.get('error') or exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MonitorUnreachable(f"no Prometheus API answered at {base}: {reason}") from None
    except ValueError:
        raise SimctlError(f"{url}: the answer is not JSON") from None
    if body.get("status") != "success":
        raise InvalidInput(body.get("error") or "the API answered an error")
    return body["data"]


def _since(active_at: str) -> str:
    try:
        started = datetime.fromisoformat(active_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return active_at
    seconds = max(0, time.time() - started)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _alerts_table(alerts: list[dict[str, Any]]) -> Table | Text:
    if not alerts:
        return Text("no alerts firing or pending", style="green")
    table = Table(box=None, pad_edge=False)
    # Names, states and runbook ids never wrap; a narrow terminal wraps the prose.
    for name in ("alert", "state", "since", "value", "runbook"):
        table.add_column(name, no_wrap=True)
    table.add_column("labels", overflow="fold")
    table.add_column("summary")
    order = {"firing": 0, "pending": 1}
    for alert in sorted(alerts, key=lambda a: (order.get(a["state"], 2),
                                               a["labels"].get("alertname", ""))):
        labels = dict(alert["labels"])
        name = labels.pop("alertname", "")
        labels.pop("severity", None)
        style = "red" if alert["state"] == "firing" else "yellow"
        table.add_row(Text(name, style="bold"), Text(alert["state"], style=style),
                      _since(alert.get("activeAt", "")), _value(alert.get("value", "")),
                      alert.get("annotations", {}).get("runbook", ""),
                      ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                      alert.get("annotations", {}).get("summary", ""))
    return table


def _value(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


@click.group(invoke_without_command=True)
@source_options
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's alert list as JSON.")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.pass_context
def alerts(ctx: click.Context, project: str, prometheus_url: str | None, watch: bool,
           as_json: bool, interval: float) -> None:
    """Firing and pending alerts: since when, value, summary, runbook."""
    if ctx.invoked_subcommand is not None:
        return
    base = api_url(project, prometheus_url)
    if as_json and not watch:
        click.echo(json.dumps(api_get(base, "/api/v1/alerts")["alerts"], indent=2))
        return
    if not watch:
        console.print(_alerts_table(api_get(base, "/api/v1/alerts")["alerts"]))
        return
    try:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                found = api_get(base, "/api/v1/alerts")["alerts"]
                if as_json:
                    click.echo(json.dumps(found))
                else:
                    live.update(_alerts_table(found), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


@alerts.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path | None) -> None:
    """Check a rule file (default: stack/alerts.yaml): every problem, with file:line."""
    try:
        rules = load_rules(file)
    except RuleFileError as exc:
        for problem in exc.problems:
            click.secho(f"error: {problem}", fg="red", err=True)
        sys.exit(exc.exit_code)
    console.print(f"{rules.path}: {len(rules.rules())} rules in {len(rules.groups)} groups, "
                  "all valid")


@alerts.command("rules")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timing", type=click.Choice(sorted(PROFILES)), default="heroku",
              show_default=True, help="Print durations as this timing profile evaluates them.")
def rules_command(file: Path | None, timing: str) -> None:
    """Print the rule file with durations scaled for a timing profile (for a real
    Prometheus scraping a `--timing fast` stack)."""
    from simctl.monitor.service import TIME_SCALE  # aiohttp: only when this command runs

    scale = TIME_SCALE[timing]
    try:
        rules = load_rules(file, scale=scale)
    except RuleFileError as exc:
        for problem in exc.problems:
            click.secho(f"error: {problem}", fg="red", err=True)
        sys.exit(exc.exit_code)
    from simctl.monitor.rules import format_duration  # noqa: PLC0415

    groups = []
    for group in rules.groups:
        out: dict[str, Any] = {"name": group.name}
        if group.interval:
            out["interval"] = format_duration(group.interval)
        out["rules"] = [{
            "alert": r.name, "expr": scale_expr(r.source_expr, scale),
            "for": format_duration(r.duration), "labels": r.labels,
            "annotations": r.annotations} for r in group.rules]
        groups.append(out)
    click.echo(f"# {rules.path}, durations for the {timing} timing profile")
    click.echo(yaml.safe_dump({"groups": groups}, sort_keys=False, width=100), nl=False)


@click.command()
@click.argument("expr")
@source_options
@click.option("--range", "span", default=None, metavar="DURATION",
              help="Evaluate over the last DURATION (e.g. 5m) instead of at now.")
@click.option("--step", default=None, metavar="DURATION",
              help="Resolution of a range query (default: span / 60, at least 1s).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's data as JSON.")
def query(expr: str, project: str, prometheus_url: str | None, span: str | None,
          step: str | None, as_json: bool) -> None:
    """Evaluate a PromQL expression against the monitor's history."""
    try:
        seconds = parse_duration(span) if span else None
        step_s = parse_duration(step) if step else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if step_s is not None and seconds is None:
        raise InvalidInput("--step needs --range")
    base = api_url(project, prometheus_url)
    now = time.time()
    if seconds is None:
        data = api_get(base, "/api/v1/query", query=expr, time=f"{now:.3f}")
    else:
        step_s = step_s or max(1.0, seconds / 60)
        data = api_get(base, "/api/v1/query_range", query=expr, start=f"{now - seconds:.3f}",
                       end=f"{now:.3f}", step=f"{step_s:g}")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console.print(_query_table(data))


def _query_table(data: dict[str, Any]) -> Table | Text:
    kind, result = data["resultType"], data["result"]
    if kind == "scalar" or kind == "string":
        return Text(str(result[1]))
    if not result:
        return Text("no data", style="yellow")
    if kind == "vector":
        table = Table("series", "value", box=None, pad_edge=False)
        for item in result:
            table.add_row(_series(item["metric"]), _value(item["value"][1]))
        return table
    table = Table("series", "points", "first", "last", "min", "max", box=None, pad_edge=False)
    for item in result:
        values = [float(v) for _, v in item["values"]]
        table.add_row(_series(item["metric"]), str(len(values)), f"{values[0]:.4g}",
                      f"{values[-1]:.4g}", f"{min(values):.4g}", f"{max(values):.4g}")
    return table


def _series(metric: dict[str, str]) -> str:
    labels = dict(metric)
    name = labels.pop("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


COMMANDS = [alerts, query]


def _up_monitor_option(ctx: click.Context, param: click.Parameter, url: str | None) -> None:
    """`simctl up`: check the rule file before anything starts; hand the webhook to the
    monitor (the stack file reads SIMCTL_ALERT_WEBHOOK)."""
    if ctx.resilient_parsing:
        return
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url!r} is not an http(s) URL with a host")
        import os  # noqa: PLC0415

        os.environ["SIMCTL_ALERT_WEBHOOK"] = url
    try:
        load_rules()
    except RuleFileError as exc:
        for problem in exc.problems:
            click.secho(f"error: {problem}", fg="red", err=True)
        click.secho("error: the stack was not started (fix the rule file, then "
                    "`simctl alerts check`)", fg="red", err=True)
        ctx.exit(exc.exit_code)


up_monitor_option = click.option(
    "--alert-webhook", metavar="URL", default=None, expose_value=False,
    callback=_up_monitor_option,
    help="POST Alertmanager-style webhook payloads here when alerts fire or resolve "
         "(docs/alerts.md).")
