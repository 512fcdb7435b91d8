#!/usr/bin/env bash
# Runs the otelcsp demo: the second tier (backends.yaml) in its own session,
# so that Ctrl-C in the terminal reaches only the front; then the front
# (config.yaml) in the foreground. Ctrl-C stops the front, which drains its
# queue into the still-running backends; then the backends are stopped with
# SIGTERM. The script exits with the front's status (0 after a clean stop).
#
#   distribution/demo.sh BINARY [FRONT_CONFIG [BACKENDS_CONFIG]]
#
# Ports come from the OTELCSP_* variables the two configs read.
set -uo pipefail
bin=${1:?usage: demo.sh BINARY [FRONT_CONFIG [BACKENDS_CONFIG]]}
here=$(cd "$(dirname "$0")" && pwd)
front=${2:-$here/config.yaml}
backends=${3:-$here/backends.yaml}
host=${OTELCSP_LISTEN_HOST:-127.0.0.1}

setsid "$bin" --config "$backends" &
backends_pid=$!
stop_backends() {
	kill -TERM "$backends_pid" 2>/dev/null
	wait "$backends_pid"
}

# Start the front only once every backend listens, so that its first
# connections succeed (no "connection refused" at start).
for port in "${OTELCSP_BACKEND_A_PORT:-14317}" "${OTELCSP_BACKEND_B_PORT:-24317}" "${OTELCSP_BACKEND_C_PORT:-34317}"; do
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break
		kill -0 "$backends_pid" 2>/dev/null || { echo "demo: the backends exited" >&2; wait "$backends_pid"; exit 1; }
		sleep 0.1
	done
done

# The front runs in the foreground, so Ctrl-C reaches it. A no-op handler,
# not an ignored signal: the front keeps default handling and stops on
# Ctrl-C, and bash runs the handler only once the front has exited.
trap ':' INT TERM
"$bin" --config "$front"
status=$?
stop_backends
exit "$status"
