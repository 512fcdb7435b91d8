#!/usr/bin/env bash
# fanout-process.sh: CPU seconds per span of a front collector (the built
# otelcsp binary) that receives OTLP from telemetrygen and exports it either
# through the fanout to three loopback sinks (impl=fanout3) or through the
# core otlp exporter to one (impl=otlp). The two fronts take turns, ROUNDS
# times; each run sends the same spans and reads the front's own CPU time
# (utime + stime, /proc/<pid>/stat) from just before the load starts to the
# moment its exporter has sent every span. The sinks are one otelcsp
# process with three OTLP receivers, shared by both variants, outside the
# measurement.
#
# Usage (from the repository root, after `make build`):
#   bench/fanout-process.sh                    # defaults below
#   ROUNDS=8 DURATION=20s bench/fanout-process.sh
# Prints one line per run in Go benchmark format (so benchstat reads it):
#   BenchmarkFanoutProcess/impl=fanout3  1  <ns of CPU per span> ns/span ...
# and, at the end, the benchstat summary when the tools module is there.
#
# Knobs (environment):
#   OTELCSP_BINARY  the front and sink binary (distribution/_build/otelcsp)
#   ROUNDS          runs of each variant, alternating (6)
#   DURATION        how long telemetrygen sends, each run, in seconds (30s)
#   WORKERS         telemetrygen workers (16)
#   RATE            spans a second per worker (2500): below what telemetrygen
#                   and the front sustain, so that the SDK drops nothing and
#                   both fronts get the same load
#   CHILD_SPANS     child spans per trace (9: 10 spans a trace)
#   BATCH_SIZE      spans per telemetrygen request (500)
#   COMPRESSION     the front's exporter compression (none; gzip is the default
#                   of both exporters, and its cost dilutes the difference)
#   QUEUE_BATCH     if set (to anything), both fronts' queues batch as the
#                   shipped agent config does (deploy/: sizer items, 2,048 to
#                   8,192 spans, flush_timeout 200ms), so that each export
#                   carries several received requests; unset, requests go out
#                   as they came
#   BASE_PORT       first of the ports used on 127.0.0.1 (47000)
#   OUT             where the results go (bench/results/fanout-process.txt)
#   PROFILE_DIR     if set, each front runs the pprof extension and a CPU profile
#                   of the middle of each run goes there (<impl>-<n>.pprof; read
#                   with go tool pprof -top distribution/_build/otelcsp FILE);
#                   profiling costs CPU, so those runs' figures are not clean
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${OTELCSP_BINARY:-$ROOT/distribution/_build/otelcsp}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-30s}
RATE=${RATE:-2500}
WORKERS=${WORKERS:-16}
CHILD_SPANS=${CHILD_SPANS:-9}
BATCH_SIZE=${BATCH_SIZE:-500}
COMPRESSION=${COMPRESSION:-none}
BASE_PORT=${BASE_PORT:-47000}
OUT=${OUT:-$ROOT/bench/results/fanout-process.txt}
PROFILE_DIR=${PROFILE_DIR:-}
QUEUE_BATCH=${QUEUE_BATCH:-}
TELEMETRYGEN=${TELEMETRYGEN:-github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0}

[ -x "$BIN" ] || { echo "fanout-process.sh: no binary at $BIN (run make build, or set OTELCSP_BINARY)" >&2; exit 1; }

