"""Fixtures of the real-API-server suite: one control plane per session, a namespace per test.

The control plane's binaries are built by ``make k8s`` (``tools/k8s/build.sh``); when they are missing
the suite fails with what to run, it never skips. While a test runs, ``$KUBECONFIG`` names the control
plane's admin kubeconfig (the operator and the proxies log in with it, as real processes would).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from controlplane import ControlPlane, default_bin_dir
from e2e.realkube import ClusterApiError, Operators, RealCluster
from kube.fixtures import point_kubeconfig_env

from proxytest.paths import CRD

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


@dataclass(frozen=True)
class Kubectl:
    """The control plane's own kubectl (the same Kubernetes version as the server)."""

    binary: Path
    kubeconfig: Path

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    bin_dir = default_bin_dir()
    missing = [name for name in REQUIRED if not (bin_dir / name).is_file()]
    if missing:
        pytest.fail(
            f"the Kubernetes binaries {', '.join(missing)} are not built in {bin_dir}: run `make k8s` "
            "(tools/k8s/build.sh --with kubectl; needs Go 1.25 or later and the Go module proxy)",
            pytrace=False,
        )
    plane = ControlPlane(bin_dir, tmp_path_factory.mktemp("control-plane"), remove_state=True)
    plane.start()
    try:
        Kubectl(bin_dir / "kubectl", plane.kubeconfig)("apply", "--server-side", "-f", str(CRD))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    return Kubectl(default_bin_dir() / "kubectl", control_plane.kubeconfig)


@pytest.fixture
async def kube(control_plane: ControlPlane) -> AsyncIterator[RealCluster]:
    """A fresh namespace (deleted afterwards); ``$KUBECONFIG`` names the control plane meanwhile."""
    from kubernetes_asyncio import client, config

    point_kubeconfig_env(control_plane.kubeconfig)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(control_plane.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    cluster = RealCluster(api, f"e2e-{uuid.uuid4().hex[:8]}")
    await cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cluster.namespace}})
    try:
        yield cluster
    finally:
        try:
            await cluster.delete("v1", "Namespace", None, cluster.namespace)
        except ClusterApiError as error:
            if error.status != 404:
                raise
        await api.close()
        point_kubeconfig_env()  # back to the emulator's, as for every other test


@pytest.fixture
async def operators(kube: RealCluster) -> AsyncIterator[Operators]:
    running = Operators(kube.namespace)
    try:
        yield running
    finally:
        await running.stop_all()


@pytest.fixture
def runtimes() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def load_yaml(path: Path) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
