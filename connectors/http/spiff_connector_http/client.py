"""The connector's shared, pooled HTTP client: one :class:`aiohttp.ClientSession`.

The proxy enters :func:`lifespan` once at start-up on its event loop: every
command then uses that one client (one connection pool). A command that runs
without the lifespan (for example called directly in a test) gets one client
per running event loop, created lazily and reused; :func:`aclose_loop_client`
closes it. A client is never created per call, and its session is created on
the event loop that uses it.

The session keeps no cookies between calls (a cookie set by one process
instance's call must not be sent on another's), follows no redirects itself
(:mod:`spiff_connector_http.redirects` does, when a request asks for it),
decompresses nothing itself (:mod:`spiff_connector_http.decoding` does) and adds no
``Content-Type`` the request does not set. Requests go through the proxy the
environment names for their URL (``HTTPS_PROXY``, ``NO_PROXY``, ...: see
:func:`spiff_connector_sdk.proxies.proxy_for`), looked up once per origin.
TLS uses httpx's default settings (:func:`spiff_connector_sdk.transport.tls_context`), loaded once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx

from spiff_connector_http.decoding import ACCEPT_ENCODING
from spiff_connector_http.redirects import origin_of
from spiff_connector_http.settings import PoolSettings
from spiff_connector_sdk.proxies import ProxyRoutes
from spiff_connector_sdk.transport import tls_context

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "spiff-connector-http/0.1"
MAX_PROXY_LOOKUPS = 1024  # origins whose environment proxy is kept
DEFAULT_HEADERS = (
    ("accept", "*/*"),
    ("accept-encoding", ACCEPT_ENCODING),
    ("connection", "keep-alive"),
    ("user-agent", USER_AGENT),
)
"""Sent unless the request sets them (the headers httpx sent by default, in its order)."""


class HttpClient:
    """The session with the pool's limits, plus the environment proxy of each origin it has called."""

    def __init__(self, pool: PoolSettings | None = None) -> None:
        pool = pool or PoolSettings()
        connector = aiohttp.TCPConnector(
            limit=pool.max_connections,
            limit_per_host=pool.max_connections_per_host,
            keepalive_timeout=pool.keepalive_expiry,
            ssl=tls_context(),
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            skip_auto_headers=("Content-Type",),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._proxies = ProxyRoutes(MAX_PROXY_LOOKUPS)

    @property
    def is_closed(self) -> bool:
        return self.session.closed

    def proxy(self, url: httpx.URL) -> str | None:
        """The environment's proxy for ``url`` (None: straight to it), looked up once per origin."""
        return self._proxies.get(origin_of(url), url)

    async def aclose(self) -> None:
        await self.session.close()


def new_client(pool: PoolSettings | None = None) -> HttpClient:
    """A pooled client configured for the connector (``pool``: its limits, by default from the
    environment, :mod:`spiff_connector_http.settings`). Call it on the event loop that uses it."""
    return HttpClient(pool)


class SharedClients:
    """The lifespan's client plus lazily created per-event-loop fallbacks."""

    def __init__(self) -> None:
        self._main: tuple[asyncio.AbstractEventLoop, HttpClient] | None = None
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HttpClient] = weakref.WeakKeyDictionary()

    def get(self) -> HttpClient:
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
