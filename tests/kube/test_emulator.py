"""The Kubernetes emulator layer (tests/kube/) driven by real clients over HTTP on 127.0.0.1.

Clients: ``kubernetes`` (sync, in a worker thread: the emulator serves in the test's loop),
``kubernetes_asyncio`` (list-then-watch, like a watching proxy), and a kopf operator in its own thread.
Every wait is bounded (``eventually``: 10 s at most).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes_asyncio.client
import kubernetes_asyncio.config
import kubernetes_asyncio.watch
import pytest
import pytest_asyncio
from kubernetes_asyncio.client.exceptions import ApiException

from kube import fixtures
from kube.fixtures import KubeApiError, KubeEmulator, eventually, run_operator
from kube.sample_operator import config_map_name

kube_emulator = fixtures.kube_emulator  # registers the fixture in this module (a conftest may do it for all)

CRD_PATH = Path(__file__).parent / "widgets-crd.yaml"
SAMPLE_OPERATOR = Path(__file__).parent / "sample_operator.py"
GROUP, VERSION, PLURAL = "example.test", "v1", "widgets"
WIDGETS = f"{GROUP}/{VERSION}"
NS = "default"
# kubernetes_asyncio sends a dict patch of a custom object as a JSON patch, which the real API (and the emulator)
# reject with 422 (tomplus/kubernetes_asyncio#157): say merge-patch explicitly, as application code must.
MERGE: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


def widget(name: str, size: int = 1, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": WIDGETS, "kind": "Widget", "metadata": {"name": name, **metadata}, "spec": {"size": size}}


@pytest_asyncio.fixture
async def emu(kube_emulator: KubeEmulator) -> KubeEmulator:
    await kube_emulator.apply_crd(CRD_PATH)
    return kube_emulator


@pytest_asyncio.fixture
async def api(emu: KubeEmulator) -> AsyncIterator[kubernetes_asyncio.client.ApiClient]:
    client = await kubernetes_asyncio.config.new_client_from_config(config_file=str(emu.kubeconfig_path))
    async with client:
        yield client


def sync_client_scenario(kubeconfig: str) -> None:
    """Deployment and Secret CRUD with the official sync client, as application code would do it."""
    import kubernetes

    ApiException = kubernetes.client.exceptions.ApiException
    with kubernetes.config.new_client_from_config(config_file=kubeconfig, context="kmock") as client:
        apps, core = kubernetes.client.AppsV1Api(client), kubernetes.client.CoreV1Api(client)
        labels = {"app": "web"}
        container = {"name": "web", "image": "nginx"}
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels}, "spec": {"containers": [container]}}},
            "status": {"availableReplicas": 7},
        }  # fmt: skip
        created = apps.create_namespaced_deployment(NS, body)  # None if the API answered 200, not 201
        assert created.metadata.namespace == NS and created.metadata.uid and created.metadata.generation == 1
        assert created.status is None or created.status.available_replicas is None  # status is not settable

        first = apps.read_namespaced_deployment("web", NS)
        scaled = apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 3}})
        assert scaled.spec.replicas == 3 and scaled.metadata.generation == 2
        assert int(scaled.metadata.resource_version) > int(first.metadata.resource_version)
        relabeled = apps.patch_namespaced_deployment("web", NS, {"metadata": {"labels": {"tier": "front"}}})
        assert relabeled.metadata.generation == 2 and relabeled.metadata.labels == {"app": "web", "tier": "front"}

        first.spec.replicas = 5
        with pytest.raises(ApiException) as conflict:
            apps.replace_namespaced_deployment("web", NS, first)  # a stale resourceVersion
        assert conflict.value.status == 409
        fresh = apps.read_namespaced_deployment("web", NS)
        fresh.spec.replicas = 4
        assert apps.replace_namespaced_deployment("web", NS, fresh).metadata.generation == 3

        available = apps.patch_namespaced_deployment_status("web", NS, {"status": {"availableReplicas": 4}})
        assert available.status.available_replicas == 4 and available.metadata.generation == 3
        assert [
            d.metadata.name for d in apps.list_namespaced_deployment(NS, label_selector="tier in (front)").items
        ] == ["web"]
        assert apps.list_namespaced_deployment(NS, label_selector="app=web,!tier").items == []

        secret = {"metadata": {"name": "creds", "labels": labels}, "data": {"token": base64.b64encode(b"s3").decode()}}
        assert core.create_namespaced_secret(NS, secret).metadata.uid
        core.patch_namespaced_secret("creds", NS, {"data": {"user": base64.b64encode(b"me").decode()}})
        assert set(core.read_namespaced_secret("creds", NS).data) == {"token", "user"}
        listed = core.list_namespaced_secret(NS, field_selector="metadata.name=creds")
        assert listed.kind == "SecretList" and [s.metadata.name for s in listed.items] == ["creds"]

        core.delete_namespaced_secret("creds", NS)
        apps.delete_namespaced_deployment("web", NS)
        for read in (
            lambda: core.read_namespaced_secret("creds", NS),
            lambda: apps.read_namespaced_deployment("web", NS),
        ):
            with pytest.raises(ApiException) as gone:
                read()
            assert gone.value.status == 404


async def test_sync_client_crud_on_deployment_and_secret(emu: KubeEmulator) -> None:
    await asyncio.wait_for(asyncio.to_thread(sync_client_scenario, str(emu.kubeconfig_path)), 10)


async def collect_watch(
    custom: kubernetes_asyncio.client.CustomObjectsApi, since: str, until: str = "DELETED"
) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of every event after ``since``, up to the first ``until`` event."""
    events: list[tuple[str, str, str]] = []
    watch = kubernetes_asyncio.watch.Watch()
    stream = watch.stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, resource_version=since, timeout_seconds=5
    )
    async with stream:
        async for event in stream:
            meta = event["object"]["metadata"]
            events.append((event["type"], meta["name"], meta["resourceVersion"]))
            if event["type"] == until:
                break
    return events


