"""The operator's view of the catalog ConfigMaps: claims computed without ids in any status."""

from __future__ import annotations

import base64
from typing import Any

from connector_operator.catalogs import IndexedCatalog, claim_basis, claims, index_entry, lookup
from connector_proxy.catalog_map import CATALOG_KEY, catalog_hash, encode_catalog

ENTRIES = [{"id": "crm/Get", "parameters": []}, {"id": "crm/Put", "parameters": []}]
DIGEST = catalog_hash(ENTRIES, [])


def connector(name: str, **status: Any) -> dict[str, Any]:
    meta = {"namespace": "ns", "name": name, "creationTimestamp": "2026-01-01T00:00:00Z", "uid": "u"}
    return {"metadata": meta, "spec": {"big": "x" * 100}, "status": {"endpoint": "http://w", **status}}


def test_an_index_entry_holds_the_hash_and_ids_of_a_config_map() -> None:
    body = {"binaryData": {CATALOG_KEY: base64.b64encode(encode_catalog(ENTRIES, [])).decode()}}
    assert index_entry(body, "ns", "m") == {("ns", "m"): IndexedCatalog(DIGEST, frozenset({"crm/Get", "crm/Put"}))}
    assert index_entry({"binaryData": {CATALOG_KEY: "eA=="}}, "ns", "m") == {}


def test_claims_take_their_ids_from_the_config_map_the_status_names() -> None:
    index = {("ns", "crm-catalog"): [IndexedCatalog(DIGEST, frozenset({"crm/Get", "crm/Put"}))]}
    named = connector("crm", catalogConfigMap="crm-catalog", catalogHash=DIGEST)
    legacy = connector("old", commands=[{"id": "old/Get"}])
    withdrawn = connector("gone", endpoint=None, catalogConfigMap="crm-catalog", catalogHash=DIGEST)
    not_yet = connector("new", catalogConfigMap="new-catalog", catalogHash=DIGEST)
    found = {c.name: set(c.command_ids) for c in claims([named, legacy, withdrawn, not_yet], index)}
    assert found == {"crm": {"crm/Get", "crm/Put"}, "old": {"old/Get"}}
    # From the kopf index's trimmed copy, the same.
    trimmed = [claim_basis(obj) for obj in (named, legacy, withdrawn, not_yet)]
    assert "spec" not in trimmed[0] and claims(trimmed, index) == claims([named, legacy, withdrawn, not_yet], index)


def test_lookup_with_a_digest_finds_only_that_catalog() -> None:
    index = {("ns", "m"): [IndexedCatalog("sha256:other", frozenset())]}
    assert lookup(index, "ns", "m") == IndexedCatalog("sha256:other", frozenset())
    assert lookup(index, "ns", "m", DIGEST) is None
    assert lookup(None, "ns", "m") is None
