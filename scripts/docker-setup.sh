#!/usr/bin/env bash
# Make this machine able to run `simctl up --backend compose` (Debian, run as root):
#   1. install docker.io, docker-compose and debootstrap with apt-get when missing
#      (and python3-venv when .venv must be made and Python has no ensurepip);
#   2. make .venv with the docker extra (scripts/setup.sh docker) unless $SIMCTL already
#      runs and the Docker SDK imports: checked before the long steps, not after them;
#   3. start dockerd in the background when `docker info` fails (log: /tmp/dockerd.log);
#   4. build the base image simctl-base:bookworm with debootstrap when it does not exist
#      (there is no image registry here, so no image can be pulled);
#   5. `simctl stack build --base simctl-base:bookworm` (wheelhouse + image simctl:latest).
# Safe to run again: every step is skipped when already done. Each step prints its time.
# Env: SIMCTL_BASE_IMAGE (default simctl-base:bookworm), DEBIAN_MIRROR, SIMCTL_SKIP_BUILD=1,
#      SIMCTL (default .venv/bin/simctl: another simctl is used as it is, never installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin:/sbin"  # dockerd and debootstrap live there; a user's PATH may lack it
BASE=${SIMCTL_BASE_IMAGE:-simctl-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SIMCTL=${SIMCTL:-.venv/bin/simctl}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

step_start=0
step() { step_start=$(date +%s); echo "== $*"; }
done_step() { echo "   done in $(( $(date +%s) - step_start ))s"; }

step "packages (docker.io docker-compose debootstrap)"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "   installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
done_step

step "python environment ($SIMCTL with the docker extra)"
if [ "$SIMCTL" = ".venv/bin/simctl" ]; then
    if [ -x .venv/bin/simctl ] && .venv/bin/python -c "import simctl, docker" >/dev/null 2>&1; then
        echo "   exists"
    else
        echo "   scripts/setup.sh docker"
        bash scripts/setup.sh docker
    fi
elif ! "$SIMCTL" --version >/dev/null 2>&1; then
    echo "error: SIMCTL=$SIMCTL does not run" >&2
    exit 1
fi
done_step

step "docker engine"
if ! docker info >/dev/null 2>&1; then
    echo "   starting dockerd (log: /tmp/dockerd.log)"
    # setsid: dockerd outlives this script and is not in its process group.
    $SUDO setsid dockerd >/tmp/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "dockerd did not answer within 60s; last lines of /tmp/dockerd.log:" >&2
        tail -n 20 /tmp/dockerd.log >&2 || true
        exit 1
    fi
fi
done_step

step "base image $BASE"
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    root=$(mktemp -d /tmp/simctl-base.XXXXXX)
    trap '$SUDO rm -rf "$root"' EXIT
    $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$root" "$MIRROR" >/tmp/debootstrap.log 2>&1 \
        || { echo "debootstrap failed; see /tmp/debootstrap.log" >&2; tail -n 20 /tmp/debootstrap.log >&2; exit 1; }
    $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    $SUDO tar -C "$root" -c . | docker import - "$BASE" >/dev/null
    $SUDO rm -rf "$root"
    trap - EXIT
else
    echo "   exists"
fi
done_step

if [ "${SIMCTL_SKIP_BUILD:-}" = "1" ]; then
    exit 0
fi
step "simctl image (simctl stack build --base $BASE)"
"$SIMCTL" stack build --base "$BASE"
done_step
