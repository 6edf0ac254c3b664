"""A real single Kubernetes node on this host: containerd + kubelet (+ kube-proxy, + kube-scheduler, + cluster DNS).

It joins a control plane started by ``tools/k8s/controlplane.py`` (given by its state directory), so Pods run as
real containers (runc) with a real pod network (a local bridge). Everything stays on this host: the pod network
is a bridge with no uplink, forwarded traffic that would leave the bridge is dropped, and the node's address is
the bridge's own address. A small cluster DNS (``cluster_dns.py``, next to this file) answers Service names on
the node's address; it never forwards a query.

Command line (as root, with a Python that has ``cryptography``, ``httpx`` and ``dnslib``)::

    python tools/node/node.py up --controlplane-state /tmp/cp --state-dir /tmp/node [--bin-dir DIR]
    python tools/node/node.py load-image /tmp/connector-proxy-dev.tar --state-dir /tmp/node
    python tools/node/node.py status --state-dir /tmp/node
    python tools/node/node.py down --state-dir /tmp/node

Library use::

    from node import Node

    node = Node(controlplane_state="/tmp/cp", state_dir="/tmp/node").up()   # waits until the Node is Ready
    node.load_image("/tmp/connector-proxy-dev.tar")
    ...
    node.down()
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.util
import io
import ipaddress
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

if importlib.util.find_spec("controlplane") is None:  # run as a script: tools/k8s is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "k8s"))

import controlplane
from controlplane import (
    BUILD_SCRIPT,
    Issuer,
    kubeconfig_yaml,
    make_cert,
    new_ec_key,
    pid_runs,
    spawn,
    tail,
    write_cert,
    write_file,
    write_key,
    x509_name,
)

TOOLS_DIR = Path(__file__).resolve().parent
CLUSTER_DNS_SCRIPT = TOOLS_DIR / "cluster_dns.py"

STATE_MARKER = ".spiff-node"
STATE_FILE = "state.json"
DEFAULT_STATE_DIR = Path("/tmp/spiff-node")  # noqa: S108 - a fixed, documented default for a root-only tool
DEFAULT_NODE_NAME = "spiff-node"
DEFAULT_POD_CIDR = "10.244.0.0/24"
BRIDGE = "spiffcni0"
CNI_NETWORK = "spiff-node"
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_CACHE_DIR = Path("/var/lib/cni")
CONTAINERD_ROOT = Path("/var/lib/containerd")
CONTAINERD_STATE = Path("/run/containerd")
CONTAINERD_SOCKET = CONTAINERD_STATE / "containerd.sock"
K8S_NAMESPACE = "k8s.io"  # containerd namespace of the CRI plugin
PAUSE_IMAGE = "localhost/spiff-pause:3.10"
KUBELET_PORT = 10250
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_METRICS_PORT = 10249
DNS_PORT = 53
CLUSTER_DOMAIN = "cluster.local"
HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARKER = "# tools/node/node.py"
GUARD_CHAINS = {"FORWARD": "SPIFF-NODE-FORWARD", "INPUT": "SPIFF-NODE-INPUT"}
APISERVER_CHAIN = "SPIFF-NODE-APISERVER"  # nat PREROUTING: pods -> kubernetes Service -> the loopback API server
# Host settings the node changes: ip_forward by this module, the rest by the kubelet (its "kernel tunables").
SAVED_SYSCTLS = (
    "net/ipv4/ip_forward",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/conf/all/route_localnet",
)
# Left in the host's tables by the kubelet and kube-proxy (kube-proxy --cleanup removes the KUBE-* service chains).
LEFTOVER_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY", "KUBE-IPTABLES-HINT")

PAUSE_SOURCE = """\
// Command pause holds a pod's namespaces: it sleeps until SIGINT/SIGTERM and reaps orphaned children.
package main

import (
\t"os"
\t"os/signal"
\t"syscall"
)

