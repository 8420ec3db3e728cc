#!/usr/bin/env bash
# Set up .venv with the test extra, then run lint and the whole test suite (slow tests too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check simctl tests bench
.venv/bin/python -m pytest -p no:cacheprovider "$@"
