"""URLs of the browser OAuth flow: the un-encoded ``redirect_url``, its allow-list, the public base.

spiff-arena sends the browser to
``/v1/auth/<connector>/<Auth>?redirect_url=<backend>/v1.0/authentication_callback/<connector>/<Auth>?token=<jwt>``
without URL-encoding ``redirect_url``: everything after the first ``redirect_url=`` is the redirect
URL, its own ``?`` and ``&`` included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, quote, unquote, urlsplit

from starlette.requests import Request

from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError

_PARAM = "redirect_url="
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Printable ASCII without space and backslash: browsers read "\" as "/", which would let
# "https://evil.example\@backend/" pass a naive host check.
_SAFE_URL = re.compile(r"^[!-\[\]-~]+$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%\-]+)*/?$")


def raw_redirect_url(query_string: bytes) -> str | None:
    """The ``redirect_url`` of a raw query string, as spiff-arena sends it (not URL-encoded).

    A properly URL-encoded value (``redirect_url=https%3A%2F%2F...``) is decoded as usual.
    """
    query = query_string.decode("latin-1")
    if query.startswith(_PARAM):
        value = query[len(_PARAM) :]
    else:
        at = query.find("&" + _PARAM)
        if at < 0:
            return None
        value = query[at + 1 + len(_PARAM) :]
    if "://" not in value:
        values = parse_qs(query, keep_blank_values=True).get("redirect_url")
        return values[0] if values else None
    return value


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    path: str


def _parse(url: str) -> _Origin | None:
    if not _SAFE_URL.match(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return None
    return _Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path or "/")


def _path_allowed(path: str, prefix: str) -> bool:
    if prefix in ("", "/"):
        return True
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


@lru_cache(maxsize=8)
def _allowed_origins(allowlist: tuple[str, ...]) -> tuple[_Origin, ...]:
    origins = []
    for entry in allowlist:
        origin = _parse(entry.strip())
        if origin is None or urlsplit(entry.strip()).query:
            raise OAuthFlowError(
                500,
                OAuthErrorCode.OAUTH_NOT_CONFIGURED,
                f"CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST entry {entry!r} is not an http(s) URL prefix "
                "like https://spiff.example.com/api/v1.0/authentication_callback.",
            )
        origins.append(origin)
    return tuple(origins)


def describe(url: str) -> str:
    """The URL without query and fragment (the query holds spiff-arena's session token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL)"
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


def check_redirect_url(url: str | None, allowlist: Sequence[str]) -> str:
    """``url`` when it falls under an allow-list entry: same scheme, host and port, and a path
    under the entry's path on a segment boundary (``/api`` allows ``/api/x``, not ``/apix``)."""
    if not url:
        raise OAuthFlowError(400, OAuthErrorCode.REDIRECT_NOT_ALLOWED, "The redirect_url query parameter is missing.")
    if not allowlist:
        raise OAuthFlowError(
            400,
            OAuthErrorCode.REDIRECT_NOT_ALLOWED,
            "No redirect URL is allowed: set CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST to spiff-arena's "
            "backend URL, e.g. https://spiff.example.com/api/v1.0/authentication_callback (comma-separated "
            "for several).",
        )
    origin = _parse(url)
    if origin is not None:
        for allowed in _allowed_origins(tuple(allowlist)):
            if (origin.scheme, origin.host, origin.port) == (allowed.scheme, allowed.host, allowed.port) and (
                _path_allowed(origin.path, allowed.path)
            ):
                return url
    raise OAuthFlowError(
        400,
        OAuthErrorCode.REDIRECT_NOT_ALLOWED,
        f"redirect_url {describe(url)} is not under any URL of CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST.",
    )


def with_response(redirect_url: str, response_json: str) -> str:
    """``redirect_url`` + ``&response=`` (or ``?response=``) + the URL-encoded JSON, as the
    reference proxy appends it (encoded here, so spiff-arena reads back the exact JSON)."""
    separator = "&" if "?" in redirect_url else "?"
    return f"{redirect_url}{separator}response={quote(response_json, safe='')}"


def _first(value: str | None) -> str | None:
    if value is None:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


def public_base_url(request: Request, public_url: str | None) -> str:
    """The proxy's public base URL: ``public_url`` when set, else from the request, honouring
    X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port and X-Forwarded-Prefix (malformed
    values are ignored)."""
    if public_url:
        return public_url.rstrip("/")
    headers = request.headers
    proto = (_first(headers.get("x-forwarded-proto")) or "").lower()
    if proto not in _DEFAULT_PORTS:
        proto = request.url.scheme
    host = _first(headers.get("x-forwarded-host"))
    if host is None or not _HOST.match(host):
        host = headers.get("host") or request.url.netloc
        if not _HOST.match(host):
            host = request.url.netloc
    port = _first(headers.get("x-forwarded-port"))
    if port and port.isdigit() and not host.endswith("]") and ":" not in host and int(port) != _DEFAULT_PORTS[proto]:
        host = f"{host}:{port}"
    prefix = _first(headers.get("x-forwarded-prefix"))
    if prefix is None or not _PREFIX.match(prefix) or prefix.startswith("//"):
        prefix = str(request.scope.get("root_path") or "")
    return f"{proto}://{host}{prefix.rstrip('/')}"


def forwarded_headers(base_url: str) -> dict[str, str]:
    """X-Forwarded-* headers that make a connector workload derive ``base_url`` as its own."""
    parts = urlsplit(base_url)
    return {
        "X-Forwarded-Proto": parts.scheme,
        "X-Forwarded-Host": parts.netloc,
        "X-Forwarded-Prefix": parts.path.rstrip("/") or "/",
    }


def allowlist_problems(allowlist: Iterable[str]) -> list[str]:
    """Entries that are not usable URL prefixes (for start-up checks)."""
    return [entry for entry in allowlist if _parse(entry.strip()) is None or urlsplit(entry.strip()).query]
