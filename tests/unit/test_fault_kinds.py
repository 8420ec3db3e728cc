"""The fault kind registry (simctl/scenario/faults/): one module per kind, the scenario
model built from it, and a kind's plan run against the checked fake backend."""

from __future__ import annotations

import pkgutil

import pytest

from simctl.backends.fake import FakeBackend
from simctl.faults.client import ToxiproxyClient
from simctl.scenario import describe, faults, model
from simctl.scenario.actions import Actions
from simctl.scenario.faults.process import ProcessAction, ProcessFault


def test_every_module_with_a_kind_is_registered_in_order() -> None:
    modules = {m.name for m in pkgutil.iter_modules(faults.__path__)} - {"base"}
    assert set(faults.KINDS) == modules
    orders = [kind.order for kind in faults.KINDS.values()]
    assert orders == sorted(orders)
    for key, kind in faults.KINDS.items():
        assert kind.model.kind == key
        assert key in kind.model.model_fields  # the scenario key is the model's field


def test_the_scenario_model_is_built_from_the_registry() -> None:
    assert tuple(faults.KINDS) == model.ACTION_KEYS
    assert tuple(k.model for k in faults.KINDS.values()) == model.FAULT_TYPES
    assert model.ToxicFault is faults.KINDS["toxic"].model  # old import paths still work
    item = model.Scenario.model_json_schema()["properties"]["faults"]["items"]
    assert len(item["oneOf"]) == len(faults.KINDS)


def _actions(backend: FakeBackend) -> Actions:
    # a process fault acts through the backend only: the fault plane is never called
    return Actions(backend, ToxiproxyClient("http://127.0.0.1:9"), load=None)


@pytest.fixture
def fake() -> FakeBackend:
    backend = FakeBackend("kinds")
    backend.up()
    return backend


def test_a_process_fault_plans_through_the_backend_and_undoes(fake: FakeBackend) -> None:
    fault = ProcessFault.model_validate({"at": "1s", "process": {"service": "dyno-1",
                                                                "action": "kill"}})
    plan = _actions(fake).plan(fault)
    assert fake.calls == []  # planning acts on nothing
    assert plan.do() == "kill dyno-1"
    assert fake.paused_or_down() == ["dyno-1"]
    assert plan.undo is not None
    assert plan.undo() == "restarted dyno-1"
    assert fake.calls == [("kill", "dyno-1"), ("restart", "dyno-1")]
    assert fake.paused_or_down() == []
    assert describe.describe(fault) == "kill dyno-1"
    assert describe.undo(fault) == "restart dyno-1"


def test_a_restart_fault_has_no_undo(fake: FakeBackend) -> None:
    fault = ProcessFault(at="0s", process=ProcessAction(service="sync", action="restart"))
    plan = _actions(fake).plan(fault)
    assert plan.undo is None
    assert describe.undo(fault) == "nothing"
