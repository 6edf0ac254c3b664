"""Opt-in (``pytest -m cluster``): the operator against a real, disposable local cluster.

Refuses any kube context that is not clearly a local kind/minikube/k3d/docker-desktop cluster, so it
can never touch a shared cluster. Runs the operator in process (no image needed) in a namespace it
creates and deletes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector_operator.runner import run_operator
from connector_operator.settings import API_VERSION, GROUP, PLURAL, VERSION, OperatorSettings

pytestmark = pytest.mark.cluster
CRD = Path(__file__).resolve().parents[2] / "charts" / "connector-proxy" / "crds" / "connectors.spiffworkflow.org.yaml"
LOCAL_CONTEXTS = ("kind-", "minikube", "k3d-", "docker-desktop", "rancher-desktop")


def _require_local_context() -> None:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
    except Exception as error:  # no kubeconfig at all
        pytest.skip(f"no kube context: {type(error).__name__}")
    name = active["name"]
    if not name.startswith(LOCAL_CONTEXTS):
        pytest.fail(f"refusing kube context {name!r}: only local disposable clusters ({', '.join(LOCAL_CONTEXTS)})")


@pytest.fixture
async def namespace() -> AsyncIterator[tuple[Any, str]]:
    _require_local_context()
    from kubernetes_asyncio import client, config

    await config.load_kube_config()
    api = client.ApiClient()
    ext: Any = client.ApiextensionsV1Api(api)
    core: Any = client.CoreV1Api(api)
    crd = yaml.safe_load(CRD.read_text())
    try:
        await ext.create_custom_resource_definition(crd)
    except client.ApiException as error:
        if error.status != 409:
            raise
    name = f"connector-e2e-{uuid.uuid4().hex[:6]}"
    await core.create_namespace({"metadata": {"name": name}})
    try:
        yield client.CustomObjectsApi(api), name
    finally:
        await core.delete_namespace(name)
        await api.close()


async def _status(custom: Any, namespace: str, name: str) -> dict[str, Any]:
    obj = await custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    status: dict[str, Any] = obj.get("status") or {}
    return status


async def _wait_reason(custom: Any, namespace: str, name: str, reason: str) -> dict[str, Any]:
    for _ in range(120):
        status = await _status(custom, namespace, name)
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        if ready.get("reason") == reason:
            return status
        await asyncio.sleep(0.5)
    pytest.fail(f"{name} never reached Ready reason {reason}")


async def test_invalid_and_unreachable_connectors_are_explained(namespace: tuple[Any, str]) -> None:
    custom, ns = namespace
    stop = asyncio.Event()
    settings = OperatorSettings(namespaces=[ns], health_port=18080)
    task = asyncio.create_task(run_operator(settings, stop_flag=stop, liveness=False))
    try:
        body = {"apiVersion": API_VERSION, "kind": "Connector", "metadata": {"name": "unreachable"}}
        body["spec"] = {"source": {"url": {"endpoint": "http://127.0.0.1:9/"}}}
        await custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
        status = await _wait_reason(custom, ns, "unreachable", "Unreachable")
        assert status["sourceKind"] == "url"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
