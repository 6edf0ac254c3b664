"""Prebuilt catalog snapshots: the JSON bytes of ``/v1/commands`` and ``/v1/auths`` and their ETag."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class CatalogSnapshot:
    """``body`` and its gzip encoding, both built once (spiff-arena's HTTP client accepts gzip)."""

    body: bytes
    etag: str
    gzip_body: bytes = b""

    @classmethod
    def build(cls, entries: Iterable[dict[str, Any]]) -> CatalogSnapshot:
        body = orjson.dumps(sorted(entries, key=lambda e: str(e["id"])), option=orjson.OPT_NON_STR_KEYS)
        return cls(
            body=body,
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
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
