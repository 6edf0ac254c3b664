"""Following redirects: the next request of a call, by httpx's rules (which the connector used before).

A redirect is a 301, 302, 303, 307 or 308 answer with a ``Location``; a relative one is resolved
against the request's URL. 303, and 302 for every method but HEAD, become GET; a 301 of a POST
becomes GET; when the method changes to GET the body and ``Content-Length``/``Transfer-Encoding``
go. ``Cookie`` is never sent on; ``Host`` follows the URL to another origin.

Credentials stay with the origin they were given for. httpx, like ``requests`` and browsers,
drops ``Authorization`` when a redirect leaves the origin, but keeps every other header: an
``X-Api-Key`` or a ``Proxy-Authorization`` would reach whatever host a redirect names. So a hop
to another origin than the call's first loses every header that looks like a credential
(:func:`is_credential`), for the rest of the call. A plain ``http`` to ``https`` upgrade of the
same host keeps them, as httpx keeps ``Authorization`` then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

CREDENTIAL_NAMES = frozenset({"authorization", "proxy-authorization", "cookie"})
CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "password", "passwd", "session", "credential", "signature")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Origin = tuple[str, str, int | None]


class InvalidLocationError(Exception):
    """A redirect's ``Location`` is not a URL."""


@dataclass(frozen=True)
class Hop:
    """One request of a call: ``headers`` have lower-case names and are sent as they are."""

    method: str
    url: httpx.URL
    headers: dict[str, str]
    body: bytes | None
    first_origin: Origin


def origin_of(url: httpx.URL) -> Origin:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port if url.port is not None else default


def is_credential(name: str) -> bool:
    lowered = name.lower()
    return lowered in CREDENTIAL_NAMES or any(word in lowered for word in CREDENTIAL_WORDS)


def _upgrade(first: Origin, now: Origin) -> bool:
    return first[0] == "http" and now[0] == "https" and first[1] == now[1] and now[2] == 443 and first[2] == 80


def is_redirect(status: int, location: str | None) -> bool:
    return status in REDIRECT_STATUSES and location is not None


def _method(method: str, status: int) -> str:
    if status in (302, 303) and method != "HEAD":
        return "GET"
    if status == 301 and method == "POST":
        return "GET"
    return method


def _location(url: httpx.URL, location: str) -> httpx.URL:
    try:
        target = httpx.URL(location)
    except httpx.InvalidURL as exc:
        raise InvalidLocationError(f"Invalid URL in location header: {exc}.") from None
    if target.scheme and not target.host:
        target = target.copy_with(host=url.host)
    if target.is_relative_url:
        target = url.join(target)
    if url.fragment and not target.fragment:
        target = target.copy_with(fragment=url.fragment)
    return target


def next_hop(hop: Hop, status: int, location: str) -> Hop:
    """The request a ``status`` answer with ``location`` to ``hop`` redirects to."""
    url = _location(hop.url, location)
    method = _method(hop.method, status)
    headers = dict(hop.headers)
    body = hop.body
    before, now = origin_of(hop.url), origin_of(url)
    if now != before:
        if not _upgrade(before, now):
            headers.pop("authorization", None)
        headers["host"] = url.netloc.decode("ascii")
    if method != hop.method and method == "GET":
        headers.pop("content-length", None)
        headers.pop("transfer-encoding", None)
        body = None
    headers.pop("cookie", None)
    if now != hop.first_origin and not _upgrade(hop.first_origin, now):
        headers = {name: value for name, value in headers.items() if not is_credential(name)}
    return replace(hop, method=method, url=url, headers=headers, body=body)
