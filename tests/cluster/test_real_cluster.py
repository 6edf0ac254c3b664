"""Opt-in (``pytest -m cluster``): the operator scenarios of ``tests/test_operator.py`` against a real,
disposable local cluster (``support.py`` has the context guard and the helpers).

Where a real cluster behaves differently from the in-memory emulator the scenario checks the real
behaviour: the API server's schema and CEL rules refuse an invalid spec at admission, and the
garbage collector deletes a workload whose Connector is gone. Workloads of ``pip``/``image`` sources
are checked as objects (owner references, labels, rollout on Secret rotation, scale to zero); their
pods need the runtime image in the cluster, so availability is not awaited.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import httpx
import pytest
from cluster.support import ClusterApiError, Operators, RealCluster

from connector_operator.settings import API_VERSION
from connector_proxy.app import create_app
from connector_proxy.embedded import EmbeddedConnectors
from connector_proxy.registry import Registry
from connector_proxy.sdk_loader import load_sdk_connector
from connector_proxy.settings import Settings
from proxytest import sdk_fixture
from proxytest.servers import free_port, serve_in_thread

pytestmark = pytest.mark.cluster
KIND = "Connector"
T = TypeVar("T")


def runtime_app(api_key: str | None = None) -> Any:
    loaded = load_sdk_connector(sdk_fixture.demo)
    embedded = EmbeddedConnectors(registry=Registry.build(loaded.commands), connectors=())
    return create_app(Settings(api_key=api_key), embedded=embedded)


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 60.0) -> T:
    for _ in range(int(within / 0.5)):
        found = await probe()
        if found is not None and found is not False:
            return found
        await asyncio.sleep(0.5)
    pytest.fail(f"not reached within {within} s")


def connector(kube: RealCluster, name: str, source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": kube.namespace},
        "spec": {"source": source, **spec},
    }


def secret(kube: RealCluster, name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": kube.namespace},
        "data": encoded,
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


async def status_of(kube: RealCluster, name: str) -> dict[str, Any]:
    obj = await kube.get(API_VERSION, KIND, kube.namespace, name)
    return (obj or {}).get("status") or {}


async def wait_condition(
    kube: RealCluster, name: str, kind: str, value: str, reason: str | None = None
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await status_of(kube, name)
        found = condition(status, kind)
        if found.get("status") == value and (reason is None or found.get("reason") == reason):
            return status
        return None

    return await eventually(probe)


async def catalog_of(runtime: str, which: str) -> Any:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{runtime}/v1/{which}")).json()


async def deployment_of(kube: RealCluster, name: str) -> dict[str, Any] | None:
    return await kube.get("apps/v1", "Deployment", kube.namespace, f"connector-{name}")


async def test_url_source_is_discovered_and_ready(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(connector(kube, "demo", {"url": {"endpoint": runtime}}))
    status = await wait_condition(kube, "demo", "Ready", "True")
    assert status["commands"] == await catalog_of(runtime, "commands")
    assert status["auths"] == await catalog_of(runtime, "auths")
    assert (status["endpoint"], status["sourceKind"], status["observedGeneration"]) == (runtime, "url", 1)
    assert status["catalogHash"].startswith("sha256:")
    assert await kube.list("apps/v1", "Deployment", kube.namespace) == []


async def test_url_source_with_api_key_secret(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app(api_key="cluster-e2e-key")))
    await operators.start()
    await kube.create(secret(kube, "remote-key", token="cluster-e2e-key"))
    source = {"url": {"endpoint": runtime, "apiKeySecretRef": {"name": "remote-key", "key": "token"}}}
    await kube.create(connector(kube, "keyed", source))
    status = await wait_condition(kube, "keyed", "Ready", "True")
    assert status["commandCount"] > 0
    assert "cluster-e2e-key" not in str(status)


async def test_unreachable_endpoint_is_reported(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(connector(kube, "unreachable", {"url": {"endpoint": f"http://127.0.0.1:{free_port()}"}}))
    status = await wait_condition(kube, "unreachable", "Ready", "False", "Unreachable")
    assert status["sourceKind"] == "url"


async def test_invalid_spec_is_refused_at_admission(kube: RealCluster) -> None:
    bad = connector(kube, "bad", {"url": {"endpoint": "http://example"}, "pip": {"requirements": ["x"]}})
    with pytest.raises(ClusterApiError) as refused:
        await kube.create(bad)
    assert refused.value.status == 422
    assert "source" in str(refused.value.body)


async def test_pip_source_gets_an_owned_workload(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(secret(kube, "pip-config", API_TOKEN="t0k3n-value"))
    spec = {
        "config": [
            {"name": "REGION", "value": "eu"},
            {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "pip-config", "key": "API_TOKEN"}}},
        ]
    }
    await kube.create(connector(kube, "pipped", {"pip": {"requirements": ["connector-example==1.0"]}}, **spec))
    owner = await kube.get(API_VERSION, KIND, kube.namespace, "pipped")
    assert owner is not None
    deployment = await eventually(lambda: deployment_of(kube, "pipped"))
    service = await kube.get("v1", "Service", kube.namespace, "connector-pipped")
    for obj in (deployment, service):
        assert obj is not None
        refs = obj["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == owner["metadata"]["uid"] and refs[0]["controller"] is True
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "pipped"
    assert "t0k3n-value" not in str(deployment)
    await wait_condition(kube, "pipped", "Ready", "False")


async def test_secret_rotation_rolls_the_workload(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(secret(kube, "rot", KEY="one"))
    source = {"image": {"ref": "registry.example/conn@sha256:" + "a" * 64}}
    await kube.create(connector(kube, "rot", source, configFrom=[{"secretRef": {"name": "rot"}}]))

    async def template_hash() -> str | None:
        deployment = await deployment_of(kube, "rot")
        annotations = ((deployment or {}).get("spec", {}).get("template", {}).get("metadata", {})).get("annotations")
        return (annotations or {}).get("connectors.spiffworkflow.org/secrets-hash")

    first = await eventually(template_hash)
    await kube.patch("v1", "Secret", kube.namespace, "rot", {"data": {"KEY": base64.b64encode(b"two").decode()}})

    async def changed() -> str | None:
        current = await template_hash()
        return current if current and current != first else None

    assert await eventually(changed) != first


async def test_suspend_scales_to_zero_and_withdraws_commands(kube: RealCluster, operators: Operators) -> None:
    await operators.start()
    await kube.create(connector(kube, "sus", {"pip": {"requirements": ["connector-example"]}}))
    await eventually(lambda: deployment_of(kube, "sus"))
    await kube.patch(API_VERSION, KIND, kube.namespace, "sus", {"spec": {"suspend": True}})
    status = await wait_condition(kube, "sus", "Ready", "False", "Suspended")
    assert status["commands"] == [] and status["commandCount"] == 0

    async def scaled_to_zero() -> bool:
        deployment = await deployment_of(kube, "sus")
        return deployment is not None and deployment["spec"]["replicas"] == 0

    assert await eventually(scaled_to_zero)


async def _next_second() -> None:
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    for _ in range(30):  # creationTimestamp has one-second resolution
        if datetime.datetime.now(datetime.UTC).replace(microsecond=0) > start:
            return
        await asyncio.sleep(0.05)


async def test_command_id_conflict_oldest_wins(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(connector(kube, "zeta-old", {"url": {"endpoint": runtime}}))
    await wait_condition(kube, "zeta-old", "Ready", "True")
    await _next_second()
    await kube.create(connector(kube, "alpha-new", {"url": {"endpoint": runtime}}))
    status = await wait_condition(kube, "alpha-new", "ConflictFree", "False", "CommandIdConflict")
    assert f"served by {kube.namespace}/zeta-old" in condition(status, "ConflictFree")["message"]
    assert condition(await status_of(kube, "zeta-old"), "ConflictFree")["status"] == "True"


async def test_update_rediscovers_and_deletion_collects_the_workload(
    kube: RealCluster, operators: Operators, runtimes: ExitStack
) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await operators.start()
    await kube.create(connector(kube, "moving", {"url": {"endpoint": runtime}}))
    await wait_condition(kube, "moving", "Ready", "True")
    dead = f"http://127.0.0.1:{free_port()}"
    await kube.patch(API_VERSION, KIND, kube.namespace, "moving", {"spec": {"source": {"url": {"endpoint": dead}}}})
    status = await wait_condition(kube, "moving", "Ready", "False", "Unreachable")
    assert status["observedGeneration"] == 2

    await kube.create(connector(kube, "owned", {"pip": {"requirements": ["connector-example"]}}))
    await eventually(lambda: deployment_of(kube, "owned"))
    for name in ("moving", "owned"):
        obj = await kube.get(API_VERSION, KIND, kube.namespace, name)
        assert obj is not None and not obj["metadata"].get("finalizers")
        await kube.delete(API_VERSION, KIND, kube.namespace, name)

    async def collected() -> bool:
        gone = await kube.get(API_VERSION, KIND, kube.namespace, "owned") is None
        return gone and await deployment_of(kube, "owned") is None

    assert await eventually(collected)  # the garbage collector follows the owner reference


async def test_resume_after_restart(kube: RealCluster, operators: Operators, runtimes: ExitStack) -> None:
    runtime = runtimes.enter_context(serve_in_thread(runtime_app()))
    await kube.create(connector(kube, "early", {"url": {"endpoint": runtime}}))
    first = await operators.start()  # created while no operator ran: this one resumes it
    await wait_condition(kube, "early", "Ready", "True")
    await operators.stop(first)
    dead = f"http://127.0.0.1:{free_port()}"
    await kube.patch(API_VERSION, KIND, kube.namespace, "early", {"spec": {"source": {"url": {"endpoint": dead}}}})
    await operators.start()
    status = await wait_condition(kube, "early", "Ready", "False", "Unreachable")
    assert status["observedGeneration"] == 2
