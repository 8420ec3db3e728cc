"""verify gives an alert its rule's `for` and two intervals past the symptom window."""

from simctl.monitor.rules import load_rules
from simctl.scenario.alert_watch import _rule_lags


def test_an_alert_may_fire_its_rules_for_and_two_intervals_after_the_window() -> None:
    fast, heroku = _rule_lags("fast"), _rule_lags("heroku")
    written = {r.name: r.duration for r in load_rules().rules()}  # heroku numbers
    assert set(fast) == set(written)
    for name, duration in written.items():
        assert heroku[name] == duration + 2 * 5.0
        assert fast[name] == duration / 10 + 2 * 1.0
    assert fast["RouterRequestTimeouts"] < heroku["RouterRequestTimeouts"]
