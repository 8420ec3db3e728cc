"""`simctl verify --parallel N`: N stacks side by side, each running a shard of the
selection (docs/ci.md, "Several stacks on one machine").

Each part is a child `simctl verify --shard I/N` with its own project name
(`PROJECT-pI`) and port offset (`--port-offset` + 1500 x (I-1): stacks that far apart
share no port), writing its own JUnit and JSON files into a temporary folder; they are
merged into the files asked for. A child's output is printed whole when it ends, so
parts do not interleave. The exit code is the worst of the parts' (0 only if each
passed); an interrupt stops every child, which stops its own stack.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click

STRIDE = 1500  # the ports of one stack span less than this (simctl.pytest_plugin.SLOTS)
MAX_PARALLEL = 8
COUNTS = ("tests", "failures", "errors", "skipped")


def run(parts: int, child_args: list[str], project: str, port_offset: int,
        junit_path: str | None, json_path: str | None) -> int:
    """Run the parts, merge their files; the exit code of the whole run."""
    with tempfile.TemporaryDirectory(prefix="simctl-parallel-") as folder:
        children = []
        for index in range(1, parts + 1):
            argv = [sys.executable, "-m", "simctl", "verify", *child_args,
                    "--shard", f"{index}/{parts}", "--project", f"{project}-p{index}",
                    "--port-offset", str(port_offset + STRIDE * (index - 1)),
                    "--junit", f"{folder}/{index}.xml", "--json", f"{folder}/{index}.json"]
            log = open(f"{folder}/{index}.log", "w+")  # noqa: SIM115 (closed below)
            children.append((index, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                     text=True), log))
        codes, lost = [], {}
        try:
            for index, child, log in children:
                codes.append(child.wait())
                log.seek(0)
                output = log.read()
                log.close()
                click.echo(f"--- part {index}/{parts} (project {project}-p{index}, exit "
                           f"{child.returncode}) ---")
                click.echo(output, nl=False)
                if child.returncode and not Path(folder, f"{index}.xml").exists():
                    last = (output.strip().splitlines() or [""])[-1]
                    lost[f"part {index}/{parts}"] = f"exit {child.returncode}: {last}"
        except KeyboardInterrupt:
            for _, child, _ in children:  # each child rolls back and stops its stack
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            for _, child, _ in children:
                child.wait()
            raise
        xml_files = [Path(folder, f"{i}.xml") for i in range(1, parts + 1)]
        if junit_path:
            merge_junit([p for p in xml_files if p.exists()], Path(junit_path), lost)
        if json_path:
            journals = [json.loads(Path(folder, f"{i}.json").read_text())
                        for i in range(1, parts + 1) if Path(folder, f"{i}.json").exists()]
            Path(json_path).write_text(json.dumps({"parts": journals}, indent=2))
    return max(codes, default=0) if any(codes) else 0


def merge_junit(files: list[Path], target: Path, lost: dict[str, str] | None = None) -> None:
    """One <testsuites> holding every part's test cases in one suite, counts summed; a part
    that ended without its file (its stack did not start) is an error test case."""
    cases: list[ET.Element] = []
    totals = dict.fromkeys(COUNTS, 0)
    seconds = 0.0
    name = "simctl verify"
    for part, message in (lost or {}).items():
        case = ET.Element("testcase", classname="simctl.parts", name=part, time="0")
        ET.SubElement(case, "error", message=message, type="error")
        cases.append(case)
        totals["tests"] += 1
        totals["errors"] += 1
    for path in files:
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            cases += list(suite.iter("testcase"))
            for key in COUNTS:
                totals[key] += int(suite.get(key, "0"))
            seconds += float(suite.get("time", "0") or 0)
    counts: dict[str, Any] = {k: str(v) for k, v in totals.items()}
    counts["time"] = f"{seconds:.3f}"
    root = ET.Element("testsuites", name=name, **counts)
    suite = ET.SubElement(root, "testsuite", name=name, **counts)
    suite.extend(cases)
    ET.indent(root)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
