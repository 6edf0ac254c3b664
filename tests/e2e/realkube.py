"""Helpers of the real-API-server suite (fixtures in ``conftest.py``).

The API server is the session's own control plane on 127.0.0.1 (``tools/k8s/controlplane.py``): etcd,
kube-apiserver and kube-controller-manager built from Kubernetes' sources, so admission (schema, CEL),
garbage collection and the Deployment controllers are the real ones. Each test gets a namespace of its
own. :class:`RealCluster` offers JSON helpers (``create``, ``get``, ``list``, ``patch``, ``delete``)
over the admin kubeconfig; :class:`Operators` runs the operator in threads of this process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connector_operator.runner import run_operator
from connector_operator.settings import OperatorSettings
from proxytest.servers import free_port

JSON = dict[str, Any]
PLURALS = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "Pod"): ("/api/v1", "pods", True),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "Event"): ("/api/v1", "events", True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
    ("apps/v1", "ReplicaSet"): ("/apis/apps/v1", "replicasets", True),
    ("connectors.spiffworkflow.org/v1alpha1", "Connector"): (
        "/apis/connectors.spiffworkflow.org/v1alpha1",
        "connectors",
        True,
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): (
        "/apis/apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        False,
    ),
}


class ClusterApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class RealCluster:
    """Thin JSON helpers over the kubeconfig's cluster, named like the emulator handle's."""

    api: Any  # kubernetes_asyncio.client.ApiClient
    namespace: str

    def path(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
        base, plural, namespaced = PLURALS[(api_version, kind)]
        parts = [base] + (["namespaces", namespace] if namespaced and namespace else []) + [plural]
        return "/".join(parts + ([name] if name else []))

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        response = await self.api.call_api(
            path,
            method,
            {},
            [],
            {"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,  # the raw response: JSON as the server sent it, errors included
            _return_http_data_only=True,
        )
        payload = await response.json(content_type=None)
        if response.status >= 400:
            raise ClusterApiError(response.status, payload)
        return payload

    async def create(self, obj: JSON) -> JSON:
        namespace = obj.get("metadata", {}).get("namespace")
        result: JSON = await self.request("POST", self.path(obj["apiVersion"], obj["kind"], namespace), obj)
        return result

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        try:
            result: JSON = await self.request("GET", self.path(api_version, kind, namespace, name))
        except ClusterApiError as error:
            if error.status == 404:
                return None
            raise
        return result

    async def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        items: list[JSON] = (await self.request("GET", self.path(api_version, kind, namespace)))["items"]
        return items

    async def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: JSON, *, subresource: str = ""
    ) -> JSON:
        path = self.path(api_version, kind, namespace, name) + (f"/{subresource}" if subresource else "")
        result: JSON = await self.request("PATCH", path, patch, content_type="application/merge-patch+json")
        return result

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        await self.request("DELETE", self.path(api_version, kind, namespace, name))


@dataclass
class OperatorInThread:
    """``connector-proxy operator``'s coroutine in its own thread and loop (kopf owns its loop)."""

    settings: OperatorSettings
    stop_flag: threading.Event = field(default_factory=threading.Event)
    ready_flag: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(
                run_operator(self.settings, stop_flag=self.stop_flag, ready_flag=self.ready_flag, liveness=False)
            )
        except BaseException as error:
            self.error = error


class Operators:
    """Starts operators watching one namespace; stops every one of them at the end of the test."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.running: list[tuple[OperatorInThread, threading.Thread]] = []

    async def start(self, **overrides: Any) -> OperatorInThread:
        settings = OperatorSettings(
            **{"discovery_interval": 3600, **overrides},
            namespaces=[self.namespace],
            health_port=free_port(),
            recheck_port=free_port(),
        )
        operator = OperatorInThread(settings)
        thread = threading.Thread(target=operator.run, name="connector-operator", daemon=True)
        thread.start()
        self.running.append((operator, thread))
        for _ in range(600):  # 60 s
            if operator.ready_flag.is_set() or not thread.is_alive():
                break
            await asyncio.sleep(0.1)
        if not operator.ready_flag.is_set():
            raise RuntimeError("the operator did not become ready") from operator.error
        return operator

    async def stop(self, operator: OperatorInThread) -> None:
        for entry in [e for e in self.running if e[0] is operator]:
            operator.stop_flag.set()
            await asyncio.to_thread(entry[1].join, 60)
            self.running.remove(entry)
        if operator.error is not None:
            raise RuntimeError("the operator failed") from operator.error

    async def stop_all(self) -> None:
        for operator, _ in list(self.running):
            await self.stop(operator)


async def _live(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{url}/v1/liveness")).status_code == 200
    except httpx.TransportError:
        return False


async def _stopped(process: asyncio.subprocess.Process, name: str) -> str:
    """Terminate (SIGTERM, as the kubelet does); its stderr, which must hold no traceback."""
    if process.returncode is None:
        process.terminate()
    _, raw = await asyncio.wait_for(process.communicate(), timeout=30)
    stderr = raw.decode(errors="replace")
    assert "Traceback" not in stderr, f"{name}:\n{stderr[-4000:]}"
    return stderr


def _environment(kubeconfig: Path, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_PROXY_", "CONNECTOR_OPERATOR_"))}
    return {**env, "KUBECONFIG": str(kubeconfig), **variables}


@asynccontextmanager
async def proxy_process(kubeconfig: Path, namespace: str, **variables: str) -> AsyncIterator[str]:
    """``connector-proxy serve`` in Kubernetes mode as a process of its own; yields its URL."""
    port = free_port()
    env = _environment(
        kubeconfig,
        CONNECTOR_PROXY_KUBERNETES="true",
        CONNECTOR_PROXY_NAMESPACES=namespace,
        CONNECTOR_PROXY_HOST="127.0.0.1",
        CONNECTOR_PROXY_PORT=str(port),
        **variables,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector_proxy", "serve", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # 30 s
            if await _live(url) or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert await _live(url), "the proxy did not start"
        yield url
    finally:
        await _stopped(process, "proxy")


@asynccontextmanager
async def operator_process(kubeconfig: Path, namespace: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``connector-proxy operator`` as a process of its own, with nothing but the kubeconfig to log in by."""
    env = _environment(
        kubeconfig,
        CONNECTOR_OPERATOR_NAMESPACES=namespace,
        CONNECTOR_OPERATOR_HEALTH_PORT=str(free_port()),
        CONNECTOR_OPERATOR_RECHECK_PORT=str(free_port()),
        CONNECTOR_OPERATOR_DISCOVERY_INTERVAL="3600",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connector_proxy", "operator", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        await _stopped(process, "operator")
