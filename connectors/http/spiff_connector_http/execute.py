"""The one implementation behind every command: send with bounded retries, then build the Result.

Failures carry the community connector's codes (:mod:`spiff_connector_http.errors`): what
``requests`` would raise for the same failure. Where it happened matters, as it does there: a
timeout before the response headers is ``ReadTimeout`` but one while the body is read is
``ConnectionError``; a connection that breaks before the headers is ``ConnectionError`` but one
that breaks in the body is ``ChunkedEncodingError``. So each attempt sends, then reads the
body, under one deadline of twice ``timeout``.

Retries: a 5xx answer and a failure to connect, to get an answer or to read it are retried until
``attempts`` attempts were made, sleeping 0.1 s, 0.2 s, 0.4 s, ... (capped at 1 s) in between.
4xx answers, invalid parameters, invalid headers and too many redirects are never retried.

Messages and logs name the method and the URL without userinfo, query string and fragment;
they never contain header values, credentials or the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import httpx

from spiff_connector_http import errors
from spiff_connector_http.client import get_client
from spiff_connector_http.request import (
    InvalidRequestError,
    PreparedRequest,
    RequestOptions,
    prepare,
)
from spiff_connector_http.response import parse_body, response_headers
from spiff_connector_http.urls import redact
from spiff_connector_sdk import Context, ErrorInfo, Result

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 1.0
_MAX_CHAIN = 16

Phase = Literal["send", "body"]


def backoff_delay(retry: int) -> float:
    """Seconds to sleep before retry number ``retry`` (1-based)."""
    return float(min(BACKOFF_INITIAL * 2 ** (retry - 1), BACKOFF_MAX))


@dataclass(frozen=True)
class _Failure:
    """An attempt that got no usable response."""

    code: str
    reason: str
    retryable: bool = True
    http_status: int = errors.NO_RESPONSE_STATUS  # the upstream's, when its headers came


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from (or during), outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < _MAX_CHAIN and all(current is not seen for seen in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _is_tls_failure(exc: BaseException) -> bool:
    return any(isinstance(item, ssl.SSLError | ssl.CertificateError) for item in _chain(exc))


def _is_chunk_failure(exc: httpx.HTTPError) -> bool:
    """aiohttp reports invalid chunked encoding in the first chunk with the headers, as an invalid response."""
    return isinstance(exc, httpx.RemoteProtocolError) and "chunk" in str(exc).lower()


def _classify(exc: httpx.HTTPError, phase: Phase, request: PreparedRequest) -> _Failure:
    """The community connector's code for ``exc``, raised while sending (``send``: up to the
    response headers, redirects included) or while reading the final response's body."""
    detail = redact(str(exc), request.secrets)
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if isinstance(exc, httpx.TooManyRedirects):
        return _Failure(errors.TOO_MANY_REDIRECTS, f"more than {errors.MAX_REDIRECTS} redirects", retryable=False)
    if isinstance(exc, httpx.LocalProtocolError):
        # Its text can quote a header value: keep it out of the message.
        return _Failure(errors.INVALID_HEADER, "a header name or value cannot be sent as HTTP", retryable=False)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return _Failure(errors.INVALID_URL, "the URL cannot be requested", retryable=False)
    if isinstance(exc, httpx.DecodingError):
        return _Failure(errors.CONTENT_DECODING_ERROR, reason)
    if isinstance(exc, httpx.ProxyError):
        return _Failure(errors.PROXY_ERROR, reason)
    if isinstance(exc, httpx.TimeoutException):
        waited = f"{type(exc).__name__}: no data within {request.timeout:g} s"
        if phase == "body" or isinstance(exc, httpx.WriteTimeout):
            return _Failure(errors.CONNECTION_ERROR, waited)
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return _Failure(errors.CONNECT_TIMEOUT, f"{type(exc).__name__}: not connected within {request.timeout:g} s")
        return _Failure(errors.READ_TIMEOUT, f"{type(exc).__name__}: no answer within {request.timeout:g} s")
    if _is_tls_failure(exc):
        return _Failure(errors.SSL_ERROR, reason)
    if phase == "body" or _is_chunk_failure(exc):
        return _Failure(errors.CHUNKED_ENCODING_ERROR, reason)
    return _Failure(errors.CONNECTION_ERROR, reason)


