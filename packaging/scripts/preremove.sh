#!/bin/sh
# Before removal (deb: "remove", rpm: $1 = 0), not before an upgrade: stop
# and disable the service.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl stop otelcsp.service || true
		systemctl disable otelcsp.service || true
	fi
	;;
esac
