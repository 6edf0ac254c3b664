"""Following Connector resources and their catalog ConfigMaps: the proxy's one module that talks to
the Kubernetes API.

Two feeds per watched namespace: the Connectors, and the ConfigMaps labelled as catalogs
(:mod:`connector_proxy.catalog_map`). For each: list, then watch from the list's resourceVersion;
after any error, expiry (410) or closed stream, list everything again. While the API is unreachable
the last good set of objects stays in use; ``state`` says so for readiness and logs.
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

from connector_proxy.catalog_map import CATALOG_LABEL
from connector_proxy.contract import GROUP, PLURAL, VERSION, key_of, load_kube_config
from connector_proxy.kubernetes.watch_state import WatchState

logger = logging.getLogger(__name__)
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

Objects = dict[str, dict[str, Any]]
CONNECTORS, CATALOGS = "connectors", "catalogs"
FEEDS = (CONNECTORS, CATALOGS)
CATALOG_SELECTOR = f"{CATALOG_LABEL}=true"


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


def _list_call(api: client.ApiClient, feed: str, namespace: str | None) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
    """The list function of a feed (what a watch streams too), its positional and keyword arguments."""
    if feed == CONNECTORS:
        custom: Any = client.CustomObjectsApi(api)
        if namespace is None:
            return custom.list_cluster_custom_object, (GROUP, VERSION, PLURAL), {}
        return custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, PLURAL), {}
    core: Any = client.CoreV1Api(api)
    selector = {"label_selector": CATALOG_SELECTOR}
    if namespace is None:
        return core.list_config_map_for_all_namespaces, (), selector
    return core.list_namespaced_config_map, (namespace,), selector


@dataclass
class ConnectorWatcher:
    """Keeps every Connector and every catalog ConfigMap of the watched namespaces current; calls
    ``on_change(connectors, catalogs)`` with both complete sets (keyed ``<namespace>/<name>``) once
    every feed has been listed, and after every change."""

    namespaces: list[str | None]
    on_change: Callable[[Objects, Objects], None]
    watch_timeout: int = 300
    max_backoff: float = 30.0
    state: WatchState = field(default_factory=WatchState)
    _parts: dict[tuple[str, str | None], Objects] = field(default_factory=dict)

    def _listed_all(self) -> bool:
        """Every feed of every namespace was listed once (before, publishing would withdraw what a
        feed not listed yet holds)."""
        return len(self._parts) == len(FEEDS) * len(self.namespaces)

    def _publish(self) -> None:
        if not self._listed_all():
            return
        merged: dict[str, Objects] = {feed: {} for feed in FEEDS}
        for (feed, _), part in self._parts.items():
            merged[feed].update(part)
        self.on_change(merged[CONNECTORS], merged[CATALOGS])

    async def run(self) -> None:
        await load_kube_config()
        api = client.ApiClient()
        try:
            await asyncio.gather(*(self._follow(api, feed, ns) for ns in self.namespaces for feed in FEEDS))
        finally:
            await api.close()

    async def _list(self, api: client.ApiClient, feed: str, namespace: str | None) -> tuple[Objects, str]:
        func, args, kwargs = _list_call(api, feed, namespace)
        listed = await func(*args, **kwargs)
        if not isinstance(listed, dict):  # the core API answers models: back to the API's own JSON shape
            listed = api.sanitize_for_serialization(listed)
        objects = {key_of(item): item for item in listed.get("items") or []}
        return objects, str((listed.get("metadata") or {}).get("resourceVersion") or "")

    async def _follow(self, api: client.ApiClient, feed: str, namespace: str | None) -> None:
        backoff = 0.5
        while True:
            try:
                objects, version = await self._list(api, feed, namespace)
                self._parts[(feed, namespace)] = objects
                self.state.synced = self._listed_all()
                self.state.connected = True
                self.state.last_sync, self.state.last_error, self.state.disconnected_since = (
                    time.monotonic(),
                    None,
                    None,
                )
                self.state.relists += 1
                self._publish()
                backoff = 0.5
                await self._watch(api, feed, namespace, objects, version)
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
                        extra={
                            "namespace": namespace,
                            "feed": feed,
                            "error": self.state.last_error,
                            "retry_in_s": backoff,
                        },
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)

    async def _watch(
        self, api: client.ApiClient, feed: str, namespace: str | None, objects: Objects, version: str
    ) -> None:
        """Apply events until the stream ends (then the caller relists) or fails."""
        func, args, kwargs = _list_call(api, feed, namespace)
        while True:
            async with watch.Watch() as stream:
                async for event in stream.stream(
                    func,
                    *args,
                    **kwargs,
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
