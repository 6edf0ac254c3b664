"""Prebuilt catalog snapshots: the JSON bytes of ``/v1/commands`` and ``/v1/auths`` and their ETag."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class CatalogSnapshot:
    body: bytes
    etag: str

    @classmethod
    def build(cls, entries: Iterable[dict[str, Any]]) -> CatalogSnapshot:
        body = orjson.dumps(sorted(entries, key=lambda e: str(e["id"])), option=orjson.OPT_NON_STR_KEYS)
        return cls(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def matches(self, if_none_match: str | None) -> bool:
        """Whether an ``If-None-Match`` header names this snapshot (weak comparison, RFC 9110)."""
        if not if_none_match:
            return False
        if if_none_match.strip() == "*":
            return True
        return any(tag.strip().removeprefix("W/") == self.etag for tag in if_none_match.split(","))
