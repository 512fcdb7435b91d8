#!/usr/bin/env bash
# Refreshes distribution/pgo/default.pgo, the CPU profile `make build`
# compiles the distribution with (go build -pgo): runs the demo's two tiers
# (distribution/backends.yaml and config.yaml, with this directory's
# overlays: the synthetic receiver at OTELCSP_PGO_RATE traces/s, the pprof
# extension) under load, takes a CPU profile of each tier at the same
# time, and merges the two into default.pgo.
#
#   distribution/pgo/refresh.sh [BINARY]     (make pgo-profile)
#
# BINARY defaults to distribution/_build/otelcsp. A binary built with the
# previous profile is fine: Go's PGO is meant to be refreshed from
# optimised builds. Knobs: PGO_SECONDS (30) profiled, after PGO_WARMUP (5)
# seconds of load; OTELCSP_PGO_RATE (5000 traces/s); PGO_BASE_PORT (29000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/distribution/_build/otelcsp}
seconds=${PGO_SECONDS:-30}
warmup=${PGO_WARMUP:-5}
[ -x "$bin" ] || { echo "refresh.sh: no binary at $bin (make build first)" >&2; exit 1; }
# shellcheck source=tiers.sh
. "$here/tiers.sh"

work=$(mktemp -d)
trap 'stop_tiers; rm -rf "$work"' EXIT
start_tiers "$bin" "$work"
sleep "$warmup"
profile() { # PORT OUT
	curl -fsS -o "$2" "http://127.0.0.1:$1/debug/pprof/profile?seconds=$seconds"
}
profile "$OTELCSP_PPROF_PORT" "$work/front.pprof" &
front_profile=$!
profile "$OTELCSP_BACKENDS_PPROF_PORT" "$work/backends.pprof"
wait "$front_profile"
echo "refresh.sh: spans delivered to the backends: $(metric_sum "$OTELCSP_BACKENDS_METRICS_PORT" otelcol_receiver_accepted_spans)" >&2
go tool pprof -proto "$work/front.pprof" "$work/backends.pprof" >"$work/default.pgo"
mv "$work/default.pgo" "$here/default.pgo"
echo "refresh.sh: wrote $here/default.pgo ($(wc -c <"$here/default.pgo") bytes)" >&2
