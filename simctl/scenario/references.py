"""Checks of the names a scenario uses, against the stack, the toxic registry and the runbook.

Runs on the raw YAML data (not the validated model) so that it reports its findings in
the same pass as the schema errors, and skips whatever has the wrong shape (the schema
reports that). Each finding is a ``Finding`` with the path of the offending value; the
loader turns paths into file positions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simctl.apps import scenarios as app_scenarios
from simctl.errors import InvalidInput
from simctl.monitor.rules import missing_rule
from simctl.scenario import catalog, expressions, symptom_timing
from simctl.scenario.errors import did_you_mean
from simctl.scenario.faults import KINDS
from simctl.scenario.model import ACTION_KEYS, parse_duration


@dataclass(frozen=True)
class Finding:
    path: tuple[Any, ...]
    message: str
    offset: int | None = None  # 0-based character offset inside a string value
    at_key: bool = False  # point at the key rather than the value


@dataclass(frozen=True)
class StackInfo:
    """The names a scenario may use, from the stack definition."""

    proxies: tuple[str, ...]
    services: tuple[str, ...]
    roles: dict[str, tuple[str, ...]]
    dynos: dict[str, tuple[str, ...]]  # app -> dyno names (web.1, ...)
    drains: tuple[str, ...]
    app_dynos: tuple[str, ...] = ()  # dynos of the project's own apps (docs/apps.md)

    @classmethod
    def from_definition(cls, definition: Any) -> StackInfo:
        roles: dict[str, list[str]] = {}
        dynos: dict[str, list[str]] = {}
        drains: list[str] = []
        app_dynos = [str(s.labels["dyno"]) for s in definition.services.values()
                     if s.role == "dyno" and s.labels.get("procfile")]
        for name, spec in definition.services.items():
            roles.setdefault(spec.role, []).append(name)
            if spec.role == "dyno" and spec.labels.get("dyno"):
                dynos.setdefault(str(spec.labels.get("app", "web")), []).append(
                    str(spec.labels["dyno"]))
            if spec.role == "drain" and spec.labels.get("drain"):
                drains.append(str(spec.labels["drain"]))
        return cls(
            proxies=tuple(p["name"] for p in definition.proxies),
            services=tuple(definition.services),
            roles={k: tuple(v) for k, v in roles.items()},
            dynos={k: tuple(v) for k, v in dynos.items()},
            drains=tuple(drains),
            app_dynos=tuple(app_dynos),
        )

    @property
    def routers(self) -> tuple[str, ...]:
        return self.roles.get("router", ())

    @property
    def dyno_names(self) -> tuple[str, ...]:
        return tuple(name for names in self.dynos.values() for name in names)

    @property
    def targets(self) -> tuple[str, ...]:
        """What `on TARGET` and `health TARGET` accept: services, roles and dyno names."""
        return self.services + tuple(self.roles) + self.dyno_names

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(f"drain.{d}" for d in self.drains) + ("tail",)


@functools.lru_cache(maxsize=8)
def _stack_info(directory: Path | None) -> StackInfo:
    from simctl.stack import definition

    return StackInfo.from_definition(definition.load(directory))


def stack_info(directory: Path | None = None) -> StackInfo:
    """The stack's names (cached); raises InvalidInput when the stack files are unreadable."""
    from simctl.apps.config import project_apps
    from simctl.apps.stack import apply
    from simctl.stack import definition

    # ./simctl.yaml: a team's apps (Procfiles or images) are names scenarios may use
    apps = project_apps(images=None)
    if apps:
        return StackInfo.from_definition(apply(definition.load(directory), apps, 0))
    return _stack_info(directory or definition.default_stack_dir())


@dataclass
class Context:
    file: Path
    stack: StackInfo | None
    runbooks: Path | None = None
    root: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    load_targets: tuple[str, ...] = ("edge.1",)  # the load's router(s), as written

    def add(self, path: tuple[Any, ...], message: str, *, offset: int | None = None,
            at_key: bool = False) -> None:
        self.findings.append(Finding(path, message, offset, at_key))


def check(data: Any, ctx: Context) -> list[Finding]:
    if not isinstance(data, dict):
        return []
    data = app_scenarios.with_app_defaults(data)  # `app: NAME` names the app of sync, tail
    _check_id(data, ctx)
    if ctx.stack is not None:
        _check_load(data, ctx)
        _check_faults(data, ctx)
        for path, text in _probe_strings(data):
            _check_probe(path, text, ctx)
    symptom_timing.check(data, ctx.add)
    app_scenarios.check(data, ctx.add, ctx.stack.app_dynos if ctx.stack else ())
    _check_runbook(data, ctx)
    return ctx.findings


