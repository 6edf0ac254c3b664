"""Prebuilt catalog snapshots: the JSON bytes of ``/v1/commands`` and ``/v1/auths`` and their ETag.

A Kubernetes-mode proxy rebuilds its snapshot whenever one Connector changes, over every command of
every Connector (10,000 at 500 Connectors). :class:`EntryBytes` keeps each entry's JSON between
rebuilds, so a rebuild serializes only the entries that changed and joins the rest; a catalog over
1 MiB is gzipped at a faster level (``LARGE_GZIP_LEVEL``): it still shrinks about tenfold.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

GZIP_LEVEL = 6
LARGE_GZIP_LEVEL = 1
LARGE_BODY = 1024 * 1024
_OPTIONS = orjson.OPT_NON_STR_KEYS


def _sort_key(entry: dict[str, Any]) -> str:
    return str(entry["id"])


class EntryBytes:
    """The JSON of catalog entries, kept by entry object between builds. An entry is never changed
    once built (a changed catalog brings new entry objects); each build forgets what it no longer has."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[dict[str, Any], bytes]] = {}  # id(entry) -> (entry: keeps the id, JSON)

    def body(self, entries: Iterable[dict[str, Any]]) -> bytes:
        kept: dict[int, tuple[dict[str, Any], bytes]] = {}
        parts = []
        for entry in sorted(entries, key=_sort_key):
            found = self._kept.get(id(entry))
            if found is None or found[0] is not entry:
                found = (entry, orjson.dumps(entry, option=_OPTIONS))
            kept[id(entry)] = found
            parts.append(found[1])
        self._kept = kept
        return b"[" + b",".join(parts) + b"]"  # exactly orjson.dumps of the sorted list


@dataclass(frozen=True)
class CatalogSnapshot:
    """``body`` and its gzip encoding, both built once (spiff-arena's HTTP client accepts gzip)."""

    body: bytes
    etag: str
    gzip_body: bytes = b""

    @classmethod
    def build(cls, entries: Iterable[dict[str, Any]], kept: EntryBytes | None = None) -> CatalogSnapshot:
        """The snapshot of ``entries`` (sorted by id); ``kept``: the entries' JSON from earlier builds."""
        body = orjson.dumps(sorted(entries, key=_sort_key), option=_OPTIONS) if kept is None else kept.body(entries)
        level = LARGE_GZIP_LEVEL if len(body) > LARGE_BODY else GZIP_LEVEL
        return cls(
            body=body,
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            gzip_body=gzip.compress(body, compresslevel=level, mtime=0),
        )

    def encoded(self, accept_encoding: str | None) -> tuple[bytes, bool]:
        """The body to send and whether it is gzip-encoded, for an ``Accept-Encoding`` header."""
        if accept_encoding and _accepts_gzip(accept_encoding):
            return self.gzip_body, True
        return self.body, False

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header names this snapshot (weak comparison, RFC 9110)."""
        if not if_none_match:
            return False
        if if_none_match.strip() == "*":
            return True
        return any(tag.strip().removeprefix("W/") == self.etag for tag in if_none_match.split(","))


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().lower().removeprefix("q=")
            return not (params and quality.replace(".", "", 1).isdigit() and float(quality) == 0)
    return False
