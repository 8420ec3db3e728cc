#!/usr/bin/env bash
# Set up .venv and run simctl's main job on the local backend (no Docker needed): start
# the simulated platform and show where to point curl. Extra arguments are passed to
# simctl instead (e.g. `bash scripts/quickstart.sh verify --all`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -gt 0 ]; then
    exec .venv/bin/simctl "$@"
fi
.venv/bin/simctl up --timing fast
cat <<'HINT'

Try it:
  curl http://web.localhost:21201/                       # answered by a dyno, through router.1
  .venv/bin/simctl logs --tail                           # the router line of that request (Ctrl-C stops)
  .venv/bin/simctl dyno set web.1 hang                   # break something: H12 in 3 s
  .venv/bin/simctl traffic --rate 50 --duration 5        # success ratio, latency, H-codes
  .venv/bin/simctl verify slow-dyno --keep-stack         # rehearse an incident with its runbook
  .venv/bin/simctl down                                  # stop everything
HINT