def _check_id(data: dict[str, Any], ctx: Context) -> None:
    value = data.get("id")
    if isinstance(value, str) and value != ctx.file.stem:
        ctx.add(("id",), f"id '{value}' does not match the file name '{ctx.file.name}' "
                         f"(expected '{ctx.file.stem}')")


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _check_load(data: dict[str, Any], ctx: Context) -> None:
    assert ctx.stack is not None
    load = _mapping(data, "load")
    edges = [p for p in ctx.stack.proxies if p.startswith("edge")]
    # a router's name stands for its plain edge (simctl.load.edges): router-1 or router.1
    known = edges + [n for r in ctx.stack.routers for n in (r, r.replace("-", ".", 1))]
    routers = load.get("routers")
    named: list[tuple[tuple[Any, ...], Any]] = [(("load", "router"), load.get("router"))]
    if isinstance(routers, list):
        named = [(("load", "routers", i), r) for i, r in enumerate(routers)]
    ctx.load_targets = tuple(r for _, r in named if isinstance(r, str)) or ("edge.1",)
    for path, router in named:
        if isinstance(router, str) and router not in known:
            ctx.add(path, f"unknown edge proxy or router '{router}'{did_you_mean(router, known)}")


def _dyno_names(data: dict[str, Any], stack: StackInfo) -> dict[str, set[str]]:
    """Dynos per app: the stack's, plus web.N up to the largest scale the scenario sets."""
    names = {app: set(dynos) for app, dynos in stack.dynos.items()}
    for _, item in _faults(data):
        sync = item.get("sync")
        if isinstance(sync, dict) and sync.get("op") == "scale":
            count, app = sync.get("dynos"), sync.get("app", "web")
            if isinstance(count, int) and isinstance(app, str):
                names.setdefault(app, set()).update(f"{app}.{i}" for i in range(1, count + 1))
    return names