SINK_PORTS=($((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)))
FRONT_PORT=$((BASE_PORT + 10))
FRONT_METRICS=$((BASE_PORT + 11))
FRONT_PPROF=$((BASE_PORT + 13))
SINK_METRICS=$((BASE_PORT + 12))
TICK=$(getconf CLK_TCK)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	local rc=$?
	if [ $rc -ne 0 ]; then
		for log in "$WORK"/*.log; do [ -f "$log" ] && { echo "== $log" >&2; tail -5 "$log" >&2; }; done
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

# telemetrygen, built once (go run would rebuild, or at least re-check, on
# every run).
echo "building telemetrygen ($TELEMETRYGEN)" >&2
GOBIN=$WORK/bin go install "$TELEMETRYGEN"
TGEN=$WORK/bin/telemetrygen

telemetry() { # $1: metrics port
	cat <<EOF
  telemetry:
    logs:
      level: warn
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $1
EOF
}

# The sinks: three OTLP receivers into one exporter that writes nothing.
{
	echo "receivers:"
	for i in 0 1 2; do
		printf '  otlp/%d:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:%d\n' "$i" "${SINK_PORTS[$i]}"
	done
	cat <<EOF
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  pipelines:
    traces:
      receivers: [otlp/0, otlp/1, otlp/2]
      exporters: [debug]
EOF
	telemetry "$SINK_METRICS"
} > "$WORK/sinks.yaml"

front() { # $1: impl
	if [ -n "$PROFILE_DIR" ]; then
		printf 'extensions:\n  pprof:\n    endpoint: 127.0.0.1:%d\n' "$FRONT_PPROF"
	fi
	cat <<EOF
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$FRONT_PORT
exporters:
EOF
	case $1 in
	fanout3)
		cat <<EOF
  fanout:
    routing_key: traceID
    resolver:
      static:
        endpoints: [127.0.0.1:${SINK_PORTS[0]}, 127.0.0.1:${SINK_PORTS[1]}, 127.0.0.1:${SINK_PORTS[2]}]
    protocol:
      otlp:
        compression: $COMPRESSION
        tls:
          insecure: true
$(queue)
EOF
		;;
	otlp)
		cat <<EOF
  otlp_grpc:
    endpoint: 127.0.0.1:${SINK_PORTS[0]}
    compression: $COMPRESSION
    tls:
      insecure: true
$(queue)
EOF
		;;
	esac
	cat <<EOF
service:
  extensions: [$([ -n "$PROFILE_DIR" ] && echo pprof)]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [$(exporter_id "$1")]
EOF
	telemetry "$FRONT_METRICS"
}

# Both fronts queue what they receive, with the same settings (no batching
# unless QUEUE_BATCH: requests go out as they came), so that the receiver
# answers telemetrygen at once and the load does not wait on the round trip
# to the sinks.
queue() {
	cat <<EOF
    sending_queue:
      enabled: true
      num_consumers: 4
      queue_size: 1000
      sizer: requests
EOF
	if [ -n "$QUEUE_BATCH" ]; then
		cat <<EOF
      batch:
        sizer: items
        min_size: 2048
        max_size: 8192
        flush_timeout: 200ms
EOF
	fi
}

exporter_id() { case $1 in fanout3) echo fanout ;; otlp) echo otlp_grpc ;; esac; }

# metric PORT NAME LABEL: the sum of NAME's series whose labels contain LABEL.
metric() {
	curl -fs "http://127.0.0.1:$1/metrics" 2>/dev/null |
		awk -v name="$2" -v label="$3" '$1 ~ "^"name"(_total)?({|$)" && index($1, label) { s += $NF } END { printf "%d\n", s }'
}

wait_for() { # DESCRIPTION SECONDS COMMAND...: until COMMAND succeeds
	local what=$1 limit=$2; shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		if [ $SECONDS -ge $deadline ]; then echo "fanout-process.sh: timed out waiting for $what" >&2; return 1; fi
		sleep 0.1
	done
}

cpu_ticks() { # PID: utime + stime, in clock ticks
	# Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
	local stat; stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	read -r -a f <<<"$stat"
	echo $((f[11] + f[12]))
}

"$BIN" --config "$WORK/sinks.yaml" > "$WORK/sinks.log" 2>&1 &
PIDS+=($!)
wait_for "the sinks" 30 curl -fs -o /dev/null "http://127.0.0.1:$SINK_METRICS/metrics"

run() { # $1: impl; prints one benchmark line
	local impl=$1 id pid t0 t1 ns
	id=$(exporter_id "$impl")
	front "$impl" > "$WORK/front-$impl.yaml"
	"$BIN" --config "$WORK/front-$impl.yaml" > "$WORK/front-$impl.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_for "the $impl front" 30 curl -fs -o /dev/null "http://127.0.0.1:$FRONT_METRICS/metrics"
	t0=$(cpu_ticks "$pid")
	local prof=""
	if [ -n "$PROFILE_DIR" ]; then # the middle half of the run
		mkdir -p "$PROFILE_DIR"
		local secs=${DURATION%s}
		(sleep $((secs / 4)); curl -fs -o "$PROFILE_DIR/$impl-$round.pprof" \
			"http://127.0.0.1:$FRONT_PPROF/debug/pprof/profile?seconds=$((secs / 2))") &
		prof=$!
	fi
	"$TGEN" traces --otlp-endpoint "127.0.0.1:$FRONT_PORT" --otlp-insecure \
		--duration "$DURATION" --rate "$RATE" --workers "$WORKERS" --child-spans "$CHILD_SPANS" \
		--batch-size "$BATCH_SIZE" > "$WORK/telemetrygen.log" 2>&1 ||
		{ cat "$WORK/telemetrygen.log" >&2; return 1; }
	[ -z "$prof" ] || wait "$prof"
	# The spans of a run are those the front accepted (the SDK in
	# telemetrygen would drop spans if the front fell behind); the run ends
	# when its exporter has sent them all.
	local accepted
	accepted=$(metric "$FRONT_METRICS" otelcol_receiver_accepted_spans "")
	sent() { [ "$(metric "$FRONT_METRICS" otelcol_exporter_sent_spans "exporter=\"$id\"")" -ge "$accepted" ]; }
	wait_for "$accepted spans sent by the $impl front" 120 sent
	t1=$(cpu_ticks "$pid")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$accepted" -gt 0 ] || { echo "fanout-process.sh: the $impl front accepted no spans" >&2; return 1; }
	ns=$(awk -v d=$((t1 - t0)) -v tick="$TICK" -v n="$accepted" 'BEGIN { printf "%.1f", d / tick * 1e9 / n }')
	printf 'BenchmarkFanoutProcess/impl=%s \t1\t%s ns/span\t%s spans\t%s cpu-ticks\n' "$impl" "$ns" "$accepted" $((t1 - t0))
}

mkdir -p "$(dirname "$OUT")"
{
	echo "goos: linux"
	echo "goarch: $(go env GOARCH)"
	echo "pkg: otelcsp/bench/fanout-process"
	echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
} > "$OUT"
echo "front: $BIN; $WORKERS workers x $RATE spans/s for $DURATION a run, $((CHILD_SPANS + 1)) spans a trace, $BATCH_SIZE a request, compression $COMPRESSION, queue batching $([ -n "$QUEUE_BATCH" ] && echo on || echo off)" >&2
for round in $(seq "$ROUNDS"); do
	for impl in fanout3 otlp; do
		run "$impl" > "$WORK/line"
		tee -a "$OUT" < "$WORK/line"
	done
done

if [ -f "$ROOT/tools/go.mod" ]; then
	go tool -modfile="$ROOT/tools/go.mod" benchstat -col /impl "$OUT"
fi
