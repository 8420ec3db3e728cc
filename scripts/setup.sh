#!/usr/bin/env bash
# Create .venv (if missing) and install simctl into it, with the extras named as arguments:
#   scripts/setup.sh           simctl alone (the local backend)
#   scripts/setup.sh docker    and the Docker SDK, for `simctl up --backend compose`
#   scripts/setup.sh test      and what the tests need (lint, mypy, pytest, the Docker SDK too)
# Several extras may be given (`scripts/setup.sh test docker`); extras installed before stay.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=""
for extra in "$@"; do
    case "$extra" in
        test|docker|fast) extras="${extras:+$extras,}$extra" ;;
        *) echo "error: unknown extra '$extra' (choose from: test, docker, fast)" >&2; exit 2 ;;
    esac
done
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}" 2>&1 \
    | grep -v -E "^(WARNING: Location|  )" || true
.venv/bin/python -c "import simctl"
