"""verify --parallel: JUnit files of the parts merge into one; bad combinations are exit 2."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from simctl.cli import main
from simctl.cli.verify_parallel import merge_junit

PART = """<?xml version='1.0' encoding='utf-8'?>
<testsuites name="simctl verify (shard 1/2)" tests="{n}" failures="{f}" time="2.5">
  <testsuite name="simctl verify" tests="{n}" failures="{f}" errors="0" skipped="0" time="2.5">
    {cases}
  </testsuite>
</testsuites>
"""


def test_parts_merge_into_one_suite_with_summed_counts(tmp_path: Path) -> None:
    one = tmp_path / "1.xml"
    one.write_text(PART.format(n=2, f=1, cases='<testcase classname="simctl.scenarios" '
                               'name="a" time="1"/><testcase classname="simctl.scenarios" '
                               'name="b" time="1"><failure message="x" type="failed"/>'
                               '</testcase>'))
    two = tmp_path / "2.xml"
    two.write_text(PART.format(n=1, f=0, cases='<testcase classname="simctl.scenarios" '
                               'name="c" time="1"/>'))
    merge_junit([one, two], tmp_path / "all.xml", {"part 3/3": "exit 3: port taken"})
    root = ET.parse(tmp_path / "all.xml").getroot()
    assert (root.tag, root.get("name"), root.get("tests"), root.get("failures"),
            root.get("errors"), root.get("time")) == (
        "testsuites", "simctl verify", "4", "1", "1", "5.000")
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert [c.get("name") for c in suites[0].iter("testcase")] == ["part 3/3", "a", "b", "c"]
    assert suites[0].find("testcase/failure") is not None


def test_parallel_refuses_shard_keep_stack_and_offsets_past_the_range() -> None:
    runner = CliRunner()
    for args, message in (
        (["--shard", "1/2"], "not with --shard or --keep-stack"),
        (["--keep-stack"], "not with --shard or --keep-stack"),
        (["--port-offset", "28000"], "leaves no room for 3 stacks"),
    ):
        result = runner.invoke(main, ["verify", "--parallel", "3", *args, "slow-dyno"])
        assert result.exit_code == 2, result.output
        assert message in result.output
