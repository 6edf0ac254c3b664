"""The catalog ConfigMap: where a Connector's discovered catalog is kept, beside the Connector.

A catalog of thousands of commands does not belong in the Connector's status (etcd refuses objects
over 1.5 MiB, and ``kubectl describe`` would print every command before the conditions). The
operator writes it, gzipped, into a ConfigMap it owns (``connector-<name>-catalog``); the status
keeps only ``catalogHash``, the counts and the ConfigMap's name.

The ConfigMap carries the exact bytes the hash is taken over, so a reader checks it against the
status' ``catalogHash`` with one SHA-256: the status (which only the operator may write) stays the
authority, and a ConfigMap that does not match it is never served. Both the operator and the proxies
read it through :func:`read_catalog_map`; the operator writes what :func:`encode_catalog` makes.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from connector_proxy.contract import GROUP, well_formed_ids

CATALOG_LABEL = f"{GROUP}/catalog"  # "true" on every catalog ConfigMap: what readers select
HASH_ANNOTATION = f"{GROUP}/catalog-hash"
CATALOG_KEY = "catalog.json.gz"  # the one binaryData key

# The API server refuses a ConfigMap whose data exceeds 1 MiB; the operator refuses a catalog over
# this (Ready=False, CatalogTooLarge) so the write never fails half way. About 25,000 typical
# commands fit: a 5,000-command catalog compresses to well under a tenth of it.
MAX_COMPRESSED_BYTES = 900 * 1024
MAX_CATALOG_BYTES = 64 * 1024 * 1024  # uncompressed: a ConfigMap that inflates beyond is refused


class CatalogMapError(ValueError):
    """A catalog ConfigMap that cannot be read; the message says why, never what it holds."""


@dataclass(frozen=True)
class StoredCatalog:
    """A catalog as read from its ConfigMap; ``hash`` is the one its content really has."""

    hash: str
    commands: list[dict[str, Any]]
    auths: list[dict[str, Any]]

    @property
    def command_ids(self) -> frozenset[str]:
        return well_formed_ids(self.commands)


def catalog_bytes(commands: list[dict[str, Any]], auths: list[dict[str, Any]]) -> bytes:
    """The canonical bytes of a catalog (sorted keys): what ``catalogHash`` is the SHA-256 of."""
    return orjson.dumps({"commands": commands, "auths": auths}, option=orjson.OPT_SORT_KEYS)


def hash_of(canonical: bytes) -> str:
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def catalog_hash(commands: list[dict[str, Any]], auths: list[dict[str, Any]]) -> str:
    """A content hash of the catalog, so watchers can tell changes cheaply."""
    return hash_of(catalog_bytes(commands, auths))


def compress_catalog(canonical: bytes) -> bytes:
    """What the ConfigMap holds: the canonical bytes gzipped, with no timestamp in the header (the
    same catalog, the same bytes)."""
    return gzip.compress(canonical, compresslevel=6, mtime=0)


def encode_catalog(commands: list[dict[str, Any]], auths: list[dict[str, Any]]) -> bytes:
    """:func:`compress_catalog` of the catalog's canonical bytes."""
    return compress_catalog(catalog_bytes(commands, auths))


def catalog_map_name(workload: str) -> str:
    """``<workload>-catalog``: the workload name is a DNS label of at most 63 characters, so this is
    a valid ConfigMap name for every Connector."""
    return f"{workload}-catalog"


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        inflated = inflater.decompress(compressed, MAX_CATALOG_BYTES)
    except zlib.error:
        raise CatalogMapError("not gzip data") from None
    if inflater.unconsumed_tail:
        raise CatalogMapError(f"inflates to more than {MAX_CATALOG_BYTES} bytes")
    if not inflater.eof:
        raise CatalogMapError("truncated gzip data")
    return inflated


def _entries(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise CatalogMapError(f"{what} is not a list of objects")
    return value


def read_catalog_map(config_map: Mapping[str, Any]) -> StoredCatalog:
    """The catalog a ConfigMap (as the API serves it: ``binaryData`` in base64) holds."""
    encoded = (config_map.get("binaryData") or {}).get(CATALOG_KEY)
    if not isinstance(encoded, str):
        raise CatalogMapError(f"no binaryData key {CATALOG_KEY}")
    try:
        compressed = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CatalogMapError(f"binaryData {CATALOG_KEY} is not base64") from None
    canonical = _inflate(compressed)
    try:
        document = orjson.loads(canonical)
    except orjson.JSONDecodeError:
        raise CatalogMapError("not JSON") from None
    if not isinstance(document, dict):
        raise CatalogMapError("not a JSON object")
    return StoredCatalog(
        hash_of(canonical),
        _entries(document.get("commands"), "commands"),
        _entries(document.get("auths", []), "auths"),
    )
