"""The operator end to end: real kopf against the Kubernetes API emulator over HTTP, real connector
runtimes (the proxy in embedded mode) on 127.0.0.1 for discovery."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from subprocess import DEVNULL, PIPE

import pytest
from kube.connectors import (
    KIND,
    catalog_of,
    condition,
    connector,
    next_second,
    runtime_app,
    secret,
    status_of,
    wait_condition,
)
from kube.fixtures import KubeEmulator, eventually, run_operator

from connector_operator.runner import build_registry
from connector_operator.settings import OperatorSettings
from connector_proxy.contract import API_VERSION
from proxytest.paths import CRD as CRD_FILE
from proxytest.servers import free_port, serve_in_thread

CRD = CRD_FILE
NS = "default"


@pytest.fixture
def runtimes() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def runtime(runtimes: ExitStack) -> str:
    """A real connector runtime on 127.0.0.1 (what a workload's pod serves)."""
    return runtimes.enter_context(serve_in_thread(runtime_app()))


@pytest.fixture
async def cluster(kube_emulator: KubeEmulator, runtime: str) -> AsyncIterator[KubeEmulator]:
    """The emulator with the CRD and the operator running; Services resolve to the ``runtime``."""
    await prepare(kube_emulator)
    settings = OperatorSettings(namespaces=[NS], discovery_interval=3600, service_endpoint=runtime)
    async with run_operator(kube_emulator, registry=build_registry(settings), namespaces=[NS]):
        yield kube_emulator


async def prepare(kube: KubeEmulator) -> None:
    await kube.apply_crd(CRD)
    if await kube.get("v1", "Namespace", None, NS) is None:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})


async def test_url_source_is_discovered_and_ready(cluster: KubeEmulator, runtime: str) -> None:
    await cluster.create(connector("demo", {"url": {"endpoint": runtime}}))
    status = await wait_condition(cluster, "demo", "Ready", "True")
    expected = await catalog_of(runtime, "commands")
    assert status["commands"] == expected
    assert status["auths"] == await catalog_of(runtime, "auths")
    assert status["commandCount"] == len(expected)
    assert status["catalogHash"].startswith("sha256:")
    assert (status["endpoint"], status["sourceKind"], status["observedGeneration"]) == (runtime, "url", 1)
    assert condition(status, "ConflictFree")["status"] == "True"
    assert await cluster.list("apps/v1", "Deployment", NS) == []


async def test_url_source_with_api_key_secret(cluster: KubeEmulator, runtimes: ExitStack) -> None:
    keyed = runtimes.enter_context(serve_in_thread(runtime_app(api_key="workload-key")))
    await cluster.create(secret("demo-key", token="wrong-key"))
    source = {"url": {"endpoint": keyed, "apiKeySecretRef": {"name": "demo-key", "key": "token"}}}
    await cluster.create(connector("keyed", source))
    status = await wait_condition(cluster, "keyed", "Ready", "False", "Unauthorized")
    assert "workload-key" not in str(status) and "wrong-key" not in str(status)
    # Rotating the Secret fixes it: the operator follows Secret changes through its index.
    await cluster.patch("v1", "Secret", NS, "demo-key", {"data": {"token": base64.b64encode(b"workload-key").decode()}})
    status = await wait_condition(cluster, "keyed", "Ready", "True")
    assert status["commandCount"] > 0


async def test_unreachable_endpoint_is_reported_and_retried(cluster: KubeEmulator) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    await cluster.create(connector("dead", {"url": {"endpoint": dead}}))
    status = await wait_condition(cluster, "dead", "Ready", "False", "Unreachable")
    assert condition(status, "Discovered")["reason"] == "Unreachable"
    assert status.get("commands") in (None, [])


async def test_invalid_spec_is_a_permanent_explained_condition(cluster: KubeEmulator) -> None:
    bad = connector("bad", {"url": {"endpoint": "ftp://example"}, "pip": {"requirements": ["x"]}})
    await cluster.create(bad)
    status = await wait_condition(cluster, "bad", "Ready", "False", "InvalidSpec")
    assert condition(status, "SpecValid")["status"] == "False"
    assert "source" in condition(status, "SpecValid")["message"]
    assert await cluster.list("apps/v1", "Deployment", NS) == []


