"""The operator against the in-memory API emulator, for what the real API server cannot be made to do.

- A spec that admission would refuse reaches the operator anyway (the emulator has no admission):
  the operator's own check of it is the defence for a cluster whose CRD is older or was edited.
- A workload Deployment made available on demand (the emulator has no kubelet: the test writes the
  Deployment's status), so the path through availability and discovery runs without pods.

Everything else the operator does is asserted against the real API server (``test_operator.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from kube.connectors import (
    KIND,
    assert_owned_workload,
    catalog_in_status,
    catalog_of,
    condition,
    connector,
    runtime_app,
    secret,
    wait_condition,
)
from kube.fixtures import KubeEmulator, eventually, run_operator

from connector_operator.runner import build_registry
from connector_operator.settings import OperatorSettings
from connector_proxy.catalog_map import catalog_hash
from connector_proxy.contract import API_VERSION
from proxytest.fake_workload import fake_workload
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
    settings = OperatorSettings(
        namespaces=[NS], discovery_interval=3600, service_endpoint=runtime, recheck_port=free_port()
    )
    async with run_operator(kube_emulator, registry=build_registry(settings), namespaces=[NS]):
        yield kube_emulator


async def prepare(kube: KubeEmulator) -> None:
    await kube.apply_crd(CRD)
    if await kube.get("v1", "Namespace", None, NS) is None:
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})


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
    assert_owned_workload(owner, "pipped", deployment, service)
    assert "t0k3n-value" not in str(deployment)
    await mark_available(cluster, "pipped")
    status = await wait_condition(cluster, "pipped", "Ready", "True")
    assert condition(status, "WorkloadAvailable")["status"] == "True"
    assert (status["endpoint"], status["sourceKind"]) == (runtime, "pip")
    assert "commands" not in status  # the catalog is in its own ConfigMap, owned by the Connector
    stored = await catalog_in_status(cluster, status, NS)
    assert stored.commands == await catalog_of(runtime, "commands")
    config_map = await cluster.get("v1", "ConfigMap", NS, "connector-pipped-catalog")
    assert config_map is not None
    assert_owned_workload(owner, "pipped", config_map)


async def test_suspend_scales_to_zero_and_withdraws_commands(cluster: KubeEmulator) -> None:
    await cluster.create(connector("sus", {"pip": {"requirements": ["connector-example"]}}))
    await eventually(lambda: cluster.get("apps/v1", "Deployment", NS, "connector-sus"))
    await mark_available(cluster, "sus")
    await wait_condition(cluster, "sus", "Ready", "True")
    await cluster.patch(API_VERSION, KIND, NS, "sus", {"spec": {"suspend": True}})
    status = await wait_condition(cluster, "sus", "Ready", "False", "Suspended")
    assert status["commandCount"] == 0 and "catalogHash" not in status and "catalogConfigMap" not in status
    deployment = await cluster.get("apps/v1", "Deployment", NS, "connector-sus")
    assert deployment is not None and deployment["spec"]["replicas"] == 0


async def test_an_older_operators_status_copy_stays_through_an_upgrade_until_the_catalog_changes(
    cluster: KubeEmulator, runtime: str, runtimes: ExitStack
) -> None:
    """Proxies of the version before read status.commands: while it is still the catalog it stays (so
    they keep serving during the rollout), beside the ConfigMap the new proxies read."""
    commands, auths = await catalog_of(runtime, "commands"), await catalog_of(runtime, "auths")
    await cluster.create(connector("old", {"url": {"endpoint": runtime}}))
    await wait_condition(cluster, "old", "Ready", "True")
    legacy = {"commands": commands, "auths": auths, "catalogHash": catalog_hash(commands, auths)}
    await cluster.patch_status(API_VERSION, KIND, NS, "old", legacy)  # what the older operator wrote
    await cluster.patch(API_VERSION, KIND, NS, "old", {"spec": {"timeoutSeconds": 41}})  # a reconcile
    status = await eventually(lambda: _reconciled(cluster, "old", 2))
    assert status["commands"] == commands and status["catalogConfigMap"] == "connector-old-catalog"

    other = runtimes.enter_context(serve_in_thread(fake_workload("other", ["other/Echo"])))  # another catalog
    await cluster.patch(API_VERSION, KIND, NS, "old", {"spec": {"source": {"url": {"endpoint": other}}}})
    status = await eventually(lambda: _reconciled(cluster, "old", 3))
    assert "commands" not in status and "auths" not in status
    assert (await catalog_in_status(cluster, status, NS)).commands == await catalog_of(other, "commands")


async def _reconciled(kube: KubeEmulator, name: str, generation: int) -> dict[str, Any] | None:
    status = ((await kube.get(API_VERSION, KIND, NS, name)) or {}).get("status") or {}
    ready = condition(status, "Ready")
    return status if status.get("observedGeneration") == generation and ready.get("status") == "True" else None
