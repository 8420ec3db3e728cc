#!/usr/bin/env bash
# Create .venv (if missing) and install simctl into it; with "test", the test extra too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}" 2>&1 \
    | grep -v -E "^(WARNING: Location|  )" || true
.venv/bin/python -c "import simctl" 
