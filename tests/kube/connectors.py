"""Connector objects, their status, and the runtimes behind them: shared by the operator tests against
the emulator (``tests/e2e/test_operator.py``) and the real-cluster suite (``tests/e2e/cluster/``).

Everything here talks to a cluster through one method both handles have:
``await kube.get(api_version, kind, namespace, name)`` (the object, or ``None``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
from typing import Any, Protocol

import httpx

from connector_proxy.api_key import ApiKeyMiddleware
from connector_proxy.app import create_app
from connector_proxy.catalog_map import CATALOG_LABEL, StoredCatalog, read_catalog_map
from connector_proxy.contract import API_VERSION
from connector_proxy.loading.embedded import EmbeddedConnectors
from connector_proxy.loading.sdk import load_sdk_connector
from connector_proxy.registry import Registry
from connector_proxy.settings import Settings
from kube.fixtures import eventually
from proxytest import sdk_fixture

JSON = dict[str, Any]
KIND = "Connector"
DEFAULT_NAMESPACE = "default"


class ObjectReader(Protocol):
    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None: ...


def runtime_app(api_key: str | None = None) -> Any:
    """A connector runtime (what a workload's pod serves): the proxy with the SDK demo connector."""
    loaded = load_sdk_connector(sdk_fixture.demo)
    embedded = EmbeddedConnectors(registry=Registry.build(loaded.commands), connectors=())
    return create_app(Settings(api_key=api_key), embedded=embedded)


class KeyedRuntime:
    """A connector runtime whose expected API key can change while it runs (a federated proxy whose
    key was rotated): the proxy's own key check in front of :func:`runtime_app`, reading ``api_key``
    at every request."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.app = runtime_app()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await ApiKeyMiddleware(self.app, api_key=self.api_key)(scope, receive, send)


async def catalog_of(runtime: str, which: str) -> Any:
    """A runtime's own ``GET /v1/commands`` or ``/v1/auths``."""
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{runtime}/v1/{which}")).json()


def connector(name: str, source: JSON, *, namespace: str = DEFAULT_NAMESPACE, **spec: Any) -> JSON:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": source, **spec},
    }


def secret(name: str, *, namespace: str = DEFAULT_NAMESPACE, **data: str) -> JSON:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "data": encoded}


def assert_owned_workload(owner: JSON, name: str, *objects: JSON | None) -> None:
    """The operator's Deployment and Service of Connector ``name``: controlled by it, labelled for it."""
    for obj in objects:
        assert obj is not None
        refs = obj["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == owner["metadata"]["uid"] and refs[0]["controller"] is True
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == name


def condition(status: JSON, kind: str) -> JSON:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


async def status_of(kube: ObjectReader, name: str, namespace: str = DEFAULT_NAMESPACE) -> JSON:
    obj = await kube.get(API_VERSION, KIND, namespace, name)
    status: JSON = (obj or {}).get("status") or {}
    return status


async def catalog_in_status(kube: ObjectReader, status: JSON, namespace: str = DEFAULT_NAMESPACE) -> StoredCatalog:
    """The catalog a Connector's status names, read from its ConfigMap as a proxy reads it: owned by
    the operator's Connector, and only if its content hashes to the status' ``catalogHash``."""
    name = status["catalogConfigMap"]
    config_map = await kube.get("v1", "ConfigMap", namespace, name)
    assert config_map is not None, f"no catalog ConfigMap {namespace}/{name}"
    assert config_map["metadata"]["labels"][CATALOG_LABEL] == "true"
    stored = read_catalog_map(config_map)
    assert stored.hash == status["catalogHash"]
    assert (len(stored.commands), len(stored.auths)) == (status["commandCount"], status["authCount"])
    return stored


async def wait_condition(
    kube: ObjectReader,
    name: str,
    kind: str,
    value: str,
    reason: str | None = None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    within: float = 15.0,
) -> JSON:
    """The Connector's status once its condition ``kind`` has ``value`` (and ``reason``, if given)."""

    async def probe() -> JSON | None:
        status = await status_of(kube, name, namespace)
        found = condition(status, kind)
        if found.get("status") == value and (reason is None or found.get("reason") == reason):
            return status
        return None

    return await eventually(probe, within=within)


async def next_second() -> None:
    """Wait for the next whole second: creationTimestamp (oldest wins) has one-second resolution."""
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    for _ in range(30):
        if datetime.datetime.now(datetime.UTC).replace(microsecond=0) > start:
            return
        await asyncio.sleep(0.05)
