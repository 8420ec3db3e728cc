"""simctl's pytest plugin: a stack, toxics and scenarios as fixtures.

Installed with simctl (entry point ``pytest11: simctl``), so any test suite can use:

- ``simctl_stack`` (session): starts a stack with ``fast`` timing under the project
  ``pytest-<pid>`` with its own port offset, yields its backend (``LocalBackend``), and
  always stops it (at the end of the session, on Ctrl-C or SIGTERM, and at exit).
- ``simctl_toxic(proxy, type, **attributes)``: adds a toxic on the stack's fault plane
  (keywords ``stream``, ``toxicity`` and ``name`` are the toxic's own), returns it, and
  heals every proxy it touched at teardown, whatever the test did.
- ``simctl_scenario(id_or_path, seed=None)``: runs a scenario with the engine on the
  stack and returns its ``ScenarioResult`` (``result.passed``, ``result.reason``,
  ``result.events``); the stack is reset to its baseline afterwards.

    def test_slow_dyno_recovers(simctl_scenario):
        result = simctl_scenario("slow-web-1")
        assert result.passed, result.reason

    def test_h12(simctl_stack, simctl_toxic):
        simctl_toxic("web.1", "latency", latency=5000)
        ...

Tests that use the stack get the ``simctl`` marker, so ``-m "not simctl"`` leaves them
out. Options: ``--simctl-port-offset N`` (or SIMCTL_PYTEST_PORT_OFFSET; default: the
first of 5000, 6500, 8000, 9500 whose ports are free), ``--simctl-timing fast|heroku``.
Scenarios are found as ``simctl scenario`` finds them (SIMCTL_SCENARIOS_DIR,
./scenarios, ...).

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import atexit
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

STACK_FIXTURES = ("simctl_stack", "simctl_toxic", "simctl_scenario")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simctl", "simctl stacks and scenarios")
    group.addoption("--simctl-port-offset", type=int, default=None, metavar="N",
                    help="port offset of the stack simctl_stack starts "
                         "(env SIMCTL_PYTEST_PORT_OFFSET; default from the pid)")
    group.addoption("--simctl-timing", choices=("fast", "heroku"), default="fast",
                    help="timing profile of the stack simctl_stack starts (default fast)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "simctl: the test runs on a simctl stack (added to every test that uses "
                   "simctl_stack, simctl_toxic or simctl_scenario)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if any(name in names for name in STACK_FIXTURES):
            item.add_marker(pytest.mark.simctl)


SLOTS = tuple(5000 + 1500 * i for i in range(4))  # stacks at these offsets never overlap


def stack_ports(port_offset: int) -> list[int]:
    """Every port a stack at ``port_offset`` listens on (services and proxies)."""
    from simctl.stack.definition import load

    definition = load(port_offset=port_offset)
    ports = [port for spec in definition.services.values() for port in spec.ports()]
    ports += [int(p["listen"].rsplit(":", 1)[1]) for p in definition.proxies]
    return sorted(set(ports))


def free_port_offset(candidates: tuple[int, ...] = SLOTS, pid: int | None = None) -> int:
    """The first candidate (starting at one picked by the pid) whose ports are all free."""
    from simctl.backends.procs import port_taken

    start = (os.getpid() if pid is None else pid) % len(candidates)
    ordered = candidates[start:] + candidates[:start]
    for offset in ordered:
        if not any(port_taken(port) for port in stack_ports(offset)):
            return offset
    return ordered[0]  # all busy: let `up` say which port is taken


def _port_offset(config: pytest.Config) -> int:
    given = config.getoption("simctl_port_offset")
    if given is not None:
        return int(given)
    env = os.environ.get("SIMCTL_PYTEST_PORT_OFFSET")
    if env:
        try:
            return int(env)
        except ValueError:
            raise pytest.UsageError(f"SIMCTL_PYTEST_PORT_OFFSET={env!r} is not an integer") \
                from None
    return free_port_offset()


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture(scope="session")
def simctl_stack(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A running stack for the whole session (its ``LocalBackend``); always stopped.
    It runs the project file's apps ($SIMCTL_CONFIG, else ./simctl.yaml; docs/apps.md)."""
    from simctl.apps.config import project_apps
    from simctl.backends.local import LocalBackend

    backend = LocalBackend(f"pytest-{os.getpid()}", timing=pytestconfig.getoption(
        "simctl_timing"), port_offset=_port_offset(pytestconfig), apps=project_apps())
    # SIGTERM would end the process without teardown: make it a KeyboardInterrupt, which
    # pytest answers by tearing fixtures down.
    previous = None
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            previous = signal.signal(signal.SIGTERM, _sigterm)
        except ValueError:  # not the main thread: signals cannot be handled here
            previous = None
    atexit.register(backend.down)
    try:
        backend.up()
        yield backend
    finally:
        try:
            backend.down()
        finally:
            atexit.unregister(backend.down)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def simctl_toxic(simctl_stack: Any) -> Iterator[Callable[..., Any]]:
    """``simctl_toxic(proxy, type, *, stream=, toxicity=, name=, **attributes)``."""
    from simctl.errors import ToxiproxyError
    from simctl.faults.client import ToxiproxyClient

    client = ToxiproxyClient(simctl_stack.require_state().toxiproxy_url)
    touched: list[str] = []

    def add(proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
            name: str | None = None, **attributes: int) -> Any:
        if proxy not in touched:
            touched.append(proxy)
        return client.add_toxic(proxy, type, stream=stream, toxicity=toxicity,
                                attributes=attributes, name=name)

    try:
        yield add
    finally:
        for proxy in reversed(touched):
            try:
                for toxic in client.toxics(proxy):
                    client.remove_toxic(proxy, toxic.name)
                client.enable(proxy)
            except ToxiproxyError as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def simctl_scenario(simctl_stack: Any) -> Callable[..., Any]:
    """``simctl_scenario(id_or_path, seed=None, listener=None)`` -> ScenarioResult."""
    from simctl.scenario import catalog
    from simctl.scenario.engine import run_scenario
    from simctl.scenario.loader import load_scenario
    from simctl.scenario.reset import reset_stack

    def run(reference: str, *, seed: int | None = None,
            listener: Callable[[Any], None] | None = None) -> Any:
        scenario = load_scenario(catalog.resolve_scenario(str(reference)))
        try:
            return run_scenario(scenario, simctl_stack, seed=seed, listener=listener)
        finally:
            reset_stack(simctl_stack)

    return run
