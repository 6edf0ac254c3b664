"""URLs of the browser OAuth flow: the un-encoded ``redirect_url``, its allow-list, the public base.

spiff-arena sends the browser to
``/v1/auth/<connector>/<Auth>?redirect_url=<backend>/v1.0/authentication_callback/<connector>/<Auth>?token=<jwt>``
without URL-encoding ``redirect_url``: everything after the first ``redirect_url=`` is the redirect
URL, its own ``?`` and ``&`` included.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request

from connector_proxy.oauth.errors import OAuthErrorCode, OAuthFlowError
from connector_proxy.url_prefixes import DEFAULT_PORTS, Origin, allowlist_problems, parse_origin, path_under

_PARAM = "redirect_url="
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


@lru_cache(maxsize=8)
def _allowed_origins(allowlist: tuple[str, ...]) -> tuple[Origin, ...]:
    """The usable entries (the settings refuse any other at start-up)."""
    bad = set(allowlist_problems(allowlist))
    parsed = (parse_origin(entry.strip()) for index, entry in enumerate(allowlist) if index not in bad)
    return tuple(origin for origin in parsed if origin is not None)


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
    origin = parse_origin(url)
    if origin is not None:
        for allowed in _allowed_origins(tuple(allowlist)):
            if (origin.scheme, origin.host, origin.port) == (allowed.scheme, allowed.host, allowed.port) and (
                path_under(origin.path, allowed.path)
            ):
                return url
    raise OAuthFlowError(
        400,
        OAuthErrorCode.REDIRECT_NOT_ALLOWED,
        f"redirect_url {describe(url)} is not under any URL of CONNECTOR_PROXY_OAUTH_REDIRECT_ALLOWLIST.",
    )


def with_response(redirect_url: str, response_json: str) -> str:
    """``redirect_url`` with ``response=`` + the URL-encoded JSON added to its query, as the
    reference proxy appends it (encoded here, so spiff-arena reads back the exact JSON).

    The query's other parameters stay byte for byte (spiff-arena's token among them); a
    ``response`` parameter already there is replaced, never kept beside ours (a reader might take
    the first); a ``#fragment`` stays last, where it belongs, instead of swallowing the query.
    """
    before_fragment, hash_mark, fragment = redirect_url.partition("#")
    base, _, query = before_fragment.partition("?")
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] != "response"]
    kept.append(f"response={quote(response_json, safe='')}")
    return f"{base}?{'&'.join(kept)}{hash_mark}{fragment}"


def _first(value: str | None) -> str | None:
    if value is None:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


def trusted_peer(request: Request, trusted: Sequence[str]) -> bool:
    """Whether the request came from an address in ``trusted`` (addresses or networks; ``*`` is any)."""
    if "*" in trusted:
        return True
    client = request.scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in trusted)


def public_base_url(request: Request, public_url: str | None, trusted: Sequence[str] = ("*",)) -> str:
    """The proxy's public base URL: ``public_url`` when set, else from the request, honouring
    Host, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port and X-Forwarded-Prefix (malformed
    values are ignored), but only from a peer in ``trusted``: from anyone else those headers are
    the client's word, and an OAuth callback URL built on them could send a provider's code to
    another host."""
    if public_url:
        return public_url.rstrip("/")
    if not trusted_peer(request, trusted):
        raise OAuthFlowError(
            500,
            OAuthErrorCode.OAUTH_NOT_CONFIGURED,
            "The proxy's public URL is unknown: set CONNECTOR_PROXY_PUBLIC_URL (e.g. https://connectors.example.com), "
            "or list the reverse proxy in front of this one in CONNECTOR_PROXY_TRUSTED_PROXIES.",
        )
    headers = request.headers
    proto = (_first(headers.get("x-forwarded-proto")) or "").lower()
    if proto not in DEFAULT_PORTS:
        proto = request.url.scheme
    host = _first(headers.get("x-forwarded-host"))
    if host is None or not _HOST.match(host):
        host = headers.get("host") or request.url.netloc
        if not _HOST.match(host):
            host = request.url.netloc
    port = _first(headers.get("x-forwarded-port"))
    if port and port.isdigit() and not host.endswith("]") and ":" not in host and int(port) != DEFAULT_PORTS[proto]:
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
