"""A whole hidden game day with a scripted responder, then its report (docs/drills.md,
"Scoring" and "Reports"): the report's times, steps, hint and timeline must match what
the script did, and the HTML page must render its charts in Chromium. The screenshot is
kept at build/artifacts/drill-report.png."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simctl.pytest_plugin import free_port_offset

pytestmark = pytest.mark.slow
SIM = [sys.executable, "-m", "simctl"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"


def _require(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists()
                                    else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (scripts/debian-packages.sh installs it)")
        pytest.skip(f"{binary} is not installed")
    return path


def _wait(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_scripted_hidden_drill_and_its_report(tmp_path: Path) -> None:
    project = f"drillrep{os.getpid()}"
    env = {**os.environ, "SIMCTL_STATE_DIR": str(tmp_path / "state"), "SIMCTL_PROJECT": project,
           "SIMCTL_RESPONDER": "ana", "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SIMCTL_DRILL_TOKEN", None)

    def sim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SIM, *args], env=env, text=True, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    # more slots than the default four: other stacks on a shared machine may hold those
    offset = free_port_offset(tuple(5000 + 1500 * i for i in range(8)))
    up = sim("up", "--timing", "fast", "--port-offset", str(offset))
    assert up.returncode == 0, up.stderr
    driver = None
    try:
        started = sim("drill", "start", "slow-dyno", "--hidden", "--json", "--max-duration",
                      "3m")
        assert started.returncode == 0, started.stdout + started.stderr
        drill, token = json.loads(started.stdout)["drill"], json.loads(started.stdout)["token"]
        began = time.time()

        def firing() -> bool:
            alerts = json.loads(sim("alerts", "--json").stdout or "[]")
            return any(a["labels"].get("alertname") == "RouterRequestTimeouts"
                       and a["state"] == "firing" for a in alerts)

        _wait(firing, 60, "RouterRequestTimeouts firing")
        # the page links its runbook by the symptom, not by the hidden scenario's id
        table = sim("alerts")
        assert "h12-request-timeouts" in table.stdout
        assert "slow-dyno" not in table.stdout
        refused = sim("report")  # hidden and running: the report would name the fault
        assert refused.returncode == 8
        assert "running and hidden" in refused.stderr
        script = [("drill", "ack"), ("drill", "hint"),
                  ("logs", "--dyno", "router", "-n", "300"),
                  ("metrics", "router-1", "--grep", "router_requests_total"),
                  ("sync", "state", "web.1", "down")]
        for args in script:
            done = sim(*args)
            assert done.returncode == 0, (args, done.stderr)
        mitigated = time.time()

        def ended() -> bool:
            done = sim("drill", "status", "--json")
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)["status"] != "running"

        _wait(ended, 90, "the drill to end on recovery")
        out = tmp_path / "report"
        out.mkdir()
        made = sim("report", drill, "--html", str(out / "r.html"), "--json",
                   str(out / "r.json"), "--md", str(out / "r.md"), "--review",
                   str(out / "pir.md"))
        assert made.returncode == 0, made.stderr
        report = json.loads((out / "r.json").read_text())
        score, timeline = report["score"], report["timeline"]
        assert report["drill"]["end_reason"] == "recovered"
        # times: alert, then ack (the script acks once it saw the alert), then mitigation
        assert 0 < score["time_to_alert"] < 45
        assert score["time_to_ack"] >= score["time_to_alert"] - 3  # the conductor polls
        assert score["time_to_ack"] < score["time_to_mitigate"]
        assert score["time_to_mitigate"] < mitigated - began + 30
        assert score["recovered"] is True
        assert score["hints"] == 1
        assert score["hint_penalty_s"] > 0
        assert score["followed"] == ["router-lines", "h12-metric", "take-dyno-out"]
        assert score["skipped"] == ["dyno-view"]
        assert "simctl alerts --json" in [g["command"] for g in score["gaps"]]
        assert score["failed_requests"] > 0
        assert 0 < score["breach_minutes"] < 2
        assert 50 <= score["overall"] <= 100
        # the timeline holds what the script did, in its order
        commands = [e for e in timeline if e["kind"] == "command" and e["who"] == "ana"
                    and e["argv"][:1] != ["alerts"] and e["argv"][1:2] != ["status"]]
        assert [(e["argv"][:2], e["matched_step"]) for e in commands] == [
            (["report"], None), (["drill", "ack"], None), (["drill", "hint"], None),
            (["logs", "--dyno"], "router-lines"), (["metrics", "router-1"], "h12-metric"),
            (["sync", "state"], "take-dyno-out")]
        kinds = [e["kind"] for e in timeline]
        assert kinds.index("fault_applied") < kinds.index("ack") < kinds.index("recovery_holding")
        assert [e["who"] for e in timeline if e["kind"] == "hint"] == ["ana"]
        assert sum(e["kind"] == "sli" for e in timeline) > 10
        review = (out / "pir.md").read_text()
        assert "latency=4000 on web.1" in review
        assert "## Action items" in review

        # the page renders its charts in Chromium, from the file alone
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By

        options = webdriver.ChromeOptions()
        options.binary_location = _require("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,2000"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(_require("chromedriver")), options=options)
        driver.get((out / "r.html").as_uri())
        traces = _wait(lambda: driver.find_elements(
            By.CSS_SELECTOR, "#drill-chart .scatterlayer .trace"), 20, "the charts")
        assert len(traces) >= 8  # success, p50, p99, H12, drops and the marks
        assert driver.find_element(By.ID, "overall").text.startswith(str(score["overall"]))
        assert "take-dyno-out" in driver.find_element(By.ID, "timeline").text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "drill-report.png"))
        assert token  # printed once by `drill start`; not needed once the drill is over
    finally:
        if driver is not None:
            driver.quit()
        sim("down")
