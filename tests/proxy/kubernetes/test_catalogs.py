"""Which catalog each Connector serves: the one its status' catalogHash names, never another."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from connector_proxy.catalog_map import CATALOG_KEY, catalog_hash, encode_catalog
from connector_proxy.contract import claim_of
from connector_proxy.kubernetes.catalogs import ConnectorCatalogs

MAP = "connector-crm-catalog"


def commands(*ids: str) -> list[dict[str, Any]]:
    return [{"id": i, "parameters": [], "description": None} for i in ids]


def config_map(entries: list[dict[str, Any]], version: str = "1", name: str = MAP) -> dict[str, Any]:
    data = base64.b64encode(encode_catalog(entries, [])).decode()
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": version},
        "binaryData": {CATALOG_KEY: data},
    }


def connector(entries: list[dict[str, Any]] | None, **status: Any) -> dict[str, Any]:
    named = {"catalogConfigMap": MAP, "catalogHash": catalog_hash(entries, [])} if entries is not None else {}
    meta = {"namespace": "ns", "name": "crm", "creationTimestamp": "2026-01-01T00:00:00Z"}
    return {"metadata": meta, "status": {"endpoint": "http://w:7004", **named, **status}}


def served(catalogs: ConnectorCatalogs, obj: dict[str, Any], *maps: dict[str, Any]) -> set[str]:
    [attached] = catalogs.attach({"ns/crm": obj}, {f"ns/{m['metadata']['name']}": m for m in maps})
    claim = claim_of(attached)
    return set(claim.command_ids) if claim is not None else set()


def test_the_catalog_its_status_names_is_served_exactly() -> None:
    entries = commands("crm/Get", "crm/Put")
    [attached] = ConnectorCatalogs().attach({"ns/crm": connector(entries)}, {f"ns/{MAP}": config_map(entries)})
    assert attached["status"]["commands"] == entries  # null values kept: the status would have dropped them
    assert attached["status"]["auths"] == []


def test_a_config_map_that_does_not_hash_to_the_status_is_never_served() -> None:
    """Anyone allowed to write ConfigMaps could write one; only the operator writes the status."""
    forged = config_map(commands("crm/Get", "evil/Steal"))
    assert served(ConnectorCatalogs(), connector(commands("crm/Get")), forged) == set()


def test_until_the_config_map_catches_up_the_last_verified_catalog_stays() -> None:
    catalogs = ConnectorCatalogs()
    old, new = commands("crm/Get"), commands("crm/Get", "crm/Put")
    assert served(catalogs, connector(old), config_map(old)) == {"crm/Get"}
    # The status names the new catalog before the ConfigMap's event arrives (two watches, any order).
    assert served(catalogs, connector(new), config_map(old)) == {"crm/Get"}
    assert served(catalogs, connector(new), config_map(new, version="2")) == {"crm/Get", "crm/Put"}
    # The ConfigMap deleted by hand: still served while the operator writes it again.
    assert served(catalogs, connector(new)) == {"crm/Get", "crm/Put"}


def test_a_withdrawn_connector_forgets_its_catalog() -> None:
    catalogs = ConnectorCatalogs()
    entries = commands("crm/Get")
    assert served(catalogs, connector(entries), config_map(entries)) == {"crm/Get"}
    withdrawn = connector(None, commandCount=0)
    assert served(catalogs, withdrawn, config_map(entries)) == set()
    # Discovered again, the status first: nothing verified is left to fall back on.
    assert served(catalogs, connector(commands("crm/Other")), config_map(entries)) == set()


def test_an_older_operators_status_commands_are_still_served() -> None:
    legacy = connector(None, commands=commands("crm/Get"), catalogHash="sha256:whatever")
    assert served(ConnectorCatalogs(), legacy) == {"crm/Get"}


def test_a_config_map_is_decoded_once_per_resource_version(caplog: pytest.LogCaptureFixture) -> None:
    catalogs = ConnectorCatalogs()
    broken = {"metadata": {"namespace": "ns", "name": MAP, "resourceVersion": "7"}, "binaryData": {CATALOG_KEY: "eA=="}}
    with caplog.at_level(logging.WARNING, logger="connector_proxy.kubernetes.catalogs"):
        for _ in range(3):
            assert served(catalogs, connector(commands("crm/Get")), broken) == set()
        broken["metadata"]["resourceVersion"] = "8"
        served(catalogs, connector(commands("crm/Get")), broken)
    unreadable = [r for r in caplog.records if r.getMessage() == "catalog ConfigMap unreadable"]
    assert [getattr(r, "reason", None) for r in unreadable] == ["truncated gzip data"] * 2
