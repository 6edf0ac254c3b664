"""The Connector resource contract shared by the proxy and the operator.

What both sides must read the same way: the resource's group, version, plural and kind; when a
Connector serves commands (:func:`serves`) and which ids it claims (:func:`claim_of`); which
claim wins an id claimed twice (the oldest Connector: :func:`winners`, :func:`lost_commands`); the
header workloads expect their API key in; the environment prefix that carries ``config`` entries;
the spec defaults; and how a process finds its Kubernetes API server. The operator reports the
loser of a conflict in its status and every proxy routes the id to the winner, from this one module,
so they always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GROUP = "connectors.spiffworkflow.org"
VERSION = "v1alpha1"
PLURAL = "connectors"
KIND = "Connector"
API_VERSION = f"{GROUP}/{VERSION}"

CONNECTOR_ANNOTATION = f"{GROUP}/connector"  # on what the operator makes: the Connector's full name
API_KEY_HEADER = "Spiff-Connector-Proxy-Api-Key"
CONFIG_ENV_PREFIX = "CONNECTOR_PROXY_CONFIG__"  # CONNECTOR_PROXY_CONFIG__<KEY>=value is config[KEY]

DEFAULT_TIMEOUT_SECONDS = 40.0  # spec.timeoutSeconds
DEFAULT_CONCURRENCY = 16  # spec.concurrency
READY = "Ready"


def key_of(obj: Mapping[str, Any]) -> str:
    """``<namespace>/<name>`` of a Connector object."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def serves(obj: Mapping[str, Any]) -> bool:
    """A Connector serves the commands it was discovered with while it has an endpoint, Ready or not.

    A workload pod that died, a rollout, an unreachable endpoint: Ready turns False, but its commands
    stay listed and answer ``503 connector_unavailable`` (which spiff-arena retries) until the workload
    is back, instead of vanishing (a ``404 command_not_found`` fails the task for good). The operator
    withdraws the commands (``catalogHash`` null, ``commandCount`` 0) when they really are gone:
    suspended, an invalid spec, a catalog that changed.

    ``obj`` holds its commands in ``status.commands``: as a proxy reads it, with the catalog of its
    ConfigMap put there (:mod:`connector_proxy.kubernetes.catalogs`), or as an older operator wrote it."""
    return bool((obj.get("status") or {}).get("endpoint")) and bool(command_ids(obj))


def catalog_ref(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(ConfigMap name, catalogHash)`` of the catalog a Connector's status names, or None when it
    names none (never discovered, withdrawn, or written by an operator that kept it in the status)."""
    status = obj.get("status") or {}
    name, digest = status.get("catalogConfigMap"), status.get("catalogHash")
    if isinstance(name, str) and name and isinstance(digest, str) and digest:
        return name, digest
    return None


def well_formed_ids(entries: Iterable[Any]) -> frozenset[str]:
    """The well-formed (``<connector>/<Command>``) ids of catalog entries."""
    return frozenset(
        entry["id"]
        for entry in entries
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str) and "/" in entry["id"]
    )


def command_ids(obj: Mapping[str, Any]) -> frozenset[str]:
    """The well-formed command ids in a Connector's ``status.commands``."""
    return well_formed_ids((obj.get("status") or {}).get("commands") or [])


@dataclass(frozen=True)
class Claim:
    """A Connector's claim on command ids. ``created`` is its RFC 3339 creationTimestamp."""

    namespace: str
    name: str
    created: str
    command_ids: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def rank(self) -> tuple[str, str, str]:
        """Older first; same second: by namespace, then name (deterministic everywhere)."""
        return (self.created, self.namespace, self.name)


def claim_of(obj: Mapping[str, Any], ids: frozenset[str] | None = None) -> Claim | None:
    """The ids a Connector serves, or None when it serves none (see :func:`serves`). ``ids``: those of
    the catalog its status names (:func:`catalog_ref`), when the caller has read it; by default the
    ids in ``status.commands``."""
    status = obj.get("status") or {}
    ids = command_ids(obj) if ids is None else ids
    if not status.get("endpoint") or not ids:
        return None
    meta = obj.get("metadata") or {}
    return Claim(
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        str(meta.get("creationTimestamp") or ""),
        ids,
    )


def lost_commands(claim: Claim, others: Iterable[Claim]) -> dict[str, str]:
    """Command ids of ``claim`` that an older Connector holds, mapped to that winner's key."""
    lost: dict[str, str] = {}
    for other in sorted(others, key=lambda c: c.rank):
        if other.key == claim.key or other.rank >= claim.rank:
            continue
        for command_id in claim.command_ids & other.command_ids:
            lost.setdefault(command_id, other.key)
    return lost


def winners(claims: Iterable[Claim]) -> dict[str, Claim]:
    """For every command id, the claim that serves it."""
    chosen: dict[str, Claim] = {}
    for claim in sorted(claims, key=lambda c: c.rank):
        for command_id in claim.command_ids:
            chosen.setdefault(command_id, claim)
    return chosen


async def load_kube_config() -> None:
    """In-cluster configuration in a pod (service account), else the standard kubeconfig. The client
    is imported here, not with this module: an embedded proxy and a connector workload never need it
    (it is most of a cold start's imports)."""
    from kubernetes_asyncio import config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config()
