"""Which module holds each top-level command, and its one-line help.

`simctl --help` lists these without importing a single command module, and a command's
module is imported only when that command runs, so every command starts quickly
(docs/benchmarks.md, "CLI start-up"). tests/unit/test_cli_registry.py checks this table
against the modules' own COMMANDS, so a command added to a module and not here fails CI.
"""

from __future__ import annotations

# name: (module under simctl.cli, short help as click derives it from the docstring)
COMMANDS: dict[str, tuple[str, str]] = {
    "alerts": ("alerts", "Firing and pending alerts: since when, value, summary, runbook."),
    "connect": ("stack",
        "Put a disconnected service back on the stack's network (compose backend)."),
    "cpu": ("stack", "Limit a service to CPUS cores (e.g."),
    "dashboard": ("views",
        "Live terminal dashboard: health, traffic, latency, H-codes, drains, sync, "
        "alerts, logs."),
    "disable": ("faults",
        "Take PROXY down: open connections are closed, new ones refused (Toxiproxy's "
        "\"down\")."),
    "disconnect": ("stack",
        "Cut a service off the stack's network, a partition (compose backend); "
        "`connect` undoes it."),
    "down": ("stack",
        "Stop every process of the stack (safe to run twice, or after simctl was "
        "killed)."),
    "drain": ("operate", "Logplex drains: list, disable, enable, and what a drain received."),
    "drill": ("drill",
        "Game days: run a scenario in the background while a team responds "
        "(docs/drills.md)."),
    "dyno": ("operate",
        "Switch a dyno's behaviour at run time (latency, error, hang, close, ...)."),
    "enable": ("faults", "Re-enable PROXY (listen again on the same port)."),
    "heal": ("faults",
        "Remove every toxic of PROXY and re-enable it, or reset everything with "
        "--all."),
    "inject": ("faults",
        "Add a toxic of TYPE to PROXY (see `simctl toxics` for types and "
        "attributes)."),
    "kill": ("stack", "Kill a service's processes (SIGKILL); `restart` brings it back."),
    "logs": ("operate", "Show the app's logs through logplex, formatted like `heroku logs`."),
    "maintenance": ("operate",
        "Put an app in maintenance mode (routers answer H80) or take it out."),
    "metrics": ("operate", "Print a service's Prometheus metrics (e.g."),
    "pause": ("stack", "Freeze a service (SIGSTOP): it holds connections but answers nothing."),
    "proxies": ("faults", "List the proxies and their toxics."),
    "query": ("alerts", "Evaluate a PromQL expression against the monitor's history."),
    "report": ("report",
        "Report on a drill (default: the latest): scores, timeline, SLI charts, "
        "review draft."),
    "restart": ("stack", "Stop a service and start it again, waiting until it is healthy."),
    "resume": ("stack", "Unfreeze a paused service (SIGCONT)."),
    "rod": ("operate", "Switch a logplex control rod on or off (load-shedding switches)."),
    "router": ("operate", "Router operator actions."),
    "runbook": ("runbook", "Markdown runbooks: list, show, check, and run a step."),
    "scale": ("operate", "Set how many dynos an app runs, e.g."),
    "scenario": ("scenario", "Scenario files: list, show, lint, and the JSON Schema for editors."),
    "stack": ("stack", "Build what the compose backend runs (see docs/docker.md)."),
    "start": ("stack", "Start a stopped or killed service, waiting until it is healthy."),
    "status": ("stack", "Health of every service, endpoints and key SLIs."),
    "stop": ("stack", "Stop a service gracefully (SIGTERM); `start` brings it back."),
    "sync": ("operate",
        "The route table's source: show it, or change it behind the routers' backs."),
    "toxics": ("faults", "List the toxic types, their attributes (unit, range) and what they do."),
    "toxiproxy": ("toxiproxy", "The embedded Toxiproxy-compatible fault server."),
    "traffic": ("traffic",
        "Send open-loop HTTP traffic through one or more routers and show success, "
        "latency, H-codes (per router when there are several)."),
    "train": ("train",
        "The on-call course: every lesson in order, with your status, score and best "
        "time (docs/training.md)."),
    "up": ("stack", "Start the stack and print its endpoints."),
    "verify": ("verify",
        "Run scenarios unattended: reproduce each incident, run its runbook's "
        "mitigation, check recovery (CI)."),
    "web": ("views", "Serve the dashboard's panels as a web page with live charts, until Ctrl-C."),
}
