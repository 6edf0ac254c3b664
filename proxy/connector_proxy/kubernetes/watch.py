"""Following Connector resources: the proxy's one module that talks to the Kubernetes API.

List, then watch from the list's resourceVersion; after any error, expiry (410) or closed
stream, list everything again. While the API is unreachable the last good set of objects stays
in use; ``state`` says so for readiness and logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from connector_proxy.contract import GROUP, PLURAL, VERSION, key_of, load_kube_config

logger = logging.getLogger(__name__)
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

Objects = dict[str, dict[str, Any]]


@dataclass
class WatchState:
    synced: bool = False  # a first full list succeeded
    connected: bool = False
    last_error: str | None = None
    last_sync: float | None = None
    disconnected_since: float | None = None
    relists: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "synced": self.synced,
            "connected": self.connected,
            "last_error": self.last_error,
            "seconds_since_sync": None if self.last_sync is None else round(time.monotonic() - self.last_sync, 3),
            "stale": self.synced and not self.connected,
            "relists": self.relists,
        }


def watched_namespaces(namespaces: Sequence[str], all_namespaces: bool) -> list[str | None]:
    """``[None]`` means cluster-wide; default: the pod's own namespace, else cluster-wide."""
    if all_namespaces:
        return [None]
    if namespaces:
        return list(dict.fromkeys(namespaces))
    try:
        own = IN_CLUSTER_NAMESPACE.read_text().strip()
    except OSError:
        own = ""
    return [own] if own else [None]


@dataclass
class ConnectorWatcher:
    """Keeps ``objects`` (all Connectors of the watched namespaces) current; calls ``on_change``
    with the complete set after the first list and after every change."""

    namespaces: list[str | None]
    on_change: Callable[[Objects], None]
    watch_timeout: int = 300
    max_backoff: float = 30.0
    state: WatchState = field(default_factory=WatchState)
    _parts: dict[str | None, Objects] = field(default_factory=dict)

    def _publish(self) -> None:
        merged: Objects = {}
        for part in self._parts.values():
            merged.update(part)
        self.on_change(merged)

    async def run(self) -> None:
        await load_kube_config()
        api = client.ApiClient()
        try:
            await asyncio.gather(*(self._follow(api, ns) for ns in self.namespaces))
        finally:
            await api.close()

    async def _list(self, custom: Any, namespace: str | None) -> tuple[Objects, str]:
        if namespace is None:
            listed = await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        else:
            listed = await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        objects = {key_of(item): item for item in listed.get("items", [])}
        return objects, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _follow(self, api: client.ApiClient, namespace: str | None) -> None:
        custom: Any = client.CustomObjectsApi(api)
        backoff = 0.5
        while True:
            try:
                objects, version = await self._list(custom, namespace)
                self._parts[namespace] = objects
                self.state.synced = self.state.connected = True
                self.state.last_sync, self.state.last_error, self.state.disconnected_since = (
                    time.monotonic(),
                    None,
                    None,
                )
                self.state.relists += 1
                self._publish()
                backoff = 0.5
                await self._watch(custom, namespace, objects, version)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                expired = isinstance(error, ApiException) and error.status == 410
                self.state.connected = expired and self.state.connected
                self.state.last_error = f"{type(error).__name__}" + (
                    f" {error.status}" if isinstance(error, ApiException) else ""
                )
                if not expired:
                    self.state.disconnected_since = self.state.disconnected_since or time.monotonic()
                    logger.warning(
                        "kubernetes API unavailable; serving the last good registry",
                        extra={"namespace": namespace, "error": self.state.last_error, "retry_in_s": backoff},
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)

    async def _watch(self, custom: Any, namespace: str | None, objects: Objects, version: str) -> None:
        """Apply events until the stream ends (then the caller relists) or fails."""
        args: tuple[Any, ...] = (GROUP, VERSION, PLURAL) if namespace is None else (GROUP, VERSION, namespace, PLURAL)
        func = custom.list_cluster_custom_object if namespace is None else custom.list_namespaced_custom_object
        while True:
            async with watch.Watch() as stream:
                async for event in stream.stream(
                    func,
                    *args,
                    resource_version=version,
                    timeout_seconds=self.watch_timeout,
                    allow_watch_bookmarks=True,
                ):
                    kind, obj = event["type"], event["raw_object"]
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind in ("ADDED", "MODIFIED"):
                        objects[key_of(obj)] = obj
                    elif kind == "DELETED":
                        objects.pop(key_of(obj), None)
                    else:
                        continue
                    self.state.last_sync = time.monotonic()
                    self._publish()
            # The server closed the stream after watch_timeout: resume from the last version seen.