class _IdleTimeoutStream(httpx.AsyncByteStream):
    """A response body that fails with :class:`httpx.ReadTimeout` when no data arrives for ``seconds``.

    aiohttp has a read timeout of its own, but drops it (and then waits for good) when the
    chunked encoding breaks after the first chunk; this one always holds."""

    def __init__(self, inner: httpx.AsyncByteStream, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._inner)
        while True:
            try:
                async with asyncio.timeout(self._seconds) as idle:
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                if not idle.expired():
                    raise
                raise httpx.ReadTimeout(f"no data for {self._seconds:g} s") from exc
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class ResponseTooLarge(Exception):
    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"the response body exceeds {limit} bytes (HTTP_MAX_RESPONSE_BYTES); it was not read further")
        self.status = status


_RECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def _read_within(response: httpx.Response, limit: int) -> httpx.Response:
    """The whole (decoded) body, read chunk by chunk and abandoned as soon as it exceeds ``limit``
    bytes; a compressed body counts by its decoded size. Returns the response with that body."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(response.status_code, limit)
        chunks.append(chunk)
    await response.aclose()
    headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _RECODED]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions={"reason_phrase": response.reason_phrase.encode("latin-1", "replace")},
        history=response.history,
    )


async def _attempt(
    client: httpx.AsyncClient, http_request: httpx.Request, request: PreparedRequest
) -> httpx.Response | _Failure:
    """Send ``http_request`` and read the whole answer, or say why that failed."""
    phase: Phase = "send"
    try:
        async with asyncio.timeout(request.deadline) as deadline:
            response = await client.send(http_request, follow_redirects=request.follow_redirects, stream=True)
            phase = "body"
            if isinstance(response.stream, httpx.AsyncByteStream):
                response.stream = _IdleTimeoutStream(response.stream, request.timeout)
            try:
                response = await _read_within(response, request.max_response_bytes)
            except BaseException:
                with contextlib.suppress(httpx.HTTPError):  # the read's failure is the one to report
                    await response.aclose()
                raise
    except ResponseTooLarge as exc:
        return _Failure(errors.RESPONSE_TOO_LARGE, str(exc), retryable=False, http_status=exc.status)
    except httpx.HTTPError as exc:
        return _classify(exc, phase, request)
    except TimeoutError:
        if not deadline.expired():
            raise
        return _Failure(errors.CONNECTION_ERROR, f"no complete answer within {request.deadline:g} s")
    return response


def _failed(code: str, message: str, http_status: int = errors.NO_RESPONSE_STATUS) -> Result:
    return Result(body={}, http_status=http_status, error=ErrorInfo(code, message))


def _after(attempt: int) -> str:
    return f" after {attempt} attempts" if attempt > 1 else ""


async def execute(ctx: Context, options: RequestOptions) -> Result:
    """Send the request described by ``options`` and describe the outcome as a :class:`Result`."""
    try:
        request = prepare(options, ctx.config)
        client = get_client()
        http_request = request.build(client)
    except InvalidRequestError as exc:
        ctx.log(f"{options.method} request not sent: {exc.message}")
        return _failed(exc.code, exc.message)

    label = f"{request.method} {request.display_url}"
    outcome: httpx.Response | _Failure | None = None
    attempt = 0
    while attempt < request.attempts:
        attempt += 1
        if attempt > 1:
            await asyncio.sleep(backoff_delay(attempt - 1))
        outcome = await _attempt(client, http_request, request)
        if isinstance(outcome, _Failure):
            ctx.log(f"{label} attempt {attempt}/{request.attempts} → {outcome.code}")
            if not outcome.retryable:
                break
            continue
        ctx.log(f"{label} attempt {attempt}/{request.attempts} → {outcome.status_code}")
        if outcome.status_code < 500:
            break

    if not isinstance(outcome, httpx.Response):
        assert outcome is not None
        return _failed(outcome.code, f"{label} failed{_after(attempt)}: {outcome.reason}", outcome.http_status)

    response = outcome
    status = response.status_code
    parsed = parse_body(response)
    error: ErrorInfo | None = None
    if parsed.error_code is not None:
        detail = redact(parsed.error_detail, request.secrets)
        error = ErrorInfo(
            parsed.error_code,
            f"{label} returned HTTP {status} with a {parsed.kind} body that does not parse"
            + (f": {detail}" if detail else ""),
        )
    elif status >= 400:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        error = ErrorInfo(errors.http_error(status), f"{label} returned HTTP {status}{reason}{_after(attempt)}")
    return Result(
        body=parsed.body,
        http_status=status,
        headers=response_headers(response) if options.include_response_headers else None,
        error=error,
    )
