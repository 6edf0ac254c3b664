#!/usr/bin/env bash
# The PostgreSQL server the PostgreSQL connector's tests run (tools/postgres/postgres_server.py
# starts it on a temporary data directory and a free port of 127.0.0.1; nothing here starts it).
# Installs Debian's postgresql package when initdb is not found; needs root for that.
set -euo pipefail
cd "$(dirname "$0")"

found_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

found_initdb || ../apt-ensure.sh postgresql
found_initdb || { echo "postgres: initdb not found after installing postgresql" >&2; exit 1; }
