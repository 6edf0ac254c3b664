"""A pooled transport for one shared ``httpx.AsyncClient``: httpx's API on aiohttp's connections
(``pip install 'spiff-connector-sdk[http]'``).

httpx's own HTTP/1.1 stack spends about twice the CPU per request of aiohttp's, which is most of
what a connector that calls an HTTP API costs. :func:`pooled_transport` keeps everything httpx
does above the wire (URLs, headers, auth, redirects, cookies, timeouts, decoding, environment
proxies through ``mounts``) and hands only the socket-level exchange to aiohttp through the
``httpx-aiohttp`` transport::

    client = httpx.AsyncClient(transport=pooled_transport(), timeout=30)

What it adds to ``httpx_aiohttp.AiohttpTransport``:

- exceptions are httpx's, by what happened: refused/DNS/TLS → :class:`httpx.ConnectError`,
  connect timeout → :class:`httpx.ConnectTimeout`, read timeout → :class:`httpx.ReadTimeout`,
  a dropped connection or an invalid answer → :class:`httpx.RemoteProtocolError`, a failure while
  reading the body → :class:`httpx.ReadError`, a header value that would break the request line
  → :class:`httpx.LocalProtocolError`, a scheme aiohttp cannot speak →
  :class:`httpx.UnsupportedProtocol`; also for errors raised while the body is read;
- aiohttp neither stores cookies (httpx's cookie jar decides), nor reads proxy settings from the
  environment (httpx does, and routes those requests through its own proxy transports), nor adds
  a ``Content-Type`` httpx did not set, nor decompresses (httpx does);
- request bodies are read into memory before they are sent (a streamed upload is buffered);
- ``limits.max_connections`` bounds the pool (``None``: unbounded) and ``limits.keepalive_expiry``
  closes idle connections (``None``: after an hour); aiohttp has no separate bound on idle
  connections (``max_keepalive_connections`` is not used).

Create the transport anywhere; its aiohttp session is created on first use, on the event loop
that uses it, so one transport (and one client) belongs to one event loop. Close the client
(``await client.aclose()``) to close the connections.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import NoReturn

import aiohttp
import httpx
from aiohappyeyeballs import AddrInfoType
from httpx_aiohttp import AiohttpTransport

__all__ = ["PooledTransport", "pooled_transport", "tls_context", "translate_error"]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), loaded once: for an
    ``aiohttp`` session of one's own that verifies servers as the project's httpx clients do."""
    return httpx.create_ssl_context(trust_env=True)


def translate_error(exc: BaseException) -> httpx.TransportError:
    """The httpx exception for a failure of the aiohttp exchange (``exc`` or what it wraps).

    Its message never holds the request URL (whose query or userinfo may carry secrets)."""
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None else exc
    message = str(cause) or type(cause).__name__
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(cause, TimeoutError):  # aiohttp.ServerTimeoutError and SocketTimeoutError among them
        return httpx.ReadTimeout(message)
    if isinstance(cause, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message)
    if isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake/certificate
        return httpx.ConnectError(message)
    if isinstance(cause, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol("the URL cannot be requested")  # aiohttp's text is the URL
    if isinstance(cause, aiohttp.ClientResponseError):  # its text ends with the URL, query included
        return httpx.RemoteProtocolError(f"invalid response: {cause.message}" if cause.message else "invalid response")
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(cause, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return httpx.ReadError(message)
    if isinstance(cause, httpx.TransportError):
        return cause
    if isinstance(cause, ValueError):  # aiohttp refuses CR/LF in header values with a plain ValueError
        return httpx.LocalProtocolError("the request cannot be sent as valid HTTP")
    return httpx.TransportError(message)


_FAILURES = (httpx.TransportError, aiohttp.ClientError, TimeoutError, ValueError)


def _reraise(exc: BaseException) -> NoReturn:
    translated = translate_error(exc)
    if translated is exc:
        raise exc
    raise translated from exc


class _TranslatingStream(httpx.AsyncByteStream):
    """The response body, with read errors translated like the request's."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except _FAILURES as exc:
            _reraise(exc)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except _FAILURES as exc:
            _reraise(exc)


def unacked_socket_factory(seconds: float) -> Callable[[AddrInfoType], socket.socket]:
    """Sockets that fail once sent data stays unacknowledged for ``seconds`` (Linux TCP_USER_TIMEOUT).

    A pooled connection to a peer that vanished (a killed pod: its address black-holes) would
    otherwise hang until the caller's deadline, however long; a live peer's kernel acknowledges the
    request at once, however long the peer then takes to answer."""

    def make(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, max(1, int(seconds * 1000)))
        return sock

    return make


class PooledTransport(AiohttpTransport):
    """``AiohttpTransport`` with the session settings and error translation described above;
    ``unacked_timeout``: see :func:`unacked_socket_factory` (None: the system's default)."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        unacked_timeout: float | None = None,
        max_per_host: int | None = None,
    ) -> None:
        self.unacked_timeout = unacked_timeout
        self.max_per_host = max_per_host
        super().__init__(verify=verify, limits=limits, trust_env=False, client=self._new_session)

    def _new_session(self) -> aiohttp.ClientSession:
        expiry = self.limits.keepalive_expiry
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,  # aiohttp: 0 is no limit, like httpx's None
            limit_per_host=self.max_per_host or 0,
            keepalive_timeout=expiry if expiry is not None else 3600.0,
            ssl=self.ssl_context,
            socket_factory=unacked_socket_factory(self.unacked_timeout) if self.unacked_timeout else None,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            skip_auto_headers=("Content-Type",),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            # A body httpx has not read yet (a redirected request re-using the first one's
            # stream, a streamed upload) is read here: handed to aiohttp as a stream it would be
            # sent chunked, even when empty. Bodies are therefore buffered in memory.
            await request.aread()
            if request.url.userinfo:
                # httpx has already turned URL credentials into a Basic Authorization header;
                # aiohttp refuses a URL with credentials next to an Authorization header.
                request.url = request.url.copy_with(username=None, password=None)
            response = await super().handle_async_request(request)
        except _FAILURES as exc:
            _reraise(exc)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _TranslatingStream(response.stream)
        return response


def pooled_transport(
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    unacked_timeout: float | None = None,
    max_per_host: int | None = None,
) -> PooledTransport:
    """A :class:`PooledTransport`: pass it as ``transport=`` to one long-lived ``httpx.AsyncClient``.
    ``max_per_host``: connections to one host at most (None: only the pool's limit), so calls
    hanging on one slow host leave the rest of the pool to the others."""
    return PooledTransport(verify=verify, limits=limits, unacked_timeout=unacked_timeout, max_per_host=max_per_host)
