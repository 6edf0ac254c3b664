"""Environment proxy settings for clients with a transport of their own.

httpx reads ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` only for a client
without a custom transport, so a client on :func:`~spiff_connector_sdk.transport.pooled_transport`
would silently bypass a site's egress proxy. :func:`environment_mounts` gives such a client the
mounts httpx would have made: URLs a proxy setting covers go through httpx's own proxy transport,
``NO_PROXY`` hosts straight to the pooled one. A client that is not httpx asks
:func:`proxy_for` which proxy, if any, a URL goes through.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import urllib.request
from collections.abc import Hashable
from dataclasses import dataclass

import httpx


def environment_proxies() -> dict[str, str | None]:
    """URL patterns to proxy URLs (None: no proxy) from ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``
    and ``NO_PROXY``, read as httpx reads them (httpx skips them for a client with its own transport)."""
    found = urllib.request.getproxies()
    patterns: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if found.get(scheme):
            proxy = found[scheme]
            patterns[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    for host in (h.strip() for h in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            patterns[host] = None
        elif _is_ip(host.split("/")[0], ipaddress.IPv4Address) or host.lower() == "localhost":
            patterns[f"all://{host}"] = None
        elif _is_ip(host.split("/")[0], ipaddress.IPv6Address):
            patterns[f"all://[{host}]"] = None
        else:
            patterns[f"all://*{host}"] = None
    return patterns


def _is_ip(text: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Pattern:
    """One mount pattern, matched as httpx matches its mounts (its matcher is not public API):
    ``all://`` any scheme, ``*.example.com`` subdomains only, ``*example.com`` the domain and its
    subdomains, a port only when the pattern names one."""

    scheme: str
    host: re.Pattern[str] | None
    port: int | None
    priority: tuple[int, int, int]

    @classmethod
    def parse(cls, pattern: str) -> _Pattern:
        url = httpx.URL(pattern)
        scheme = "" if url.scheme == "all" else url.scheme
        host = "" if url.host == "*" else url.host
        regex: re.Pattern[str] | None = None
        if host.startswith("*."):
            regex = re.compile(rf"^.+\.{re.escape(host[2:])}$")
        elif host.startswith("*"):
            regex = re.compile(rf"^(.+\.)?{re.escape(host[1:])}$")
        elif host:
            regex = re.compile(rf"^{re.escape(host)}$")
        # httpx tries the patterns with a port first, then the longest host, then the longest scheme.
        return cls(scheme, regex, url.port, (0 if url.port is not None else 1, -len(host), -len(scheme)))

    def matches(self, url: httpx.URL) -> bool:
        return (
            (not self.scheme or self.scheme == url.scheme)
            and (self.host is None or self.host.match(url.host) is not None)
            and (self.port is None or self.port == url.port)
        )


def proxy_for(url: str | httpx.URL) -> str | None:
    """The proxy URL the environment's settings route ``url`` through (None: straight to it), by the
    patterns of :func:`environment_proxies` and the rules httpx applies to its mounts."""
    target = httpx.URL(url)
    patterns = sorted(
        ((_Pattern.parse(pattern), proxy) for pattern, proxy in environment_proxies().items()),
        key=lambda item: item[0].priority,
    )
    for pattern, proxy in patterns:
        if pattern.matches(target):
            return proxy
    return None


class ProxyRoutes:
    """:func:`proxy_for`, looked up once per key (an origin, an endpoint: whatever decides the
    route) and kept for at most ``limit`` keys (a client calling ever new hosts stays bounded)."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._routes: dict[Hashable, str | None] = {}

    def __len__(self) -> int:
        return len(self._routes)

    def get(self, key: Hashable, url: str | httpx.URL) -> str | None:
        """The proxy for ``url``, whose route ``key`` names: looked up the first time ``key`` is seen."""
        try:
            return self._routes[key]
        except KeyError:
            if len(self._routes) >= self.limit:
                self._routes.clear()
            found = self._routes[key] = proxy_for(url)
            return found


class ProxyTransport(httpx.AsyncHTTPTransport):
    """httpx's transport through an environment proxy; failing to connect to the proxy is a
    :class:`httpx.ProxyError` (``requests``' ``ProxyError``), not a failure to reach the upstream."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectError as exc:
            if any(isinstance(e, ssl.SSLError) for e in (exc.__cause__, exc.__context__)):
                raise  # the TLS handshake with the upstream, through the tunnel
            raise httpx.ProxyError(str(exc) or "cannot connect to the proxy") from exc


def environment_mounts(
    *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits | None = None
) -> dict[str, httpx.AsyncBaseTransport | None]:
    """httpx ``mounts`` for the environment's proxy settings (empty when there are none)."""
    return {
        pattern: None if proxy is None else ProxyTransport(proxy=proxy, verify=verify, limits=limits or httpx.Limits())
        for pattern, proxy in environment_proxies().items()
    }
