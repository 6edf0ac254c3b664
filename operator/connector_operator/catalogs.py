"""What the operator knows of the catalog ConfigMaps it wrote: their hash and command ids (pure).

A kopf index over the ConfigMaps labelled as catalogs (:func:`index_entry`) holds, for each, the hash
of its content and its command ids; it is a live view, read by every reconcile and by the periodic
re-discovery. With it the operator computes the claims (which Connector serves which ids) without
the ids ever being in a Connector's status, and rewrites a ConfigMap only when it is not the catalog
just discovered (changed, deleted, or written by someone else).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connector_proxy.catalog_map import CatalogMapError, read_catalog_map
from connector_proxy.contract import Claim, catalog_ref, claim_of

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, ConfigMap name)
CatalogIndex = Mapping[Key, Iterable["IndexedCatalog"]]  # a kopf index: one store of values per key


@dataclass(frozen=True)
class IndexedCatalog:
    hash: str
    command_ids: frozenset[str]


def index_entry(body: Mapping[str, Any], namespace: str | None, name: str) -> dict[Key, IndexedCatalog]:
    """The kopf index value of one catalog ConfigMap (none when it cannot be read)."""
    try:
        stored = read_catalog_map(body)
    except CatalogMapError as error:
        logger.warning(
            "catalog ConfigMap unreadable", extra={"config_map": f"{namespace}/{name}", "reason": str(error)}
        )
        return {}
    return {(namespace or "", name): IndexedCatalog(stored.hash, stored.command_ids)}


def lookup(index: CatalogIndex | None, namespace: str, name: str, digest: str | None = None) -> IndexedCatalog | None:
    """The indexed catalog ConfigMap ``namespace/name``; with ``digest``, only one holding that catalog."""
    found = list((index or {}).get((namespace, name), ()))
    if digest is not None:
        found = [entry for entry in found if entry.hash == digest]
    return found[0] if found else None


def claim_basis(body: Mapping[str, Any]) -> dict[str, Any]:
    """What of a Connector the claims need (a kopf index keeps it, not the whole body)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    legacy = [{"id": entry.get("id")} for entry in status.get("commands") or [] if isinstance(entry, Mapping)]
    return {
        "metadata": {key: meta.get(key) for key in ("namespace", "name", "creationTimestamp")},
        "status": {
            "endpoint": status.get("endpoint"),
            "catalogHash": status.get("catalogHash"),
            "catalogConfigMap": status.get("catalogConfigMap"),
            "commands": legacy,  # an older operator's status.commands
        },
    }


def claims(connectors: Iterable[Mapping[str, Any]], index: CatalogIndex | None) -> list[Claim]:
    """Every serving Connector's claim, its ids read from the catalog ConfigMap its status names (or
    from an older operator's ``status.commands``). The operator writes the ConfigMap before the
    status: for the moment between the two, the ConfigMap's ids are the newer ones."""
    found: list[Claim] = []
    for obj in connectors:
        ref = catalog_ref(obj)
        ids: frozenset[str] | None = None
        if ref is not None:
            entry = lookup(index, str((obj.get("metadata") or {}).get("namespace") or ""), ref[0])
            ids = entry.command_ids if entry is not None else frozenset()
        claim = claim_of(obj, ids)
        if claim is not None:
            found.append(claim)
    return found