async def mark_available(kube: KubeEmulator, name: str) -> None:
    await kube.patch_status("apps/v1", "Deployment", NS, f"connector-{name}", {"availableReplicas": 1, "replicas": 1})


async def test_pip_source_gets_an_owned_workload_then_discovery(cluster: KubeEmulator, runtime: str) -> None:
    await cluster.create(secret("pip-config", API_TOKEN="t0k3n-value"))
    spec = {
        "config": [
            {"name": "REGION", "value": "eu"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "pip-config", "key": "API_TOKEN"}}},
        ]
    }
    await cluster.create(connector("pipped", {"pip": {"requirements": ["connector-example==1.0"]}}, **spec))
    status = await wait_condition(cluster, "pipped", "Ready", "False", "WorkloadUnavailable")
    owner = (await cluster.get(API_VERSION, KIND, NS, "pipped")) or {}
    deployment = await eventually(lambda: cluster.get("apps/v1", "Deployment", NS, "connector-pipped"))
    service = await cluster.get("v1", "Service", NS, "connector-pipped")
    for obj in (deployment, service):
        assert obj is not None
        refs = obj["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == owner["metadata"]["uid"] and refs[0]["controller"] is True
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "pipped"
    assert "t0k3n-value" not in str(deployment)
    await mark_available(cluster, "pipped")
    status = await wait_condition(cluster, "pipped", "Ready", "True")
    assert condition(status, "WorkloadAvailable")["status"] == "True"
    assert (status["endpoint"], status["sourceKind"]) == (runtime, "pip")
    assert status["commands"] == await catalog_of(runtime, "commands")


async def test_secret_rotation_rolls_the_workload(cluster: KubeEmulator) -> None:
    await cluster.create(secret("rot", KEY="one"))
    spec = {"configFrom": [{"secretRef": {"name": "rot"}}]}
    await cluster.create(connector("rot", {"image": {"ref": "registry.example/conn@sha256:" + "a" * 64}}, **spec))

    async def template_hash() -> str | None:
        deployment = await cluster.get("apps/v1", "Deployment", NS, "connector-rot")
        annotations = ((deployment or {}).get("spec", {}).get("template", {}).get("metadata", {})).get("annotations")
        return (annotations or {}).get("connectors.spiffworkflow.org/secrets-hash")

    first = await eventually(template_hash)
    await cluster.patch("v1", "Secret", NS, "rot", {"data": {"KEY": base64.b64encode(b"two").decode()}})

    async def changed() -> str | None:
        current = await template_hash()
        return current if current and current != first else None

    assert await eventually(changed, within=15) != first


async def test_suspend_scales_to_zero_and_withdraws_commands(cluster: KubeEmulator) -> None:
    await cluster.create(connector("sus", {"pip": {"requirements": ["connector-example"]}}))
    await eventually(lambda: cluster.get("apps/v1", "Deployment", NS, "connector-sus"))
    await mark_available(cluster, "sus")
    await wait_condition(cluster, "sus", "Ready", "True")
    await cluster.patch(API_VERSION, KIND, NS, "sus", {"spec": {"suspend": True}})
    status = await wait_condition(cluster, "sus", "Ready", "False", "Suspended")
    assert status["commands"] == [] and status["commandCount"] == 0
    deployment = await cluster.get("apps/v1", "Deployment", NS, "connector-sus")
    assert deployment is not None and deployment["spec"]["replicas"] == 0


async def test_command_id_conflict_oldest_wins(cluster: KubeEmulator, runtime: str) -> None:
    await cluster.create(connector("zeta-old", {"url": {"endpoint": runtime}}))
    await wait_condition(cluster, "zeta-old", "Ready", "True")
    await next_second()
    await cluster.create(connector("alpha-new", {"url": {"endpoint": runtime}}))
    status = await wait_condition(cluster, "alpha-new", "ConflictFree", "False", "CommandIdConflict")
    assert "served by default/zeta-old" in condition(status, "ConflictFree")["message"]
    assert status["conflicts"] and all("default/zeta-old" in c for c in status["conflicts"])
    old = await status_of(cluster, "zeta-old")
    assert condition(old, "ConflictFree")["status"] == "True"


async def test_update_rediscovers_and_delete_needs_no_finalizer(cluster: KubeEmulator, runtimes: ExitStack) -> None:
    first = runtimes.enter_context(serve_in_thread(runtime_app()))
    await cluster.create(connector("moving", {"url": {"endpoint": first}}))
    await wait_condition(cluster, "moving", "Ready", "True")
    dead = f"http://127.0.0.1:{free_port()}"
    await cluster.patch(API_VERSION, KIND, NS, "moving", {"spec": {"source": {"url": {"endpoint": dead}}}})
    status = await wait_condition(cluster, "moving", "Ready", "False", "Unreachable")
    assert status["observedGeneration"] == 2
    obj = await cluster.get(API_VERSION, KIND, NS, "moving")
    assert obj is not None and not obj["metadata"].get("finalizers")
    await cluster.delete(API_VERSION, KIND, NS, "moving")
    assert await eventually(lambda: _gone(cluster, "moving"))


async def _gone(kube: KubeEmulator, name: str) -> bool:
    return await kube.get(API_VERSION, KIND, NS, name) is None


async def test_resume_after_restart(kube_emulator: KubeEmulator, runtime: str) -> None:
    await prepare(kube_emulator)
    settings = OperatorSettings(namespaces=[NS], discovery_interval=3600, service_endpoint=runtime)
    await kube_emulator.create(connector("early", {"url": {"endpoint": runtime}}))
    # Created while no operator runs: the next operator resumes it.
    async with run_operator(kube_emulator, registry=build_registry(settings), namespaces=[NS]):
        await wait_condition(kube_emulator, "early", "Ready", "True")
    dead = f"http://127.0.0.1:{free_port()}"
    await kube_emulator.patch(API_VERSION, KIND, NS, "early", {"spec": {"source": {"url": {"endpoint": dead}}}})
    async with run_operator(kube_emulator, registry=build_registry(settings), namespaces=[NS]):
        status = await wait_condition(kube_emulator, "early", "Ready", "False", "Unreachable")
    assert status["observedGeneration"] == 2


async def test_cli_operator_logs_in_with_the_kubeconfig(kube_emulator: KubeEmulator, runtime: str) -> None:
    """``connector-proxy operator`` as a real process, with nothing but ``$KUBECONFIG`` to log in by."""
    await prepare(kube_emulator)
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_emulator.kubeconfig_path),
        "CONNECTOR_OPERATOR_NAMESPACES": NS,
        "CONNECTOR_OPERATOR_HEALTH_PORT": str(free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector_proxy", "operator", env=env, stdout=DEVNULL, stderr=PIPE
    )
    try:
        await kube_emulator.create(connector("logged-in", {"url": {"endpoint": runtime}}))
        status = await wait_condition(kube_emulator, "logged-in", "Ready", "True")
        assert status["commands"] == await catalog_of(runtime, "commands")
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]


async def test_fixed_namespaces_need_no_cluster_scoped_access(cluster: KubeEmulator, runtime: str) -> None:
    """With fixed namespaces the chart grants Roles only: the operator must never read CRDs or namespaces."""
    await cluster.create(connector("scoped", {"url": {"endpoint": runtime}}))
    await wait_condition(cluster, "scoped", "Ready", "True")
    requests = [(str(r.method), r.url.path, r.headers.get("User-Agent", "")) for r in list(cluster.emulator)]
    operator_requests = [(method, path) for method, path, agent in requests if not agent.startswith("kmock/")]
    assert any(path.endswith("/connectors") for _, path in operator_requests)  # the operator did run
    cluster_scoped = [
        (method, path)
        for method, path in operator_requests
        if "/customresourcedefinitions" in path or path.rstrip("/") == "/api/v1/namespaces"
    ]
    assert cluster_scoped == []
