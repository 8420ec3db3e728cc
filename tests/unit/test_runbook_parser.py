"""Parsing runbooks: front matter, sections, steps with id, section, language, lines, commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from simctl.errors import InvalidInput
from simctl.runbook.parser import canonical_section, classify, parse_runbook, parse_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runbooks"


def test_the_example_runbook() -> None:
    book = parse_runbook(FIXTURES / "logplex-drain-backlog.md")
    assert book.front is not None
    assert book.id == "logplex-drain-backlog"
    assert book.front.alerts == ["LogDrainDropping"]
    assert book.front.scenarios == ["slow-drain"]
    assert book.front.owner == "team-routing"
    assert book.front_lines["alerts"] == 4
    assert book.sections == ["Symptoms", "Diagnose", "Mitigate", "Verify", "Follow-up"]
    assert book.step_ids == ["show-links", "drain-metrics", "disable-slow-drain",
                             "verify-links"]
    step = book.step("disable-slow-drain")
    assert step is not None
    assert (step.section, step.language, step.line) == ("Mitigate", "sh", 41)
    (command,) = step.commands
    assert (command.line, command.text) == (42, "simctl heal drain.main")
    assert command.argv == ("simctl", "heal", "drain.main")
    assert command.is_simctl
    assert step.executable
    shell = book.step("drain-metrics")
    assert shell is not None
    assert not shell.executable
    assert shell.shell_commands[0].line == 34
    assert book.problems == []


def test_steps_continuations_comments_and_console_blocks() -> None:
    text = """---
id: t
title: T
---
## Mitigate

- In a list item:

  ```bash {#in-list}
  # a comment
  simctl inject web.1 latency \\
    --attr latency=100   # trailing comment

  simctl heal web.1
  ```

~~~{#tilde .sh}
simctl toxics
~~~

```console {#session}
$ simctl proxies
name  listen
$ simctl toxics
```

```text
not a step
```
"""
    book = parse_text(text, Path("t.md"))
    in_list = book.step("in-list")
    assert in_list is not None
    assert in_list.language == "bash"
    assert in_list.line == 9
    assert [(c.line, c.argv) for c in in_list.commands] == [
        (11, ("simctl", "inject", "web.1", "latency", "--attr", "latency=100")),
        (14, ("simctl", "heal", "web.1")),
    ]
    tilde = book.step("tilde")
    assert tilde is not None
    assert tilde.language == "sh"
    assert tilde.section == "Mitigate"
    session = book.step("session")
    assert session is not None
    assert [c.text for c in session.commands] == ["simctl proxies", "simctl toxics"]
    assert [b.id for b in book.blocks] == ["in-list", "tilde", "session", None]


@pytest.mark.parametrize(("line", "is_simctl"), [
    ("simctl toxics", True),
    ("simctl inject web.1 latency --attr 'latency=100'", True),
    ("simctl proxies | grep web", False),
    ("simctl proxies > out.txt", False),
    ("simctl heal web.1 && simctl toxics", False),
    ("simctl logs $(date)", False),
    ("FOO=1 simctl toxics", False),
    ("curl -s localhost:7300/metrics", False),
    ("/usr/bin/simctl toxics", False),
])
def test_classify(line: str, is_simctl: bool) -> None:
    assert classify(line, 1).is_simctl is is_simctl


def test_classify_unbalanced_quote() -> None:
    command = classify('simctl inject "web.1', 3)
    assert command.is_simctl
    assert command.argv is None
    assert command.error == "cannot split the line: No closing quotation"


@pytest.mark.parametrize(("title", "section"), [
    ("Mitigate", "Mitigate"), ("mitigate", "Mitigate"), ("Follow-up", "Follow-up"),
    ("Follow up", "Follow-up"), ("Followup", "Follow-up"), ("Mitgate", None),
    ("Background", None),
])
def test_canonical_section(title: str, section: str | None) -> None:
    assert canonical_section(title) == section


def test_front_matter_positions_and_problems() -> None:
    book = parse_runbook(FIXTURES / "bad-front-matter.md")
    assert book.front is None
    assert [(p.rule, p.line, p.message) for p in book.problems] == [
        ("RB002", 3, "front matter: title: expected a string, got a list"),
        ("RB002", 4, "front matter: alert: unknown key 'alert'; did you mean 'alerts'?"),
    ]


def test_unclosed_front_matter() -> None:
    book = parse_text("---\nid: x\n\n## Symptoms\n", Path("x.md"))
    assert [(p.rule, p.line) for p in book.problems] == [("RB002", 1)]


def test_unreadable_runbook() -> None:
    with pytest.raises(InvalidInput, match="cannot read the runbook"):
        parse_runbook(FIXTURES / "no-such.md")
