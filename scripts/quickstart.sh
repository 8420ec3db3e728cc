#!/usr/bin/env bash
# Set up .venv and run simctl's main job on the local backend (no Docker needed).
# Extra arguments are passed to simctl instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -gt 0 ]; then
    exec .venv/bin/simctl "$@"
fi
exec .venv/bin/simctl toxiproxy serve
