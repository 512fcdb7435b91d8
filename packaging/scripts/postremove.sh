#!/bin/sh
# After removal: systemd forgets the unit file that is gone.
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl daemon-reload || true
fi
