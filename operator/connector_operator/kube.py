"""The one module that talks to the Kubernetes API (``kubernetes_asyncio``), in plain dicts."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from connector_operator.callers import CallerKeysUnavailable
from connector_proxy.contract import GROUP, PLURAL, VERSION

MERGE_PATCH = "application/merge-patch+json"


class NameTaken(Exception):
    """An object has the name the operator gives a Connector's own (its Deployment, Service or
    catalog ConfigMap) and is not that Connector's: the operator neither changes nor deletes it."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(f"{kind} {namespace}/{name} exists and is not this Connector's")


def _owned_by(obj: Any, uid: str) -> bool:
    references = getattr(getattr(obj, "metadata", None), "owner_references", None) or []
    return any(reference.uid == uid for reference in references)


class Kube:
    """Reads and writes what the operator owns: workloads, Services, Connector status, Secrets."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or client.ApiClient()
        # The generated stubs reject plain-dict bodies and the documented ``_content_type`` keyword,
        # both of which the client accepts at run time: hold the APIs as Any.
        self.apps: Any = client.AppsV1Api(self.api)
        self.core: Any = client.CoreV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)

    async def close(self) -> None:
        await self.api.close()

    def _plain(self, obj: Any) -> dict[str, Any]:
        plain: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return plain

    async def _apply(self, kind: str, create: Any, read: Any, patch: Any, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or merge the desired state into the existing one. A body with an owner
        reference is merged only into an object that owner already owns: another object of that
        name (a user's) raises :class:`NameTaken`, untouched (a merge would make it the owner's,
        and collected with it)."""
        meta = body["metadata"]
        try:
            return self._plain(await create(meta["namespace"], body))
        except ApiException as error:
            if error.status != 409:
                raise
        owners = meta.get("ownerReferences") or []
        if owners and not _owned_by(await read(meta["name"], meta["namespace"]), owners[0]["uid"]):
            raise NameTaken(kind, meta["namespace"], meta["name"])
        return self._plain(await patch(meta["name"], meta["namespace"], body, _content_type=MERGE_PATCH))

    async def apply_deployment(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._apply(
            "Deployment", self.apps.create_namespaced_deployment, self.apps.read_namespaced_deployment,
            self.apps.patch_namespaced_deployment, body,
        )  # fmt: skip

    async def apply_service(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._apply(
            "Service", self.core.create_namespaced_service, self.core.read_namespaced_service,
            self.core.patch_namespaced_service, body,
        )  # fmt: skip

    async def apply_config_map(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._apply(
            "ConfigMap", self.core.create_namespaced_config_map, self.core.read_namespaced_config_map,
            self.core.patch_namespaced_config_map, body,
        )  # fmt: skip

    async def _get_json(self, path: str, accept: str) -> Any:
        response = await self.api.call_api(
            path,
            "GET",
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
        )
        if response.status != 200:
            raise ApiException(status=response.status, reason=f"GET {path}")
        return await response.json(content_type=None)

    async def service_account_issuer(self) -> tuple[str, dict[str, Any]]:
        """The API server's ServiceAccount token issuer and its public keys (a JWKS): what a
        workload checks its callers' tokens with. Readable by every ServiceAccount by default
        (ClusterRoleBinding system:service-account-issuer-discovery)."""
        try:
            discovery = await self._get_json("/.well-known/openid-configuration", "application/json")
            keys = await self._get_json("/openid/v1/jwks", "application/jwk-set+json")
            return str(discovery["issuer"]), dict(keys)
        except ApiException as error:
            raise CallerKeysUnavailable(f"HTTP {error.status}") from None
        except (aiohttp.ClientError, KeyError, TypeError, ValueError) as error:
            raise CallerKeysUnavailable(type(error).__name__) from None

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._plain(await self.apps.read_namespaced_deployment(name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def delete_workload(self, namespace: str, name: str, owner_uid: str) -> None:
        """Remove the Deployment and Service this operator made for the Connector ``owner_uid`` (for a
        source that no longer needs them); objects of those names that it does not own stay."""
        pairs = (
            (self.apps.read_namespaced_deployment, self.apps.delete_namespaced_deployment),
            (self.core.read_namespaced_service, self.core.delete_namespaced_service),
        )
        for read, delete in pairs:
            existing = await self._read_or_none(read, namespace, name)
            if existing is None or not _owned_by(existing, owner_uid):
                continue
            try:  # only that very object: not one of the same name created meanwhile
                await delete(name, namespace, body={"preconditions": {"uid": existing.metadata.uid}})
            except ApiException as error:
                if error.status not in (404, 409):
                    raise

    async def _read_or_none(self, read: Any, namespace: str, name: str) -> Any:
        try:
            return await read(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's decoded data, or None when it does not exist."""
        secret = await self._read_or_none(self.core.read_namespaced_secret, namespace, name)
        if secret is None:
            return None
        data = secret.data or {}
        return {k: base64.b64decode(v).decode("utf-8", errors="replace") for k, v in data.items()}

    async def create_event(self, body: dict[str, Any]) -> None:
        await self.core.create_namespaced_event(body["metadata"]["namespace"], body)

    async def config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's data, or None when it does not exist."""
        config_map = await self._read_or_none(self.core.read_namespaced_config_map, namespace, name)
        return None if config_map is None else dict(config_map.data or {})

    async def patch_connector_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE_PATCH
        )

    async def get_connector(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            connector: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
            return connector
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def list_connectors(self, namespaces: list[str]) -> list[dict[str, Any]]:
        """Every Connector in the given namespaces (all namespaces when empty)."""
        if not namespaces:
            listed = await self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            items: list[dict[str, Any]] = listed.get("items", [])
            return items
        found: list[dict[str, Any]] = []
        for namespace in namespaces:
            listed = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            found.extend(listed.get("items", []))
        return found
