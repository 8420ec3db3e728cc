#!/usr/bin/env bash
# Set up .venv with the test extra, then run lint, the type check (mypy), the whole test suite
# (slow tests too) and every scenario of the catalogue unattended (`simctl verify --all`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check simctl tests bench
.venv/bin/mypy simctl  # configured in pyproject.toml ([tool.mypy])
.venv/bin/python -m pytest -p no:cacheprovider "$@"
# The catalogue, on its own stack (a project name and port offset no test uses).
reports=${SIMCTL_REPORTS:-build/reports}
mkdir -p "$reports"
SIMCTL_STATE_DIR=${SIMCTL_STATE_DIR:-$(mktemp -d)} .venv/bin/simctl verify --all \
    --project ci-verify --port-offset 4000 \
    --junit "$reports/verify.xml" --json "$reports/verify.json"
