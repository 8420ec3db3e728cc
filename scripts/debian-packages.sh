#!/usr/bin/env bash
# Install the Debian packages the tests need, when missing: chromium and chromium-driver
# (the web view's browser test), prometheus (a real Prometheus beside the views' tests),
# tmux (the dashboard in a real terminal).
# Usage: scripts/debian-packages.sh [PACKAGE...] (default: the four above).
set -euo pipefail
packages=("$@")
[ ${#packages[@]} -eq 0 ] && packages=(chromium chromium-driver prometheus tmux)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing ${missing[*]}" >&2
# Start no service a package brings (prometheus's own would sit on :9090): policy-rc.d
# exit 101 tells invoke-rc.d to leave services alone; removed again when one was added.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
