"""The files a real Prometheus reads: stack/alerts.yaml passes `promtool check rules`, as
does its `--timing fast` version, and the prometheus.yml that `up --prometheus` writes
passes `promtool check config` (which loads the rule file it names).

promtool comes with Debian's prometheus package (.ci/run installs it). Without it these
tests skip, except in CI (CI=true) or with SIMCTL_REQUIRE_PROMTOOL=1, where a missing
promtool is a failure.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from simctl.backends import prometheus
from simctl.backends.state import ProcessState, ProjectState

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "stack" / "alerts.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    required = (os.environ.get("CI", "").lower() == "true"
                or os.environ.get("SIMCTL_REQUIRE_PROMTOOL") == "1")
    if required:
        pytest.fail("promtool is missing (Debian: apt-get install prometheus; .ci/run does)")
    pytest.skip("promtool is not installed (Debian's prometheus package)")


def check(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_alert_rules_pass_promtool(promtool: str) -> None:
    assert RULES.is_file(), "stack/alerts.yaml is missing"
    result = check(promtool, "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_fast_rules_divide_every_duration(promtool: str, tmp_path: Path) -> None:
    fast = tmp_path / "alerts.yaml"
    fast.write_text(prometheus.scaled_rules(RULES.read_text(), 10))
    result = check(promtool, "rules", str(fast))
    assert result.returncode == 0, result.stdout + result.stderr
    source = yaml.safe_load(RULES.read_text())["groups"]
    scaled = yaml.safe_load(fast.read_text())["groups"]
    assert [r["alert"] for g in scaled for r in g["rules"]] == \
        [r["alert"] for g in source for r in g["rules"]]
    timeouts = next(r for g in scaled for r in g["rules"]
                    if r["alert"] == "RouterRequestTimeouts")
    assert timeouts["for"] == "3s"  # 30s / 10
    assert "[6s]" in timeouts["expr"]  # [1m] / 10


def test_scaled_durations() -> None:
    text = ("groups:\n- name: g\n  rules:\n  - alert: A\n"
            "    expr: rate(x[5m]) > 0 and y offset 1h\n    for: 90s\n")
    rule = yaml.safe_load(prometheus.scaled_rules(text, 10))["groups"][0]["rules"][0]
    assert rule["for"] == "9s"
    assert rule["expr"] == "rate(x[30s]) > 0 and y offset 6m"
    assert prometheus.scaled_rules(text.replace("90s", "1s"), 10).count("100ms") == 1


def state_with_services(tmp_path: Path, timing: str) -> ProjectState:
    os.environ["SIMCTL_STATE_DIR"] = str(tmp_path)  # restored by tests/conftest.py
    state = ProjectState("promcheck", "local", timing, 0, "http://127.0.0.1:8474", True)
    state.processes = {
        "router-1": ProcessState("router-1", 1, 1, 0.0, [], "router",
                                 "http://127.0.0.1:7221/health",
                                 {"instance": "router.1", "admin": "http://127.0.0.1:7221"}),
        "dyno-1": ProcessState("dyno-1", 2, 2, 0.0, [], "dyno", "http://127.0.0.1:7401/health",
                               {"dyno": "web.1", "app": "web"}),
        "toxiproxy": ProcessState("toxiproxy", 3, 3, 0.0, [], "toxiproxy",
                                  "http://127.0.0.1:8474/version"),
    }
    return state


@pytest.mark.parametrize(("timing", "every"), [("fast", "1s"), ("heroku", "5s")])
def test_generated_config_passes_promtool(promtool: str, tmp_path: Path, timing: str,
                                          every: str) -> None:
    state = state_with_services(tmp_path, timing)
    spec = prometheus.local_spec(state, "/usr/bin/prometheus", ROOT / "stack")
    config_path = Path(spec.command[1].split("=", 1)[1])
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = yaml.safe_load(config_path.read_text())
    assert config["global"]["scrape_interval"] == every
    assert config["global"]["evaluation_interval"] == every
    assert config["global"]["scrape_timeout"] == {"1s": "800ms", "5s": "4000ms"}[every]
    rules = Path(config["rule_files"][0])
    assert rules == RULES if timing == "heroku" else rules.parent == config_path.parent
    jobs = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
    assert set(jobs) == {"router", "dyno"}  # the fault plane serves no /metrics
    assert jobs["router"][0] == {"targets": ["127.0.0.1:7221"],
                                 "labels": {"instance": "router.1",
                                            "__metrics_path__": "/metrics"}}
    assert spec.health_url.endswith("/-/ready")
    assert "--web.listen-address=127.0.0.1:7900" in spec.command
    result = check(promtool, "config", str(config_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_targets_follow_the_evaluator() -> None:
    command = ["python", "-m", "simctl.platform", "monitor",
               "--target", "router/router.1=http://router-1:7221/metrics",
               "--target", "drain/main=http://drain-main:7501/metrics"]
    assert prometheus.monitor_targets(command) == [
        prometheus.Target("router", "router.1", "router-1:7221", "/metrics"),
        prometheus.Target("drain", "main", "drain-main:7501", "/metrics"),
    ]
