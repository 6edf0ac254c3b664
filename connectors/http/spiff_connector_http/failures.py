"""An attempt's failure as the community connector's code (:mod:`spiff_connector_http.errors`).

Where it happened matters, as it does for ``requests``: ``send`` is everything up to the final
response's headers (redirects included), ``body`` the reading of that response's body. A timeout
is ``ReadTimeout`` while waiting for the headers but ``ConnectionError`` in the body; a broken
connection is ``ConnectionError`` before the headers but ``ChunkedEncodingError`` in the body.

The reason names the kind of failure (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``,
``ReadError``, ``ProxyError``, ``DecodingError``, ...) and aiohttp's own text, never its text
where that quotes the URL or a header value, and is scrubbed of the request's secrets.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

import aiohttp

from spiff_connector_http import errors
from spiff_connector_http.decoding import DecodingError
from spiff_connector_http.redirects import InvalidLocationError
from spiff_connector_http.request import PreparedRequest
from spiff_connector_http.sending import IdleTimeout, SendingError, TooManyRedirects, UnsupportedScheme
from spiff_connector_http.urls import redact
from spiff_connector_sdk.failures import exception_chain

Phase = Literal["send", "body"]
FAILURES = (aiohttp.ClientError, SendingError, DecodingError, InvalidLocationError, ValueError, OSError)
"""What an attempt's exchange raises when it fails (timeouts are among them)."""


@dataclass(frozen=True)
class Failure:
    """An attempt that got no usable response."""

    code: str
    reason: str
    retryable: bool = True
    http_status: int = errors.NO_RESPONSE_STATUS  # the upstream's, when its headers came


def _is_tls_failure(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ClientSSLError) or any(
        isinstance(item, ssl.SSLError | ssl.CertificateError) for item in exception_chain(exc)
    )


def _kind(exc: BaseException) -> tuple[str, str]:
    """The failure's kind and text."""
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake/certificate
        return "ConnectError", str(exc)
    if isinstance(exc, aiohttp.ClientResponseError):  # its text ends with the URL, query included
        return "RemoteProtocolError", f"invalid response: {exc.message}" if exc.message else "invalid response"
    if isinstance(exc, aiohttp.ServerDisconnectedError | InvalidLocationError):
        return "RemoteProtocolError", str(exc)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return "ReadError", str(exc)
    return type(exc).__name__, str(exc)


def _timeout(exc: BaseException, phase: Phase, timeout: float) -> Failure:
    if phase == "body" or isinstance(exc, IdleTimeout):
        return Failure(errors.CONNECTION_ERROR, f"ReadTimeout: no data within {timeout:g} s")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failure(errors.CONNECT_TIMEOUT, f"ConnectTimeout: not connected within {timeout:g} s")
    return Failure(errors.READ_TIMEOUT, f"ReadTimeout: no answer within {timeout:g} s")


def classify(exc: BaseException, phase: Phase, request: PreparedRequest) -> Failure:
    """The community connector's code for ``exc``, raised in ``phase`` of an attempt at ``request``."""
    if isinstance(exc, TooManyRedirects):
        return Failure(errors.TOO_MANY_REDIRECTS, f"more than {errors.MAX_REDIRECTS} redirects", retryable=False)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError | UnsupportedScheme):
        return Failure(errors.INVALID_URL, "the URL cannot be requested", retryable=False)  # aiohttp's text is the URL
    if isinstance(exc, ValueError) and not isinstance(exc, aiohttp.ClientError):
        # aiohttp refuses CR, LF, NUL or DEL in a header with a text that can quote the value.
        return Failure(errors.INVALID_HEADER, "a header name or value cannot be sent as HTTP", retryable=False)
    kind, text = _kind(exc)
    detail = redact(text, request.secrets)
    reason = f"{kind}: {detail}" if detail else kind
    if isinstance(exc, DecodingError):
        return Failure(errors.CONTENT_DECODING_ERROR, reason)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return Failure(errors.PROXY_ERROR, f"ProxyError: {detail}")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return Failure(errors.PROXY_ERROR, f"ProxyError: {exc.status} {exc.message}".rstrip())
    if isinstance(exc, TimeoutError | IdleTimeout):
        return _timeout(exc, phase, request.timeout)
    if _is_tls_failure(exc):
        return Failure(errors.SSL_ERROR, reason)
    if phase == "body" or (kind == "RemoteProtocolError" and "chunk" in text.lower()):
        # aiohttp reports invalid chunked encoding in the first chunk with the headers, as an invalid response.
        return Failure(errors.CHUNKED_ENCODING_ERROR, reason)
    return Failure(errors.CONNECTION_ERROR, reason)
