"""Single-node Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for tests and development.

The binaries come from ``tools/k8s/build.sh``; this module generates its own PKI, starts the three processes on
free loopback ports, writes an admin kubeconfig and waits until the API server is ready.

Library use::

    from controlplane import ControlPlane

    with ControlPlane() as cp:            # bin dir from build.sh, throw-away state dir
        run_tests(cp.kubeconfig, cp.server)
        cp.restart_apiserver()           # same etcd, port and certificates

Command line use::

    python tools/k8s/controlplane.py up --state-dir .cluster     # detached; writes .cluster/kubeconfig
    KUBECONFIG=.cluster/kubeconfig kubectl get ns
    python tools/k8s/controlplane.py down --state-dir .cluster   # stops it and removes .cluster
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TOOLS_DIR = Path(__file__).resolve().parent
VERSIONS_FILE = TOOLS_DIR / "versions.env"
BUILD_SCRIPT = TOOLS_DIR / "build.sh"

# Marks a state directory as ours, so that ``down`` never removes anything else.
STATE_MARKER = ".spiff-controlplane"
STATE_FILE = "state.json"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
DEFAULT_SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "spiff-local"


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, reached or stopped."""


# --------------------------------------------------------------------------------------------------------------------
# Versions and binaries
# --------------------------------------------------------------------------------------------------------------------


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the ``KEY=value`` lines of versions.env (comments and blank lines ignored)."""
    versions: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip().strip("'\"")
    return versions


def default_bin_dir() -> Path:
    """The bin directory build.sh builds into (asks build.sh itself, so the path logic lives in one place)."""
    result = subprocess.run(  # noqa: S603 - fixed argv, our own script
        ["bash", str(BUILD_SCRIPT), "--print-dir"],  # noqa: S607 - bash from PATH on purpose
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise ControlPlaneError(f"{BUILD_SCRIPT} --print-dir printed nothing")
    return Path(lines[-1])


def build_binaries(timeout: float = 3600.0) -> Path:
    """Run build.sh (a no-op when the binaries are current) and return the bin directory."""
    result = subprocess.run(  # noqa: S603 - fixed argv, our own script
        ["bash", str(BUILD_SCRIPT)],  # noqa: S607 - bash from PATH on purpose
        check=False,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def _check_binaries(bin_dir: Path) -> None:
    missing = [name for name in COMPONENTS if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise ControlPlaneError(
            f"missing binaries in {bin_dir}: {', '.join(missing)}; build them with: bash {BUILD_SCRIPT}"
        )


# --------------------------------------------------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------------------------------------------------

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: PrivateKey


def x509_name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def write_key(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    path.write_bytes(data)
    path.chmod(0o600)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issuer | None,
    *,
    is_ca: bool = False,
    usages: Sequence[x509.ObjectIdentifier] = (),
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    days: int = 365,
    subject_key_identifier: bool = True,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    signer_cert_name = issuer.cert.subject if issuer else subject
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey) and not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if subject_key_identifier:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if dns_names or ip_addresses:
        general_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        general_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Pki:
    """Paths of the generated certificates and keys (all PEM)."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.crt")

    @property
    def ca_key(self) -> Path:
        return self.path("ca.key")

    @property
    def admin_cert(self) -> Path:
        return self.path("admin.crt")

    @property
    def admin_key(self) -> Path:
        return self.path("admin.key")

    def exists(self) -> bool:
        return (self.directory / "complete").is_file()

    def generate(self, service_cluster_ip: str) -> None:
        """Create the CA, serving and client certificates and the service-account key pair."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        server, client = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH

        def issue_ca(stem: str, common_name: str) -> Issuer:
            key = new_ec_key()
            cert = make_cert(x509_name(common_name), key, None, is_ca=True, days=3650)
            write_key(self.path(f"{stem}.key"), key)
            write_cert(self.path(f"{stem}.crt"), cert)
            return Issuer(cert, key)

        def issue(stem: str, issuer: Issuer, subject: x509.Name, **kwargs: Any) -> None:
            key = new_ec_key()
            write_key(self.path(f"{stem}.key"), key)
            write_cert(self.path(f"{stem}.crt"), make_cert(subject, key, issuer, **kwargs))

        ca = issue_ca("ca", f"{CLUSTER_NAME}-ca")
        issue(
            "apiserver",
            ca,
            x509_name("kube-apiserver"),
            usages=[server],
            dns_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ip_addresses=["127.0.0.1", "::1", service_cluster_ip],
        )
        issue("admin", ca, x509_name("kubernetes-admin", ["system:masters"]), usages=[client])
        issue("controller-manager", ca, x509_name("system:kube-controller-manager"), usages=[client])
        issue(
            "controller-manager-serving",
            ca,
            x509_name("kube-controller-manager"),
            usages=[server],
            dns_names=["localhost"],
            ip_addresses=["127.0.0.1"],
        )
        front_proxy_ca = issue_ca("front-proxy-ca", f"{CLUSTER_NAME}-front-proxy-ca")
        issue("front-proxy-client", front_proxy_ca, x509_name("front-proxy-client"), usages=[client])

        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_key(self.path("sa.key"), sa_key)
        self.path("sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.path("complete").write_text("ok\n", encoding="utf-8")


def kubeconfig_yaml(
    server: str,
    ca: Path,
    cert: Path,
    key: Path,
    user: str,
    *,
    cluster: str = CLUSTER_NAME,
    namespace: str | None = "default",
) -> str:
    """A kubeconfig for ``user`` with embedded certificates; its context names ``namespace`` unless None."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode("ascii")

    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: {cluster}\n"
        "  cluster:\n"
        f"    server: {server}\n"
        f"    certificate-authority-data: {b64(ca)}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"    client-certificate-data: {b64(cert)}\n"
        f"    client-key-data: {b64(key)}\n"
        "contexts:\n"
        f"- name: {user}@{cluster}\n"
        "  context:\n"
        f"    cluster: {cluster}\n"
        f"    user: {user}\n"
        + (f"    namespace: {namespace}\n" if namespace is not None else "")
        + f"current-context: {user}@{cluster}\n"
    )


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` (through a temporary file, replaced atomically) with permission bits ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


CMDLINE_POLLS = 200  # x CMDLINE_POLL_S: how long a new process's argv may take to appear
CMDLINE_POLL_S = 0.01


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as gone
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def pid_runs(pid: int, executable: str) -> bool:
    """True when ``pid`` is alive and was started from ``executable`` (guards against reused pids)."""
    if not _pid_alive(pid):
        return False
    # Empty while the kernel is still loading the new program: right after Popen returns (its
    # close-on-exec pipe closes before the new argv is in place), a large binary can be seen so.
    # Wait for it a little (a busy machine takes longer); still empty then, trust the pid.
    argv0 = ""
    for _ in range(CMDLINE_POLLS):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except OSError:
            return True  # no /proc: trust the pid
        if argv0:
            break
        time.sleep(CMDLINE_POLL_S)
    return argv0 in (executable, "")


def tail(path: Path, lines: int = 40, *, heading: bool = False) -> str:
    """The last ``lines`` lines of a log file ("" if it does not exist), after a line naming it if ``heading``."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = "\n".join(data.splitlines()[-lines:])
    return f"---- tail of {path}:\n{text}" if heading else text


def spawn(name: str, argv: list[str], log_path: Path, *, detach: bool) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log_path``, after a line saying when ``name`` started and how.

    ``detach`` starts it in a session of its own, so that it outlives this Python process.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes]
    with log_path.open("ab") as log:
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        log.write(f"---- {stamp} starting {name}: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(  # noqa: S603 - argv built from our own binaries and flags
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
            close_fds=True,
        )


@dataclass
class _Process:
    name: str
    argv: list[str]
    log_path: Path
    pid: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *, detach: bool) -> None:
        self.popen = spawn(self.name, self.argv, self.log_path, detach=detach)
        self.pid = self.popen.pid

    def running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and pid_runs(self.pid, self.argv[0])

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def _wait(self, timeout: float) -> bool:
        if self.popen is not None:
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = 15.0, *, kill: bool = False) -> None:
        """SIGTERM (SIGKILL right away if ``kill``), then SIGKILL after ``timeout`` seconds."""
        if self.pid is None or not self.running():
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL if kill else signal.SIGTERM)
        if not self._wait(timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            if not self._wait(10.0):
                raise ControlPlaneError(f"{self.name} (pid {self.pid}) did not exit after SIGKILL")
        self._reap()

    def _reap(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1.0)
        self.popen = None
        self.pid = None


# --------------------------------------------------------------------------------------------------------------------
# Control plane
# --------------------------------------------------------------------------------------------------------------------


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on loopback, with generated PKI.

    ``bin_dir`` defaults to build.sh's bin directory. ``state_dir`` holds the PKI, etcd data, kubeconfigs and
    process logs (``logs/<component>.log``); without one a temporary directory is used and removed by ``stop()``.
    ``detach=True`` puts the processes in their own session so they outlive this Python process (the CLI's ``up``).
    """

    def __init__(
        self,
        bin_dir: Path | str | None = None,
        state_dir: Path | str | None = None,
        *,
        kubeconfig: Path | str | None = None,
        service_cidr: str = DEFAULT_SERVICE_CIDR,
        ready_timeout: float = 120.0,
        wait_for_default_service_account: bool = True,
        detach: bool = False,
        remove_state: bool | None = None,
        extra_apiserver_args: Sequence[str] = (),
        extra_controller_manager_args: Sequence[str] = (),
        verbosity: int = 1,
    ) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir is not None else default_bin_dir()
        self._temporary_state = state_dir is None
        self.state_dir = (
            Path(state_dir).absolute() if state_dir is not None else Path(tempfile.mkdtemp(prefix="spiff-k8s-"))
        )
        self.kubeconfig = Path(kubeconfig).absolute() if kubeconfig is not None else self.state_dir / "kubeconfig"
        self.service_cidr = service_cidr
        self.ready_timeout = ready_timeout
        self.wait_for_default_service_account = wait_for_default_service_account
        self.detach = detach
        self.remove_state = self._temporary_state if remove_state is None else remove_state
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.extra_controller_manager_args = list(extra_controller_manager_args)
        self.verbosity = verbosity

        self.pki = Pki(self.state_dir / "pki")
        self.log_dir = self.state_dir / "logs"
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self.apiserver_port = 0
        self.controller_manager_port = 0
        self.version = ""
        self.startup_seconds = 0.0
        self.timings: dict[str, float] = {}
        self._processes: dict[str, _Process] = {}
        self._atexit_registered = False

    # ---- public API ---------------------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The API server's https URL."""
        if not self.apiserver_port:
            raise ControlPlaneError("the control plane has not been started")
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_cert

    @property
    def admin_cert_file(self) -> Path:
        return self.pki.admin_cert

    @property
    def admin_key_file(self) -> Path:
        return self.pki.admin_key

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._processes.items() if proc.pid is not None and proc.running()}

    def start(self) -> Self:
        """Generate PKI (once), start etcd, kube-apiserver and kube-controller-manager, wait until ready."""
        if self.pids():
            raise ControlPlaneError(f"already running: {self.pids()}")
        self._processes = {}
        self.timings = {}
        _check_binaries(self.bin_dir)
        started = time.monotonic()
        deadline = started + self.ready_timeout
        self._prepare_state_dir()

        def mark(step: str) -> None:
            self.timings[step] = round(time.monotonic() - started, 2)

        try:
            mark("pki")
            self._start_etcd(deadline)
            mark("etcd_healthy")
            self._start_apiserver()
            self._save_state()
            self.wait_ready(timeout=max(1.0, deadline - time.monotonic()))
            mark("apiserver_ready")
            # Started once the API server is ready: it comes up faster than one that backs off while waiting.
            self._start_controller_manager()
            self._save_state()
            if self.wait_for_default_service_account:
                self._wait_for_default_service_account(min(30.0, max(1.0, deadline - time.monotonic())))
                mark("default_service_account")
        except BaseException:
            with contextlib.suppress(ControlPlaneError):
                self._stop_processes()
            if self.remove_state:  # a temporary state dir goes; a given one stays, with its logs
                self._remove_state_dir()
            raise
        self.startup_seconds = time.monotonic() - started
        self._save_state()
        if not self.detach and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        return self

    def stop(self, *, remove_state: bool | None = None) -> None:
        """Stop all processes (controller-manager, API server, etcd) and optionally remove the state directory."""
        self._stop_processes()
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        if self.remove_state if remove_state is None else remove_state:
            self._remove_state_dir()
        else:
            self._save_state()

    def stop_apiserver(self, timeout: float = 15.0, *, kill: bool = False) -> None:
        """Stop only the API server (etcd and the controller-manager keep running).

        SIGTERM and up to ``timeout`` seconds of graceful shutdown, or SIGKILL at once with ``kill=True`` (a crash).
        """
        proc = self._processes.get("kube-apiserver")
        if proc is not None:
            proc.stop(timeout, kill=kill)
        self._save_state()

    def start_apiserver(self, timeout: float | None = None) -> None:
        """Start the API server again with the same etcd, port and certificates, and wait until it is ready."""
        proc = self._processes.get("kube-apiserver")
        if proc is None:
            raise ControlPlaneError("the control plane has not been started")
        if proc.running():
            raise ControlPlaneError("kube-apiserver is already running")
        proc.start(detach=self.detach)
        self._save_state()
        self.wait_ready(timeout=self.ready_timeout if timeout is None else timeout)

    def restart_apiserver(self, *, downtime: float = 0.0, kill: bool = False, timeout: float | None = None) -> None:
        """Stop the API server, stay down for ``downtime`` seconds, start it again on the same port, wait ready."""
        self.stop_apiserver(kill=kill)
        if downtime > 0:
            time.sleep(downtime)
        self.start_apiserver(timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until ``/readyz`` answers ok; on failure raise with the tail of the API server log."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with self._client(timeout=5.0) as client:
            while True:
                self._ensure_running("kube-apiserver", "etcd")
                try:
                    response = client.get("/readyz")
                    if response.status_code == 200 and response.text.strip() == "ok":
                        break
                    failed = [line for line in response.text.splitlines() if line.startswith("[-]")]
                    last = f"HTTP {response.status_code}: {' '.join(failed) or response.text.strip()[-300:]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise ControlPlaneError(
                        f"kube-apiserver not ready after {timeout:.0f}s at {self.server}/readyz ({last})\n"
                        f"---- tail of {self.log_path('kube-apiserver')}:\n{tail(self.log_path('kube-apiserver'))}"
                    )
                time.sleep(0.25)
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                self.version = str(client.get("/version").json()["gitVersion"])

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context trusting the cluster CA and presenting the admin client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.admin_cert_file), str(self.admin_key_file))
        return context

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ---- attaching to a detached control plane ------------------------------------------------------------------

    @classmethod
    def load(cls, state_dir: Path | str) -> ControlPlane:
        """A handle on a control plane started earlier (e.g. by ``up``) from its state directory."""
        state_path = Path(state_dir).absolute()
        try:
            data = json.loads((state_path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ControlPlaneError(f"no control plane state in {state_path}: {exc}") from exc
        plane = cls(
            data["bin_dir"],
            state_path,
            kubeconfig=data["kubeconfig"],
            service_cidr=data["service_cidr"],
            detach=bool(data["detach"]),
            remove_state=False,
            wait_for_default_service_account=False,
        )
        plane.etcd_client_port = int(data["etcd_client_port"])
        plane.etcd_peer_port = int(data["etcd_peer_port"])
        plane.apiserver_port = int(data["apiserver_port"])
        plane.controller_manager_port = int(data["controller_manager_port"])
        plane.version = str(data.get("version", ""))
        plane.startup_seconds = float(data.get("startup_seconds", 0.0))
        for name, entry in data["processes"].items():
            plane._processes[name] = _Process(
                name, list(entry["argv"]), Path(entry["log"]), int(entry["pid"]) if entry["pid"] else None
            )
        return plane

    # ---- internals ----------------------------------------------------------------------------------------------

    def _prepare_state_dir(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        marker = self.state_dir / STATE_MARKER
        if not marker.exists() and any(self.state_dir.iterdir()):
            raise ControlPlaneError(f"{self.state_dir} is not empty and not a control plane state directory")
        marker.write_text("state directory of tools/k8s/controlplane.py\n", encoding="utf-8")
        if (self.state_dir / STATE_FILE).exists():
            previous = ControlPlane.load(self.state_dir)
            if previous.pids():
                raise ControlPlaneError(f"a control plane is already running from {self.state_dir}: {previous.pids()}")
        # etcd data and logs from an earlier run are discarded; the PKI is kept.
        shutil.rmtree(self.state_dir / "etcd", ignore_errors=True)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        network = ipaddress.ip_network(self.service_cidr)
        if not self.pki.exists():
            self.pki.generate(str(next(network.hosts())))

    def _start_etcd(self, deadline: float) -> None:
        self.etcd_client_port = free_port()
        self.etcd_peer_port = free_port()
        data_dir = self.state_dir / "etcd"
        data_dir.mkdir(mode=0o700)
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        argv = [
            str(self.bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",  # throw-away data: skip fsync for speed
            "--log-level=warn",
        ]
        proc = _Process("etcd", argv, self.log_path("etcd"))
        self._processes["etcd"] = proc
        proc.start(detach=self.detach)
        last = "no answer yet"
        with httpx.Client(base_url=self.etcd_url, timeout=2.0) as client:
            while True:
                self._ensure_running("etcd")
                try:
                    response = client.get("/health")
                    if response.status_code == 200 and response.json().get("health") == "true":
                        return
                    last = f"HTTP {response.status_code}: {response.text[-300:]}"
                except (httpx.HTTPError, ValueError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise ControlPlaneError(
                        f"etcd not healthy at {self.etcd_url} ({last})\n{tail(self.log_path('etcd'))}"
                    )
                time.sleep(0.1)

    def _start_apiserver(self) -> None:
        self.apiserver_port = free_port()
        pki = self.pki
        write_file(
            self.kubeconfig,
            kubeconfig_yaml(self.server, pki.ca_cert, pki.admin_cert, pki.admin_key, "kubernetes-admin"),
            0o600,
        )
        argv = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # Endpoints may not hold loopback addresses, so the default reconciler would fail every 10 s.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.state_dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.path('apiserver.crt')}",
            f"--tls-private-key-file={pki.path('apiserver.key')}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.path('sa.pub')}",
            f"--service-account-signing-key-file={pki.path('sa.key')}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            # Close open watches on SIGTERM; without it shutdown waits for them until the request timeout (60 s).
            "--shutdown-watch-termination-grace-period=2s",
            "--profiling=false",
            f"--requestheader-client-ca-file={pki.path('front-proxy-ca.crt')}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.path('front-proxy-client.crt')}",
            f"--proxy-client-key-file={pki.path('front-proxy-client.key')}",
            f"--v={self.verbosity}",
            *self.extra_apiserver_args,
        ]
        proc = _Process("kube-apiserver", argv, self.log_path("kube-apiserver"))
        self._processes["kube-apiserver"] = proc
        proc.start(detach=self.detach)

    def _start_controller_manager(self) -> None:
        self.controller_manager_port = free_port()
        pki = self.pki
        kubeconfig = self.state_dir / "controller-manager.kubeconfig"
        write_file(
            kubeconfig,
            kubeconfig_yaml(
                self.server,
                pki.ca_cert,
                pki.path("controller-manager.crt"),
                pki.path("controller-manager.key"),
                "system:kube-controller-manager",
            ),
            0o600,
        )
        argv = [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.controller_manager_port}",
            f"--cert-dir={self.state_dir / 'controller-manager-certs'}",
            f"--tls-cert-file={pki.path('controller-manager-serving.crt')}",
            f"--tls-private-key-file={pki.path('controller-manager-serving.key')}",
            f"--client-ca-file={pki.ca_cert}",
            f"--requestheader-client-ca-file={pki.path('front-proxy-ca.crt')}",
            "--leader-elect=false",
            # Each controller gets its own service account and token at start-up; the default client rate limit
            # (20 QPS) makes that take seconds.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.path('sa.key')}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--cluster-name={CLUSTER_NAME}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--profiling=false",
            f"--v={self.verbosity}",
            *self.extra_controller_manager_args,
        ]
        proc = _Process("kube-controller-manager", argv, self.log_path("kube-controller-manager"))
        self._processes["kube-controller-manager"] = proc
        proc.start(detach=self.detach)

    def _wait_for_default_service_account(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = "/api/v1/namespaces/default/serviceaccounts/default"
        with self._client(timeout=5.0) as client:
            while True:
                self._ensure_running(*COMPONENTS)
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(path).status_code == 200:
                        return
                if time.monotonic() >= deadline:
                    log = self.log_path("kube-controller-manager")
                    raise ControlPlaneError(
                        f"service account default/default not created within {timeout:.0f}s\n"
                        f"---- tail of {log}:\n{tail(log)}"
                    )
                time.sleep(0.2)

    def _client(self, timeout: float) -> httpx.Client:
        return httpx.Client(base_url=self.server, verify=self.ssl_context(), timeout=timeout)

    def _ensure_running(self, *names: str) -> None:
        for name in names:
            proc = self._processes.get(name)
            if proc is not None and not proc.running():
                code = proc.exit_code()
                raise ControlPlaneError(
                    f"{name} exited{'' if code is None else f' with code {code}'}\n"
                    f"---- tail of {proc.log_path}:\n{tail(proc.log_path)}"
                )

    def _stop_processes(self) -> None:
        errors: list[str] = []
        for name in reversed(COMPONENTS):
            proc = self._processes.get(name)
            if proc is None:
                continue
            try:
                proc.stop()
            except ControlPlaneError as exc:
                errors.append(str(exc))
        if errors:
            raise ControlPlaneError("; ".join(errors))

    def _remove_state_dir(self) -> None:
        if self._temporary_state or (self.state_dir / STATE_MARKER).exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _save_state(self) -> None:
        if not self.state_dir.is_dir():
            return
        data = {
            "bin_dir": str(self.bin_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": f"https://127.0.0.1:{self.apiserver_port}",
            "service_cidr": self.service_cidr,
            "detach": self.detach,
            "etcd_client_port": self.etcd_client_port,
            "etcd_peer_port": self.etcd_peer_port,
            "apiserver_port": self.apiserver_port,
            "controller_manager_port": self.controller_manager_port,
            "version": self.version,
            "startup_seconds": round(self.startup_seconds, 2),
            "processes": {
                name: {"pid": proc.pid, "argv": proc.argv, "log": str(proc.log_path)}
                for name, proc in self._processes.items()
            },
        }
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.state_dir / STATE_FILE)
        for name, proc in self._processes.items():
            pid_file = self.state_dir / f"{name}.pid"
            if proc.pid is not None:
                pid_file.write_text(f"{proc.pid}\n", encoding="ascii")
            else:
                pid_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------


def _cmd_up(args: argparse.Namespace) -> int:
    bin_dir = Path(args.bin_dir) if args.bin_dir else (build_binaries() if args.build else default_bin_dir())
    plane = ControlPlane(
        bin_dir,
        args.state_dir,
        kubeconfig=args.kubeconfig,
        ready_timeout=args.timeout,
        detach=True,
        remove_state=False,
    )
    plane.start()
    steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in plane.timings.items())
    print(f"control plane {plane.version or '?'} ready in {plane.startup_seconds:.1f}s at {plane.server} ({steps})")
    print(f"logs: {plane.log_dir}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    if not (state_dir / STATE_FILE).exists():
        if (state_dir / STATE_MARKER).exists() and not args.keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
        print(f"no control plane state in {state_dir}; nothing to stop")
        return 0
    ControlPlane.load(state_dir).stop(remove_state=not args.keep_state)
    print(f"stopped control plane from {state_dir}" + ("" if args.keep_state else " and removed it"))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    plane = ControlPlane.load(args.state_dir)
    pids = plane.pids()
    for name in COMPONENTS:
        print(f"{name}: {'running, pid ' + str(pids[name]) if name in pids else 'stopped'}")
    print(f"server: {plane.server}\nkubeconfig: {plane.kubeconfig}")
    return 0 if len(pids) == len(COMPONENTS) else 1


def _cmd_restart_apiserver(args: argparse.Namespace) -> int:
    plane = ControlPlane.load(args.state_dir)
    plane.ready_timeout = args.timeout
    started = time.monotonic()
    plane.restart_apiserver(downtime=args.downtime, kill=args.kill)
    print(f"kube-apiserver restarted and ready in {time.monotonic() - started:.1f}s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start a detached control plane and wait until it is ready")
    up.add_argument("--state-dir", default=".cluster", help="state directory (default: .cluster)")
    up.add_argument("--bin-dir", help="directory with etcd, kube-apiserver, kube-controller-manager")
    up.add_argument("--build", action="store_true", help="run build.sh first (no-op when already built)")
    up.add_argument("--kubeconfig", help="where to write the admin kubeconfig (default: STATE_DIR/kubeconfig)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness (default: 120)")
    up.set_defaults(func=_cmd_up)

    down = sub.add_parser("down", help="stop the control plane and remove its state directory")
    down.add_argument("--state-dir", default=".cluster")
    down.add_argument("--keep-state", action="store_true", help="keep the state directory (logs, PKI)")
    down.set_defaults(func=_cmd_down)

    status = sub.add_parser("status", help="show which processes run (exit 1 unless all do)")
    status.add_argument("--state-dir", default=".cluster")
    status.set_defaults(func=_cmd_status)

    restart = sub.add_parser("restart-apiserver", help="restart kube-apiserver alone (same port, etcd, certs)")
    restart.add_argument("--state-dir", default=".cluster")
    restart.add_argument("--downtime", type=float, default=0.0, help="seconds to stay down (default: 0)")
    restart.add_argument("--kill", action="store_true", help="SIGKILL instead of a graceful SIGTERM")
    restart.add_argument("--timeout", type=float, default=120.0)
    restart.set_defaults(func=_cmd_restart_apiserver)

    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (ControlPlaneError, subprocess.SubprocessError, OSError) as exc:
        print(f"controlplane: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
