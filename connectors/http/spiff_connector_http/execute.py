"""The one implementation behind every command: send with bounded retries, then build the Result.

Failures carry the community connector's codes (:mod:`spiff_connector_http.errors`): what
``requests`` would raise for the same failure. Where it happened matters, as it does there: a
timeout before the response headers is ``ReadTimeout`` but one while the body is read is
``ConnectionError``; a connection that breaks before the headers is ``ConnectionError`` but one
that breaks in the body is ``ChunkedEncodingError`` (:mod:`spiff_connector_http.failures`). So
each attempt sends (:mod:`spiff_connector_http.sending`), then reads the body, under one deadline
of twice ``timeout``.

Retries: a 5xx answer and a failure to connect, to get an answer or to read it are retried until
``attempts`` attempts were made, sleeping 0.1 s, 0.2 s, 0.4 s, ... (capped at 1 s) in between.
4xx answers, invalid parameters, invalid headers and too many redirects are never retried.

Messages and logs name the method and the URL without userinfo, query string and fragment;
they never contain header values, credentials or the body.
"""

from __future__ import annotations

import asyncio

from spiff_connector_http import errors
from spiff_connector_http.client import HttpClient, get_client
from spiff_connector_http.failures import FAILURES, Failure, Phase, classify
from spiff_connector_http.redirects import Hop
from spiff_connector_http.request import (
    InvalidRequestError,
    PreparedRequest,
    RequestOptions,
    prepare,
)
from spiff_connector_http.response import Response, parse_body, response_headers
from spiff_connector_http.sending import ResponseTooLarge, read_body, send
from spiff_connector_http.urls import redact
from spiff_connector_sdk import Context, ErrorInfo, Result

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 1.0


def backoff_delay(retry: int) -> float:
    """Seconds to sleep before retry number ``retry`` (1-based)."""
    return float(min(BACKOFF_INITIAL * 2 ** (retry - 1), BACKOFF_MAX))


async def _attempt(client: HttpClient, hop: Hop, request: PreparedRequest) -> Response | Failure:
    """Send ``hop`` and read the whole answer, or say why that failed."""
    phase: Phase = "send"
    try:
        async with asyncio.timeout(request.deadline) as deadline:
            response, headers = await send(client, hop, follow_redirects=request.follow_redirects, wait=request.timeout)
            phase = "body"
            try:
                return await read_body(response, headers, request.max_response_bytes, request.timeout)
            except BaseException:
                response.close()
                raise
    except ResponseTooLarge as exc:
        return Failure(errors.RESPONSE_TOO_LARGE, str(exc), retryable=False, http_status=exc.status)
    except FAILURES as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            return Failure(errors.CONNECTION_ERROR, f"no complete answer within {request.deadline:g} s")
        return classify(exc, phase, request)


def _failed(code: str, message: str, http_status: int = errors.NO_RESPONSE_STATUS) -> Result:
    return Result(body={}, http_status=http_status, error=ErrorInfo(code, message))


def _after(attempt: int) -> str:
    return f" after {attempt} attempts" if attempt > 1 else ""


async def execute(ctx: Context, options: RequestOptions) -> Result:
    """Send the request described by ``options`` and describe the outcome as a :class:`Result`."""
    try:
        request = prepare(options, ctx.config)
        hop = request.build()
    except InvalidRequestError as exc:
        ctx.log(f"{options.method} request not sent: {exc.message}")
        return _failed(exc.code, exc.message)

    client = get_client()
    label = f"{request.method} {request.display_url}"
    outcome: Response | Failure | None = None
    attempt = 0
    while attempt < request.attempts:
        attempt += 1
        if attempt > 1:
            await asyncio.sleep(backoff_delay(attempt - 1))
        outcome = await _attempt(client, hop, request)
        if isinstance(outcome, Failure):
            ctx.log(f"{label} attempt {attempt}/{request.attempts} → {outcome.code}")
            if not outcome.retryable:
                break
            continue
        ctx.log(f"{label} attempt {attempt}/{request.attempts} → {outcome.status}")
        if outcome.status < 500:
            break

    if not isinstance(outcome, Response):
        assert outcome is not None
        return _failed(outcome.code, f"{label} failed{_after(attempt)}: {outcome.reason}", outcome.http_status)

    response = outcome
    status = response.status
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
        reason = f" {response.reason}" if response.reason else ""
        error = ErrorInfo(errors.http_error(status), f"{label} returned HTTP {status}{reason}{_after(attempt)}")
    return Result(
        body=parsed.body,
        http_status=status,
        headers=response_headers(response) if options.include_response_headers else None,
        error=error,
    )
