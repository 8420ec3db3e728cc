#!/bin/sh
# Entry point of the simctl image.
# With toxiproxy-server's flags (what stack/compose.yaml gives the toxiproxy service, so the
# same service definition fits ghcr.io/shopify/toxiproxy and this image), run the embedded
# Toxiproxy-compatible server: -host=H -port=N -config=F -seed=N (also "-flag value").
# With any other command (python -m simctl.platform ...), run that command.
set -eu
case "${1:-}" in
    -*) ;;
    "") set -- -host=0.0.0.0 ;;
    *) exec "$@" ;;
esac
args=""
while [ $# -gt 0 ]; do
    flag=${1#-}
    flag=${flag#-}
    shift
    case "$flag" in
        proxy-metrics|runtime-metrics) args="$args --$flag"; continue ;;
        *=*) name=${flag%%=*}; value=${flag#*=} ;;
        *) name=$flag; value=${1:-}; [ $# -gt 0 ] && shift ;;
    esac
    case "$name" in
        host|port|config|seed) args="$args --$name $value" ;;
        *) echo "simctl-entrypoint: unknown toxiproxy flag -$name" >&2; exit 2 ;;
    esac
done
# shellcheck disable=SC2086 # values are single words (addresses, paths, numbers)
exec python -m simctl toxiproxy serve $args
