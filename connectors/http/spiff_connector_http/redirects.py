"""Credentials stay with the origin they were given for, across redirects.

httpx, like ``requests`` and browsers, drops ``Authorization`` when a redirect leaves the origin,
but keeps every other header: an ``X-Api-Key`` or a ``Proxy-Authorization`` would reach whatever
host a redirect names. Every request of a call carries the origin of its first request
(:data:`ORIGIN`); a hop to another origin loses every header that looks like a credential
(:func:`is_credential`). A plain ``http`` to ``https`` upgrade of the same host keeps them, as
httpx keeps ``Authorization`` then.
"""

from __future__ import annotations

import httpx

ORIGIN = "spiff_connector_http.origin"
CREDENTIAL_NAMES = frozenset({"authorization", "proxy-authorization", "cookie"})
CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "password", "passwd", "session", "credential", "signature")

Origin = tuple[str, str, int | None]


def origin_of(url: httpx.URL) -> Origin:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port if url.port is not None else default


def is_credential(name: str) -> bool:
    lowered = name.lower()
    return lowered in CREDENTIAL_NAMES or any(word in lowered for word in CREDENTIAL_WORDS)


def _upgrade(first: Origin, now: Origin) -> bool:
    return first[0] == "http" and now[0] == "https" and first[1] == now[1] and now[2] == 443 and first[2] == 80


async def drop_credentials_across_origins(request: httpx.Request) -> None:
    """An httpx ``request`` event hook (it runs before every hop of a call)."""
    first = request.extensions.get(ORIGIN)
    if first is None:
        return
    now = origin_of(request.url)
    if now == first or _upgrade(first, now):
        return
    for name in [name for name in request.headers if is_credential(name)]:
        del request.headers[name]