async def test_list_then_watch_custom_resources_and_resume(
    emu: KubeEmulator, api: kubernetes_asyncio.client.ApiClient
) -> None:
    custom = kubernetes_asyncio.client.CustomObjectsApi(api)
    await custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, widget("w0"))
    listing = await custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    assert listing["kind"] == "WidgetList" and [w["metadata"]["name"] for w in listing["items"]] == ["w0"]

    watching = asyncio.create_task(collect_watch(custom, since=listing["metadata"]["resourceVersion"]))
    await custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, widget("w1"))
    await custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1", {"spec": {"size": 2}}, **MERGE)
    await custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1")
    events = await asyncio.wait_for(watching, 10)
    assert [(kind, name) for kind, name, _ in events] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    versions = [int(rv) for _, _, rv in events]
    assert versions == sorted(versions) and len(set(versions)) == 3

    # Resuming from the ADDED event's resourceVersion replays exactly what came after it.
    resumed = await asyncio.wait_for(collect_watch(custom, since=events[0][2]), 10)
    assert resumed == events[1:]


async def test_watch_list_ends_its_snapshot_with_a_bookmark(emu: KubeEmulator) -> None:
    """``sendInitialEvents=true`` (client-go's WatchList, e.g. kubectl): ADDED per object, then a BOOKMARK."""
    async with emu.server.client.post(f"/apis/{WIDGETS}/namespaces/{NS}/widgets", json=widget("w0")) as response:
        assert response.status == 201
    params = {"watch": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "5"}
    events: list[dict[str, Any]] = []
    async with emu.server.client.get(f"/apis/{WIDGETS}/widgets", params=params) as response:
        assert response.status == 200 and response.content_type == "application/json"
        while not events or events[-1]["type"] != "BOOKMARK":
            events.append(json.loads(await asyncio.wait_for(response.content.readline(), 10)))
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [("ADDED", "w0"), ("BOOKMARK", None)]
    bookmark = events[-1]["object"]["metadata"]
    assert bookmark["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["resourceVersion"] == str(emu.emulator.resource_version)


async def test_watch_from_a_compacted_resource_version_is_410_gone(
    emu: KubeEmulator, api: kubernetes_asyncio.client.ApiClient
) -> None:
    """As the real API: HTTP 200, then one ERROR event with a 410 Expired Status; the client raises it."""
    custom = kubernetes_asyncio.client.CustomObjectsApi(api)
    created = await custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, widget("w0"))
    await custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w0", {"spec": {"size": 2}}, **MERGE)
    emu.emulator.compact()  # like etcd compaction: the history before now is gone
    with pytest.raises(ApiException) as expired:
        await asyncio.wait_for(collect_watch(custom, since=created["metadata"]["resourceVersion"]), 10)
    assert expired.value.status == 410

    # The client's recovery, a fresh list then a watch from its resourceVersion, works.
    listing = await custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    watching = asyncio.create_task(collect_watch(custom, since=listing["metadata"]["resourceVersion"]))
    await custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w0")
    assert [kind for kind, _, _ in await asyncio.wait_for(watching, 10)] == ["DELETED"]


