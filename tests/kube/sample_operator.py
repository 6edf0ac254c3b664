"""A tiny kopf operator for the Widget CRD (``widgets-crd.yaml``), run by ``tests/kube/test_emulator.py``.

On create: a ConfigMap owned by the Widget (an owner reference; the emulator does no garbage collection),
then ``status.message``. On delete (so kopf puts a finalizer on every Widget): the ConfigMap is deleted.
It reaches the API the way an operator does out of a cluster: ``load_kube_config()`` with no arguments,
i.e. through ``$KUBECONFIG``, which ``kube.fixtures`` points at the emulator.
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes_asyncio.client
import kubernetes_asyncio.config

GROUP, VERSION, PLURAL = "example.test", "v1", "widgets"


def config_map_name(widget_name: str) -> str:
    return f"{widget_name}-config"


@kopf.on.create(GROUP, VERSION, PLURAL)
async def widget_created(
    body: kopf.Body, spec: kopf.Spec, name: str, namespace: str | None, patch: kopf.Patch, **_: Any
) -> None:
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_map_name(name)},
        "data": {"size": str(spec.get("size", 0))},
    }
    kopf.adopt(config_map, owner=body)  # ownerReferences, the owner's namespace
    await kubernetes_asyncio.config.load_kube_config()
    async with kubernetes_asyncio.client.ApiClient() as api:
        core: Any = kubernetes_asyncio.client.CoreV1Api(api)  # its stubs want models; it takes plain dicts
        await core.create_namespaced_config_map(namespace, config_map)
    patch.status["message"] = f"created configmap {config_map_name(name)}"


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def widget_deleted(name: str, namespace: str | None, **_: Any) -> None:
    await kubernetes_asyncio.config.load_kube_config()
    async with kubernetes_asyncio.client.ApiClient() as api:
        core: Any = kubernetes_asyncio.client.CoreV1Api(api)
        await core.delete_namespaced_config_map(config_map_name(name), namespace)
