"""On-call's view of a slow dyno: `simctl dyno set web.1 hang` under traffic, and both views
show the H12 rate rising and RouterRequestTimeouts firing. The dashboard runs in a real
terminal (tmux, 100x30) and the web page in headless Chromium; their captures are kept in
build/artifacts/ (dashboard-tmux.txt, web-view.png)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.views_helpers import running_stack

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"
SIMCTL = [sys.executable, "-m", "simctl"]


def _require(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists()
                                    else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (scripts/debian-packages.sh installs it)")
        pytest.skip(f"{binary} is not installed")
    return path


@pytest.fixture(scope="module")
def hanging_dyno() -> Iterator[list[str]]:
    """A fast stack with web.1 hanging under 50 req/s; yields the views' options."""
    with running_stack("viewse2e") as backend:
        state = backend.require_state()
        project = ["--project", backend.project]
        subprocess.run([*SIMCTL, "dyno", "set", "web.1", "hang", *project], check=True,
                       capture_output=True, timeout=30)
        traffic = subprocess.Popen([*SIMCTL, "traffic", "--rate", "50", "-d", "90", *project],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert any(p.role == "monitor" for p in state.processes.values())
            yield project  # the views read the stack's own monitor
        finally:
            traffic.terminate()
            traffic.wait(15)


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen in {timeout:.0f}s; last: {last!r}")


def test_dashboard_in_tmux_shows_h12_and_firing_alert(hanging_dyno: list[str]) -> None:
    tmux = _require("tmux")
    session = f"simctl-views-{os.getpid()}"
    # COLUMNS and LINES (set by the suite's conftest) would override the terminal's size
    command = " ".join(["env", "-u", "COLUMNS", "-u", "LINES", *SIMCTL, "dashboard",
                        *hanging_dyno])
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    command], check=True, env={**env, "TERM": "xterm-256color"})

    seen = [""]

    def screen_with(*texts: str):
        def check() -> str | None:
            seen[0] = subprocess.run([tmux, "capture-pane", "-p", "-t", session], text=True,
                                     capture_output=True).stdout
            return seen[0] if all(t in seen[0] for t in texts) else None
        return check

    try:
        overview = _wait_for(screen_with("FIRING: ", "H12 ", "RouterRequestTimeouts  firing"),
                             40, "a firing alert on the dashboard")
        subprocess.run([tmux, "send-keys", "-t", session, "4"], check=True)
        hcodes = _wait_for(screen_with("H-codes per minute", "H12"), 10, "the H-codes panel")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "dashboard-tmux.txt").write_text(f"{overview}\n--- key 4 ---\n{hcodes}")
        assert "up " in overview.splitlines()[1]
        assert max(len(line) for line in overview.splitlines()) <= 100
        subprocess.run([tmux, "send-keys", "-t", session, "q"], check=True)
        _wait_for(lambda: subprocess.run([tmux, "has-session", "-t", session],
                                         capture_output=True).returncode != 0,
                  10, "the dashboard quitting on q")
    except AssertionError:
        print(f"last screen:\n{seen[0]}")
        raise
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


def test_web_page_in_chromium_shows_charts_and_firing_alert(hanging_dyno: list[str]) -> None:
    driver_path = _require("chromedriver")
    chromium = _require("chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    web = subprocess.Popen([*SIMCTL, "web", "--port", "0", *hanging_dyno],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        line = web.stdout.readline()  # "web view of ... on http://127.0.0.1:PORT/"
        assert " on http://127.0.0.1:" in line, (line, web.stderr.read() if web.poll() else "")
        url = line.rsplit(" ", 1)[1].strip()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.get(url)

        def ready() -> bool:
            firing = driver.find_elements(
                By.CSS_SELECTOR, 'tr.firing[data-alert="RouterRequestTimeouts"]')
            points = {key: int(driver.find_element(By.ID, f"chart-{key}")
                               .get_attribute("data-points") or 0)
                      for key in ("requests", "hcodes", "latency")
                      if driver.find_elements(By.ID, f"chart-{key}")}
            return bool(firing) and len(points) == 3 and all(points.values())

        _wait_for(ready, 40, "charts with data and a firing RouterRequestTimeouts")
        time.sleep(1.5)  # one more refresh, so the screenshot shows settled charts
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "web-view.png"))
        summary = driver.find_element(By.ID, "summary").text
        assert "H12 per minute" in summary
        assert "RouterRequestTimeouts" in summary
        assert driver.find_element(By.ID, "logs").text.count("router.") > 10
    finally:
        if driver is not None:
            driver.quit()
        web.terminate()
        web.communicate(timeout=15)  # also closes the pipes
