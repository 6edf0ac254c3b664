"""Which catalog each Connector serves: the one its status names, read from its ConfigMap (pure).

The status' ``catalogHash`` is the authority: a ConfigMap is used only when the SHA-256 of its content
is that hash, so a ConfigMap anyone else wrote is never served. Each ConfigMap is decoded once per
resourceVersion. While a Connector's ConfigMap does not match its status (the status arrived first,
or the ConfigMap was deleted), its last verified catalog stays in use; a withdrawn Connector (no
``catalogHash``) forgets it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connector_proxy.catalog_map import CatalogMapError, StoredCatalog, read_catalog_map
from connector_proxy.contract import catalog_ref, key_of

logger = logging.getLogger(__name__)

Objects = Mapping[str, Mapping[str, Any]]


class ConnectorCatalogs:
    """Puts each Connector's verified catalog into ``status.commands`` and ``status.auths`` (the shape
    :mod:`connector_proxy.kubernetes.registry` and :func:`connector_proxy.contract.claim_of` read)."""

    def __init__(self) -> None:
        self._decoded: dict[str, tuple[str, StoredCatalog | None]] = {}  # ConfigMap key -> (resourceVersion, ...)
        self._verified: dict[str, StoredCatalog] = {}  # Connector key -> its last verified catalog
        self._mismatches: set[tuple[str, str]] = set()  # (Connector key, catalogHash) already logged

    def _read(self, key: str, config_map: Mapping[str, Any] | None) -> StoredCatalog | None:
        if config_map is None:
            return None
        version = str((config_map.get("metadata") or {}).get("resourceVersion") or "")
        cached = self._decoded.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            stored: StoredCatalog | None = read_catalog_map(config_map)
        except CatalogMapError as error:
            logger.warning("catalog ConfigMap unreadable", extra={"config_map": key, "reason": str(error)})
            stored = None
        self._decoded[key] = (version, stored)
        return stored

    def attach(self, connectors: Objects, config_maps: Objects) -> list[dict[str, Any]]:
        """Every Connector, each with the catalog it serves (an empty one until its ConfigMap is read)."""
        verified: dict[str, StoredCatalog] = {}
        attached: list[dict[str, Any]] = []
        for key, obj in connectors.items():
            ref = catalog_ref(obj)
            if ref is None:  # withdrawn, never discovered, or an older operator's status.commands
                attached.append(dict(obj))
                continue
            name, digest = ref
            map_key = f"{(obj.get('metadata') or {}).get('namespace', '')}/{name}"
            stored = self._read(map_key, config_maps.get(map_key))
            if stored is None or stored.hash != digest:
                if stored is not None and (key, digest) not in self._mismatches:
                    self._mismatches.add((key, digest))
                    logger.info(
                        "catalog ConfigMap does not match its Connector's catalogHash; keeping the last verified",
                        extra={"connector": key_of(obj), "config_map": map_key},
                    )
                stored = self._verified.get(key)
            status = dict(obj.get("status") or {})
            status["commands"] = stored.commands if stored is not None else []
            status["auths"] = stored.auths if stored is not None else []
            if stored is not None:
                verified[key] = stored
            if stored is not None and stored.hash == digest:
                self._mismatches.discard((key, digest))
            attached.append({**obj, "status": status})
        self._verified = verified
        self._decoded = {key: value for key, value in self._decoded.items() if key in config_maps}
        return attached
