"""The catalog ConfigMap format: what the operator writes is what a proxy reads, hash and all, and
anything else is refused with a reason that never quotes the content."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
import pytest

from connector_proxy import catalog_map
from connector_proxy.catalog_map import (
    CATALOG_KEY,
    MAX_COMPRESSED_BYTES,
    CatalogMapError,
    catalog_hash,
    encode_catalog,
    read_catalog_map,
)
from proxytest.catalogs import sdk_catalog

AUTHS = [{"id": "crm/OAuth", "parameters": [{"id": "client_id", "type": "str", "required": True}]}]


def as_served(compressed: bytes) -> dict[str, Any]:
    """A ConfigMap as the API server answers it: binaryData in base64."""
    return {"metadata": {"name": "c"}, "binaryData": {CATALOG_KEY: base64.b64encode(compressed).decode()}}


def test_what_is_written_is_read_back_with_its_hash() -> None:
    commands = sdk_catalog(3)
    stored = read_catalog_map(as_served(encode_catalog(commands, AUTHS)))
    assert (stored.commands, stored.auths) == (commands, AUTHS)
    assert stored.hash == catalog_hash(commands, AUTHS)
    assert stored.command_ids == {c["id"] for c in commands}


def test_the_same_catalog_is_the_same_bytes() -> None:
    """No timestamp in the gzip header: an unchanged catalog never looks changed."""
    assert encode_catalog(sdk_catalog(2), AUTHS) == encode_catalog(sdk_catalog(2), AUTHS)


def test_a_5000_command_catalog_fits_with_a_wide_margin() -> None:
    commands = sdk_catalog(5000)
    compressed = encode_catalog(commands, AUTHS)
    assert len(orjson.dumps(commands)) > 3 * 1024 * 1024  # twice etcd's limit on one object
    assert len(compressed) * 4 < MAX_COMPRESSED_BYTES


@pytest.mark.parametrize(
    ("config_map", "reason"),
    [
        ({"metadata": {}}, "no binaryData key catalog.json.gz"),
        ({"binaryData": {CATALOG_KEY: "not base64!"}}, "is not base64"),
        (as_served(b"plain bytes"), "not gzip data"),
        (as_served(gzip.compress(b'{"commands": [1, 2]}')[:-12]), "truncated gzip data"),
        (as_served(gzip.compress(b"secret-looking-value")), "not JSON"),
        (as_served(gzip.compress(b"[]")), "not a JSON object"),
        (as_served(gzip.compress(b'{"commands": ["secret-looking-value"]}')), "commands is not a list of objects"),
        (as_served(gzip.compress(b'{"commands": [], "auths": {}}')), "auths is not a list of objects"),
    ],
)
def test_anything_else_is_refused_without_quoting_it(config_map: dict[str, Any], reason: str) -> None:
    with pytest.raises(CatalogMapError) as raised:
        read_catalog_map(config_map)
    assert reason in str(raised.value)
    assert "secret-looking-value" not in str(raised.value)


def test_a_catalog_that_inflates_beyond_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_map, "MAX_CATALOG_BYTES", 1024 * 1024)
    bomb = gzip.compress(b" " * (2 * 1024 * 1024))  # 2 MiB of spaces: a few KB gzipped
    with pytest.raises(CatalogMapError, match="inflates to more than 1048576 bytes"):
        read_catalog_map(as_served(bomb))
