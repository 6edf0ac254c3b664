#!/usr/bin/env bash
# Build the project image on a host without a container registry, for a local node (tools/node/node.py).
#
#   1. installs the Debian packages for building images and for running a node (if missing)
#   2. configures podman/buildah: runc, cgroupfs, no default ulimits (a drop-in in containers.conf.d)
#   3. builds a stand-in for python:3.11-slim-bookworm with debootstrap and `podman import` (cached by tag)
#   4. builds the project image from the Dockerfile with --build-arg PYTHON_IMAGE=<stand-in>
#   5. runs `IMAGE --help` in it, and optionally saves it as a docker archive / imports it into containerd
#
# Usage: tools/node/image.sh [options] [CONTEXT_DIR]        (CONTEXT_DIR defaults to the repository root)
#
# Run as root. Progress and timings go to standard error; the image tag is printed last on standard output.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${SCRIPT_DIR}/../.." && pwd)"

BASE_TAG="${SPIFF_BASE_IMAGE:-localhost/spiff-python-base:bookworm}"
BASE_IMAGE="${SPIFF_PYTHON_IMAGE:-}"
IMAGE_TAG="${SPIFF_IMAGE:-localhost/connector-proxy:dev}"
SUITE="bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CONTAINERS_DROPIN="/etc/containers/containers.conf.d/50-spiff-node.conf"

# Build: podman, buildah, runc, debootstrap. Node: containerd, CNI plugins, iptables, conntrack.
PACKAGES=(podman buildah runc debootstrap uidmap slirp4netns containerd containernetworking-plugins iptables conntrack)

usage() {
  cat <<'EOF'
Usage: tools/node/image.sh [options] [CONTEXT_DIR]

  CONTEXT_DIR           build context holding the Dockerfile (default: the repository root)
  --tag TAG             project image tag (default localhost/connector-proxy:dev, or $SPIFF_IMAGE)
  --base-tag TAG        stand-in base image tag (default localhost/spiff-python-base:bookworm)
  --base-image REF      build on this base instead of the stand-in, pulled if missing: where a registry is
                        reachable, the Dockerfile's own python:3.11-slim-bookworm (or $SPIFF_PYTHON_IMAGE)
  --rebuild-base        rebuild the stand-in base image even if it exists
  --export FILE         also save the image as a docker archive to FILE (for `ctr images import`)
  --import              also import it into containerd's k8s.io namespace (containerd must be running)
  --containerd-address  containerd socket for --import (default /run/containerd/containerd.sock)
  --setup-only          install packages and configure podman, then stop
  --base-only           stop after the base image
  --no-verify           skip `podman run IMAGE --help`
  -h, --help            this help
EOF
}

log() { printf 'image.sh: %s\n' "$*" >&2; }
die() { printf 'image.sh: error: %s\n' "$*" >&2; exit 1; }

context="${REPO_DIR}"
export_file=""
do_import=0
rebuild_base=0
stop_after=""
verify=1
containerd_address="/run/containerd/containerd.sock"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) [[ $# -ge 2 ]] || die "--tag needs a value"; IMAGE_TAG="$2"; shift 2 ;;
    --base-tag) [[ $# -ge 2 ]] || die "--base-tag needs a value"; BASE_TAG="$2"; shift 2 ;;
    --base-image) [[ $# -ge 2 ]] || die "--base-image needs a value"; BASE_IMAGE="$2"; shift 2 ;;
    --rebuild-base) rebuild_base=1; shift ;;
    --export) [[ $# -ge 2 ]] || die "--export needs a value"; export_file="$2"; shift 2 ;;
    --import) do_import=1; shift ;;
    --containerd-address) [[ $# -ge 2 ]] || die "--containerd-address needs a value"; containerd_address="$2"; shift 2 ;;
    --setup-only) stop_after=setup; shift ;;
    --base-only) stop_after=base; shift ;;
    --no-verify) verify=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) context="$1"; shift ;;
  esac
done

[[ "$(id -u)" == 0 ]] || die "run as root (rootful podman, debootstrap, containerd)"
context="$(cd "${context}" && pwd)" || die "no such context directory"
[[ -f "${context}/Dockerfile" ]] || die "no Dockerfile in ${context}"

declare -A timings=()
step_start=0
begin() { step_start=$(date +%s.%N); log "$*"; }
finish() {
  local secs
  secs="$(awk -v a="${step_start}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  timings["$1"]="${secs}"
  log "$1: ${secs}s"
}
summary() {
  local key
  for key in packages podman-config base-image project-image verify export import; do
    [[ -n "${timings[${key}]:-}" ]] && log "timing ${key}: ${timings[${key}]}s"
  done
  return 0
}
trap summary EXIT

