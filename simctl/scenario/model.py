"""The scenario file format as pydantic models (docs/scenarios.md is the reference).

These models check shape and types: keys, value types, ranges, durations, rates and probe
expressions. Names that only the stack, the toxic registry or the runbook can confirm
(proxies, services, dynos, toxic types and attributes, step ids, alerts) are checked by
``simctl.scenario.references`` in the same pass, so always load files with
``simctl.scenario.loader.load_scenario``; ``Scenario.model_validate`` alone checks shape.

Durations are seconds (float) and rates are per second (float) once validated; probes are
the typed objects of ``simctl.scenario.expressions``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from simctl.scenario import expressions
from simctl.scenario.faults import KINDS
from simctl.scenario.faults.drain import DrainAction, DrainFault
from simctl.scenario.faults.dyno import DynoAction, DynoBehaviour, DynoFault
from simctl.scenario.faults.load import LoadAction, LoadFault
from simctl.scenario.faults.process import ProcessAction, ProcessFault
from simctl.scenario.faults.proxy import ProxyAction, ProxyFault
from simctl.scenario.faults.rod import RodAction, RodFault
from simctl.scenario.faults.router import RouterAction, RouterFault
from simctl.scenario.faults.sync import (
    SyncAction,
    SyncAddress,
    SyncFault,
    SyncMaintenance,
    SyncPoison,
    SyncScale,
    SyncState,
)
from simctl.scenario.faults.tail import TailAction, TailFault
from simctl.scenario.faults.toxic import ToxicAction, ToxicFault
from simctl.scenario.fields import (
    Duration,
    FaultBase,
    Model,
    Name,
    Probe,
    Rate,
    format_duration,
    format_rate,
    parse_duration,
    parse_probe,
    parse_rate,
)

__all__ = [  # the fault models live in simctl/scenario/faults/, one module per kind
    "ACTION_KEYS", "FAULT_TYPES", "DrainAction", "DrainFault", "Duration", "DynoAction",
    "DynoBehaviour", "DynoFault", "Fault", "FaultBase", "LoadAction", "LoadFault", "Model",
    "Name", "Probe", "ProcessAction", "ProcessFault", "ProxyAction", "ProxyFault", "Rate",
    "RodAction", "RodFault", "RouterAction", "RouterFault", "Scenario", "SyncAction",
    "SyncAddress", "SyncFault", "SyncMaintenance", "SyncPoison", "SyncScale", "SyncState",
    "TailAction", "TailFault", "ToxicAction", "ToxicFault", "action_key", "format_duration",
    "format_rate", "parse_duration", "parse_probe", "parse_rate",
]

# --- the load -----------------------------------------------------------------------------


class Load(Model):
    """Traffic during the whole run: HTTP requests through an edge proxy, and log lines."""

    http: Rate = Field(20.0, description="HTTP requests per second ('0/s' for none)")
    logs: Rate = Field(0.0, description="log lines per second posted to logplex")
    host: Name = Field("web.localhost", description="Host header: picks the app")
    path: Name = "/"
    router: Name = Field("edge.1", description="the edge proxy (or router) the requests go "
                         "through")
    routers: list[Name] = Field([], description="several edge proxies or routers: the rate is "
                                "spread evenly over them (instead of 'router')")
    keepalive: bool = Field(
        True,
        description="reuse client connections; false opens a new one (on HTTPS a full TLS "
        "handshake) for every request",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise PydanticCustomError("path", "path must start with '/' and have no spaces")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Load:
        if self.routers and "router" in self.model_fields_set:
            raise PydanticCustomError("routers", "give 'router' or 'routers', not both")
        if len(set(self.routers)) != len(self.routers):
            raise PydanticCustomError("routers", "a router is named twice in 'routers'")
        return self

    @property
    def targets(self) -> list[str]:
        """Where the requests go, as written: the rate is split evenly over them."""
        return list(self.routers) or [self.router]



# --- faults: one module per kind (simctl/scenario/faults/) ---------------------------------

FAULT_TYPES: tuple[type[FaultBase], ...] = tuple(kind.model for kind in KINDS.values())
ACTION_KEYS: tuple[str, ...] = tuple(KINDS)


def action_key(value: Any) -> str | None:
    """The one action key of a fault item (None when there are none or several)."""
    if isinstance(value, FaultBase):
        return value.kind
    if isinstance(value, dict):
        found = [key for key in value if key in ACTION_KEYS]
        return found[0] if len(found) == 1 else None
    return None


if TYPE_CHECKING:  # built at run time from the registry: to a type checker, any fault
    Fault = FaultBase
else:
    Fault = Annotated[
        Union[tuple(Annotated[kind.model, Tag(key)] for key, kind in KINDS.items())],  # noqa: UP007
        Discriminator(action_key, custom_error_type="fault_action",
                      custom_error_message="a fault needs 'at' and exactly one action"),
    ]


# --- phases -------------------------------------------------------------------------------


class Symptom(Model):
    """Probes that prove the incident is reproduced, watched from the fault they follow
    (docs/scenarios.md, "When a symptom is seen")."""

    within: Duration = Field(description="deadline, from the start of the fault phase")
    expect: list[Probe] = Field(min_length=1)
    after: Name | None = Field(None, description="the fault (its 'name') the probes are "
                                                 "watched from; default the last fault")
    throughout: Duration | None = Field(None, description="the probes must hold at every "
                                                          "evaluation for this long")
    while_: Name | None = Field(None, alias="while", description="the probes must hold at "
                                "every evaluation while this fault (its 'name') is applied")
    baseline_ok: bool = Field(False, description="the probes may already hold in the steady "
                                                 "state (a guard such as 'HTTP stays healthy')")

    @model_validator(mode="after")
    def _one_mode(self) -> Symptom:
        if self.throughout is not None and self.while_ is not None:
            raise PydanticCustomError("symptom_mode", "give 'throughout' or 'while', not both")
        if self.throughout is not None and self.throughout <= 0:
            raise PydanticCustomError("symptom_mode", "'throughout' must be more than 0s")
        return self


class Mitigation(Model):
    runbook_steps: list[Name] = Field([], description="step ids of the scenario's runbook")


class Recovery(Model):
    within: Duration = Field(30.0, description="deadline, from the end of mitigation")
    expect: list[Probe] | None = Field(None, description="default: the steady_state probes")


class Abort(Model):
    when: list[Probe] = Field([], description="abort (and roll back) when any holds")


def _or_a_string(schema: dict[str, Any]) -> None:
    """An objective's JSON Schema: a plain string, or the mapping."""
    mapping = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "string", "minLength": 1}, mapping]


