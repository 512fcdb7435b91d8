#!/bin/sh
# After install or upgrade: enable the service and (re)start it, where
# systemd runs (not in a container or chroot).
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl daemon-reload
	systemctl enable otelcsp.service
	systemctl restart otelcsp.service
fi
