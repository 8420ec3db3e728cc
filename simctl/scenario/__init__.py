"""Scenario files: the model, the position-tracking loader, probe expressions, the catalog.

Entry points: ``simctl.scenario.loader.load_scenario`` (or ``lint_scenario``),
``simctl.scenario.catalog`` (where files live), ``simctl.scenario.expressions.parse``.
This module imports nothing, so its submodules can import each other freely.
"""
