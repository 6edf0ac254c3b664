"""One attempt's exchange on the shared session: the request, the redirects it follows, the body.

The URL goes out exactly as parsed (:func:`wire_url`: no re-quoting, no userinfo, no
fragment), the headers exactly as built (:class:`~spiff_connector_http.redirects.Hop`), through
the environment's proxy for the URL's origin. ``wait`` (the request's ``timeout``) bounds the wait for a connection (a
free one from the pool included), for the connection itself and for each read. The body is read
chunk by chunk, each read within ``wait`` (:class:`IdleTimeout`), decoded per its
``Content-Encoding`` and abandoned once it exceeds the size limit (:class:`ResponseTooLarge`).
"""

from __future__ import annotations

import asyncio
import functools

import aiohttp
import httpx
import yarl

from spiff_connector_http.client import HttpClient
from spiff_connector_http.decoding import decoder_for
from spiff_connector_http.errors import MAX_REDIRECTS
from spiff_connector_http.redirects import Hop, is_redirect, next_hop
from spiff_connector_http.response import Response, decode_headers, reason_phrase

SCHEMES = frozenset({"http", "https"})


class SendingError(Exception):
    """A failure of the exchange found by the connector rather than aiohttp."""


class TooManyRedirects(SendingError):
    def __init__(self) -> None:
        super().__init__(f"more than {MAX_REDIRECTS} redirects")


class UnsupportedScheme(SendingError):
    """A redirect to a URL that is neither ``http`` nor ``https``."""


class IdleTimeout(SendingError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no data for {seconds:g} s")


class ResponseTooLarge(SendingError):
    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"the response body exceeds {limit} bytes (HTTP_MAX_RESPONSE_BYTES); it was not read further")
        self.status = status


def wire_url(url: httpx.URL) -> yarl.URL:
    """``url`` as sent: scheme, host and port, path and query as they are; no userinfo or fragment."""
    return yarl.URL(f"{url.scheme}://{url.netloc.decode('ascii')}{url.raw_path.decode('ascii')}", encoded=True)


@functools.lru_cache(maxsize=64)
def _timeouts(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds, sock_read=seconds)


async def _request(client: HttpClient, hop: Hop, wait: float) -> aiohttp.ClientResponse:
    if hop.url.scheme not in SCHEMES:
        raise UnsupportedScheme("the URL cannot be requested")
    return await client.session.request(
        hop.method,
        wire_url(hop.url),
        headers=hop.headers,
        data=hop.body,
        allow_redirects=False,
        proxy=client.proxy(hop.url),
        timeout=_timeouts(wait),
    )


async def send(
    client: HttpClient, hop: Hop, *, follow_redirects: bool, wait: float
) -> tuple[aiohttp.ClientResponse, dict[str, str]]:
    """The answer to ``hop`` (after the redirects it leads to, when ``follow_redirects``) with its
    headers (:func:`~spiff_connector_http.response.decode_headers`); its body is still to be read."""
    redirects = 0
    while True:
        response = await _request(client, hop, wait)
        try:
            headers = decode_headers(response.raw_headers)
            location = headers.get("location")
            if location is None or not is_redirect(response.status, location):
                return response, headers
            following = next_hop(hop, response.status, location)
            if not follow_redirects:
                return response, headers
            await read_body(response, headers, None, wait)
        except BaseException:
            response.close()
            raise
        hop = following
        redirects += 1
        if redirects > MAX_REDIRECTS:
            raise TooManyRedirects


def _bound(status: int, size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise ResponseTooLarge(status, limit)


async def read_body(
    response: aiohttp.ClientResponse, headers: dict[str, str], limit: int | None, idle: float
) -> Response:
    """The whole body, decoded; more than ``limit`` decoded bytes (None: no limit) raise
    :class:`ResponseTooLarge`, no data for ``idle`` seconds :class:`IdleTimeout`."""
    decoder = decoder_for(headers)
    content = response.content
    chunks: list[bytes] = []
    size = 0
    while True:
        # What has arrived already is taken without a timer (5 us each on the event loop): a small
        # answer is usually all there by now, and the idle bound is only for waiting.
        data = content.read_nowait()
        if not data and not content.at_eof():
            try:
                async with asyncio.timeout(idle) as waiting:
                    data = await content.readany()
            except TimeoutError:
                if not waiting.expired():
                    raise
                raise IdleTimeout(idle) from None
        if not data:
            if decoder is not None:
                chunks.append(decoder.flush())
                size += len(chunks[-1])
                _bound(response.status, size, limit)
            break
        for piece in (data,) if decoder is None else decoder.decode(data):
            size += len(piece)
            _bound(response.status, size, limit)
            chunks.append(piece)
    response.release()
    body = b"".join(chunks)
    return Response(response.status, reason_phrase(response.status, response.reason), _as_read(headers, body), body)


_RECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _as_read(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The headers of the body as read: decoded, of its decoded length (what httpx reported)."""
    described = {name: value for name, value in headers.items() if name not in _RECODED}
    if body:
        described["content-length"] = str(len(body))
    return described
