#!/usr/bin/env bash
# Compares two builds of the distribution on the demo workload: CPU
# seconds per span delivered, of the front and the backends tier together
# (distribution/config.yaml and backends.yaml with this directory's
# overlays), the two binaries taking turns, ROUNDS runs of each.
#
#   distribution/pgo/measure.sh BINARY_A BINARY_B        (names: NAME_A, NAME_B)
#
# Each run starts both tiers with the binary, lets the front's synthetic
# receiver generate PGO_TRACES traces at OTELCSP_PGO_RATE traces/s, and
# reads the two processes' utime + stime (/proc/<pid>/stat) once both are
# healthy and again once the backends have accepted every span generated;
# the CPU between the two readings divided by the spans the backends
# accepted between them is the run's figure, so start-up is left out.
# One line per run in Go benchmark format (benchstat -col /impl reads it):
#   BenchmarkDemoCPU/impl=NAME 1 <ns> ns/span <ns> front-ns/span <ns> backends-ns/span
#     <n> spans <n> refused-spans
# (refused: spans the front's full queue turned away when the machine was
# too loaded to keep up; a run with many is a run under other load.)
#
# Knobs: ROUNDS (6), PGO_TRACES (30000), OTELCSP_PGO_RATE (3000),
# PGO_BASE_PORT (29000), PGO_START_TIMEOUT (60 s for a tier to be healthy).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_a=${1:?usage: measure.sh BINARY_A BINARY_B}
bin_b=${2:?usage: measure.sh BINARY_A BINARY_B}
name_a=${NAME_A:-a} name_b=${NAME_B:-b}
rounds=${ROUNDS:-6}
export OTELCSP_PGO_TRACES=${PGO_TRACES:-30000}
export OTELCSP_PGO_RATE=${OTELCSP_PGO_RATE:-3000}
# shellcheck source=tiers.sh
. "$here/tiers.sh"
tick=$(getconf CLK_TCK)

work=$(mktemp -d)
trap 'stop_tiers; rm -rf "$work"' EXIT

# run NAME BINARY: one run, one result line.
run() {
	start_tiers "$2" "$work" || exit 1
	local f0 b0 s0 f1 b1 s1 refused
	f0=$(cpu_ticks "$front_pid") b0=$(cpu_ticks "$backends_pid")
	s0=$(metric_sum "$OTELCSP_BACKENDS_METRICS_PORT" otelcol_receiver_accepted_spans)
	wait_delivered "$OTELCSP_PGO_TRACES" 600 || exit 1
	s1=$(metric_sum "$OTELCSP_BACKENDS_METRICS_PORT" otelcol_receiver_accepted_spans)
	refused=$(metric_sum "$OTELCSP_METRICS_PORT" otelcol_receiver_refused_spans)
	f1=$(cpu_ticks "$front_pid") b1=$(cpu_ticks "$backends_pid")
	stop_tiers
	awk -v n="$1" -v t="$tick" -v f="$((f1 - f0))" -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v r="$refused" 'BEGIN {
		ns = 1e9 / t / s
		printf "BenchmarkDemoCPU/impl=%s 1 %.0f ns/span %.0f front-ns/span %.0f backends-ns/span %d spans %d refused-spans\n", n, (f + b) * ns, f * ns, b * ns, s, r
	}'
}

for i in $(seq "$rounds"); do
	echo "round $i/$rounds" >&2
	run "$name_a" "$bin_a"
	run "$name_b" "$bin_b"
done