async def test_status_subresource_isolation_and_generation(
    emu: KubeEmulator, api: kubernetes_asyncio.client.ApiClient
) -> None:
    custom = kubernetes_asyncio.client.CustomObjectsApi(api)
    body = widget("w0") | {"status": {"message": "ignored on create"}}
    created = await custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    assert "status" not in created and created["metadata"]["generation"] == 1

    spec_patch = {"spec": {"size": 2}, "status": {"message": "ignored on the main resource"}}
    patched = await custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w0", spec_patch, **MERGE)
    assert patched["spec"] == {"size": 2} and "status" not in patched and patched["metadata"]["generation"] == 2

    status_patch = {"spec": {"size": 99}, "status": {"message": "ok"}}
    patched = await custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, "w0", status_patch, **MERGE
    )
    assert patched["spec"] == {"size": 2} and patched["status"] == {"message": "ok"}
    assert patched["metadata"]["generation"] == 2

    labeled = await emu.patch(WIDGETS, "Widget", NS, "w0", {"metadata": {"labels": {"tier": "front"}}})
    assert labeled["metadata"]["generation"] == 2
    assert int(labeled["metadata"]["resourceVersion"]) > int(patched["metadata"]["resourceVersion"])
    same = await emu.patch(WIDGETS, "Widget", NS, "w0", {"metadata": {"labels": {"tier": "front"}}})
    assert same["metadata"]["resourceVersion"] == labeled["metadata"]["resourceVersion"]  # no-op: no new version

    replaced = await custom.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w0", labeled)
    assert replaced["status"] == {"message": "ok"} and replaced["metadata"]["generation"] == 2
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]}]
    with pytest.raises(ApiException) as invalid:  # kopf's way to detect concurrent changes (a list: a JSON patch)
        await custom.patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, "w0", [*stale, {"op": "remove", "path": "/spec"}]
        )
    assert invalid.value.status == 422
    stale_merge = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"size": 3}}
    with pytest.raises(KubeApiError) as conflict:
        await emu.patch(WIDGETS, "Widget", NS, "w0", stale_merge)
    assert conflict.value.status == 409
    assert (await emu.get(WIDGETS, "Widget", NS, "w0") or {})["spec"] == {"size": 2}