def _faults(data: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    faults = data.get("faults")
    if isinstance(faults, list):
        for index, item in enumerate(faults):
            if isinstance(item, dict):
                yield index, item


def _check_faults(data: dict[str, Any], ctx: Context) -> None:
    # The type: ignore below: _dyno_names copes with no stack.
    dynos = _dyno_names(data, ctx.stack)  # type: ignore[arg-type]
    for index, item in _faults(data):
        keys = [k for k in item if k in ACTION_KEYS]
        if len(keys) != 1 or not isinstance(item[keys[0]], dict):
            continue
        key = keys[0]
        path = ("faults", index, key)
        KINDS[key].check(path, item[key], ctx, dynos)  # simctl/scenario/faults/<key>.py
    _check_toxic_names(data, ctx)


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _check_toxic_names(data: dict[str, Any], ctx: Context) -> None:
    """Two toxics with one name on one proxy at overlapping times: Toxiproxy says 409."""
    seen: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for index, item in _faults(data):
        toxic = item.get("toxic")
        start = _seconds(item.get("at"))
        if not isinstance(toxic, dict) or start is None or "for" in item and \
                _seconds(item["for"]) is None:
            continue
        proxy, kind = toxic.get("proxy"), toxic.get("type")
        if not isinstance(proxy, str) or not isinstance(kind, str):
            continue
        name = toxic.get("name") or f"{kind}_{toxic.get('stream', 'downstream')}"
        # The type: ignore below: bad input: reported elsewhere.
        end = start + _seconds(item["for"]) if "for" in item else float("inf")  # type: ignore[operator]
        for other, other_start, other_end in seen.get((proxy, str(name)), []):
            if start < other_end and other_start < end:
                ctx.add(("faults", index, "toxic"),
                        f"toxic '{name}' is already on {proxy} from faults[{other}]: give one "
                        "of them a distinct 'name'")
                break
        seen.setdefault((proxy, str(name)), []).append((index, start, end))


def _probe_strings(data: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    def strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
        if isinstance(value, list):
            for i, text in enumerate(value):
                if isinstance(text, str):
                    yield (*path, i), text

    yield from strings(data.get("steady_state"), ("steady_state",))
    symptoms = data.get("symptoms")
    if isinstance(symptoms, list):
        for i, symptom in enumerate(symptoms):
            if isinstance(symptom, dict):
                yield from strings(symptom.get("expect"), ("symptoms", i, "expect"))
    yield from strings(_mapping(data, "recovery").get("expect"), ("recovery", "expect"))
    yield from strings(_mapping(data, "abort").get("when"), ("abort", "when"))


def _check_probe(path: tuple[Any, ...], text: str, ctx: Context) -> None:
    assert ctx.stack is not None
    try:
        probe = expressions.parse(text)
    except expressions.ExpressionError:
        return  # the schema reports it
    for ref in probe.refs:
        choices = ctx.stack.targets if ref.kind == "target" else ctx.stack.sources
        if ref.name not in choices:
            what = "service, role or dyno" if ref.kind == "target" else "log source"
            ctx.add(path, f"unknown {what} '{ref.name}'{did_you_mean(ref.name, choices)}",
                    offset=ref.column - 1)
    if isinstance(probe, expressions.HttpProbe):
        router = probe.label_map.get("router")
        if router is not None and router not in ctx.load_targets:
            ctx.add(path, f"router '{router}' is not one of the load's "
                    f"({', '.join(ctx.load_targets)}){did_you_mean(router, ctx.load_targets)}",
                    offset=text.find(f'"{router}"') + 1)
    if isinstance(probe, expressions.LogsProbe):
        drain = probe.label_map.get("drain")
        if drain is not None and drain not in ctx.stack.drains:
            ctx.add(path, f"unknown drain '{drain}'{did_you_mean(drain, ctx.stack.drains)}",
                    offset=text.find(f'"{drain}"') + 1)


def _check_runbook(data: dict[str, Any], ctx: Context) -> None:
    from simctl.runbook.parser import parse_runbook

    reference = data.get("runbook")
    if not isinstance(reference, str) or not reference:
        return
    path = catalog.runbook_path(reference, runbooks=ctx.runbooks, root=ctx.root)
    if not path.is_file():
        known = [f"runbooks/{p.name}" for p in catalog.runbook_files(path.parent)] \
            if path.parent.is_dir() else []
        hint = did_you_mean(reference, known, listing=False)
        ctx.add(("runbook",), f"runbook file not found: {reference} (looked for "
                              f"{catalog.display(path)}){hint}")
        return
    try:
        runbook = parse_runbook(path)
    except InvalidInput as exc:
        ctx.add(("runbook",), f"cannot read the runbook: {exc}")
        return
    steps = _mapping(data, "mitigation").get("runbook_steps")
    ids = runbook.step_ids
    if isinstance(steps, list):
        for i, step in enumerate(steps):
            if isinstance(step, str) and step not in ids:
                ctx.add(("mitigation", "runbook_steps", i),
                        f"no step '{step}' in {reference}{did_you_mean(step, ids)}")
            found = runbook.step(step) if isinstance(step, str) else None
            for command in found.refused_commands if found else []:
                ctx.add(("mitigation", "runbook_steps", i),
                        f"step '{step}' of {reference}, line {command.line}: "
                        f"'{command.text}' {command.refused}; a runbook step may not run it "
                        "(RB013)")
    _check_objectives(data, runbook, reference, ctx)
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        return
    if runbook.front is None:
        ctx.add(("alerts",), f"cannot check the alerts: {reference} has no valid front matter "
                             f"(see `simctl runbook check {reference}`)", at_key=True)
        return
    for i, alert in enumerate(alerts):
        if isinstance(alert, str) and alert not in runbook.front.alerts:
            ctx.add(("alerts", i), f"alert '{alert}' is not listed in the front matter of "
                                   f"{reference}{did_you_mean(alert, runbook.front.alerts)}")
        elif isinstance(alert, str) and (no_rule := missing_rule(alert)):
            ctx.add(("alerts", i), no_rule)


def _check_objectives(data: dict[str, Any], runbook: Any, reference: str,
                      ctx: Context) -> None:
    """An objective's step must be a runbook step with a simctl command (only those are
    recorded); its probe one the drill watches (a symptom or recovery probe), else nothing
    would ever tick it (docs/training.md)."""
    step_ids = runbook.step_ids
    objectives = data.get("objectives")
    if not isinstance(objectives, list):
        return
    watched = {text for path, text in _probe_strings(data) if path[0] != "abort"}
    if _mapping(data, "recovery").get("expect") is None:
        steady = data.get("steady_state")
        watched |= {t for t in steady if isinstance(t, str)} if isinstance(steady, list) else set()
    for i, objective in enumerate(objectives):
        if not isinstance(objective, dict):
            continue
        step = objective.get("step")
        if isinstance(step, str) and step not in step_ids:
            ctx.add(("objectives", i, "step"),
                    f"no step '{step}' in {reference}{did_you_mean(step, step_ids)}")
        elif isinstance(step, str) and not any(
                c.is_simctl and c.argv for c in runbook.step(step).commands):
            ctx.add(("objectives", i, "step"),
                    f"step '{step}' of {reference} has no simctl command: a drill never "
                    "sees it run")
        probe = objective.get("probe")
        if isinstance(probe, str) and probe not in watched:
            ctx.add(("objectives", i, "probe"),
                    f"probe '{probe}' is not one of the scenario's symptom or recovery "
                    "probes: a drill never records it")
