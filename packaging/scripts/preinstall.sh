#!/bin/sh
# Before the files are unpacked: the service's system user and group, so
# that the config's group (otelcsp) resolves. Kept on removal, as Debian
# does for system users (files may still belong to it).
set -e
if ! getent group otelcsp >/dev/null; then
	groupadd --system otelcsp
fi
if ! getent passwd otelcsp >/dev/null; then
	useradd --system --gid otelcsp --home-dir /var/lib/otelcsp --no-create-home \
		--shell /usr/sbin/nologin --comment "otelcsp collector" otelcsp
fi