func main() {
\tsignals := make(chan os.Signal, 8)
\tsignal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
\tfor sig := range signals {
\t\tif sig != syscall.SIGCHLD {
\t\t\tos.Exit(0)
\t\t}
\t\tfor {
\t\t\tvar status syscall.WaitStatus
\t\t\tif pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
\t\t\t\tbreak
\t\t\t}
\t\t}
\t}
}
"""


class NodeError(RuntimeError):
    """The node could not be set up, started, reached or stopped."""


def log(message: str) -> None:
    print(f"node.py: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------------


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    check: bool = True,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (bounded), capturing its output; raise NodeError with stderr when ``check`` and it fails."""
    try:
        result = subprocess.run(  # noqa: S603 - argv built from fixed tools and our own paths
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, input=input_text, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeError(f"timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    except OSError as exc:
        raise NodeError(f"cannot run {argv[0]}: {exc}") from exc
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}")
    return result


def wait_until(
    what: str,
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.5,
    detail: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise NodeError(f"{what}: not reached within {timeout:.0f}s{extra}")
        time.sleep(interval)


def read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text(encoding="ascii").strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    try:
        (Path("/proc/sys") / name).write_text(value + "\n", encoding="ascii")
    except OSError as exc:
        raise NodeError(f"cannot set {name.replace('/', '.')}={value}: {exc}") from exc


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def dns_query(server: str, name: str, port: int = DNS_PORT, timeout: float = 1.0) -> tuple[int, int] | None:
    """Send one A query for ``name`` over UDP; (rcode, number of answers), or None without a matching reply."""
    ident = int.from_bytes(os.urandom(2), "big")
    qname = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((server, port))
            sock.send(packet)
            reply = sock.recv(4096)
        except OSError:
            return None
    if len(reply) < 12:
        return None
    reply_id, flags, _questions, answers = struct.unpack("!HHHH", reply[:8])
    if reply_id != ident or not flags & 0x8000:
        return None
    return flags & 0xF, answers


def which(name: str, extra_dirs: Sequence[Path] = ()) -> Path | None:
    path = os.pathsep.join([*map(str, extra_dirs), os.environ.get("PATH", ""), "/usr/local/sbin:/usr/sbin:/sbin"])
    found = shutil.which(name, path=path)
    return Path(found) if found else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spiff-connector-proxy" / "node"


# --------------------------------------------------------------------------------------------------------------------
# Certificates and kubeconfigs
# --------------------------------------------------------------------------------------------------------------------


def issue_client_cert(
    ca_cert_path: Path,
    ca_key_path: Path,
    common_name: str,
    organizations: Sequence[str],
    cert_path: Path,
    key_path: Path,
    days: int = 365,
) -> None:
    """Write an EC client certificate for ``common_name`` (groups ``organizations``) signed by the cluster CA."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise NodeError(f"unsupported CA key type in {ca_key_path}")
    key = new_ec_key()
    cert = make_cert(
        x509_name(common_name, organizations),
        key,
        Issuer(ca_cert, ca_key),
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
        days=days,
        subject_key_identifier=False,
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    write_key(key_path, key)
    write_cert(cert_path, cert)


# --------------------------------------------------------------------------------------------------------------------
# Pause image: a static Go binary in a one-layer OCI image, written without any image tooling
# --------------------------------------------------------------------------------------------------------------------


def _go_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def build_pause_binary(target: Path, timeout: float = 300.0) -> None:
    go = which("go", [Path("/usr/local/go/bin")])
    if go is None:
        raise NodeError("building the pause image needs Go ('go' not on PATH)")
    with tempfile.TemporaryDirectory(prefix="spiff-pause-") as tmp:
        src = Path(tmp)
        (src / "go.mod").write_text("module spiff/pause\n\ngo 1.21\n", encoding="utf-8")
        (src / "main.go").write_text(PAUSE_SOURCE, encoding="utf-8")
        env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": _go_arch(), "GOFLAGS": "-buildvcs=false"}
        target.parent.mkdir(parents=True, exist_ok=True)
        run(
            [str(go), "-C", str(src), "build", "-trimpath", "-ldflags=-s -w", "-o", str(target), "."],
            timeout=timeout,
            env=env,
        )


def _tar_add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    archive.addfile(info, io.BytesIO(data))


def write_pause_archive(binary: Path, archive_path: Path, image_name: str = PAUSE_IMAGE) -> None:
    """An OCI image layout tarball holding ``binary`` as /pause, named ``image_name`` for ``ctr images import``."""
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        _tar_add_bytes(layer, "pause", binary.read_bytes(), 0o755)
    layer_bytes = layer_buffer.getvalue()

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    arch = _go_arch()
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer_bytes)]},
        "history": [{"created_by": "tools/node/node.py pause image"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest(layer_bytes),
                "size": len(layer_bytes),
            }
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": image_name,
                    "org.opencontainers.image.ref.name": image_name.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive_path.with_name(archive_path.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        _tar_add_bytes(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _tar_add_bytes(archive, "index.json", json.dumps(index, sort_keys=True).encode())
        for blob in (layer_bytes, config_bytes, manifest_bytes):
            _tar_add_bytes(archive, f"blobs/sha256/{digest(blob).split(':', 1)[1]}", blob)
    tmp.replace(archive_path)


# --------------------------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    pid: int | None = None

    def start(self) -> None:
        popen = spawn(self.name, self.argv, self.log_path, detach=True)
        self.pid = popen.pid
        # Detached on purpose: `up` returns while it runs and `down` stops it by pid (running() reaps it when
        # it is our child). Marking the Popen finished keeps it from warning about a still running child.
        popen.returncode = 0

    def running(self) -> bool:
        if self.pid is None:
            return False
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)  # reap it if it is our exited child
        return pid_runs(self.pid, self.argv[0])

    def stop(self, timeout: float = 20.0) -> None:
        if self.pid is None or not self.running():
            self.pid = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 10.0
            while self.running() and time.monotonic() < kill_deadline:
                time.sleep(0.1)
            if self.running():
                raise NodeError(f"{self.name} (pid {self.pid}) did not exit after SIGKILL")
        self.pid = None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "argv": self.argv, "log": str(self.log_path)}

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> Process:
        return cls(name, list(data["argv"]), Path(data["log"]), int(data["pid"]) if data.get("pid") else None)


# --------------------------------------------------------------------------------------------------------------------
# The node
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlPlaneInfo:
    """What the node needs from a tools/k8s/controlplane.py state directory."""

    state_dir: Path
    server: str
    service_cidr: str
    kubeconfig: Path
    ca_cert: Path
    ca_key: Path
    admin_cert: Path
    admin_key: Path

    @classmethod
    def load(cls, state_dir: Path | str) -> ControlPlaneInfo:
        path = Path(state_dir).absolute()
        try:
            data = json.loads((path / controlplane.STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NodeError(f"no control plane state in {path} (start one with tools/k8s/controlplane.py up)") from exc
        pki = controlplane.Pki(path / "pki")
        info = cls(
            state_dir=path,
            server=str(data["server"]),
            service_cidr=str(data["service_cidr"]),
            kubeconfig=Path(data["kubeconfig"]),
            ca_cert=pki.ca_cert,
            ca_key=pki.ca_key,
            admin_cert=pki.admin_cert,
            admin_key=pki.admin_key,
        )
        for file in (info.ca_cert, info.ca_key, info.admin_cert, info.admin_key):
            if not file.is_file():
                raise NodeError(f"missing {file} in the control plane state")
        return info

    def client(self, timeout: float = 10.0) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        return httpx.Client(base_url=self.server, verify=context, timeout=timeout)


class Node:
    """containerd + kubelet (+ kube-proxy, + kube-scheduler) joined to a local control plane.

    ``controlplane_state`` is the state directory of a running ``tools/k8s/controlplane.py`` control plane (its CA
    signs the node's client certificates). ``bin_dir`` holds kubelet (and kube-proxy / kube-scheduler if present;
    ``kube_proxy`` / ``kube_scheduler`` point elsewhere, ``""`` disables one). ``cluster_dns`` runs
    ``cluster_dns.py`` on the node IP, port 53, and makes it the pods' nameserver. Logs, pids, configs and the
    kubelet's root directory live in ``state_dir``; images stay in containerd (/var/lib/containerd) across runs.
    """

    def __init__(
        self,
        controlplane_state: Path | str | None = None,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        bin_dir: Path | str | None = None,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        pod_cidr: str = DEFAULT_POD_CIDR,
        kube_proxy: Path | str | None = None,
        kube_scheduler: Path | str | None = None,
        cluster_dns: bool = True,
        ready_timeout: float = 180.0,
        verbosity: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.controlplane_state = Path(controlplane_state).absolute() if controlplane_state is not None else None
        self.bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.node_name = node_name
        self.pod_cidr = str(ipaddress.ip_network(pod_cidr))
        self.kube_proxy = kube_proxy
        self.kube_scheduler = kube_scheduler
        self.cluster_dns = cluster_dns
        self.ready_timeout = ready_timeout
        self.verbosity = verbosity
        self.processes: dict[str, Process] = {}
        self.saved_sysctls: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self._loaded = False

    # ---- derived settings -----------------------------------------------------------------------------------------

    @property
    def node_ip(self) -> str:
        """The bridge's address (the pods' gateway); the node's InternalIP and the kubelet's listen address."""
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state_dir / "cni"

    @property
    def kubelet_root(self) -> Path:
        return self.state_dir / "kubelet"

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def controlplane(self) -> ControlPlaneInfo:
        if self.controlplane_state is None:
            raise NodeError("no control plane state directory given")
        return ControlPlaneInfo.load(self.controlplane_state)

    # ---- public API -------------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, state_dir: Path | str = DEFAULT_STATE_DIR) -> Node:
        """A handle on a node started earlier (e.g. by ``up``) from its state directory."""
        path = Path(state_dir).absolute()
        try:
            data = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NodeError(f"no node state in {path}: {exc}") from exc
        node = cls(
            data.get("controlplane_state"),
            path,
            data.get("bin_dir"),
            node_name=data["node_name"],
            pod_cidr=data["pod_cidr"],
            kube_proxy=data.get("kube_proxy"),
            kube_scheduler=data.get("kube_scheduler"),
            cluster_dns=bool(data.get("cluster_dns", True)),
        )
        node.processes = {name: Process.from_json(name, entry) for name, entry in data.get("processes", {}).items()}
        node.saved_sysctls = dict(data.get("saved_sysctls", {}))
        node.timings = dict(data.get("timings", {}))
        node._loaded = True
        return node

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.pid is not None and p.running()}

    def up(self) -> Self:
        """Start containerd, cluster DNS, kubelet, kube-proxy, kube-scheduler (those not running); wait until Ready."""
        self._require_root()
        started = time.monotonic()
        deadline = started + self.ready_timeout

        def mark(step: str) -> None:
            self.timings[step] = round(time.monotonic() - started, 2)

        cp = self.controlplane()
        binaries = self._binaries()
        self._prepare_state_dir()
        containerd = self.processes.get("containerd")
        if (containerd is None or not containerd.running()) and self._containerd_ready():
            raise NodeError(f"another containerd already serves {CONTAINERD_SOCKET}; stop it first")
        self._save_state()
        try:
            self._setup_host_network(cp)
            mark("network")
            self._write_configs(cp, binaries)
            mark("configs")
            self._start_containerd(binaries["containerd"])
            mark("containerd")
            self._ensure_pause_image()
            mark("pause_image")
            if self.cluster_dns:
                self._start("cluster-dns", self._cluster_dns_argv(cp))
            self._start("kubelet", self._kubelet_argv(binaries["kubelet"]))
            if "kube-proxy" in binaries:
                self._start("kube-proxy", self._kube_proxy_argv(binaries["kube-proxy"]))
            if "kube-scheduler" in binaries:
                self._start("kube-scheduler", self._kube_scheduler_argv(binaries["kube-scheduler"]))
            self._save_state()
            self._wait_node_ready(cp, max(1.0, deadline - time.monotonic()))
            mark("node_ready")
            if "kube-proxy" in binaries:
                self._wait_http_ok(
                    "kube-proxy",
                    f"http://127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}/healthz",
                    max(1.0, deadline - time.monotonic()),
                )
                mark("kube_proxy_healthy")
            if self.cluster_dns:
                self._wait_cluster_dns(max(1.0, deadline - time.monotonic()))
                mark("cluster_dns_ready")
        finally:
            self._save_state()
        self.timings["total"] = round(time.monotonic() - started, 2)
        self._save_state()
        return self

    def down(self, *, remove_state: bool = True, delete_node: bool = True) -> None:
        """Stop everything, remove the pods' containers, sandboxes and network, restore host settings."""
        self._require_root()
        errors: list[str] = []

        def attempt(what: str, action: Callable[[], None]) -> None:
            try:
                action()
            except (NodeError, OSError, httpx.HTTPError) as exc:
                errors.append(f"{what}: {exc}")

        for name in ("kube-scheduler", "kube-proxy", "kubelet", "cluster-dns"):
            proc = self.processes.get(name)
            if proc is not None:
                attempt(f"stop {name}", proc.stop)
        if "kube-proxy" in self.processes:
            attempt("kube-proxy --cleanup", self._kube_proxy_cleanup)
        if self._containerd_ready():
            attempt("remove pod sandboxes", self._remove_all_pods)
        containerd = self.processes.get("containerd")
        if containerd is not None:
            attempt("stop containerd", containerd.stop)
        attempt("unmount leftovers", self._unmount_leftovers)
        if containerd is not None and not self._containerd_ready():
            attempt("remove containerd run state", self._remove_containerd_state)
        attempt("remove network", self._teardown_host_network)
        attempt("remove cgroups", self._remove_cgroups)
        attempt("restore sysctls", self._restore_sysctls)
        if delete_node and self.controlplane_state is not None:
            attempt("delete Node object", self._delete_node_object)
        if errors:
            self._save_state()
            raise NodeError("down finished with errors: " + "; ".join(errors))
        if remove_state and (self.state_dir / STATE_MARKER).exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)
        else:
            self._save_state()

    def load_image(self, archive: Path | str, timeout: float = 600.0) -> str:
        """Import a docker or OCI archive into containerd's k8s.io namespace; return ctr's output."""
        path = Path(archive)
        if not path.is_file():
            raise NodeError(f"no such archive: {path}")
        if not self._containerd_ready():
            raise NodeError(f"containerd is not running at {CONTAINERD_SOCKET} (run `node.py up` first)")
        return self._ctr("images", "import", str(path), timeout=timeout).stdout.strip()

    def images(self) -> list[str]:
        out = self._ctr("images", "list", "-q").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "node_name": self.node_name,
            "node_ip": self.node_ip,
            "pod_cidr": self.pod_cidr,
            "cluster_dns": f"{self.node_ip}:{DNS_PORT}" if self.cluster_dns else None,
            "running": self.pids(),
            "stopped": sorted(set(self.processes) - set(self.pids())),
            "timings": self.timings,
        }
        if self.controlplane_state is not None:
            with contextlib.suppress(NodeError, httpx.HTTPError, OSError), self.controlplane().client(5.0) as c:
                response = c.get(f"/api/v1/nodes/{self.node_name}")
                if response.status_code == 200:
                    conditions = response.json().get("status", {}).get("conditions", [])
                    result["ready"] = any(x["type"] == "Ready" and x["status"] == "True" for x in conditions)
        return result

    # ---- preparation --------------------------------------------------------------------------------------------

    @staticmethod
    def _require_root() -> None:
        if os.geteuid() != 0:
            raise NodeError("a node needs root (containerd, runc, network setup)")

    def _prepare_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        marker = self.state_dir / STATE_MARKER
        if not marker.exists() and any(self.state_dir.iterdir()):
            raise NodeError(f"{self.state_dir} is not empty and not a node state directory")
        marker.write_text("state directory of tools/node/node.py\n", encoding="utf-8")
        if (self.state_dir / STATE_FILE).exists() and not self._loaded:
            previous = Node.load(self.state_dir)
            self.processes = previous.processes
            self.saved_sysctls = previous.saved_sysctls or self.saved_sysctls
        for sub in (self.log_dir, self.cni_conf_dir, self.kubelet_root, self.state_dir / "pki"):
            sub.mkdir(parents=True, exist_ok=True)

    def _binaries(self) -> dict[str, Path]:
        if self.bin_dir is None:
            try:
                self.bin_dir = controlplane.default_bin_dir()
            except (controlplane.ControlPlaneError, subprocess.SubprocessError, OSError) as exc:
                raise NodeError(f"cannot get the bin directory from {BUILD_SCRIPT} --print-dir: {exc}") from exc
        bin_dir = self.bin_dir
        found: dict[str, Path] = {}
        for name in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip"):
            path = which(name)
            if path is None:
                raise NodeError(f"'{name}' not found; install the packages with tools/node/image.sh --setup-only")
            found[name] = path
        for plugin in ("bridge", "host-local", "portmap", "loopback"):
            if not (CNI_BIN_DIR / plugin).is_file():
                raise NodeError(f"{CNI_BIN_DIR / plugin} missing (Debian package containernetworking-plugins)")
        if self.cluster_dns and importlib.util.find_spec("dnslib") is None:
            raise NodeError(f"the cluster DNS needs dnslib in {sys.executable} (or use --no-cluster-dns)")
        kubelet = bin_dir / "kubelet"
        if not os.access(kubelet, os.X_OK):
            raise NodeError(f"no kubelet in {bin_dir}; build it with: {BUILD_SCRIPT} --with kubelet")
        found["kubelet"] = kubelet
        for name, option in (("kube-proxy", self.kube_proxy), ("kube-scheduler", self.kube_scheduler)):
            if option == "":
                continue
            candidate = Path(option) if option is not None else bin_dir / name
            if os.access(candidate, os.X_OK):
                found[name] = candidate.absolute()
            elif option is not None:
                raise NodeError(f"{name} binary {candidate} not found or not executable")
            else:
                effect = "Services are not routed" if name == "kube-proxy" else "Pods need spec.nodeName"
                log(f"no {name} in {bin_dir}: {effect}")
        return found

    # ---- host network -------------------------------------------------------------------------------------------

    def _setup_host_network(self, cp: ControlPlaneInfo) -> None:
        for name in SAVED_SYSCTLS:
            value = read_sysctl(name)
            if value is not None:
                self.saved_sysctls.setdefault(name, value)
        self._save_state()
        gateway = f"{self.node_ip}/{ipaddress.ip_network(self.pod_cidr).prefixlen}"
        if run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        addresses = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
        if f" {gateway} " not in addresses:
            run(["ip", "addr", "add", gateway, "dev", BRIDGE])
        write_sysctl(f"net/ipv6/conf/{BRIDGE}/disable_ipv6", "1")
        run(["ip", "link", "set", BRIDGE, "up"])
        # Unhandled Service IPs end on the bridge (no neighbour answers) instead of the default route.
        run(["ip", "route", "replace", cp.service_cidr, "dev", BRIDGE, "src", self.node_ip])
        write_sysctl("net/ipv4/ip_forward", "1")  # pod -> Service IP -> pod on the same bridge is routed
        self._install_guard()
        self._install_apiserver_dnat(cp)
        self._update_hosts_file(add=True)

    def _install_apiserver_dnat(self, cp: ControlPlaneInfo) -> None:
        """Let pods reach the API server, which listens on 127.0.0.1 only, through the ``kubernetes`` Service.

        The control plane runs without an endpoint reconciler, so kube-proxy has no endpoint for that Service;
        packets from the bridge to its ClusterIP:443 are DNATed to the API server's loopback port instead. The
        serving certificate is valid for the ClusterIP. ``route_localnet`` is enabled on the bridge only.
        """
        port = httpx.URL(cp.server).port
        if port is None:
            raise NodeError(f"no port in the API server URL {cp.server}")
        cluster_ip = str(next(ipaddress.ip_network(cp.service_cidr).hosts()))
        ipt = ["iptables", "-w", "5", "-t", "nat"]
        if run([*ipt, "-n", "-L", APISERVER_CHAIN], check=False).returncode != 0:
            run([*ipt, "-N", APISERVER_CHAIN])
        run([*ipt, "-F", APISERVER_CHAIN])
        run(
            [
                *ipt,
                "-A",
                APISERVER_CHAIN,
                "-i",
                BRIDGE,
                "-d",
                f"{cluster_ip}/32",
                "-p",
                "tcp",
                "--dport",
                "443",
                "-j",
                "DNAT",
                "--to-destination",
                f"127.0.0.1:{port}",
            ]
        )
        if run([*ipt, "-C", "PREROUTING", "-j", APISERVER_CHAIN], check=False).returncode != 0:
            run([*ipt, "-A", "PREROUTING", "-j", APISERVER_CHAIN])
        write_sysctl(f"net/ipv4/conf/{BRIDGE}/route_localnet", "1")

    def _update_hosts_file(self, *, add: bool) -> None:
        """Map the node name to the node IP in /etc/hosts (or remove that line).

        The API server reaches a kubelet by its Hostname address first (logs, exec, port-forward); without the
        line that name would be looked up with the host's DNS server, i.e. off this host.
        """
        try:
            lines = HOSTS_FILE.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        kept = [line for line in lines if not line.rstrip().endswith(f"{HOSTS_MARKER} {self.node_name}")]
        if add:
            kept.append(f"{self.node_ip} {self.node_name} {HOSTS_MARKER} {self.node_name}")
        if kept != lines:
            with HOSTS_FILE.open("w", encoding="utf-8") as handle:  # in place: /etc/hosts may be a bind mount
                handle.write("\n".join(kept) + "\n")

    def _install_guard(self) -> None:
        """mangle-table rules: forward only bridge-to-bridge traffic; pods cannot reach the kubelet's port.

        Pods reach the cluster DNS (node IP, port 53) like any other port of the node's address; DNS queries to
        that address from anywhere but the bridge or this host itself are dropped, so nothing off the host is
        ever answered.
        """
        drop_off_host = ["-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "DROP"]
        off_host_dns = [
            ["!", "-i", BRIDGE, "-d", f"{self.node_ip}/32", "-p", protocol, "--dport", str(DNS_PORT), *drop_off_host]
            for protocol in ("udp", "tcp")
        ]
        rules = {
            "FORWARD": [
                ["-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN"],
                ["-i", BRIDGE, "-j", "DROP"],
                ["-o", BRIDGE, "-j", "DROP"],
            ],
            "INPUT": [["-i", BRIDGE, "-p", "tcp", "--dport", str(KUBELET_PORT), "-j", "DROP"], *off_host_dns],
        }
        for hook, chain in GUARD_CHAINS.items():
            if run(["iptables", "-w", "5", "-t", "mangle", "-n", "-L", chain], check=False).returncode != 0:
                run(["iptables", "-w", "5", "-t", "mangle", "-N", chain])
            run(["iptables", "-w", "5", "-t", "mangle", "-F", chain])
            for rule in rules[hook]:
                run(["iptables", "-w", "5", "-t", "mangle", "-A", chain, *rule])
            jump = ["-j", chain]
            if run(["iptables", "-w", "5", "-t", "mangle", "-C", hook, *jump], check=False).returncode != 0:
                run(["iptables", "-w", "5", "-t", "mangle", "-I", hook, "1", *jump])

    def _teardown_host_network(self) -> None:
        for _ in range(10):
            if run(
                ["iptables", "-w", "5", "-t", "nat", "-D", "PREROUTING", "-j", APISERVER_CHAIN], check=False
            ).returncode:
                break
        run(["iptables", "-w", "5", "-t", "nat", "-F", APISERVER_CHAIN], check=False)
        run(["iptables", "-w", "5", "-t", "nat", "-X", APISERVER_CHAIN], check=False)
        for hook, chain in GUARD_CHAINS.items():
            for _ in range(10):
                if run(["iptables", "-w", "5", "-t", "mangle", "-D", hook, "-j", chain], check=False).returncode:
                    break
            run(["iptables", "-w", "5", "-t", "mangle", "-F", chain], check=False)
            run(["iptables", "-w", "5", "-t", "mangle", "-X", chain], check=False)
        for binary in ("iptables", "ip6tables"):
            if which(binary) is None:
                continue
            for table, hooks in (("filter", ("INPUT", "FORWARD", "OUTPUT")), ("nat", ()), ("mangle", ())):
                for chain in LEFTOVER_CHAINS:
                    for hook in hooks:
                        for _ in range(10):
                            if run([binary, "-w", "5", "-t", table, "-D", hook, "-j", chain], check=False).returncode:
                                break
                    run([binary, "-w", "5", "-t", table, "-F", chain], check=False)
                    run([binary, "-w", "5", "-t", table, "-X", chain], check=False)
        if self.controlplane_state is not None:
            with contextlib.suppress(NodeError):
                run(["ip", "route", "del", self.controlplane().service_cidr, "dev", BRIDGE], check=False)
        self._update_hosts_file(add=False)
        if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            run(["ip", "link", "delete", BRIDGE])
        shutil.rmtree(CNI_CACHE_DIR / "networks" / CNI_NETWORK, ignore_errors=True)
        results = CNI_CACHE_DIR / "results"
        if results.is_dir():
            for pattern in (f"{CNI_NETWORK}-*", "cni-loopback-*"):  # ours and containerd's loopback attachments
                for entry in results.glob(pattern):
                    entry.unlink(missing_ok=True)

    def _restore_sysctls(self) -> None:
        failed = []
        for name, value in self.saved_sysctls.items():
            if read_sysctl(name) != value:
                try:
                    write_sysctl(name, value)
                except NodeError as exc:
                    failed.append(str(exc))
        self.saved_sysctls = {}
        if failed:
            raise NodeError("; ".join(failed))

    # ---- configuration files ------------------------------------------------------------------------------------

    def _write_configs(self, cp: ControlPlaneInfo, binaries: dict[str, Path]) -> None:
        pki = self.state_dir / "pki"
        identities = {
            "kubelet": (f"system:node:{self.node_name}", ["system:nodes"]),
            "kube-proxy": ("system:kube-proxy", []),
            "kube-scheduler": ("system:kube-scheduler", []),
        }
        for name, (common_name, groups) in identities.items():
            if name not in binaries:
                continue
            cert, key = pki / f"{name}.crt", pki / f"{name}.key"
            if not (cert.is_file() and key.is_file() and self._signed_by(cert, cp.ca_cert)):
                issue_client_cert(cp.ca_cert, cp.ca_key, common_name, groups, cert, key)
            write_file(
                self.state_dir / f"{name}.kubeconfig",
                kubeconfig_yaml(cp.server, cp.ca_cert, cert, key, common_name, cluster="local", namespace=None),
                0o600,
            )

        write_file(self.state_dir / "containerd.toml", self._containerd_config(binaries["runc"]))
        write_file(self.cni_conf_dir / "10-spiff-node.conflist", json.dumps(self._cni_config(), indent=2) + "\n")
        write_file(self.state_dir / "kubelet.yaml", json.dumps(self._kubelet_config(cp), indent=2) + "\n")
        if "kube-proxy" in binaries:
            write_file(self.state_dir / "kube-proxy.yaml", json.dumps(self._kube_proxy_config(), indent=2) + "\n")

    @staticmethod
    def _signed_by(cert_path: Path, ca_path: Path) -> bool:
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, OSError, InvalidSignature):
            return False
        return cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)

    def _containerd_config(self, runc: Path) -> str:
        return f"""\
# containerd for tools/node/node.py (no systemd: cgroupfs; runc, not crun; local pause image, no registry).
version = 2
root = "{CONTAINERD_ROOT}"
state = "{CONTAINERD_STATE}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{CONTAINERD_SOCKET}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_selinux = false
  disable_apparmor = true
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj (the kubelet asks -998 for sandboxes), which
  # fails every sandbox with "can't get final child's PID from pipe: EOF". Clamp to containerd's own value.
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{self.cni_conf_dir}"
    max_conf_num = 1
"""

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,  # nothing leaves the host, so nothing to masquerade
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.pod_cidr, "gateway": self.node_ip}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _kubelet_config(self, cp: ControlPlaneInfo) -> dict[str, Any]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # Kubernetes >= 1.35 refuses cgroup v1 (this host: hybrid v1 + empty unified) unless told otherwise.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
            "address": self.node_ip,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": KUBELET_HEALTHZ_PORT,
            # The API server calls the kubelet without a client certificate (logs, exec, port-forward). The
            # kubelet listens on the bridge address only, and pods are kept off its port by the guard rules.
            "authentication": {
                "anonymous": {"enabled": True},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(cp.ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "failSwapOn": False,
            "resolvConf": "",  # pods get no upstream resolver: no DNS traffic leaves the host
            # The cluster DNS on the node IP (ClusterFirst pods: nameserver, search <ns>.svc.<domain> ..., ndots 5).
            **({"clusterDNS": [self.node_ip], "clusterDomain": CLUSTER_DOMAIN} if self.cluster_dns else {}),
            "registerNode": True,
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": ["pods"],
            "podLogsDir": str(self.state_dir / "pod-logs"),
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,  # never remove the locally imported images
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "maxPods": 110,
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
        }

    def _kube_proxy_config(self) -> dict[str, Any]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.state_dir / "kube-proxy.kubeconfig")},
            "mode": "iptables",
            "hostnameOverride": self.node_name,
            "clusterCIDR": self.pod_cidr,
            "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}",
            "metricsBindAddress": f"127.0.0.1:{KUBE_PROXY_METRICS_PORT}",
            "nodePortAddresses": ["primary"],
            # Leave the host's conntrack sysctls alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "syncPeriod": "30s", "minSyncPeriod": "1s"},
        }

    # ---- processes ------------------------------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> Process:
        current = self.processes.get(name)
        if current is not None and current.running():
            return current
        proc = Process(name, argv, self.log_path(name))
        proc.start()
        self.processes[name] = proc
        self._save_state()
        return proc

    def _kubelet_argv(self, kubelet: Path) -> list[str]:
        (self.state_dir / "pod-logs").mkdir(parents=True, exist_ok=True)
        return [
            str(kubelet),
            f"--config={self.state_dir / 'kubelet.yaml'}",
            f"--kubeconfig={self.state_dir / 'kubelet.kubeconfig'}",
            f"--root-dir={self.kubelet_root}",
            f"--cert-dir={self.state_dir / 'pki' / 'kubelet-serving'}",
            f"--hostname-override={self.node_name}",
            f"--node-ip={self.node_ip}",
            f"--v={self.verbosity}",
        ]

    def _cluster_dns_argv(self, cp: ControlPlaneInfo) -> list[str]:
        return [
            sys.executable,
            str(CLUSTER_DNS_SCRIPT),
            f"--listen={self.node_ip}",
            f"--port={DNS_PORT}",
            f"--domain={CLUSTER_DOMAIN}",
            f"--server={cp.server}",
            f"--ca={cp.ca_cert}",
            f"--cert={cp.admin_cert}",
            f"--key={cp.admin_key}",
            *(["--verbose"] if self.verbosity >= 4 else []),
        ]

    def _kube_proxy_argv(self, kube_proxy: Path) -> list[str]:
        return [str(kube_proxy), f"--config={self.state_dir / 'kube-proxy.yaml'}", f"--v={self.verbosity}"]

    def _kube_scheduler_argv(self, kube_scheduler: Path) -> list[str]:
        kubeconfig = self.state_dir / "kube-scheduler.kubeconfig"
        port = 10259
        for candidate in range(10259, 10299):
            if port_free(candidate):
                port = candidate
                break
        return [
            str(kube_scheduler),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            "--leader-elect=false",
            f"--v={self.verbosity}",
        ]

    def _start_containerd(self, containerd: Path) -> None:
        current = self.processes.get("containerd")
        if current is not None and current.running():
            return
        if self._containerd_ready():
            raise NodeError(f"another containerd already serves {CONTAINERD_SOCKET}; stop it first")
        self._start("containerd", [str(containerd), f"--config={self.state_dir / 'containerd.toml'}"])
        proc = self.processes["containerd"]

        def ready() -> bool:
            if not proc.running():
                raise NodeError(f"containerd exited\n{tail(proc.log_path, heading=True)}")
            return self._containerd_ready()

        wait_until("containerd ready", ready, 30.0, 0.2, lambda: tail(proc.log_path, heading=True))

    def _containerd_ready(self) -> bool:
        if not CONTAINERD_SOCKET.exists():
            return False
        return run(["ctr", "--address", str(CONTAINERD_SOCKET), "version"], timeout=10, check=False).returncode == 0

    def _ctr(self, *args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            ["ctr", "--address", str(CONTAINERD_SOCKET), "-n", K8S_NAMESPACE, *args], timeout=timeout, check=check
        )

    def _ensure_pause_image(self) -> None:
        if PAUSE_IMAGE in self.images():
            return
        binary = cache_dir() / "pause" / f"pause-{_go_arch()}"
        archive = cache_dir() / "pause" / f"pause-{_go_arch()}.oci.tar"
        if not binary.is_file():
            log("building the pause binary (Go, static)")
            build_pause_binary(binary)
        if not archive.is_file() or archive.stat().st_mtime < binary.stat().st_mtime:
            write_pause_archive(binary, archive)
        self._ctr("images", "import", str(archive), timeout=120)
        if PAUSE_IMAGE not in self.images():
            raise NodeError(f"{PAUSE_IMAGE} missing after importing {archive}")

    def _wait_node_ready(self, cp: ControlPlaneInfo, timeout: float) -> None:
        last = "not registered yet"
        kubelet = self.processes["kubelet"]

        def ready() -> bool:
            nonlocal last
            for name, proc in self.processes.items():
                if not proc.running():
                    raise NodeError(f"{name} exited\n{tail(proc.log_path, heading=True)}")
            try:
                response = client.get(f"/api/v1/nodes/{self.node_name}")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                return False
            if response.status_code != 200:
                last = f"HTTP {response.status_code}"
                return False
            node = response.json()
            conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
            taints = [t["key"] for t in node.get("spec", {}).get("taints", []) or []]
            ready_condition = conditions.get("Ready", {})
            last = f"Ready={ready_condition.get('status')} ({ready_condition.get('message', '')}); taints={taints}"
            return ready_condition.get("status") == "True" and "node.kubernetes.io/not-ready" not in taints

        with cp.client(5.0) as client:
            wait_until(
                f"Node {self.node_name} Ready",
                ready,
                timeout,
                0.5,
                lambda: f"last: {last}\n{tail(kubelet.log_path, heading=True)}",
            )

    def _wait_cluster_dns(self, timeout: float) -> None:
        """Wait until the cluster DNS answers the ``kubernetes`` Service's name (it has listed the Services)."""
        proc = self.processes["cluster-dns"]
        name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
        last: tuple[int, int] | None = None

        def answers() -> bool:
            nonlocal last
            if not proc.running():
                raise NodeError(f"cluster-dns exited\n{tail(proc.log_path, heading=True)}")
            last = dns_query(self.node_ip, name)
            return last is not None and last[0] == 0 and last[1] > 0

        wait_until(
            f"cluster DNS answering {name} at {self.node_ip}:{DNS_PORT}",
            answers,
            timeout,
            0.2,
            lambda: f"last (rcode, answers): {last}\n{tail(proc.log_path, heading=True)}",
        )

    def _wait_http_ok(self, name: str, url: str, timeout: float) -> None:
        proc = self.processes[name]

        def ok() -> bool:
            if not proc.running():
                raise NodeError(f"{name} exited\n{tail(proc.log_path, heading=True)}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(url, timeout=2.0).status_code == 200
            return False

        wait_until(f"{name} healthy at {url}", ok, timeout, 0.5, lambda: tail(proc.log_path, heading=True))

    # ---- teardown ---------------------------------------------------------------------------------------------

    def _kube_proxy_cleanup(self) -> None:
        proc = self.processes["kube-proxy"]
        if Path(proc.argv[0]).is_file():
            run([proc.argv[0], "--cleanup", f"--config={self.state_dir / 'kube-proxy.yaml'}"], timeout=60, check=False)

    def _remove_all_pods(self) -> None:
        """Tear down every CRI sandbox: CNI DEL (from libcni's cache), kill and delete tasks and containers."""
        containers = self._ctr("containers", "list", "-q").stdout.split()
        netns_paths: dict[str, str] = {}
        for container_id in containers:
            info = self._ctr("containers", "info", container_id, check=False)
            if info.returncode != 0:
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                spec = json.loads(info.stdout).get("Spec") or {}
                for namespace in spec.get("linux", {}).get("namespaces", []):
                    if namespace.get("type") == "network" and namespace.get("path"):
                        netns_paths[container_id] = namespace["path"]
        self._cni_delete_cached(netns_paths)
        for container_id in containers:
            self._ctr("tasks", "kill", "--signal", "SIGKILL", container_id, check=False, timeout=15)
        for container_id in containers:
            for _ in range(20):
                result = self._ctr("tasks", "delete", "--force", container_id, check=False, timeout=15)
                if result.returncode == 0 or "not found" in result.stderr:
                    break
                time.sleep(0.25)
            self._ctr("containers", "delete", container_id, check=False, timeout=15)
        for path in set(netns_paths.values()):
            name = Path(path).name
            if run(["ip", "netns", "delete", name], check=False).returncode != 0 and Path(path).exists():
                run(["umount", "-l", path], check=False)
                Path(path).unlink(missing_ok=True)

    def _cni_delete_cached(self, netns_paths: dict[str, str]) -> None:
        """Run CNI DEL for every attachment of our network that libcni cached (releases IPs, port mappings)."""
        results = CNI_CACHE_DIR / "results"
        if not results.is_dir():
            return
        conflist = self._cni_config()
        for cached in sorted(results.glob(f"{CNI_NETWORK}-*")):
            try:
                data = json.loads(cached.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            container_id = str(data.get("containerId", ""))
            if_name = str(data.get("ifName", "eth0"))
            netns = netns_paths.get(container_id, "")
            if netns and not Path(netns).exists():
                netns = ""
            prev_result = data.get("result")
            for plugin in reversed(conflist["plugins"]):
                conf = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **plugin}
                if prev_result is not None:
                    conf["prevResult"] = prev_result
                capability_args = data.get("capabilityArgs") or {}
                wanted = {k: v for k, v in capability_args.items() if plugin.get("capabilities", {}).get(k)}
                if wanted:
                    conf["runtimeConfig"] = wanted
                env = {
                    "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "CNI_COMMAND": "DEL",
                    "CNI_CONTAINERID": container_id,
                    "CNI_NETNS": netns,
                    "CNI_IFNAME": if_name,
                    "CNI_PATH": str(CNI_BIN_DIR),
                }
                run(
                    [str(CNI_BIN_DIR / str(plugin["type"]))],
                    input_text=json.dumps(conf),
                    env=env,
                    timeout=30,
                    check=False,
                )
            cached.unlink(missing_ok=True)

    def _unmount_leftovers(self) -> None:
        prefixes = (str(self.kubelet_root) + "/", f"{CONTAINERD_STATE}/", "/run/netns/cni-", "/var/run/netns/cni-")
        mounts: list[str] = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
                mount_point = line.split()[4].replace("\\040", " ")
                if mount_point.startswith(prefixes) or mount_point == str(self.kubelet_root):
                    mounts.append(mount_point)
        for mount_point in sorted(set(mounts), key=len, reverse=True):
            run(["umount", "-l", mount_point], check=False, timeout=15)
        netns_dir = Path("/run/netns")
        if netns_dir.is_dir():
            for entry in netns_dir.glob("cni-*"):
                with contextlib.suppress(OSError):
                    entry.unlink()

    @staticmethod
    def _remove_containerd_state() -> None:
        """Remove containerd's run-time state directory (what a reboot would clear); images stay in its root."""
        with contextlib.suppress(OSError):
            mounts = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
            if f" {CONTAINERD_STATE}/" in mounts:
                raise NodeError(f"mounts remain under {CONTAINERD_STATE}")
        shutil.rmtree(CONTAINERD_STATE, ignore_errors=True)

    def _remove_cgroups(self) -> None:
        """Remove the (empty) kubepods cgroup trees the kubelet created in every hierarchy."""
        root = Path("/sys/fs/cgroup")
        candidates = [root / "kubepods", root / "kubepods.slice"]
        if root.is_dir():
            for hierarchy in root.iterdir():
                candidates += [hierarchy / "kubepods", hierarchy / "kubepods.slice"]
        busy = []
        for top in candidates:
            if not top.is_dir():
                continue
            directories = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
            for directory in [*directories, top]:
                try:
                    directory.rmdir()
                except OSError:
                    busy.append(str(directory))
        if busy:
            raise NodeError(f"cgroups still in use: {', '.join(busy[:5])}")

    def _delete_node_object(self) -> None:
        with contextlib.suppress(NodeError), self.controlplane().client(5.0) as client:
            client.delete(f"/api/v1/nodes/{self.node_name}")

    # ---- state ----------------------------------------------------------------------------------------------------

    def _save_state(self) -> None:
        if not self.state_dir.is_dir():
            return
        data = {
            "controlplane_state": str(self.controlplane_state) if self.controlplane_state else None,
            "bin_dir": str(self.bin_dir) if self.bin_dir else None,
            "node_name": self.node_name,
            "node_ip": self.node_ip,
            "pod_cidr": self.pod_cidr,
            "bridge": BRIDGE,
            "kube_proxy": str(self.kube_proxy) if self.kube_proxy is not None else None,
            "kube_scheduler": str(self.kube_scheduler) if self.kube_scheduler is not None else None,
            "cluster_dns": self.cluster_dns,
            "containerd_socket": str(CONTAINERD_SOCKET),
            "saved_sysctls": self.saved_sysctls,
            "timings": self.timings,
            "processes": {name: proc.to_json() for name, proc in self.processes.items()},
        }
        write_file(self.state_dir / STATE_FILE, json.dumps(data, indent=2) + "\n")
        live = {name: proc.pid for name, proc in self.processes.items() if proc.pid is not None}
        for pid_file in self.state_dir.glob("*.pid"):
            if pid_file.stem not in live:
                pid_file.unlink(missing_ok=True)
        for name, pid in live.items():
            (self.state_dir / f"{name}.pid").write_text(f"{pid}\n", encoding="ascii")


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="node.py", description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    def state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="node state directory")

    up = sub.add_parser("up", help="start containerd, cluster DNS, kubelet, kube-proxy, kube-scheduler; wait Ready")
    state_dir(up)
    up.add_argument("--controlplane-state", type=Path, required=True, help="state dir of controlplane.py up")
    up.add_argument("--bin-dir", type=Path, help="kubelet (kube-proxy, kube-scheduler) dir (default: build.sh's)")
    up.add_argument("--kube-proxy", help="kube-proxy binary ('' disables; default: BIN_DIR/kube-proxy if present)")
    up.add_argument("--kube-scheduler", help="kube-scheduler binary ('' disables; default: BIN_DIR/kube-scheduler)")
    up.add_argument("--no-cluster-dns", action="store_true", help="no cluster DNS (pods get no nameserver)")
    up.add_argument("--node-name", default=DEFAULT_NODE_NAME)
    up.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR, help="pod subnet on the bridge (node IP: its first host)")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the Node to be Ready")
    up.add_argument("-v", "--verbosity", type=int, default=0, help="--v of the Kubernetes components")

    down = sub.add_parser("down", help="stop everything, remove pods and network state, restore sysctls")
    state_dir(down)
    down.add_argument("--keep-state", action="store_true", help="keep the state directory (logs)")
    down.add_argument("--keep-node-object", action="store_true", help="do not delete the Node from the API")

    load = sub.add_parser("load-image", help="import a docker/OCI archive into containerd (namespace k8s.io)")
    state_dir(load)
    load.add_argument("archive", type=Path)

    status = sub.add_parser("status", help="print the node's state as JSON")
    state_dir(status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            node = Node(
                args.controlplane_state,
                args.state_dir,
                args.bin_dir,
                node_name=args.node_name,
                pod_cidr=args.pod_cidr,
                kube_proxy=args.kube_proxy,
                kube_scheduler=args.kube_scheduler,
                cluster_dns=not args.no_cluster_dns,
                ready_timeout=args.timeout,
                verbosity=args.verbosity,
            )
            if (args.state_dir / STATE_FILE).exists():
                previous = Node.load(args.state_dir)
                if previous.pids() and (previous.node_name, previous.pod_cidr) != (node.node_name, node.pod_cidr):
                    raise NodeError(f"a node with other settings runs from {args.state_dir}; run down first")
            node.up()
            print(json.dumps(node.status(), indent=2))
        elif args.command == "down":
            if not (args.state_dir / STATE_FILE).exists():
                log(f"no node state in {args.state_dir}: nothing to do")
                return 0
            Node.load(args.state_dir).down(remove_state=not args.keep_state, delete_node=not args.keep_node_object)
        elif args.command == "load-image":
            started = time.monotonic()
            print(Node.load(args.state_dir).load_image(args.archive))
            log(f"imported {args.archive} in {time.monotonic() - started:.1f}s")
        elif args.command == "status":
            print(json.dumps(Node.load(args.state_dir).status(), indent=2))
    except NodeError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