class Objective(Model):
    """What a trainee must achieve, and how it is checked (docs/scenarios.md,
    "Objectives"). A plain string is an objective with text only (shown, never ticked);
    otherwise at most one of: a runbook ``step`` run, a ``command`` (glob) or
    ``command_regex`` run, a ``probe`` that becomes true, or a question (``ask``) with
    ``answer`` (one or several) or ``answer_regex``."""

    model_config = ConfigDict(**{**Model.model_config, "json_schema_extra": lambda schema:
                                 _or_a_string(schema)})

    text: Name
    step: Name | None = Field(None, description="a step id of the scenario's runbook")
    command: Name | None = Field(None, description="a glob over the command line, e.g. "
                                                   "'simctl dyno show *'")
    command_regex: Name | None = Field(None, description="a regex the command line matches")
    probe: Probe | None = Field(None, description="a symptom or recovery probe of the "
                                                  "scenario, met when it becomes true")
    ask: Name | None = Field(None, description="a question for `simctl train answer`")
    answer: Name | list[Name] | None = None
    answer_regex: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        return {"text": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_check(self) -> Objective:
        checks = [k for k in ("step", "command", "command_regex", "probe", "ask")
                  if getattr(self, k) is not None]
        if len(checks) > 1:
            raise PydanticCustomError("objective", "give at most one of step, command, "
                                      "command_regex, probe, ask (got {keys})",
                                      {"keys": ", ".join(checks)})
        has_answer = self.answer is not None or self.answer_regex is not None
        if self.ask is not None and not has_answer:
            raise PydanticCustomError("objective", "'ask' needs 'answer' or 'answer_regex'")
        if self.ask is None and has_answer:
            raise PydanticCustomError("objective", "'answer' needs 'ask' (the question)")
        if isinstance(self.answer, list) and not self.answer:
            raise PydanticCustomError("objective", "'answer' needs at least one answer")
        for key in ("command_regex", "answer_regex"):
            pattern = getattr(self, key)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise PydanticCustomError("objective", "{key} does not compile: {error}",
                                              {"key": key, "error": str(exc)}) from None
        return self

    @property
    def check(self) -> str | None:
        """How it is met: step, command, command_regex, probe, ask; None for text only."""
        return next((k for k in ("step", "command", "command_regex", "probe", "ask")
                     if getattr(self, k) is not None), None)

    @property
    def answers(self) -> list[str]:
        if self.answer is None:
            return []
        return [self.answer] if isinstance(self.answer, str) else list(self.answer)

    def __str__(self) -> str:
        return self.text


_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


class Scenario(Model):
    """One documented incident, rehearsable: load, faults, what to observe, how it recovers."""

    id: str = Field(description="must equal the file name without .yaml")
    title: Name
    description: str = ""
    runbook: Name = Field(description="path of the runbook, relative to the repository root")
    difficulty: int = Field(ge=1, le=5)
    tags: list[Name] = []
    objectives: list[Objective] = Field([], description="what a trainee should achieve, "
                                        "each a text or a checkable objective")
    load: Load = Load()
    steady_state: list[Probe] = []
    faults: list[Fault] = Field(min_length=1)
    symptoms: list[Symptom] = Field(min_length=1)
    alerts: list[Name] = []
    mitigation: Mitigation = Mitigation()
    recovery: Recovery = Recovery()
    abort: Abort = Abort()
    hints: list[Name] = []
    seed: int | None = Field(None, ge=0)
    timing: Literal["fast", "heroku"] = "fast"
    app: Name | None = Field(None, description="the project's own app this scenario targets "
                                               "(load Host, sync and tail default to it)")
    app_agnostic: bool = Field(False, description="needs no built-in dyno behaviour or path: "
                                                  "runs unchanged against a project's own app")

    @model_validator(mode="before")
    @classmethod
    def _app_defaults(cls, data: Any) -> Any:
        from simctl.apps.scenarios import with_app_defaults

        return with_app_defaults(data)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value) or len(value) > 100:
            raise PydanticCustomError(
                "scenario_id", "invalid id '{value}': use lowercase letters, digits and "
                "dashes, e.g. 'slow-drain'", {"value": value})
        return value

    @property
    def recovery_expect(self) -> list[expressions.Probe]:
        """What recovery must show: its own probes, else the steady state."""
        return list(self.recovery.expect if self.recovery.expect is not None
                    else self.steady_state)

    def with_timing(self, timing: str) -> Scenario:
        """This scenario with its probes' ``${timeouts...}`` values taken from
        ``timing`` (the file is validated with ``fast``)."""
        def probes(items: list[expressions.Probe]) -> list[expressions.Probe]:
            return [expressions.parse(p.text, timing) if "${" in p.text else p for p in items]

        return self.model_copy(update={
            "steady_state": probes(self.steady_state),
            "symptoms": [s.model_copy(update={"expect": probes(s.expect)})
                         for s in self.symptoms],
            "recovery": self.recovery.model_copy(update={
                "expect": None if self.recovery.expect is None
                else probes(self.recovery.expect)}),
            "abort": self.abort.model_copy(update={"when": probes(self.abort.when)}),
        })

    def fault_named(self, name: str) -> FaultBase | None:
        return next((f for f in self.faults if f.name == name), None)

    def timeline(self) -> list[FaultBase]:
        """Faults in the order they apply: by ``at``, ties in file order."""
        return sorted(self.faults, key=lambda fault: fault.at)

