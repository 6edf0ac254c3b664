"""The connector's shared, pooled :class:`httpx.AsyncClient`.

The proxy enters :func:`lifespan` once at start-up on its event loop: every
command then uses that one client (one connection pool). A command that runs
without the lifespan (for example called directly in a test) gets one client
per running event loop, created lazily and reused; :func:`aclose_loop_client`
closes it. A client is never created per call.

The client keeps no cookies between calls (a cookie set by one process
instance's call must not be sent on another's), does not follow redirects
unless a request asks for it (then at most 30, as ``requests`` does), and
reads proxy settings from the environment (``HTTPS_PROXY``, ``NO_PROXY``,
...). Its connections are aiohttp's
(:mod:`spiff_connector_sdk.transport`): about half the CPU per request of
httpx's own; requests sent through an environment proxy use httpx's.
"""

from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import ssl
import urllib.request
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from spiff_connector_http.errors import MAX_REDIRECTS
from spiff_connector_http.redirects import drop_credentials_across_origins
from spiff_connector_http.settings import PoolSettings
from spiff_connector_sdk.proxies import environment_mounts
from spiff_connector_sdk.transport import pooled_transport

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "spiff-connector-http/0.1"


class _NoCookiesPolicy(http.cookiejar.DefaultCookiePolicy):
    """Neither store nor send cookies: the client is shared by every process instance."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), loaded once."""
    return httpx.create_ssl_context(trust_env=True)


def new_client(pool: PoolSettings | None = None) -> httpx.AsyncClient:
    """A pooled client configured for the connector (``pool``: its limits, by default from the
    environment, :mod:`spiff_connector_http.settings`)."""
    pool = pool or PoolSettings()
    limits = httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=pool.keepalive_expiry,
    )
    mounts = environment_mounts(verify=ssl_context(), limits=limits)
    transport = pooled_transport(verify=ssl_context(), limits=limits, max_per_host=pool.max_connections_per_host)
    return httpx.AsyncClient(
        limits=limits,
        transport=transport,
        mounts=mounts,
        timeout=httpx.Timeout(DEFAULT_TIMEOUT),
        follow_redirects=False,
        max_redirects=MAX_REDIRECTS,
        cookies=http.cookiejar.CookieJar(policy=_NoCookiesPolicy()),
        headers={"User-Agent": USER_AGENT},
        event_hooks={"request": [drop_credentials_across_origins]},
    )


class SharedClients:
    """The lifespan's client plus lazily created per-event-loop fallbacks."""

    def __init__(self) -> None:
        self._main: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> httpx.AsyncClient:
        """The client for the running event loop (must be called from a coroutine)."""
        loop = asyncio.get_running_loop()
        if self._main is not None and self._main[0] is loop and not self._main[1].is_closed:
            return self._main[1]
        client = self._per_loop.get(loop)
        if client is None or client.is_closed:
            client = new_client()
            self._per_loop[loop] = client
        return client

    async def aclose_loop_client(self) -> None:
        """Close the lazily created client of the running event loop, if any."""
        client = self._per_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Create the shared client for the running loop; close it on exit."""
        previous = self._main
        client = new_client()
        self._main = (asyncio.get_running_loop(), client)
        try:
            yield
        finally:
            self._main = previous
            await client.aclose()
            await self.aclose_loop_client()


shared_clients = SharedClients()
get_client = shared_clients.get
aclose_loop_client = shared_clients.aclose_loop_client
lifespan = shared_clients.lifespan
