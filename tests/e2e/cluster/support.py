"""Helpers of the opt-in real-cluster suite (``pytest -m cluster``); fixtures in ``conftest.py``.

Refuses any kube context that is not clearly a local disposable cluster (kind, minikube, k3d,
docker-desktop, rancher-desktop), so it can never touch a shared one. Each test gets a namespace of
its own (deleted afterwards) and runs the real operator in a thread of this process against it, so
no image is needed for the operator; connector runtimes are real proxies on 127.0.0.1, reached
through ``url`` sources. :class:`RealCluster` offers the same helpers as the emulator's handle
(``create``, ``get``, ``list``, ``patch``, ``delete``), over the kubeconfig's credentials.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kube.fixtures import ORIGINAL_KUBECONFIG

from connector_operator.runner import run_operator
from connector_operator.settings import OperatorSettings
from proxytest.servers import free_port

CRD = Path(__file__).resolve().parents[2] / "charts" / "connector-proxy" / "crds" / "connectors.spiffworkflow.org.yaml"
LOCAL_CONTEXTS = ("kind-", "minikube", "k3d-", "docker-desktop", "rancher-desktop")
JSON = dict[str, Any]
PLURALS = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
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


def real_kubeconfig() -> str:
    """The kubeconfig the session started with: the test harness points ``$KUBECONFIG`` at the
    emulator for every other test, so that nothing else can ever reach a real cluster."""
    return ORIGINAL_KUBECONFIG or os.path.expanduser("~/.kube/config")


def require_local_context(kubeconfig: str) -> None:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception as error:  # no kubeconfig at all
        pytest.skip(f"no kube context: {type(error).__name__}")
    name = active["name"]
    if not name.startswith(LOCAL_CONTEXTS):
        pytest.fail(f"refusing kube context {name!r}: only local disposable clusters ({', '.join(LOCAL_CONTEXTS)})")


@dataclass
class RealCluster:
    """Thin JSON helpers over the kubeconfig's cluster, named like the emulator handle's."""

    api: Any  # kubernetes_asyncio.client.ApiClient
    namespace: str

    def path(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
        base, plural, namespaced = PLURALS[(api_version, kind)]
        parts = [base] + (["namespaces", namespace] if namespaced and namespace else []) + [plural]
        return "/".join(parts + ([name] if name else []))

    async def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json") -> Any:
        response = await self.api.call_api(
            path,
            method,
            {},
            [],
            {"Accept": "application/json", "Content-Type": content_type},
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

    async def patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: JSON) -> JSON:
        path = self.path(api_version, kind, namespace, name)
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

    async def start(self) -> OperatorInThread:
        settings = OperatorSettings(namespaces=[self.namespace], discovery_interval=3600, health_port=free_port())
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
