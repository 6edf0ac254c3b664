"""The one implementation behind every command: send with bounded retries, then build the Result.

Retries: a 5xx answer, a connection error and a timeout are retried until
``attempts`` attempts were made, sleeping 0.1 s, 0.2 s, 0.4 s, ... (capped at
1 s) in between. 4xx answers, invalid parameters and too many redirects are
never retried.

Messages and logs name the method and the URL without userinfo, query string
and fragment; they never contain header values, credentials or the body.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from spiff_connector_http import errors
from spiff_connector_http.client import get_client
from spiff_connector_http.request import InvalidRequestError, PreparedRequest, RequestOptions, prepare
from spiff_connector_http.response import parse_body, response_headers
from spiff_connector_http.urls import redact
from spiff_connector_sdk import Context, ErrorInfo, Result

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 1.0


def backoff_delay(retry: int) -> float:
    """Seconds to sleep before retry number ``retry`` (1-based)."""
    return float(min(BACKOFF_INITIAL * 2 ** (retry - 1), BACKOFF_MAX))


@dataclass(frozen=True)
class _Failure:
    """An attempt that got no usable response."""

    code: str
    http_status: int
    reason: str
    retryable: bool


def _classify(exc: Exception, request: PreparedRequest) -> _Failure:
    detail = redact(str(exc), request.secrets)
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        reason = f"{type(exc).__name__}: no answer within {request.timeout:g} s"
        return _Failure(errors.TIMEOUT, errors.TIMEOUT_STATUS, reason, True)
    if isinstance(exc, httpx.TooManyRedirects):
        return _Failure(errors.TOO_MANY_REDIRECTS, errors.CONNECTION_ERROR_STATUS, "too many redirects", False)
    if isinstance(exc, httpx.LocalProtocolError):
        # Its text can quote a header value: keep it out of the message.
        invalid = "the request is not valid HTTP (check header names and values)"
        return _Failure(errors.INVALID_PARAMETERS, errors.INVALID_REQUEST_STATUS, invalid, False)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return _Failure(errors.CONNECTION_ERROR, errors.CONNECTION_ERROR_STATUS, reason, False)
    if isinstance(exc, httpx.DecodingError):
        return _Failure(errors.INVALID_RESPONSE_BODY, errors.CONNECTION_ERROR_STATUS, reason, False)
    return _Failure(errors.CONNECTION_ERROR, errors.CONNECTION_ERROR_STATUS, reason, True)


def _invalid(error: InvalidRequestError) -> Result:
    status = errors.INVALID_REQUEST_STATUS
    return Result(body={}, http_status=status, error=ErrorInfo(error.code, error.message))


def _after(attempt: int) -> str:
    return f" after {attempt} attempts" if attempt > 1 else ""


async def execute(ctx: Context, options: RequestOptions) -> Result:
    """Send the request described by ``options`` and describe the outcome as a :class:`Result`."""
    try:
        request = prepare(options)
        client = get_client()
        http_request = request.build(client)
    except InvalidRequestError as exc:
        ctx.log(f"{options.method} request not sent: {exc.message}")
        return _invalid(exc)

    label = f"{request.method} {request.display_url}"
    response: httpx.Response | None = None
    failure: _Failure | None = None
    attempt = 0
    while attempt < request.attempts:
        attempt += 1
        if attempt > 1:
            await asyncio.sleep(backoff_delay(attempt - 1))
        response, failure = None, None
        try:
            async with asyncio.timeout(request.timeout):
                response = await client.send(http_request, auth=request.auth, follow_redirects=request.follow_redirects)
        except (httpx.HTTPError, TimeoutError) as exc:
            failure = _classify(exc, request)
            ctx.log(f"{label} attempt {attempt}/{request.attempts} → {failure.code}")
            if not failure.retryable:
                break
            continue
        ctx.log(f"{label} attempt {attempt}/{request.attempts} → {response.status_code}")
        if response.status_code < 500:
            break

    if response is None:
        assert failure is not None
        message = f"{label} failed{_after(attempt)}: {failure.reason}"
        return Result(body={}, http_status=failure.http_status, error=ErrorInfo(failure.code, message))

    status = response.status_code
    parsed = parse_body(response)
    error: ErrorInfo | None = None
    if status >= 400:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        error = ErrorInfo(errors.http_error(status), f"{label} returned HTTP {status}{reason}{_after(attempt)}")
    elif not parsed.valid:
        error = ErrorInfo(
            errors.INVALID_RESPONSE_BODY,
            f"{label} returned HTTP {status} with a {parsed.kind} body that does not parse",
        )
    return Result(
        body=parsed.body,
        http_status=status,
        headers=response_headers(response) if options.include_response_headers else None,
        error=error,
    )
