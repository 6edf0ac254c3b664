"""URL prefixes of the OAuth redirect allow-list: one parser for the start-up check of the
settings and for the check of every redirect URL (``connector_proxy.oauth.redirects``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Printable ASCII without space and backslash: browsers read "\" as "/", which would let
# "https://evil.example\@backend/" pass a naive host check.
_SAFE_URL = re.compile(r"^[!-\[\]-~]+$")


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    path: str


def parse_origin(url: str) -> Origin | None:
    """Scheme, host, port and path of an http(s) URL; None for anything a browser might read
    differently (credentials, backslashes, dot segments, odd ports)."""
    if not _SAFE_URL.match(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return None
    return Origin(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme], parts.path or "/")


def path_under(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or below it on a segment boundary (``/api`` holds ``/api/x``, not ``/apix``)."""
    if prefix in ("", "/"):
        return True
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def allowlist_problems(allowlist: Iterable[str]) -> list[int]:
    """Positions (0-based) of the entries that are not usable URL prefixes."""
    return [
        index
        for index, entry in enumerate(allowlist)
        if parse_origin(entry.strip()) is None or urlsplit(entry.strip()).query
    ]
