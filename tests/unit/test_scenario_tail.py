"""The ``tail`` fault: a slow tail client (its model, checks, description, accounting).

No sockets here: the client against a real Logplex is in tests/integration/test_engine_run.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simctl.errors import InvalidInput
from simctl.scenario.actions import Actions
from simctl.scenario.describe import describe, undo
from simctl.scenario.loader import lint_text
from simctl.scenario.model import TailAction, TailFault
from simctl.scenario.slowtail import SlowTail, TailReading

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SCENARIO = """\
id: slow-tail
title: A slow tail client
runbook: runbooks/logplex-drain-backlog.md
difficulty: 1
load: {logs: 100/s}
faults:
  - {at: 1s, tail: TAIL}
symptoms:
  - within: 10s
    expect: [metric logplex_tail_dropped_total > 0 on logplex]
"""


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)


def lint(tail: str) -> list[str]:
    result = lint_text(SCENARIO.replace("TAIL", tail), Path("slow-tail.yaml"),
                       runbooks=Path("runbooks"))
    return [str(issue) for issue in result.issues]


def test_a_tail_fault_loads_with_its_defaults() -> None:
    result = lint_text(SCENARIO.replace("TAIL", "{rate: 32}"), Path("slow-tail.yaml"),
                       runbooks=Path("runbooks"))
    assert result.ok, [str(i) for i in result.issues]
    assert result.scenario is not None
    fault = result.scenario.faults[0]
    assert isinstance(fault, TailFault)
    assert fault.kind == "tail"
    assert fault.action == TailAction(app="web", rate=32)
    assert describe(fault) == "tail web's logs, reading 32 KB/s"
    assert undo(fault) == "close the tail session"


@pytest.mark.parametrize(("tail", "message"), [
    ("{rate: 0}", "slow-tail.yaml:7:27: faults[0].tail.rate: expected at least 1, got 0"),
    ("{app: web}", "slow-tail.yaml:7:20: faults[0].tail.rate: missing required key"),
    ("{rate: 8, app: wbe}", "slow-tail.yaml:7:35: faults[0].tail.app: unknown app 'wbe'; "
                            "did you mean 'web'?"),
    ("{rate: 8, speed: 2}", "slow-tail.yaml:7:30: faults[0].tail.speed: unknown key 'speed'"),
])
def test_tail_fault_mistakes_are_reported(tail: str, message: str) -> None:
    issues = lint(tail)
    assert any(issue.startswith(message) for issue in issues), issues


def test_the_reading_counts_lines_and_l11_reports_across_reads() -> None:
    reading = TailReading()
    l11 = (b"2024-05-01T10:14:03+00:00 heroku[logplex]: Error L11 (Tail buffer overflow) "
           b"-> This tail session dropped 476 messages since 2024-05-01T10:14:01+00:00.\n")
    body = (b"2024-05-01T10:14:00+00:00 app[web.1]: at=info msg=one\n" + l11 +
            b"2024-05-01T10:14:04+00:00 app[web.2]: at=info msg=two\n")
    # The chunked encoding's framing, as it arrives on the socket.
    wire = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    for i in range(0, len(wire), 7):  # a slow client gets the stream in small pieces
        reading.feed(wire[i:i + 7])
    assert reading.bytes == len(wire)
    assert reading.lines == 3
    assert reading.l11 == 1
    assert reading.last_l11.endswith("dropped 476 messages since 2024-05-01T10:14:01+00:00.")
    assert "heroku[logplex]: Error L11" in reading.last_l11


def test_a_line_without_its_end_is_not_counted_yet_and_memory_is_bounded() -> None:
    reading = TailReading()
    reading.feed(b"x" * 10_000)
    assert reading.lines == 0
    assert len(reading._partial) <= 4096
    reading.feed(b"\n")
    assert reading.lines == 1


def test_the_client_reads_kilobytes_per_second_and_closes_when_never_opened() -> None:
    tail = SlowTail("http://127.0.0.1:7300", "web", 32)
    assert (tail.host, tail.port, tail.rate) == ("127.0.0.1", 7300, 32 * 1024)
    assert asyncio.run(tail.close()) == "no tail session was open"
    assert tail.closed
    assert tail.summary() == "read 0 bytes, 0 lines, 0 L11 report(s)"


def test_a_tail_fault_needs_the_engine_loop() -> None:
    actions = Actions(backend=None, client=None, load=None)  # type: ignore[arg-type]
    fault = TailFault.model_validate({"at": "1s", "tail": {"rate": 8}})
    with pytest.raises(InvalidInput, match="background loop"):
        actions.plan(fault)
