"""`${timeouts...}` in probes: the values of the run's timing profile, checked under both
(docs/scenarios.md, "Timing-profile values")."""

from __future__ import annotations

from pathlib import Path

import pytest

from simctl.scenario import expressions
from simctl.scenario.loader import lint_text
from simctl.scenario.timing_vars import variables

FIXTURES = Path(__file__).parents[1] / "fixtures"
REGEX = r'log /code=H12 .* service=${timeouts.first_byte_s}\d{3}ms/ in drain.main'


def test_values_follow_the_profile() -> None:
    fast, heroku = variables("fast"), variables("heroku")
    assert (fast["timeouts.first_byte_ms"], heroku["timeouts.first_byte_ms"]) == ("3000", "30000")
    assert (fast["timeouts.connect_s"], heroku["timeouts.connect_s"]) == ("0.5", "5")
    assert heroku["timeouts.idle_ms"] == "55000"


def test_a_regex_and_a_threshold_take_the_profiles_values() -> None:
    fast, heroku = expressions.parse(REGEX), expressions.parse(REGEX, "heroku")
    assert isinstance(fast, expressions.LogProbe)
    assert isinstance(heroku, expressions.LogProbe)
    assert fast.text == heroku.text == REGEX  # shown as written
    line = 'at=error code=H12 desc="Request timeout" dyno=web.1 connect=0ms service=30004ms'
    assert heroku.matches(line)
    assert not fast.matches(line)
    assert fast.matches(line.replace("30004ms", "3004ms"))
    threshold = expressions.parse("http.p99_ms < ${timeouts.first_byte_ms}", "heroku")
    assert isinstance(threshold, expressions.HttpProbe)
    assert threshold.compare.value == 30000


def test_an_unknown_name_is_a_lint_error_with_a_suggestion() -> None:
    text = (FIXTURES / "scenarios" / "valid" / "slow-drain.yaml").read_text().replace(
        "http.success_ratio < 0.5", "'http.p99_ms > ${timeouts.first_bite_ms}'")
    result = lint_text(text, FIXTURES / "scenarios" / "valid" / "slow-drain.yaml",
                       runbooks=FIXTURES / "runbooks")
    [issue] = result.issues
    assert issue.path == "abort.when[0]"
    assert issue.message == ("unknown timing value '${timeouts.first_bite_ms}'; did you mean "
                             "'timeouts.first_byte_ms'?")


def test_with_timing_swaps_the_values_of_every_probe() -> None:
    text = (FIXTURES / "scenarios" / "valid" / "slow-drain.yaml").read_text().replace(
        "http.success_ratio < 0.5", "'http.p99_ms > ${timeouts.first_byte_ms}'")
    result = lint_text(text, FIXTURES / "scenarios" / "valid" / "slow-drain.yaml",
                       runbooks=FIXTURES / "runbooks")
    assert result.scenario is not None, result.issues
    [fast] = result.scenario.abort.when
    [heroku] = result.scenario.with_timing("heroku").abort.when
    assert isinstance(fast, expressions.HttpProbe)
    assert isinstance(heroku, expressions.HttpProbe)
    assert (fast.compare.value, heroku.compare.value) == (3000, 30000)


@pytest.mark.parametrize("profile", ["fast", "heroku"])
def test_every_catalogue_probe_parses_under_both_profiles(profile: str) -> None:
    from simctl.scenario import catalog
    from simctl.scenario.loader import load_scenario

    for path in catalog.scenario_files():
        load_scenario(path).with_timing(profile)