# ---- 1. packages ------------------------------------------------------------------------------
begin "checking Debian packages"
missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
  [[ "${status}" == "install ok installed" ]] || missing+=("${pkg}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >&2 || die "apt-get update failed"
  # No recommends: they would add crun (fails on hybrid cgroups), fuse-overlayfs, netavark, ...
  timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || die "apt-get install failed"
fi
finish packages

# ---- 2. podman / buildah configuration --------------------------------------------------------
begin "configuring podman (${CONTAINERS_DROPIN})"
mkdir -p "$(dirname "${CONTAINERS_DROPIN}")"
desired_conf='# Written by tools/node/image.sh.
[containers]
# Root here lacks CAP_SYS_RESOURCE, so the default RLIMIT_NOFILE/NPROC ulimits cannot be applied.
default_ulimits = []

[engine]
# crun fails on hybrid cgroups ("cgroups in hybrid mode not supported"); no systemd, so cgroupfs.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'
if [[ "$(cat "${CONTAINERS_DROPIN}" 2>/dev/null || true)" != "${desired_conf%$'\n'}" ]]; then
  printf '%s' "${desired_conf}" >"${CONTAINERS_DROPIN}"
fi
runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || true)"
[[ "${runtime}" == runc ]] || die "podman does not use runc after configuration (got '${runtime}')"
finish podman-config
[[ "${stop_after}" == setup ]] && { printf '%s\n' "${IMAGE_TAG}"; exit 0; }

# ---- 3. stand-in base image -------------------------------------------------------------------
if [[ -n "${BASE_IMAGE}" ]]; then
  begin "base image ${BASE_IMAGE}"
  podman image exists "${BASE_IMAGE}" || timeout 900 podman pull "${BASE_IMAGE}" >&2 || die "podman pull ${BASE_IMAGE} failed"
  BASE_TAG="${BASE_IMAGE}"
  finish base-image
elif [[ "${rebuild_base}" == 0 ]] && podman image exists "${BASE_TAG}"; then
  log "base image ${BASE_TAG} exists (use --rebuild-base to rebuild)"
else
  begin "building base image ${BASE_TAG} with debootstrap (${SUITE}, ${MIRROR})"
  rootfs="$(mktemp -d /tmp/spiff-base-rootfs.XXXXXX)"
  trap 'rm -rf "${rootfs}"; summary' EXIT
  timeout 900 debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    "${SUITE}" "${rootfs}" "${MIRROR}" >"${rootfs}.log" 2>&1 \
    || { tail -n 30 "${rootfs}.log" >&2; die "debootstrap failed (log: ${rootfs}.log)"; }
  # The egress proxy re-signs TLS: trust the host's extra CAs inside builds (pip install from PyPI).
  shopt -s nullglob
  extra_cas=(/usr/local/share/ca-certificates/*.crt)
  shopt -u nullglob
  if [[ ${#extra_cas[@]} -gt 0 ]]; then
    cp "${extra_cas[@]}" "${rootfs}/usr/local/share/ca-certificates/"
    chroot "${rootfs}" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the rootfs"
  fi
  rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/*.bin "${rootfs}"/var/cache/apt/archives/*.deb \
    "${rootfs}"/var/log/* "${rootfs}"/tmp/*
  tar --numeric-owner --xattrs -C "${rootfs}" -c . \
    | podman import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      - "${BASE_TAG}" >/dev/null || die "podman import failed"
  rm -rf "${rootfs}" "${rootfs}.log"
  trap summary EXIT
  finish base-image
fi
[[ "${stop_after}" == base ]] && { printf '%s\n' "${BASE_TAG}"; exit 0; }

# ---- 4. project image -------------------------------------------------------------------------
begin "building ${IMAGE_TAG} from ${context}/Dockerfile"
# --network host: RUN steps reach PyPI without a podman bridge, NAT rules or ip_forward on the host.
# --format docker keeps the HEALTHCHECK (the OCI format has none).
timeout 1800 podman build \
  --pull=never \
  --network host \
  --format docker \
  --build-arg "PYTHON_IMAGE=${BASE_TAG}" \
  -t "${IMAGE_TAG}" \
  -f "${context}/Dockerfile" \
  "${context}" >&2 || die "podman build failed"
finish project-image

# ---- 5. verify, export, import ----------------------------------------------------------------
if [[ "${verify}" == 1 ]]; then
  begin "verifying: podman run --rm --network none --no-healthcheck ${IMAGE_TAG} --help"
  timeout 120 podman run --rm --network none --no-healthcheck "${IMAGE_TAG}" --help >/dev/null \
    || die "the image does not run: podman run --rm ${IMAGE_TAG} --help"
  finish verify
fi

if [[ -n "${export_file}" || "${do_import}" == 1 ]]; then
  archive="${export_file}"
  [[ -n "${archive}" ]] || archive="$(mktemp /tmp/spiff-image.XXXXXX.tar)"
  begin "saving ${IMAGE_TAG} to ${archive} (docker archive)"
  rm -f "${archive}"
  timeout 600 podman save --format docker-archive -o "${archive}" "${IMAGE_TAG}" || die "podman save failed"
  finish export
  if [[ "${do_import}" == 1 ]]; then
    begin "importing ${archive} into containerd (namespace k8s.io)"
    timeout 600 ctr --address "${containerd_address}" -n k8s.io images import "${archive}" >&2 \
      || die "ctr images import failed (is containerd running at ${containerd_address}?)"
    finish import
    [[ -n "${export_file}" ]] || rm -f "${archive}"
  fi
fi

printf '%s\n' "${IMAGE_TAG}"
