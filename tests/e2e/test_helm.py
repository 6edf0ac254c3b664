"""The chart as a platform team installs it: ``helm install``, ``upgrade`` and ``uninstall`` (not
``template``) with the real helm against the real API server, and the CRD's documented upgrade path.

Without a node the pods stay Pending; what the chart creates, changes, keeps and removes is checked
here, pods that run in ``tests/e2e/node``.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from chart.helm import CHART, HELM_4, Helm, helm_for
from controlplane import ControlPlane
from e2e.conftest import Kubectl
from e2e.realkube import RealCluster, operator_process, proxy_process
from kube.connectors import connector, runtime_app, wait_condition
from kube.fixtures import eventually

from proxytest.servers import serve_in_thread

RELEASE = "cp"
PROXY = f"{RELEASE}-connector-proxy"
T = TypeVar("T")


class ClusterHelm:
    """helm with the control plane's kubeconfig, in the test's namespace."""

    def __init__(self, helm: Helm, plane: ControlPlane, namespace: str) -> None:
        self.helm, self.kubeconfig, self.namespace = helm, str(plane.kubeconfig), namespace

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.helm.run(*args, "--kubeconfig", self.kubeconfig, "--namespace", self.namespace, check=check)


@pytest.fixture
def helm(control_plane: ControlPlane, kube: RealCluster) -> Iterator[ClusterHelm]:
    cluster_helm = ClusterHelm(helm_for(HELM_4), control_plane, kube.namespace)
    yield cluster_helm
    cluster_helm("uninstall", RELEASE, "--ignore-not-found", check=False)


async def until(probe: Callable[[], Awaitable[T | None]]) -> T:
    return await eventually(probe, within=60)


async def _deployments(kube: RealCluster) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in await kube.list("apps/v1", "Deployment", kube.namespace)}


async def test_install_upgrade_uninstall(helm: ClusterHelm, kube: RealCluster, kubectl: Kubectl) -> None:
    installed = helm("install", RELEASE, str(CHART), "--set", "proxy.replicas=1")
    assert "SPIFFWORKFLOW_BACKEND_CONNECTOR_PROXY_URL" in installed.stdout  # the NOTES, as a user reads them
    deployments = await _deployments(kube)
    assert set(deployments) == {PROXY, f"{PROXY}-operator"}
    assert deployments[PROXY]["spec"]["replicas"] == 1
    # The Deployment controller really runs: each Deployment gets its ReplicaSet and Pods (Pending: no node).
    replica_sets = await until(lambda: _nonempty(kube.list("apps/v1", "ReplicaSet", kube.namespace)))
    assert {r["metadata"]["ownerReferences"][0]["name"] for r in replica_sets} == set(deployments)
    keys = await kube.get("v1", "Secret", kube.namespace, f"{PROXY}-keys")
    assert keys is not None
    api_key = base64.b64decode(keys["data"]["api-key"])
    assert len(api_key) >= 32

    upgraded = helm("upgrade", RELEASE, str(CHART), "--set", "proxy.replicas=3", "--set", "proxy.logLevel=DEBUG")
    assert "STATUS: deployed" in upgraded.stdout
    deployment = (await _deployments(kube))[PROXY]
    assert deployment["spec"]["replicas"] == 3
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONNECTOR_PROXY_LOG_LEVEL"] == "DEBUG"
    kept = await kube.get("v1", "Secret", kube.namespace, f"{PROXY}-keys")
    assert kept is not None and base64.b64decode(kept["data"]["api-key"]) == api_key  # kept across upgrades
    history = helm("history", RELEASE, "--output", "json").stdout
    assert '"revision":2' in history.replace(" ", "")

    # The CRD's upgrade path, as the chart README documents it.
    crds = helm.helm.run("show", "crds", str(CHART)).stdout
    applied = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crds)
    assert "customresourcedefinition.apiextensions.k8s.io/connectors.connectors.spiffworkflow.org" in applied.stdout

    helm("uninstall", RELEASE, "--wait", "--timeout", "60s")
    assert await until(lambda: _empty(kube.list("apps/v1", "Deployment", kube.namespace)))
    assert await until(lambda: _empty(kube.list("apps/v1", "ReplicaSet", kube.namespace)))  # collected
    crd = kubectl("get", "crd", "connectors.connectors.spiffworkflow.org", "-o", "name")
    assert crd.stdout.strip()  # Helm never deletes CRDs from crds/


async def _nonempty(items: Awaitable[list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    found = await items
    return found if len(found) >= 2 else None


async def _empty(items: Awaitable[list[dict[str, Any]]]) -> bool | None:
    return True if not await items else None


def _token_kubeconfig(path: Path, plane: ControlPlane, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cp", "cluster": {"server": plane.server, "certificate-authority": str(plane.ca_file)}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "cp", "user": "sa"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def _service_account_token(kube: RealCluster, name: str) -> str:
    path = kube.path("v1", "ServiceAccount", kube.namespace, name) + "/token"
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    answer = await kube.request("POST", path, request)
    token: str = answer["status"]["token"]
    return token


async def test_the_charts_rbac_is_all_the_operator_and_the_proxy_need(
    helm: ClusterHelm, kube: RealCluster, control_plane: ControlPlane, tmp_path: Path, runtimes: ExitStack
) -> None:
    """The operator and a proxy as processes, logged in as the chart's ServiceAccounts (tokens from
    the TokenRequest API) instead of as cluster admin: a request outside the chart's Roles is a 403."""
    helm("install", RELEASE, str(CHART), "--set", "proxy.replicas=1")
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    operator_config = _token_kubeconfig(
        tmp_path / "operator", control_plane, await _service_account_token(kube, f"{PROXY}-operator")
    )
    proxy_config = _token_kubeconfig(tmp_path / "proxy", control_plane, await _service_account_token(kube, PROXY))
    async with (
        operator_process(operator_config, kube.namespace) as operator,
        proxy_process(proxy_config, kube.namespace) as proxy,
    ):
        await kube.create(connector("scoped", {"url": {"endpoint": runtime}}, namespace=kube.namespace))
        await wait_condition(kube, "scoped", "Ready", "True", namespace=kube.namespace, within=60)

        async def listed() -> bool:
            async with httpx.AsyncClient(timeout=10) as client:
                catalog = (await client.get(f"{proxy}/v1/commands")).json()
            return any(entry["id"].startswith("sdkdemo/") for entry in catalog)

        await until(listed)
        assert operator.returncode is None


async def test_a_helm_managed_crd_is_adopted_and_kept(helm: ClusterHelm, kubectl: Kubectl) -> None:
    """crds.managed=true, as the chart README documents it: --take-ownership adopts the CRD that
    crds/ installed, every upgrade applies it, and uninstall keeps it (resource-policy keep)."""
    crd = "customresourcedefinition/connectors.connectors.spiffworkflow.org"
    helm("install", RELEASE, str(CHART), "--set", "crds.managed=true", "--set", "proxy.replicas=1", "--take-ownership")
    annotations = kubectl("get", crd, "-o", "jsonpath={.metadata.annotations}").stdout
    assert '"helm.sh/resource-policy":"keep"' in annotations and '"meta.helm.sh/release-name":"cp"' in annotations
    helm("upgrade", RELEASE, str(CHART), "--set", "crds.managed=true", "--set", "proxy.replicas=2")
    helm("uninstall", RELEASE, "--wait", "--timeout", "60s")
    assert kubectl("get", crd, "-o", "name").stdout.strip().endswith("/connectors.connectors.spiffworkflow.org")