async def test_discovery_namespaces_selectors_apply_and_cluster_scoped_crds(
    emu: KubeEmulator, api: kubernetes_asyncio.client.ApiClient
) -> None:
    assert (await emu.request("GET", "/api/v1"))["groupVersion"] == "v1"
    group = await emu.request("GET", f"/apis/{WIDGETS}")
    widgets = {r["name"]: r for r in group["resources"]}
    assert set(widgets) == {"widgets", "widgets/status"}
    assert widgets["widgets"]["namespaced"] is True and widgets["widgets"]["shortNames"] == ["wg"]
    crd = await emu.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "widgets.example.test")
    assert (
        crd is not None and {"type": "Established", "status": "True"}.items() <= crd["status"]["conditions"][1].items()
    )

    core = kubernetes_asyncio.client.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": "team-a"}})
    namespaces = await core.list_namespace()
    assert namespaces.kind == "NamespaceList" and [n.metadata.name for n in namespaces.items] == ["team-a"]

    custom = kubernetes_asyncio.client.CustomObjectsApi(api)
    for namespace, name, tier in [(NS, "w1", "front"), (NS, "w2", "back"), ("team-a", "w1", None)]:
        labels = {"tier": tier} if tier else {}
        await custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget(name, labels=labels))

    async def names(**selectors: str) -> list[str]:
        found = await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **selectors)
        return [f"{w['metadata']['namespace']}/{w['metadata']['name']}" for w in found["items"]]

    assert await names(label_selector="tier=front") == ["default/w1"]
    assert await names(label_selector="tier in (front, back)") == ["default/w1", "default/w2"]
    assert await names(label_selector="tier notin (front)") == ["default/w2", "team-a/w1"]
    assert await names(label_selector="!tier") == ["team-a/w1"]
    assert await names(field_selector="metadata.name=w1") == ["default/w1", "team-a/w1"]
    assert await names(field_selector="metadata.namespace!=default,metadata.name=w1") == ["team-a/w1"]

    apply = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    kwargs: dict[str, Any] = {"field_manager": "tests", "_content_type": "application/apply-patch+yaml"}
    created = await core.patch_namespaced_config_map("settings", NS, apply, **kwargs)
    assert created.metadata.namespace == NS and created.data == {"a": "1"}
    updated = await core.patch_namespaced_config_map("settings", NS, apply | {"data": {"b": "2"}}, **kwargs)
    assert updated.data == {"a": "1", "b": "2"} and updated.metadata.uid == created.metadata.uid

    gadgets = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.test"},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": VERSION, "served": True, "storage": True}],
        },
    }
    await emu.apply_crd(gadgets)
    gadget = await custom.create_cluster_custom_object(GROUP, VERSION, "gadgets", {"metadata": {"name": "g1"}})
    assert gadget["kind"] == "Gadget" and "namespace" not in gadget["metadata"]
    with pytest.raises(ApiException) as namespaced:
        await custom.get_namespaced_custom_object(GROUP, VERSION, NS, "gadgets", "g1")
    assert namespaced.value.status == 404


@pytest.mark.parametrize("handlers", [{"modules": ["kube.sample_operator"]}, {"paths": [SAMPLE_OPERATOR]}])
async def test_kopf_operator_reconciles_widgets(emu: KubeEmulator, handlers: dict[str, Any]) -> None:
    async with run_operator(emu, **handlers):
        created = await emu.create(widget("w1", size=3, namespace=NS))

        async def reconciled() -> dict[str, Any] | None:
            found = await emu.get(WIDGETS, "Widget", NS, "w1")
            return found if found and (found.get("status") or {}).get("message") else None

        done = await eventually(reconciled)
        assert done["status"]["message"] == f"created configmap {config_map_name('w1')}"
        assert done["metadata"]["finalizers"]  # kopf's, for its deletion handler
        config_map = await emu.get("v1", "ConfigMap", NS, config_map_name("w1"))
        assert config_map is not None and config_map["data"] == {"size": "3"}
        [owner] = config_map["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Widget", "w1", created["metadata"]["uid"])

        await emu.delete(WIDGETS, "Widget", NS, "w1")  # blocked by the finalizer until kopf's handler runs

        async def cleaned_up() -> bool:
            widget_gone = await emu.get(WIDGETS, "Widget", NS, "w1") is None
            return widget_gone and await emu.get("v1", "ConfigMap", NS, config_map_name("w1")) is None

        await eventually(cleaned_up)
