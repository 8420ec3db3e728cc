"""A team's own app behind the simulated router: Procfile, project file, stack wiring.

docs/apps.md describes the feature; ``simctl up --app NAME=PATH`` is its entry point.
"""
