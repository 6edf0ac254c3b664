"""The install path on a real node: the project image built from the Dockerfile, a kubelet on
containerd + runc joined to the session's control plane, and the chart installed with helm.

Everything here is package-scoped: one node, one image, one release, shared by the tests of this
package in order (the path a platform team walks). The node needs root and the packages
``tools/node/image.sh`` installs; ``make e2e`` (or ``make test``) builds the image first.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from chart.helm import CHART, HELM_4, helm_for
from controlplane import ControlPlane, default_bin_dir
from e2e.conftest import Kubectl
from node import Node

from proxytest.paths import ROOT

IMAGE_REPOSITORY, IMAGE_TAG = "localhost/connector-proxy", "dev"
NAMESPACE = "e2e-install"
RELEASE = "cp"
PROXY = f"{RELEASE}-connector-proxy"


@pytest.fixture(scope="package")
def image_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project image, built from the repository's Dockerfile (cached layers make a rebuild quick)."""
    if os.geteuid() != 0:
        pytest.fail("the node tests need root (containerd, kubelet, a CNI bridge)", pytrace=False)
    archive = tmp_path_factory.mktemp("image") / "connector-proxy.tar"
    script = ROOT / "tools" / "node" / "image.sh"
    command = [str(script), "--tag", f"{IMAGE_REPOSITORY}:{IMAGE_TAG}", "--no-verify", "--export", str(archive)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        pytest.fail(f"tools/node/image.sh failed ({result.returncode}):\n{result.stderr[-4000:]}", pytrace=False)
    return archive


@pytest.fixture(scope="package")
def node(control_plane: ControlPlane, image_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    joined = Node(control_plane.state_dir, tmp_path_factory.mktemp("node"), default_bin_dir())
    try:
        joined.up()
        joined.load_image(image_archive)
        yield joined
    finally:
        joined.down()  # also after a failed start: nothing it started may outlive the session


@dataclass(frozen=True)
class Release:
    """The chart installed from the built image; the proxy's Service URL (its ClusterIP, via kube-proxy)."""

    namespace: str
    proxy_url: str
    api_key: str


def rollout(kubectl: Kubectl, namespace: str, deployment: str, timeout: int = 240) -> None:
    kubectl("rollout", "status", f"deployment/{deployment}", "-n", namespace, f"--timeout={timeout}s")


@pytest.fixture(scope="package")
def release(node: Node, control_plane: ControlPlane, kubectl: Kubectl) -> Iterator[Release]:
    helm = helm_for(HELM_4)
    base = ["--kubeconfig", str(control_plane.kubeconfig), "--namespace", NAMESPACE]
    values = [
        f"image.repository={IMAGE_REPOSITORY}",
        f"image.tag={IMAGE_TAG}",
        "image.pullPolicy=Never",
        "proxy.replicas=1",
    ]
    sets = [arg for value in values for arg in ("--set", value)]
    helm.run("install", RELEASE, str(CHART), *base, "--create-namespace", *sets, "--timeout", "300s")
    try:
        for deployment in (PROXY, f"{PROXY}-operator"):
            rollout(kubectl, NAMESPACE, deployment)
        ip = kubectl("get", "service", PROXY, "-n", NAMESPACE, "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
        # Ready pods are not yet a reachable Service: kube-proxy programs the new endpoints a moment later
        # (until then a connection to the ClusterIP is refused).
        wait(lambda: _answers(f"http://{ip}:7004/v1/liveness"), within=60, what="the proxy Service answering")
        secret = f"{PROXY}-keys"
        raw = kubectl("get", "secret", secret, "-n", NAMESPACE, "-o", "jsonpath={.data.api-key}").stdout
        yield Release(NAMESPACE, f"http://{ip}:7004", base64.b64decode(raw).decode())
    finally:
        helm.run("uninstall", RELEASE, *base, "--wait", "--timeout", "120s", check=False)
        kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait(probe: Callable[[], object], *, within: float, every: float = 0.5, what: str = "") -> None:
    """Call ``probe()`` until it returns true (bounded in time)."""
    deadline = time.monotonic() + within
    while True:
        if probe():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within:g}s: {what or probe}")
        time.sleep(every)
