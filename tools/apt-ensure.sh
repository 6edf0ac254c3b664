#!/usr/bin/env bash
# Debian packages the tests use, installed when missing (needs root then): tools/apt-ensure.sh PACKAGE...
# A package's own service does not start while it installs (a temporary policy-rc.d: 101 =
# "action forbidden"), so nothing is left running that the tests did not start.
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: tools/apt-ensure.sh PACKAGE..." >&2; exit 2; }

missing=()
for pkg in "$@"; do
  status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
  [[ "${status}" == "install ok installed" ]] || missing+=("${pkg}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ "$(id -u)" != 0 ]]; then
  echo "apt-ensure: ${missing[*]} missing; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "apt-ensure: installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
if [[ ! -e "${policy}" ]]; then
  printf '#!/bin/sh\n# Written by tools/apt-ensure.sh while it runs.\nexit 101\n' > "${policy}"
  chmod +x "${policy}"
  trap 'rm -f "${policy}"' EXIT
fi
timeout 600 apt-get update -qq >&2
timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
