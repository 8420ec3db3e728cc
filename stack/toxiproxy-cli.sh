#!/bin/sh
# /toxiproxy-cli in the simctl image: just enough of toxiproxy-cli for the toxiproxy
# service's healthcheck (`/toxiproxy-cli --host URL list`), which in ghcr.io/shopify/toxiproxy
# runs the real toxiproxy-cli, so one healthcheck fits both images (docs/docker.md).
# Exit 0 when the API lists its proxies, 1 otherwise; any other command exits 2.
set -eu
host=${TOXIPROXY_URL:-http://localhost:8474}
command=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--host|-host) host=${2:-}; shift 2 ;;
        --host=*|-host=*|-h=*) host=${1#*=}; shift ;;
        list|l|li|ls) command=list; shift ;;
        *) echo "toxiproxy-cli (simctl image): only 'list' is available" >&2; exit 2 ;;
    esac
done
[ "$command" = list ] || { echo "toxiproxy-cli (simctl image): only 'list' is available" >&2; exit 2; }
exec python -m simctl.platform.probe "$host/proxies"
