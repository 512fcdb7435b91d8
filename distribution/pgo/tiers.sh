# Sourced by refresh.sh and measure.sh: starts and stops the demo's two
# tiers (distribution/backends.yaml, then distribution/config.yaml, each
# with this directory's overlay: pprof, high synthetic rate, quiet logs) on
# their own ports, and reads what the measurements need from them.
#
# Ports: PGO_BASE_PORT (29000, below the ephemeral range) + fixed
# offsets, all on 127.0.0.1, so a demo (make run) on the default ports can
# run at the same time.

pgo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dist_dir=$(dirname "$pgo_dir")
base=${PGO_BASE_PORT:-29000}
export OTELCSP_LISTEN_HOST=127.0.0.1
export OTELCSP_OTLP_GRPC_PORT=$((base + 1)) OTELCSP_OTLP_HTTP_PORT=$((base + 2))
export OTELCSP_HEALTH_PORT=$((base + 3)) OTELCSP_BREAKER_PORT=$((base + 4))
export OTELCSP_METRICS_PORT=$((base + 5)) OTELCSP_PPROF_PORT=$((base + 6))
export OTELCSP_BACKEND_A_PORT=$((base + 11)) OTELCSP_BACKEND_B_PORT=$((base + 12))
export OTELCSP_BACKEND_C_PORT=$((base + 13)) OTELCSP_BACKENDS_HEALTH_PORT=$((base + 14))
export OTELCSP_BACKENDS_METRICS_PORT=$((base + 15)) OTELCSP_RED_PROMETHEUS_PORT=$((base + 16))
export OTELCSP_BACKENDS_PPROF_PORT=$((base + 17))

front_pid= backends_pid=

# wait_healthy PORT PID: until the health check on PORT answers 200, or
# fail when PID exits or after PGO_START_TIMEOUT seconds (60).
wait_healthy() {
	for _ in $(seq $((${PGO_START_TIMEOUT:-60} * 10))); do
		curl -fs -o /dev/null "http://127.0.0.1:$1/" && return 0
		kill -0 "$2" 2>/dev/null || { echo "pgo: process $2 exited before it was healthy (log: $log_dir)" >&2; return 1; }
		sleep 0.1
	done
	echo "pgo: no health check on port $1 after ${PGO_START_TIMEOUT:-60} s" >&2
	return 1
}

# start_tiers BINARY LOGDIR: the backends, once healthy the front (which
# starts generating at once).
start_tiers() {
	log_dir=$2
	"$1" --config "$dist_dir/backends.yaml" --config "$pgo_dir/backends.yaml" >"$log_dir/backends.log" 2>&1 &
	backends_pid=$!
	wait_healthy "$OTELCSP_BACKENDS_HEALTH_PORT" "$backends_pid" || return 1
	"$1" --config "$dist_dir/config.yaml" --config "$pgo_dir/front.yaml" >"$log_dir/front.log" 2>&1 &
	front_pid=$!
	wait_healthy "$OTELCSP_HEALTH_PORT" "$front_pid"
}

# stop_tiers: the front first (it drains into the backends), then the
# backends, as demo.sh does.
stop_tiers() {
	for pid in $front_pid $backends_pid; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	front_pid= backends_pid=
}

# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks
# (fields 14 and 15 of /proc/PID/stat; the command name in field 2 has no
# spaces here).
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# metric_sum PORT NAME: the sum over every series of the counter NAME on
# the own-metrics endpoint at PORT (0 when it has none yet).
metric_sum() {
	curl -fs "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%d\n", s}'
}

# wait_delivered TRACES TIMEOUT: until the front's synthetic receiver has
# generated TRACES traces and the backends have accepted every span of
# them the front took (generated minus refused: under load a full queue
# refuses some, and those are never delivered); fails after TIMEOUT
# seconds.
wait_delivered() {
	local generated target
	for _ in $(seq $(($2 * 2))); do
		generated=$(metric_sum "$OTELCSP_METRICS_PORT" otelcol_synthetic_traces_generated)
		if [ "$generated" -ge "$1" ]; then
			target=$(($(metric_sum "$OTELCSP_METRICS_PORT" otelcol_synthetic_spans_generated) -
				$(metric_sum "$OTELCSP_METRICS_PORT" otelcol_receiver_refused_spans)))
			[ "$(metric_sum "$OTELCSP_BACKENDS_METRICS_PORT" otelcol_receiver_accepted_spans)" -ge "$target" ] && return 0
		fi
		sleep 0.5
	done
	echo "pgo: the backends did not get every span within $2 s (log: $log_dir)" >&2
	return 1
}
