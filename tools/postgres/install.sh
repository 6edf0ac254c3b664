#!/usr/bin/env bash
# The PostgreSQL server the PostgreSQL connector's tests run (tools/postgres/postgres_server.py
# starts it on a temporary data directory and a free port of 127.0.0.1; nothing here starts it).
# Installs Debian's postgresql package when initdb is not found; needs root for that.
set -euo pipefail

found_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if found_initdb; then
  echo "postgres: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || command -v initdb)" >&2
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "postgres: initdb not found; install Debian's postgresql package (apt-get install postgresql) as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "postgres: installing Debian's postgresql package" >&2
# The package's own cluster (/var/lib/postgresql) is not used: keep its service from starting while it
# installs (Debian's policy-rc.d: 101 = "action forbidden"), unless a policy is in place already.
policy=/usr/sbin/policy-rc.d
if [[ ! -e "${policy}" ]]; then
  printf '#!/bin/sh\n# Written by tools/postgres/install.sh while it runs.\nexit 101\n' > "${policy}"
  chmod +x "${policy}"
  trap 'rm -f "${policy}"' EXIT
fi
timeout 600 apt-get update -qq >&2
timeout 900 apt-get install -y -qq --no-install-recommends postgresql >&2
found_initdb || { echo "postgres: initdb still not found after installing postgresql" >&2; exit 1; }
